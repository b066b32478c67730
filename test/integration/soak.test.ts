/**
 * The soak test of issue 8's hardening pass, at its CI length: test/soak/soak.mjs for 2
 * minutes — two peered limed sites, four hosts moving between them every 10 s, full-rate
 * traffic between every pair of hosts (each receiver checks every frame at L2), 100
 * flow-mods/s offered at both sites, the control link cut once — then each condition of
 * its JSON summary asserted here. The 30-minute run is `npm run soak -- --minutes 30`.
 *
 * The whole file (set-up, 2 minutes, checks, teardown) stays within 150 s: the run is
 * stopped (SIGTERM: the driver cleans up after itself) if it is not done by then.
 *
 * Memory: the writer keeps its replication window (limits.replication_window_entries)
 * and both sites the journal's records since the last compaction
 * (limits.journal_compact_entries, default 50,000) in memory, about 1.7 kB and 0.6 kB of
 * RSS per entry as measured: RSS grows with every flow-mod until those limits are reached
 * (the 30-minute run with a 200,000-entry window: +147 % at the writer, +25 % at the
 * follower), which is retention by design, not a leak, and a minute of CI cannot tell the
 * two apart. So this run sets both limits to 2,000 (reached within the warm-up), and the
 * RSS check looks for growth beyond the configured retention (with them, 10 minutes of
 * soak stayed flat from the 4th minute on). `npm run soak` runs limed's defaults.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWhen, ROOT } from '../helpers/root.js';
import { haveOpenssl } from '../helpers/certs.js';

const SOAK = fileURLToPath(new URL('../soak/soak.mjs', import.meta.url));
const MINUTES = 2;
/** The file's budget; the driver is stopped this long before it so that the hooks finish in time. */
const BUDGET_MS = 150_000;
const KILL_AFTER_MS = BUDGET_MS - 6_000;
const RETENTION = { limits: { journal_compact_entries: 2000, replication_window_entries: 2000 } };

interface Site<T> {
  a: T;
  b: T;
}
interface Summary {
  ok: boolean;
  failures: string[];
  error?: string;
  wall_s: number;
  limed: Site<{ alive_at_end: boolean; exit_code: number | null; exit_signal: string | null; killed: boolean }>;
  rss: { threshold: number } & Site<{ start_kb: number; end_kb: number; growth: number }>;
  tables: { a: number; b: number; churn_flows: number; a_only: string[]; b_only: string[] };
  flow_mods: { acked: number; checked_keys: number; expected_present: number; missing: unknown[]; missing_count: number; reply_mismatches: unknown[]; errors_other: string[] };
  traffic: { sent: number; received: number; misdelivered: number; corrupt: number };
  connectivity: { pairs: number; dead_pairs: string[] };
  locations: { expected: string; a: string; b: string };
  moves: { done: number; by_command: number; detected: number };
  cuts: { done: number; list: Array<{ t_s: number; seen_disconnected: Site<boolean>; reconnect_ms: number | null; resyncs_resumes_before: Array<number | null>; resyncs_resumes_after: Array<number | null> }> };
  peer: Site<{ connected: boolean; divergent: number; resyncs: number; resumes: number }>;
}

const dir = mkdtempSync(join(tmpdir(), 'lime-soak-'));
const jsonFile = join(dir, 'summary.json');
let summary: Summary;
let exitCode: number | null = null;
let stderr = '';
let child: ReturnType<typeof spawn> | undefined;

/** The end of the driver's progress log, for the failure messages. */
const logTail = (): string => stderr.trim().split('\n').slice(-15).join('\n');

describeWhen(ROOT && haveOpenssl(), 'root and openssl', `soak: ${MINUTES} minutes of traffic, flow-mod churn, host moves and a control-link cut`, () => {
  beforeAll(async () => {
    const c = spawn(process.execPath, [SOAK, '--minutes', String(MINUTES), '--limed-config', JSON.stringify(RETENTION), '--json', jsonFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killer = setTimeout(() => c.kill('SIGTERM'), KILL_AFTER_MS);
    exitCode = await new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)));
    clearTimeout(killer);
    child = undefined;
    if (!existsSync(jsonFile)) throw new Error(`the soak wrote no summary (exit ${exitCode}):\n${logTail()}`);
    summary = JSON.parse(readFileSync(jsonFile, 'utf8')) as Summary;
    if (summary.error !== undefined) throw new Error(`the soak broke (exit ${exitCode}): ${summary.error}\n${logTail()}`);
    const pct = (g: number): string => `${(100 * g).toFixed(1)} %`;
    console.log(
      `soak ${MINUTES} min in ${summary.wall_s} s: RSS a ${summary.rss.a.start_kb} → ${summary.rss.a.end_kb} kB (${pct(summary.rss.a.growth)}), ` +
        `b ${summary.rss.b.start_kb} → ${summary.rss.b.end_kb} kB (${pct(summary.rss.b.growth)}); flow-mods acknowledged ${summary.flow_mods.acked}; ` +
        `moves ${summary.moves.done}; cuts ${summary.cuts.done}; frames sent ${summary.traffic.sent}, received ${summary.traffic.received}, ` +
        `misdelivered ${summary.traffic.misdelivered}; tables ${summary.tables.a}/${summary.tables.b}; failures: ${summary.failures.join('; ') || 'none'}`,
    );
  }, BUDGET_MS);

  afterAll(async () => {
    const c = child;
    if (c !== undefined && c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('no limed crashed: both alive at the end and exiting 0 on SIGTERM', () => {
    for (const s of ['a', 'b'] as const) {
      const l = summary.limed[s];
      expect(l.alive_at_end, `site ${s}`).toBe(true);
      expect(l.exit_code, `site ${s}: ${JSON.stringify(l)}`).toBe(0);
      expect(l.killed, `site ${s} needed SIGKILL`).toBe(false);
    }
  });

  it('each limed\'s RSS grew less than 10 % from the end of the warm-up to the end', () => {
    for (const s of ['a', 'b'] as const) {
      const r = summary.rss[s];
      expect(r.start_kb, `site ${s}`).toBeGreaterThan(0);
      expect(r.growth, `site ${s}: ${r.start_kb} → ${r.end_kb} kB`).toBeLessThan(0.1);
    }
  });

  it('the flow tables are equal at both sites', () => {
    expect(summary.tables.a_only).toEqual([]);
    expect(summary.tables.b_only).toEqual([]);
    expect(summary.tables.a).toBe(summary.tables.b);
    expect(summary.peer.a.divergent + summary.peer.b.divergent).toBe(0);
  });

  it('every acknowledged flow-mod is in the table (its last acknowledged state, at both sites)', () => {
    const f = summary.flow_mods;
    expect(f.acked).toBeGreaterThan(0);
    expect(f.checked_keys).toBeGreaterThan(0);
    expect(f.missing, `${f.missing_count} keys not in their acknowledged state`).toEqual([]);
    expect(f.reply_mismatches).toEqual([]);
    expect(f.errors_other).toEqual([]);
  });

  it('no frame reached the wrong host, none was corrupted, and every pair of hosts still talks at the end', () => {
    const t = summary.traffic;
    expect(t.received).toBeGreaterThan(0);
    expect(t.misdelivered).toBe(0);
    expect(t.corrupt).toBe(0);
    expect(summary.connectivity.dead_pairs).toEqual([]);
  });

  it('hosts moved every 10 s, and both sites\' location maps say where every NIC is', () => {
    expect(summary.moves.done).toBeGreaterThanOrEqual(6);
    expect(summary.locations.a).toBe(summary.locations.expected);
    expect(summary.locations.b).toBe(summary.locations.expected);
  });

  it('the control link was cut, both sites saw it, and they reconnected and caught up', () => {
    expect(summary.cuts.done).toBe(1);
    for (const c of summary.cuts.list) {
      expect(c.seen_disconnected, `cut at ${c.t_s} s`).toEqual({ a: true, b: true });
      expect(c.reconnect_ms, `cut at ${c.t_s} s`).not.toBeNull();
      const before = c.resyncs_resumes_before.reduce<number>((x, y) => x + (y ?? 0), 0);
      const after = c.resyncs_resumes_after.reduce<number>((x, y) => x + (y ?? 0), 0);
      expect(after, `cut at ${c.t_s} s: resyncs + resumes`).toBeGreaterThan(before);
    }
    expect(summary.peer.a.connected && summary.peer.b.connected).toBe(true);
  });

  it('the driver\'s own verdict agrees (exit 0, no failure)', () => {
    expect(summary.failures, logTail()).toEqual([]);
    expect(summary.ok).toBe(true);
    expect(exitCode).toBe(0);
  });
});
