import { MemoryEventLog } from '../backends/memory/memory-log.js';
import { MemorySessionStore } from '../backends/memory/memory-session-store.js';
import { MemoryStreamStore } from '../backends/memory/memory-stream-store.js';
import { MemoryTurnLeases } from '../backends/memory/memory-turn-leases.js';
import { RedisConnection } from '../backends/redis/connection.js';
import { RedisEventLog } from '../backends/redis/redis-event-log.js';
import { RedisSessionStore } from '../backends/redis/redis-session-store.js';
import { RedisStreamStore } from '../backends/redis/redis-stream-store.js';
import { RedisTokenBuckets } from '../backends/redis/redis-token-buckets.js';
import { RedisTurnLeases } from '../backends/redis/redis-turn-leases.js';
import type { EventLog } from '../core/event-log.js';
import { type LiveLog, TopicHub } from '../core/hub.js';
import type { SessionStore } from '../core/session-store.js';
import type { StreamStore } from '../core/stream-store.js';
import { describeActiveSpan } from '../core/tracing.js';
import type { TurnLeases } from '../core/turn-leases.js';
import { GenerationRunner } from '../llm/generation-runner.js';
import { ConcurrencyLimiter } from '../llm/limiter.js';
import { RunningGenerations } from '../llm/running.js';
import { CompletionService } from '../openai-compat/completion-service.js';
import { SessionService } from '../sessions/session-service.js';
import { StreamService } from '../streams/stream-service.js';
import { TopicService } from '../topics/topic-service.js';
import type { Config } from './config.js';
import type { SharedRates } from './limits/limits.js';
import type { Metrics } from './metrics.js';
import { createProvider, type ServerProvider } from './provider.js';

/** Everything behind the routes: backends and the features built on them. */
export interface Services {
  readonly topicLog: LiveLog;
  readonly replies: LiveLog;
  readonly provider: ServerProvider;
  readonly topics: TopicService;
  readonly sessions: SessionService;
  readonly completions: CompletionService;
  readonly streams: StreamService;
  /** Every running generation, so shutdown can let them finish within its grace period. */
  readonly generations: RunningGenerations;
  /** Where every process counts the per-client rates; undefined: each process on its own. */
  readonly sharedRates: SharedRates | undefined;
  close(): Promise<void>;
}

interface Retention {
  readonly maxEvents: number;
  readonly ttlMs: number;
}

/** Where everything is stored: the logs by what they hold, and the sessions. */
interface Backend {
  log(name: 'topic' | 'reply' | 'completion' | 'stream', retention: Retention): EventLog;
  readonly sessionStore: SessionStore;
  /** Who generates each streamed completion. */
  readonly completionLeases: TurnLeases;
  readonly streamStore: StreamStore;
  readonly sharedRates?: SharedRates;
  /** Closes what the logs and the store share (the Redis connection), after them. */
  close(): Promise<void>;
}

type MemorySettings = Pick<
  Config,
  | 'IDEMPOTENCY_TTL_MS'
  | 'SESSION_TTL_MS'
  | 'SESSION_MAX_MESSAGES'
  | 'STREAM_TTL_MS'
  | 'COMPLETION_TTL_MS'
>;
type RedisSettings = MemorySettings &
  Pick<
    Config,
    'REDIS_URL' | 'REDIS_CLUSTER' | 'REDIS_SHARDED_PUBSUB' | 'REDIS_KEY_PREFIX' | 'SESSION_LEASE_MS'
  >;

function memoryBackend(config: MemorySettings): Backend {
  return {
    log: (_name, retention) =>
      new MemoryEventLog({ ...retention, idempotencyTtlMs: config.IDEMPOTENCY_TTL_MS }),
    sessionStore: new MemorySessionStore({
      ttlMs: config.SESSION_TTL_MS,
      maxMessages: config.SESSION_MAX_MESSAGES,
    }),
    completionLeases: new MemoryTurnLeases(),
    streamStore: new MemoryStreamStore({ ttlMs: config.STREAM_TTL_MS }),
    close: async () => {},
  };
}

/** One Redis connection pair for the whole process, each kind of log under its own prefix. */
function redisBackend(config: RedisSettings): Backend {
  const connection = new RedisConnection({
    url: config.REDIS_URL,
    cluster: config.REDIS_CLUSTER,
    shardedPubSub: config.REDIS_SHARDED_PUBSUB,
  });
  const prefix = config.REDIS_KEY_PREFIX;
  return {
    log: (name, retention) =>
      new RedisEventLog({
        connection,
        keyPrefix: `${prefix}:${name}`,
        ...retention,
        idempotencyTtlMs: config.IDEMPOTENCY_TTL_MS,
      }),
    sessionStore: new RedisSessionStore({
      connection,
      keyPrefix: `${prefix}:session`,
      ttlMs: config.SESSION_TTL_MS,
      maxMessages: config.SESSION_MAX_MESSAGES,
      leaseMs: config.SESSION_LEASE_MS,
    }),
    // A completion's lease is named after its log's topic: they share its hash tag.
    completionLeases: new RedisTurnLeases({
      connection,
      keyPrefix: `${prefix}:completion:turn`,
      ttlMs: config.COMPLETION_TTL_MS,
      maxMessages: 1,
      leaseMs: config.SESSION_LEASE_MS,
    }),
    // Under the stream logs' prefix: a stream's state and log share its hash tag.
    streamStore: new RedisStreamStore({
      connection,
      keyPrefix: `${prefix}:stream`,
      ttlMs: config.STREAM_TTL_MS,
    }),
    sharedRates: {
      redis: connection.client,
      nameSpace: `${prefix}:rate:`,
      tokenBuckets: (name, capacity, windowMs) =>
        new RedisTokenBuckets(connection, `${prefix}:rate:${name}:`, capacity, windowMs),
    },
    close: () => connection.close(),
  };
}

/**
 * `onInternalError` hears of failures of streamhub itself while recording a reply; `traced`:
 * tracing is on, so every request to the model is a span.
 */
export function createServices(
  config: Config,
  metrics: Metrics,
  onInternalError: (error: unknown) => void,
  traced = false,
): Services {
  const backend = config.BACKEND === 'redis' ? redisBackend(config) : memoryBackend(config);
  const topicLog = backend.log('topic', {
    maxEvents: config.HISTORY_MAX_EVENTS,
    ttlMs: config.HISTORY_TTL_MS,
  });
  const topicHub = new TopicHub(topicLog, { observer: metrics.hubObserver });
  const replyLog = backend.log('reply', {
    maxEvents: config.REPLY_MAX_EVENTS,
    ttlMs: config.SESSION_TTL_MS,
  });
  const replies = { log: replyLog, hub: new TopicHub(replyLog) };
  // Completions are not sessions: nobody resumes one after minutes, so they go sooner.
  const completionLog = backend.log('completion', {
    maxEvents: config.REPLY_MAX_EVENTS,
    ttlMs: config.COMPLETION_TTL_MS,
  });
  const provider = createProvider(config, metrics.upstreamObserver, traced);
  const limiter = new ConcurrencyLimiter(config.LLM_MAX_CONCURRENCY, config.LLM_QUEUE_MAX);
  metrics.watchGenerations(limiter, provider);
  const generations = new RunningGenerations(onInternalError);
  const runner = new GenerationRunner(provider, limiter, generations, metrics.countUsage);
  const sessionStore = backend.sessionStore;
  const streamStore = backend.streamStore;
  // One more than the stream's events: the event that says how it ended.
  const streamLog = backend.log('stream', {
    maxEvents: config.STREAM_MAX_EVENTS + 1,
    ttlMs: config.STREAM_TTL_MS,
  });
  const counted = (feature: string) => {
    return {
      onGeneration: (outcome: string) => {
        metrics.generations.add(`${feature} ${outcome}`, { feature, outcome });
        describeActiveSpan({ 'streamhub.generation.outcome': outcome });
      },
      onDelta: metrics.generatedDeltas.counting(feature, { feature }),
    };
  };
  // Only a shared backend has replies generated by a process that may die alone.
  const failover =
    config.BACKEND === 'redis' && config.SESSION_FAILOVER === 'continue'
      ? { maxAttempts: config.SESSION_FAILOVER_MAX, strategy: config.LLM_CONTINUATION }
      : undefined;
  const lostCheckMs = Math.max(100, config.SESSION_LEASE_MS / 2);
  const sessions = new SessionService(sessionStore, replies, runner, {
    takeover: config.SESSION_TAKEOVER,
    onInternalError,
    lostCheckMs,
    cancelWaitMs: config.SESSION_LEASE_MS,
    // Within the lease, so that a generator riding out an outage is not declared lost.
    appendRetryMs: config.SESSION_LEASE_MS / 2,
    failover,
    ...counted('chat'),
  });
  const completions = new CompletionService(
    { log: completionLog, hub: new TopicHub(completionLog) },
    runner,
    backend.completionLeases,
    { ...counted('completions'), onInternalError, lostCheckMs, failover },
  );
  return {
    topicLog: { log: topicLog, hub: topicHub },
    replies,
    provider,
    generations,
    sharedRates: backend.sharedRates,
    topics: new TopicService(topicLog, topicHub, () => metrics.published.inc()),
    sessions,
    completions,
    streams: new StreamService(
      streamStore,
      { log: streamLog, hub: new TopicHub(streamLog) },
      {
        maxEvents: config.STREAM_MAX_EVENTS,
        maxEventBytes: config.MAX_BODY_BYTES,
        producerIdleMs: config.STREAM_PRODUCER_IDLE_MS,
        leaseMs: config.SESSION_LEASE_MS,
        onEnded: (status) => metrics.streamsEnded.inc({ status }),
        onAppended: () => metrics.streamEvents.inc(),
        onInternalError,
      },
    ),
    async close() {
      await generations.drain(0);
      sessions.close();
      completions.close();
      await Promise.all([
        topicLog.close(),
        replyLog.close(),
        completionLog.close(),
        streamLog.close(),
        sessionStore.close(),
        backend.completionLeases.close(),
        streamStore.close(),
      ]);
      await backend.close();
    },
  };
}
