import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { chunkText } from '../../src/llm/chunks.js';
import { runGeneration } from '../../src/llm/generation.js';
import { OpenAiProvider } from '../../src/llm/openai.js';
import { LlmError, type LlmErrorCode } from '../../src/llm/provider.js';
import {
  type ResilienceObserver,
  type ResilienceOptions,
  type ResilientProvider,
  withResilience,
} from '../../src/llm/resilient.js';
import { DEFAULT_REPLY, MockUpstream, upstream } from '../helpers/mock-upstream.js';
import { waitFor } from '../helpers/server.js';
import { chatRequest, collect } from './collect.js';

let mock: MockUpstream;

before(async () => {
  mock = await MockUpstream.start();
});
after(() => mock.close());
afterEach(() => {
  mock.requests.length = 0;
  mock.abortedRequests = 0;
  mock.defaultBehaviour = upstream.ok();
});

/** Everything the observer heard. */
class Recorder implements ResilienceObserver {
  readonly retries: LlmErrorCode[] = [];
  readonly failures: LlmErrorCode[] = [];
  readonly latencies: number[] = [];
  readonly circuits: string[] = [];
  retry(code: LlmErrorCode): void {
    this.retries.push(code);
  }
  failure(code: LlmErrorCode): void {
    this.failures.push(code);
  }
  latency(seconds: number): void {
    this.latencies.push(seconds);
  }
  circuit(state: string): void {
    this.circuits.push(state);
  }
}

/** A clock that moves only when the test says so (for the breaker's cooldown). */
class ManualClock {
  #now = 1_000_000;
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

// Generous limits for a loaded machine; the tests about a limit shrink that one only.
const DEFAULTS: ResilienceOptions = {
  firstTokenTimeoutMs: 10_000,
  idleTimeoutMs: 10_000,
  maxRetries: 2,
  breakerFailures: 100,
  breakerCooldownMs: 30_000,
  backoffBaseMs: 10,
  backoffMaxMs: 50,
};

function setup(options: Partial<ResilienceOptions> = {}, clock?: ManualClock) {
  const observer = new Recorder();
  const upstreamProvider = new OpenAiProvider({
    baseURL: mock.baseURL,
    apiKey: 'k',
    defaultModel: 'gpt-4o-mini',
  });
  const provider = withResilience(upstreamProvider, { ...DEFAULTS, observer, ...options }, clock);
  return { provider, observer };
}

function generate(provider: ResilientProvider) {
  return collect(provider.generate(chatRequest().request));
}

function assertCode(error: unknown, code: LlmErrorCode): LlmError {
  assert.ok(error instanceof LlmError, `expected an LlmError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return error;
}

describe('withResilience: retries', () => {
  for (const [name, failure, code] of [
    ['a 500', upstream.status500(), 'upstream_error'],
    ['a 429', upstream.status429('0'), 'upstream_rate_limited'],
    ['a reset before the first token', upstream.resetBeforeFirstToken(), 'upstream_unavailable'],
  ] as const) {
    test(`retries after ${name}, then streams the reply once`, async () => {
      const { provider, observer } = setup();
      mock.enqueue(failure, failure);
      const result = await generate(provider);
      assert.equal(result.error, undefined);
      assert.equal(result.text, DEFAULT_REPLY);
      assert.equal(result.finish?.finishReason, 'stop');
      assert.equal(mock.completionRequests.length, 3);
      assert.deepEqual(observer.retries, [code, code]);
      assert.deepEqual(observer.failures, []);
      assert.equal(observer.latencies.length, 1);
    });
  }

  test('waits as long as Retry-After says before retrying', async () => {
    const { provider } = setup();
    mock.enqueue(upstream.status429('1'));
    const result = await generate(provider);
    assert.equal(result.text, DEFAULT_REPLY);
    assert.equal(mock.completionRequests.length, 2);
    assert.ok(result.elapsedMs >= 950, `retried after ${result.elapsedMs} ms, asked for 1000`);
  });

  test('does not retry when Retry-After asks for longer than it may wait', async () => {
    const { provider, observer } = setup({ maxRetryAfterMs: 5000 });
    mock.enqueue(upstream.status429('60'));
    const result = await generate(provider);
    const error = assertCode(result.error, 'upstream_rate_limited');
    assert.equal(error.retryAfterMs, 60_000);
    assert.equal(mock.completionRequests.length, 1);
    assert.deepEqual(observer.failures, ['upstream_rate_limited']);
  });

  test('gives up after LLM_MAX_RETRIES retries', async () => {
    const { provider, observer } = setup({ maxRetries: 2 });
    mock.defaultBehaviour = upstream.status500();
    const result = await generate(provider);
    assertCode(result.error, 'upstream_error');
    assert.equal(mock.completionRequests.length, 3);
    assert.equal(observer.retries.length, 2);
    assert.deepEqual(observer.failures, ['upstream_error']);
  });

  test('does not retry what retrying cannot fix', async () => {
    const { provider } = setup();
    mock.enqueue(upstream.status(400));
    assertCode((await generate(provider)).error, 'invalid_request');
    assert.equal(mock.completionRequests.length, 1);
  });

  test('never retries once a token was streamed: the error follows exactly those tokens', async () => {
    const { provider, observer } = setup();
    mock.enqueue(upstream.resetAfterTokens(3));
    const result = await generate(provider);
    assertCode(result.error, 'upstream_error');
    assert.equal(result.deltas.length, 3);
    assert.equal(mock.completionRequests.length, 1);
    assert.deepEqual(observer.retries, []);
  });

  test('a client abort during the backoff stops at once, without another request', async () => {
    const { provider } = setup();
    mock.enqueue(upstream.status429('20'));
    const { request, controller } = chatRequest();
    const reason = new Error('client went away');
    const pending = collect(provider.generate(request));
    await waitFor(() => mock.completionRequests.length === 1, 'the first attempt');
    setTimeout(() => controller.abort(reason), 50);
    const result = await pending;
    assert.equal(result.error, reason);
    assert.ok(result.elapsedMs < 10_000, `took ${result.elapsedMs} ms`);
    assert.equal(mock.completionRequests.length, 1);
  });
});

describe('withResilience: timeouts', () => {
  test('the first-token timeout aborts each stalled attempt, then fails with upstream_timeout', async () => {
    const { provider, observer } = setup({ firstTokenTimeoutMs: 300, maxRetries: 1 });
    mock.enqueue(upstream.stallBeforeHeaders());
    mock.defaultBehaviour = upstream.stallBeforeFirstToken();
    const result = await generate(provider);
    assertCode(result.error, 'upstream_timeout');
    assert.equal(mock.completionRequests.length, 2);
    assert.ok(result.elapsedMs >= 550, `gave up after ${result.elapsedMs} ms`);
    await waitFor(() => mock.abortedRequests === 2, 'both upstream requests to be closed');
    assert.deepEqual(observer.retries, ['upstream_timeout']);
    assert.deepEqual(observer.failures, ['upstream_timeout']);
  });

  test('the idle timeout fires between chunks and aborts the upstream, without a retry', async () => {
    const { provider } = setup({ idleTimeoutMs: 300 });
    mock.enqueue(upstream.stallAfterTokens(2));
    const result = await generate(provider);
    assertCode(result.error, 'upstream_timeout');
    assert.equal(result.deltas.length, 2);
    assert.equal(mock.completionRequests.length, 1);
    await waitFor(() => mock.abortedRequests === 1, 'the upstream request to be closed');
  });

  test('a reply slower in total than the first-token timeout is fine while chunks keep coming', async () => {
    const { provider } = setup({ firstTokenTimeoutMs: 1000, idleTimeoutMs: 1500 });
    mock.enqueue(upstream.slowDrip(150));
    const result = await generate(provider);
    assert.equal(result.error, undefined);
    assert.equal(result.text, DEFAULT_REPLY);
    assert.ok(result.elapsedMs > 1000, `took ${result.elapsedMs} ms`);
  });

  test('a slow consumer is not mistaken for a silent upstream', async () => {
    const { provider } = setup({ idleTimeoutMs: 200 });
    const deltas: string[] = [];
    for await (const chunk of provider.generate(chatRequest().request)) {
      if (chunk.type === 'chunk') deltas.push(chunkText(chunk.json));
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    assert.equal(deltas.join(''), DEFAULT_REPLY);
  });
});

describe('withResilience: circuit breaker', () => {
  const breakerOptions = { breakerFailures: 2, breakerCooldownMs: 5000, maxRetries: 0 };

  async function openCircuit(provider: ResilientProvider): Promise<void> {
    mock.defaultBehaviour = upstream.status500();
    for (let i = 0; i < breakerOptions.breakerFailures; i++) {
      assert.equal(provider.circuitState(), 'closed');
      assertCode((await generate(provider)).error, 'upstream_error');
    }
    assert.equal(provider.circuitState(), 'open');
  }

  test('opens after consecutive failures and then fails fast without calling the upstream', async () => {
    const clock = new ManualClock();
    const { provider, observer } = setup(breakerOptions, clock);
    await openCircuit(provider);
    const requests = mock.completionRequests.length;

    clock.advance(1000);
    const result = await generate(provider);
    const error = assertCode(result.error, 'circuit_open');
    assert.match(error.message, /in 4 s/);
    assert.equal(error.retryAfterMs, 4000);
    assert.equal(mock.completionRequests.length, requests);
    assert.deepEqual(observer.circuits, ['open']);
    assert.equal(observer.failures.at(-1), 'circuit_open');
  });

  test('a success in between resets the count of consecutive failures', async () => {
    const { provider } = setup(breakerOptions);
    mock.enqueue(upstream.status500(), upstream.ok(), upstream.status500());
    for (let i = 0; i < 3; i++) await generate(provider);
    assert.equal(provider.circuitState(), 'closed');
  });

  test('a consumer that stops at the finish, as every feature does, counts a success', async () => {
    const clock = new ManualClock();
    const { provider } = setup(breakerOptions, clock);
    await openCircuit(provider);
    clock.advance(5000);
    mock.defaultBehaviour = upstream.ok();
    const sink = {
      chunk: async () => {},
      finish: async () => {},
      fail: async (error: LlmError) => assert.fail(error),
      cancelled: async () => assert.fail('nothing aborts it'),
    };
    await runGeneration(provider, chatRequest().request, sink);
    assert.equal(provider.circuitState(), 'closed');
    // Its upstream request ended cleanly: its connection is reused, nothing was aborted.
    assert.equal(mock.abortedRequests, 0);
  });

  test('after the cooldown one trial goes through; its success closes the circuit', async () => {
    const clock = new ManualClock();
    const { provider, observer } = setup(breakerOptions, clock);
    await openCircuit(provider);
    clock.advance(5000);
    assert.equal(provider.circuitState(), 'half_open');
    mock.defaultBehaviour = upstream.ok();
    const result = await generate(provider);
    assert.equal(result.text, DEFAULT_REPLY);
    assert.equal(provider.circuitState(), 'closed');
    assert.deepEqual(observer.circuits, ['open', 'half_open', 'closed']);
  });

  test('a failed trial re-opens the circuit for another cooldown', async () => {
    const clock = new ManualClock();
    const { provider } = setup(breakerOptions, clock);
    await openCircuit(provider);
    clock.advance(5000);
    const requests = mock.completionRequests.length;
    assertCode((await generate(provider)).error, 'upstream_error');
    assert.equal(mock.completionRequests.length, requests + 1);
    assert.equal(provider.circuitState(), 'open');
    assertCode((await generate(provider)).error, 'circuit_open');
    assert.equal(mock.completionRequests.length, requests + 1);
  });

  test('while the trial runs others fail fast; an aborted trial lets the next one probe', async () => {
    const clock = new ManualClock();
    const { provider } = setup(breakerOptions, clock);
    await openCircuit(provider);
    clock.advance(5000);
    mock.enqueue(upstream.stallBeforeFirstToken());
    const trial = chatRequest();
    const pending = collect(provider.generate(trial.request));
    await waitFor(() => mock.completionRequests.length === 3, 'the trial request');
    assertCode((await generate(provider)).error, 'circuit_open');

    trial.controller.abort(new Error('client went away'));
    await pending;
    assert.equal(provider.circuitState(), 'half_open');
    mock.defaultBehaviour = upstream.ok();
    assert.equal((await generate(provider)).text, DEFAULT_REPLY);
    assert.equal(provider.circuitState(), 'closed');
  });

  test('client aborts and the upstream’s refusals (a 4xx but 429) do not count as failures', async () => {
    const { provider, observer } = setup({ ...breakerOptions, breakerFailures: 1 });
    mock.enqueue(upstream.stallAfterTokens(1), upstream.status(400), upstream.status(401));
    const { request, controller } = chatRequest();
    await collect(provider.generate(request), () => controller.abort(new Error('bye')));
    assertCode((await generate(provider)).error, 'invalid_request');
    assertCode((await generate(provider)).error, 'upstream_error');
    assert.equal(provider.circuitState(), 'closed');
    assert.deepEqual(observer.failures, ['invalid_request', 'upstream_error']);
  });
});
