/** Small helpers the page's modules share. */

/** The element with this id; the page's markup guarantees it exists. */
export const byId = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/** A failure as a line of text. @param {unknown} error */
export function describe(error) {
  return error instanceof Error ? error.message : String(error);
}
