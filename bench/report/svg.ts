import { escape, formatTick } from './format.js';

/**
 * Charts drawn as inline SVG when the report is written: the page needs no script, no library and
 * no network, renders the same in every browser, and stays readable as plain files years later.
 * (A charting library inlined from node_modules would add ~200 kB of script for four chart types.)
 */

export interface Scale {
  kind: 'linear' | 'log' | 'nines';
  min: number;
  max: number;
}

export interface LineSeries {
  label: string;
  color: string;
  /** SVG stroke-dasharray, to tell repetitions apart. */
  dash?: string;
  points: Array<[number, number]>;
}

const FONT = 'font-family="system-ui, sans-serif" font-size="11"';

/** The percentile axis of latency plots: x = log10(1 / (1 − p)), so 90, 99, 99.9 … are evenly spaced. */
export const NINES_MAX = 4.5;
export function ninesOf(pct: number): number {
  return pct >= 100 ? NINES_MAX : Math.min(NINES_MAX - 0.3, Math.log10(100 / (100 - pct)));
}

function project(scale: Scale, value: number): number {
  if (scale.kind === 'log') {
    const low = Math.log10(scale.min);
    return (Math.log10(Math.max(value, scale.min)) - low) / Math.max(1e-9, Math.log10(scale.max) - low);
  }
  return (value - scale.min) / Math.max(1e-9, scale.max - scale.min);
}

export function linearTicks(min: number, max: number, count = 5): number[] {
  const span = max - min || 1;
  const rough = span / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((factor) => factor * power).find((candidate) => span / candidate <= count) ?? 10 * power;
  const ticks: number[] = [];
  for (let tick = Math.ceil(min / step) * step; tick <= max + step * 1e-9; tick += step) ticks.push(Number(tick.toPrecision(12)));
  return ticks;
}

/** The smallest "nice" axis end (1, 2, 2.5, 5 × a power of ten) at or above `value`. */
export function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return ([1, 2, 2.5, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= value) ?? 10 * power);
}

export function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let power = Math.floor(Math.log10(min)); power <= Math.ceil(Math.log10(max)); power += 1) {
    for (const factor of max / min > 1000 ? [1] : [1, 2, 5]) {
      const tick = factor * 10 ** power;
      if (tick >= min * 0.999 && tick <= max * 1.001) ticks.push(tick);
    }
  }
  return ticks;
}

/** A log scale that covers `values`, widened to whole decades' neighbours. */
export function logScaleFor(values: number[]): Scale {
  const positive = values.filter((value) => value > 0 && Number.isFinite(value));
  const min = positive.length ? Math.min(...positive) : 0.1;
  const max = positive.length ? Math.max(...positive) : 1;
  return { kind: 'log', min: 10 ** Math.floor(Math.log10(min)), max: 10 ** Math.ceil(Math.log10(max * 1.0001)) };
}

export interface LineChartOptions {
  chart: string;
  title: string;
  xLabel: string;
  yLabel: string;
  x: Scale;
  y: Scale;
  series: LineSeries[];
  width?: number;
  height?: number;
}

export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 520;
  const height = options.height ?? 300;
  const margin = { left: 58, right: 14, top: 28, bottom: 42 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const px = (value: number) => margin.left + project(options.x, value) * plotWidth;
  const py = (value: number) => margin.top + (1 - project(options.y, value)) * plotHeight;

  const xTicks: Array<[number, string]> =
    options.x.kind === 'nines'
      ? [[0, '0%'], [1, '90%'], [2, '99%'], [3, '99.9%'], [4, '99.99%'], [NINES_MAX, 'max']]
      : (options.x.kind === 'log' ? logTicks(options.x.min, options.x.max) : linearTicks(options.x.min, options.x.max)).map((tick) => [tick, formatTick(tick)]);
  const yTicks = options.y.kind === 'log' ? logTicks(options.y.min, options.y.max) : linearTicks(options.y.min, options.y.max);

  const parts: string[] = [];
  parts.push(`<text x="${margin.left}" y="16" font-weight="600" ${FONT} font-size="12">${escape(options.title)}</text>`);
  for (const tick of yTicks) {
    const y = py(tick).toFixed(1);
    parts.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${margin.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#4b5563" ${FONT}>${escape(formatTick(tick))}</text>`);
  }
  for (const [tick, label] of xTicks) {
    const x = px(tick).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${margin.top}" y2="${margin.top + plotHeight}" stroke="#f1f5f9"/>`);
    parts.push(`<text x="${x}" y="${margin.top + plotHeight + 14}" text-anchor="middle" fill="#4b5563" ${FONT}>${escape(label)}</text>`);
  }
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#9ca3af"/>`);
  parts.push(`<text x="${margin.left + plotWidth / 2}" y="${height - 6}" text-anchor="middle" fill="#374151" ${FONT}>${escape(options.xLabel)}</text>`);
  parts.push(`<text transform="translate(13 ${margin.top + plotHeight / 2}) rotate(-90)" text-anchor="middle" fill="#374151" ${FONT}>${escape(options.yLabel)}</text>`);
  for (const series of options.series) {
    if (series.points.length === 0) continue;
    const path = series.points.map(([x, y], index) => `${index === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    parts.push(
      `<path class="series" d="${path}" fill="none" stroke="${series.color}" stroke-width="1.8"${series.dash ? ` stroke-dasharray="${series.dash}"` : ''}><title>${escape(series.label)}</title></path>`,
    );
  }
  return svg(options.chart, options.title, width, height, parts);
}

export interface Bar {
  label: string;
  value: number | undefined;
  color: string;
  /** Text after the value, e.g. a ratio. */
  note?: string;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

/**
 * Horizontal bars, each group scaled to its own largest value: the groups' magnitudes differ by
 * orders (50 req/s against 20,000), and what a reader compares is the bars within a group.
 */
export function groupedBars(options: { chart: string; title: string; groups: BarGroup[]; format: (value: number) => string; width?: number }): string {
  const width = options.width ?? 900;
  const labelWidth = 150;
  // Room after the longest bar for its label ("fastify-sqlasync 1,443 req/s (ours/minimal 2.10×, ours/seed 20×)").
  const textRoom = 420;
  const barHeight = 14;
  const parts: string[] = [`<text x="4" y="16" font-weight="600" ${FONT} font-size="12">${escape(options.title)}</text>`];
  let y = 28;
  for (const group of options.groups) {
    const max = Math.max(1e-9, ...group.bars.map((bar) => bar.value ?? 0));
    parts.push(`<text x="4" y="${y + barHeight}" ${FONT} fill="#111827">${escape(group.label)}</text>`);
    for (const bar of group.bars) {
      const length = bar.value === undefined ? 0 : ((width - labelWidth - textRoom) * bar.value) / max;
      parts.push(`<rect class="bar" x="${labelWidth}" y="${y}" width="${Math.max(1, length).toFixed(1)}" height="${barHeight - 2}" fill="${bar.color}"><title>${escape(`${group.label}: ${bar.label} ${bar.value === undefined ? 'n/a' : options.format(bar.value)}`)}</title></rect>`);
      parts.push(`<text x="${labelWidth + length + 6}" y="${y + barHeight - 4}" ${FONT} fill="#111827">${escape(`${bar.label} ${bar.value === undefined ? 'n/a' : options.format(bar.value)}${bar.note ? `  ${bar.note}` : ''}`)}</text>`);
      y += barHeight;
    }
    y += 10;
  }
  return svg(options.chart, options.title, width, y + 4, parts);
}

export interface Segment {
  label: string;
  value: number;
  color: string;
}

/** Horizontal stacked bars on a shared axis from 0 to `max` (cores, or shares of 100%). */
export function stackedBars(options: { chart: string; title: string; rows: Array<{ label: string; segments: Segment[] }>; max: number; format: (value: number) => string; width?: number }): string {
  const width = options.width ?? 520;
  const labelWidth = 120;
  const plotWidth = width - labelWidth - 16;
  const barHeight = 18;
  const parts: string[] = [`<text x="4" y="16" font-weight="600" ${FONT} font-size="12">${escape(options.title)}</text>`];
  let y = 28;
  const legend = new Map<string, string>();
  for (const row of options.rows) {
    parts.push(`<text x="4" y="${y + 13}" ${FONT} fill="#111827">${escape(row.label)}</text>`);
    let x = labelWidth;
    for (const segment of row.segments) {
      legend.set(segment.label, segment.color);
      const length = (plotWidth * Math.max(0, segment.value)) / Math.max(1e-9, options.max);
      if (length <= 0) continue;
      parts.push(`<rect class="bar" x="${x.toFixed(1)}" y="${y}" width="${length.toFixed(1)}" height="${barHeight}" fill="${segment.color}"><title>${escape(`${row.label}: ${segment.label} ${options.format(segment.value)}`)}</title></rect>`);
      if (length > 34) parts.push(`<text x="${(x + length / 2).toFixed(1)}" y="${y + 13}" text-anchor="middle" fill="#fff" ${FONT}>${escape(options.format(segment.value))}</text>`);
      x += length;
    }
    y += barHeight + 6;
  }
  parts.push(`<line x1="${labelWidth}" x2="${labelWidth + plotWidth}" y1="${y}" y2="${y}" stroke="#9ca3af"/>`);
  parts.push(`<text x="${labelWidth}" y="${y + 13}" ${FONT} fill="#4b5563">0</text><text x="${labelWidth + plotWidth}" y="${y + 13}" text-anchor="end" ${FONT} fill="#4b5563">${escape(options.format(options.max))}</text>`);
  y += 22;
  let legendX = labelWidth;
  for (const [label, color] of legend) {
    parts.push(`<rect x="${legendX}" y="${y}" width="10" height="10" fill="${color}"/><text x="${legendX + 14}" y="${y + 9}" ${FONT} fill="#374151">${escape(label)}</text>`);
    legendX += 24 + label.length * 6.5;
  }
  return svg(options.chart, options.title, width, y + 18, parts);
}

function svg(chart: string, title: string, width: number, height: number, parts: string[]): string {
  return `<svg class="chart" data-chart="${escape(chart)}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escape(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"><title>${escape(title)}</title>${parts.join('')}</svg>`;
}
