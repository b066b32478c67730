/**
 * FlowService (daemon/flows.ts) on a fake clock: flow-mods from text with port names,
 * errors naming line and column, all-or-none, replace/diff, expiry timing and events,
 * packet-in copy/truncation, and the config it is built from.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FlowService, sumFlowCounters } from '../../../src/daemon/flows.js';
import { ManagementError, type MgmtEvent } from '../../../src/mgmt/service.js';
import { parseConfig } from '../../../src/daemon/config.js';
import type { FlowText } from '../../../src/proto/schema.js';

const names = ['vm1', 'vm2', 'uplink'];
let clock: number;
let flows: FlowService;
let seen: MgmtEvent[];

function make(tableMiss: 'normal' | 'drop' = 'normal'): FlowService {
  return new FlowService(
    {
      now: () => clock,
      wallNow: () => 1_700_000_000_000,
      ports: { numberOf: (n) => (names.indexOf(n) >= 0 ? names.indexOf(n) + 1 : undefined), nameOf: (n) => names[n - 1] },
    },
    { tableMiss },
  );
}

const text = (lines: string[], source = 'f.flows'): FlowText => ({ flows: lines, lines: lines.map((_, i) => i + 1), source, more: false });

beforeEach(() => {
  clock = 10_000;
  flows = make();
  seen = [];
  flows.monitor((e) => seen.push(e));
});

afterEach(() => {
  flows.stop();
  vi.useRealTimers();
});

async function settle(): Promise<void> {
  await Promise.resolve();
}

describe('table-miss', () => {
  it('defaults to priority=0,actions=NORMAL; table_miss: drop installs drop', () => {
    expect(flows.dumpFlows({ match: '', strict: false })).toMatchObject([{ priority: 0, match: '', actions: 'NORMAL' }]);
    const d = make('drop');
    expect(d.dumpFlows({ match: '', strict: false })).toMatchObject([{ priority: 0, match: '', actions: 'drop' }]);
  });
});

describe('flow-mods from text', () => {
  it('resolves port names both ways', () => {
    flows.flowMods({ command: 'ADD', text: text(['priority=10,in_port=vm1,actions=output:uplink']) });
    const rule = flows.table.dump().find((r) => r.priority === 10)!;
    expect(rule.actions).toEqual([{ type: 'output', port: 3 }]);
    expect(flows.dumpFlows({ match: 'in_port=vm1', strict: false })[0]).toMatchObject({ match: 'in_port=vm1', actions: 'output:uplink' });
  });

  it('names the line, column and token of an unknown port, and changes nothing', () => {
    const before = flows.table.version;
    let err: unknown;
    try {
      flows.flowMods({ command: 'ADD', text: text(['priority=1,actions=drop', 'priority=2,in_port=vm9,actions=drop']) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ManagementError);
    expect((err as ManagementError).code).toBe('BAD_REQUEST');
    expect((err as Error).message).toBe('f.flows line 2: flow syntax error at column 20: unknown port "vm9"\n  priority=2,in_port=vm9,actions=drop\n                     ^^^');
    expect(flows.table.version).toBe(before);
    expect(flows.table.size()).toBe(1);
  });

  it('reports a table rejection with the flow place; the batch is all or none', () => {
    flows.flowMods({ command: 'ADD', text: text(['priority=7,tcp,actions=drop']) });
    expect(() =>
      flows.flowMods({ command: 'ADD', text: text(['priority=1,udp,actions=drop', 'priority=7,check_overlap,tcp,tp_dst=1,actions=drop']) }),
    ).toThrow(/^f\.flows line 2: flow rejected \(OVERLAP\): match: check_overlap/);
    expect(flows.table.size()).toBe(2);
  });

  it('a DELETE without flows deletes everything; counts come back', () => {
    flows.flowMods({ command: 'ADD', text: text(['priority=1,udp,actions=drop', 'priority=2,tcp,actions=drop']) });
    expect(flows.flowMods({ command: 'DELETE', text: text([]) })).toEqual({ added: 0, modified: 0, removed: 3 });
    expect(flows.table.size()).toBe(0);
  });

  it('events: added, modified (also for an add replacing an identical flow), deleted', async () => {
    flows.flowMods({ command: 'ADD', text: text(['priority=1,udp,actions=drop']) });
    flows.flowMods({ command: 'ADD', text: text(['priority=1,udp,actions=output:vm1']) });
    flows.flowMods({ command: 'MODIFY', text: text(['udp,actions=output:vm2']) });
    flows.flowMods({ command: 'DELETE_STRICT', text: text(['priority=1,udp']) });
    await settle();
    expect(seen.map((e) => [e.kind, e.flow?.actions, e.reason])).toEqual([
      ['added', 'drop', ''],
      ['modified', 'output:vm1', ''],
      ['modified', 'output:vm2', ''],
      ['deleted', 'output:vm2', 'delete'],
    ]);
    expect(seen[0]!.time).toBe(1_700_000_000);
  });
});

describe('expiry', () => {
  it('the timer fires at nextExpiry (within the 1 s tick), emitting deleted + flow_removed', async () => {
    vi.useFakeTimers();
    flows.start();
    flows.flowMods({ command: 'ADD', text: text(['priority=1,idle_timeout=3,send_flow_rem,udp,actions=drop', 'priority=2,hard_timeout=1,tcp,actions=drop']) });
    const udp = flows.table.dump().find((r) => r.priority === 1)!;
    clock += 1000;
    flows.table.credit(udp.id, 4, 400, clock); // traffic moves the idle deadline to 14_000
    await vi.advanceTimersByTimeAsync(1000);
    expect(flows.table.dump().map((r) => r.priority)).toEqual([1, 0]); // the hard timeout fired
    clock += 2999;
    await vi.advanceTimersByTimeAsync(2999);
    expect(flows.table.size()).toBe(2);
    clock += 1;
    await vi.advanceTimersByTimeAsync(1000);
    expect(flows.table.size()).toBe(1);
    expect(seen.filter((e) => e.kind !== 'added').map((e) => [e.kind, e.flow?.priority, e.reason, e.flow?.n_packets])).toEqual([
      ['deleted', 2, 'hard_timeout', 0],
      ['deleted', 1, 'idle_timeout', 4],
      ['flow_removed', 1, 'idle_timeout', 4],
    ]);
  });
});

describe('replace-flows', () => {
  it('is atomic: a bad line changes nothing; dry_run changes nothing', () => {
    flows.flowMods({ command: 'ADD', text: text(['priority=5,udp,actions=drop']) });
    const v = flows.table.version;
    expect(() => flows.replaceFlows({ text: text(['priority=1,tcp,actions=drop', 'priority=2,in_port=nope,actions=drop']), dry_run: false })).toThrow(/line 2/);
    const d = flows.replaceFlows({ text: text(['priority=1,tcp,actions=drop']), dry_run: true });
    expect(d.lines).toEqual(['+priority=1,tcp actions=drop', '-priority=5,udp actions=drop', '-priority=0 actions=NORMAL']);
    expect(flows.table.version).toBe(v);
  });

  it('a timeout or cookie difference re-adds the flow; identical flows are untouched', () => {
    flows.flowMods({ command: 'ADD', text: text(['priority=5,udp,actions=drop', 'priority=6,tcp,actions=drop']) });
    const r = flows.replaceFlows({ text: text(['priority=5,udp,actions=drop', 'priority=6,idle_timeout=9,tcp,actions=drop']), dry_run: false });
    expect(r).toMatchObject({ n_added: 0, n_modified: 1, n_removed: 1 });
    expect(flows.dumpFlows({ match: '', strict: false }).map((f) => [f.priority, f.idle_timeout])).toEqual([
      [6, 9],
      [5, 0],
    ]);
  });
});

describe('packet-in', () => {
  it('copies the frame (truncated to max_len) and counts packet-ins nobody watches', async () => {
    const slab = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    flows.onPacketIn(slab, 10, 80, 2, 'no_match', 0, -1, 65535);
    slab.fill(0); // the data path reuses its slab: the event must hold a copy
    await settle();
    const e = seen.find((x) => x.kind === 'packet_in')!;
    expect(e.reason).toBe('no_match');
    expect(e.packet_in).toMatchObject({ in_port: 'vm2', in_port_number: 2, total_len: 80, buffer_id: 0xffffffff, cookie: '0x0', match: '' });
    expect(Array.from(e.packet_in!.data)).toEqual(Array.from({ length: 80 }, (_, i) => i + 10));
    const quiet = make();
    quiet.onPacketIn(slab, 0, 60, 1, 'action', 0, -1, 20);
    expect([quiet.nPacketIns, quiet.nPacketInsUnwatched]).toEqual([1, 1]);
  });
});

describe('config', () => {
  it('table_miss and packet_in have defaults and validated values', () => {
    const c = parseConfig('site: a\n');
    expect(c.table_miss).toBe('normal');
    expect(c.packet_in).toEqual({ rate: 1000, burst: 100 });
    expect(parseConfig('site: a\ntable_miss: drop\npacket_in: { rate: 10 }\n')).toMatchObject({ table_miss: 'drop', packet_in: { rate: 10, burst: 100 } });
    expect(() => parseConfig('site: a\ntable_miss: flood\n')).toThrow(/table_miss: expected normal or drop, got "flood"/);
    expect(() => parseConfig('site: a\npacket_in: { rate: 0 }\n')).toThrow(/packet_in\.rate: expected an integer from 1 to 1000000/);
    expect(() => parseConfig('site: a\npacket_in: { burst: 1.5 }\n')).toThrow(/packet_in\.burst: expected an integer/);
    expect(() => parseConfig('site: a\npacket_in: { rte: 5 }\n')).toThrow(/packet_in: unknown field "rte"/);
  });
});

describe('loadFlows: a snapshot of another site\'s table', () => {
  it('reproduces the table from its dump, keeping each flow\'s age and so its hard deadline', () => {
    flows.flowMods({
      command: 'ADD',
      text: text([
        'table=0,priority=10,cookie=0x2a,in_port=vm1,dl_type=0x0800,nw_dst=10.1.0.0/16,actions=output:uplink',
        'priority=20,hard_timeout=30,send_flow_rem,in_port=vm2,actions=drop',
        'table=1,priority=5,idle_timeout=60,actions=NORMAL',
      ]),
    });
    clock += 12_000; // the flows are 12 s old when the snapshot is taken
    const snapshot = flows.dumpFlows({ match: '', strict: false });
    const other = make('drop');
    other.flowMods({ command: 'ADD', text: text(['priority=99,actions=drop']) }); // replaced, not merged
    other.loadFlows(snapshot, clock);
    const strip = (es: ReturnType<FlowService['dumpFlows']>) => es.map(({ n_packets: _p, n_bytes: _b, ...e }) => e);
    expect(strip(other.dumpFlows({ match: '', strict: false }))).toEqual(strip(snapshot));
    expect(other.dumpFlows({ match: '', strict: false }).find((e) => e.priority === 20)?.duration_s).toBe(12);
    // The hard timeout fires 30 s after the original add, not 30 s after the load.
    expect(other.sweep(clock + 17_999).length).toBe(0);
    expect(other.sweep(clock + 18_000).map((e) => e.reason)).toEqual(['hard_timeout']);
    other.stop();
  });

  it('is all or none: a snapshot naming an unknown port changes nothing', () => {
    flows.flowMods({ command: 'ADD', text: text(['priority=7,actions=drop']) });
    const before = flows.dumpFlows({ match: '', strict: false });
    const bad = [{ ...before[0]!, match: 'in_port=nosuchport' }];
    expect(() => flows.loadFlows(bad, clock)).toThrow(ManagementError);
    expect(flows.dumpFlows({ match: '', strict: false })).toEqual(before);
  });

  it('packed: a chunk that does not unpack is refused with a reason and the table stays as it was', () => {
    flows.flowMods({ command: 'ADD', text: text(['priority=7,in_port=vm1,actions=output:uplink']) });
    const before = flows.dumpFlows({ match: '', strict: false });
    const chunk = flows.snapshotPacked(clock, 1000).next().value as Uint8Array;
    const other = make('drop');
    const untouched = other.dumpFlows({ match: '', strict: false });
    const loader = other.snapshotLoader(clock);
    expect(() => loader.addPacked(chunk.subarray(0, chunk.length - 1))).toThrow(/snapshot: packed flows truncated/);
    expect(other.dumpFlows({ match: '', strict: false })).toEqual(untouched);
    const good = other.snapshotLoader(clock);
    good.addPacked(chunk);
    good.install();
    const strip = (es: ReturnType<FlowService['dumpFlows']>) => es.map(({ n_packets: _p, n_bytes: _b, duration_s: _d, ...e }) => e);
    expect(strip(other.dumpFlows({ match: '', strict: false }))).toEqual(strip(before));
    other.stop();
  });

  it('arrives in chunks: the table changes only when the last chunk is installed', () => {
    flows.flowMods({ command: 'ADD', text: text(['priority=7,actions=drop', 'priority=8,ip,actions=drop', 'priority=9,arp,actions=drop']) });
    const snapshot = flows.dumpFlows({ match: '', strict: false });
    const other = make('drop');
    other.flowMods({ command: 'ADD', text: text(['priority=99,actions=drop']) });
    const before = other.dumpFlows({ match: '', strict: false });
    const loader = other.snapshotLoader(clock);
    loader.add(snapshot.slice(0, 2));
    expect(other.dumpFlows({ match: '', strict: false })).toEqual(before);
    loader.add(snapshot.slice(2));
    expect(other.dumpFlows({ match: '', strict: false })).toEqual(before);
    loader.install();
    expect(other.dumpFlows({ match: '', strict: false }).map((e) => e.priority).sort()).toEqual(snapshot.map((e) => e.priority).sort());
    other.stop();
  });
});

describe('sumFlowCounters: the logical view of two sites\' tables', () => {
  it('lists each flow once with both sites\' counters summed, keeping flows only one site has', () => {
    flows.flowMods({ command: 'ADD', text: text(['priority=10,in_port=vm1,actions=drop', 'table=1,priority=10,in_port=vm1,actions=drop']) });
    const local = flows.dumpFlows({ match: '', strict: false }).map((f, i) => ({ ...f, n_packets: i + 1, n_bytes: 100 * (i + 1) }));
    const remote = local.map((f) => ({ ...f, n_packets: 1000, n_bytes: 5000 }));
    remote.push({ ...remote[0]!, priority: 77, n_packets: 3, n_bytes: 4 });
    const sum = sumFlowCounters(local, remote);
    expect(sum).toHaveLength(local.length + 1);
    for (let i = 0; i < local.length; i++) expect(sum[i]).toMatchObject({ match: local[i]!.match, table: local[i]!.table, n_packets: i + 1001, n_bytes: 100 * (i + 1) + 5000 });
    expect(sum.at(-1)).toMatchObject({ priority: 77, n_packets: 3 });
    expect(local[0]!.n_packets).toBe(1); // inputs untouched
  });
});

describe('logical idle timeouts: usage reported by the follower moves the writer\'s deadlines', () => {
  it('a flow idle here but used at the peer is not expired; once idle at both it is', () => {
    const f = 'priority=700,idle_timeout=2,send_flow_rem,in_port=vm1,ip,nw_src=10.61.0.2,actions=NORMAL';
    flows.flowMods({ command: 'ADD', text: text([f]) });
    const b = make();
    b.setPeerRole({ expireIdle: false, localFlowRemoved: false });
    b.flowMods({ command: 'ADD', text: text([f]) });
    const rule = b.table.dump().find((r) => r.priority === 700)!;
    // Traffic at B only, every 500 ms for 5 s; B reports each second.
    let mark = clock;
    for (let t = 500; t <= 5000; t += 500) {
      clock = 10_000 + t;
      b.table.credit(rule.id, 1, 100, clock);
      if (t % 1000 === 0) {
        const usage = b.idleUsage(mark, clock);
        mark = clock;
        expect(usage.map((u) => u.flow)).toEqual(['table=0,priority=700,ip,in_port=vm1,nw_src=10.61.0.2']);
        flows.touchFromPeer(usage, clock);
      }
      expect(flows.sweep(clock)).toEqual([]);
      expect(b.sweep(clock)).toEqual([]); // the follower never expires idle flows itself
    }
    // Traffic stops: two seconds after B's last use the writer expires it.
    expect(b.idleUsage(mark, clock + 1000)).toEqual([]);
    expect(flows.sweep(clock + 1999)).toEqual([]);
    expect(flows.sweep(clock + 2000).map((e) => e.reason)).toEqual(['idle_timeout']);
    expect(b.sweep(clock + 60_000)).toEqual([]);
    b.stop();
  });
});

describe('PeerRole', () => {
  it('the writer waits idleGraceMs past an idle deadline (for the follower\'s report); the follower never expires idle flows and emits no flow_removed of its own', async () => {
    flows.flowMods({ command: 'ADD', text: text(['priority=5,idle_timeout=2,send_flow_rem,actions=drop', 'priority=6,hard_timeout=1,send_flow_rem,actions=drop']) });
    const expired: string[] = [];
    const forwarded: string[] = [];
    flows.setPeerRole({ expireIdle: true, localFlowRemoved: true, idleGraceMs: 1500, onExpired: (evs) => expired.push(...evs.map((e) => flows.strictText(e.rule))), forward: (e) => forwarded.push(e.kind) });
    expect(flows.sweep(clock + 1000).map((e) => e.reason)).toEqual(['hard_timeout']);
    expect(flows.sweep(clock + 3499)).toEqual([]);
    expect(flows.sweep(clock + 3500).map((e) => e.reason)).toEqual(['idle_timeout']);
    expect(expired).toEqual(['table=0,priority=6', 'table=0,priority=5']);
    await settle();
    expect(forwarded).toEqual(['flow_removed', 'flow_removed']);
    expect(seen.filter((e) => e.kind === 'flow_removed')).toHaveLength(2);

    const b = make();
    const bSeen: MgmtEvent[] = [];
    b.monitor((e) => bSeen.push(e));
    const bForwarded: string[] = [];
    b.setPeerRole({ expireIdle: false, localFlowRemoved: false, forward: (e) => bForwarded.push(e.kind) });
    b.flowMods({ command: 'ADD', text: text(['priority=5,idle_timeout=2,send_flow_rem,actions=drop', 'priority=6,hard_timeout=1,send_flow_rem,actions=drop']) });
    expect(b.sweep(clock + 60_000).map((e) => e.reason)).toEqual(['hard_timeout']); // idle left to the writer
    b.publish({ kind: 'flow_removed', time: 1, reason: 'hard_timeout', dropped: 0 });
    await settle();
    expect(bSeen.filter((e) => e.kind === 'flow_removed')).toHaveLength(1); // the writer's, not its own
    expect(bSeen.filter((e) => e.kind === 'deleted')).toHaveLength(1);
    expect(bForwarded).toEqual([]);
    b.stop();
  });
});
