import { StreamhubError } from '../core/errors.js';
import { checkEventType } from '../core/names.js';
import { toJsonText } from '../core/payload.js';
import { DEFAULT_EVENT_TYPE, type EventInput } from '../core/types.js';

/** One event of `POST /v1/streams/{id}/events`; `event` is checked here, not coerced by Ajv. */
interface AppendedEvent {
  readonly data?: unknown;
  readonly event?: unknown;
}

export type AppendBody = AppendedEvent & { readonly events?: readonly AppendedEvent[] };

/** The events of `{"data", "event"?}` or `{"events": [...]}`, in order. */
export function appendedEvents(body: AppendBody): EventInput[] {
  const events = body.events ?? [body];
  if (body.events !== undefined && (body.data !== undefined || body.event !== undefined)) {
    throw new StreamhubError(
      'invalid',
      'invalid_request',
      'send either "data" or "events", not both',
    );
  }
  return events.map((event) => ({
    event: event.event === undefined ? DEFAULT_EVENT_TYPE : checkEventType(event.event),
    data: toJsonText(event.data),
  }));
}
