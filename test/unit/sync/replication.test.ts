/**
 * The replication core (src/sync/replication.ts), writer and follower run against each
 * other in memory: every message crosses a fake link encoded and decoded with the real
 * PeerMessage schema, the "table" is a set of flow texts, the "journal" an array whose
 * writes complete on a later turn of the loop (or fail on demand).
 */
import { describe, expect, it } from 'vitest';
import {
  decodePeerMessage,
  decodeReplEntry,
  encodePeerMessage,
  encodeReplEntry,
  type FlowEntry,
  type PeerMessage,
  type ReplEntry,
  type ReplOp,
  type ReplSnapshot,
} from '../../../src/proto/schema.js';
import { Follower, ReplicationError, Writer, type ReplicaIo, type ReplicaLink, type ReplResult, type SnapshotLoader } from '../../../src/sync/replication.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await tick();
}

/** A site: its table (flow texts), its journal, its log. */
class FakeSite implements ReplicaIo {
  readonly table = new Set<string>();
  readonly journal: ReplEntry[] = [];
  snapshots: ReplSnapshot[] = [];
  readonly logs: string[] = [];
  failPersist = false;
  /** While set, journal writes wait for it (a slow disk). */
  persistGate: Promise<void> | undefined;
  clock = 1_000_000;
  applyTimes: number[] = [];

  apply(op: ReplOp, time: number): ReplResult {
    this.applyTimes.push(time);
    if (op.op === 'move_host' || op.op === 'migration' || op.op === 'archive') throw new Error('no hosts in this table');
    const texts = op.op === 'flow_mods' ? op.flow_mods.text.flows : op.replace_flows.text.flows;
    if (texts.some((t) => t.includes('bad'))) throw Object.assign(new Error(`bad flow: ${texts.join(';')}`), { code: 'BAD_REQUEST' });
    if (op.op === 'replace_flows') {
      this.table.clear();
      for (const t of texts) this.table.add(t);
      return { op: 'replace_flows', flow_diff: { lines: [], more: false, n_added: texts.length, n_modified: 0, n_removed: 0 } };
    }
    let added = 0, removed = 0;
    if (op.flow_mods.command === 'DELETE') {
      if (texts.length === 0) { removed = this.table.size; this.table.clear(); }
      for (const t of texts) if (this.table.delete(t)) removed++;
    } else {
      for (const t of texts) { this.table.add(t); added++; }
    }
    return { op: 'flow_mods', flow_mods: { added, modified: 0, removed } };
  }
  snapshotFlows(): FlowEntry[] {
    return [...this.table].map((match) => ({
      table: 0, priority: 100, cookie: '0x0', match, actions: 'drop', n_packets: 0, n_bytes: 0, duration_s: 0, idle_timeout: 0, hard_timeout: 0, flags: [],
    }));
  }
  snapshotLoader(): SnapshotLoader {
    const matches: string[] = [];
    return {
      add: (flows) => {
        for (const f of flows) matches.push(f.match);
      },
      addPacked: () => {
        throw new Error('this test io offers no packed snapshots (no snapshotPacked)');
      },
      install: () => {
        this.table.clear();
        for (const m of matches) this.table.add(m);
      },
    };
  }
  /** While set, snapshot writes wait for it. */
  snapshotGate: Promise<void> | undefined;
  /** Like the real journal: an append must come after the last one (or the snapshot), checked when issued. */
  private lastIssued = 0;
  async persist(seq: number, bytes: Uint8Array): Promise<void> {
    if (seq <= this.lastIssued) throw new Error(`append refused: seq ${seq} is not greater than the last seq ${this.lastIssued}`);
    this.lastIssued = seq;
    await tick();
    if (this.persistGate !== undefined) await this.persistGate;
    if (this.failPersist) throw new Error('disk full');
    const entry = decodeReplEntry(bytes) as ReplEntry;
    if (entry.seq !== seq) throw new Error(`persist: seq ${seq} but the bytes hold entry ${entry.seq}`);
    this.journal.push(entry);
  }
  async persistSnapshot(snapshot: ReplSnapshot): Promise<void> {
    await tick();
    if (this.snapshotGate !== undefined) await this.snapshotGate;
    this.lastIssued = snapshot.seq;
    this.snapshots.push(snapshot);
    this.journal.length = 0;
  }
  now(): number {
    return this.clock;
  }
  log = (level: string, msg: string): void => {
    this.logs.push(`${level}: ${msg}`);
  };
}

/**
 * Two ends of a connection. Messages are encoded and decoded on the way and delivered on a
 * later turn; `limit` bounds what may be in flight before send() says "full".
 */
function linkPair(limit = Infinity) {
  const ends: Array<{ inflight: number; drains: Array<() => void>; receive: ((m: PeerMessage) => unknown) | undefined; closed: string | undefined; sent: string[] }> = [
    { inflight: 0, drains: [], receive: undefined, closed: undefined, sent: [] },
    { inflight: 0, drains: [], receive: undefined, closed: undefined, sent: [] },
  ];
  let down: ((reason: string) => void) | undefined;
  const make = (i: 0 | 1): ReplicaLink => ({
    send(m) {
      const me = ends[i]!;
      if (me.closed !== undefined) return false;
      me.sent.push(m.body);
      const bytes = encodePeerMessage(m);
      me.inflight++;
      setImmediate(() => {
        me.inflight--;
        if (me.closed !== undefined) return;
        const decoded = decodePeerMessage(bytes);
        if (decoded.body === undefined) throw new Error('unknown body');
        void ends[1 - i]!.receive?.(decoded);
        if (me.inflight === 0) for (const d of me.drains) d();
      });
      return me.inflight < limit;
    },
    onDrain(cb) {
      ends[i]!.drains.push(cb);
    },
    close(reason) {
      ends[0]!.closed = ends[1]!.closed = reason;
      down?.(reason);
    },
  });
  return { writerEnd: make(0), followerEnd: make(1), ends, onDown: (f: (reason: string) => void) => { down = f; } };
}

const add = (...flows: string[]): ReplOp => ({ op: 'flow_mods', flow_mods: { command: 'ADD', text: { flows, lines: [], source: '', more: false } } });
const del = (...flows: string[]): ReplOp => ({ op: 'flow_mods', flow_mods: { command: 'DELETE', text: { flows, lines: [], source: '', more: false } } });

interface Pair {
  a: FakeSite;
  b: FakeSite;
  writer: Writer;
  follower: Follower;
  link: ReturnType<typeof linkPair>;
  connect(limit?: number): ReturnType<typeof linkPair>;
}

function pair(opts: { windowEntries?: number; snapshotChunkFlows?: number; bytesPerMessage?: number; maxEntryBytes?: number } = {}): Pair {
  const a = new FakeSite();
  const b = new FakeSite();
  const writer = new Writer(a, { log_id: 'log-1', applied_seq: 0 }, [], opts);
  const follower = new Follower(b, { log_id: '', applied_seq: 0 }, 'site-a', opts);
  const p: Pair = {
    a, b, writer, follower, link: linkPair(),
    connect(limit = Infinity) {
      const link = linkPair(limit);
      link.ends[0]!.receive = (m) => writer.receive(m);
      link.ends[1]!.receive = (m) => follower.receive(m);
      link.onDown((reason) => { writer.detach(reason); follower.detach(reason); });
      follower.attach(link.followerEnd);
      writer.attach(link.writerEnd, follower.position);
      p.link = link;
      return link;
    },
  };
  return p;
}

describe('replication: the writer alone', () => {
  it('applies, sequences and persists; an invalid operation changes nothing and takes no number', async () => {
    const { a, writer } = pair();
    expect(await writer.submit(add('f1', 'f2'))).toEqual({ seq: 1, result: { op: 'flow_mods', flow_mods: { added: 2, modified: 0, removed: 0 } } });
    await expect(writer.submit(add('bad1'))).rejects.toThrow(/bad flow/);
    expect((await writer.submit(del('f1'))).seq).toBe(2);
    expect([...a.table]).toEqual(['f2']);
    expect(a.journal.map((e) => e.seq)).toEqual([1, 2]);
    expect(a.journal[0]).toMatchObject({ op: 'flow_mods', time: a.clock });
    expect(writer.position).toEqual({ log_id: 'log-1', applied_seq: 2 });
  });

  it('refuses everything after the journal fails', async () => {
    const { a, writer } = pair();
    a.failPersist = true;
    await expect(writer.submit(add('f1'))).rejects.toThrow(/disk full/);
    await settle();
    await expect(writer.submit(add('f2'))).rejects.toThrow(/journal failed/);
    expect(a.logs.some((l) => l.startsWith('error: replication: the journal failed'))).toBe(true);
  });
});

describe('replication: writer and follower', () => {
  it('answers the operator only once the follower has applied the entry; the follower journals it after', async () => {
    const p = pair();
    p.connect();
    await settle();
    for (let i = 0; i < 20; i++) {
      const { seq } = await p.writer.submit(add(`f${i}`));
      // Acknowledged: durable here, and the follower has it in its table.
      expect(p.a.journal.at(-1)?.seq).toBe(seq);
      expect(p.b.table.has(`f${i}`)).toBe(true);
    }
    await settle();
    expect(p.b.journal.map((e) => e.seq)).toEqual(p.a.journal.map((e) => e.seq));
    expect(p.follower.position.applied_seq).toBe(20);
    expect([...p.b.table]).toEqual([...p.a.table]);
    expect(p.b.applyTimes).toEqual(p.a.applyTimes); // the writer's clock travels with each entry
    expect(p.writer.status()).toMatchObject({ seq: 20, acked_seq: 20, lag: 0, live: true });
  });

  it('a slow follower journal does not hold the writer\'s operator, but holds the follower\'s own', async () => {
    const p = pair();
    p.connect();
    await settle();
    let open: () => void = () => {};
    p.b.persistGate = new Promise<void>((r) => (open = r));
    const atWriter = await p.writer.submit(add('w1'));
    expect(p.b.table.has('w1')).toBe(true);
    expect(p.b.journal).toHaveLength(0); // not yet durable at the follower
    let answered = false;
    const atFollower = p.follower.submit(add('f1')).then((r) => {
      answered = true;
      return r;
    });
    await settle();
    expect(p.b.table.has('f1')).toBe(true); // applied at both sites ...
    expect(p.a.journal.map((e) => e.seq)).toEqual([1, 2]);
    expect(answered).toBe(false); // ... but the follower's operator waits for its own journal
    p.b.persistGate = undefined;
    open();
    expect(await atFollower).toMatchObject({ seq: 2 });
    expect(p.b.journal.map((e) => e.seq)).toEqual([1, 2]);
    expect(atWriter.seq).toBe(1);
    // The position a reconnect resumes from is the durable one.
    expect(p.follower.position.applied_seq).toBe(2);
  });

  it('a follower whose journal fails answers its operator with the failure', async () => {
    const p = pair();
    p.connect();
    await settle();
    p.b.failPersist = true;
    const err = await p.follower.submit(add('f1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicationError);
    expect((err as Error).message).toMatch(/journal failed/);
    expect(p.b.logs.some((l) => l.startsWith('error: replication: the journal failed'))).toBe(true);
  });

  it('appends behind a snapshot still being written wait for it, then go in order with the later ones', async () => {
    const p = pair();
    for (let i = 1; i <= 5; i++) await p.writer.submit(add(`s${i}`));
    let snapshotDone: () => void = () => {};
    p.b.snapshotGate = new Promise<void>((r) => (snapshotDone = r));
    p.connect(); // the follower starts empty: a snapshot at seq 5
    await settle();
    expect(p.follower.status().seq).toBe(5);
    // Applied at the follower while its snapshot is still being written: answered.
    expect((await p.writer.submit(add('x6'))).seq).toBe(6);
    expect((await p.writer.submit(add('x7'))).seq).toBe(7);
    expect(p.b.journal).toHaveLength(0);
    // The snapshot is written; 6 and 7 go to a slow disk, and 8 and 9 arrive meanwhile.
    let disk: () => void = () => {};
    p.b.persistGate = new Promise<void>((r) => (disk = r));
    p.b.snapshotGate = undefined;
    snapshotDone();
    await settle();
    expect((await p.writer.submit(add('x8'))).seq).toBe(8);
    expect((await p.writer.submit(add('x9'))).seq).toBe(9);
    p.b.persistGate = undefined;
    disk();
    await settle(50);
    expect(p.b.logs.filter((l) => l.startsWith('error'))).toEqual([]);
    expect(p.b.snapshots.map((x) => x.seq)).toEqual([5]);
    expect(p.b.journal.map((e) => e.seq)).toEqual([6, 7, 8, 9]);
    expect(p.follower.position.applied_seq).toBe(9);
    expect([...p.b.table]).toEqual([...p.a.table]);
  });

  it('forwards an operator command at the follower to the writer, errors included', async () => {
    const p = pair();
    p.connect();
    await settle();
    const r = await p.follower.submit(add('x1', 'x2'));
    expect(r).toEqual({ seq: 1, result: { op: 'flow_mods', flow_mods: { added: 2, modified: 0, removed: 0 } } });
    expect([...p.a.table]).toEqual(['x1', 'x2']);
    expect([...p.b.table]).toEqual(['x1', 'x2']);
    const err = await p.follower.submit(add('bad')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicationError);
    expect(err).toMatchObject({ code: 'BAD_REQUEST' });
    expect((err as Error).message).toMatch(/bad flow/);
    expect(p.writer.position.applied_seq).toBe(1);
    // Concurrent commands at both sites end in one order, the same at both.
    await Promise.all([p.follower.submit(add('y1')), p.writer.submit(del('x1')), p.follower.submit(del('x2')), p.writer.submit(add('y2'))]);
    expect([...p.b.table].sort()).toEqual([...p.a.table].sort());
    expect([...p.a.table].sort()).toEqual(['y1', 'y2']);
  });

  it('refuses commands and barriers at a follower without a writer, saying why', async () => {
    const { follower } = pair();
    expect(() => follower.submit(add('f'))).toThrow(/the writer site site-a is not connected: flow-mods at this site go through it/);
    expect(() => follower.barrier()).toThrow(ReplicationError);
  });

  it('barrier: everything before it is applied at both sites', async () => {
    const p = pair();
    p.connect();
    await settle();
    const pending = [p.writer.submit(add('b1')), p.follower.submit(add('b2'))];
    const seq = await p.follower.barrier();
    expect(seq).toBeGreaterThanOrEqual(1);
    expect(p.b.journal.length).toBeGreaterThanOrEqual(seq);
    await Promise.all(pending);
    expect(await p.writer.barrier()).toBe(2);
    expect([...p.b.table].sort()).toEqual(['b1', 'b2']);
  });

  it('resumes after a disconnect from the follower\'s last durable entry', async () => {
    const p = pair();
    p.connect();
    await settle();
    for (let i = 0; i < 10; i++) await p.writer.submit(add(`r${i}`));
    p.link.writerEnd.close('cable cut');
    // The writer goes on alone; its operators no longer wait for the follower.
    for (let i = 10; i < 60; i++) await p.writer.submit(add(`r${i}`));
    expect(p.b.table.size).toBe(10);
    p.connect();
    expect(await p.writer.barrier()).toBe(60);
    // The first connection resynced (the follower started empty), the second resumed.
    expect(p.writer.status()).toMatchObject({ resumes: 1, resyncs: 1, acked_seq: 60, live: true });
    expect([...p.b.table]).toEqual([...p.a.table]);
    expect(p.b.snapshots).toHaveLength(1); // the first connection's, of the empty table
    await settle(200); // the barrier means applied there; its journal follows, a write per turn
    expect(p.b.journal.map((e) => e.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  });

  it.each([
    ['a table of 2500 flows (3 chunks)', 2500],
    ['a table of exactly 2000 flows (the second full chunk is the last)', 2000],
    ['an empty table', 0],
  ])('resyncs a follower with another log: %s, while commands keep coming', async (_what, n) => {
    const p = pair({ snapshotChunkFlows: 1000 });
    for (let i = 0; i < n; i++) p.a.table.add(`s${i}`);
    p.b.table.add('stale'); // the follower's old table goes away
    // A tight link: the snapshot needs several drains, commands arrive meanwhile.
    const link = p.connect(2);
    const during = [p.writer.submit(add('d1')), p.writer.submit(add('d2')), p.writer.submit(del('s0'))];
    await Promise.all(during);
    await settle();
    expect(p.writer.status()).toMatchObject({ resyncs: 1, resumes: 0, live: true, lag: 0 });
    expect([...p.b.table].sort()).toEqual([...p.a.table].sort());
    expect(p.b.table.has('stale')).toBe(false);
    expect(p.b.snapshots).toHaveLength(1);
    expect(p.b.snapshots[0]).toMatchObject({ log_id: 'log-1', seq: 0, flows: expect.any(Array) });
    expect(p.b.snapshots[0]!.flows).toHaveLength(n);
    const chunksSent = link.ends[0]!.sent.filter((b) => b === 'snapshot').length;
    expect(chunksSent).toBe(Math.max(1, Math.ceil(n / 1000)));
    expect(p.follower.position).toEqual({ log_id: 'log-1', applied_seq: 3 });
  });

  it('resyncs a follower whose gap is larger than the writer\'s window', async () => {
    const p = pair({ windowEntries: 5 });
    p.connect();
    await settle();
    await p.writer.submit(add('w0'));
    p.link.writerEnd.close('cable cut');
    for (let i = 1; i <= 12; i++) await p.writer.submit(add(`w${i}`));
    p.connect();
    await p.writer.barrier();
    expect(p.writer.status()).toMatchObject({ resyncs: 2, resumes: 0, live: true });
    expect(p.a.logs.some((l) => /resync \(the gap is larger than the window/.test(l))).toBe(true);
    expect([...p.b.table].sort()).toEqual([...p.a.table].sort());
  });

  it('cuts loose a connected follower that falls more than the window behind, counts it, and resyncs it', async () => {
    const p = pair({ windowEntries: 5 });
    p.connect(1); // one message in flight at most: the follower falls behind at once
    await settle();
    expect(p.writer.status().window_cutoffs).toBe(0);
    const pending = Array.from({ length: 12 }, (_, i) => p.writer.submit(add(`c${i}`)));
    await Promise.all(pending); // resolved once the follower is cut loose (nobody waits for it)
    expect(p.writer.status().window_cutoffs).toBe(1);
    expect(p.link.ends[0]!.closed).toBe('the follower fell more than 5 entries behind');
    p.connect();
    await p.writer.barrier();
    expect(p.writer.status()).toMatchObject({ resyncs: 2, window_cutoffs: 1, live: true });
    expect([...p.b.table].sort()).toEqual([...p.a.table].sort());
  });

  it('closes the connection on a protocol violation, naming it', async () => {
    const p = pair();
    p.connect();
    await settle();
    const z: ReplEntry = { seq: 7, time: 0, ...add('z') } as ReplEntry;
    await p.follower.receive({ version: 1, body: 'entries', entries: { entries: [encodeReplEntry(z)] } });
    expect(p.link.ends[0]!.closed).toBe('entry seq 7 does not follow 0');
    expect(p.b.table.size).toBe(0);
    p.connect();
    await settle();
    await p.writer.receive({ version: 1, body: 'ack', ack: { applied_seq: 99, durable_seq: 0 } });
    expect(p.link.ends[0]!.closed).toMatch(/acknowledged seq 99, beyond the log's end \(0\)/);
  });

  it('streams entries larger than a message in parts, small ones batched by size; garbage closes the connection', async () => {
    const p = pair({ bytesPerMessage: 1000 });
    const link = p.connect();
    await settle();
    const big = Array.from({ length: 300 }, (_, i) => `big${i}`); // ~2.5 KB encoded: 3 parts
    await p.writer.submit(add(...big));
    expect(link.ends[0]!.sent.filter((b) => b === 'entry_part')).toHaveLength(3);
    expect(p.b.table.size).toBe(300);
    // Live, each entry leaves at once; catching up, small entries share messages by size.
    link.writerEnd.close('cut');
    for (let i = 0; i < 30; i++) await p.writer.submit(add(`s${i}`));
    const again = p.connect();
    expect(await p.writer.barrier()).toBe(31);
    expect([...p.b.table].sort()).toEqual([...p.a.table].sort());
    expect(p.b.table.size).toBe(330);
    const batches = again.ends[0]!.sent.filter((b) => b === 'entries').length;
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThan(10);
    // A part of another entry in the middle of one, an announced size over the limit, bytes that do not decode.
    await p.follower.receive({ version: 1, body: 'entry_part', entry_part: { seq: 32, total: 10, data: new Uint8Array(5) } });
    await p.follower.receive({ version: 1, body: 'entry_part', entry_part: { seq: 33, total: 10, data: new Uint8Array(5) } });
    expect(again.ends[0]!.closed).toBe('a part of entry 33 arrived in the middle of entry 32');
    const q = pair({ maxEntryBytes: 100 });
    q.connect();
    await settle();
    await q.follower.receive({ version: 1, body: 'entry_part', entry_part: { seq: 1, total: 101, data: new Uint8Array(1) } });
    expect(q.link.ends[0]!.closed).toBe('entry 1 of 101 bytes exceeds the 100-byte limit');
    const r = pair();
    r.connect();
    await settle();
    await r.follower.receive({ version: 1, body: 'entries', entries: { entries: [Uint8Array.from([0xff, 0xff, 0xff])] } });
    expect(r.link.ends[0]!.closed).toMatch(/^an entry does not decode/);
    expect(r.b.table.size).toBe(0);
  });

  it('a lost connection fails the follower\'s pending commands with a clear reason, and frees the writer\'s', async () => {
    const p = pair();
    p.connect();
    await settle();
    const fromFollower = p.follower.submit(add('p1')).catch((e: unknown) => e);
    const fromWriter = p.writer.submit(add('p2'));
    p.link.writerEnd.close('peer silent for 3000 ms');
    const err = await fromFollower;
    expect(err).toBeInstanceOf(ReplicationError);
    expect((err as Error).message).toMatch(/lost \(peer silent for 3000 ms\) before it answered/);
    await expect(fromWriter).resolves.toMatchObject({ seq: 1 });
  });
});

describe('replication: restore from the journal', () => {
  it('replays the snapshot, then the entries after it; an entry that no longer applies is counted', () => {
    const io = new FakeSite();
    const snap: ReplSnapshot = { log_id: 'log-9', seq: 4, time: 5, flows: new FakeSite().snapshotFlows(), more: false };
    snap.flows = [{ table: 0, priority: 1, cookie: '0x0', match: 'old', actions: 'drop', n_packets: 0, n_bytes: 0, duration_s: 0, idle_timeout: 0, hard_timeout: 0, flags: [] }];
    const e = (seq: number, op: ReplOp): ReplEntry => ({ seq, time: seq * 10, ...op }) as ReplEntry;
    const r = Writer.restore(io, snap, [e(3, add('skipped')), e(5, add('n5')), e(6, add('bad6')), e(7, del('old'))]);
    expect(r).toEqual({ log_id: 'log-9', applied_seq: 7, divergent: 1 });
    expect([...io.table]).toEqual(['n5']);
    expect(io.applyTimes).toEqual([50, 60, 70]);
  });
});
