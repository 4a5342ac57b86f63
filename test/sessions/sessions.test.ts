import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { mockReply } from '../../src/llm/mock.js';
import type { RunningServer } from '../../src/server/server.js';
import { type Settings, startTestServer, waitFor } from '../helpers/server.js';
import { RawSseClient, type SseMessage } from '../helpers/sse-client.js';

let sequence = 0;
const newSessionId = () => `s-${process.pid}-${++sequence}`;

function chat(server: RunningServer, body: Record<string, unknown>): RawSseClient {
  return new RawSseClient(`${server.url}/v1/chat`, {}, body);
}

function stream(server: RunningServer, sessionId: string, lastEventId?: string): RawSseClient {
  const headers: Record<string, string> = lastEventId ? { 'last-event-id': lastEventId } : {};
  return new RawSseClient(`${server.url}/v1/sessions/${sessionId}/stream`, headers);
}

const deltas = (messages: readonly SseMessage[]) =>
  messages
    .filter((m) => m.event === 'delta')
    .map((m) => (JSON.parse(m.data) as { content: string }).content)
    .join('');

const last = (client: RawSseClient) => client.messages[client.messages.length - 1];

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json().catch(() => null) };
}

/** Only error answers are inspected: `{"error": {"code", "message"}}`. */
type ErrorAnswer = { error: { code: string; message: string } };

async function post(
  url: string,
  body?: unknown,
): Promise<{ status: number; headers: Headers; body: ErrorAnswer }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const { status, headers } = response;
  return { status, headers, body: await response.json().catch(() => null) };
}

async function session(server: RunningServer, id: string) {
  return (await getJson(`${server.url}/v1/sessions/${id}`)).body as {
    status: string;
    messages: { role: string; content: string }[];
  };
}

async function untilIdle(server: RunningServer, id: string) {
  for (let attempt = 0; attempt < 500; attempt++) {
    if ((await session(server, id)).status === 'idle') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`session ${id} never became idle`);
}

/** One server per describe block; the proxy lets tests name it before it has started. */
function withServer(settings: Settings, body: (server: RunningServer) => void): void {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer(settings);
  });
  after(() => server.shutdown());
  body(
    new Proxy({} as RunningServer, {
      get: (_target, property) => Reflect.get(server, property, server),
    }),
  );
}

describe('chat sessions, fast model', () => {
  withServer({ MOCK_TOKENS_PER_SEC: '2000' }, (server) => {
    test('a chat streams start, deltas in order and done, each with an id', async () => {
      const id = newSessionId();
      const client = chat(server, { session_id: id, content: 'hello there' });
      await client.closed;
      assert.equal(client.status, 200);
      assert.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8');
      const events = client.messages;
      assert.equal(events[0]?.event, 'start');
      assert.deepEqual(JSON.parse(events[0]?.data ?? ''), {
        session_id: id,
        turn: 1,
        model: 'streamhub-mock',
      });
      assert.equal(last(client)?.event, 'done');
      assert.equal(JSON.parse(last(client)?.data ?? '').finish_reason, 'stop');
      assert.ok(events.every((event) => event.id !== undefined));
      const expected = mockReply([{ role: 'user', content: 'hello there' }]).join('');
      assert.equal(deltas(events), expected);
      assert.deepEqual((await session(server, id)).messages, [
        { role: 'user', content: 'hello there' },
        { role: 'assistant', content: expected },
      ]);
    });

    test('the next turn sends the whole conversation to the model', async () => {
      const id = newSessionId();
      await chat(server, { session_id: id, content: 'first', system: 'be brief' }).closed;
      const second = chat(server, { session_id: id, content: 'second' });
      await second.closed;
      const view = await session(server, id);
      const firstReply = view.messages[1]?.content ?? '';
      const expected = mockReply([
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'first' },
        { role: 'assistant', content: firstReply },
        { role: 'user', content: 'second' },
      ]).join('');
      assert.equal(deltas(second.messages), expected);
      assert.equal(JSON.parse(second.messages[0]?.data ?? '').turn, 2);
      assert.equal(view.messages.length, 4);
    });

    test('max_tokens cuts the reply with finish_reason length', async () => {
      const client = chat(server, { session_id: newSessionId(), content: 'x', max_tokens: 3 });
      await client.closed;
      assert.equal(client.messages.filter((m) => m.event === 'delta').length, 3);
      assert.equal(JSON.parse(last(client)?.data ?? '').finish_reason, 'length');
    });

    test('resuming a finished reply replays it to done; an earlier turn id restarts the latest', async () => {
      const id = newSessionId();
      const firstTurn = chat(server, { session_id: id, content: 'one' });
      await firstTurn.closed;
      const secondTurn = chat(server, { session_id: id, content: 'two' });
      await secondTurn.closed;
      const replay = stream(server, id, firstTurn.messages[3]?.id);
      await replay.closed;
      assert.deepEqual(replay.messages, secondTurn.messages);
      const fromMiddle = stream(server, id, secondTurn.messages[5]?.id);
      await fromMiddle.closed;
      assert.deepEqual(fromMiddle.messages, secondTurn.messages.slice(6));
    });

    test('resuming with the id of the final event gets that event again and closes', async () => {
      const id = newSessionId();
      const finished = chat(server, { session_id: id, content: 'x', max_tokens: 2 });
      await finished.closed;
      const resumed = stream(server, id, last(finished)?.id);
      await resumed.closed;
      assert.deepEqual(resumed.messages, [last(finished)]);
    });

    test('invalid requests are answered 400 and unknown sessions 404', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ session_id: 'bad id', content: 'x' }, 'invalid_session_id'],
        [{ session_id: 'a'.repeat(129), content: 'x' }, 'invalid_session_id'],
        [{ session_id: 'ok', content: '' }, 'invalid_request'],
        [{ session_id: 'ok' }, 'invalid_request'],
        [{ session_id: 'ok', content: 'x', temperature: 5 }, 'invalid_request'],
        [{ session_id: 'ok', content: 'x', max_tokens: 0 }, 'invalid_request'],
        [{ session_id: 'ok', content: 'x', extra: 1 }, 'invalid_request'],
      ];
      for (const [body, code] of cases) {
        const response = await post(`${server.url}/v1/chat`, body);
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.equal(response.body.error.code, code, JSON.stringify(body));
      }
      const missing = 'never-created';
      assert.equal((await getJson(`${server.url}/v1/sessions/${missing}`)).status, 404);
      const resume = await post(`${server.url}/v1/chat/resume`, { session_id: missing });
      assert.equal(resume.status, 404);
      assert.equal(resume.body.error.code, 'session_not_found');
      assert.equal((await post(`${server.url}/v1/sessions/${missing}/cancel`)).status, 404);
      const deleted = await fetch(`${server.url}/v1/sessions/${missing}`, { method: 'DELETE' });
      assert.equal(deleted.status, 404);
    });

    test('cancelling an idle session is a conflict', async () => {
      const id = newSessionId();
      await chat(server, { session_id: id, content: 'x' }).closed;
      const response = await post(`${server.url}/v1/sessions/${id}/cancel`);
      assert.equal(response.status, 409);
      assert.equal(response.body.error.code, 'not_generating');
    });
  });
});

describe('chat sessions, replies still streaming', () => {
  withServer({ MOCK_TOKENS_PER_SEC: '40' }, (server) => {
    test('a reply goes on without its client and a resume gets exactly the rest', async () => {
      const id = newSessionId();
      const first = chat(server, { session_id: id, content: 'tell me more' });
      await waitFor(() => first.messages.length >= 5, 'a few deltas');
      first.close();
      const seen = [...first.messages];
      const lastId = seen[seen.length - 1]?.id;
      // The body's last_event_id is honoured when no header is sent.
      const rest = new RawSseClient(
        `${server.url}/v1/chat/resume`,
        {},
        { session_id: id, last_event_id: lastId },
      );
      await rest.closed;
      const all = [...seen, ...rest.messages];
      assert.equal(new Set(all.map((m) => m.id)).size, all.length, 'no event twice');
      assert.equal(last(rest)?.event, 'done');
      const stored = (await session(server, id)).messages[1]?.content;
      assert.equal(deltas(all), stored);
    });

    test('refresh-style reconnect loops lose and repeat nothing', async () => {
      const id = newSessionId();
      const received: SseMessage[] = [];
      let client = chat(server, { session_id: id, content: 'a long answer please' });
      for (let reconnects = 0; ; reconnects++) {
        const before = received.length;
        const target = reconnects < 8 ? 2 : Number.POSITIVE_INFINITY;
        await Promise.race([
          client.closed,
          waitFor(() => client.messages.length >= target, 'more events', 10_000),
        ]);
        client.close();
        received.push(...client.messages);
        if (last(client)?.event === 'done') break;
        assert.ok(received.length > before || reconnects < 20, 'progress');
        client = stream(server, id, received[received.length - 1]?.id);
      }
      assert.equal(new Set(received.map((m) => m.id)).size, received.length);
      assert.equal(received[0]?.event, 'start');
      assert.equal(deltas(received), (await session(server, id)).messages[1]?.content);
    });

    test('a second chat while a reply runs is session_busy', async () => {
      const id = newSessionId();
      const running = chat(server, { session_id: id, content: 'x' });
      await waitFor(() => running.messages.length >= 2, 'the reply to start');
      const busy = await post(`${server.url}/v1/chat`, { session_id: id, content: 'y' });
      assert.equal(busy.status, 409);
      assert.equal(busy.body.error.code, 'session_busy');
      running.close();
      await post(`${server.url}/v1/sessions/${id}/cancel`);
    });

    test('a new stream takes the session over: the old one is told and closed', async () => {
      const id = newSessionId();
      const first = chat(server, { session_id: id, content: 'x' });
      await waitFor(() => first.messages.length >= 3, 'deltas');
      const second = stream(server, id);
      await first.closed;
      const superseded = last(first);
      assert.equal(superseded?.event, 'abort');
      assert.equal(superseded?.id, undefined, 'a per-connection frame carries no id');
      assert.deepEqual(JSON.parse(superseded?.data ?? ''), { reason: 'superseded' });
      await second.closed;
      assert.equal(last(second)?.event, 'done');
      assert.equal(second.messages[0]?.event, 'start', 'no id: the latest reply from its start');
    });

    test('cancel aborts the reply, keeps the partial text, and a resume ends with it too', async () => {
      const id = newSessionId();
      const client = chat(server, { session_id: id, content: 'x' });
      await waitFor(() => client.messages.length >= 4, 'deltas');
      const cancel = await post(`${server.url}/v1/sessions/${id}/cancel`);
      assert.equal(cancel.status, 202);
      await client.closed;
      assert.equal(last(client)?.event, 'abort');
      assert.deepEqual(JSON.parse(last(client)?.data ?? ''), { reason: 'cancelled' });
      assert.ok(last(client)?.id, 'the cancellation is stored');
      await untilIdle(server, id);
      const view = await session(server, id);
      assert.equal(view.messages[1]?.content, deltas(client.messages));
      const replay = stream(server, id);
      await replay.closed;
      assert.deepEqual(replay.messages, client.messages);
    });

    test('the session view includes the partial reply while generating', async () => {
      const id = newSessionId();
      const client = chat(server, { session_id: id, content: 'x' });
      await waitFor(() => client.messages.length >= 4, 'deltas');
      const view = await session(server, id);
      assert.equal(view.status, 'generating');
      assert.equal(view.messages[1]?.role, 'assistant');
      // The view may be ahead of what the client has read so far.
      const partial = view.messages[1]?.content ?? '!';
      await waitFor(
        () => deltas(client.messages).length >= partial.length,
        'the client to catch up',
      );
      assert.ok(deltas(client.messages).startsWith(partial));
      client.close();
      await post(`${server.url}/v1/sessions/${id}/cancel`);
    });

    test('deleting a session cancels its reply and forgets it', async () => {
      const id = newSessionId();
      const client = chat(server, { session_id: id, content: 'x' });
      await waitFor(() => client.messages.length >= 3, 'deltas');
      const deleted = await fetch(`${server.url}/v1/sessions/${id}`, { method: 'DELETE' });
      assert.equal(deleted.status, 204);
      await client.closed;
      assert.equal(last(client)?.event, 'abort');
      assert.equal((await getJson(`${server.url}/v1/sessions/${id}`)).status, 404);
      // The id is free again: a new conversation starts at turn 1.
      const fresh = chat(server, { session_id: id, content: 'again', max_tokens: 2 });
      await fresh.closed;
      assert.equal(JSON.parse(fresh.messages[0]?.data ?? '').turn, 1);
    });

    test('an EventSource on the stream endpoint follows the reply with its own reconnects', async () => {
      const id = newSessionId();
      const starter = chat(server, { session_id: id, content: 'x', max_tokens: 12 });
      await waitFor(() => starter.messages.length >= 2, 'the reply to start');
      starter.close();
      const source = new EventSource(`${server.url}/v1/sessions/${id}/stream`);
      const received: string[] = [];
      await new Promise<void>((resolve) => {
        source.addEventListener('delta', (event) => {
          received.push((JSON.parse(event.data) as { content: string }).content);
        });
        source.addEventListener('done', () => {
          source.close();
          resolve();
        });
      });
      assert.equal(received.join(''), (await session(server, id)).messages[1]?.content);
    });
  });
});

describe('chat sessions with several viewers', () => {
  withServer({ MOCK_TOKENS_PER_SEC: '100', SESSION_TAKEOVER: 'false' }, (server) => {
    test('SESSION_TAKEOVER=false lets every viewer follow the reply', async () => {
      const id = newSessionId();
      const first = chat(server, { session_id: id, content: 'x' });
      await waitFor(() => first.messages.length >= 2, 'the reply to start');
      const second = stream(server, id);
      await Promise.all([first.closed, second.closed]);
      assert.equal(last(first)?.event, 'done');
      assert.deepEqual(second.messages, first.messages);
    });
  });
});

describe('chat sessions under load', () => {
  withServer(
    { MOCK_TOKENS_PER_SEC: '20', LLM_MAX_CONCURRENCY: '1', LLM_QUEUE_MAX: '0' },
    (server) => {
      test('beyond the concurrency limit and its queue a chat is refused with 503 and Retry-After', async () => {
        const running = chat(server, { session_id: newSessionId(), content: 'x' });
        await waitFor(() => running.messages.length >= 1, 'the first reply to start');
        const refused = await post(`${server.url}/v1/chat`, {
          session_id: newSessionId(),
          content: 'y',
        });
        assert.equal(refused.status, 503);
        assert.equal(refused.body.error.code, 'overloaded');
        assert.equal(refused.headers.get('retry-after'), '1');
        running.close();
      });
    },
  );
});
