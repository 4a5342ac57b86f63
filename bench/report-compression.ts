import { type Cell, count, markdownTable } from './lib/table.js';
import {
  deliveryCells,
  deliveryHeaders,
  limitRow,
  noFailuresRow,
  rateLabel,
  ratio,
  targetCell,
} from './report.js';
import type { CompressionReport } from './scenarios/compression.js';
import { compressionSubjects } from './scenarios/compression.js';
import type { FanoutSummary } from './scenarios/fanout.js';
import type { Subject } from './targets.js';

const { sseOn, sseOff, wsOn, wsOff } = compressionSubjects;
const PAIRS: [Subject, Subject][] = [
  [sseOn, sseOff],
  [wsOn, wsOff],
];

function fanoutOf(report: CompressionReport, subject: Subject, max: boolean) {
  return report.fanout.find((r) => r.subject === subject && (r.opts.rate === 'max') === max);
}

function fanoutTable(report: CompressionReport): string {
  const headers = ['target', 'publish rate', ...deliveryHeaders(), 'CPU on/off', 'wire B/event'];
  const rows: Cell[][] = report.fanout.map((r) => {
    const off = PAIRS.find(([on]) => on === r.subject)?.[1];
    const baseline = off && fanoutOf(report, off, r.opts.rate === 'max');
    return [
      targetCell(r),
      rateLabel(r),
      ...deliveryCells(r),
      baseline ? ratio(r.cpuMicrosPerEvent, baseline.cpuMicrosPerEvent) : undefined,
      r.wireBytesPerEvent,
    ];
  });
  return markdownTable(headers, rows);
}

function idleOf(report: CompressionReport, subject: Subject) {
  return report.idle.find((r) => r.subject === subject);
}

function idleTable(report: CompressionReport): string {
  const headers = ['target', 'connections', 'KiB / connection', 'on/off'];
  const rows: Cell[][] = report.idle.map((r) => {
    const off = PAIRS.find(([on]) => on === r.subject)?.[1];
    const baseline = off && idleOf(report, off);
    return [
      r.subject.label,
      count(r.connections),
      r.kibPerConnection,
      baseline ? ratio(r.kibPerConnection, baseline.kibPerConnection) : undefined,
    ];
  });
  return markdownTable(headers, rows);
}

function completionTable(report: CompressionReport): string {
  const identity = report.completions[0]?.bytesPerChunk;
  return markdownTable(
    ['completion stream', 'chunks', 'wire B/chunk', 'vs identity'],
    report.completions.map((c) => [
      c.label,
      count(c.chunks),
      c.bytesPerChunk,
      ratio(c.bytesPerChunk, identity),
    ]),
  );
}

function targetsTable(report: CompressionReport): string {
  const rows: Cell[][] = [];
  for (const [on, off] of PAIRS) {
    for (const max of [true, false]) {
      const a = fanoutOf(report, on, max);
      const b = fanoutOf(report, off, max);
      const what = `${on.label} @ ${max ? 'max' : 'light'} rate: CPU/event vs off`;
      rows.push(limitRow(what, ratio(a?.cpuMicrosPerEvent, b?.cpuMicrosPerEvent), 1.3));
    }
    const memory = ratio(
      idleOf(report, on)?.kibPerConnection,
      idleOf(report, off)?.kibPerConnection,
    );
    rows.push(limitRow(`${on.label}: idle memory per connection vs off`, memory, 1.5));
  }
  const runs: FanoutSummary[] = report.fanout;
  rows.push(noFailuresRow('events lost, duplicated or reordered (every row)', runs));
  return markdownTable(['target', 'measured', 'limit', 'met'], rows);
}

export function renderCompressionReport(report: CompressionReport, header: string): string {
  return [
    header,
    '### (k) Compression: the same fan-out with compression on and off',
    fanoutTable(report),
    '### (l) Idle memory per compressed connection',
    idleTable(report),
    '### (m) Bytes on the wire of streamed completions',
    completionTable(report),
    '### Compression targets from the issue (informational)',
    targetsTable(report),
  ].join('\n\n');
}
