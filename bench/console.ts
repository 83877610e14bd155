import { LITTLE_FACTOR } from './overload.js';
import type { RunResult } from './results.js';
import { TRAFFIC_LABELS, type RunTarget } from './scenarios.js';
import type { ScenarioSummary, TargetSummary } from './summary.js';

/** Short names in the console: the seed's FastAPI service runs as target `peer`. */
export const SHORT_NAMES: Record<RunTarget, string> = { ours: 'ours', minimal: 'minimal', peer: 'seed', database: 'pgbench' };

const number = (value: number | undefined, digits = 0) => (value === undefined ? '–' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));
const ms = (value: number | undefined) => (value === undefined ? '–' : value >= 100 ? number(value) : value >= 10 ? number(value, 1) : number(value, 2));
const ratio = (value: number | undefined) => (value === undefined ? '–' : `${value >= 10 ? value.toFixed(0) : value.toFixed(2)}×`);

function statusText(statuses: Record<string, number> | undefined, non2xx: number): string {
  if (statuses && Object.keys(statuses).length > 0) return Object.entries(statuses).map(([code, count]) => `${code}×${count}`).join(' ');
  return non2xx > 0 ? `≥400×${non2xx}` : '';
}

/** One line per finished run, as it finishes. */
export function runLine(run: RunResult): string {
  const errors = run.socketErrors.connect + run.socketErrors.read + run.socketErrors.write + run.socketErrors.other;
  const parts = [
    `${run.scenario.padEnd(18)} ${SHORT_NAMES[run.target].padEnd(8)} rep ${run.rep}`,
    `${number(run.rps).padStart(8)} req/s`,
    ...(run.okRps < run.rps * 0.995 ? [`(<400: ${number(run.okRps)}/s)`] : []),
    `p50 ${ms(run.latencyMs.p50).padStart(7)} p90 ${ms(run.latencyMs.p90).padStart(7)} p99 ${ms(run.latencyMs.p99).padStart(7)} max ${ms(run.latencyMs.max).padStart(7)} ms`,
    `cpu lg/srv/pg/all ${run.cpu.loadgen.toFixed(2)}/${run.cpu.server.toFixed(2)}/${run.cpu.postgres.toFixed(2)}/${run.cpu.machine.toFixed(2)}`,
  ];
  // Counted in every run, shown even when zero.
  parts.push(`errors/timeouts/non-2xx ${errors}/${run.timeouts}/${run.non2xx}`);
  const status = statusText(run.statuses, run.non2xx);
  if (status && (run.non2xx > 0 || run.kind.startsWith('overload'))) parts.push(status);
  if (run.overload) {
    const check = run.overload;
    parts.push(
      `${check.throughputPct === undefined ? '' : `${number(check.throughputPct)}% of ${check.baseline}, `}non-503 errors ${check.non503Errors}, ` +
        `p99 ${check.p99OverLittle.toFixed(2)}× Little (${ms(check.littleMs)} ms) ${check.withinTarget ? 'ok' : `over ${LITTLE_FACTOR}×`}`,
    );
  }
  if (run.rowsServed !== undefined) parts.push(`rows ${run.rowsServed}`);
  if (run.settle.busiest) parts.push(`(machine never quiet: ${run.settle.busiest.map((entry) => `${entry.name}[${entry.pid}] ${entry.cores}`).join(', ')})`);
  if (run.error) parts.push(`ERROR ${run.error.split('\n', 1)[0]}`);
  return `  ${parts.join('  ')}`;
}

function row(label: string, summary: TargetSummary, overload: boolean): string {
  const cpu = summary.cpu;
  const cells = [
    label.padEnd(9),
    number(summary.rps).padStart(8),
    number(summary.okRps).padStart(8),
    ms(summary.p50).padStart(8),
    ms(summary.p90).padStart(8),
    ms(summary.p99).padStart(8),
    ms(summary.max).padStart(8),
    `${(cpu.loadgen ?? 0).toFixed(2)}/${(cpu.server ?? 0).toFixed(2)}/${(cpu.postgres ?? 0).toFixed(2)}/${(cpu.machine ?? 0).toFixed(2)}`.padStart(20),
    (summary.commitsPerRequest === undefined ? '–' : summary.commitsPerRequest.toFixed(3)).padStart(8),
    `${summary.socketErrors}/${summary.timeouts}`.padStart(8),
    (summary.share503 !== undefined && (overload || summary.share503 > 0) ? `503 ${(summary.share503 * 100).toFixed(1)}% ` : '') + statusText(summary.statuses, summary.non2xx),
  ];
  return cells.join(' ');
}

const pad = (text: string, width: number) => text.padStart(width);
const errorCell = (data: TargetSummary | undefined) => (data ? `${data.socketErrors}/${data.timeouts}/${data.non2xx}` : '–');

/**
 * The realistic traffic on the large table: ours, the minimal peer and pgbench running the same SQL,
 * with ratios of the medians of this run.
 */
export function realisticTable(summaries: ScenarioSummary[]): string[] {
  const rows = summaries.filter((summary) => TRAFFIC_LABELS[summary.kind] !== undefined);
  if (rows.length === 0) return [];
  const tableRows = rows.find((summary) => summary.rows !== undefined)?.rows;
  const lines = [
    `Realistic traffic${tableRows === undefined ? '' : ` on a table of ${tableRows.toLocaleString('en-US')} rows`} (median req/s; pgbench: tps of the same SQL, ${rows[0]?.byTarget.database ? 'prepared' : 'not run'})`,
    `${'traffic'.padEnd(34)} ${pad('ours', 9)} ${pad('minimal', 9)} ${pad('ours÷min', 9)} ${pad('pgbench', 9)} ${pad('ours%pgb', 9)}  errors/timeouts/non-2xx (ours · minimal · pgbench)`,
  ];
  for (const summary of rows) {
    const ours = summary.byTarget.ours;
    const minimal = summary.byTarget.minimal;
    const database = summary.byTarget.database;
    const ofPgbench = summary.ratios.database?.rps;
    lines.push(
      [
        TRAFFIC_LABELS[summary.kind]!.padEnd(34),
        pad(number(ours?.rps), 9),
        pad(number(minimal?.rps), 9),
        pad(ratio(summary.ratios.minimal?.rps), 9),
        pad(number(database?.rps), 9),
        pad(ofPgbench === undefined ? '–' : `${(100 * ofPgbench).toFixed(0)}%`, 9),
        ` ${errorCell(ours)} · ${errorCell(minimal)} · ${errorCell(database)}`,
      ].join(' '),
    );
  }
  return lines;
}

/** The seed's scenarios: ours ÷ the seed's FastAPI service, as measured since the first results (and ÷ the minimal peer). */
function seedTable(summaries: ScenarioSummary[]): string[] {
  const compared = summaries.filter((summary) => summary.ratio);
  if (compared.length === 0) return [];
  const lines = ['The seed\'s scenarios: ours ÷ the seed\'s FastAPI service (medians)', `${'scenario'.padEnd(22)} ${pad('req/s', 8)} ${pad('<400/s', 8)} ${pad('p99', 8)} ${pad('÷minimal', 9)}`];
  for (const summary of compared) {
    lines.push(`${summary.scenario.padEnd(22)} ${pad(ratio(summary.ratio?.rps), 8)} ${pad(ratio(summary.ratio?.okRps), 8)} ${pad(ratio(summary.ratio?.p99), 8)} ${pad(ratio(summary.ratios.minimal?.rps), 9)}`);
  }
  return lines;
}

/** Every overload scenario: goodput against 100 connections, failures other than 503, p99 against Little's law. */
export function overloadTable(summaries: ScenarioSummary[]): string[] {
  const overloads = summaries.filter((summary) => summary.overload);
  if (overloads.length === 0) return [];
  const lines = [
    `Overload (medians): goodput as a % of the same server's 100-connection run; p99 against Little's law (connections ÷ req/s), target ≤ ${LITTLE_FACTOR}×`,
    `${'scenario'.padEnd(22)} ${'server'.padEnd(8)} ${pad('<400/s', 8)} ${pad('% of 100', 9)} ${pad('non-503', 8)} ${pad('p99 ms', 8)} ${pad('bound ms', 9)} ${pad('p99÷bound', 10)}`,
  ];
  for (const summary of overloads) {
    for (const [target, check] of Object.entries(summary.overload!.byTarget) as Array<[RunTarget, NonNullable<ScenarioSummary['overload']>['byTarget']['ours']]>) {
      if (!check) continue;
      const verdict = check.withinTarget === undefined ? '' : check.withinTarget ? ' ok' : ' over';
      lines.push(
        `${summary.scenario.padEnd(22)} ${SHORT_NAMES[target].padEnd(8)} ${pad(number(summary.byTarget[target]?.okRps), 8)} ${pad(check.throughputPct === undefined ? '–' : `${check.throughputPct.toFixed(0)}%`, 9)} ${pad(String(check.non503Errors), 8)} ${pad(ms(check.p99), 8)} ${pad(ms(check.littleMs), 9)} ${pad(check.p99OverLittle === undefined ? '–' : `${check.p99OverLittle.toFixed(2)}×`, 10)}${verdict}`,
      );
    }
  }
  return lines;
}

/** The final tables: medians per scenario and target, then the comparisons. */
export function summaryText(summaries: ScenarioSummary[]): string {
  const lines: string[] = [];
  lines.push('Medians over repetitions (latency in ms; cpu in cores: load generator/server/postgres/whole machine; commits per request from pg_stat_database)');
  for (const summary of summaries) {
    lines.push('', `${summary.title}  [${summary.scenario}]`);
    lines.push(`${'target'.padEnd(9)} ${'req/s'.padStart(8)} ${'<400/s'.padStart(8)} ${'p50'.padStart(8)} ${'p90'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)} ${'cpu lg/srv/pg/all'.padStart(20)} ${'commit/r'.padStart(8)} ${'err/tmo'.padStart(8)} statuses (summed)`);
    for (const target of ['ours', 'minimal', 'peer', 'database'] as const) {
      const data = summary.byTarget[target];
      if (data) lines.push(row(SHORT_NAMES[target], data, summary.kind.startsWith('overload')));
      for (const error of data?.errors ?? []) lines.push(`   ${SHORT_NAMES[target]} ${error.split('\n', 1)[0]}`);
    }
    const ratios = (['minimal', 'peer', 'database'] as const)
      .filter((target) => summary.ratios[target])
      .map((target) => `ours/${SHORT_NAMES[target]}: req/s ${ratio(summary.ratios[target]?.rps)}, <400/s ${ratio(summary.ratios[target]?.okRps)}, p99 ${ratio(summary.ratios[target]?.p99)}`);
    if (ratios.length > 0) lines.push(`${ratios.join('; ')} (p99 below 1 is better)`);
  }
  for (const table of [realisticTable(summaries), seedTable(summaries), overloadTable(summaries)]) {
    if (table.length > 0) lines.push('', ...table);
  }
  return lines.join('\n');
}
