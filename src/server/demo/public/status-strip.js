/** The status strip: this process's `GET /v1/stats`, refreshed every second while visible. */
import { authHeaders, unauthorizedText } from './access-token.js';
import { describe } from './dom.js';

const INTERVAL_MS = 1000;

/** @param {HTMLElement} root the element holding the `data-stat` fields */
export function startStatusStrip(root) {
  /** @param {string} name @param {string} text */
  const show = (name, text) => {
    const field = root.querySelector(`[data-stat="${name}"]`);
    if (field) field.textContent = text;
  };
  const error = /** @type {HTMLElement} */ (root.querySelector('[data-stat="error"]'));

  const refresh = async () => {
    try {
      const response = await fetch('/v1/stats', {
        headers: { accept: 'application/json', ...authHeaders() },
      });
      if (response.status === 401) {
        error.textContent = unauthorizedText('HTTP 401');
        error.hidden = false;
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const stats = await response.json();
      show('connections', String(stats.connections.sse + stats.connections.ws));
      show('subscribers', String(stats.subscribers));
      show('generations', String(stats.generations));
      for (const name of ['published', 'delivered', 'deltas']) {
        show(name, stats.per_second === null ? '–' : String(stats.per_second[name]));
      }
      error.hidden = true;
    } catch (caught) {
      error.textContent = `Server unreachable (${describe(caught)})`;
      error.hidden = false;
    }
  };

  const loop = async () => {
    if (!document.hidden) await refresh();
    setTimeout(loop, INTERVAL_MS);
  };
  void loop();
}
