import type { Results, RunResult } from '../results.js';
import { LITTLE_FACTOR } from '../overload.js';
import { TRAFFIC_LABELS, type RunTarget } from '../scenarios.js';
import { summarize, type ScenarioSummary, type TargetSummary } from '../summary.js';
import { escape, formatMs, formatNumber, formatRatio } from './format.js';
import { groupedBars, lineChart, logScaleFor, niceMax, ninesOf, stackedBars, type LineSeries } from './svg.js';

const COLORS: Record<RunTarget, string> = { ours: '#1f6feb', minimal: '#7048e8', peer: '#d9480f', database: '#2f9e44' };
const TARGETS: RunTarget[] = ['ours', 'minimal', 'peer', 'database'];
/** In ratio labels: the seed's FastAPI service runs as target `peer`. */
const SHORT: Record<RunTarget, string> = { ours: 'ours', minimal: 'minimal', peer: 'seed', database: 'pgbench' };
const DASHES = ['', '6 3', '2 3', '10 3 2 3', '1 2'];
const CPU_COLORS = { loadgen: '#6b7280', server: '#1f6feb', postgres: '#2f9e44', other: '#f59f00' };
// An array, not an object: an object would list the integer-like key '503' first.
const STATUS_COLORS: Array<[string, string]> = [
  ['2xx', '#2f9e44'],
  ['503', '#e8590c'],
  ['5xx', '#c92a2a'],
  ['4xx', '#f59f00'],
  ['errors', '#495057'],
  ['timeouts', '#868e96'],
];

function targetName(results: Results, target: RunTarget): string {
  return target === 'database' ? 'pgbench' : (results.services[target]?.label ?? target);
}

function seriesLabel(results: Results, run: RunResult): string {
  return `${targetName(results, run.target)}, rep ${run.rep}`;
}

function legend(results: Results, targets: RunTarget[], reps: number[]): string {
  const items = targets.map((target) => `<span class="key"><i style="background:${COLORS[target]}"></i>${escape(targetName(results, target))}</span>`);
  if (reps.length > 1) {
    items.push(
      ...reps.map(
        (rep, index) =>
          `<span class="key"><svg width="26" height="8" aria-hidden="true"><line x1="0" x2="26" y1="4" y2="4" stroke="#374151" stroke-width="2" stroke-dasharray="${DASHES[index % DASHES.length]}"/></svg>rep ${rep}</span>`,
      ),
    );
  }
  return `<div class="legend">${items.join('')}</div>`;
}

function latencyChart(results: Results, runs: RunResult[], reps: number[]): string {
  const drawn = runs.filter((run) => run.latencyCurve.length > 0);
  if (drawn.length === 0) return '<p class="muted">No latency distribution recorded.</p>';
  const series: LineSeries[] = drawn.map((run) => ({
    label: seriesLabel(results, run),
    color: COLORS[run.target],
    dash: DASHES[reps.indexOf(run.rep) % DASHES.length] ?? '',
    points: run.latencyCurve.filter(([, ms]) => ms > 0).map(([pct, ms]) => [ninesOf(pct), ms]),
  }));
  return lineChart({
    chart: 'latency',
    title: 'Latency distribution (percentiles)',
    xLabel: 'percentile',
    yLabel: 'latency, ms (log scale)',
    x: { kind: 'nines', min: 0, max: 4.5 },
    y: logScaleFor(drawn.flatMap((run) => run.latencyCurve.map(([, ms]) => ms))),
    series,
  });
}

function timelineChart(results: Results, runs: RunResult[], reps: number[]): string {
  const drawn = runs.filter((run) => run.timeline.points.length > 0);
  if (drawn.length === 0) return '<p class="muted">No throughput timeline recorded.</p>';
  const maxT = Math.max(...drawn.flatMap((run) => run.timeline.points.map((point) => point.t)));
  const maxRps = Math.max(1, ...drawn.flatMap((run) => run.timeline.points.map((point) => point.rps)));
  const yMax = niceMax(maxRps * 1.05);
  return lineChart({
    chart: 'timeline',
    title: 'Throughput over time',
    xLabel: 'seconds into the run',
    yLabel: 'responses per second',
    x: { kind: 'linear', min: 0, max: Math.max(1, Math.ceil(maxT)) },
    y: { kind: 'linear', min: 0, max: yMax },
    series: drawn.map((run) => ({
      label: `${seriesLabel(results, run)} (${run.timeline.source})`,
      color: COLORS[run.target],
      dash: DASHES[reps.indexOf(run.rep) % DASHES.length] ?? '',
      points: [[0, 0] as [number, number], ...run.timeline.points.map((point): [number, number] => [point.t, point.rps])],
    })),
  });
}

function cpuChart(results: Results, summary: ScenarioSummary): string {
  const rows = (Object.entries(summary.byTarget) as Array<[RunTarget, NonNullable<ScenarioSummary['byTarget']['ours']>]>).map(([target, data]) => ({
    label: targetName(results, target),
    segments: (['loadgen', 'server', 'postgres', 'other'] as const).map((key) => ({ label: key === 'loadgen' ? 'load generator' : key, value: data.cpu[key] ?? 0, color: CPU_COLORS[key] })),
  }));
  return stackedBars({ chart: 'cpu', title: `CPU, cores (median; the machine has ${results.machine.cores})`, rows, max: results.machine.cores, format: (value) => value.toFixed(2) });
}

function statusGroup(code: string): string {
  if (code.startsWith('2')) return '2xx';
  if (code === '503') return '503';
  if (code.startsWith('5')) return '5xx';
  return '4xx';
}

/** Overload runs: what share of requests got a 2xx, a 503, another status, or no response at all. */
function statusChart(results: Results, runs: RunResult[]): string {
  const rows = runs.map((run) => {
    const groups: Record<string, number> = {};
    for (const [code, count] of Object.entries(run.statuses ?? {})) groups[statusGroup(code)] = (groups[statusGroup(code)] ?? 0) + count;
    const errors = run.socketErrors.connect + run.socketErrors.read + run.socketErrors.write + run.socketErrors.other;
    groups['errors'] = errors;
    groups['timeouts'] = run.timeouts;
    const total = Math.max(1, Object.values(groups).reduce((sum, count) => sum + count, 0));
    return {
      label: `${targetName(results, run.target)} ${run.rep}`,
      segments: STATUS_COLORS.map(([label, color]) => ({ label, value: (100 * (groups[label] ?? 0)) / total, color })),
    };
  });
  return stackedBars({ chart: 'statuses', title: 'Outcome of each request (% of responses and failures)', rows, max: 100, format: (value) => `${value.toFixed(1)}%` });
}

/** "ours/minimal 2.10×, ours/seed 14×": ours ÷ every other server, for one metric. */
function ratioNote(summary: ScenarioSummary, metric: 'rps' | 'okRps' | 'p99'): string | undefined {
  const parts = (['minimal', 'peer'] as const).flatMap((target) => (summary.ratios[target]?.[metric] === undefined ? [] : [`ours/${SHORT[target]} ${formatRatio(summary.ratios[target][metric])}`]));
  return parts.length > 0 ? `(${parts.join(', ')})` : undefined;
}

function overviewCharts(results: Results, summaries: ScenarioSummary[]): string {
  const targets = TARGETS.filter((target) => summaries.some((summary) => summary.byTarget[target]));
  const groups = (metric: 'rps' | 'okRps' | 'p99') =>
    summaries.map((summary) => ({
      label: summary.scenario,
      bars: targets
        .filter((target) => summary.byTarget[target])
        .map((target, index) => ({
          label: targetName(results, target),
          value: summary.byTarget[target]?.[metric],
          color: COLORS[target],
          ...(index === 0 && ratioNote(summary, metric) ? { note: ratioNote(summary, metric)! } : {}),
        })),
    }));
  return [
    groupedBars({ chart: 'bars-rps', title: 'Requests per second (median), each scenario on its own scale', groups: groups('rps'), format: (value) => `${formatNumber(value)} req/s` }),
    groupedBars({ chart: 'bars-ok-rps', title: 'Responses below 400 per second (median): what clients got served', groups: groups('okRps'), format: (value) => `${formatNumber(value)}/s` }),
    groupedBars({ chart: 'bars-p99', title: 'p99 latency (median), each scenario on its own scale: shorter is better', groups: groups('p99'), format: (value) => formatMs(value) }),
  ].join('');
}

/** ours ÷ each other target of a scenario: req/s (and goodput when it differs), p99. */
function ratioCell(summary: ScenarioSummary): string {
  const parts = (['minimal', 'peer', 'database'] as const).flatMap((target) => {
    const ratio = summary.ratios[target];
    if (!ratio) return [];
    const goodput = ratio.okRps !== undefined && ratio.rps !== undefined && Math.abs(ratio.okRps / ratio.rps - 1) > 0.01 ? ` <span class="muted">&lt;400/s ${formatRatio(ratio.okRps)}</span>` : '';
    return [`<span class="muted">÷ ${SHORT[target]}</span> ${formatRatio(ratio.rps)}${goodput}${target === 'database' ? '' : `<br><span class="muted">p99 ${formatRatio(ratio.p99)}</span>`}`];
  });
  return parts.length > 0 ? parts.join('<br>') : '–';
}

function summaryTable(results: Results, summaries: ScenarioSummary[]): string {
  const rows = summaries.flatMap((summary) =>
    (Object.entries(summary.byTarget) as Array<[RunTarget, NonNullable<ScenarioSummary['byTarget']['ours']>]>).map(([target, data], index, all) => {
      const statuses = Object.entries(data.statuses).map(([code, count]) => `${code}×${formatNumber(count)}`).join(' ') || (data.non2xx ? `≥400×${data.non2xx}` : '');
      return `<tr${index === 0 ? ' class="first"' : ''}>
        ${index === 0 ? `<th rowspan="${all.length}" scope="row">${escape(summary.title)}</th>` : ''}
        <td><i class="dot" style="background:${COLORS[target]}"></i>${escape(targetName(results, target))}</td>
        <td class="n">${data.n}</td><td class="n">${formatNumber(data.rps)}</td><td class="n">${formatNumber(data.okRps)}</td>
        <td class="n">${formatMs(data.p50)}</td><td class="n">${formatMs(data.p90)}</td><td class="n">${formatMs(data.p99)}</td><td class="n">${formatMs(data.max)}</td>
        <td class="n">${data.cpu.loadgen?.toFixed(2) ?? '–'} / ${data.cpu.server?.toFixed(2) ?? '–'} / ${data.cpu.postgres?.toFixed(2) ?? '–'} / ${data.cpu.machine?.toFixed(2) ?? '–'}</td>
        <td class="n">${data.commitsPerRequest?.toFixed(3) ?? '–'}${data.rowsPerCommit !== undefined && data.rowsPerCommit > 1.05 ? ` <span class="muted">(${data.rowsPerCommit} rows/commit)</span>` : ''}</td>
        <td class="n">${data.socketErrors} / ${data.timeouts}</td>
        <td>${data.share503 !== undefined && (summary.kind.startsWith('overload') || data.share503 > 0) ? `503: ${(data.share503 * 100).toFixed(1)}% · ` : ''}${escape(statuses)}</td>
        ${index === 0 ? `<td rowspan="${all.length}" class="n ratio">${ratioCell(summary)}</td>` : ''}
      </tr>`;
    }),
  );
  return `<table class="summary"><thead><tr><th>scenario</th><th>server</th><th>n</th><th>req/s</th><th>&lt;400/s</th><th>p50</th><th>p90</th><th>p99</th><th>max</th><th>CPU cores<br>gen / server / pg / all</th><th>commits per request</th><th>socket errors / timeouts</th><th>statuses (summed)</th><th>ours ÷ other<br>req/s, p99</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

const errorsText = (data: TargetSummary | undefined) => (data ? `${formatNumber(data.socketErrors)} / ${formatNumber(data.timeouts)} / ${formatNumber(data.non2xx)}` : '–');

/** The realistic traffic: ours, the minimal peer, ours ÷ minimal, and pgbench running the same SQL. */
function realisticTable(results: Results, summaries: ScenarioSummary[]): string {
  const rows = summaries.filter((summary) => TRAFFIC_LABELS[summary.kind] !== undefined);
  if (rows.length === 0) return '';
  const tableRows = rows.find((summary) => summary.rows !== undefined)?.rows;
  const body = rows.map((summary) => {
    const { ours, minimal, database } = summary.byTarget;
    const ofPgbench = summary.ratios.database?.rps;
    return `<tr><th scope="row"><a href="#scenario-${escape(summary.scenario)}">${escape(TRAFFIC_LABELS[summary.kind]!)}</a></th>
      <td class="n">${formatNumber(ours?.rps)}</td><td class="n">${formatNumber(minimal?.rps)}</td><td class="n ratio">${formatRatio(summary.ratios.minimal?.rps)}</td>
      <td class="n">${database ? `${formatNumber(database.rps)} tps` : '–'}</td><td class="n">${ofPgbench === undefined ? '–' : `${(100 * ofPgbench).toFixed(0)}%`}</td>
      <td class="n">${formatMs(ours?.p99)} / ${formatMs(minimal?.p99)}</td>
      <td class="n">${errorsText(ours)}</td><td class="n">${errorsText(minimal)}</td><td class="n">${errorsText(database)}</td></tr>`;
  });
  return `<h3>Realistic traffic${tableRows === undefined ? '' : ` on a table of ${formatNumber(tableRows)} rows`}</h3>
  <table class="realistic"><thead><tr><th>traffic</th><th>ours</th><th>${escape(results.services.minimal?.label ?? 'minimal')}</th><th>ours ÷ minimal</th><th>pgbench, same SQL</th><th>ours % of pgbench</th><th>p99 ours / minimal</th><th>errors / timeouts / non-2xx<br>ours</th><th>…minimal</th><th>…pgbench</th></tr></thead><tbody>${body.join('')}</tbody></table>
  <p class="muted">Medians of req/s over repetitions of this run; ratios from those medians. Errors, timeouts and non-2xx responses are summed over the repetitions.</p>`;
}

/** The seed's scenarios, ours against the seed's FastAPI service, as since the first results. */
function seedTable(results: Results, summaries: ScenarioSummary[]): string {
  const compared = summaries.filter((summary) => summary.ratio);
  if (compared.length === 0) return '';
  const body = compared.map((summary) => {
    const { ours, peer } = summary.byTarget;
    return `<tr><th scope="row"><a href="#scenario-${escape(summary.scenario)}">${escape(summary.title)}</a></th><td class="n">${formatNumber(ours?.rps)}</td><td class="n">${formatNumber(peer?.rps)}</td><td class="n ratio">${formatRatio(summary.ratio?.rps)}</td>
      <td class="n">${formatMs(ours?.p99)}</td><td class="n">${formatMs(peer?.p99)}</td><td class="n">${formatRatio(summary.ratio?.p99)}</td><td class="n">${errorsText(ours)}</td><td class="n">${errorsText(peer)}</td></tr>`;
  });
  return `<h3>The seed's scenarios: ours and ${escape(results.services.peer?.label ?? 'the seed')}</h3>
  <table class="seed"><thead><tr><th>scenario</th><th>ours req/s</th><th>seed req/s</th><th>ours ÷ seed</th><th>ours p99</th><th>seed p99</th><th>p99 ratio</th><th>errors / timeouts / non-2xx<br>ours</th><th>…seed</th></tr></thead><tbody>${body.join('')}</tbody></table>`;
}

/** Overload runs: goodput against 100 connections, failures other than 503, and p99 against Little's law. */
function overloadTable(results: Results, summaries: ScenarioSummary[]): string {
  const rows = summaries.flatMap((summary) =>
    (Object.entries(summary.overload?.byTarget ?? {}) as Array<[RunTarget, NonNullable<NonNullable<ScenarioSummary['overload']>['byTarget']['ours']>]>).map(
      ([target, check]) => `<tr><th scope="row"><a href="#scenario-${escape(summary.scenario)}">${escape(summary.scenario)}</a></th><td><i class="dot" style="background:${COLORS[target]}"></i>${escape(targetName(results, target))}</td>
        <td class="n">${formatNumber(summary.byTarget[target]?.okRps)}</td><td class="n">${check.throughputPct === undefined ? '–' : `${check.throughputPct.toFixed(0)}%`} <span class="muted">of ${escape(summary.overload!.baseline)}</span></td>
        <td class="n">${formatNumber(check.non503Errors)}</td><td class="n">${formatMs(check.p99)}</td><td class="n">${formatMs(check.littleMs)}</td>
        <td class="n ${check.withinTarget === false ? 'error' : ''}">${check.p99OverLittle === undefined ? '–' : `${check.p99OverLittle.toFixed(2)}×`}${check.withinTarget === undefined ? '' : check.withinTarget ? ' ✔' : ' ✘'}</td></tr>`,
    ),
  );
  if (rows.length === 0) return '';
  return `<h3>Overload</h3>
  <table class="overload"><thead><tr><th>scenario</th><th>server</th><th>&lt;400/s</th><th>throughput, % of 100 connections</th><th>non-503 errors</th><th>p99</th><th>Little's law: connections ÷ req/s</th><th>p99 ÷ that (target ≤ ${LITTLE_FACTOR}×)</th></tr></thead><tbody>${rows.join('')}</tbody></table>
  <p class="muted">Medians over repetitions; the 100-connection figure is the same server's median in the baseline scenario of this run. Non-503 errors (summed): statuses other than 2xx and 503, socket errors and timeouts.</p>`;
}

function runsTable(results: Results, runs: RunResult[]): string {
  const rows = runs.map((run) => {
    const errors = run.socketErrors.connect + run.socketErrors.read + run.socketErrors.write + run.socketErrors.other;
    const statuses = run.statuses ? Object.entries(run.statuses).map(([code, count]) => `${code}×${formatNumber(count)}`).join(' ') : run.non2xx ? `≥400×${run.non2xx}` : 'all &lt;400';
    const database = run.database
      ? `${run.database.commitsPerRequest.toFixed(3)} commits, ${run.database.rollbacksPerRequest.toFixed(3)} rollbacks${run.database.rowsPerCommit ? `, ${run.database.rowsPerCommit} rows/commit` : ''}${run.database.sessions ? `; ${formatNumber(run.database.sessions)} connections opened` : ''}`
      : '–';
    const log = run.serverLog ? `${formatNumber(run.serverLog.lines)} lines, ${run.serverLog.warnings} warn, ${run.serverLog.errors} err` : '–';
    const links = run.raw.map((file) => `<a href="${escape(file)}">${escape(file.split('/').pop() ?? file)}</a>`).join(' ');
    return `<tr><td>${run.rep}</td><td><i class="dot" style="background:${COLORS[run.target]}"></i>${escape(targetName(results, run.target))}</td>
      <td class="n">${formatNumber(run.rps)}</td><td class="n">${formatNumber(run.okRps)}</td><td class="n">${formatMs(run.latencyMs.p50)}</td><td class="n">${formatMs(run.latencyMs.p90)}</td><td class="n">${formatMs(run.latencyMs.p99)}</td><td class="n">${formatMs(run.latencyMs.max)}</td>
      <td>${statuses}</td><td class="n">${errors} / ${run.timeouts}</td>
      <td class="n">${run.cpu.loadgen.toFixed(2)} / ${run.cpu.server.toFixed(2)} / ${run.cpu.postgres.toFixed(2)} / ${run.cpu.other.toFixed(2)} / ${run.cpu.machine.toFixed(2)}</td>
      <td>${database}</td><td class="n">${run.rowsServed ?? '–'}</td><td>${log}</td><td class="n">${run.settle.waitedS}s</td><td class="files">${links}${run.error ? `<div class="error">${escape(run.error.split('\n', 1)[0] ?? '')}</div>` : ''}</td></tr>`;
  });
  return `<details><summary>Every run</summary><table class="runs"><thead><tr><th>rep</th><th>server</th><th>req/s</th><th>&lt;400/s</th><th>p50</th><th>p90</th><th>p99</th><th>max</th><th>statuses</th><th>errors / timeouts</th><th>CPU gen / srv / pg / other / all</th><th>per request</th><th>rows served</th><th>server log</th><th>settle</th><th>raw</th></tr></thead><tbody>${rows.join('')}</tbody></table></details>`;
}

/** Latency by status (client side when responses can be matched, server side from our access log). */
function statusLatencyTable(results: Results, runs: RunResult[]): string {
  const rows: string[] = [];
  for (const run of runs) {
    const sources: Array<[string, Record<string, { count: number; p50: number; p90?: number; p99: number; max: number }> | undefined]> = [
      ['client', run.latencyByStatus],
      ['server log', run.serverLog?.latencyByStatus],
    ];
    for (const [source, table] of sources) {
      for (const [code, data] of Object.entries(table ?? {})) {
        rows.push(`<tr><td>${escape(targetName(results, run.target))} ${run.rep}</td><td>${source}</td><td>${escape(code)}</td><td class="n">${formatNumber(data.count)}</td><td class="n">${formatMs(data.p50)}</td><td class="n">${formatMs(data.p90)}</td><td class="n">${formatMs(data.p99)}</td><td class="n">${formatMs(data.max)}</td></tr>`);
      }
    }
  }
  if (rows.length === 0) return '';
  return `<details><summary>Latency by status</summary><table class="runs"><thead><tr><th>run</th><th>measured by</th><th>status</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr></thead><tbody>${rows.join('')}</tbody></table>
  <p class="muted">Client side: the overload script matches each response to its request through the echoed <code>X-Request-Id</code> (servers that do not echo it have no row). Server side: our access log's <code>ms</code>, which excludes time queued in the kernel before the server accepted the connection.</p></details>`;
}

function scenarioSection(results: Results, summary: ScenarioSummary): string {
  const runs = results.runs.filter((run) => run.scenario === summary.scenario);
  const reps = [...new Set(runs.map((run) => run.rep))].sort((a, b) => a - b);
  const targets = [...new Set(runs.map((run) => run.target))];
  const first = runs[0];
  const samples = runs.flatMap((run) => run.serverLog?.samples.map((line) => `${targetName(results, run.target)} ${run.rep}: ${line}`) ?? []).slice(0, 6);
  return `<section class="scenario" id="scenario-${escape(summary.scenario)}">
    <h3>${escape(summary.title)}</h3>
    <p class="muted"><code>${escape(first?.command ?? '')}</code>${first?.rows !== undefined ? ` · table pinned to ${first.rows} rows` : ''}</p>
    ${legend(results, targets, reps)}
    <div class="charts">${latencyChart(results, runs, reps)}${timelineChart(results, runs, reps)}${cpuChart(results, summary)}${summary.kind.startsWith('overload') ? statusChart(results, runs) : ''}</div>
    <p class="muted">Throughput over time: ${escape([...new Set(runs.map((run) => run.timeline.source))].join('; '))}.</p>
    ${runsTable(results, runs)}
    ${statusLatencyTable(results, runs)}
    ${samples.length ? `<details><summary>Server warnings and errors (samples)</summary><pre>${escape(samples.join('\n'))}</pre></details>` : ''}
  </section>`;
}

function setupSection(results: Results): string {
  const services = Object.entries(results.services).map(
    ([name, service]) => `<tr><th scope="row">${escape(service.label)} (${escape(name)})</th><td><code>${escape(service.description.command.join(' ') || '(started outside the bench)')}</code><br>
      ${service.description.workers ? `${service.description.workers} workers · ` : ''}logging: ${escape(service.description.logging)}${service.description.version ? ` · ${escape(service.description.version)}` : ''}
      ${Object.keys(service.description.environment).length ? `<br><span class="muted">${escape(Object.entries(service.description.environment).map(([key, value]) => `${key}=${value}`).join(' '))}</span>` : ''}</td></tr>`,
  );
  const pg = results.postgres
    ? `<tr><th scope="row">PostgreSQL</th><td>${escape(Object.entries(results.postgres.settings).filter(([key]) => key !== 'server_version').map(([key, value]) => `${key}=${value}`).join(' · '))}${results.postgres.note ? `<br><span class="muted">${escape(results.postgres.note)}</span>` : ''}</td></tr>`
    : '';
  const options = results.options;
  return `<table class="setup"><tbody>
    <tr><th scope="row">machine</th><td>${results.machine.cores} cores shared by the load generator, the servers and PostgreSQL · Linux ${escape(results.machine.kernel)} · Node ${escape(results.machine.node)} · ${escape(Object.entries(results.machine.tools).map(([tool, version]) => `${tool} ${version}`).join(' · '))}</td></tr>
    <tr><th scope="row">runs</th><td>${options.repeat} repetitions of ${options.durationS} s (warm-up ${options.warmupS} s), interleaved, the order rotating between repetitions ·${options.tableRows ? ` realistic traffic on ${formatNumber(options.tableRows)} rows ·` : ''} ${options.connections} connections (overload ${options.overloadConnections}) · wrk ${options.threads} threads, --timeout ${options.wrkTimeoutS} s · settle below ${options.settleCores} busy cores (at most ${options.settleMaxS} s)</td></tr>
    ${services.join('')}${pg}
    ${results.notes.length ? `<tr><th scope="row">notes</th><td>${results.notes.map((note) => escape(note)).join('<br>')}</td></tr>` : ''}
  </tbody></table>`;
}

const STYLE = `
body{font-family:system-ui,sans-serif;margin:24px;color:#111827;max-width:1500px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #e5e7eb;padding-bottom:4px} h3{font-size:15px;margin:24px 0 4px}
.muted{color:#6b7280;font-size:12px} code{font-size:12px;background:#f3f4f6;padding:1px 4px;border-radius:3px;word-break:break-all}
table{border-collapse:collapse;font-size:12px;margin:8px 0} th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#f9fafb;font-weight:600} td.n{text-align:right;white-space:nowrap} tr.first td,tr.first th{border-top:2px solid #d1d5db}
td.ratio{font-weight:600;font-size:13px} .dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:5px}
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start} svg.chart{background:#fff;border:1px solid #e5e7eb;border-radius:4px}
.legend{display:flex;gap:14px;font-size:12px;margin:6px 0} .key{display:inline-flex;align-items:center;gap:5px} .key i{width:12px;height:4px;display:inline-block}
.banner{padding:8px 12px;border-radius:4px;background:#fff4e6;border:1px solid #ffc078;margin:8px 0} .error{color:#c92a2a}
details{margin:6px 0} summary{cursor:pointer;font-size:13px} pre{font-size:11px;white-space:pre-wrap;background:#f9fafb;padding:8px} td.files a{margin-right:6px}
dl{font-size:13px} dt{font-weight:600;margin-top:8px} dd{margin-left:16px}
`;

const METHOD = `<dl>
<dt>req/s</dt><dd>Completed responses (any status) divided by the tool's own run time. wrk: <code>summary.requests / duration</code>; hey: its Requests/sec; pgbench: tps without connection time.</dd>
<dt>&lt;400/s</dt><dd>Goodput: responses with a status below 400 per second. Under overload a server that sheds load answers many cheap 503s, which count in req/s but serve nobody.</dd>
<dt>p50 / p90 / p99 / max</dt><dd>Client-side latency from the load generator (wrk's histogram, hey's distribution, pgbench's per-transaction log). wrk leaves responses slower than its --timeout out of its percentiles and counts them as timeouts.</dd>
<dt>statuses</dt><dd>hey, autocannon and the overload runs count every status. Plain wrk runs define no Lua response hook (it would make wrk copy every body) and only count statuses ≥ 400, shown as "≥400".</dd>
<dt>socket errors / timeouts</dt><dd>Connect, read and write errors reported by the tool, and requests without an answer within the timeout.</dd>
<dt>CPU</dt><dd>Cores used on average over the run: the load generator (user+sys of its process, from the shell that waited for it), the server's process tree and PostgreSQL's (postmaster and backends, including children that exited) from /proc/PID/stat, the whole machine from /proc/stat; "other" is the rest (other processes, the bench's sampling, unattributed kernel work).</dd>
<dt>commits per request</dt><dd>Change of <code>pg_stat_database.xact_commit</code> for the server's own database, divided by the responses of the run, its warm-up and one check GET. PostgreSQL 15 publishes backends' counters up to 10 s late, so the closing reading waits until the server has been quiet for --stats-lag seconds. A naive POST commits once per request; a server that batches inserts shows less (rows/commit above 1). Opening a connection commits too (the seed's asyncpg/SQLAlchemy setup: about 4 per connection), so a pool that churns connections under load adds commits: the run table lists the connections opened. GETs show 0 commits when the server reads without a transaction or rolls back (see rollbacks in the run table).</dd>
<dt>throughput over time</dt><dd>wrk and hey print nothing while running; the bench reads the bytes the load generator received each second (/proc/PID/io rchar) and scales them to the run's req/s. Overload runs count responses per second by status in Lua; pgbench's per-transaction log and autocannon count exactly.</dd>
<dt>realistic traffic</dt><dd>On a table pinned to the same size before each run (TRUNCATE … RESTART IDENTITY, ids 1..N): pages at random positions (after uniform over the table, limit 10, 50 or 100), single items by random id, and a mix of 70% pages, 20% by id and 10% POST; each wrk thread draws its requests from a pool it formats before the run. pgbench runs the same SQL (prepared, 50 clients) in the same repetition: the database's ceiling for that traffic.</dd>
<dt>overload</dt><dd>Goodput at 1,000 connections as a % of the same server's 100-connection run; errors other than 503 (which a server that sheds load answers on purpose); and the p99 against Little's law: with every connection always waiting, the mean time in the system is connections ÷ throughput, and the target is p99 ≤ ${LITTLE_FACTOR}× that bound.</dd>
<dt>ratios</dt><dd>ours ÷ each other target of the medians over repetitions of the same run: req/s above 1 and p99 below 1 favour ours.</dd>
</dl>`;

/** The whole report: one HTML file with inline CSS and SVG, no script and no external resource. */
export function renderReport(results: Results): string {
  const summaries = summarize(results);
  const title = `fastify-sqlasync load test, ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC`;
  const banner = results.failure
    ? `<div class="banner"><strong>The bench failed</strong>; results so far are shown.<pre>${escape(results.failure.slice(0, 2000))}</pre></div>`
    : results.partial
      ? '<div class="banner">Partial results: the bench was interrupted or is still running.</div>'
      : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escape(title)}</h1>
<p class="muted">${results.runs.length} runs${results.finishedAt ? `, finished ${escape(results.finishedAt.slice(0, 19).replace('T', ' '))} UTC` : ''}. Medians over repetitions; every run is listed under its scenario.</p>
${banner}
<h2>Setup</h2>${setupSection(results)}
<h2>Summary</h2>${realisticTable(results, summaries)}${seedTable(results, summaries)}${overloadTable(results, summaries)}
<h3>Every scenario</h3>${summaryTable(results, summaries)}
<div class="charts">${summaries.length ? overviewCharts(results, summaries) : '<p class="muted">No runs yet.</p>'}</div>
<h2>Scenarios</h2>${summaries.map((summary) => scenarioSection(results, summary)).join('')}
<h2>What the numbers mean</h2>${METHOD}
</body></html>
`;
}
