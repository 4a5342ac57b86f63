/** Small helpers the page's modules share. */
import { unauthorizedText } from './access-token.js';

/** The element with this id; the page's markup guarantees it exists. */
export const byId = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/** A failure as a line of text; a 401 says what to do about it. @param {unknown} error */
export function describe(error) {
  const message = error instanceof Error ? error.message : String(error);
  const { status } = /** @type {{ status?: unknown }} */ (error ?? {});
  return status === 401 ? unauthorizedText(message) : message;
}
