/**
 * The benchmark's C tools for the migration experiments, built from bench/c/ and run in
 * network namespaces:
 *
 *   delayline  a user-space WAN delay element (no netem here):
 *              a ── veth ── [ d: delayline --delay-ms D ] ── veth ── b
 *              10.214.0.1                                           10.214.0.2
 *   probe      paced UDP probes with one-way delay, loss runs, bins and a trace
 *
 * The site interfaces keep their offloads on (checksum, TSO), so delayline's virtio-net
 * header handling is exercised: UDP probes with partial checksums must arrive intact.
 * Only generous timing bounds (a shared 2-core machine).
 *
 * Needs root. Not root: skipped with a visible reason; not root under CI: fails.
 */
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns, run } from '../../src/demo/netns.js';
import { describeAsRoot } from '../helpers/root.js';

const SRC = (name: string): string => fileURLToPath(new URL(`../../bench/c/${name}.c`, import.meta.url));

// Unique names, always with the `limedl` prefix (interfaces: at most 15 bytes).
const id = ((process.pid % 1296) * 1296 + Math.floor(Math.random() * 1296)).toString(36).padStart(4, '0');
const IF = (suffix: string): string => `limedl${id}${suffix}`;
const IP_A = '10.214.0.1';
const IP_B = '10.214.0.2';

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A tool started in a namespace (`ip netns exec` execs it: same PID), stdout/stderr collected. */
class Proc {
  out = '';
  err = '';
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<Exit>;
  readonly ready: Promise<void>;

  constructor(ns: string, cmd: string, args: readonly string[]) {
    this.child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin.end();
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${cmd}: no READY within 10 s: ${this.err}`)), 10_000);
      this.child.stderr.setEncoding('utf8').on('data', (d: string) => {
        this.err += d;
        if (this.err.includes('READY')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void this.exited.then((e) => {
        clearTimeout(timer);
        reject(new Error(`${cmd} exited (${e.code ?? e.signal}) before READY: ${this.err}`));
      });
    });
    this.ready.catch(() => undefined); // observed by the awaiting test; never unhandled
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, wait for the exit (SIGKILL after 5 s), return the exit and the JSON it printed. */
  async stop<T>(): Promise<{ exit: Exit; json: T }> {
    if (this.running) process.kill(this.child.pid!, 'SIGTERM');
    const timer = setTimeout(() => this.running && process.kill(this.child.pid!, 'SIGKILL'), 5000);
    const exit = await this.exited;
    clearTimeout(timer);
    return { exit, json: JSON.parse(this.out) as T };
  }
}

interface DirStats {
  frames: number;
  bytes: number;
  dropped_queue_full: number;
  too_long: number;
  send_failed: number;
  queued_at_exit: number;
}
interface DelaylineReport {
  delay_ms: number;
  a_to_b: DirStats;
  b_to_a: DirStats;
}
interface RxStats {
  received: number;
  dup: number;
  reordered: number;
  first_seq: number | null;
  last_seq: number | null;
  lost: number;
  max_gap_ms: number;
  max_gap_at_ms: number | null;
  lost_runs: [number, number][];
}
interface ProbeReport {
  id: number;
  rate: number;
  seconds: number;
  start_at_ms: number;
  sent: Record<string, number>;
  send_errors: Record<string, number>;
  skipped: number;
  bad: number;
  rx: Record<string, RxStats>;
  bins: { t_ms: number; n: number; delay_sum_us: number; delay_max_us: number }[];
  trace?: [number, number, number, number][];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

describeAsRoot('bench tools: delayline and probe (netns)', () => {
  let dir = '';
  let net: Netns | undefined;
  const procs: Proc[] = [];
  let nsA = '';
  let nsD = '';
  let nsB = '';
  const bin = (name: string): string => join(dir, name);

  const start = (ns: string, name: string, args: readonly string[]): Proc => {
    const p = new Proc(ns, bin(name), args);
    procs.push(p);
    return p;
  };
  const delayline = async (delayMs: number): Promise<Proc> => {
    const p = start(nsD, 'delayline', ['--a', IF('da'), '--b', IF('db'), '--delay-ms', String(delayMs)]);
    await p.ready;
    return p;
  };
  /** RTTs (ms) of `ping -c COUNT -i 0.2` from a to b. */
  const ping = (count: number): number[] => {
    const out = run('ip', ['netns', 'exec', nsA, 'ping', '-n', '-c', String(count), '-i', '0.2', '-W', '2', IP_B], { timeoutMs: 20_000 });
    return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'limedl-'));
    // The harness builds with `cc -O2`; here warnings are errors too.
    for (const name of ['delayline', 'probe']) execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin(name), SRC(name)], { stdio: 'pipe' });

    net = new Netns('limedl-');
    nsA = net.add(`a${id}`);
    nsD = net.add(`d${id}`);
    nsB = net.add(`b${id}`);
    for (const ns of [nsA, nsD, nsB]) net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    run('ip', ['link', 'add', IF('a'), 'netns', nsA, 'type', 'veth', 'peer', 'name', IF('da'), 'netns', nsD]);
    run('ip', ['link', 'add', IF('b'), 'netns', nsB, 'type', 'veth', 'peer', 'name', IF('db'), 'netns', nsD]);
    net.exec(nsA, 'ip', ['addr', 'add', `${IP_A}/24`, 'dev', IF('a')]);
    net.exec(nsB, 'ip', ['addr', 'add', `${IP_B}/24`, 'dev', IF('b')]);
    for (const [ns, dev] of [
      [nsA, IF('a')],
      [nsB, IF('b')],
      [nsD, IF('da')],
      [nsD, IF('db')],
    ] as const)
      net.exec(ns, 'ip', ['link', 'set', dev, 'up']);
  });

  afterAll(() => {
    for (const p of procs) if (p.running) process.kill(p.child.pid!, 'SIGKILL');
    net?.destroy();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  describe('delayline', () => {
    it('delays each direction by --delay-ms 20 and reports its counters', async () => {
      const dl = await delayline(20);
      const rtts = ping(5);
      const { exit, json } = await dl.stop<DelaylineReport>();
      expect(rtts).toHaveLength(5);
      for (const rtt of rtts) expect(rtt).toBeGreaterThanOrEqual(40);
      expect(median(rtts)).toBeLessThan(80);
      expect(exit.code).toBe(0);
      expect(json.delay_ms).toBe(20);
      for (const d of [json.a_to_b, json.b_to_a]) {
        expect(d.frames).toBeGreaterThanOrEqual(5);
        expect(d.bytes).toBeGreaterThanOrEqual(d.frames * 42);
        expect(d.dropped_queue_full).toBe(0);
        expect(d.too_long).toBe(0);
        expect(d.send_failed).toBe(0);
      }
    });

    it('forwards at once with --delay-ms 0', async () => {
      const dl = await delayline(0);
      const rtts = ping(5);
      const { exit, json } = await dl.stop<DelaylineReport>();
      expect(rtts).toHaveLength(5);
      expect(median(rtts)).toBeLessThan(10);
      expect(exit.code).toBe(0);
      expect(json.a_to_b.frames).toBeGreaterThanOrEqual(5);
      expect(json.b_to_a.frames).toBeGreaterThanOrEqual(5);
    });

    it('rejects a missing interface (exit 1, named) and bad arguments (exit 2)', () => {
      const missing = IF('zz');
      const r1 = spawnSync('ip', ['netns', 'exec', nsD, bin('delayline'), '--a', IF('da'), '--b', missing, '--delay-ms', '1'], { encoding: 'utf8' });
      expect(r1.status).toBe(1);
      expect(r1.stderr).toContain(missing);
      for (const args of [
        ['--a', IF('da'), '--b', IF('db'), '--delay-ms', '-1'],
        ['--a', IF('da'), '--b', IF('db'), '--delay-ms', 'x'],
        ['--a', IF('da'), '--b', IF('db')],
        ['--a', IF('da'), '--delay-ms', '5'],
        ['--a', IF('da'), '--b', IF('db'), '--delay-ms', '5', '--queue', '0'],
        [],
      ]) {
        const r = spawnSync(bin('delayline'), args, { encoding: 'utf8' });
        expect(r.status, args.join(' ')).toBe(2);
        expect(r.stderr).toContain('usage');
      }
    });
  });

  describe('probe', () => {
    it('measures one-way delay through a 5 ms delayline, both ways', async () => {
      const dl = await delayline(5);
      ping(1); // ARP resolved before the probes start
      const startAt = Date.now() + 1500;
      const common = ['--port', '47123', '--rate', '200', '--seconds', '2', '--start-at', String(startAt), '--trace'];
      const p1 = start(nsA, 'probe', ['--id', '1', '--bind', IP_A, ...common, '--to', `2@${IP_B}`]);
      const p2 = start(nsB, 'probe', ['--id', '2', '--bind', IP_B, ...common, '--to', `1@${IP_A}`]);
      await Promise.all([p1.ready, p2.ready]);
      const [e1, e2] = await Promise.all([p1.exited, p2.exited]);
      await dl.stop<DelaylineReport>();
      expect(e1.code, p1.err).toBe(0);
      expect(e2.code, p2.err).toBe(0);

      for (const [p, me, other] of [
        [p1, 1, 2],
        [p2, 2, 1],
      ] as const) {
        const r = JSON.parse(p.out) as ProbeReport;
        expect(r.id).toBe(me);
        expect(r.start_at_ms).toBe(startAt);
        expect(r.sent[String(other)]! + r.skipped).toBe(400);
        expect(r.send_errors[String(other)]).toBe(0);
        expect(r.bad).toBe(0);
        const rx = r.rx[String(other)]!;
        expect(rx.received).toBeGreaterThanOrEqual(390);
        expect(rx.received).toBeLessThanOrEqual(400);
        expect(rx.first_seq).toBe(0);
        expect(rx.lost).toBe(rx.last_seq! - rx.first_seq! + 1 - rx.received);
        expect(rx.lost_runs.reduce((s, [, n]) => s + n, 0)).toBe(rx.lost);
        // Bins: 1 s wide, arrivals from 5 ms to ~2005 ms after the start: 2 or 3 of them.
        expect(r.bins.length).toBeGreaterThanOrEqual(2);
        expect(r.bins.length).toBeLessThanOrEqual(4);
        expect(r.bins.reduce((s, b) => s + b.n, 0)).toBe(rx.received + rx.dup);
        for (const b of r.bins) {
          if (b.n === 0) continue;
          expect(b.delay_sum_us / b.n).toBeGreaterThanOrEqual(4000);
          expect(b.delay_sum_us / b.n).toBeLessThanOrEqual(30_000);
          expect(b.delay_max_us).toBeGreaterThanOrEqual(4000);
        }
        const trace = r.trace!;
        expect(trace).toHaveLength(rx.received + rx.dup);
        expect(new Set(trace.map(([, , seq]) => seq)).size).toBe(rx.received);
        for (const [t, src, , delayUs] of trace) {
          expect(src).toBe(other);
          expect(delayUs).toBeGreaterThanOrEqual(4000); // never faster than the delay element
          expect(t).toBeGreaterThan(0);
          expect(t).toBeLessThan(2000 + 1500);
        }
      }
    });

    it('prints what it has on SIGTERM (exit 0)', async () => {
      const p = start(nsA, 'probe', ['--id', '7', '--bind', IP_A, '--port', '47124', '--rate', '100', '--seconds', '30', '--start-at', String(Date.now()), '--to', `8@${IP_B}`]);
      await p.ready;
      await new Promise((r) => setTimeout(r, 300));
      const { exit, json } = await p.stop<ProbeReport>();
      expect(exit.code).toBe(0);
      expect(json.id).toBe(7);
      expect(json.sent['8']).toBeGreaterThan(0);
      expect(json.sent['8']).toBeLessThan(3000);
      expect(json.rx['8']!.received).toBe(0); // nobody answers: an entry all the same
      expect(json.rx['8']!.first_seq).toBeNull();
    });

    it('rejects bad arguments (exit 2)', () => {
      const ok = ['--id', '1', '--bind', '127.0.0.1', '--port', '47125', '--rate', '10', '--seconds', '1', '--start-at', '0'];
      for (const args of [
        [...ok], // no --to
        [...ok, '--to', 'x@127.0.0.1'],
        [...ok, '--to', '2@not-an-ip'],
        [...ok, '--to', '2@127.0.0.1', '--to', '2@127.0.0.2'],
        [...ok.map((a) => (a === '10' ? '0' : a)), '--to', '2@127.0.0.1'],
        [...ok, '--to', '2@127.0.0.1', '--bin-ms', '0'],
        [...ok, '--to', '2@127.0.0.1', '--bogus', '1'],
        ['--id', '70000', '--bind', '127.0.0.1', '--port', '1', '--rate', '1', '--seconds', '1', '--start-at', '0', '--to', '2@127.0.0.1'],
      ]) {
        const r = spawnSync(bin('probe'), args, { encoding: 'utf8' });
        expect(r.status, args.join(' ')).toBe(2);
        expect(r.stderr).toContain('usage');
      }
    });
  });
});
