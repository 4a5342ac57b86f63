/** The topic console: subscribe to a topic, publish JSON to it, watch events arrive live. */
import { publish, subscribe } from '/client/index.js';
import { accessToken } from './access-token.js';
import { byId, describe } from './dom.js';

/** Older rows are dropped beyond this, so a busy topic cannot grow the page forever. */
const MAX_ROWS = 200;

const STATE_TEXT = {
  connecting: 'connecting…',
  open: 'open',
  reconnecting: 'reconnecting…',
  closed: 'not subscribed',
};

/** @param {string} baseUrl */
export function startTopicConsole(baseUrl) {
  const topicInput = byId('topic-name');
  const fromStart = byId('topic-from-start');
  const subscribeButton = byId('topic-subscribe');
  const stateLabel = byId('topic-state');
  const events = byId('topic-events');
  const dataInput = byId('publish-data');
  const result = byId('publish-result');

  /** @type {import('/client/index.js').Subscription | undefined} */
  let subscription;
  /** Which subscription is current: late reports of a closed one are ignored. */
  let generation = 0;

  /** @param {string} state @param {string} [detail] */
  const showState = (state, detail) => {
    stateLabel.dataset.state = state;
    stateLabel.textContent = detail ? `${STATE_TEXT[state]} (${detail})` : STATE_TEXT[state];
  };

  /** @param {Node[]} parts */
  const addRow = (...parts) => {
    const row = document.createElement('li');
    row.append(...parts);
    events.append(row);
    while (events.childElementCount > MAX_ROWS) events.firstElementChild.remove();
    events.scrollTop = events.scrollHeight;
    return row;
  };

  /** @param {string} text @param {string} className */
  const code = (text, className) => {
    const element = document.createElement('code');
    element.className = className;
    element.textContent = text;
    return element;
  };

  /** @param {boolean} subscribed */
  const showSubscribed = (subscribed) => {
    subscribeButton.textContent = subscribed ? 'Unsubscribe' : 'Subscribe';
    topicInput.disabled = subscribed;
    fromStart.disabled = subscribed;
  };

  const start = () => {
    const mine = ++generation;
    showSubscribed(true);
    subscription = subscribe(baseUrl, topicInput.value, {
      fromStart: fromStart.checked,
      token: accessToken,
      onEvent: ({ id, event, data }) => {
        const row = addRow(code(id, 'id'), ` ${event} `, code(JSON.stringify(data), 'data'));
        row.dataset.id = id;
      },
      onReset: ({ reason }) => addRow(document.createTextNode(`reset (${reason}): replaying`)),
      onStateChange: (state, info) => {
        if (mine === generation) showState(state, info.error && describe(info.error));
      },
      // Refused for good (e.g. a bad topic name): the state shows why.
      onError: () => {
        if (mine === generation) showSubscribed(false);
      },
    });
  };

  const stop = () => {
    generation++;
    subscription?.close();
    subscription = undefined;
    showSubscribed(false);
    showState('closed');
  };

  byId('topic-form').addEventListener('submit', (/** @type {Event} */ event) => {
    event.preventDefault();
    if (subscription === undefined || subscription.state === 'closed') start();
    else stop();
  });

  byId('publish-form').addEventListener('submit', async (/** @type {Event} */ event) => {
    event.preventDefault();
    let data;
    try {
      data = JSON.parse(dataInput.value);
      dataInput.removeAttribute('aria-invalid');
    } catch (error) {
      dataInput.setAttribute('aria-invalid', 'true');
      result.textContent = `Not valid JSON: ${describe(error)}`;
      return;
    }
    const type = byId('publish-event').value.trim();
    try {
      const options = { token: accessToken, ...(type ? { event: type } : {}) };
      const published = await publish(baseUrl, topicInput.value, data, options);
      result.textContent = `Published ${published.id}`;
      result.dataset.id = published.id;
    } catch (error) {
      result.textContent = `Not published: ${describe(error)}`;
    }
  });
}
