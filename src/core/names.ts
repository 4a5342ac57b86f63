import { StreamhubError } from './errors.js';

/** Topic names and session ids (docs/api.md §0). */
const NAME = /^[A-Za-z0-9._:@-]{1,128}$/;
const EVENT_TYPE = /^[A-Za-z0-9._:-]{1,64}$/;

export function isName(value: unknown): value is string {
  return typeof value === 'string' && NAME.test(value);
}

export function checkTopic(value: unknown): string {
  return checkName(value, 'topic');
}

/** A name (`noun` says of what), or 400 `invalid_<noun>`. */
export function checkName(value: unknown, noun: string): string {
  if (isName(value)) return value;
  throw new StreamhubError(
    'invalid',
    `invalid_${noun.replaceAll(' ', '_')}`,
    `${noun} must be 1-128 chars of [A-Za-z0-9._:@-]`,
  );
}

export function checkEventType(value: unknown): string {
  if (typeof value === 'string' && EVENT_TYPE.test(value)) return value;
  throw new StreamhubError(
    'invalid',
    'invalid_event_type',
    'event type must be 1-64 chars of [A-Za-z0-9._:-]',
  );
}
