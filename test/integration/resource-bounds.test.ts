/**
 * Resource bounds (issue 8), each driven to its bound against a real limed: the MAC
 * table, packet-ins (and frames held for their packet-in during a migration), a monitor
 * connection that does not read, and the journal. Each bound is set small in the config,
 * and each test checks that the bound held, that what hit it was counted where an
 * operator looks (limectl show / peer status), and that limed still answers.
 *
 *   h1 (host, tunnel_id 101) ─┐
 *   h2 ───────────────────────┼─ taps ── [ limerb-s: limed A (writer) ]  ·· loopback ··  [ limed B (follower) ]
 *   h3 ───────────────────────┘
 *
 * B (same namespace, its own TAPs, nobody behind them) is there because a migration needs
 * a connected peer: frames are "held" for their packet-in only while one is under way.
 * The GRE tunnel port of each site points at an address routed into a veth that answers
 * nothing: nothing crosses.
 * The replication window is a bound too; its test is a unit test of the daemon's peering
 * (test/unit/daemon/peering-limits.test.ts: the configured window decides resume vs resync)
 * and of the replication core (test/unit/sync/replication.test.ts: cut loose, counted).
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LimedProcess } from '../../src/demo/limed-process.js';
import { Netns, run } from '../../src/demo/netns.js';
import { monitor, transact, type SuccessBody } from '../../src/cli/client.js';
import { FrameDecoder, encodeFrame } from '../../src/proto/framing.js';
import {
  PROTOCOL_VERSION,
  decodeMgmtReply,
  encodeMgmtRequest,
  type FlowEntry,
  type MgmtEvent,
  type MgmtRequestBody,
  type PeerShowReply,
  type ShowReply,
} from '../../src/proto/schema.js';
import { describeAsRoot } from '../helpers/root.js';
import { RAWFRAMES, runInNs, startInNs } from '../helpers/proc.js';
import { waitPeered } from '../helpers/peer-status.js';

const PREFIX = 'limerb-';
const MAC_CAPACITY = 16;
const PACKET_IN = { rate: 1, burst: 10 };
const MONITOR_QUEUE_BYTES = 65_536;
const COMPACT_ENTRIES = 100;
const H1_MAC = '02:00:00:77:00:01';
const H2_MAC = '02:00:00:77:00:02';
const NOBODY = '02:00:00:77:00:99';
const hex = (mac: string): string => mac.replace(/:/g, '');

/** A 64-byte frame with EtherType 0x88b6, numbered. */
function frame(src: string, seq: number): string {
  const f = Buffer.alloc(64, 0x5a);
  Buffer.from(hex(NOBODY) + hex(src) + '88b6', 'hex').copy(f);
  f.writeUInt16BE(seq, 14);
  return f.toString('hex');
}

/** Poll `read` until `ok` holds of its value (or time out naming `what`); returns the value. */
async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeAsRoot('resource bounds: each driven to its bound, counted, limed alive', () => {
  const net_ = new Netns(PREFIX);
  const dir = mkdtempSync(join(tmpdir(), 'lime-bounds-'));
  let site: string;
  const hostNs: Record<string, string> = {};
  let a: LimedProcess;
  let b: LimedProcess;

  // Requests in-process over the management socket (a limectl process per poll is slow on
  // a small machine); limectl's own text is checked where it matters.
  async function call(body: MgmtRequestBody): Promise<SuccessBody[]> {
    return (await transact({ path: a.socket, timeoutMs: 60_000 }, [body]))[0]!;
  }
  async function show(): Promise<ShowReply> {
    const [r] = await call({ body: 'show', show: {} });
    if (r?.body !== 'show') throw new Error(`show: ${r?.body}`);
    return r.show;
  }
  async function peerStatus(): Promise<PeerShowReply> {
    const [r] = await call({ body: 'peer_show', peer_show: {} });
    if (r?.body !== 'peer_show') throw new Error(`peer_show: ${r?.body}`);
    return r.peer_show;
  }
  async function dump(match: string): Promise<FlowEntry[]> {
    return (await call({ body: 'dump_flows', dump_flows: { match, strict: false, site: 'local' } })).flatMap((r) => (r.body === 'dump_flows' ? r.dump_flows.flows : []));
  }
  const drops = async (port: string): Promise<number> => (await show()).ports.find((p) => p.name === port)?.drops['packet_in_rate'] ?? 0;
  const nPackets = async (match: string): Promise<number> => {
    const flows = await dump(match);
    expect(flows).toHaveLength(1);
    return flows[0]!.n_packets;
  };
  const flowMods = (flows: string[]): MgmtRequestBody => ({
    body: 'flow_mods',
    flow_mods: { command: 'ADD', text: { flows, lines: flows.map((_, i) => i + 1), source: 'bounds', more: false } },
  });
  async function addFlow(flow: string): Promise<void> {
    const [r] = await call(flowMods([flow]));
    expect(r?.body).toBe('flow_mods');
  }

  beforeAll(async () => {
    Netns.cleanupStale(PREFIX);
    site = net_.add('s');
    for (const h of ['h1', 'h2', 'h3']) hostNs[h] = net_.add(h);
    for (const ns of [site, ...Object.values(hostNs)]) net_.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    // Where the GRE ports' remotes are routed: a veth whose other end answers nothing.
    net_.exec(site, 'ip', ['link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'wan-end']);
    net_.exec(site, 'ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'wan']);
    net_.exec(site, 'ip', ['link', 'set', 'wan', 'up']);
    net_.exec(site, 'ip', ['link', 'set', 'wan-end', 'up']);
    net_.exec(site, 'ip', ['route', 'add', '198.51.100.0/24', 'dev', 'wan']);
    const hosts = (suffix: string) => [
      { name: 'h1', device: `${PREFIX}h1${suffix}`, mac: H1_MAC, tunnel_id: 101, site: 'a' },
      { name: 'p2', device: `${PREFIX}p2${suffix}` },
      { name: 'p3', device: `${PREFIX}p3${suffix}` },
    ];
    const common = {
      insecure: true,
      mac_table: { capacity: MAC_CAPACITY, aging_seconds: 300 },
      packet_in: PACKET_IN,
      limits: { monitor_queue_bytes: MONITOR_QUEUE_BYTES, journal_compact_entries: COMPACT_ENTRIES },
    };
    a = new LimedProcess({
      site: 'a',
      netns: site,
      ports: [...hosts(''), { name: 'wan', type: 'gre', remote_ip: '192.0.2.2', key: 'flow' }],
      config: { ...common, listen: '127.0.0.1:6640', peer: { name: 'b', address: '127.0.0.1:6640', tunnel_port: 'wan' }, state_dir: join(dir, 'a') },
    });
    b = new LimedProcess({
      site: 'b',
      netns: site,
      ports: [...hosts('b'), { name: 'wan', type: 'gre', remote_ip: '198.51.100.1', key: 'flow' }],
      config: { ...common, peer: { name: 'a', address: '127.0.0.1:6640', tunnel_port: 'wan' }, state_dir: join(dir, 'b') },
    });
    await Promise.all([a.start(), b.start()]);
    for (const [h, mac] of [['h1', H1_MAC], ['h2', H2_MAC], ['h3', undefined]] as const) {
      const dev = h === 'h1' ? `${PREFIX}h1` : `${PREFIX}p${h.slice(1)}`;
      run('ip', ['-n', site, 'link', 'set', 'dev', dev, 'netns', hostNs[h]!]);
      net_.exec(hostNs[h]!, 'ip', ['link', 'set', dev, 'name', 'eth0']);
      if (mac !== undefined) net_.exec(hostNs[h]!, 'ip', ['link', 'set', 'eth0', 'address', mac]);
      net_.exec(hostNs[h]!, 'ip', ['link', 'set', 'eth0', 'up']);
    }
    await waitPeered(a);
  }, 60_000);

  afterAll(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    net_.destroy();
    a?.cleanup();
    b?.cleanup();
    rmSync(dir, { recursive: true, force: true });
    expect(codes).toEqual([0, 0]);
  });

  it(`mac_table.capacity ${MAC_CAPACITY}: 64 source MACs leave ${MAC_CAPACITY} entries, the rest evicted and counted`, async () => {
    const before = (await show()).mac_table;
    expect(before.capacity).toBe(MAC_CAPACITY);
    await runInNs(hostNs['h2']!, 'python3', [RAWFRAMES, 'flood', 'eth0', '64', NOBODY]);
    await until('64 frames at p2', show, (s) => (s.ports.find((p) => p.name === 'p2')?.rx_packets ?? 0) >= 64);
    const t = (await show()).mac_table;
    expect(t.size).toBe(MAC_CAPACITY);
    expect(t.evictions - before.evictions).toBeGreaterThanOrEqual(64 - MAC_CAPACITY);
    const [fdb] = await call({ body: 'fdb_show', fdb_show: {} });
    expect(fdb?.body === 'fdb_show' ? fdb.fdb_show.entries.length : -1).toBeLessThanOrEqual(MAC_CAPACITY);
  });

  it(`packet_in ${PACKET_IN.rate}/s, burst ${PACKET_IN.burst}: a burst to the controller is cut to the bucket, the excess counted as packet_in_rate`, async () => {
    await addFlow('priority=200,in_port=p2,dl_type=0x88b6,actions=controller');
    const events: MgmtEvent[] = [];
    const stop = new AbortController();
    const watching = monitor({ path: a.socket, timeoutMs: 10_000, signal: stop.signal }, (e) => {
      if (e.kind === 'packet_in' && e.packet_in?.in_port === 'p2') events.push(e);
    });
    const d0 = await drops('p2');
    const N = 200;
    const t0 = Date.now();
    await runInNs(hostNs['h2']!, 'python3', [RAWFRAMES, 'send', 'eth0'], Array.from({ length: N }, (_, i) => frame(H2_MAC, i)).join('\n') + '\n');
    await until(`${N} frames matched`, () => nPackets('in_port=p2,dl_type=0x88b6'), (n) => n >= N);
    const seconds = (Date.now() - t0) / 1000;
    const dropped = (await drops('p2')) - d0;
    // Every frame went to the controller or was dropped for the rate, never both, never neither.
    await until('the packet-ins at the monitor', async () => events.length, (n) => n + dropped >= N);
    stop.abort();
    await watching;
    expect(events.length + dropped).toBe(N);
    expect(dropped).toBeGreaterThan(0);
    expect(events.length).toBeGreaterThan(0);
    // The bucket: its depth plus what it refilled while the burst went through.
    expect(events.length).toBeLessThanOrEqual(PACKET_IN.burst + Math.ceil(seconds * PACKET_IN.rate) + 1);
  });

  it(`limits.monitor_queue_bytes ${MONITOR_QUEUE_BYTES}: a monitor that never reads is dropped and counted; limed goes on`, async () => {
    expect((await show()).control.monitors_dropped).toBe(0);
    // A monitor that reads its "ok", then nothing more.
    const sock = net.createConnection(a.socket);
    const decoder = new FrameDecoder();
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.once('connect', () => sock.write(encodeFrame(encodeMgmtRequest({ version: PROTOCOL_VERSION, id: 1, body: 'monitor', monitor: {} }))));
      sock.on('data', (chunk: Buffer) => {
        for (const msg of decoder.push(chunk)) {
          const reply = decodeMgmtReply(msg);
          if (reply.body === 'ok') {
            sock.pause();
            resolve();
          }
        }
      });
    });
    let closed = false;
    sock.once('close', () => (closed = true));
    // Thousands of flow-added events (each add-flows below is 4000 rules, one event each).
    let dropped = 0;
    for (let round = 0; round < 5 && dropped === 0; round++) {
      const flows = Array.from({ length: 4000 }, (_, i) => `priority=50,udp,nw_dst=10.${round}.${i >> 8}.${i & 255},actions=drop`);
      await call(flowMods(flows));
      dropped = (await show()).control.monitors_dropped;
    }
    expect(dropped).toBe(1);
    expect((await a.ctl(['show'])).stdout).toMatch(/^monitors dropped: 1 \(left more than limits\.monitor_queue_bytes of events unread\)$/m);
    // limed closed it: once we read what was queued, the connection ends.
    sock.resume();
    await until('the dropped monitor connection to close', async () => closed, (c) => c);
    expect(a.stdout).toMatch(/monitor client too slow/);
    const again = await show();
    expect(again.control.monitors_dropped).toBe(1);
  });

  it(`limits.journal_compact_entries ${COMPACT_ENTRIES}: 300 flow-mods compact the journal at least twice; it stays bounded`, async () => {
    const flowMod = (i: number): MgmtRequestBody => flowMods([`priority=60,udp,tp_dst=${10_000 + i},actions=drop`]);
    // The size of one such record: 10 of them, with no compaction in between.
    const s0 = await peerStatus();
    await transact({ path: a.socket, timeoutMs: 30_000 }, Array.from({ length: 10 }, (_, i) => flowMod(i)));
    const s1 = await peerStatus();
    expect(s1.compactions).toBe(s0.compactions);
    const record = (s1.journal_bytes - s0.journal_bytes) / 10;
    expect(record).toBeGreaterThan(16);
    // 300 more, each its own request (its own journal entry), on one connection.
    await transact({ path: a.socket, timeoutMs: 60_000 }, Array.from({ length: 300 }, (_, i) => flowMod(10 + i)));
    const s = await until('two compactions', peerStatus, (st) => st.compactions >= s0.compactions + 2);
    expect(s.compactions - s0.compactions).toBeGreaterThanOrEqual(2);
    // Without compaction the journal would hold at least 310 such records (and the large
    // add-flows records before them); compacted, about COMPACT_ENTRIES at most.
    expect(s.journal_bytes).toBeLessThan(2 * COMPACT_ENTRIES * record);
    const text = await a.ctl(['peer', 'status']);
    expect(text.stdout).toMatch(new RegExp(`^  journal: \\d+ bytes, ${s.compactions} compactions since start$`, 'm'));
    // Nothing lost: all 310 flows are in the table.
    const udp = await dump('udp');
    expect(udp.filter((f) => f.priority === 60)).toHaveLength(310);
  });

  it('frames held for their packet-in during a migration take a packet-in token each: bounded by the same bucket', async () => {
    await addFlow('priority=300,in_port=h1,dl_type=0x88b6,actions=controller,output:p3');
    const r = await a.ctl(['migrate', 'prepare', '--to', 'b'], 30_000);
    expect(r.code, r.stderr).toBe(0);
    const d0 = await drops('h1');
    const N = 200;
    const at3 = await startInNs(hostNs['h3']!, 'python3', [RAWFRAMES, 'recv', 'eth0', '2']);
    await runInNs(hostNs['h1']!, 'python3', [RAWFRAMES, 'send', 'eth0'], Array.from({ length: N }, (_, i) => frame(H1_MAC, i)).join('\n') + '\n');
    await until(`${N} frames matched`, () => nPackets('in_port=h1,dl_type=0x88b6'), (n) => n >= N);
    const dropped = (await drops('h1')) - d0;
    const delivered = (await at3.done).split('\n').filter((l) => l.startsWith(hex(NOBODY) + hex(H1_MAC) + '88b6')).length;
    // Outside a migration this rule forwards every frame; held, a frame goes on only after
    // its packet-in, so those over the rate are dropped with their packet-in.
    expect(dropped).toBeGreaterThan(0);
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThan(N);
    expect(delivered + dropped).toBe(N);
    expect((await show()).site).toBe('a'); // alive
  });
});
