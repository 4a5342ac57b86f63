import { protocolError } from './errors.js';
import type { ResetNotice } from './types.js';

/** Payloads are JSON by contract; anything else means this is not a streamhub server. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw protocolError(`${what} is not valid JSON: ${text.slice(0, 100)}`);
  }
}

export function toResetNotice(value: unknown): ResetNotice {
  const { reason, oldest } = (value ?? {}) as { reason?: unknown; oldest?: unknown };
  if (typeof reason !== 'string' || !(typeof oldest === 'string' || oldest === null)) {
    throw protocolError(`malformed reset notice: ${JSON.stringify(value)}`);
  }
  return { reason, oldest };
}
