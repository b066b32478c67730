/**
 * Live migration between two limed sites (issue 6): four hosts, two starting at each site,
 * declared at both as logical ports with a tunnel id; the sites peered over mutual TLS and
 * joined for data by one GRE port with key "flow" (a host's tunnel id is the key).
 *
 *   h1 h2 ── taps ── [ a: limed A ] ── WAN (GRE, key = tunnel id) ── [ b: limed B ] ── taps ── h3 h4
 *
 * Each site also has a TAP for every host that is not there (yet): moving a host is what
 * a hypervisor does — the host's NIC leaves site A's TAP and comes back on site B's, with
 * the same MAC and IP — plus `limectl migrate host`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { LimedProcess } from '../../src/demo/limed-process.js';
import { monitorJson, type Monitor } from '../helpers/monitor.js';
import { Netns, run } from '../../src/demo/netns.js';
import { describeWhen, ROOT } from '../helpers/root.js';
import { waitPeered } from '../helpers/peer-status.js';
import { haveOpenssl, makeTestCerts, writeSiteTls, type TestCerts } from '../helpers/certs.js';
import { startTshark } from '../helpers/proc.js';

const WAN_A = '192.168.251.1';
const WAN_B = '192.168.251.2';
const HOSTS = [1, 2, 3, 4] as const;
const ipOf = (h: number): string => `10.62.0.${h}`;
const macOf = (h: number): string => `02:00:00:62:00:0${h}`;
const homeOf = (h: number): 'a' | 'b' => (h <= 2 ? 'a' : 'b');

const UDP_SEQ = fileURLToPath(new URL('../helpers/udp-seq.mjs', import.meta.url));
const TCP_PATTERN = fileURLToPath(new URL('../helpers/tcp-pattern.mjs', import.meta.url));
const UDP_MESH = fileURLToPath(new URL('../helpers/udp-mesh.mjs', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'lime-migration-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Rig {
  net: Netns;
  site: { a: string; b: string };
  host: Record<number, string>;
  limed: { a: LimedProcess; b: LimedProcess };
  /** Where each host's NIC is now. */
  at: Record<number, 'a' | 'b'>;
  tap(h: number, side: 'a' | 'b'): string;
  destroy(): Promise<void>;
}

let certs: TestCerts;
let rig: Rig | undefined;
const children: ChildProcess[] = [];

function tlsFiles(prefix: string, side: 'a' | 'b'): { ca: string; cert: string; key: string } {
  return writeSiteTls(certs, side, join(dir, `${prefix}-${side}`));
}

/** Put the host's NIC (site `side`'s TAP for it) into its namespace as eth0, addressed. */
function attach(r: Rig, h: number, side: 'a' | 'b'): void {
  const ns = r.host[h]!;
  const siteNs = r.site[side];
  run('ip', ['-n', siteNs, 'link', 'set', 'dev', r.tap(h, side), 'netns', ns]);
  r.net.exec(ns, 'ip', ['link', 'set', r.tap(h, side), 'name', 'eth0']);
  r.net.exec(ns, 'ip', ['addr', 'add', `${ipOf(h)}/24`, 'dev', 'eth0']);
  r.net.exec(ns, 'ip', ['link', 'set', 'eth0', 'up']);
  r.net.tryExec(ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  // Static neighbours: no ARP broadcasts (floods reach every host, at both sites), so
  // what crosses the link is unicast to a host at the other site and nothing else.
  for (const o of HOSTS) if (o !== h) r.net.exec(ns, 'ip', ['neigh', 'replace', ipOf(o), 'lladdr', macOf(o), 'dev', 'eth0', 'nud', 'permanent']);
  r.at[h] = side;
}

/** Take the host's NIC back out of its namespace (the VM stops at the old site). */
function detach(r: Rig, h: number): void {
  const side = r.at[h]!;
  const ns = r.host[h]!;
  r.net.exec(ns, 'ip', ['link', 'set', 'eth0', 'down']);
  r.net.exec(ns, 'ip', ['link', 'set', 'eth0', 'name', r.tap(h, side)]);
  run('ip', ['-n', ns, 'link', 'set', 'dev', r.tap(h, side), 'netns', r.site[side]]);
}

async function buildRig(prefix: string, home: (h: number) => 'a' | 'b' = homeOf, opts: { uplinkB?: boolean } = {}): Promise<Rig> {
  Netns.cleanupStale(prefix);
  const net = new Netns(prefix);
  const site = { a: net.add('a'), b: net.add('b') };
  const host: Record<number, string> = {};
  for (const h of HOSTS) host[h] = net.add(`h${h}`);
  for (const ns of [...Object.values(site), ...Object.values(host)]) net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
  const wanA = `${prefix}wa`;
  const wanB = `${prefix}wb`;
  run('ip', ['link', 'add', wanA, 'netns', site.a, 'type', 'veth', 'peer', 'name', wanB, 'netns', site.b]);
  for (const [ns, dev, ip] of [[site.a, wanA, WAN_A], [site.b, wanB, WAN_B]] as const) {
    net.exec(ns, 'ip', ['addr', 'add', `${ip}/24`, 'dev', dev]);
    net.exec(ns, 'ip', ['link', 'set', dev, 'up']);
    net.tryExec(ns, 'ethtool', ['-K', dev, 'tx', 'off']);
  }
  const tap = (h: number, side: 'a' | 'b'): string => `${prefix}${h}${side}`;
  const limedOf = (side: 'a' | 'b'): LimedProcess => {
    const me = side === 'a' ? 'site-a' : 'site-b';
    const other = side === 'a' ? 'site-b' : 'site-a';
    return new LimedProcess({
      site: me,
      netns: site[side],
      ports: [
        ...HOSTS.map((h) => ({ name: `h${h}`, device: tap(h, side), mac: macOf(h), tunnel_id: 100 + h, site: home(h) === 'a' ? 'site-a' : 'site-b' })),
        { name: 'wan', type: 'gre' as const, remote_ip: side === 'a' ? WAN_B : WAN_A, key: 'flow' },
        // An L2 switch's port behind site B (not a host): where B announces hosts that arrive.
        ...(opts.uplinkB === true && side === 'b' ? [{ name: 'uplink', device: `${prefix}up` }] : []),
      ],
      config: {
        listen: `${side === 'a' ? WAN_A : WAN_B}:6640`,
        peer: { name: other, address: `${side === 'a' ? WAN_B : WAN_A}:6640`, dead_peer_ms: 1000, tunnel_port: 'wan' },
        tls: tlsFiles(prefix, side),
        state_dir: join(dir, `${prefix}-state-${side}`),
      },
    });
  };
  const limed = { a: limedOf('a'), b: limedOf('b') };
  const r: Rig = {
    net,
    site,
    host,
    limed,
    at: {},
    tap,
    async destroy() {
      const codes = await Promise.all([limed.a.stop(), limed.b.stop()]);
      net.destroy();
      limed.a.cleanup();
      limed.b.cleanup();
      for (const c of codes) if (c !== null && c !== 0) throw new Error(`limed exited with ${c}`);
    },
  };
  rig = r;
  await limed.a.start();
  await limed.b.start();
  await waitPeered(limed.a);
  await waitPeered(limed.b);
  for (const h of HOSTS) attach(r, h, home(h));
  return r;
}

function ping(r: Rig, from: number, to: number, count = 2): boolean {
  return r.net.tryExec(r.host[from]!, 'ping', ['-c', String(count), '-W', '1', '-i', '0.2', ipOf(to)]);
}

function allPairsPing(r: Rig): string[] {
  const failed: string[] = [];
  for (const a of HOSTS) for (const b of HOSTS) if (a !== b && !ping(r, a, b, 1) && !ping(r, a, b, 3)) failed.push(`h${a}→h${b}`);
  return failed;
}

/** A child process in a namespace whose stdout is collected. */
function startIn(ns: string, args: string[], ready?: string): { child: ChildProcess; out: Promise<string>; ready: Promise<void> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const readyP = new Promise<void>((resolve) => {
    if (ready === undefined) return resolve();
    child.stderr!.setEncoding('utf8').on('data', (d: string) => d.includes(ready) && resolve());
  });
  return { child, out: new Promise((resolve) => child.once('exit', () => resolve(out))), ready: readyP };
}

/** The longest run of missing sequence numbers below `sent` (datagrams lost in a row). */
function longestGap(seqs: number[], sent: number): number {
  const got = new Uint8Array(sent);
  for (const s of seqs) if (s < sent) got[s] = 1;
  let best = 0;
  let run0 = 0;
  for (let i = 0; i < sent; i++) {
    run0 = got[i] === 1 ? 0 : run0 + 1;
    best = Math.max(best, run0);
  }
  return best;
}

interface Status {
  hosts: Array<{ name: string; site: string; tunnel_id: number; mac: string }>;
  inter_site_tx_bytes: number;
  peer_connected: boolean;
  migration: { phase: string; from: string; to: string; ended: string };
}

async function status(l: LimedProcess): Promise<Status> {
  const res = await l.ctl(['migrate', 'status', '--json']);
  if (res.code !== 0) throw new Error(`migrate status: ${res.stderr}`);
  return JSON.parse(res.stdout);
}

const siteOfHost = async (l: LimedProcess, h: number): Promise<string> => (await status(l)).hosts.find((x) => x.name === `h${h}`)!.site;


/** `limectl monitor --events --json` at a site: the mobility events it prints, until stopped. */
function watchMoves(l: LimedProcess): Monitor<{ event: string; host_moved: { host: string; mac: string; from: string; to: string; cause: string } }> {
  return monitorJson(l, ['--events']);
}

async function ctlOk(l: LimedProcess, args: string[]): Promise<string> {
  const res = await l.ctl(args, 30_000);
  if (res.code !== 0) throw new Error(`limectl ${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
}

/** Move host h's NIC to the other site and tell limed (at `via`). */
async function moveHost(r: Rig, h: number, to: 'a' | 'b', via: LimedProcess): Promise<void> {
  detach(r, h);
  await ctlOk(via, ['migrate', 'host', `h${h}`, '--to', to === 'a' ? 'site-a' : 'site-b']);
  attach(r, h, to);
}

describeWhen(ROOT && haveOpenssl(), 'root and openssl', 'live migration of hosts between two sites', () => {
  beforeAll(() => {
    certs = makeTestCerts();
  });

  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await rig?.destroy();
    rig = undefined;
  });

  it('hosts at both sites reach each other through the tunnel; moving one keeps its UDP flows and its TCP connection', async () => {
    const r = await buildRig('limemg');
    expect(allPairsPing(r)).toEqual([]);
    const before = await status(r.limed.a);
    expect(before.hosts.map((h) => `${h.name}@${h.site}#${h.tunnel_id}`)).toEqual(['h1@site-a#101', 'h2@site-a#102', 'h3@site-b#103', 'h4@site-b#104']);
    expect(before.inter_site_tx_bytes).toBeGreaterThan(0); // h1, h2 → h3, h4 crossed

    // Traffic to h1 across the move: UDP at 1,000/s from h2 (stays at A) and from h3 (at B),
    // and a paced TCP stream from h4 (at B).
    const SECONDS = 4;
    const rx = [startIn(r.host[1]!, [UDP_SEQ, 'recv', '9001', String(SECONDS + 2)], 'READY'), startIn(r.host[1]!, [UDP_SEQ, 'recv', '9002', String(SECONDS + 2)], 'READY')];
    const tcpRx = startIn(r.host[1]!, [TCP_PATTERN, 'recv', '9100'], 'READY');
    await Promise.all([...rx.map((x) => x.ready), tcpRx.ready]);
    const tx = [startIn(r.host[2]!, [UDP_SEQ, 'send', ipOf(1), '9001', String(SECONDS * 1000), '1']), startIn(r.host[3]!, [UDP_SEQ, 'send', ipOf(1), '9002', String(SECONDS * 1000), '1'])];
    const tcpTx = startIn(r.host[4]!, [TCP_PATTERN, 'send', ipOf(1), '9100', String(3 * 1024 * 1024), '1024']);
    await new Promise((res) => setTimeout(res, 1200));

    // The move: h1's NIC leaves site A, the operator moves it, the NIC comes back at site B.
    const t0 = performance.now();
    detach(r, 1);
    const moved = await r.limed.a.ctl(['migrate', 'host', 'h1', '--to', 'site-b', '--json']);
    attach(r, 1, 'b');
    const detachedMs = performance.now() - t0;
    expect(moved.code, moved.stderr).toBe(0);
    expect(JSON.parse(moved.stdout).moved).toMatchObject({ host: 'h1', from: 'site-a', to: 'site-b' });

    const [sentA, sentB] = (await Promise.all(tx.map((x) => x.out))).map((o) => JSON.parse(o).sent as number);
    const [gotA, gotB] = (await Promise.all(rx.map((x) => x.out))).map((o) => JSON.parse(o) as number[]);
    const sentTcp = JSON.parse(await tcpTx.out);
    const gotTcp = JSON.parse(await tcpRx.out);
    expect(gotTcp).toEqual({ bytes: 3 * 1024 * 1024, sha256: sentTcp.sha256 });
    // Lost in a row, at 1 ms per datagram: no more than the host was away, plus 5 ms.
    const gapA = longestGap(gotA!, sentA!);
    const gapB = longestGap(gotB!, sentB!);
    expect(gapA, `h2→h1 lost ${gapA} in a row; h1 was detached for ${detachedMs.toFixed(0)} ms`).toBeLessThanOrEqual(Math.ceil(detachedMs) + 5);
    expect(gapB, `h3→h1 lost ${gapB} in a row; h1 was detached for ${detachedMs.toFixed(0)} ms`).toBeLessThanOrEqual(Math.ceil(detachedMs) + 5);
    // After the move nothing more is lost: the tail of each stream arrived complete.
    expect(gotA!.filter((s) => s >= sentA! - 500).length).toBe(500);
    expect(gotB!.filter((s) => s >= sentB! - 500).length).toBe(500);

    expect(await siteOfHost(r.limed.a, 1)).toBe('site-b');
    expect(await siteOfHost(r.limed.b, 1)).toBe('site-b');
    expect(allPairsPing(r)).toEqual([]);
  }, 60_000);

  it('a whole network moves host by host under probes between every pair and a TCP stream: short gaps, bytes intact, each frame crosses once and only to its host\'s site, nothing after finalize', async () => {
    const r = await buildRig('limemm', () => 'a');
    expect(allPairsPing(r)).toEqual([]);
    const ROUNDS = 12_000; // 1,000 probes per second to each other host, 12 s
    const startAt = String(Date.now() + 3000); // all bound by then
    const mesh = HOSTS.map((h) => startIn(r.host[h]!, [UDP_MESH, String(h), '9200', String(ROUNDS), '1', startAt, ...HOSTS.filter((o) => o !== h).map((o) => `${o}@${ipOf(o)}`)], 'READY'));
    await Promise.all(mesh.map((m) => m.ready));
    const tcpRx = startIn(r.host[4]!, [TCP_PATTERN, 'recv', '9300'], 'READY');
    await tcpRx.ready;
    const tcpTx = startIn(r.host[1]!, [TCP_PATTERN, 'send', ipOf(4), '9300', String(4 * 1024 * 1024), '512']);
    await ctlOk(r.limed.a, ['migrate', 'prepare', '--to', 'site-b']);
    await new Promise((res) => setTimeout(res, Math.max(0, Number(startAt) - Date.now())));
    const detachedMs: Record<number, number> = {};
    let wire: string[][] = [];
    for (const h of HOSTS) {
      await new Promise((res) => setTimeout(res, 700));
      const t0 = performance.now();
      await moveHost(r, h, 'b', h % 2 === 0 ? r.limed.a : r.limed.b);
      detachedMs[h] = performance.now() - t0;
      if (h === 2) {
        // h1, h2 at B; h3, h4 at A: look at what crosses, with tshark's dissectors.
        const cap = await startTshark(r.site.a, 'limemmwa', 'ip proto 47', ['ip.src', 'ip.dst', 'gre.key', 'udp.dstport', 'data.data'], 1.5);
        wire = await cap.done;
      }
    }
    await new Promise((res) => setTimeout(res, 500));
    await ctlOk(r.limed.b, ['migrate', 'finalize']);
    const crossed = async (): Promise<number> => (await status(r.limed.a)).inter_site_tx_bytes + (await status(r.limed.b)).inter_site_tx_bytes;
    const c0 = await crossed();
    await new Promise((res) => setTimeout(res, 700)); // probes go on, all at B
    expect(await crossed()).toBe(c0);

    // Between the moves: every GRE packet carries a frame for a host at the receiving site,
    // with that host's tunnel id, and no frame crossed twice.
    const at = { a: new Set([ipOf(3), ipOf(4)]), b: new Set([ipOf(1), ipOf(2)]) };
    const probes = wire.filter((f) => f[3]!.split(',').includes('9200'));
    expect(probes.length).toBeGreaterThan(1000);
    const seen = new Set<string>();
    for (const [src, dst, key, , data] of wire) {
      const [outerSrc, innerSrc] = src!.split(',');
      const innerDst = dst!.split(',')[1]!;
      const toSite = outerSrc === WAN_A ? 'b' : 'a';
      expect(at[toSite].has(innerDst), `${innerSrc} → ${innerDst} crossed to site ${toSite}`).toBe(true);
      expect(Number(key)).toBe(100 + Number(innerDst.split('.')[3]));
      if (data !== undefined && data !== '') {
        const id = `${innerSrc}>${innerDst}:${data}`;
        expect(seen.has(id), `crossed twice: ${id}`).toBe(false);
        seen.add(id);
      }
    }

    // Probes: the longest run lost between two hosts is no longer than the longer of their
    // detach times, plus 5 ms (1 probe per ms).
    const results = (await Promise.all(mesh.map((m) => m.out))).map((o) => JSON.parse(o) as { sent: number; received: Record<string, number[]> });
    for (const h of HOSTS) {
      for (const from of HOSTS) {
        if (from === h) continue;
        const gap = longestGap(results[h - 1]!.received[from]!, ROUNDS - 200);
        const bound = Math.ceil(Math.max(detachedMs[h]!, detachedMs[from]!)) + 5;
        expect(gap, `h${from} → h${h}: ${gap} probes lost in a row (bound ${bound})`).toBeLessThanOrEqual(bound);
      }
    }
    const sentTcp = JSON.parse(await tcpTx.out);
    expect(JSON.parse(await tcpRx.out)).toEqual({ bytes: 4 * 1024 * 1024, sha256: sentTcp.sha256 });
  }, 120_000);

  it('frames between hosts at the same site never cross the link; a moved host is reached through it', async () => {
    const r = await buildRig('limemh');
    expect(allPairsPing(r)).toEqual([]);
    const crossed = async (): Promise<number> => (await status(r.limed.a)).inter_site_tx_bytes + (await status(r.limed.b)).inter_site_tx_bytes;
    const c0 = await crossed();
    // h1 ↔ h2 (both at A), h3 ↔ h4 (both at B): the link carries nothing.
    for (let i = 0; i < 3; i++) expect(ping(r, 1, 2, 5) && ping(r, 3, 4, 5)).toBe(true);
    expect(await crossed()).toBe(c0);
    // A host's port is up only at the site where the host is.
    const states = async (l: LimedProcess): Promise<string[]> => (await l.showJson()).ports.filter((p: { name: string }) => p.name.startsWith('h')).map((p: { name: string; state: string; options: { host_site: string } }) => `${p.name}:${p.state}@${p.options.host_site}`);
    expect(await states(r.limed.a)).toEqual(['h1:up@site-a', 'h2:up@site-a', 'h3:remote@site-b', 'h4:remote@site-b']);
    expect(await states(r.limed.b)).toEqual(['h1:remote@site-a', 'h2:remote@site-a', 'h3:up@site-b', 'h4:up@site-b']);
    // Move h2 to B: now h1 ↔ h2 crosses, h2 ↔ h3 does not.
    detach(r, 2);
    const moved = await r.limed.b.ctl(['migrate', 'host', 'h2', '--to', 'site-b']);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toContain('host h2 moved from site site-a to site site-b');
    attach(r, 2, 'b');
    expect((await states(r.limed.a))[1]).toBe('h2:remote@site-b');
    expect((await states(r.limed.b))[1]).toBe('h2:up@site-b');
    expect(ping(r, 2, 3, 3)).toBe(true);
    const c1 = await crossed();
    expect(ping(r, 2, 3, 5) && ping(r, 4, 2, 5)).toBe(true);
    expect(await crossed()).toBe(c1);
    expect(ping(r, 1, 2, 5)).toBe(true);
    expect(await crossed()).toBeGreaterThan(c1);
    // The move is in the journal: a restarted site knows where h2 is.
    await r.limed.a.stop();
    await r.limed.a.start();
    expect((await status(r.limed.a)).hosts.map((h) => `${h.name}@${h.site}`)).toEqual(['h1@site-a', 'h2@site-b', 'h3@site-b', 'h4@site-b']);
  }, 60_000);

  it('detects a host that re-appears at the other site: its traffic goes there through the tunnel', async () => {
    const r = await buildRig('limemd');
    expect(allPairsPing(r)).toEqual([]);
    // The hypervisor moves h4 from B to A; nobody runs limectl.
    detach(r, 4);
    attach(r, 4, 'a');
    // h4's first frames at A (its announcement, here a ping to its neighbour) move it.
    expect(ping(r, 4, 1, 1)).toBe(true);
    const deadline = Date.now() + 5000;
    while ((await siteOfHost(r.limed.b, 4)) !== 'site-a' && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(await siteOfHost(r.limed.b, 4)).toBe('site-a');
    expect(await siteOfHost(r.limed.a, 4)).toBe('site-a');
    // h3 (at B) reaches h4 through the tunnel from the first ping on.
    expect(ping(r, 3, 4, 1)).toBe(true);
    expect(allPairsPing(r)).toEqual([]);
  }, 60_000);

  it('an ensemble migration: prepare, every host moved one by one with events at both sites, finalize; then the link carries nothing', async () => {
    const r = await buildRig('limeme');
    expect(allPairsPing(r)).toEqual([]);
    await ctlOk(r.limed.a, ['add-flow', 'priority=5,udp,tp_dst=9999,actions=drop']); // a table to clone
    const watch = [watchMoves(r.limed.a), watchMoves(r.limed.b)];
    const prep = JSON.parse(await ctlOk(r.limed.b, ['migrate', 'prepare', '--to', 'site-b', '--json']));
    expect(prep.migration).toMatchObject({ phase: 'moving', from: 'site-a', to: 'site-b', strategy: 'lime' });
    expect(prep.flows).toBe(2); // the table-miss rule and ours, in step at both sites
    expect((await status(r.limed.a)).migration).toMatchObject({ phase: 'moving', from: 'site-a', to: 'site-b' });
    const again = await r.limed.a.ctl(['migrate', 'prepare', '--to', 'site-a']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already under way/);
    const early = await r.limed.a.ctl(['migrate', 'finalize']);
    expect(early.code).not.toBe(0);
    expect(early.stderr).toMatch(/hosts h1, h2 still at site site-a/);

    await moveHost(r, 1, 'b', r.limed.a);
    expect(allPairsPing(r)).toEqual([]);
    await moveHost(r, 2, 'b', r.limed.b);
    expect(allPairsPing(r)).toEqual([]);
    // Counters before finalize: the logical table sums both sites.
    type Flow = { priority: number; match: string; n_packets: number; n_bytes: number };
    const dump = async (l: LimedProcess, site: string): Promise<Flow[]> => JSON.parse(await ctlOk(l, ['dump-flows', '--json', '--site', site])) as Flow[];
    const packetsOf = (flows: Flow[]): number => flows.reduce((acc, f) => acc + f.n_packets, 0);
    const [atA, atB] = [await dump(r.limed.a, 'local'), await dump(r.limed.b, 'local')];
    expect(packetsOf(atA)).toBeGreaterThan(0); // h1, h2 were at A for a while
    const fin = JSON.parse(await ctlOk(r.limed.a, ['migrate', 'finalize', '--json']));
    expect(fin.migration).toMatchObject({ phase: 'idle', ended: 'finalized' });
    expect(fin.archived_flows).toBeGreaterThan(0);
    // The old site's counters moved to the new one: A holds none, B holds both sites' (and more since).
    expect(packetsOf(await dump(r.limed.a, 'local'))).toBe(0);
    expect(packetsOf(await dump(r.limed.b, 'local'))).toBeGreaterThanOrEqual(packetsOf(atA) + packetsOf(atB));
    expect((await status(r.limed.b)).migration).toMatchObject({ phase: 'idle', ended: 'finalized' });

    // Every host is at B: nothing crosses any more.
    const crossed = async (): Promise<number> => (await status(r.limed.a)).inter_site_tx_bytes + (await status(r.limed.b)).inter_site_tx_bytes;
    const c0 = await crossed();
    expect(allPairsPing(r)).toEqual([]);
    expect(await crossed()).toBe(c0);

    await new Promise((res) => setTimeout(res, 300));
    await Promise.all(watch.map((w) => w.stop()));
    for (const w of watch) {
      expect(w.events.map((e) => `${e.event} ${e.host_moved.host} ${e.host_moved.mac} ${e.host_moved.from}→${e.host_moved.to} ${e.host_moved.cause}`)).toEqual([
        `host_moved h1 ${macOf(1)} site-a→site-b command`,
        `host_moved h2 ${macOf(2)} site-a→site-b command`,
      ]);
    }
  }, 90_000);

  it('abort returns every host to where it was, and the table is unchanged', async () => {
    const r = await buildRig('limema');
    await ctlOk(r.limed.a, ['add-flow', 'priority=5,udp,tp_dst=9999,actions=drop']);
    const flows = async (l: LimedProcess): Promise<string> => (await ctlOk(l, ['dump-flows', '--site', 'local'])).replace(/duration=[^,]*, |n_packets=\d+, n_bytes=\d+, /g, '');
    const before = [await flows(r.limed.a), await flows(r.limed.b)];
    await ctlOk(r.limed.a, ['migrate', 'prepare', '--to', 'site-b']);
    await moveHost(r, 1, 'b', r.limed.a);
    await moveHost(r, 3, 'a', r.limed.b); // (against the grain: abort puts it back too)
    expect(allPairsPing(r)).toEqual([]);
    // The logical table's counters (both sites summed) before the abort.
    const counted = async (): Promise<Map<string, number>> => {
      const dumped = JSON.parse(await ctlOk(r.limed.a, ['dump-flows', '--json'])) as Array<{ priority: number; match: string; n_packets: number }>;
      return new Map(dumped.map((f) => [`${f.priority},${f.match}`, f.n_packets]));
    };
    const countedBefore = await counted();
    expect([...countedBefore.values()].some((n) => n > 0)).toBe(true);
    // The hypervisors bring h1 and h3 back as abort returns them.
    detach(r, 1);
    detach(r, 3);
    const ab = JSON.parse(await ctlOk(r.limed.b, ['migrate', 'abort', '--json']));
    attach(r, 1, 'a');
    attach(r, 3, 'b');
    expect(ab.migration).toMatchObject({ phase: 'idle', ended: 'aborted' });
    for (const l of [r.limed.a, r.limed.b]) expect((await status(l)).hosts.map((h) => `${h.name}@${h.site}`)).toEqual(['h1@site-a', 'h2@site-a', 'h3@site-b', 'h4@site-b']);
    expect([await flows(r.limed.a), await flows(r.limed.b)]).toEqual(before);
    // Counters preserved: no flow counts less than before the abort.
    const countedAfter = await counted();
    for (const [flow, n] of countedBefore) expect(countedAfter.get(flow), flow).toBeGreaterThanOrEqual(n);
    expect(allPairsPing(r)).toEqual([]);
    const none = await r.limed.a.ctl(['migrate', 'abort']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/no migration is under way/);
  }, 90_000);

  it('losing the old site mid-migration: hosts already at the new site keep talking; the old site comes back and resumes', async () => {
    const r = await buildRig('limemk');
    await ctlOk(r.limed.a, ['migrate', 'prepare', '--to', 'site-b']);
    await moveHost(r, 1, 'b', r.limed.a);
    expect(ping(r, 1, 3, 2)).toBe(true);
    await r.limed.a.kill9();
    // h1, h3, h4 are all at B: they do not need A.
    for (const [x, y] of [[1, 3], [3, 4], [4, 1]] as const) expect(ping(r, x, y, 3), `h${x}→h${y}`).toBe(true);
    // A restarts from its journal (its TAPs are new: h2's NIC comes back on the new one).
    await r.limed.a.start();
    await waitPeered(r.limed.a);
    await waitPeered(r.limed.b);
    attach(r, 2, 'a');
    expect((await status(r.limed.a)).hosts.map((h) => `${h.name}@${h.site}`)).toEqual(['h1@site-b', 'h2@site-a', 'h3@site-b', 'h4@site-b']);
    expect((await status(r.limed.a)).migration).toMatchObject({ phase: 'moving', to: 'site-b' });
    expect(allPairsPing(r)).toEqual([]);
    await moveHost(r, 2, 'b', r.limed.b);
    await ctlOk(r.limed.b, ['migrate', 'finalize']);
    expect(allPairsPing(r)).toEqual([]);
  }, 90_000);

  it('migrate plan measures who talks to whom and moves talking pairs together; migrate run executes the plan', async () => {
    const r = await buildRig('limemp', () => 'a'); // every host at A
    expect(allPairsPing(r)).toEqual([]);
    // h1 ↔ h3 and h2 ↔ h4 talk (UDP both ways) while the plan measures.
    const rx = [[3, 9003], [1, 9001], [4, 9004], [2, 9002]].map(([h, port]) => startIn(r.host[h!]!, [UDP_SEQ, 'recv', String(port), '6'], 'READY'));
    await Promise.all(rx.map((x) => x.ready));
    const senders = ([[1, 3], [3, 1], [2, 4], [4, 2]] as const).map(([from, to]) => startIn(r.host[from]!, [UDP_SEQ, 'send', ipOf(to), String(9000 + to), '4000', '1']));
    const file = join(dir, 'limemp-plan.json');
    const planned = JSON.parse(await ctlOk(r.limed.a, ['migrate', 'plan', '--window', '2', '--parallel', '2', '-o', file, '--json']));
    const pairs = new Set(planned.traffic.map((t: { from: string; to: string }) => `${t.from}>${t.to}`));
    for (const p of ['h1>h3', 'h3>h1', 'h2>h4', 'h4>h2']) expect(pairs.has(p), p).toBe(true);
    expect(pairs.has('h1>h2')).toBe(false);
    const steps = planned.steps.map((st: { hosts: string[] }) => [...st.hosts].sort().join('+')).sort();
    expect(steps).toEqual(['h1+h3', 'h2+h4']);
    expect(planned.predicted_bytes).toBe(0); // each talking pair moves at once: nothing needs to cross
    expect(planned.random_order_bytes).toBeGreaterThanOrEqual(planned.predicted_bytes);

    // A plan that names an unknown host is refused whole, before anything moves.
    const bad = join(dir, 'limemp-bad.json');
    writeFileSync(bad, JSON.stringify({ version: 1, parallel: 1, steps: [['h1'], ['h9']] }));
    const refused = await r.limed.a.ctl(['migrate', 'run', '--plan', bad, '--to', 'site-b']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/step 2: no host named h9/);
    expect((await status(r.limed.a)).migration.phase).toBe('idle');
    expect((await status(r.limed.a)).hosts.every((h) => h.site === 'site-a')).toBe(true);

    // The traffic ends first: the hosts' NICs stay at A, and a host heard at A after its
    // move would be detected there and moved back.
    await Promise.all(senders.map((x) => x.out));
    await ctlOk(r.limed.a, ['migrate', 'run', '--plan', file, '--to', 'site-b']);
    for (const l of [r.limed.a, r.limed.b]) {
      const st = await status(l);
      expect(st.hosts.every((h) => h.site === 'site-b')).toBe(true);
      expect(st.migration).toMatchObject({ phase: 'moving', from: 'site-a', to: 'site-b' });
    }
  }, 90_000);

  it('stop-and-copy, against LIME on the same moves: more bytes over the link (the old table switches everything), and frames lost while it cuts over', async () => {
    /** All four hosts start at A and move to B one by one under UDP both ways between h1↔h2 and h3↔h4. */
    const scenario = async (prefix: string, strategy: string): Promise<{ crossed: number; frozen: number; lost: number }> => {
      const r = await buildRig(prefix, () => 'a');
      expect(allPairsPing(r)).toEqual([]);
      // A table of some size: the state stop-and-copy copies while it holds both sites frozen.
      const file = join(dir, `${prefix}-flows`);
      writeFileSync(file, Array.from({ length: 20_000 }, (_, i) => `priority=50,udp,nw_dst=10.99.${i >> 8}.${i & 255},actions=drop`).join('\n') + '\n');
      await ctlOk(r.limed.a, ['--timeout', '60000', 'add-flows', file]);
      const pairs = [[1, 2], [2, 1], [3, 4], [4, 3]] as const;
      const rx = pairs.map(([, to]) => startIn(r.host[to]!, [UDP_SEQ, 'recv', String(9100 + to), '12'], 'READY'));
      await Promise.all(rx.map((x) => x.ready));
      const tx = pairs.map(([from, to]) => startIn(r.host[from]!, [UDP_SEQ, 'send', ipOf(to), String(9100 + to), '10000', '1']));
      const crossed = async (): Promise<number> => (await status(r.limed.a)).inter_site_tx_bytes + (await status(r.limed.b)).inter_site_tx_bytes;
      const c0 = await crossed();
      await ctlOk(r.limed.a, ['migrate', 'prepare', '--to', 'site-b', '--strategy', strategy]);
      for (const h of HOSTS) {
        await moveHost(r, h, 'b', r.limed.a);
        await new Promise((res) => setTimeout(res, 700));
      }
      await ctlOk(r.limed.b, ['migrate', 'finalize']);
      const c1 = await crossed();
      const sent = (await Promise.all(tx.map((x) => x.out))).map((o) => JSON.parse(o).sent as number);
      const got = (await Promise.all(rx.map((x) => x.out))).map((o) => JSON.parse(o) as number[]);
      let frozen = 0;
      for (const l of [r.limed.a, r.limed.b]) for (const port of (await l.showJson()).ports) frozen += port.drops.migration_frozen ?? 0;
      expect(allPairsPing(r)).toEqual([]);
      const lost = sent.reduce((acc, n, i) => acc + n - new Set(got[i]!.filter((q) => q < n)).size, 0);
      await r.destroy();
      rig = undefined;
      return { crossed: c1 - c0, frozen, lost };
    };
    const lime = await scenario('limesl', 'lime');
    const snc = await scenario('limess', 'stop-and-copy');
    console.log(`LIME: ${lime.crossed} bytes crossed, ${lime.lost} probes lost, ${lime.frozen} frozen; stop-and-copy: ${snc.crossed} bytes, ${snc.lost} lost, ${snc.frozen} frozen`);
    expect(snc.crossed).toBeGreaterThan(lime.crossed);
    expect(lime.frozen).toBe(0);
    expect(snc.frozen).toBeGreaterThan(0);
  }, 120_000);

  it('announces a host moved here by command (RARP from its MAC) on the site\'s other ports', async () => {
    const r = await buildRig('limemr', homeOf, { uplinkB: true });
    const sw = r.net.add('sw');
    run('ip', ['-n', r.site.b, 'link', 'set', 'dev', 'limemrup', 'netns', sw]);
    r.net.exec(sw, 'ip', ['link', 'set', 'limemrup', 'up']);
    const cap = await startTshark(sw, 'limemrup', 'ether proto 0x8035', ['eth.src', 'eth.dst', 'arp.opcode', 'arp.src.hw_mac', 'arp.dst.hw_mac'], 4);
    await new Promise((res) => setTimeout(res, 300));
    await moveHost(r, 1, 'b', r.limed.a);
    const frames = await cap.done;
    expect(frames).toEqual([[macOf(1), 'ff:ff:ff:ff:ff:ff', '3', macOf(1), macOf(1)]]);
  }, 60_000);

  it('refuses bad moves with a clear error and changes nothing', async () => {
    const r = await buildRig('limemx');
    const cases: Array<[string[], RegExp]> = [
      [['migrate', 'host', 'nosuch', '--to', 'site-b'], /no host named nosuch/],
      [['migrate', 'host', 'h1', '--to', 'site-z'], /no site named site-z/],
      [['migrate', 'host', 'h1', '--to', 'site-a'], /already at site site-a/],
      [['migrate', 'host', 'wan', '--to', 'site-b'], /no host named wan/],
    ];
    for (const [args, message] of cases) {
      const res = await r.limed.a.ctl(args);
      expect(res.code, args.join(' ')).not.toBe(0);
      expect(res.stderr).toMatch(message);
    }
    const usage = await r.limed.a.ctl(['migrate', 'host', 'h1']);
    expect(usage.code).not.toBe(0);
    expect(usage.stderr).toMatch(/--to/);
    for (const l of [r.limed.a, r.limed.b]) {
      expect((await status(l)).hosts.map((h) => h.site)).toEqual(['site-a', 'site-a', 'site-b', 'site-b']);
    }
    // Without the peer, no move: both sites must apply it.
    await r.limed.b.stop();
    await new Promise((res) => setTimeout(res, 1500));
    const alone = await r.limed.a.ctl(['migrate', 'host', 'h1', '--to', 'site-b']);
    expect(alone.code).not.toBe(0);
    expect(alone.stderr).toMatch(/not connected/);
    expect(await siteOfHost(r.limed.a, 1)).toBe('site-a');
  }, 60_000);
});
