import type { RunResult } from './results.js';
import type { ScenarioSummary, TargetSummary } from './summary.js';

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
    `${run.scenario.padEnd(18)} ${run.target.padEnd(8)} rep ${run.rep}`,
    `${number(run.rps).padStart(8)} req/s`,
    ...(run.okRps < run.rps * 0.995 ? [`(<400: ${number(run.okRps)}/s)`] : []),
    `p50 ${ms(run.latencyMs.p50).padStart(7)} p90 ${ms(run.latencyMs.p90).padStart(7)} p99 ${ms(run.latencyMs.p99).padStart(7)} max ${ms(run.latencyMs.max).padStart(7)} ms`,
    `cpu lg/srv/pg/all ${run.cpu.loadgen.toFixed(2)}/${run.cpu.server.toFixed(2)}/${run.cpu.postgres.toFixed(2)}/${run.cpu.machine.toFixed(2)}`,
  ];
  const status = statusText(run.statuses, run.non2xx);
  if (status && (run.non2xx > 0 || run.kind.startsWith('overload'))) parts.push(status);
  if (errors > 0) parts.push(`socket errors ${errors}`);
  if (run.timeouts > 0) parts.push(`timeouts ${run.timeouts}`);
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

/** The final tables: medians per scenario and target, then ours ÷ peer. */
export function summaryText(summaries: ScenarioSummary[]): string {
  const lines: string[] = [];
  lines.push('Medians over repetitions (latency in ms; cpu in cores: load generator/server/postgres/whole machine; commits per request from pg_stat_database)');
  for (const summary of summaries) {
    lines.push('', `${summary.title}  [${summary.scenario}]`);
    lines.push(`${'target'.padEnd(9)} ${'req/s'.padStart(8)} ${'<400/s'.padStart(8)} ${'p50'.padStart(8)} ${'p90'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)} ${'cpu lg/srv/pg/all'.padStart(20)} ${'commit/r'.padStart(8)} ${'err/tmo'.padStart(8)} statuses (summed)`);
    for (const target of ['ours', 'peer', 'database'] as const) {
      const data = summary.byTarget[target];
      if (data) lines.push(row(target === 'database' ? 'pgbench' : target, data, summary.kind.startsWith('overload')));
      for (const error of data?.errors ?? []) lines.push(`   ${target} ${error.split('\n', 1)[0]}`);
    }
    if (summary.ratio) lines.push(`ours/peer: req/s ${ratio(summary.ratio.rps)}, <400/s ${ratio(summary.ratio.okRps)}, p99 ${ratio(summary.ratio.p99)} (below 1 is better)`);
  }
  const compared = summaries.filter((summary) => summary.ratio);
  if (compared.length > 0) {
    lines.push('', 'ours ÷ peer (medians)', `${'scenario'.padEnd(22)} ${'req/s'.padStart(8)} ${'<400/s'.padStart(8)} ${'p99'.padStart(8)}`);
    for (const summary of compared) {
      lines.push(`${summary.scenario.padEnd(22)} ${ratio(summary.ratio?.rps).padStart(8)} ${ratio(summary.ratio?.okRps).padStart(8)} ${ratio(summary.ratio?.p99).padStart(8)}`);
    }
  }
  return lines.join('\n');
}
