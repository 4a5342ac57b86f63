import { context, type Span, trace } from '@opentelemetry/api';
import { endSpan, SpanKind, tracer } from '../core/tracing.js';
import type {
  ChunkReceiver,
  GenerateRequest,
  GenerationChunk,
  GenerationFinish,
  LlmProvider,
  ModelEntry,
} from './provider.js';
import { pulled, streamFrom } from './push.js';

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
 * on every chunk (a call, no promise). `baseURL`: where the model's server is (none for the mock).
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

  generate(request: GenerateRequest): AsyncIterable<GenerationChunk> {
    return pulled((r, receiver) => this.stream(r, receiver), request);
  }

  stream(request: GenerateRequest, receiver: ChunkReceiver): Promise<GenerationFinish> {
    const span = this.#startSpan(request);
    const started = performance.now();
    let chunks = 0;
    const timed: ChunkReceiver = {
      chunk: (chunk) => {
        if (chunks++ === 0) {
          span.setAttribute(
            'gen_ai.response.time_to_first_chunk',
            (performance.now() - started) / 1000,
          );
          span.addEvent('gen_ai.first_chunk');
        }
        return receiver.chunk(chunk);
      },
    };
    // The provider sends its request in the span's context, so the request carries it.
    const inSpan = trace.setSpan(context.active(), span);
    return context
      .with(inSpan, () => streamFrom(this.upstream, request, timed))
      .then(
        (finish) => {
          describeFinish(span, finish);
          endSpan(span, undefined);
          return finish;
        },
        (error: unknown) => {
          endSpan(span, error);
          throw error;
        },
      );
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

function describeFinish(span: Span, finish: GenerationFinish): void {
  span.setAttribute('gen_ai.response.finish_reasons', [finish.finishReason]);
  if (finish.usage === null) return;
  span.setAttributes({
    'gen_ai.usage.input_tokens': finish.usage.prompt_tokens,
    'gen_ai.usage.output_tokens': finish.usage.completion_tokens,
  });
}
