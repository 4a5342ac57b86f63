/**
 * The chat panel. The conversation lives in localStorage, each reply with the id of the last
 * event its text includes, so a refreshed page resumes right after it: nothing repeated, nothing
 * missing. Tabs share that storage; the one following the reply keeps it current.
 */
import { createChat } from '/client/index.js';
import { accessToken } from './access-token.js';
import { byId, describe } from './dom.js';
import { renderMarkdown } from './markdown.js';

const STORAGE_KEY = 'streamhub-demo.chat';

/**
 * @typedef {{
 *   question: string,
 *   reply: string,
 *   status: 'streaming' | 'done' | 'cancelled' | 'error',
 *   lastEventId?: string,
 *   turn?: number,
 *   error?: string,
 * }} Turn
 * @typedef {{ sessionId: string, turns: Turn[] }} ChatState
 */

/** @param {string} baseUrl */
export function startChatPanel(baseUrl) {
  const chat = createChat(baseUrl, { token: accessToken });
  const log = byId('chat-log');
  const status = byId('chat-status');
  const input = byId('chat-input');
  const form = byId('chat-form');
  const takeBack = byId('chat-takeback');

  let state = load();
  /** The reply this tab follows, if any. */
  /** @type {import('/client/index.js').ReplyStream | undefined} */
  let following;
  /** Another tab took the reply over from this one. */
  let superseded = false;
  /** A failure that left no trace in the conversation, shown until the next question. */
  let notice = '';
  /** The element the reply being followed grows in: the last turn's. */
  /** @type {HTMLElement | undefined} */
  let replyElement;
  /** A frame will show the followed reply's latest text. */
  let frameRequested = false;

  const save = () => localStorage.setItem(STORAGE_KEY, JSON.stringify(state));
  const lastTurn = () => state.turns[state.turns.length - 1];

  const render = () => {
    byId('chat-session').textContent = state.sessionId;
    log.replaceChildren(...state.turns.map(turnElement));
    replyElement = log.lastElementChild?.querySelector('.reply') ?? undefined;
    log.scrollTop = log.scrollHeight;
    showStatus();
  };

  /** Keeps the latest text in view, unless the reader scrolled up to read something else. */
  const showFollowedReply = () => {
    const last = lastTurn();
    if (replyElement === undefined || last === undefined) return;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
    showReply(replyElement, last.reply);
    if (atBottom) log.scrollTop = log.scrollHeight;
  };

  /** A burst of deltas (a resume) is rendered once, not once per delta. */
  const showFollowedReplySoon = () => {
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(() => {
      frameRequested = false;
      showFollowedReply();
    });
  };

  const showStatus = () => {
    const last = lastTurn();
    const elsewhere = following === undefined && last?.status === 'streaming';
    let [kind, text] = ['idle', 'Ask something.'];
    if (notice) [kind, text] = ['error', notice];
    else if (superseded && elsewhere) {
      [kind, text] = ['superseded', 'Superseded: another tab took this reply over.'];
    } else if (elsewhere) [kind, text] = ['elsewhere', 'Replying in another tab…'];
    else if (following !== undefined) [kind, text] = ['streaming', 'Replying…'];
    else if (last?.status === 'done') [kind, text] = ['done', 'Done.'];
    else if (last?.status === 'cancelled') [kind, text] = ['cancelled', 'Stopped.'];
    else if (last?.status === 'error') [kind, text] = ['error', `Failed: ${last.error}`];
    status.dataset.state = kind;
    status.textContent = text;
    takeBack.hidden = !elsewhere;
    byId('chat-send').disabled = last?.status === 'streaming';
    byId('chat-stop').disabled = last?.status !== 'streaming';
    byId('chat-new').disabled = last?.status === 'streaming';
  };

  /**
   * Reads `stream` into `turn`, saving text and event id together after each event, so that the
   * storage always holds a consistent point to resume from.
   * @param {import('/client/index.js').ReplyStream} stream @param {Turn} turn
   */
  const follow = async (stream, turn) => {
    following = stream;
    superseded = false;
    showStatus();
    const previous = state.turns[state.turns.indexOf(turn) - 1];
    try {
      for await (const event of stream) {
        if (event.type === 'abort' && event.reason === 'superseded') {
          superseded = true;
          break;
        }
        if (event.type === 'start' && previous?.turn !== undefined && event.turn <= previous.turn) {
          // Resumed without an id, and the latest reply is the previous one: the question
          // never reached the server (the page was closed while sending it).
          throw new Error('the question did not reach the server; send it again');
        }
        if (event.id !== undefined) turn.lastEventId = event.id;
        if (event.type === 'start') turn.turn = event.turn;
        if (event.type === 'delta') {
          turn.reply += event.content;
          showFollowedReplySoon();
        }
        if (event.type === 'done') turn.status = 'done';
        if (event.type === 'abort') turn.status = 'cancelled';
        if (event.type === 'error') Object.assign(turn, { status: 'error', error: event.message });
        save();
      }
    } catch (error) {
      if (following !== stream) return;
      if (/** @type {{ code?: string }} */ (error).code === 'session_busy') {
        // Not taken: the question goes back to the input.
        state.turns.pop();
        log.lastElementChild?.remove();
        input.value ||= turn.question;
        notice = describe(error);
      } else Object.assign(turn, { status: 'error', error: describe(error) });
      save();
    } finally {
      if (following === stream) {
        following = undefined;
        showFollowedReply();
        const note = noteElement(turn);
        if (note !== undefined) replyElement?.after(note);
        if (replyElement?.parentElement) replyElement.parentElement.dataset.status = turn.status;
        showStatus();
      }
    }
  };

  /** Shows what the storage holds and follows its reply if one is running. */
  const restore = () => {
    following?.close();
    following = undefined;
    notice = '';
    state = load();
    render();
    const last = lastTurn();
    if (last?.status === 'streaming') {
      void follow(chat.resume(state.sessionId, { lastEventId: last.lastEventId }), last);
    }
  };

  form.addEventListener('submit', (/** @type {Event} */ event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (question === '' || lastTurn()?.status === 'streaming') return;
    input.value = '';
    notice = '';
    /** @type {Turn} */
    const turn = { question, reply: '', status: 'streaming' };
    state.turns.push(turn);
    save();
    render();
    void follow(chat.send(state.sessionId, question), turn);
  });

  input.addEventListener('keydown', (/** @type {KeyboardEvent} */ event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  const stop = async () => {
    try {
      await chat.cancel(state.sessionId);
    } catch (error) {
      // `not_generating`: it ended meanwhile, and the stream says how.
      if (/** @type {{ code?: string }} */ (error).code !== 'not_generating') {
        notice = `Could not stop: ${describe(error)}`;
        showStatus();
      }
    }
  };
  byId('chat-stop').addEventListener('click', stop);
  form.addEventListener('keydown', (/** @type {KeyboardEvent} */ event) => {
    if (event.key === 'Escape' && lastTurn()?.status === 'streaming') void stop();
  });

  takeBack.addEventListener('click', restore);

  byId('chat-new').addEventListener('click', () => {
    state = { sessionId: newSessionId(), turns: [] };
    save();
    render();
    input.focus();
  });

  // Another tab changed the conversation: show it, unless this tab is the one writing it.
  window.addEventListener('storage', (/** @type {StorageEvent} */ event) => {
    if (event.key !== STORAGE_KEY || following !== undefined) return;
    state = load();
    render();
  });

  restore();
}

/** @returns {ChatState} */
function load() {
  try {
    const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null');
    if (typeof stored?.sessionId === 'string' && Array.isArray(stored.turns)) return stored;
  } catch {
    // Unreadable: start over.
  }
  return { sessionId: newSessionId(), turns: [] };
}

/** Random, and within the session id alphabet (docs/api.md §0). */
function newSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `demo-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

/** @param {Turn} turn */
function turnElement(turn) {
  const item = document.createElement('li');
  item.dataset.status = turn.status;
  const question = document.createElement('p');
  question.className = 'question';
  question.textContent = turn.question;
  const reply = document.createElement('div');
  reply.className = 'reply';
  showReply(reply, turn.reply);
  item.append(question, reply);
  const note = noteElement(turn);
  if (note !== undefined) item.append(note);
  return item;
}

/**
 * The reply's Markdown rendered, and as it is in `data-markdown`, the text to compare with the
 * stored reply.
 * @param {HTMLElement} element @param {string} text
 */
function showReply(element, text) {
  element.dataset.markdown = text;
  element.replaceChildren(...renderMarkdown(text));
}

/** How a reply ended, unless it ended well. @param {Turn} turn */
function noteElement(turn) {
  if (turn.status !== 'cancelled' && turn.status !== 'error') return undefined;
  const note = document.createElement('p');
  note.className = 'meta';
  note.textContent = turn.status === 'cancelled' ? '(stopped)' : `(failed: ${turn.error})`;
  return note;
}
