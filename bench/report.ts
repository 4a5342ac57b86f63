import { percentile } from './lib/stats.js';
import type { Chart } from './lib/svg-chart.js';
import { type Cell, count, fmt, markdownTable } from './lib/table.js';
import type { FanoutSummary } from './scenarios/fanout.js';
import {
  FRONT_DOOR,
  type GatewayPath,
  type GatewayReport,
  PATH_LABELS,
  type Spread,
} from './scenarios/gateway.js';
import type { IdleSummary } from './scenarios/idle.js';
import { type CpuShare, LOAD_TARGETS, type LoadReport } from './scenarios/load.js';
import type { ReplayReport } from './scenarios/replay.js';
import {
  type Deployment,
  deployments,
  type RateKind,
  type ScaleOutReport,
  type ScaleOutSummary,
} from './scenarios/scale-out.js';
import {
  pooled,
  type StreamsReport,
  type StreamsTargetName,
  streamsTargets,
} from './scenarios/streams.js';
import type { TracingReport } from './scenarios/tracing.js';
import { type Subject, subjects } from './targets.js';

export interface Results {
  fanout: FanoutSummary[];
  idle: IdleSummary[];
  replay: ReplayReport | undefined;
  gateway: GatewayReport | undefined;
  scaleOut: ScaleOutReport | undefined;
  streams: StreamsReport | undefined;
  tracing: TracingReport | undefined;
  load: LoadReport | undefined;
  /** Rows that could not be measured, e.g. streamhub not built yet or a run that failed. */
  missing: { scenario: string; label: string; reason: string }[];
}

export const rateLabel = (r: FanoutSummary) =>
  r.opts.rate === 'max' ? `max (${r.opts.publishers} in flight)` : `${r.opts.rate}/s`;

const missingRows = (res: Results, scenario: string, width: number): Cell[][] =>
  res.missing
    .filter((m) => m.scenario === scenario)
    .map((m) => [m.label, m.reason, ...Array<Cell>(width - 2).fill(undefined)]);

/** A paced run whose publishers queued up: the target could not carry that rate. */
const fellBehind = (r: FanoutSummary) =>
  typeof r.opts.rate === 'number' && r.publishedPerSec < 0.95 * r.opts.rate;

/** The target's name, flagged when a run did not drain, fell behind or lost publishes. */
export const targetCell = (r: FanoutSummary): string =>
  [
    r.subject.label,
    r.drained ? '' : ' (not drained)',
    fellBehind(r) ? ' (fell behind the rate)' : '',
    r.publishErrors ? ` (${r.publishErrors} failed publishes, counted as lost)` : '',
  ].join('');

const cpuRange = (r: FanoutSummary): Cell =>
  r.rounds > 1 ? `${fmt(r.cpuMin)}–${fmt(r.cpuMax)}` : undefined;

/** The columns every fan-out table has; `summed` marks CPU summed over several processes. */
export const deliveryHeaders = (summed = false) => [
  'delivered ev/s',
  'p50 ms',
  'p99 ms',
  'lost',
  'dup',
  'reordered',
  'disconnected',
  summed ? 'server CPU µs/event (all processes)' : 'server CPU µs/event',
  'min–max',
  summed ? 'server CPU % (sum)' : 'server CPU %',
];

export const deliveryCells = (r: FanoutSummary): Cell[] => [
  count(r.deliveredPerSec),
  r.p50,
  r.p99,
  count(r.lost),
  count(r.duplicated),
  count(r.reordered),
  count(r.disconnected),
  r.cpuMicrosPerEvent,
  cpuRange(r),
  r.serverCpuPct,
];

function fanoutTable(res: Results, scenario: string, rows: FanoutSummary[]): string {
  const headers = [
    'target',
    'publish rate',
    ...deliveryHeaders(),
    'loadgen CPU %',
    'other CPU %',
    'server RSS MiB',
  ];
  const body: Cell[][] = rows.map((r) => [
    targetCell(r),
    rateLabel(r),
    ...deliveryCells(r),
    r.loadgenCpuPct,
    r.otherCpuPct,
    r.rssMiB,
  ]);
  return markdownTable(headers, [...body, ...missingRows(res, scenario, headers.length)]);
}

function idleTable(res: Results): string {
  const headers = [
    'target',
    'connections',
    'RSS before MiB',
    'RSS after MiB',
    'KiB / connection',
    'min–max',
  ];
  const body: Cell[][] = res.idle.map((r) => [
    r.subject.label,
    count(r.connections),
    r.rssBeforeMiB,
    r.rssAfterMiB,
    r.kibPerConnection,
    r.rounds > 1 ? `${fmt(r.kibMin)}–${fmt(r.kibMax)}` : undefined,
  ]);
  return markdownTable(headers, [...body, ...missingRows(res, 'idle-memory', headers.length)]);
}

function replayTable(res: Results): string {
  const headers = [
    'mode',
    'events',
    'ms (median)',
    'events/s (median)',
    'events/s (best)',
    'goal',
    'notes',
  ];
  const body: Cell[][] = (res.replay?.results ?? []).map((r) => [
    r.label,
    count(r.events),
    r.ms,
    count(r.eventsPerSec),
    count(r.bestPerSec),
    r.eventsPerSec >= 200_000 ? '≥ 200,000 ✅' : '≥ 200,000 ❌',
    r.ok ? 'complete, in order' : r.note,
  ]);
  const table = markdownTable(headers, [...body, ...missingRows(res, 'replay', headers.length)]);
  return res.replay
    ? `${table}\n\nFilling the history (one POST at a time, no subscribers): ${count(
        res.replay.publishPerSec,
      )} publishes/s.`
    : table;
}

const find = (res: Results, s: Subject, rate: 'max' | 'light') =>
  res.fanout.find((r) => r.subject === s && (rate === 'max') === (r.opts.rate === 'max'));

export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || !b ? undefined : a / b;
}

/** A target row: `value` against `limit` (`< limit` when strict, else `≤`), in `unit`. */
export function limitRow(
  what: string,
  value: number | undefined,
  limit: number,
  { strict = false, unit = '×' } = {},
): Cell[] {
  const known = value !== undefined && !Number.isNaN(value);
  const met = !known ? '—' : (strict ? value < limit : value <= limit) ? '✅' : '❌';
  return [
    what,
    known ? `${fmt(value)}${unit}` : 'pending',
    `${strict ? '<' : '≤'} ${fmt(limit)}${unit}`,
    met,
  ];
}

/** A target row: no event lost, duplicated or reordered in any of these (summed) runs. */
export function noFailuresRow(what: string, runs: readonly FanoutSummary[]): Cell[] {
  const bad = runs.reduce((n, r) => n + r.lost + r.duplicated + r.reordered, 0);
  return [
    what,
    runs.length ? count(bad) : 'pending',
    '0',
    runs.length ? (bad === 0 ? '✅' : '❌') : '—',
  ];
}

/** The issue's targets next to what this run measured; informational, never fails the run. */
function targetsTable(res: Results): string {
  const rows: Cell[][] = [];
  const check = (what: string, value: number | undefined, limit: number, strict = false) =>
    rows.push(limitRow(what, value, limit, { strict }));
  const cpu = (s: Subject, rate: 'max' | 'light') => find(res, s, rate)?.cpuMicrosPerEvent;
  for (const rate of ['max', 'light'] as const) {
    const tag = rate === 'max' ? 'max rate' : 'light rate';
    const sse = cpu(subjects.streamhubSse, rate);
    const ws = cpu(subjects.streamhubWs, rate);
    const sio = cpu(subjects.socketio, rate);
    check(`CPU/event ${tag}: streamhub SSE ÷ raw SSE`, ratio(sse, cpu(subjects.rawSse, rate)), 1);
    check(`CPU/event ${tag}: streamhub WS ÷ raw ws`, ratio(ws, cpu(subjects.rawWs, rate)), 1.1);
    check(`CPU/event ${tag}: streamhub SSE ÷ Socket.IO`, ratio(sse, sio), 1, true);
    check(`CPU/event ${tag}: streamhub WS ÷ Socket.IO`, ratio(ws, sio), 1, true);
  }
  const mem = (s: Subject) => res.idle.find((r) => r.subject === s)?.kibPerConnection;
  check(
    'idle memory/conn: streamhub SSE ÷ raw SSE',
    ratio(mem(subjects.streamhubSse), mem(subjects.rawSse)),
    1.2,
  );
  check(
    'idle memory/conn: streamhub WS ÷ raw ws',
    ratio(mem(subjects.streamhubWs), mem(subjects.rawWs)),
    1.2,
  );
  check(
    'idle memory/conn: streamhub /v1/ws ÷ raw ws',
    ratio(mem(subjects.streamhubMux), mem(subjects.rawWs)),
    1.2,
  );

  rows.push(
    noFailuresRow(
      'streamhub lost + duplicated + reordered (all fan-out runs)',
      res.fanout.filter((r) => r.subject.server.name === 'streamhub'),
    ),
  );
  const slowest = res.replay?.results.reduce((m, r) => Math.min(m, r.eventsPerSec), Infinity);
  rows.push([
    'replay, slowest mode (median events/s)',
    slowest === undefined ? 'pending' : count(slowest),
    '≥ 200,000',
    slowest === undefined ? '—' : slowest >= 200_000 ? '✅' : '❌',
  ]);
  return markdownTable(['target', 'measured', 'goal', 'met'], rows);
}

export function renderReport(res: Results, header: string): string {
  const sections = [header];
  const sse = res.fanout.filter((r) => r.subject.transport === 'sse');
  const ws = res.fanout.filter((r) => r.subject.transport !== 'sse');
  const hasMissing = (s: string) => res.missing.some((m) => m.scenario === s);
  if (sse.length || hasMissing('sse-fanout')) {
    sections.push(
      '### (a) SSE fan-out: 1 topic, 1 publisher → N subscribers',
      fanoutTable(res, 'sse-fanout', sse),
    );
  }
  if (ws.length || hasMissing('ws-fanout')) {
    sections.push(
      '### (b) WebSocket fan-out: 1 topic → N subscribers',
      fanoutTable(res, 'ws-fanout', ws),
    );
  }
  if (res.idle.length || hasMissing('idle-memory')) {
    sections.push('### (c) Resident memory per idle connection', idleTable(res));
  }
  if (res.replay || hasMissing('replay')) {
    sections.push('### (d) Replay from history (streamhub, memory backend)', replayTable(res));
  }
  sections.push('### Targets from the issue (informational)', targetsTable(res));
  return sections.join('\n\n');
}

/** Short names of the gateway paths, for comparisons and targets. */
const PATH_NAMES: Record<GatewayPath, string> = {
  direct: 'direct',
  proxy: 'raw proxy',
  completions: 'streamhub `/v1/chat/completions`',
  session: 'streamhub `/v1/chat`',
};

/** The median round, with the other rounds' extremes next to it. */
function spreadCell(value: Spread | undefined, unit: string): Cell {
  if (value === undefined || Number.isNaN(value.median)) return undefined;
  const range = value.rounds > 1 ? ` (rounds ${fmt(value.min)} to ${fmt(value.max)})` : '';
  return `${fmt(value.median)}${unit}${range}`;
}

const comparison = <T extends { path: GatewayPath; against: GatewayPath }>(
  list: readonly T[] | undefined,
  path: GatewayPath,
  against: GatewayPath,
): T | undefined => list?.find((c) => c.path === path && c.against === against);

const comparisonLabel = (c: { path: GatewayPath; against: GatewayPath }) =>
  `${PATH_NAMES[c.path]} vs ${PATH_NAMES[c.against]}`;

/** A gateway row that could not be measured belongs to (e) or, by its path's label, to (f). */
const isFrontDoor = (row: Cell[]) => row[0] === FRONT_DOOR;

function frontDoorTable(res: Results): string {
  const headers = [
    'path',
    'completions',
    'tokens/s (median)',
    'min–max',
    'TTFT p50 ms',
    'TTFT p99 ms',
    'TTFT samples',
    'gateway CPU µs/token',
    'upstream CPU µs/token',
    'loadgen CPU µs/token',
    'failed',
  ];
  const body: Cell[][] = (res.gateway?.frontDoor?.rows ?? []).map((r) => [
    PATH_LABELS[r.path],
    count(r.completions),
    count(r.tokensPerSec),
    `${count(r.tokensPerSecMin)}–${count(r.tokensPerSecMax)}`,
    r.ttftP50,
    r.ttftP99,
    count(r.ttftSamples),
    r.gatewayMicrosPerToken,
    r.upstreamMicrosPerToken,
    r.loadgenMicrosPerToken,
    count(r.failures),
  ]);
  const missing = missingRows(res, 'gateway', headers.length).filter(isFrontDoor);
  return markdownTable(headers, [...body, ...missing]);
}

function frontDoorComparisonTable(res: Results): string {
  const body: Cell[][] = (res.gateway?.frontDoor?.comparisons ?? []).map((c) => [
    comparisonLabel(c),
    spreadCell(c.throughputRatio, '×'),
    spreadCell(c.addedTtftP50, ' ms'),
  ]);
  return markdownTable(['compared within each round', 'tokens/s ratio', 'added TTFT p50'], body);
}

function chatsTable(res: Results): string {
  const headers = [
    'path',
    'chats (all rounds)',
    'complete',
    'gap p50 ms',
    'gap p99 ms',
    'gap p99.9 ms',
    'gap max ms',
    'TTFT p50 ms',
    'TTFT p99 ms',
    'gateway CPU %',
    'gateway CPU µs/token',
    'upstream CPU %',
    'loadgen CPU %',
    'other CPU %',
    'RSS idle MiB',
    'RSS active MiB',
    'KiB / chat',
  ];
  const body: Cell[][] = (res.gateway?.chats ?? []).map((r) => [
    r.failures.length
      ? `${PATH_LABELS[r.path]} (errors: ${r.failures.join('; ').slice(0, 120)})`
      : PATH_LABELS[r.path],
    count(r.chats),
    count(r.complete),
    r.gapP50,
    r.gapP99,
    r.gapP999,
    r.gapMax,
    r.ttftP50,
    r.ttftP99,
    r.gatewayCpuPct,
    r.gatewayMicrosPerToken,
    r.upstreamCpuPct,
    r.loadgenCpuPct,
    r.otherCpuPct,
    r.rssIdleMiB,
    r.rssActiveMiB,
    r.kibPerChat,
  ]);
  const missing = missingRows(res, 'gateway', headers.length).filter((m) => !isFrontDoor(m));
  return markdownTable(headers, [...body, ...missing]);
}

function chatsComparisonTable(res: Results): string {
  const body: Cell[][] = (res.gateway?.chatComparisons ?? []).map((c) => [
    comparisonLabel(c),
    spreadCell(c.addedGapP99, ' ms'),
    spreadCell(c.cpuPerTokenRatio, '×'),
  ]);
  return markdownTable(
    ['compared within each round', 'added gap p99', 'gateway CPU µs/token ratio'],
    body,
  );
}

/** The issue's gateway targets next to this run's numbers; informational, never fails. */
function gatewayTargetsTable(res: Results): string {
  const g = res.gateway;
  const rows: Cell[][] = [];
  /** The median round against the goal. */
  const check = (
    what: string,
    value: Spread | undefined,
    unit: string,
    goal: string,
    met: (v: number) => boolean,
  ) => {
    const cell = spreadCell(value, unit);
    rows.push([
      what,
      cell ?? 'pending',
      goal,
      cell === undefined || !value ? '—' : met(value.median) ? '✅' : '❌',
    ]);
  };
  const single = comparison(g?.frontDoor?.comparisons, 'completions', 'proxy');
  check(
    'single stream tokens/s: streamhub ÷ raw proxy',
    single?.throughputRatio,
    '×',
    '≥ 0.9×',
    (v) => v >= 0.9,
  );
  check(
    'single stream TTFT p50 added over the raw proxy',
    single?.addedTtftP50,
    ' ms',
    '< 0.5 ms',
    (v) => v < 0.5,
  );
  const load = g
    ? `${count(g.opts.chats.count)} chats at ${g.opts.chats.tps} tokens/s`
    : 'concurrent chats';
  for (const path of ['completions', 'session'] as const) {
    check(
      `${load}: CPU/token, ${PATH_NAMES[path]} ÷ raw proxy`,
      comparison(g?.chatComparisons, path, 'proxy')?.cpuPerTokenRatio,
      '×',
      '≤ 1.3×',
      (v) => v <= 1.3,
    );
    for (const against of ['direct', 'proxy'] as const) {
      check(
        `${load}: inter-token p99 added by ${PATH_NAMES[path]} over ${PATH_NAMES[against]}`,
        comparison(g?.chatComparisons, path, against)?.addedGapP99,
        ' ms',
        '< 10 ms',
        (v) => v < 10,
      );
    }
  }
  for (const path of ['completions', 'session', 'proxy'] as const) {
    const row = g?.chats.find((r) => r.path === path);
    rows.push([
      `memory per active chat: ${PATH_NAMES[path]}`,
      row ? `${fmt(row.kibPerChat)} KiB` : 'pending',
      'recorded',
      '—',
    ]);
  }
  return markdownTable(['target', 'measured', 'goal', 'met'], rows);
}

export function renderGatewayReport(res: Results, header: string): string {
  const chats = res.gateway?.opts.chats;
  return [
    header,
    '### (e) Single stream: `POST /v1/chat/completions` directly, through a raw proxy and through streamhub',
    frontDoorTable(res),
    frontDoorComparisonTable(res),
    `### (f) ${chats ? `${count(chats.count)} concurrent chats at ${chats.tps} tokens/s` : 'Concurrent chats'}: inter-token gaps, CPU and memory`,
    chatsTable(res),
    chatsComparisonTable(res),
    '### Gateway targets from the issue (informational)',
    gatewayTargetsTable(res),
  ].join('\n\n');
}

const scaleOutRate = (r: ScaleOutSummary): string =>
  r.kind === 'half' ? `½ max: ${count(Number(r.opts.rate))}/s` : rateLabel(r);

function scaleOutTable(res: Results): string {
  const headers = [
    'target',
    'publish rate',
    'published ev/s',
    ...deliveryHeaders(true),
    'Redis CPU %',
    'loadgen CPU %',
    'other CPU %',
    'server RSS MiB (sum)',
  ];
  const body: Cell[][] = (res.scaleOut?.rows ?? []).map((r) => [
    targetCell(r),
    scaleOutRate(r),
    count(r.publishedPerSec),
    ...deliveryCells(r),
    r.redis?.cpuPct,
    r.loadgenCpuPct,
    r.otherCpuPct,
    r.rssMiB,
  ]);
  return markdownTable(headers, [...body, ...missingRows(res, 'scale-out', headers.length)]);
}

/** `evalsha 1.00, xadd 1.00, …`: the most frequent commands, per published event. */
function commandList(list: [string, number][] | undefined, top = 8): Cell {
  if (!list?.length) return undefined;
  // A `|` (subcommands, e.g. `client|setname`) would end the Markdown table cell.
  return list
    .slice(0, top)
    .map(([name, n]) => `${name.replaceAll('|', ' ')} ${fmt(n)}`)
    .join(', ');
}

function redisTable(res: Results): string {
  const headers = [
    'target',
    'publish rate',
    'Redis CPU %',
    'Redis CPU µs / published event',
    'commands / published event',
    'most called, per published event (incl. inside scripts)',
    'round trips / publish',
    'round trips by command, per published event',
  ];
  const rows = (res.scaleOut?.rows ?? []).filter((r) => r.redis);
  const body: Cell[][] = rows.map((r) => [
    r.subject.label,
    scaleOutRate(r),
    r.redis?.cpuPct,
    r.redis?.cpuMicrosPerPublished,
    r.redis?.commandsPerPublished,
    commandList(r.redis?.topCommands),
    r.redis?.roundTripsPerPublished,
    commandList(r.redis?.topRoundTrips),
  ]);
  return markdownTable(headers, body);
}

const scaleOutRow = (res: Results, d: Deployment, kind: RateKind) =>
  res.scaleOut?.rows.find((r) => r.deployment === d && r.kind === kind);

/** The issue's scale-out targets next to this run's numbers; informational, never fails. */
function scaleOutTargetsTable(res: Results): string {
  const { streamhubRedis, streamhubCluster, streamhubMemory, socketioRedis } = deployments;
  const rows: Cell[][] = [];
  const cpu = (d: Deployment, kind: RateKind) => scaleOutRow(res, d, kind)?.cpuMicrosPerEvent;
  for (const kind of ['max', 'half'] as const) {
    const tag = kind === 'max' ? 'max rate' : '½ max rate';
    const mine = cpu(streamhubRedis, kind);
    rows.push(
      limitRow(
        `Redis round trips per publish, streamhub ×3 (${tag})`,
        scaleOutRow(res, streamhubRedis, kind)?.redis?.roundTripsPerPublished,
        // One per publish; the sample's edges (POSTs in flight) blur it by a few hundredths.
        1.05,
        { unit: '' },
      ),
      limitRow(
        `CPU/delivered event ${tag}: streamhub Redis ×3 ÷ memory ×1`,
        ratio(mine, cpu(streamhubMemory, kind)),
        1.3,
      ),
      limitRow(
        `CPU/delivered event ${tag}: streamhub Redis Cluster ×3 ÷ memory ×1`,
        ratio(cpu(streamhubCluster, kind), cpu(streamhubMemory, kind)),
        1.3,
      ),
      limitRow(
        `CPU/delivered event ${tag}: streamhub Redis ×3 ÷ Socket.IO Redis ×3`,
        ratio(mine, cpu(socketioRedis, kind)),
        1,
        { strict: true },
      ),
    );
  }
  const half = scaleOutRow(res, streamhubRedis, 'half');
  const latency = limitRow('p99 publish→deliver at ½ max rate, streamhub Redis ×3', half?.p99, 50, {
    strict: true,
    unit: ' ms',
  });
  // Latency suffers most from a busy machine: show the rounds' spread next to the median run.
  if (half && half.rounds > 1) latency[1] += ` (rounds ${fmt(half.p99Min)} to ${fmt(half.p99Max)})`;
  rows.push(latency);
  for (const d of [streamhubRedis, streamhubCluster]) {
    rows.push(
      noFailuresRow(
        `${d.subject.label}: lost + duplicated + reordered (all runs)`,
        res.scaleOut?.rows.filter((r) => r.deployment === d) ?? [],
      ),
    );
  }
  return markdownTable(['target', 'measured', 'goal', 'met'], rows);
}

export function renderScaleOutReport(res: Results, header: string): string {
  return [
    header,
    '### (g) Scale-out: 3 processes on one Redis and on a 3-master Redis Cluster vs 1 process in memory vs Socket.IO on Redis',
    scaleOutTable(res),
    '### (h) Redis work per published event',
    redisTable(res),
    '### Scale-out targets from the issue (informational)',
    scaleOutTargetsTable(res),
  ].join('\n\n');
}

const STREAMS_ORDER: StreamsTargetName[] = ['streamhub', 'resumable-stream', 'streamhub-memory'];

/** Per load (the issue's first), per target: the runs pooled over rounds. */
function streamsRows(res: Results) {
  const runs = res.streams?.runs ?? [];
  return (res.streams?.opts.loads ?? []).flatMap((streams) =>
    STREAMS_ORDER.map((name) => {
      const mine = runs.filter((r) => r.target === name && r.streams === streams);
      return {
        name,
        streams,
        label: `${streamsTargets[name].label} @ ${streams} streams`,
        pool: mine.length ? pooled(mine) : undefined,
      };
    }),
  );
}

const kb = (bytes: number) => bytes / 1024;

function streamsTable(res: Results): string {
  const rows = streamsRows(res);
  const lateS = (res.streams?.opts.lateMs ?? 0) / 1000;
  const peerCpu = (streams: number) =>
    rows.find((r) => r.name === 'resumable-stream' && r.streams === streams)?.pool?.totalCpu;
  const headers = [
    'target',
    'server CPU µs/chunk',
    'Redis CPU µs/chunk',
    'total µs/chunk',
    '× peer',
    'chunk p50 ms',
    'chunk p99 ms',
    'server KB/open stream',
    'Redis KB/open stream',
    'resume p50 ms',
    'resume p99 ms',
    'consumers whole',
    `late (> ${fmt(lateS)} s)`,
    'latest end s',
    'hung',
  ];
  const body = rows.flatMap(({ label, streams, pool: p }): Cell[][] => {
    if (p === undefined) return [];
    return [
      [
        label,
        p.serverCpu,
        p.redisCpu,
        p.totalCpu,
        ratio(p.totalCpu, peerCpu(streams)),
        p.latency.percentile(50),
        p.latency.percentile(99),
        kb(p.serverRss),
        kb(p.redisBytes),
        percentile(p.resume, 50),
        percentile(p.resume, 99),
        `${count(p.whole)} / ${count(p.consumers)}`,
        count(p.late),
        p.maxLateMs / 1000,
        count(p.hung),
      ],
    ];
  });
  return markdownTable(headers, [...body, ...missingRows(res, 'streams', headers.length)]);
}

/** Consumers that did not get every chunk, per target and how they ended. */
function streamsIncomplete(res: Results): string {
  const lines = streamsRows(res).flatMap(({ label, pool }) =>
    [...(pool?.incomplete ?? [])].map(([how, n]) => `- ${label}: ${count(n)} × ${how}`),
  );
  return lines.length
    ? lines.join('\n')
    : '- Every consumer of every target got every chunk once, in order.';
}

function deathTable(res: Results): string {
  const headers = [
    'target',
    'consumers on the other process',
    'how they ended',
    'a reader arriving after the death',
  ];
  const body = (res.streams?.deaths ?? []).map((d): Cell[] => [
    streamsTargets[d.target].label,
    count(d.watching),
    d.outcomes
      .map((o) =>
        o.ending === 'hung'
          ? `still waiting after ${fmt((res.streams?.opts.death.watchMs ?? 0) / 1000)} s: ${count(o.count)}`
          : `${o.ending}: ${count(o.count)}, after ${fmt(o.medianMs / 1000)} s (median)`,
      )
      .join('; '),
    d.latecomer,
  ]);
  return markdownTable(headers, body);
}

function streamsTargetsTable(res: Results): string {
  // The issue's load is the first.
  const rows = streamsRows(res).filter((r) => r.streams === res.streams?.opts.loads[0]);
  const mine = rows.find((r) => r.name === 'streamhub')?.pool;
  const peer = rows.find((r) => r.name === 'resumable-stream')?.pool;
  const deaths = res.streams?.deaths.find((d) => d.target === 'streamhub');
  const hungAfterDeath = deaths?.outcomes.find((o) => o.ending === 'hung')?.count ?? 0;
  return markdownTable(
    ['target', 'measured', 'goal', 'met'],
    [
      limitRow(
        `CPU per chunk (server + Redis) @ ${res.streams?.opts.loads[0]} streams: streamhub ÷ resumable-stream`,
        ratio(mine?.totalCpu, peer?.totalCpu),
        0.8,
      ),
      hungRow(streamsRows(res), hungAfterDeath),
    ],
  );
}

export function renderStreamsReport(res: Results, header: string): string {
  return [
    header,
    '### (i) Resumable streams from a producer: streamhub vs resumable-stream, on one Redis (and streamhub in memory)',
    streamsTable(res),
    streamsIncomplete(res),
    '### (j) When the process that produces a stream dies',
    deathTable(res),
    '### Stream targets from the issue (informational)',
    streamsTargetsTable(res),
  ].join('\n\n');
}

/** Every streamhub consumer, of every load and of the producer's death, ended. */
function hungRow(rows: ReturnType<typeof streamsRows>, hungAfterDeath: number): Cell[] {
  const pools = rows.filter((r) => r.name === 'streamhub').flatMap((r) => (r.pool ? [r.pool] : []));
  const hung = pools.reduce((n, p) => n + p.hung, hungAfterDeath);
  return [
    'streamhub consumers that hung (every load, and the producer death)',
    pools.length ? count(hung) : 'pending',
    '0',
    pools.length ? (hung === 0 ? '✅' : '❌') : '—',
  ];
}

/** Server CPU per event of each tracing row against tracing off, with the same load. */
function tracingCostTable(rows: readonly FanoutSummary[]): string {
  const sameLoad = (a: FanoutSummary, b: FanoutSummary) =>
    a.opts.rate === b.opts.rate && a.opts.subscribers === b.opts.subscribers;
  const off = (row: FanoutSummary) =>
    rows.find((r) => sameLoad(r, row) && r.subject.label.endsWith('tracing off'));
  const body = rows.map((r) => [
    r.subject.label,
    count(r.opts.subscribers),
    rateLabel(r),
    r.cpuMicrosPerEvent,
    ratio(r.cpuMicrosPerEvent, off(r)?.cpuMicrosPerEvent),
    ratio(r.cpuMin, off(r)?.cpuMin),
  ]);
  return markdownTable(
    [
      'target',
      'subscribers',
      'publish rate',
      'server CPU µs/event',
      '× tracing off',
      '× off, best rounds',
    ],
    body,
  );
}

export function renderTracingReport(res: Results, header: string): string {
  const rows = res.tracing?.rows ?? [];
  const loads = [...new Set(rows.map((r) => r.opts.subscribers))];
  const letter = (i: number) => String.fromCharCode('k'.charCodeAt(0) + i);
  const tables = loads.map((n, i) => [
    `### (${letter(i)}) Tracing off and on: SSE fan-out to ${count(n)} subscribers`,
    fanoutTable(
      res,
      'tracing',
      rows.filter((r) => r.opts.subscribers === n),
    ),
  ]);
  const noop = res.tracing?.noopSpanNanos;
  return [
    header,
    ...tables.flat(),
    `### (${letter(loads.length)}) What tracing costs`,
    tracingCostTable(rows),
    `- A publish's span with tracing off (the API's no-op, measured in the load generator, least of 7 rounds of 100,000 calls): ${fmt(noop === undefined ? undefined : noop / 1000, 3)} µs`,
    `- OTLP bytes exported per published event (tracing on): ${fmt(res.tracing?.exportedBytesPerPublish)}`,
  ].join('\n\n');
}

/** Server CPU time per operation: steadier than rates when other tenants take the CPUs. */
const cpuPerOp = (cpuPct: number, perSec: number): number => (cpuPct / 100) * (1e6 / perSec);

/** autocannon counts whole milliseconds: 0 means under one. */
const wholeMs = (ms: number): Cell => (ms === 0 ? '< 1' : count(ms));

/** One step of the load scenario, publish or open, as a table row sees it. */
interface LoadRow extends CpuShare {
  target: string;
  load: number;
  perSec: number;
  p50: Cell;
  p99: Cell;
  errors: number;
}

/** A load table; failed steps (labels starting with `kind`) become rows too. */
function loadTable(
  res: Results,
  kind: string,
  names: [load: string, rate: string, op: string],
  rows: LoadRow[],
) {
  const [load, rate, op] = names;
  const body = rows.map((r) => [
    r.target,
    count(r.load),
    r.perSec,
    r.p50,
    r.p99,
    count(r.errors),
    cpuPerOp(r.serverCpuPct, r.perSec),
    r.serverCpuPct,
    r.loadgenCpuPct,
    r.otherCpuPct,
  ]);
  const missing = missingRows(res, 'load', 10).filter((row) => String(row[0]).startsWith(kind));
  return markdownTable(
    [
      'target',
      load,
      rate,
      'p50 ms',
      'p99 ms',
      'errors',
      `server CPU µs/${op}`,
      'server CPU %',
      'load generator CPU %',
      'other CPU %',
    ],
    [...body, ...missing],
  );
}

const publishTable = (res: Results) =>
  loadTable(
    res,
    'publish',
    ['connections', 'publishes/s', 'publish'],
    (res.load?.publish ?? []).map((r) => ({
      ...r,
      load: r.connections,
      perSec: r.qps,
      p50: wholeMs(r.p50),
      p99: wholeMs(r.p99),
    })),
  );

const openTable = (res: Results) =>
  loadTable(
    res,
    'SSE open',
    ['opens in flight', 'opens/s', 'open'],
    (res.load?.open ?? []).map((r) => ({ ...r, load: r.concurrency, perSec: r.opensPerSec })),
  );

const LOAD_COLORS = ['#1f6fb4', '#e07b10'];

type LoadStep = { target: string; p99: number };

/** Two panels over one kind of step: its rate, and its p99 latency; one line per target. */
function ratePanels<R extends LoadStep>(
  rows: readonly R[],
  x: { label: string; of: (r: R) => number },
  rate: { title: string; unit: string; of: (r: R) => number },
  latencyTitle: string,
): Chart[] {
  const lines = (y: (r: R) => number) =>
    LOAD_TARGETS.map((t, i) => ({
      name: t.label,
      color: LOAD_COLORS[i % LOAD_COLORS.length] ?? '#000',
      points: rows.filter((r) => r.target === t.label).map((r) => [x.of(r), y(r)] as const),
    }));
  return [
    { title: rate.title, xLabel: x.label, yLabel: rate.unit, series: lines(rate.of) },
    { title: latencyTitle, xLabel: x.label, yLabel: 'ms', series: lines((r) => r.p99) },
  ];
}

/** The curves of the load scenario: publishes on top, SSE opens below. */
export const loadCharts = (load: LoadReport): Chart[] => [
  ...ratePanels(
    load.publish,
    { label: 'publishing connections (log scale)', of: (r) => r.connections },
    { title: 'Publish throughput', unit: 'publishes/s', of: (r) => r.qps },
    'Publish latency p99',
  ),
  ...ratePanels(
    load.open,
    { label: 'SSE opens in flight (log scale)', of: (r) => r.concurrency },
    { title: 'New SSE subscribers', unit: 'opens/s', of: (r) => r.opensPerSec },
    'SSE open time p99',
  ),
];

export function renderLoadReport(
  res: Results,
  header: string,
  chartPath: string,
  chartTitle: string,
): string {
  return [
    header,
    `![${chartTitle}](${chartPath})`,
    '### (n) Stepped publish load: `POST /v1/topics/{topic}/events`',
    publishTable(res),
    '### (o) New SSE subscribers: open, wait for the headers, hang up',
    openTable(res),
  ].join('\n\n');
}
