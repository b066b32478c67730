/**
 * The benchmark harness end to end: `npm run bench -- --quick` builds every topology, runs
 * every scenario, section and experiment briefly, tears everything down, and leaves a
 * results folder whose JSON validates against bench/schema/ (checked here with ajv,
 * independently of the harness's own check) and whose REPORT.md shows every figure the
 * issue asks for, each an SVG carrying its axis titles. Only completeness and form are
 * asserted, never a timing (performance is measured by the harness, not judged by tests).
 *
 * Also: bad command-line arguments get a clear error and exit 2, without root.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { afterAll, describe, expect, it } from 'vitest';
import { CI, describeAsRoot } from '../helpers/root.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const RUN = join(REPO, 'bench', 'run.mjs');

interface RunDoc {
  schema: string;
  partial: boolean;
  scenarios: string[];
  skipped: Record<string, string>;
  files: string[];
  figures: string[];
  goals: { source: string; goal: string; pass: boolean }[];
  failures?: string[];
}

/** Each figure the report must have, and words its SVG must carry (axis titles, legend). */
const FIGURES: Record<string, string[]> = {
  'headline-capacity': ['delivered kframes/s', 'system family', 'limed bridge', 'OVS userspace bridge', 'OpenVPN'],
  'headline-tcp': ['Gbit/s'],
  'headline-cpu': ['µs of CPU per frame'],
  'headline-rtt': ['added RTT (µs)'],
  'fig4-downtime': ['inter-arrival time (ms)', 'time since the probes started (s)', '1000 probes/s', '20 probes/s'],
  'fig10-lime-vs-stop-and-copy': ['average one-way delay (ms)', 'lime', 'stop-and-copy', 'finalize'],
  'fig11-delay-vs-latency': ['inter-site one-way delay (ms)', 'stop-and-copy'],
  'fig12-order-delay': ['time since migrate prepare (s)', 'planner', 'worst'],
  'fig12-order-bytes': ['inter-site bytes (kB)'],
  'fig13-concurrent-moves': ['hosts moved at once'],
  'clone-time': ['flows in the table (log scale)'],
  'clone-under-churn': ['flow-mods per second at the writer'],
  'table-scaling-flows': ['capacity (kframes/s)', 'new 5-tuple per frame'],
  'table-scaling-cpu': ['limed CPU per delivered frame (µs)'],
};

describe('bench harness: command-line errors (no root needed)', () => {
  it.each([
    [['nosuch'], /unknown scenario nosuch/],
    [['--rounds', 'x'], /--rounds must be an integer/],
    [['--bogus'], /unknown option --bogus/],
    [['--cpu-rate', '5'], /--cpu-rate must be an integer ≥ 1000/],
  ])('%j is refused with exit 2 and says why', (args, why) => {
    const r = spawnSync(process.execPath, [RUN, ...args], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(why);
    expect(r.stderr).toMatch(/usage: npm run bench/);
  });

  it('--help lists every scenario, section and experiment', () => {
    const r = spawnSync(process.execPath, [RUN, '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(0);
    for (const n of ['veth', 'bridge', 'tapfwd', 'ovs', 'limed', 'gre-limed', 'vlan-limed', 'gre-ovs', 'openvpn', 'sync', 'downtime', 'lime-vs-sc', 'delay-sweep', 'order', 'concurrent', 'clone', 'table-scaling']) {
      expect(r.stdout).toContain(n);
    }
  });
});

describeAsRoot('bench harness: npm run bench -- --quick', () => {
  const out = mkdtempSync(join(tmpdir(), 'lime-benchq-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs every scenario and writes a report and JSON that validate against the schemas', async () => {
    const child = spawn('npm', ['run', '-s', 'bench', '--', '--quick', '--out', out], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.resume();
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    const tail = stderr.trim().split('\n').slice(-15).join('\n');
    expect(code, `bench exited ${code}:\n${tail}`).toBe(0);

    // Independent of the harness's own check: ajv against the published schemas.
    const ajv = new Ajv({ allErrors: true, strictSchema: true, strictRequired: false, strictTypes: false });
    const schema = (f: string): object => JSON.parse(readFileSync(join(REPO, 'bench', 'schema', f), 'utf8')) as object;
    const validRun = ajv.compile(schema('run.schema.json'));
    const validScenario = ajv.compile(schema('scenario.schema.json'));
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as RunDoc;
    expect(validRun(run), JSON.stringify(validRun.errors)).toBe(true);
    expect(run.partial).toBe(false);
    expect(run.failures ?? []).toEqual([]);
    if (CI) expect(run.skipped, 'under CI every peer is installed: nothing may be skipped').toEqual({});
    const ran = run.scenarios.filter((n) => run.skipped[n] === undefined);
    for (const n of ['veth', 'limed', 'gre-limed', 'vlan-limed', 'sync', 'downtime', 'lime-vs-sc', 'delay-sweep', 'order', 'concurrent', 'clone', 'table-scaling']) {
      expect(ran).toContain(n);
    }
    // Every scenario that ran has its file, and every file validates.
    const jsonFiles = readdirSync(out).filter((f) => f.endsWith('.json') && f !== 'run.json').sort();
    expect(jsonFiles).toEqual([...run.files].sort());
    for (const n of ran) expect(run.files).toContain(`${n}.json`);
    for (const f of run.files) {
      const doc = JSON.parse(readFileSync(join(out, f), 'utf8')) as { name: string; error?: string };
      expect(validScenario(doc), `${f}: ${JSON.stringify(validScenario.errors)}`).toBe(true);
      expect(doc.error, `${f} reports an error`).toBeUndefined();
      expect(`${doc.name}.json`).toBe(f);
    }
    // limed's Prometheus endpoint was scraped (curl) before and after the load, and its port counters moved.
    const limedDoc = JSON.parse(readFileSync(join(out, 'limed.json'), 'utf8')) as { samples: { prometheus?: { moved: boolean; error?: string; rx_packets_delta?: number } }[] };
    expect(limedDoc.samples.length).toBeGreaterThan(0);
    for (const s of limedDoc.samples) {
      expect(s.prometheus, 'limed sample has its Prometheus scrapes').toBeDefined();
      expect(s.prometheus!.error).toBeUndefined();
      expect(s.prometheus!.moved, JSON.stringify(s.prometheus)).toBe(true);
      expect(s.prometheus!.rx_packets_delta).toBeGreaterThan(1000);
    }
    // The report shows every figure, and each is an SVG with its axis titles and legend.
    const report = readFileSync(join(out, 'REPORT.md'), 'utf8');
    expect(report).toMatch(/^# lime bench/);
    expect(report).toContain('## Goals (issue 7)');
    expect(report).toContain('## limed Prometheus endpoint');
    for (const [name, words] of Object.entries(FIGURES)) {
      const rel = `figures/${name}.svg`;
      expect(run.figures).toContain(rel);
      expect(report).toContain(`](${rel})`);
      const svg = readFileSync(join(out, rel), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      for (const w of words) expect(svg, `${rel} should say "${w}"`).toContain(w.replace(/&/g, '&amp;'));
    }
    // Issue 7's goals are judged (met or not) in the report and in run.json.
    const g7 = run.goals.filter((g) => g.source === 'issue 7');
    expect(g7.length).toBeGreaterThanOrEqual(5);
    // Everything the harness created is gone.
    const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    expect(ns).not.toMatch(/limeb/);
    expect(existsSync('/tmp/limeb.lock')).toBe(false);
  }, 15 * 60_000);
});
