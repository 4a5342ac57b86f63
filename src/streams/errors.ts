import { StreamhubError } from '../core/errors.js';
import { checkName } from '../core/names.js';
import type { StreamEnding } from '../core/stream-store.js';

/** The stream a producer writes to has ended; `status` says how. */
export class StreamEndedError extends StreamhubError {
  constructor(
    readonly status: StreamEnding,
    message: string,
  ) {
    super(
      status === 'too_long' ? 'too_large' : 'conflict',
      status === 'too_long' ? 'stream_too_long' : status === 'complete' ? 'stream_ended' : status,
      message,
    );
  }
}

export function streamNotFound(id: string): StreamhubError {
  return new StreamhubError('not_found', 'stream_not_found', `no stream ${id}`);
}

export function streamExists(id: string): StreamhubError {
  return new StreamhubError('conflict', 'stream_exists', `stream ${id} is open`);
}

export function streamEnded(id: string): StreamhubError {
  return new StreamhubError('conflict', 'stream_ended', `stream ${id} has ended`);
}

export function notOpen(id: string): StreamhubError {
  return new StreamhubError('conflict', 'not_open', `stream ${id} is not open`);
}

/** A stream id follows the rules of a session id (docs/api.md §0). */
export function checkStreamId(id: string): string {
  return checkName(id, 'stream id');
}
