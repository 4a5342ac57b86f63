import { z } from 'zod';
import { KeyFileError, loadPublicKeyFile } from './keys.js';

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash, 256 bits. */
const MIN_SECRET_CHARS = 32;
const MIN_API_KEY_CHARS = 16;
/** RFC 6750's b64token: what fits in `Authorization: Bearer <key>` as is. */
const B64TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

export const jwtSecretSchema = z
  .string()
  .min(MIN_SECRET_CHARS, `must be at least ${MIN_SECRET_CHARS} characters (256 bits) for HS256`);

/** Checked at start, so a bad file stops the program with a message naming the setting. */
export const publicKeyFileSchema = z.string().superRefine((path, context) => {
  try {
    loadPublicKeyFile(path);
  } catch (error) {
    if (!(error instanceof KeyFileError)) throw error;
    context.addIssue({ code: 'custom', message: error.message });
  }
});

export const apiKeysSchema = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((key) => key.trim())
      .filter((key) => key !== ''),
  )
  .pipe(
    z
      .array(
        z
          .string()
          .min(MIN_API_KEY_CHARS, `each key needs at least ${MIN_API_KEY_CHARS} characters`)
          .regex(B64TOKEN, 'keys may only hold letters, digits and -._~+/ (then =)'),
      )
      .min(1, 'no key given'),
  );

/** Settings whose values must never appear in a message or a log. */
export const SECRET_SETTINGS: ReadonlySet<string> = new Set([
  'AUTH_JWT_SECRET',
  'API_KEYS',
  'OPENAI_API_KEY',
]);

/** One way to verify JWTs: both set is a mistake to report, not a choice to make silently. */
export function conflictingJwtSettings(config: {
  AUTH_JWT_SECRET?: string | undefined;
  AUTH_JWT_PUBLIC_KEY_FILE?: string | undefined;
}): string | undefined {
  if (config.AUTH_JWT_SECRET === undefined || config.AUTH_JWT_PUBLIC_KEY_FILE === undefined) {
    return undefined;
  }
  return 'AUTH_JWT_SECRET and AUTH_JWT_PUBLIC_KEY_FILE are both set: use one or the other';
}
