import { MockProvider } from '../llm/mock.js';
import { OPENAI_DEFAULT_MODEL, OpenAiProvider } from '../llm/openai.js';
import type { LlmProvider } from '../llm/provider.js';
import {
  type ResilienceObserver,
  type ResilientProvider,
  withResilience,
} from '../llm/resilient.js';
import { withTracing } from '../llm/traced.js';
import type { Config } from './config.js';

/** The settings that choose and tune the model provider. */
export type ProviderSettings = Pick<
  Config,
  | 'LLM_PROVIDER'
  | 'LLM_MODEL'
  | 'MOCK_TOKENS_PER_SEC'
  | 'OPENAI_BASE_URL'
  | 'OPENAI_API_KEY'
  | 'LLM_TIMEOUT_MS'
  | 'LLM_IDLE_TIMEOUT_MS'
  | 'LLM_MAX_RETRIES'
  | 'LLM_BREAKER_FAILURES'
  | 'LLM_BREAKER_COOLDOWN_MS'
>;

/** The configured provider. `circuitState` is there when it talks to a real upstream. */
export type ServerProvider = LlmProvider & Partial<Pick<ResilientProvider, 'circuitState'>>;

/**
 * The model provider the settings ask for; `observer` feeds upstream metrics and logs.
 * `traced`: each request to the model (each attempt) is a span.
 */
export function createProvider(
  config: ProviderSettings,
  observer?: ResilienceObserver,
  traced = false,
): ServerProvider {
  switch (config.LLM_PROVIDER) {
    case 'mock': {
      const mock = new MockProvider(config.MOCK_TOKENS_PER_SEC, config.LLM_MODEL);
      return traced ? withTracing(mock) : mock;
    }
    case 'openai': {
      const upstream = new OpenAiProvider({
        baseURL: config.OPENAI_BASE_URL,
        apiKey: config.OPENAI_API_KEY,
        defaultModel: config.LLM_MODEL ?? OPENAI_DEFAULT_MODEL,
      });
      return withResilience(traced ? withTracing(upstream, config.OPENAI_BASE_URL) : upstream, {
        firstTokenTimeoutMs: config.LLM_TIMEOUT_MS,
        idleTimeoutMs: config.LLM_IDLE_TIMEOUT_MS,
        maxRetries: config.LLM_MAX_RETRIES,
        breakerFailures: config.LLM_BREAKER_FAILURES,
        breakerCooldownMs: config.LLM_BREAKER_COOLDOWN_MS,
        ...(observer === undefined ? {} : { observer }),
      });
    }
  }
}
