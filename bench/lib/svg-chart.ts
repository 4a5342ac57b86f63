/**
 * Line charts as plain SVG, small enough that a docs page can show the bench's curves without a
 * plotting dependency: x on a log scale (load steps grow ×4), y linear from 0.
 */
export interface Series {
  name: string;
  color: string;
  points: readonly (readonly [x: number, y: number])[];
}

export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
}

const PANEL = { width: 460, height: 300, left: 64, right: 16, top: 36, bottom: 64 };
const FONT = 'font-family="sans-serif" font-size="12" fill="#222"';

const xmlEscape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** About five round tick values (1, 2 or 5 × 10^n apart) from 0 up to at least `max`. */
function yTicks(max: number): number[] {
  const raw = (max > 0 ? max : 1) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  return Array.from({ length: Math.ceil(max / step) + 1 }, (_, i) => i * step);
}

const tickLabel = (v: number) =>
  v >= 1000 ? `${Number((v / 1000).toPrecision(3))}k` : String(Number(v.toPrecision(3)));

function panel(chart: Chart): string {
  const { width, height, left, right, top, bottom } = PANEL;
  const points = chart.series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y));
  const xs = [...new Set(points.map(([x]) => x))].sort((a, b) => a - b);
  const [xMin = 1, xMax = 10] = [xs[0], xs[xs.length - 1]];
  const ticks = yTicks(Math.max(0, ...points.map(([, y]) => y)));
  const yMax = ticks[ticks.length - 1] ?? 1;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const span = Math.log(xMax / xMin) || 1;
  const px = (x: number) => left + (Math.log(x / xMin) / span) * plotW;
  const py = (y: number) => top + plotH - (y / yMax) * plotH;
  const grid = ticks.map(
    (t) =>
      `<line x1="${left}" x2="${width - right}" y1="${py(t)}" y2="${py(t)}" stroke="#ddd"/>` +
      `<text x="${left - 6}" y="${py(t) + 4}" text-anchor="end" ${FONT}>${tickLabel(t)}</text>`,
  );
  const xAxis = xs.map(
    (x) =>
      `<line x1="${px(x)}" x2="${px(x)}" y1="${top}" y2="${top + plotH}" stroke="#eee"/>` +
      `<text x="${px(x)}" y="${top + plotH + 16}" text-anchor="middle" ${FONT}>${x}</text>`,
  );
  const lines = chart.series.map((s) => {
    const pts = s.points.filter(([, y]) => Number.isFinite(y));
    const path = pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    const dots = pts.map(
      ([x, y]) =>
        `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.color}"/>`,
    );
    return `<polyline points="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>${dots.join('')}`;
  });
  const legend = chart.series.map(
    (s, i) =>
      `<rect x="${left + i * 150}" y="${height - 20}" width="12" height="12" fill="${s.color}"/>` +
      `<text x="${left + i * 150 + 18}" y="${height - 10}" ${FONT}>${xmlEscape(s.name)}</text>`,
  );
  return [
    `<text x="${width / 2}" y="20" text-anchor="middle" ${FONT} font-weight="bold">${xmlEscape(chart.title)}</text>`,
    ...grid,
    ...xAxis,
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
    `<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle" ${FONT}>${xmlEscape(chart.xLabel)}</text>`,
    `<text transform="translate(14 ${top + plotH / 2}) rotate(-90)" text-anchor="middle" ${FONT}>${xmlEscape(chart.yLabel)}</text>`,
    ...lines,
    ...legend,
  ].join('\n');
}

/** The charts in a grid of `columns`, as one standalone SVG document titled `title`. */
export function chartGrid(title: string, charts: readonly Chart[], columns = 2): string {
  const rows = Math.ceil(charts.length / columns);
  const width = PANEL.width * Math.min(columns, charts.length);
  const height = PANEL.height * rows;
  const panels = charts.map((c, i) => {
    const x = (i % columns) * PANEL.width;
    const y = Math.floor(i / columns) * PANEL.height;
    return `<g transform="translate(${x} ${y})">\n${panel(c)}\n</g>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${xmlEscape(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...panels,
    '</svg>',
    '',
  ].join('\n');
}
