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
  };
}
