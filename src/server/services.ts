import { MemoryEventLog } from '../backends/memory/memory-log.js';
import { MemorySessionStore } from '../backends/memory/memory-session-store.js';
import type { EventLog } from '../core/event-log.js';
import { type LiveLog, TopicHub } from '../core/hub.js';
import type { SessionStore } from '../core/session-store.js';
import { ConcurrencyLimiter } from '../llm/limiter.js';
import { RunningGenerations } from '../llm/running.js';
import { CompletionService } from '../openai-compat/completion-service.js';
import { SessionService } from '../sessions/session-service.js';
import { TopicService } from '../topics/topic-service.js';
import { type Config, ConfigError } from './config.js';
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
  /** Every running generation, so shutdown can let them finish within its grace period. */
  readonly generations: RunningGenerations;
  close(): Promise<void>;
}

/** A backend's event log with the given retention (topics and replies retain differently). */
function createEventLog(config: Config, retention: { maxEvents: number; ttlMs: number }): EventLog {
  if (config.BACKEND === 'redis') {
    throw new ConfigError('BACKEND=redis: the Redis backend is not available in this version yet');
  }
  return new MemoryEventLog({ ...retention, idempotencyTtlMs: config.IDEMPOTENCY_TTL_MS });
}

function createSessionStore(config: Config): SessionStore {
  return new MemorySessionStore({
    ttlMs: config.SESSION_TTL_MS,
    maxMessages: config.SESSION_MAX_MESSAGES,
  });
}

/** `onInternalError` hears of failures of streamhub itself while recording a reply. */
export function createServices(
  config: Config,
  metrics: Metrics,
  onInternalError: (error: unknown) => void,
): Services {
  const topicLog = createEventLog(config, {
    maxEvents: config.HISTORY_MAX_EVENTS,
    ttlMs: config.HISTORY_TTL_MS,
  });
  const topicHub = new TopicHub(topicLog, { observer: metrics.hubObserver });
  const replyLog = createEventLog(config, {
    maxEvents: config.REPLY_MAX_EVENTS,
    ttlMs: config.SESSION_TTL_MS,
  });
  const replies = { log: replyLog, hub: new TopicHub(replyLog) };
  // Completions are not sessions: nobody resumes one after minutes, so they go sooner.
  const completionLog = createEventLog(config, {
    maxEvents: config.REPLY_MAX_EVENTS,
    ttlMs: config.COMPLETION_TTL_MS,
  });
  const provider = createProvider(config, metrics.upstreamObserver);
  const limiter = new ConcurrencyLimiter(config.LLM_MAX_CONCURRENCY, config.LLM_QUEUE_MAX);
  metrics.watchGenerations(limiter, provider);
  const generations = new RunningGenerations(onInternalError);
  const sessionStore = createSessionStore(config);
  const counted = (feature: string) => ({
    onGeneration: (outcome: string) => metrics.generations.inc({ feature, outcome }),
    onDelta: () => metrics.generatedDeltas.inc({ feature }),
  });
  return {
    topicLog: { log: topicLog, hub: topicHub },
    replies,
    provider,
    generations,
    topics: new TopicService(topicLog, topicHub, () => metrics.published.inc()),
    sessions: new SessionService(sessionStore, replies, provider, limiter, generations, {
      takeover: config.SESSION_TAKEOVER,
      ...counted('chat'),
    }),
    completions: new CompletionService(
      { log: completionLog, hub: new TopicHub(completionLog) },
      provider,
      limiter,
      generations,
      counted('completions'),
    ),
    async close() {
      await generations.drain(0);
      await Promise.all([
        topicLog.close(),
        replyLog.close(),
        completionLog.close(),
        sessionStore.close(),
      ]);
    },
  };
}
