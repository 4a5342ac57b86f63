/**
 * The access token field. A server run with AUTH_JWT_SECRET (or a public key) needs a token for
 * everything the page calls; it is kept in localStorage and read at each request, so a token
 * saved here applies to the chat, the topic console and the status strip from their next one.
 */

const STORAGE_KEY = 'streamhub-demo.token';

/** The saved token, or '' for none (the client library then sends no credentials). */
export function accessToken() {
  return localStorage.getItem(STORAGE_KEY) ?? '';
}

/** `Authorization: Bearer` with the saved token, when there is one. */
export function authHeaders() {
  const token = accessToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/**
 * Why a 401 happened, in words: no token, or a token the server refused.
 * @param {string} detail the server's message
 */
export function unauthorizedText(detail) {
  return accessToken()
    ? `The access token was refused (${detail}): enter a valid one under "Access token".`
    : 'This server needs an access token: enter one under "Access token".';
}

export function startTokenField() {
  const form = /** @type {HTMLFormElement} */ (document.getElementById('token-form'));
  const input = /** @type {HTMLInputElement} */ (document.getElementById('access-token'));
  const note = /** @type {HTMLElement} */ (document.getElementById('token-note'));
  input.value = accessToken();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token) localStorage.setItem(STORAGE_KEY, token);
    else localStorage.removeItem(STORAGE_KEY);
    note.textContent = token ? 'Saved.' : 'Cleared.';
  });
}
