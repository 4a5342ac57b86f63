import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { z } from 'zod';

/** What `TLS_CERT_FILE` and `TLS_KEY_FILE` hold, read at start. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
}

interface TlsSettings {
  TLS_CERT_FILE?: string | undefined;
  TLS_KEY_FILE?: string | undefined;
}

/** Checked at start, so a missing file stops the program with a message naming the setting. */
export const readableFileSchema = z.string().superRefine((path, context) => {
  try {
    readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    context.addIssue({ code: 'custom', message: `cannot read the file (${code})` });
  }
});

/**
 * HTTPS needs both files, and a key that belongs to the certificate: anything else is a
 * mistake to report at start, not a plain-HTTP server to start silently or a handshake to fail
 * on the first client.
 */
export function tlsSettingsProblem(settings: TlsSettings): string | undefined {
  const { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile } = settings;
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    const missing = certFile === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE';
    return `${missing} is unset: TLS_CERT_FILE and TLS_KEY_FILE go together (HTTPS needs both)`;
  }
  try {
    createSecureContext(readTls(certFile, keyFile));
    return undefined;
  } catch (error) {
    // OpenSSL's reasons (`no start line`, `key values mismatch`) name no content of the files.
    return `TLS_CERT_FILE and TLS_KEY_FILE are not a usable certificate and private key (PEM): ${(error as Error).message}`;
  }
}

/** The certificate and key to serve HTTPS with, or undefined for plain HTTP. */
export function tlsMaterial(settings: TlsSettings): TlsMaterial | undefined {
  const { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile } = settings;
  if (certFile === undefined || keyFile === undefined) return undefined;
  return readTls(certFile, keyFile);
}

function readTls(certFile: string, keyFile: string): TlsMaterial {
  return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
}
