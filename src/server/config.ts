import { z } from 'zod';
import {
  apiKeysSchema,
  conflictingJwtSettings,
  jwtSecretSchema,
  publicKeyFileSchema,
  SECRET_SETTINGS,
} from './auth/settings.js';
import { corsOriginsSchema } from './cors.js';
import { trustProxySchema } from './limits/client-key.js';
import { readableFileSchema, tlsSettingsProblem } from './tls.js';

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max);

const boolean = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const redisUrl = z.url({ protocol: /^rediss?$/ });

/** One URL, or several comma-separated ones (the seed nodes of a cluster). */
const redisUrlsSchema = z
  .string()
  .refine(
    (value) => value.split(',').every((url) => redisUrl.safeParse(url.trim()).success),
    'expected redis:// or rediss:// URLs, comma-separated',
  );

/** Several servers only make sense as the seeds of one cluster. */
function redisSettingsProblem(config: {
  REDIS_URL: string;
  REDIS_CLUSTER: boolean;
}): string | undefined {
  if (config.REDIS_CLUSTER || !config.REDIS_URL.includes(',')) return undefined;
  return 'REDIS_URL lists several servers: only a cluster (REDIS_CLUSTER=true) has several';
}

const KIB = 1024;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** Every setting: environment variable name → schema, default and help text. */
export const SETTINGS = {
  PORT: { schema: integer(0, 65_535).default(8080), help: 'TCP port to listen on' },
  HOST: { schema: z.string().min(1).default('127.0.0.1'), help: 'interface to bind' },
  TLS_CERT_FILE: {
    schema: readableFileSchema.optional(),
    help: 'PEM certificate (chain): with TLS_KEY_FILE, serves HTTPS with HTTP/2 and HTTP/1.1',
  },
  TLS_KEY_FILE: {
    schema: readableFileSchema.optional(),
    help: 'PEM private key of TLS_CERT_FILE',
  },
  TRUST_PROXY: {
    schema: trustProxySchema.default(false),
    help: 'take client IPs from X-Forwarded-For of these proxies (true, hop count, addresses/CIDRs)',
  },
  CORS_ORIGINS: {
    schema: corsOriginsSchema.optional(),
    help: 'origins allowed cross-origin access, comma-separated, or * (unset: none)',
  },
  BACKEND: { schema: z.enum(['memory', 'redis']).default('memory'), help: 'event log backend' },
  REDIS_URL: {
    schema: redisUrlsSchema.default('redis://127.0.0.1:6379'),
    help: 'Redis server (BACKEND=redis); with REDIS_CLUSTER, comma-separated seed nodes',
  },
  REDIS_CLUSTER: {
    schema: boolean.default(false),
    help: 'REDIS_URL is a Redis Cluster (Redis 7; always with sharded Pub/Sub)',
  },
  REDIS_KEY_PREFIX: {
    schema: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,64}$/)
      .default('sh'),
    help: 'prefix of every Redis key and channel, so deployments can share a Redis',
  },
  REDIS_SHARDED_PUBSUB: {
    schema: boolean.default(false),
    help: 'use sharded Pub/Sub (Redis 7, for Redis Cluster) instead of classic Pub/Sub',
  },
  HISTORY_MAX_EVENTS: {
    schema: integer(1, 10_000_000).default(1000),
    help: 'events retained per topic',
  },
  HISTORY_TTL_MS: { schema: integer(1000).default(DAY), help: 'age after which events expire' },
  HEARTBEAT_MS: { schema: integer(10, 10 * MINUTE).default(15_000), help: 'heartbeat interval' },
  MAX_BODY_BYTES: {
    schema: integer(1 * KIB, 16 * KIB * KIB).default(64 * KIB),
    help: 'largest accepted request body or WebSocket frame',
  },
  MAX_HEADER_BYTES: {
    schema: integer(1 * KIB, 1024 * KIB).default(16 * KIB),
    help: 'largest request line + headers (431 beyond)',
  },
  REQUEST_TIMEOUT_MS: {
    schema: integer(100, 10 * MINUTE).default(30_000),
    help: "time for a request's head and body to arrive (408 beyond); streams are unaffected",
  },
  MAX_CONNECTIONS: {
    schema: integer(0, 10_000_000).default(100_000),
    help: 'streaming connections (SSE, WebSocket, chats, completions) of this process; 0 = no cap',
  },
  MAX_CONNECTIONS_PER_CLIENT: {
    schema: integer(0, 10_000_000).default(0),
    help: 'streaming connections per client (JWT subject, else IP); 0 = no cap',
  },
  MAX_SUBSCRIPTIONS_PER_SOCKET: {
    schema: integer(1, 1_000_000).default(1000),
    help: 'topics one multiplexed WebSocket (/v1/ws) may subscribe to at once',
  },
  RATE_LIMIT_WINDOW_MS: {
    schema: integer(100, 60 * MINUTE).default(1000),
    help: 'window of the per-client rate limits',
  },
  PUBLISH_RATE_LIMIT: {
    schema: integer(0, 10_000_000).default(0),
    help: 'publishes (HTTP and WebSocket) per client per window; 0 = no limit',
  },
  CHAT_RATE_LIMIT: {
    schema: integer(0, 10_000_000).default(0),
    help: 'POST /v1/chat and /v1/chat/completions per client per window; 0 = no limit',
  },
  CONNECT_RATE_LIMIT: {
    schema: integer(0, 10_000_000).default(0),
    help: 'stream opens (SSE, WebSocket, resume) per client per window; 0 = no limit',
  },
  SLOW_CONSUMER_MAX_BYTES: {
    schema: integer(256 * KIB).default(1024 * KIB),
    help: 'bytes a subscriber may lag behind before it is disconnected',
  },
  COMPRESSION: {
    schema: z.enum(['on', 'off']).default('on'),
    help: 'gzip (or br) SSE streams, permessage-deflate WebSockets and compressed JSON for clients that ask',
  },
  IDEMPOTENCY_TTL_MS: {
    schema: integer(1000).default(5 * MINUTE),
    help: 'how long an Idempotency-Key is remembered',
  },
  SESSION_TAKEOVER: {
    schema: boolean.default(true),
    help: 'a new stream of a chat session supersedes older ones (false: many viewers)',
  },
  SESSION_TTL_MS: { schema: integer(1000).default(DAY), help: 'idle chat sessions expire after' },
  SESSION_LEASE_MS: {
    schema: integer(300, 10 * MINUTE).default(10_000),
    help: 'a reply or streamed completion (a stream) whose generating (producing) process is silent this long is continued elsewhere or ends with generator_lost (ends with producer_lost)',
  },
  SESSION_FAILOVER: {
    schema: z.enum(['continue', 'end']).default('continue'),
    help: 'Redis: a reply or streamed completion whose generating process died is continued on another process (end: it ends with generator_lost)',
  },
  SESSION_FAILOVER_MAX: {
    schema: integer(1, 100).default(2),
    help: 'continuations of one reply at most; its generator lost once more, it ends with generator_lost',
  },
  LLM_CONTINUATION: {
    schema: z.enum(['instruction', 'prefix']).default('instruction'),
    help: 'how a reply is continued: the partial reply as a prefix to complete (prefix) or with an instruction to go on (instruction)',
  },
  SESSION_MAX_MESSAGES: {
    schema: integer(2, 10_000).default(200),
    help: 'messages kept per session (oldest dropped; the system prompt is kept)',
  },
  REPLY_MAX_EVENTS: {
    schema: integer(100, 1_000_000).default(100_000),
    help: 'events retained per reply stream (start, deltas, end)',
  },
  COMPLETION_TTL_MS: {
    schema: integer(1000).default(10 * MINUTE),
    help: 'how long a streamed /v1/chat/completions reply stays resumable',
  },
  STREAM_PRODUCER_IDLE_MS: {
    schema: integer(100, 60 * MINUTE).default(MINUTE),
    help: 'a stream producer silent this long ends its stream as producer_lost',
  },
  STREAM_MAX_EVENTS: {
    schema: integer(1, 10_000_000).default(100_000),
    help: 'events a stream (/v1/streams) may hold; past it the stream ends as too_long',
  },
  STREAM_TTL_MS: {
    schema: integer(1000).default(60 * MINUTE),
    help: 'how long a stream (/v1/streams) and its events are kept',
  },
  LLM_PROVIDER: { schema: z.enum(['mock', 'openai']).default('mock'), help: 'model provider' },
  OPENAI_BASE_URL: {
    schema: z.url({ protocol: /^https?$/ }).default('https://api.openai.com/v1'),
    help: 'OpenAI-compatible upstream (LLM_PROVIDER=openai)',
  },
  OPENAI_API_KEY: { schema: z.string().optional(), help: 'upstream API key' },
  LLM_MODEL: { schema: z.string().min(1).optional(), help: 'default model (provider default)' },
  LLM_TIMEOUT_MS: {
    schema: integer(100).default(30_000),
    help: 'upstream connect + first token timeout',
  },
  LLM_IDLE_TIMEOUT_MS: {
    schema: integer(100).default(30_000),
    help: 'longest upstream silence between chunks',
  },
  LLM_MAX_RETRIES: {
    schema: integer(0, 10).default(2),
    help: 'retries of a failed upstream request before its first token',
  },
  LLM_MAX_CONCURRENCY: {
    schema: integer(1, 100_000).default(64),
    help: 'generations running at once',
  },
  LLM_QUEUE_MAX: {
    schema: integer(0, 100_000).default(256),
    help: 'generations waiting for a slot before 503 overloaded',
  },
  LLM_BREAKER_FAILURES: {
    schema: integer(1, 1000).default(5),
    help: 'consecutive upstream failures that open the circuit',
  },
  LLM_BREAKER_COOLDOWN_MS: {
    schema: integer(100).default(30_000),
    help: 'how long an open circuit fails fast before trying again',
  },
  MOCK_TOKENS_PER_SEC: {
    schema: z.coerce.number().positive().max(1_000_000).default(50),
    help: 'speed of the built-in mock model',
  },
  SHUTDOWN_GRACE_MS: {
    schema: integer(0, 10 * MINUTE).default(10_000),
    help: 'longest wait for a graceful shutdown before exiting anyway',
  },
  AUTH_JWT_SECRET: {
    schema: jwtSecretSchema.optional(),
    help: 'HS256 secret: turns auth on (JWT bearer tokens)',
  },
  AUTH_JWT_PUBLIC_KEY_FILE: {
    schema: publicKeyFileSchema.optional(),
    help: 'RS256/ES256 public key (PEM) or JWKS file: turns auth on',
  },
  API_KEYS: {
    schema: apiKeysSchema.optional(),
    help: 'comma-separated keys accepted as bearer tokens with full rights (turns auth on)',
  },
  LOG_LEVEL: {
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    help: 'log verbosity',
  },
} as const;

export type SettingName = keyof typeof SETTINGS;

const schema = z.object(
  Object.fromEntries(Object.entries(SETTINGS).map(([name, { schema }]) => [name, schema])) as {
    [K in SettingName]: (typeof SETTINGS)[K]['schema'];
  },
);

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** `--history-max-events` for `HISTORY_MAX_EVENTS`. */
export function flagName(setting: string): string {
  return setting.toLowerCase().replaceAll('_', '-');
}

/**
 * Reads the settings from the environment, overridden by command-line flags. Any bad value
 * throws one ConfigError that names every bad setting.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv,
  flags: Partial<Record<SettingName, string>> = {},
): Config {
  const raw: Record<string, string | undefined> = {};
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const value = flags[name] ?? env[name];
    raw[name] = value === '' ? undefined : value;
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) {
    const conflict =
      conflictingJwtSettings(parsed.data) ??
      tlsSettingsProblem(parsed.data) ??
      redisSettingsProblem(parsed.data);
    if (conflict !== undefined) throw new ConfigError(`invalid configuration: ${conflict}`);
    return parsed.data;
  }
  const problems = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0]);
    const value = SECRET_SETTINGS.has(name) ? '(hidden)' : JSON.stringify(raw[name]);
    return `${name} (--${flagName(name)}) = ${value}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}
