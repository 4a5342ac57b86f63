import { request } from 'node:http';
import { createGunzip } from 'node:zlib';
import { deflateFrames } from '../../src/transports/sse/compression.js';
import { mapLimit } from '../lib/clients.js';
import { HOST } from '../lib/proc.js';
import { type Subject, servers, withServer } from '../targets.js';
import {
  type FanoutOptions,
  type FanoutResult,
  type FanoutSummary,
  runFanout,
  summarize,
} from './fanout.js';
import { type IdleResult, type IdleSummary, runIdle, summarizeIdle } from './idle.js';

export interface CompressionOptions {
  fanout: Omit<FanoutOptions, 'rate'>;
  rates: FanoutOptions['rate'][];
  rounds: number;
  idle: { connections: number; settleMs: number; rounds: number };
  completions: { count: number; maxTokens: number };
}

/** Bytes on the wire of streamed completions, for one way of asking. */
export interface CompletionWire {
  label: string;
  chunks: number;
  bytesPerChunk: number;
}

export interface CompressionReport {
  fanout: FanoutSummary[];
  idle: IdleSummary[];
  completions: CompletionWire[];
}

export type Attempt = (
  label: string,
  needsStreamhub: boolean,
  progress: string,
  fn: () => Promise<void>,
) => Promise<void>;

/** Every client asks for compression; the baseline is the same server with it off. */
export const compressionSubjects = {
  sseOn: { label: 'SSE, gzip', server: servers.streamhub, transport: 'sse', compressed: true },
  sseOff: {
    label: 'SSE, COMPRESSION=off',
    server: servers.streamhubUncompressed,
    transport: 'sse',
    compressed: true,
  },
  wsOn: {
    label: 'WS, permessage-deflate',
    server: servers.streamhub,
    transport: 'ws',
    compressed: true,
  },
  wsOff: {
    label: 'WS, COMPRESSION=off',
    server: servers.streamhubUncompressed,
    transport: 'ws',
    compressed: true,
  },
} satisfies Record<string, Subject>;

const SUBJECTS: Subject[] = Object.values(compressionSubjects);

export async function runCompressionScenario(
  opts: CompressionOptions,
  attempt: Attempt,
): Promise<CompressionReport> {
  const fanoutRuns = new Map<string, FanoutResult[]>();
  const idleRuns = new Map<string, IdleResult[]>();
  const progress = (round: number, rounds: number) =>
    rounds > 1 ? ` [round ${round}/${rounds}]` : '';
  // Rounds interleave on and off, so drifting background load hits both alike.
  for (let round = 1; round <= opts.rounds; round++) {
    for (const rate of opts.rates) {
      for (const subject of SUBJECTS) {
        const key = `${subject.label} @ ${rate}`;
        await attempt(key, true, progress(round, opts.rounds), async () => {
          const run = await runFanout(subject, { ...opts.fanout, rate });
          fanoutRuns.set(key, [...(fanoutRuns.get(key) ?? []), run]);
        });
      }
    }
  }
  for (let round = 1; round <= opts.idle.rounds; round++) {
    for (const subject of SUBJECTS) {
      const key = `${subject.label}: idle`;
      await attempt(key, true, progress(round, opts.idle.rounds), async () => {
        const run = await runIdle(subject, opts.idle.connections, opts.idle.settleMs);
        idleRuns.set(key, [...(idleRuns.get(key) ?? []), run]);
      });
    }
  }
  const completions: CompletionWire[] = [];
  await attempt('completion streams', true, '', async () => {
    completions.push(...(await measureCompletions(opts.completions)));
  });
  return {
    fanout: [...fanoutRuns.values()].map((runs) => summarize(runs)),
    idle: [...idleRuns.values()].map((runs) => summarizeIdle(runs)),
    completions,
  };
}

interface CompletionRead {
  wireBytes: number;
  /** The SSE frames as decoded, one string each, for the per-connection estimate. */
  frames: string[];
}

/**
 * Streams `count` completions at the mock's default 50 tokens/s (one chunk per batch, as a
 * real model's pace gives) with and without `Accept-Encoding: gzip`, counting socket bytes. A
 * completion is compressed per connection (a reply has one or two viewers); the third row is
 * what the topics' design, each batch deflated once on its own and shared, sends for the same
 * frames: the compression ratio a shared batch gives up.
 */
async function measureCompletions(o: CompressionOptions['completions']): Promise<CompletionWire[]> {
  return withServer(servers.streamhub, {}, async (proc) => {
    const read = (gzip: boolean) =>
      mapLimit(Array.from({ length: o.count }), o.count, () =>
        readCompletion(proc.port, o.maxTokens, gzip),
      );
    const rows: CompletionWire[] = [];
    for (const [label, gzip] of [
      ['identity', false],
      ['gzip, one context per connection (as served)', true],
    ] as const) {
      const reads = await read(gzip);
      const chunks = reads.reduce((n, r) => n + r.frames.length, 0);
      const bytes = reads.reduce((n, r) => n + r.wireBytes, 0);
      rows.push({ label, chunks, bytesPerChunk: bytes / chunks });
      if (!gzip) {
        const shared = reads.flatMap((r) => r.frames.map((f) => deflateFrames(f).payload.length));
        rows.push({
          label: 'gzip, each batch deflated once and shared (estimate, body only)',
          chunks,
          bytesPerChunk: shared.reduce((n, b) => n + b, 0) / chunks,
        });
      }
    }
    return rows;
  });
}

function readCompletion(port: number, maxTokens: number, gzip: boolean): Promise<CompletionRead> {
  const body = JSON.stringify({
    model: 'streamhub-mock',
    stream: true,
    max_tokens: maxTokens,
    messages: [{ role: 'user', content: 'Tell me about compressed event streams.' }],
  });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'text/event-stream',
  };
  if (gzip) headers['accept-encoding'] = 'gzip';
  return new Promise((resolve, reject) => {
    const req = request(
      { host: HOST, port, path: '/v1/chat/completions', method: 'POST', headers, agent: false },
      (res) => {
        const socket = res.socket;
        let text = '';
        const decoded = res.headers['content-encoding'] === 'gzip' ? res.pipe(createGunzip()) : res;
        decoded.setEncoding('utf8');
        decoded.on('data', (chunk: string) => {
          text += chunk;
        });
        decoded.on('error', reject);
        decoded.on('end', () => {
          const frames = text.split(/(?<=\n\n)/).filter((frame) => /^(id|data):/m.test(frame));
          resolve({ wireBytes: socket.bytesRead, frames });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
