import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseOptions, REPO_ROOT, type Options } from '../../bench/options.js';
import { checkOverload, littleMs, non503Errors } from '../../bench/overload.js';
import type { RunResult } from '../../bench/results.js';
import { baselineScenarioId, buildPlan, estimateSeconds, scenariosFor } from '../../bench/scenarios.js';

const options = (...argv: string[]) => parseOptions(argv) as Options;

describe('bench options', () => {
  it('restart every server the bench started before each repetition, unless --keep-servers', () => {
    expect(options('--compare').keepServers).toBe(false);
    expect(options('--compare', '--keep-servers').keepServers).toBe(true);
  });

  it('start the seed from inside the repository by default, and depend on no path outside it', () => {
    const parsed = options('--compare');
    expect(parsed.peerDir).toBe(path.join(REPO_ROOT, 'bench', 'fastapi-seed'));
    const paths = Object.values(parsed).filter((value): value is string => typeof value === 'string' && value.startsWith('/'));
    for (const value of paths) expect(value.startsWith(REPO_ROOT) || value.startsWith('/usr/'), value).toBe(true);
  });

  it('compare with both peers by default; --peers chooses and implies --compare; --peer-url implies the seed', () => {
    expect(options().peers).toEqual([]);
    expect(options('--compare').peers).toEqual(['minimal', 'seed']);
    expect(options('--peers', 'minimal')).toMatchObject({ compare: true, peers: ['minimal'] });
    expect(options('--peers', 'minimal', '--peer-url', 'http://127.0.0.1:8000/items')).toMatchObject({ peers: ['minimal', 'seed'], peerUrl: 'http://127.0.0.1:8000' });
    expect(() => options('--peers', 'django')).toThrow(/unknown peer django/);
    expect(() => options('--peer-url', 'http://10.0.0.1:8000')).toThrow(/loopback/);
  });
});

describe('the plan', () => {
  it('runs the seed only in its own scenarios, pgbench beside the traffic whose SQL it runs, the minimal peer in all', () => {
    const targets = Object.fromEntries(scenariosFor(options('--compare', '--rows', '10')).map((scenario) => [scenario.id, scenario.targets]));
    expect(targets).toEqual({
      'get-10': ['ours', 'minimal', 'peer'],
      'post-hey': ['ours', 'minimal', 'peer'],
      'post-wrk': ['ours', 'minimal', 'peer'],
      pgbench: ['database'],
      'same-page': ['ours', 'minimal', 'database'],
      pages: ['ours', 'minimal', 'database'],
      'by-id': ['ours', 'minimal', 'database'],
      mix: ['ours', 'minimal'],
      'overload-get-10': ['ours', 'minimal', 'peer'],
      'overload-post': ['ours', 'minimal', 'peer'],
      'overload-by-id': ['ours', 'minimal'],
    });
    const pages = scenariosFor(options('--scenarios', 'pages,overload-by-id', '--table-rows', '5000'));
    expect(pages.map((scenario) => [scenario.id, scenario.rows, scenario.connections])).toEqual([
      ['pages', 5000, 100],
      ['overload-by-id', 5000, 1000],
    ]);
  });

  it('rotates the order of the targets between repetitions, and leaves out the targets not running', () => {
    const scenarios = scenariosFor(options('--scenarios', 'get,by-id', '--rows', '10'));
    const plan = buildPlan(scenarios, ['ours', 'minimal', 'peer', 'database'], 3);
    const order = (rep: number, id: string) => plan.filter((run) => run.rep === rep && run.scenario.id === id).map((run) => run.target);
    expect([1, 2, 3].map((rep) => order(rep, 'get-10'))).toEqual([
      ['ours', 'minimal', 'peer'],
      ['minimal', 'peer', 'ours'],
      ['peer', 'ours', 'minimal'],
    ]);
    expect([1, 2, 3].map((rep) => order(rep, 'by-id'))).toEqual([
      ['ours', 'minimal', 'database'],
      ['minimal', 'database', 'ours'],
      ['database', 'ours', 'minimal'],
    ]);
    expect(buildPlan(scenarios, ['ours'], 2).map((run) => `${run.rep} ${run.scenario.id} ${run.target}`)).toEqual(['1 get-10 ours', '1 by-id ours', '2 get-10 ours', '2 by-id ours']);
  });

  it('compares each overload scenario with its 100-connection scenario', () => {
    expect(scenariosFor(options('--rows', '10,1000')).flatMap((scenario) => baselineScenarioId(scenario) ?? [])).toEqual(['get-10', 'get-1000', 'post-wrk', 'by-id']);
  });

  it('estimates every run: warm-up, duration and overhead, more for the seed\'s heavy runs', () => {
    const parsed = options('--compare', '--scenarios', 'by-id', '--repeat', '1', '--duration', '10s', '--warmup', '3s');
    const plan = buildPlan(scenariosFor(parsed), ['ours', 'minimal', 'database'], 1);
    // 30 s of start-up (+10 per extra server), 3 runs of 3 + 10 + 9 s, 2 s each to pin 100,000 rows, the last counters.
    expect(estimateSeconds(plan, parsed)).toBe(40 + 3 * 22 + 3 * 2 + 11);
  });
});

describe('overload against Little\'s law', () => {
  const run = (fields: Partial<RunResult>): RunResult =>
    ({ connections: 1000, rps: 20_000, okRps: 15_000, latencyMs: { p50: 40, p90: 50, p99: 60, max: 90 }, statuses: { '200': 150_000, '503': 40_000, '500': 3 }, non2xx: 40_003, socketErrors: { connect: 1, read: 2, write: 0, other: 0 }, timeouts: 4, ...fields }) as RunResult;

  it('bounds the mean time in the system by connections ÷ throughput', () => {
    expect(littleMs(1000, 20_000)).toBe(50);
    expect(littleMs(100, 0)).toBe(Number.POSITIVE_INFINITY);
  });

  it('counts failures other than 503: other statuses, socket errors and timeouts', () => {
    expect(non503Errors(run({}))).toBe(3 + 1 + 2 + 4);
    // Plain wrk knows only the count of statuses ≥ 400.
    expect(non503Errors(run({ statuses: undefined, non2xx: 7, socketErrors: { connect: 0, read: 0, write: 0, other: 0 }, timeouts: 0 }))).toBe(7);
  });

  it('reports goodput as a % of the 100-connection run, and p99 against 1.5 × the bound', () => {
    expect(checkOverload(run({}), 'by-id', run({ okRps: 20_000 }))).toEqual({ baseline: 'by-id', throughputPct: 75, non503Errors: 10, littleMs: 50, p99OverLittle: 1.2, withinTarget: true });
    expect(checkOverload(run({ latencyMs: { p50: 40, p90: 50, p99: 76, max: 90 } }), 'by-id', undefined)).toMatchObject({ p99OverLittle: 1.52, withinTarget: false });
    expect(checkOverload(run({}), 'by-id', undefined)).not.toHaveProperty('throughputPct');
  });
});
