import { protocolError, StreamhubClientError } from './errors.js';
import type { ResetNotice, TopicEvent } from './types.js';

/** Payloads are always JSON (docs/api.md §1); anything else means this is not a streamhub server. */
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

/** A server → client WebSocket frame (docs/api.md §3): a JSON object with a `type`. */
export type Frame = Readonly<Record<string, unknown>>;

/** The frame in a WebSocket message: a text frame holding one JSON object. */
export function parseFrame(data: unknown): Frame {
  if (typeof data !== 'string') throw protocolError('unexpected binary frame');
  const frame = parseJson(data, 'frame');
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    throw protocolError(`frame is not a JSON object: ${data.slice(0, 100)}`);
  }
  return frame as Frame;
}

/** The event of an `event` frame. */
export function toTopicEvent(frame: Frame): TopicEvent {
  const { id, event } = frame;
  if (typeof id !== 'string' || typeof event !== 'string') {
    throw protocolError(`malformed event frame: ${JSON.stringify(frame).slice(0, 100)}`);
  }
  return { id, event, data: frame.data };
}

/**
 * Error frames carry no HTTP status; the error gets the one of the same refusal over HTTP (so
 * that `retryable` tells whether trying again may succeed), and 400 for the rest.
 */
const FRAME_ERROR_STATUS: Readonly<Record<string, number>> = {
  unauthorized: 401,
  token_expired: 401,
  forbidden: 403,
  too_many_subscriptions: 409,
  rate_limited: 429,
  internal_error: 500,
  backend_unavailable: 503,
  overloaded: 503,
  subscription_failed: 503,
};

/** The error an `error` frame reports. */
export function toFrameError(frame: Frame): StreamhubClientError {
  const code = String(frame.code);
  return new StreamhubClientError(FRAME_ERROR_STATUS[code] ?? 400, code, String(frame.message));
}
