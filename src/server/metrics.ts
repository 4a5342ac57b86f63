import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { HubObserver } from '../core/hub.js';
import type { ConcurrencyLimiter } from '../llm/limiter.js';
import type { Usage } from '../llm/provider.js';
import type { ResilienceObserver } from '../llm/resilient.js';
import type { ConnectionRegistry, TransportName } from '../transports/connections.js';
import type { ServerProvider } from './provider.js';
import { TallyCounter } from './tally-counter.js';

const INPUT_TOKENS = { type: 'input' } as const;
const OUTPUT_TOKENS = { type: 'output' } as const;

/** The process's Prometheus metrics; one instance per server so tests can run several. */
export class Metrics {
  readonly registry = new Registry();

  readonly published = new Counter({
    name: 'streamhub_events_published_total',
    help: 'Events appended to topic logs by this process',
    registers: [this.registry],
  });

  readonly delivered = new Counter({
    name: 'streamhub_events_delivered_total',
    help: 'Live events written to subscriber connections',
    registers: [this.registry],
  });

  readonly replayed = new Counter({
    name: 'streamhub_events_replayed_total',
    help: 'History events written to subscribers catching up',
    registers: [this.registry],
  });

  readonly resumes = new Counter({
    name: 'streamhub_resumes_total',
    help: 'Subscriptions resumed from a Last-Event-ID, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly slowConsumers = new Counter({
    name: 'streamhub_slow_consumers_dropped_total',
    help: 'Connections dropped for lagging past SLOW_CONSUMER_MAX_BYTES',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  readonly deliveryLatency = new Histogram({
    name: 'streamhub_publish_to_deliver_seconds',
    help: 'Time from publication to the write to subscriber connections',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly httpRequests = new TallyCounter({
    name: 'streamhub_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  /** Requests whose response became a stream, counted as it opened (see `streamOpened`). */
  readonly #streams = new WeakSet<FastifyRequest>();

  /** Counts a request whose response a stream takes over (hijacked), as the stream opens. */
  streamOpened(request: FastifyRequest): void {
    this.#streams.add(request);
    this.#countRequest(request, 200);
  }

  /**
   * Counts a finished response, unless it was a stream, counted when it opened: Fastify runs the
   * `onResponse` hooks of a hijacked reply too once it ends cleanly, which counted every finite
   * stream (a completion, a reply) twice.
   */
  responded(request: FastifyRequest, reply: FastifyReply): void {
    if (!this.#streams.has(request)) this.#countRequest(request, reply.statusCode);
  }

  #countRequest(request: FastifyRequest, status: number): void {
    const { method } = request;
    const route = request.routeOptions.url ?? 'unmatched';
    this.httpRequests.add(`${method} ${status} ${route}`, { method, route, status });
  }

  readonly wsFrames = new Counter({
    name: 'streamhub_ws_frames_received_total',
    help: 'WebSocket frames received from clients, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly generations = new TallyCounter({
    name: 'streamhub_llm_generations_total',
    help: 'LLM replies generated, by feature and outcome',
    labelNames: ['feature', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly generatedDeltas = new TallyCounter({
    name: 'streamhub_llm_deltas_total',
    help: 'Text chunks (roughly tokens) streamed from the model',
    labelNames: ['feature'] as const,
    registers: [this.registry],
  });

  readonly tokens = new TallyCounter({
    name: 'streamhub_llm_tokens_total',
    help: 'Tokens of finished generations as the model reported them (usage): input = prompt, output = completion',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  /** Counts a finished generation's usage, once per generation. */
  readonly countUsage = (usage: Usage): void => {
    this.tokens.add('input', INPUT_TOKENS, usage.prompt_tokens);
    this.tokens.add('output', OUTPUT_TOKENS, usage.completion_tokens);
  };

  readonly streamsEnded = new Counter({
    name: 'streamhub_streams_ended_total',
    help: 'Streams from producers (/v1/streams) ended by this process, by status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly streamEvents = new Counter({
    name: 'streamhub_stream_events_total',
    help: 'Events appended to streams (/v1/streams) by producers on this process',
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: 'streamhub_llm_upstream_errors_total',
    help: 'Failed upstream attempts by code (retried or final; circuit_open = refused fast)',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly firstToken = new Histogram({
    name: 'streamhub_llm_first_token_seconds',
    help: 'Upstream time to first token per successful attempt',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });

  readonly upstreamObserver: ResilienceObserver = {
    retry: (code) => this.upstreamErrors.inc({ code }),
    failure: (code) => this.upstreamErrors.inc({ code }),
    latency: (seconds) => this.firstToken.observe(seconds),
  };

  /** Gauges read from live objects at scrape time. */
  watchGenerations(limiter: ConcurrencyLimiter, provider: ServerProvider): void {
    new Gauge({
      name: 'streamhub_llm_generations_active',
      help: 'Generations holding a concurrency slot',
      registers: [this.registry],
      collect() {
        this.set(limiter.active);
      },
    });
    new Gauge({
      name: 'streamhub_llm_generations_waiting',
      help: 'Generations queued for a concurrency slot',
      registers: [this.registry],
      collect() {
        this.set(limiter.waiting);
      },
    });
    new Gauge({
      name: 'streamhub_llm_circuit_open',
      help: 'Upstream circuit breaker: 0 closed, 0.5 half open, 1 open',
      registers: [this.registry],
      collect() {
        const state = provider.circuitState?.() ?? 'closed';
        this.set(state === 'open' ? 1 : state === 'half_open' ? 0.5 : 0);
      },
    });
  }

  constructor(connections: ConnectionRegistry) {
    collectDefaultMetrics({
      register: this.registry,
      prefix: 'streamhub_process_',
      // prom-client samples event-loop delay every 10 ms by default, waking an idle server
      // ~100 times a second; 100 ms still shows any stall worth alerting on.
      eventLoopMonitoringPrecision: 100,
    });
    new Gauge({
      name: 'streamhub_connections',
      help: 'Open streaming connections by transport',
      labelNames: ['transport'] as const,
      registers: [this.registry],
      collect() {
        for (const transport of ['sse', 'ws'] as TransportName[]) {
          this.set({ transport }, connections.count(transport));
        }
      },
    });
  }

  readonly hubObserver: HubObserver = {
    delivered: (count) => this.delivered.inc(count),
    replayed: (count) => this.replayed.inc(count),
    resumed: (outcome) => this.resumes.inc({ outcome }),
    latency: (seconds) => this.deliveryLatency.observe(seconds),
  };
}
