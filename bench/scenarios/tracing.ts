import { inSpan } from '../../src/core/tracing.js';
import { OtlpSink } from '../lib/otlp-sink.js';
import type { Step } from '../lib/step.js';
import { type Server, type Subject, servers } from '../targets.js';
import {
  type FanoutOptions,
  type FanoutResult,
  type FanoutSummary,
  runFanout,
  summarize,
} from './fanout.js';

export interface TracingOptions {
  readonly fanout: Omit<FanoutOptions, 'rate'>;
  /** Each measured for every row: subscribers (else `fanout`'s) and publish rate. */
  readonly loads: readonly { readonly subscribers?: number; readonly rate: 'max' | number }[];
  readonly rounds: number;
  /** Another build's `dist/src/cli/main.js` (e.g. from before tracing existed), as a row too. */
  readonly baselineScript?: string | undefined;
}

export interface TracingReport {
  readonly rows: FanoutSummary[];
  /** OTLP bytes the traced server exported per event published to it (its spans). */
  readonly exportedBytesPerPublish: number | undefined;
  /** What a publish's span adds with tracing off (the API's no-op), in ns: see `noopSpanNanos`. */
  readonly noopSpanNanos: number;
}

const NOOP_ROUNDS = 7;
const NOOP_CALLS = 100_000;

/**
 * What tracing off adds to a publish, measured here (this process never loads the SDK, like a
 * server without `OTEL_*` variables): an async call wrapped in `inSpan`, as `TopicService.publish`
 * wraps its append, minus the same call unwrapped; the least of several rounds, the one least
 * disturbed by other processes.
 */
async function noopSpanNanos(): Promise<number> {
  const work = () => Promise.resolve(1);
  const spanned = () => inSpan('publish', { 'messaging.destination.name': 'bench' }, work);
  const nanosPerCall = async (call: () => Promise<unknown>) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < NOOP_CALLS; i++) await call();
    return Number(process.hrtime.bigint() - start) / NOOP_CALLS;
  };
  const added: number[] = [];
  for (let round = 0; round < NOOP_ROUNDS; round++) {
    added.push((await nanosPerCall(spanned)) - (await nanosPerCall(work)));
  }
  return Math.min(...added);
}

function sseSubject(label: string, server: Server): Subject {
  return { label, server, transport: 'sse' };
}

/**
 * SSE fan-out through streamhub with tracing off (no OTLP endpoint: the SDK is not loaded) and
 * on (every request sampled, spans exported over OTLP/HTTP protobuf to a sink in this process),
 * rounds interleaving the rows so that drifting background load hits them alike.
 */
export async function runTracingScenario(o: TracingOptions, attempt: Step): Promise<TracingReport> {
  const sink = await OtlpSink.start();
  const traced: Server = {
    ...servers.streamhub,
    env: (port) => ({
      ...servers.streamhub.env(port),
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
      OTEL_TRACES_SAMPLER: 'always_on',
    }),
  };
  const list = [
    ...(o.baselineScript === undefined
      ? []
      : [
          sseSubject('streamhub SSE, baseline build', {
            ...servers.streamhub,
            script: o.baselineScript,
          }),
        ]),
    sseSubject('streamhub SSE, tracing off', servers.streamhub),
    sseSubject('streamhub SSE, tracing on (all sampled)', traced),
  ];
  const runs = new Map<string, FanoutResult[]>();
  let tracedPublishes = 0;
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const { subscribers = o.fanout.subscribers, rate } of o.loads) {
        for (const subject of list) {
          const label = `${subject.label} @ ${rate}, ${subscribers} subscribers`;
          const progress = o.rounds > 1 ? ` [round ${round}/${o.rounds}]` : '';
          await attempt(label, true, progress, async () => {
            const result = await runFanout(subject, { ...o.fanout, subscribers, rate });
            if (subject.server === traced) tracedPublishes += result.published;
            runs.set(label, [...(runs.get(label) ?? []), result]);
          });
        }
      }
    }
  } finally {
    await sink.close();
  }
  return {
    rows: [...runs.values()].map((r) => summarize(r)),
    exportedBytesPerPublish: tracedPublishes ? sink.bytes / tracedPublishes : undefined,
    noopSpanNanos: await noopSpanNanos(),
  };
}
