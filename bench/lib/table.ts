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

const WIDE = /\p{Emoji_Presentation}/u;

/** Display width, as the formatter counts it: `µ` or `–` take one column, `✅` or `❌` two. */
const width = (s: string) => [...s].reduce((w, ch) => w + (WIDE.test(ch) ? 2 : 1), 0);

/**
 * A Markdown table padded the way Biome formats one, so that a docs file written by a run
 * passes `npm run lint` without a formatter at hand.
 */
export function markdownTable(headers: string[], rows: Cell[][]): string {
  const cells = rows.map((r) => headers.map((_, i) => fmt(r[i])));
  // Right-align columns whose first value is numeric so magnitudes line up (an em dash, a
  // value this row does not have, does not decide).
  const right = headers.map((_, i) => {
    const first = cells.find((r) => r[i] !== '—')?.[i] ?? '';
    return /^-?[\d,.]/.test(first);
  });
  const widths = headers.map((h, i) =>
    Math.max(3, width(h), ...cells.map((r) => width(r[i] ?? ''))),
  );
  const pad = (v: string, i: number) => {
    const fill = ' '.repeat((widths[i] ?? 0) - width(v));
    return right[i] ? fill + v : v + fill;
  };
  const line = (values: string[]) => `| ${values.map(pad).join(' | ')} |`;
  const rule = widths.map((w, i) => (right[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w)));
  return [line(headers), `| ${rule.join(' | ')} |`, ...cells.map(line)].join('\n');
}
