/**
 * Two limed sites peered over the control channel (mutual TLS across the WAN link), each
 * with a host behind a TAP port and a GRE tunnel to the other for the data: the logical
 * flow table is one table at both sites, changes are acknowledged only when applied at
 * both, and `kill -9` of either site loses nothing that was acknowledged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { LimedProcess } from '../../src/demo/limed-process.js';
import { fileURLToPath } from 'node:url';
import { describeWhen, ROOT } from '../helpers/root.js';
import { barrierWhenPeered, peerStatus, waitPeered } from '../helpers/peer-status.js';
import { monitorJson, type Monitor } from '../helpers/monitor.js';
import { haveOpenssl, makeTestCerts, writeSiteTls, type TestCerts } from '../helpers/certs.js';
import { baseSites, HOST_A, HOST_B, startLimed, WAN_A, WAN_B, type Sites } from '../helpers/sites.js';

const dir = mkdtempSync(join(tmpdir(), 'lime-peering-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let certs: TestCerts;
let sites: Sites | undefined;
let relay: ChildProcess | undefined;

const RELAY = fileURLToPath(new URL('../helpers/tcp-relay.mjs', import.meta.url));
const RELAY_PORT = 7001;

/**
 * A TCP relay in site B's namespace, 127.0.0.1:7001 → A's control channel: the link a test
 * cuts. With `cutAfter`, the relay cuts it itself after that many bytes from A; `exited` then
 * settles.
 */
async function startRelay(s: Sites, cutAfter?: number): Promise<{ exited: Promise<unknown> }> {
  const child = spawn('ip', ['netns', 'exec', s.siteB, process.execPath, RELAY, '127.0.0.1', String(RELAY_PORT), WAN_A, '6640', ...(cutAfter !== undefined ? [String(cutAfter)] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  relay = child;
  const exited = new Promise((r) => child.once('exit', r));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`the relay exited (${code})`)));
  });
  return { exited };
}

async function killRelay(): Promise<void> {
  const child = relay;
  relay = undefined;
  if (child === undefined || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/**
 * Both limeds: host TAP + GRE to the other site; peered over TLS on the WAN addresses (B
 * through a relay in its namespace when `viaRelay`).
 */
async function peeredSites(prefix: string, opts: { viaRelay?: boolean; logLevel?: string } = {}): Promise<Sites> {
  const s = baseSites(prefix);
  sites = s;
  const files = (side: 'a' | 'b') => writeSiteTls(certs, side, join(dir, `${prefix}-${side}`));
  const gre = (remote: string) => ({ name: 'wan', type: 'gre' as const, remote_ip: remote, key: 77 });
  await startLimed(s, 'a', [gre(WAN_B)], {
    config: { listen: `${WAN_A}:6640`, peer: { name: 'site-b', address: `${WAN_B}:6640`, dead_peer_ms: 1000 }, tls: files('a'), state_dir: join(dir, `${prefix}-state-a`), ...(opts.logLevel !== undefined ? { log_level: opts.logLevel } : {}) },
  });
  if (opts.viaRelay === true) await startRelay(s);
  const bPeer = opts.viaRelay === true ? `127.0.0.1:${RELAY_PORT}` : `${WAN_A}:6640`;
  await startLimed(s, 'b', [gre(WAN_A)], {
    config: { listen: `${WAN_B}:6640`, peer: { name: 'site-a', address: bPeer, dead_peer_ms: 1000 }, tls: files('b'), state_dir: join(dir, `${prefix}-state-b`), ...(opts.logLevel !== undefined ? { log_level: opts.logLevel } : {}) },
  });
  await waitPeered(s.limedA!);
  await waitPeered(s.limedB!);
  return s;
}


/** The flows of a site as comparable text (no counters, no durations). */
async function flowsOf(l: LimedProcess, site = ''): Promise<string[]> {
  const r = await l.ctl(['--timeout', '60000', 'dump-flows', '--json', ...(site !== '' ? ['--site', site] : [])], 90_000);
  if (r.code !== 0) throw new Error(`dump-flows: ${r.stderr}`);
  const flows = JSON.parse(r.stdout) as Array<{ table: number; priority: number; cookie: string; match: string; actions: string; idle_timeout: number; hard_timeout: number }>;
  return flows.map((f) => `table=${f.table},priority=${f.priority},cookie=${f.cookie},${f.match},idle=${f.idle_timeout},hard=${f.hard_timeout},actions=${f.actions}`).sort();
}

/** `limectl monitor --json` against a site, collecting its events until stopped. */
function monitor(l: LimedProcess): Monitor<{ event: string; reason: string; flow?: { match: string }; packet_in?: { in_port: string } }> {
  return monitorJson(l);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pingOk(s: Sites, from: 'a' | 'b', count = 1): boolean {
  const ns = from === 'a' ? s.hostA : s.hostB;
  const dst = from === 'a' ? HOST_B : HOST_A;
  return s.net.tryExec(ns, 'ping', ['-c', String(count), '-W', '1', '-i', '0.2', dst]);
}

describeWhen(ROOT && haveOpenssl(), 'root and openssl', 'peered sites', () => {
  beforeAll(() => {
    certs = makeTestCerts();
  });
  afterEach(async () => {
    await killRelay();
    await sites?.destroy();
    sites = undefined;
  });

  it('one logical table: a flow added at A is enforced at B for the next packet after limectl returns, and the reverse', async () => {
    const s = await peeredSites('limepa');
    expect(await peerStatus(s.limedA!)).toMatchObject({ role: 'writer', connected: true, tls_identity: expect.stringContaining('site-b') });
    expect(await peerStatus(s.limedB!)).toMatchObject({ role: 'follower', connected: true, tls_identity: expect.stringContaining('site-a') });
    expect(pingOk(s, 'b', 3)).toBe(true);
    // Added at A (the writer); it drops what B's host sends, at B's ingress.
    const add = await s.limedA!.ctl(['add-flow', 'priority=300,in_port=host,dl_type=0x0800,nw_src=10.61.0.2,actions=drop']);
    expect(add.code, add.stderr).toBe(0);
    expect(pingOk(s, 'b')).toBe(false);
    // Removed at B (the follower: forwarded to the writer), effective at once.
    const del = await s.limedB!.ctl(['del-flows', '--strict', 'priority=300,in_port=host,dl_type=0x0800,nw_src=10.61.0.2']);
    expect(del.code, del.stderr).toBe(0);
    expect(pingOk(s, 'b')).toBe(true);
    // One logical view: counters at A include traffic that crossed B only.
    const counted = await s.limedA!.ctl(['add-flow', 'priority=400,in_port=host,dl_type=0x0800,nw_src=10.61.0.2,actions=NORMAL']);
    expect(counted.code, counted.stderr).toBe(0);
    expect(pingOk(s, 'b', 5)).toBe(true);
    const packetsOf = async (l: LimedProcess, site: string): Promise<number> => {
      const r = await l.ctl(['dump-flows', '--json', ...(site === '' ? [] : ['--site', site]), 'priority=400,in_port=host,ip,nw_src=10.61.0.2', '--strict']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const flows = JSON.parse(r.stdout) as Array<{ n_packets: number }>;
      expect(flows).toHaveLength(1);
      return flows[0]!.n_packets;
    };
    expect(await packetsOf(s.limedA!, 'local')).toBe(0);
    const atB = await packetsOf(s.limedA!, 'peer');
    expect(atB).toBeGreaterThanOrEqual(5);
    expect(await packetsOf(s.limedB!, 'local')).toBe(atB);
    expect(await packetsOf(s.limedA!, '')).toBe(atB); // the logical table: both sites summed
    expect(await packetsOf(s.limedB!, 'both')).toBe(atB);
    // Changes made at both sites end in the same table at both.
    const adds = [];
    for (let i = 0; i < 20; i++) {
      const at = i % 2 === 0 ? s.limedA! : s.limedB!;
      adds.push(at.ctl(['add-flow', `priority=${1000 + i},dl_type=0x0800,nw_dst=10.99.${i}.0/24,actions=drop`]));
    }
    for (const r of await Promise.all(adds)) expect(r.code, r.stderr).toBe(0);
    const [fa, fb] = [await flowsOf(s.limedA!), await flowsOf(s.limedB!)];
    expect(fa).toEqual(fb);
    expect(fa.filter((f) => f.includes('10.99.'))).toHaveLength(20);
  });

  it('a site without a peer but with state_dir keeps its acknowledged flows across kill -9', async () => {
    const s = baseSites('limeps');
    sites = s;
    const limed = await startLimed(s, 'a', [], { config: { state_dir: join(dir, 'limeps-state') } });
    for (let i = 0; i < 30; i++) {
      const r = await limed.ctl(['add-flow', `priority=${500 + i},dl_type=0x0800,nw_dst=10.55.${i}.0/24,actions=drop`]);
      expect(r.code, r.stderr).toBe(0);
    }
    const del = await limed.ctl(['del-flows', '--strict', 'priority=500,dl_type=0x0800,nw_dst=10.55.0.0/24']);
    expect(del.code, del.stderr).toBe(0);
    const before = await flowsOf(limed);
    await limed.kill9();
    await limed.start();
    expect(await flowsOf(limed)).toEqual(before);
    expect(before.filter((f) => f.includes('10.55.'))).toHaveLength(29);
    expect(await peerStatus(limed)).toMatchObject({ role: 'writer', connected: false, seq: 31 });
  });

  it('kill -9 of either site during a stream of flow-mods loses no acknowledged flow-mod; the sites converge', async () => {
    const s = await peeredSites('limepk');
    for (const [victim, writerSide] of [['b', true], ['a', false]] as const) {
      const acked: string[] = [];
      const target = victim === 'b' ? s.limedB! : s.limedA!;
      const issuer = writerSide ? s.limedA! : s.limedB!;
      let stop = false;
      const stream = (async () => {
        for (let i = 0; !stop && i < 400; i++) {
          const flow = `priority=${2000 + i},dl_type=0x0800,nw_dst=10.${victim === 'b' ? 98 : 97}.${i % 250}.${Math.floor(i / 250)},actions=drop`;
          const r = await issuer.ctl(['add-flow', flow]);
          if (r.code === 0) acked.push(`priority=${2000 + i}`);
        }
      })();
      // Kill in the middle of the stream: once several flow-mods were acknowledged (each
      // limectl is a node start-up: slow on a loaded machine, so not after a fixed time).
      const until = Date.now() + 30_000;
      while (acked.length < 8 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      await target.kill9();
      stop = victim === 'a'; // the writer's stream stops with the writer (its limectl fails)
      await new Promise((r) => setTimeout(r, 500));
      await target.start();
      stop = true;
      await stream;
      await waitPeered(s.limedA!);
      const b = await barrierWhenPeered(s.limedB!);
      expect(b.code, b.stderr).toBe(0);
      const [fa, fb] = [await flowsOf(s.limedA!), await flowsOf(s.limedB!)];
      expect(fb).toEqual(fa);
      expect(acked.length).toBeGreaterThan(5);
      for (const p of acked) expect(fa.some((f) => f.includes(`${p},`)), `acknowledged ${p}`).toBe(true);
    }
  });

  it('the control link cut (relay killed) again and again in the middle of a 50,000-flow add-flows: both tables end identical, nothing acknowledged lost', async () => {
    const s = await peeredSites('limepr', { viaRelay: true });
    const file = join(dir, 'limepr-50k.flows');
    const big = Array.from({ length: 50_000 }, (_, i) => `priority=100,ip,nw_dst=11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255},actions=drop`);
    writeFileSync(file, big.join('\n') + '\n');
    const acked: string[] = [];
    let stop = false;
    const singles = (async () => {
      for (let i = 0; !stop; i++) {
        const r = await s.limedA!.ctl(['add-flow', `priority=${3000 + i},ip,nw_dst=12.0.${i >> 8}.${i & 255},actions=drop`]);
        if (r.code === 0) acked.push(`priority=${3000 + i},`);
      }
    })();
    const bulk = s.limedA!.ctl(['--timeout', '120000', 'add-flows', file], 150_000);
    for (let cut = 0; cut < 4; cut++) {
      await new Promise((r) => setTimeout(r, 250));
      await killRelay();
      await new Promise((r) => setTimeout(r, 150));
      await startRelay(s);
    }
    const r = await bulk;
    expect(r.code, r.stderr).toBe(0);
    stop = true;
    await singles;
    const barrier = await barrierWhenPeered(s.limedB!);
    expect(barrier.code, barrier.stderr).toBe(0);
    const [fa, fb] = [await flowsOf(s.limedA!), await flowsOf(s.limedB!)];
    expect(fa.length).toBeGreaterThan(50_000);
    expect(fb).toEqual(fa);
    for (const p of acked) expect(fa.some((f) => f.includes(p)), `acknowledged ${p}`).toBe(true);
    const st = await peerStatus(s.limedA!);
    expect(st.resumes + st.resyncs).toBeGreaterThanOrEqual(2); // the first connection, and at least one after a cut
    // At least one cut left entries unacknowledged, which the reconnection sent again.
    const resumes = s.limedA!.stdout.split('\n').filter((l) => l.includes('follower resumes')).map((l) => JSON.parse(l) as { from_seq: number; to_seq: number });
    expect(resumes.some((x) => x.to_seq > x.from_seq)).toBe(true);
  });

  it('a follower restarted empty resyncs 50,000 flows; the link cut during the resync, it finishes on reconnection', async () => {
    const s = await peeredSites('limepy', { viaRelay: true });
    const file = join(dir, 'limepy-50k.flows');
    writeFileSync(file, Array.from({ length: 50_000 }, (_, i) => `priority=200,ip,nw_src=13.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255},actions=drop`).join('\n') + '\n');
    await s.limedB!.stop();
    const r = await s.limedA!.ctl(['--timeout', '120000', 'add-flows', file], 150_000);
    expect(r.code, r.stderr).toBe(0);
    rmSync(join(dir, 'limepy-state-b'), { recursive: true, force: true });
    // The link fails 1 MiB into what A sends: inside the snapshot of 50,000 flows (several MiB).
    await killRelay();
    const failing = await startRelay(s, 1 << 20);
    const logged = s.limedB!.stdout.length;
    await s.limedB!.start();
    await failing.exited;
    await new Promise((r2) => setTimeout(r2, 300));
    expect(s.limedB!.stdout.slice(logged)).toContain('receiving a snapshot');
    expect(s.limedB!.stdout.slice(logged)).not.toContain('snapshot loaded');
    await startRelay(s);
    const barrier = await barrierWhenPeered(s.limedB!);
    expect(barrier.code, barrier.stderr).toBe(0);
    const [fa, fb] = [await flowsOf(s.limedA!), await flowsOf(s.limedB!)];
    expect(fa.filter((f) => f.includes('nw_src=13.'))).toHaveLength(50_000);
    expect(fb).toEqual(fa);
    // B's lookups use the table it swapped in, and see flow-mods made after it. (B's host
    // has no interface now: a restarted limed makes a new TAP that nothing moved into the
    // host namespace, so this asks limectl trace rather than ping.)
    const traceB = async (): Promise<{ actions: string[] }> => {
      const t = await s.limedB!.ctl(['trace', '--json', 'in_port=host,ip,nw_src=13.0.1.7,nw_dst=10.61.0.1']);
      expect(t.code, t.stderr).toBe(0);
      return JSON.parse(t.stdout) as { actions: string[] };
    };
    expect((await traceB()).actions).toEqual(['drop (action_drop)']); // one of the 50,000 cloned flows
    const steer = await s.limedA!.ctl(['add-flow', 'priority=60000,ip,nw_src=13.0.1.7,actions=output:wan']);
    expect(steer.code, steer.stderr).toBe(0);
    expect((await traceB()).actions).toEqual(['output:wan']);
    // B's first start, its restart empty, and the resync after the cut.
    expect((await peerStatus(s.limedA!)).resyncs).toBe(3);
    // The snapshot B received (packed) is in its journal: restarted, B has the table and its
    // place in the log, and resumes instead of resyncing.
    await s.limedB!.stop();
    await s.limedA!.ctl(['add-flow', 'priority=201,ip,nw_src=14.0.0.1,actions=drop']);
    await s.limedB!.start();
    await waitPeered(s.limedB!, 30_000);
    expect((await s.limedB!.ctl(['sync', 'barrier'])).code).toBe(0);
    expect(await flowsOf(s.limedB!, 'local')).toEqual(await flowsOf(s.limedA!, 'local'));
    expect((await peerStatus(s.limedA!)).resyncs).toBe(3);
  });

  it('timeouts and events of the logical table: hard expiry at both sites with one flow-removed per monitor, idle expiry only when idle at both, packet-ins seen at either site', async () => {
    const s = await peeredSites('limept');
    const [ma, mb] = [monitor(s.limedA!), monitor(s.limedB!)];
    await sleep(300);
    // Hard timeout: the same deadline at both sites; the writer's flow-removed reaches both monitors once.
    let r = await s.limedB!.ctl(['add-flow', 'priority=600,hard_timeout=2,send_flow_rem,ip,nw_dst=10.66.0.1,actions=drop']);
    expect(r.code, r.stderr).toBe(0);
    // Idle timeout: the flow matches only host B's traffic, at site B.
    r = await s.limedA!.ctl(['add-flow', 'priority=700,idle_timeout=2,send_flow_rem,in_port=host,ip,nw_src=10.61.0.2,actions=NORMAL']);
    expect(r.code, r.stderr).toBe(0);
    // Packet-ins: host B's pings to one address go to the controller, at site B.
    r = await s.limedA!.ctl(['add-flow', 'priority=800,in_port=host,icmp,nw_src=10.61.0.2,nw_dst=10.61.0.99,actions=CONTROLLER:128']);
    expect(r.code, r.stderr).toBe(0);
    s.net.exec(s.hostB, 'ip', ['neigh', 'replace', '10.61.0.99', 'lladdr', '02:00:00:00:00:99', 'dev', 'eth0']); // no ARP: the ping leaves
    s.net.tryExec(s.hostB, 'ping', ['-c', '1', '-W', '1', '10.61.0.99']);
    // Traffic at B only, for 4.5 s: the idle flow lives on at A though nothing crosses it there.
    const started = Date.now();
    while (Date.now() - started < 4500) {
      expect(pingOk(s, 'b')).toBe(true);
      await sleep(300);
    }
    const has = async (l: LimedProcess, what: string): Promise<boolean> => (await flowsOf(l, 'local')).some((f) => f.includes(what));
    expect(await has(s.limedA!, 'priority=700')).toBe(true);
    expect(await has(s.limedB!, 'priority=700')).toBe(true);
    expect(await has(s.limedA!, 'priority=600')).toBe(false);
    expect(await has(s.limedB!, 'priority=600')).toBe(false);
    // Traffic stops everywhere: the idle flow goes, at both sites (2 s idle, plus up to 1.5 s
    // for the follower's last usage report).
    await sleep(5000);
    expect(await has(s.limedA!, 'priority=700')).toBe(false);
    expect(await has(s.limedB!, 'priority=700')).toBe(false);
    await sleep(300);
    await Promise.all([ma.stop(), mb.stop()]);
    for (const m of [ma, mb]) {
      const removed = m.events.filter((e) => e.event === 'flow_removed');
      expect(removed.filter((e) => e.flow?.match.includes('nw_dst=10.66.0.1')).map((e) => e.reason)).toEqual(['hard_timeout']);
      expect(removed.filter((e) => e.flow?.match.includes('nw_src=10.61.0.2')).map((e) => e.reason)).toEqual(['idle_timeout']);
      expect(m.events.filter((e) => e.event === 'packet_in' && e.packet_in?.in_port === 'host')).toHaveLength(1);
    }
  });
});
