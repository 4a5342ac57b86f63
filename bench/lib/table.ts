export type Cell = string | number | undefined;

/** A number with ~3 significant digits (or `digits` decimals); NaN/undefined as an em dash. */
export function fmt(v: Cell, digits?: number): string {
  if (v === undefined || (typeof v === 'number' && Number.isNaN(v))) return '—';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return '∞';
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** An integer count with thousands separators. */
export const count = (v: number): string => fmt(v, 0);

export function markdownTable(headers: string[], rows: Cell[][]): string {
  const cells = rows.map((r) => r.map((c) => fmt(c)));
  const line = (values: string[]) => `| ${values.join(' | ')} |`;
  // Right-align columns whose first value is numeric so magnitudes line up (an em dash, a
  // value this row does not have, does not decide).
  const align = headers.map((_, i) => {
    const first = cells.find((r) => r[i] !== '—')?.[i] ?? '';
    return /^-?[\d,.]/.test(first) ? '---:' : '---';
  });
  return [line(headers), line(align), ...cells.map(line)].join('\n');
}
