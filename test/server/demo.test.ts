import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { mockReply } from '../../src/llm/mock.js';
import { CLIENT_DIR } from '../../src/server/demo/plugin.js';
import type { RunningServer } from '../../src/server/server.js';
import { launchChromium } from '../helpers/chromium.js';
import { getJson, request, uniqueTopic } from '../helpers/http.js';
import { loadParseMarkdown, visibleText } from '../helpers/markdown.js';
import { PATIENCE_MS } from '../helpers/patience.js';
import { publish, startTestServer } from '../helpers/server.js';

const AUTH_SECRET = 'streamhub-demo-auth-test-secret-0123456789';

/** Set to a path (e.g. docs/demo.png) to save the mid-reply screenshot there. */
const SCREENSHOT = process.env.STREAMHUB_DEMO_SCREENSHOT;
/** Slow enough to act in the middle of a reply: 100+ tokens last 4 s. */
const TOKENS_PER_SEC = 25;
const LONG_REPLY_TOKENS = 100;

let server: RunningServer;
let browser: Browser;
const parseMarkdown = await loadParseMarkdown();

before(async () => {
  server = await startTestServer({ MOCK_TOKENS_PER_SEC: String(TOKENS_PER_SEC) });
});

after(() => server?.shutdown());

/** A first question, starting with `start`, whose mock reply `suits`. */
function questionWhoseReply(
  start: string,
  suits: (tokens: readonly string[]) => boolean,
): { question: string; reply: string } {
  for (let n = 1; ; n++) {
    const question = `${start}, part ${n}`;
    const tokens = mockReply([{ role: 'user', content: question }]);
    if (suits(tokens)) return { question, reply: tokens.join('') };
  }
}

/** A first question whose mock reply is long enough to reload, stop or take over half-way. */
function longQuestion(topic: string): { question: string; reply: string } {
  return questionWhoseReply(
    `Tell me about ${topic}`,
    (tokens) => tokens.length >= LONG_REPLY_TOKENS,
  );
}

/** Another (blank) tab in the same browser profile; `openDemo` loads the page in it. */
type NewTab = () => Promise<Page>;

async function openDemo(page: Page): Promise<Page> {
  await page.goto(`${server.url}/`);
  return page;
}

/**
 * Runs `run` on the demo page in a fresh browser profile (its own localStorage, so its own chat
 * session); `newTab` opens more tabs. An error in any tab's page or console fails the test.
 */
async function onDemoPage(run: (page: Page, newTab: NewTab) => Promise<void>): Promise<void> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
  context.setDefaultTimeout(PATIENCE_MS);
  const errors: Error[] = [];
  const newTab = async () => {
    const page = await context.newPage();
    page.on('pageerror', (error) => errors.push(error));
    // Failed requests (a missing module, a 404) and CSP violations are console errors.
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(new Error(message.text()));
    });
    return page;
  };
  try {
    await run(await openDemo(await newTab()), newTab);
  } finally {
    await context.close();
  }
  assert.deepEqual(errors, []);
}

async function subscribeOnPage(page: Page, topic: string): Promise<void> {
  await page.fill('#topic-name', topic);
  await page.click('#topic-subscribe');
  await page.waitForSelector('#topic-state[data-state="open"]');
}

async function ask(page: Page, question: string): Promise<void> {
  await page.fill('#chat-input', question);
  await page.press('#chat-input', 'Enter');
}

const REPLY = '#chat-log > li:last-child .reply';

/** The text of the first element `selector` matches. */
async function textOf(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).first().textContent()) ?? '';
}

/** The reply's Markdown as the page holds it (its text as streamed so far). */
async function replyMarkdown(page: Page): Promise<string> {
  return (await page.locator(REPLY).getAttribute('data-markdown')) ?? '';
}

/** Waits until the reply on the page holds at least `words` words. */
async function waitForWords(page: Page, words: number): Promise<void> {
  await page.waitForFunction(
    ([selector, count]) =>
      (document.querySelector<HTMLElement>(selector)?.dataset.markdown?.split(/\s+/).length ?? 0) >=
      count,
    [REPLY, words] as const,
  );
}

async function waitForChatState(page: Page, state: string): Promise<void> {
  await page.waitForSelector(`#chat-status[data-state="${state}"]`);
}

interface SessionView {
  status: string;
  messages: { role: string; content: string }[];
}

async function sessionOnServer(page: Page): Promise<SessionView> {
  const sessionId = await textOf(page, '#chat-session');
  return getJson(`${server.url}/v1/sessions/${encodeURIComponent(sessionId)}`);
}

/** The page holds the stored reply and shows it rendered; returns its Markdown. */
async function assertPageShowsStoredReply(page: Page): Promise<string> {
  const markdown = await replyMarkdown(page);
  const session = await sessionOnServer(page);
  assert.equal(session.status, 'idle');
  assert.equal(session.messages.at(-1)?.role, 'assistant');
  assert.equal(markdown, session.messages.at(-1)?.content);
  assert.equal(await textOf(page, REPLY), visibleText(parseMarkdown(markdown)));
  return markdown;
}

test('the client library the page imports is browser-ready: relative imports only', () => {
  const files = readdirSync(CLIENT_DIR).filter((name) => name.endsWith('.js'));
  assert.ok(files.includes('index.js') && files.includes('chat.js'), files.join(', '));
  const imports = /^(?:import|export)[^'";]*?from '([^']+)'|^import '([^']+)'/gm;
  for (const name of files) {
    const code = readFileSync(join(CLIENT_DIR, name), 'utf8');
    for (const [, from, bare] of code.matchAll(imports)) {
      assert.match(from ?? bare ?? '', /^\.\/[\w-]+\.js$/, `${name} imports ${from ?? bare}`);
    }
    assert.doesNotMatch(code, /\bimport\(|\brequire\(/, `${name} loads modules dynamically`);
  }
});

test('GET /v1/stats summarises the process in JSON', async () => {
  const first = await request(`${server.url}/v1/stats`);
  assert.equal(first.status, 200, first.text);
  const stats = first.json as Record<string, unknown>;
  assert.deepEqual(Object.keys(stats).sort(), [
    'connections',
    'events',
    'generations',
    'per_second',
    'subscribers',
    'uptime_s',
  ]);
  assert.deepEqual(Object.keys(stats.connections as object).sort(), ['sse', 'ws']);
  await publish(server.url, uniqueTopic('demo.stats'), { n: 1 });
  const second = (await request(`${server.url}/v1/stats`)).json as typeof stats;
  const published = (json: typeof stats) => (json.events as { published: number }).published;
  assert.equal(published(second), published(stats) + 1);
});

describe('demo page in Chromium', () => {
  before(async () => {
    browser = await launchChromium();
  });
  after(() => browser?.close());

  test('a reply reloaded mid-way continues where it was: no repeated or missing text', async () => {
    const { question, reply } = longQuestion('reloading');
    await onDemoPage(async (page) => {
      await ask(page, question);
      await waitForWords(page, 8);
      const before = await replyMarkdown(page);
      await page.reload();
      const restored = await replyMarkdown(page);
      assert.ok(restored.startsWith(before), `${JSON.stringify(restored)} after ${before}`);
      await waitForChatState(page, 'done');
      const text = await assertPageShowsStoredReply(page);
      assert.equal(text, reply);
      assert.ok(text.length > restored.length, 'the reply was still running at the reload');
      assert.equal(await page.locator('#chat-log > li').count(), 1);
    });
  });

  test('a second tab takes the reply over; the first shows it and can take it back', async () => {
    const { question, reply } = longQuestion('two tabs');
    await onDemoPage(async (first, newTab) => {
      // Opened beforehand: under load, the reply must still run after the tabs' back and forth.
      const second = await newTab();
      await ask(first, question);
      await waitForWords(first, 3);
      await openDemo(second);
      await waitForChatState(first, 'superseded');
      assert.match(await textOf(first, '#chat-status'), /another tab/);
      assert.ok(await first.locator('#chat-takeback').isVisible());
      assert.equal(await second.locator('#chat-status').getAttribute('data-state'), 'streaming');

      await first.click('#chat-takeback');
      await waitForChatState(second, 'superseded');
      await waitForChatState(first, 'done');
      assert.equal(await assertPageShowsStoredReply(first), reply);
      // The superseded tab follows the conversation through the shared storage.
      await waitForChatState(second, 'done');
      assert.equal(await replyMarkdown(second), reply);
    });
  });

  test('Stop cancels the reply: the page ends cancelled and the server is idle', async () => {
    const { question, reply } = longQuestion('stopping');
    await onDemoPage(async (page) => {
      await ask(page, question);
      await waitForWords(page, 5);
      await page.click('#chat-stop');
      await waitForChatState(page, 'cancelled');
      const text = await assertPageShowsStoredReply(page);
      assert.ok(reply.startsWith(text) && text.length < reply.length, text);
      assert.ok(await page.locator('#chat-send').isEnabled());
    });
  });

  test('replies show as Markdown, and markup in them as text', async () => {
    const markup = '<img src=x onerror=alert(1)> <script>alert(2)</script>';
    // The mock model quotes the question's first words, the markup among them.
    const { question } = questionWhoseReply(
      markup,
      (tokens) => tokens.join('').includes('\n- ') && tokens.join('').includes('```'),
    );
    await onDemoPage(async (page) => {
      await ask(page, question);
      await waitForChatState(page, 'done');
      const text = await assertPageShowsStoredReply(page);
      assert.ok(text.includes(markup), text);
      const reply = page.locator(REPLY);
      assert.equal(await reply.locator('ul > li').count(), 3);
      assert.equal(await reply.locator('pre > code').count(), 1);
      assert.ok((await reply.locator('p code').count()) >= 1);
      assert.ok((await textOf(page, REPLY)).includes(markup));
      assert.equal(await page.locator('#chat-log img, #chat-log script').count(), 0);
    });
  });

  test('topic console: subscribe, publish JSON, see events with their ids live', async () => {
    const topic = uniqueTopic('demo');
    await onDemoPage(async (page) => {
      await subscribeOnPage(page, topic);

      await page.fill('#publish-event', 'greeting');
      await page.fill('#publish-data', '{"hello": "from the page"}');
      await page.click('#publish-send');
      const id = await page.locator('#publish-result[data-id]').getAttribute('data-id');
      const row = await textOf(page, `#topic-events li[data-id="${id}"]`);
      assert.equal(row, `${id} greeting {"hello":"from the page"}`);

      const outside = await publish(server.url, topic, { from: 'outside' });
      const outsideRow = await textOf(page, `#topic-events li[data-id="${outside.id}"]`);
      assert.equal(outsideRow, `${outside.id} message {"from":"outside"}`);

      await page.fill('#publish-data', '{not json');
      await page.click('#publish-send');
      assert.match(await textOf(page, '#publish-result'), /^Not valid JSON/);

      // The status strip counts this page's own streams.
      await page.waitForFunction(
        () => Number(document.querySelector('[data-stat="subscribers"]')?.textContent) >= 1,
      );
      await page.click('#topic-subscribe');
      await page.waitForSelector('#topic-state[data-state="closed"]');
    });
  });

  test('the page mid-reply (saved when STREAMHUB_DEMO_SCREENSHOT names a file)', async () => {
    const topic = uniqueTopic('demo.screenshot');
    await onDemoPage(async (page) => {
      await subscribeOnPage(page, topic);
      for (const data of [
        { symbol: 'ACME', price: 41.5 },
        { symbol: 'ACME', price: 42 },
      ]) {
        await publish(server.url, topic, data, { event: 'tick' });
      }
      await page.waitForSelector('#topic-events li:nth-child(2)');
      // Half of a reply of 120+ words: the paragraph and the list as it streams.
      const { question } = questionWhoseReply(
        'Tell me about the demo',
        (tokens) => tokens.length >= 120,
      );
      await ask(page, question);
      await waitForWords(page, 60);
      // The status strip has rates once it has two samples a second apart.
      await page.waitForFunction(
        () => Number(document.querySelector('[data-stat="deltas"]')?.textContent) > 0,
      );
      const image = await page.screenshot({ fullPage: true });
      assert.equal(image.subarray(1, 4).toString(), 'PNG');
      if (SCREENSHOT) writeFileSync(SCREENSHOT, image);
      await page.click('#chat-stop');
      await waitForChatState(page, 'cancelled');
    });
  });

  test('with auth on: asks for an access token, then works with one', async () => {
    const authServer = await startTestServer({ AUTH_JWT_SECRET: AUTH_SECRET });
    const token = await new SignJWT({ streamhub: { publish: ['**'], subscribe: ['**'] } })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('demo-user')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(AUTH_SECRET));
    const context = await browser.newContext();
    context.setDefaultTimeout(PATIENCE_MS);
    const errors: string[] = [];
    try {
      const page = await context.newPage();
      page.on('pageerror', (error) => errors.push(error.message));
      // The browser logs each refused request (the 401s this test expects) as a console error.
      page.on('console', (message) => {
        const text = message.text();
        if (message.type() === 'error' && !text.includes('status of 401')) errors.push(text);
      });
      await page.goto(`${authServer.url}/`);
      const needsToken = /This server needs an access token/;
      await page.waitForSelector('[data-stat="error"]:not([hidden])');
      assert.match(await textOf(page, '[data-stat="error"]'), needsToken);
      const topic = uniqueTopic('demo-auth');
      await page.fill('#topic-name', topic);
      await page.click('#topic-subscribe');
      await page.waitForFunction(() =>
        document.querySelector('#topic-state')?.textContent?.includes('needs an access token'),
      );

      await page.fill('#access-token', token);
      await page.click('#token-save');
      await page.waitForSelector('[data-stat="error"]', { state: 'hidden' });
      await subscribeOnPage(page, topic);
      const outside = await publish(authServer.url, topic, { with: 'token' }, { token });
      await page.waitForSelector(`#topic-events li[data-id="${outside.id}"]`);
      await ask(page, 'hello with a token');
      await waitForChatState(page, 'done');

      await page.reload();
      assert.equal(await page.inputValue('#access-token'), token);
    } finally {
      await context.close();
      await authServer.shutdown();
    }
    assert.deepEqual(errors, []);
  });
});
