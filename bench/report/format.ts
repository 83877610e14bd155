/** Escapes text for HTML and SVG content and attribute values. */
export function escape(text: string | number): string {
  return String(text).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

export function formatNumber(value: number | undefined, digits = 0): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Milliseconds with the precision a reader needs at that magnitude. */
export function formatMs(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  if (value >= 1000) return `${formatNumber(value / 1000, value >= 10_000 ? 1 : 2)} s`;
  return `${formatNumber(value, value >= 100 ? 0 : value >= 10 ? 1 : 2)} ms`;
}

export function formatRatio(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  return `${value >= 10 ? value.toFixed(0) : value >= 1 ? value.toFixed(2) : value.toFixed(3)}×`;
}

/** Compact tick labels: 1.5k, 20k, 0.5. */
export function formatTick(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude >= 1_000_000) return `${trim(value / 1_000_000)}M`;
  if (magnitude >= 1000) return `${trim(value / 1000)}k`;
  return trim(value);
}

function trim(value: number): string {
  return String(Number(value.toPrecision(3)));
}
