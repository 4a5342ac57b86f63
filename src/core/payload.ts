import { StreamhubError } from './errors.js';

/** The payload as JSON text, stored and sent as is from here on. */
export function toJsonText(data: unknown): string {
  if (data === undefined) {
    throw new StreamhubError('invalid', 'missing_data', '"data" is required (any JSON value)');
  }
  try {
    return JSON.stringify(data);
  } catch {
    // Only nesting deep enough to exhaust the stack gets here: parsed JSON has no cycles.
    throw new StreamhubError('invalid', 'payload_too_deep', '"data" is nested too deeply');
  }
}
