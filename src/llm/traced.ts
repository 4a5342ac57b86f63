import { context, type Span, trace } from '@opentelemetry/api';
import { endSpan, SpanKind, tracer } from '../core/tracing.js';
import type { GenerateRequest, GenerationChunk, LlmProvider, ModelEntry } from './provider.js';

/** Where the model's server is, for the spans' `server.*` attributes. */
interface ServerAddress {
  readonly 'server.address': string;
  readonly 'server.port': number;
}

/**
 * A provider whose every generation, one request to the model's server, is a GenAI client
 * span (OpenTelemetry's `gen_ai.*` conventions): model, token usage, finish reasons and the
 * time to the first chunk. The provider runs inside the span, so the request it sends carries
 * the span as its `traceparent`. Wrapped only when tracing is on: each layer costs something
 * on every chunk. `baseURL`: where the model's server is (none for the mock).
 */
export function withTracing(provider: LlmProvider, baseURL?: string): LlmProvider {
  return new TracedProvider(provider, baseURL === undefined ? undefined : addressOf(baseURL));
}

function addressOf(baseURL: string): ServerAddress {
  const url = new URL(baseURL);
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return { 'server.address': url.hostname, 'server.port': port };
}

class TracedProvider implements LlmProvider {
  readonly name: string;
  readonly defaultModel: string;

  constructor(
    readonly upstream: LlmProvider,
    readonly address: ServerAddress | undefined,
  ) {
    this.name = upstream.name;
    this.defaultModel = upstream.defaultModel;
  }

  listModels(signal: AbortSignal): Promise<readonly ModelEntry[]> {
    return this.upstream.listModels(signal);
  }

  async *generate(request: GenerateRequest): AsyncIterable<GenerationChunk> {
    const span = this.#startSpan(request);
    const inSpan = trace.setSpan(context.active(), span);
    const iterator = this.upstream.generate(request)[Symbol.asyncIterator]();
    const started = performance.now();
    let chunks = 0;
    let exhausted = false;
    let failure: unknown;
    try {
      for (;;) {
        // The provider's generator runs (and sends its request) in the caller of `next`'s context.
        const result = await context.with(inSpan, () => iterator.next());
        if (result.done) break;
        const chunk = result.value;
        if (chunk.type === 'finish') describeFinish(span, chunk);
        else if (chunks++ === 0) {
          span.setAttribute(
            'gen_ai.response.time_to_first_chunk',
            (performance.now() - started) / 1000,
          );
          span.addEvent('gen_ai.first_chunk');
        }
        yield chunk;
      }
      exhausted = true;
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      if (!exhausted) iterator.return?.().catch(() => {});
      endSpan(span, failure);
    }
  }

  #startSpan(request: GenerateRequest): Span {
    const model = request.body.model;
    return tracer.startSpan(`chat ${model}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': this.name,
        'gen_ai.request.model': model,
        'streamhub.llm.streamed': request.body.stream === true,
        ...this.address,
      },
    });
  }
}

function describeFinish(span: Span, finish: Extract<GenerationChunk, { type: 'finish' }>): void {
  span.setAttribute('gen_ai.response.finish_reasons', [finish.finishReason]);
  if (finish.usage === null) return;
  span.setAttributes({
    'gen_ai.usage.input_tokens': finish.usage.prompt_tokens,
    'gen_ai.usage.output_tokens': finish.usage.completion_tokens,
  });
}
