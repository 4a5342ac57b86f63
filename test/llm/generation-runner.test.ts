import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chunkText } from '../../src/llm/chunks.js';
import { GenerationRunner } from '../../src/llm/generation-runner.js';
import { ConcurrencyLimiter } from '../../src/llm/limiter.js';
import { MockProvider, mockReply } from '../../src/llm/mock.js';
import type { ModelChunk } from '../../src/llm/provider.js';
import { RunningGenerations } from '../../src/llm/running.js';

function runner(maxActive = 1, maxWaiting = 10) {
  const limiter = new ConcurrencyLimiter(maxActive, maxWaiting);
  return new GenerationRunner(new MockProvider(1000), limiter, new RunningGenerations());
}

/** A background generation that runs until `finish` is called. */
function pending(key: string) {
  let finish = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  return { key, value: key, finish, run: () => finished };
}

describe('GenerationRunner', () => {
  test('start resolves once the generation runs, and holds its slot until it ends', async () => {
    const generations = runner();
    const generation = pending('g');
    assert.equal(await generations.start(async () => generation), 'g');
    assert.ok(generations.isRunning('g'));
    assert.equal(generations.limiter.active, 1);
    generation.finish();
    await generations.generations.drain(60_000);
    assert.ok(!generations.isRunning('g'));
    assert.equal(generations.limiter.active, 0);
  });

  test('a generation that fails to be prepared gives its slot back and never runs', async () => {
    const generations = runner();
    const failure = new Error('the log is unavailable');
    await assert.rejects(
      generations.start(async () => {
        throw failure;
      }),
      (error) => error === failure,
    );
    assert.equal(generations.limiter.active, 0);
    assert.equal(generations.generations.size, 0);
  });

  test('cancel aborts a running generation and waits for its end', async () => {
    const generations = runner();
    let aborted = false;
    await generations.start(async () => ({
      key: 'g',
      value: undefined,
      run: (signal) =>
        new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve();
          }),
        ),
    }));
    assert.equal(await generations.cancel('g'), true);
    assert.ok(aborted);
    assert.equal(generations.limiter.active, 0);
    assert.equal(await generations.cancel('g'), false);
  });

  test('a wait for a slot that its signal abandons rejects with the reason, preparing nothing', async () => {
    const generations = runner();
    const first = pending('first');
    await generations.start(async () => first);
    const controller = new AbortController();
    let prepared = false;
    const queued = generations.start(async () => {
      prepared = true;
      return pending('second');
    }, controller.signal);
    const reason = new Error('the client left');
    controller.abort(reason);
    await assert.rejects(queued, (error) => error === reason);
    assert.ok(!prepared);
    first.finish();
  });

  test('inSlot holds a slot while its work runs, and gives it back when the work fails', async () => {
    const generations = runner();
    const active = await generations.inSlot(async () => generations.limiter.active);
    assert.equal(active, 1);
    await assert.rejects(
      generations.inSlot(async () => {
        throw new Error('upstream failed');
      }),
    );
    assert.equal(generations.limiter.active, 0);
  });

  test('generate runs the provider into a sink to its finish', async () => {
    const generations = runner();
    const seen: string[] = [];
    const sink = {
      chunk: async ({ json }: ModelChunk) => void seen.push(chunkText(json)),
      finish: async (finishReason: string) => void seen.push(`finish:${finishReason}`),
      fail: async () => assert.fail('the mock does not fail'),
      cancelled: async () => assert.fail('nothing aborts it'),
    };
    const messages = [{ role: 'user', content: 'hi' }];
    const body = { model: 'm', messages, stream: true, max_tokens: 3 };
    await generations.generate({ body }, sink, new AbortController().signal);
    // The role, three tokens, the finish reason, the usage; then the finish.
    assert.deepEqual(seen.slice(1, 4), mockReply(messages).slice(0, 3));
    assert.equal(seen.length, 7);
    assert.equal(seen[6], 'finish:length');
  });
});
