/** Programmatic API: embed streamhub in another Node process or build on its core. */
export { MemoryEventLog } from './backends/memory/memory-log.js';
export { EventBatch } from './core/batch.js';
export { StreamhubError } from './core/errors.js';
export type { AppendResult, EventLog, ReadFrom, ReadResult } from './core/event-log.js';
export type { StartFrom, Subscriber, Subscription } from './core/hub.js';
export { TopicHub } from './core/hub.js';
export type { ResetInfo, StoredEvent } from './core/types.js';
export { buildStreamhub, type Streamhub } from './server/app.js';
export { type Config, ConfigError, loadConfig } from './server/config.js';
export { type RunningServer, startServer } from './server/server.js';
