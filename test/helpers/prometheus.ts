/**
 * Reading the Prometheus text format (0.0.4) the way a test needs: every sample by its series
 * (name and labels, as written), and the type of each metric family.
 */

export interface Scrape {
  /** Metric family → `counter`, `gauge`, `histogram`, `summary` or `untyped`. */
  types: Map<string, string>;
  /** `name{labels}` (as written) → value. */
  samples: Map<string, number>;
}

export function parsePrometheus(text: string): Scrape {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice('# TYPE '.length).split(' ');
      types.set(name!, type!);
    } else if (line && !line.startsWith('#')) {
      const space = line.lastIndexOf(' ');
      samples.set(line.slice(0, space), Number(line.slice(space + 1)));
    }
  }
  return { types, samples };
}

/** The family a sample belongs to: a histogram's `…_bucket`, `…_sum` and `…_count` are its own. */
function familyOf(scrape: Scrape, series: string): string {
  const name = series.split('{')[0]!;
  const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (histogram && scrape.types.get(histogram[1]!) === 'histogram') return histogram[1]!;
  return name;
}

/**
 * The counter and histogram samples of `before` that are lower in `after`, or missing from it:
 * what Prometheus would read as a reset. Gauges may go anywhere.
 */
export function decreases(before: Scrape, after: Scrape): string[] {
  const found: string[] = [];
  for (const [series, value] of before.samples) {
    const type = before.types.get(familyOf(before, series));
    if (type !== 'counter' && type !== 'histogram') continue;
    const now = after.samples.get(series);
    if (now === undefined || now < value) found.push(`${series}: ${value} → ${now ?? 'missing'}`);
  }
  return found;
}

/** The sum of the samples of metric `name` whose labels include every one of `labels` (`route="/healthz"`). */
export function total(scrape: Scrape, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const [series, value] of scrape.samples) {
    if (series.split('{')[0] === name && labels.every((label) => series.includes(label))) sum += value;
  }
  return sum;
}
