import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  assertApiError,
  eventually,
  metricsText,
  metricValue,
  request,
  useServer,
} from '../helpers/http.js';
import { RawSseClient } from '../helpers/sse-client.js';
import {
  assertNoDuplicateIds,
  chunksOf,
  contentOf,
  DONE,
  expectedReply,
  postCompletion,
  resumeCompletion,
  untilEvents,
  userMessages,
} from './harness.js';

const lastData = (client: RawSseClient) => client.messages[client.messages.length - 1]?.data;

describe('resuming a streamed completion', { timeout: 60_000 }, () => {
  // Slow enough that a stream read for a few chunks is still generating when it is dropped.
  const server = useServer({ MOCK_TOKENS_PER_SEC: '40' });

  test('after a dropped connection, resuming from the last id sends exactly the rest', async () => {
    const messages = userMessages('resume me from where I was');
    const first = postCompletion(server(), { messages });
    await untilEvents(first, 4);
    first.close();
    await first.closed;
    const seen = [...first.events];
    const streamId = first.headers['x-stream-id'] as string;

    const rest = resumeCompletion(server(), streamId, seen[seen.length - 1]?.id);
    await rest.closed;
    assert.equal(rest.status, 200);
    assert.equal(rest.headers['x-stream-id'], streamId);
    assert.equal(lastData(rest), DONE);
    const all = [...seen, ...rest.events];
    assertNoDuplicateIds(all);
    assert.equal(contentOf(chunksOf(all)), expectedReply(messages));
    assert.equal(all.filter((message) => message.data === DONE).length, 1);
  });

  test('the cursor may come as the last_event_id query parameter', async () => {
    const messages = userMessages('query cursor');
    const first = postCompletion(server(), { messages });
    await untilEvents(first, 2);
    first.close();
    const seen = [...first.events];
    const cursor = encodeURIComponent(seen[seen.length - 1]?.id ?? '');
    const rest = new RawSseClient(
      `${server().url}/v1/chat/completions/${first.headers['x-stream-id']}/stream?last_event_id=${cursor}`,
    );
    await rest.closed;
    const all = [...seen, ...rest.events];
    assertNoDuplicateIds(all);
    assert.equal(contentOf(chunksOf(all)), expectedReply(messages));
    assert.equal(lastData(rest), DONE);
  });

  test('disconnecting does not stop the generation: it finishes with [DONE] for a later resume', async () => {
    const messages = userMessages('keep going without me');
    const outcomes = async () => {
      const text = await metricsText(server().url);
      const count = (outcome: string) =>
        metricValue(text, 'streamhub_llm_generations_total', { feature: 'completions', outcome }) ??
        0;
      return { done: count('done'), error: count('error'), cancelled: count('cancelled') };
    };
    const before = await outcomes();
    const first = postCompletion(server(), { messages });
    await untilEvents(first, 2);
    first.close();
    const streamId = first.headers['x-stream-id'] as string;
    // Nobody reads the stream now; the metric says when the generation ends, and how.
    let after = before;
    const ended = async () => {
      after = await outcomes();
      return JSON.stringify(after) !== JSON.stringify(before);
    };
    await eventually(ended, 'the generation to end', 15_000);
    assert.deepEqual(after, { ...before, done: before.done + 1 });

    const replay = resumeCompletion(server(), streamId);
    await replay.closed;
    assert.equal(lastData(replay), DONE);
    assert.equal(contentOf(chunksOf(replay.events)), expectedReply(messages));
  });

  test('without an id, a finished completion is replayed whole, byte for byte', async () => {
    const original = postCompletion(server(), {
      messages: userMessages('replay all of it'),
      max_tokens: 12,
    });
    await original.closed;
    const replay = resumeCompletion(server(), original.headers['x-stream-id'] as string);
    await replay.closed;
    assert.deepEqual(replay.events, original.events);
    assert.equal(lastData(replay), DONE);
  });

  test('resuming after [DONE] sends [DONE] again instead of hanging', async () => {
    const original = postCompletion(server(), {
      messages: userMessages('already done'),
      max_tokens: 4,
    });
    await original.closed;
    const doneEvent = original.events[original.events.length - 1];
    assert.equal(doneEvent?.data, DONE);
    const again = resumeCompletion(
      server(),
      original.headers['x-stream-id'] as string,
      doneEvent?.id,
    );
    await again.closed;
    assert.deepEqual(again.events, [doneEvent]);
  });

  test('an id from another completion replays this one from its first chunk', async () => {
    const one = postCompletion(server(), { messages: userMessages('one'), max_tokens: 2 });
    const two = postCompletion(server(), { messages: userMessages('two'), max_tokens: 2 });
    await Promise.all([one.closed, two.closed]);
    const foreignId = one.events[0]?.id;
    const resumed = resumeCompletion(server(), two.headers['x-stream-id'] as string, foreignId);
    await resumed.closed;
    // No reset frame: its `event:` line would be more than an OpenAI client can parse.
    assert.deepEqual(resumed.messages, two.messages);
  });

  test('an unknown completion id is 404 completion_not_found', async () => {
    for (const id of ['chatcmpl-doesnotexist', 'not-a-completion-id', 'chatcmpl-%2F..']) {
      const response = await request(`${server().url}/v1/chat/completions/${id}/stream`, {
        headers: { accept: 'text/event-stream' },
      });
      assertApiError(response, 404, 'completion_not_found');
    }
  });
});
