/**
 * Replication of the logical flow table between the two sites: one writer, one follower,
 * one ordered log of operations.
 *
 * The rule that makes concurrent flow-mods converge: the site whose name sorts first is
 * the **writer** of the logical table; the other is the **follower**. Every flow-mod, at
 * either site, is sequenced by the writer: an operator's command at the follower is
 * forwarded to the writer (ForwardRequest) and answered from there. So there is one order
 * of operations, and both tables are the result of applying the same log in that order.
 * While the sites are not connected the writer goes on accepting commands (they are
 * replicated when the follower is back) and the follower refuses them with a message that
 * says why: it cannot sequence them, and accepting them would fork the table.
 *
 * The log: each operation (ReplEntry: the operator's flow-mods request as text, the
 * writer's wall clock when applied, a sequence number) is applied to the local table,
 * written to the local journal, and streamed to the follower, which applies it,
 * acknowledges it (ReplAck) and journals it. The writer answers the operator when the
 * entry is durable locally and, while a follower is connected, applied there (issue 5's
 * rule: "durable locally and applied at the peer"); the follower's own journal write is
 * off that path, so one disk write, not two in a row, sets a flow-mod's latency. An
 * operator's command at the follower is answered there once the entry is also durable in
 * the follower's journal. `barrier()` waits until everything submitted before it is
 * applied at both sites. A follower that crashes before its journal caught up resumes from
 * its last durable entry: the writer holds the rest (or resyncs it).
 *
 * Reconnection. The follower's hello carries its position: the log id (a random name of
 * the writer's log lineage, fixed when the writer's state directory is created) and its
 * last durable sequence number. The writer **resumes** when the id matches and it still
 * holds every entry after that number in its window; otherwise (another lineage, a gap
 * too large, a follower restarted empty) it **resyncs**: a snapshot of the table at
 * sequence S, in chunks, then every entry after S. That is LIME's iterative copy with no
 * need for a hold: commands that arrive while the snapshot is on its way are sequenced
 * after S and wait in the window, and the stream sends them, round after round, behind it;
 * the follower is "live" once it has caught up. A follower that falls further behind than
 * the window is disconnected and resyncs when it reconnects.
 *
 * Both sites restore from their journal the same way (`restore`): the snapshot, then the
 * entries after it, applied in order.
 *
 * Pure core: the table, the journal and the link are injected (ReplicaIo, ReplicaLink),
 * so the unit tests run both roles against each other in memory.
 */
import type {
  ErrorCode,
  FlowDiffReply,
  FlowEntry,
  FlowModsReply,
  ForwardReply,
  MigrationPhase,
  MoveHostReply,
  ForwardResult,
  PeerBody,
  PeerMessage,
  ReplEntry,
  ReplOp,
  ReplSnapshot,
} from '../proto/schema.js';
import { decodeReplEntry, encodeReplEntry, PROTOCOL_VERSION } from '../proto/schema.js';
import { packedCount } from '../flow/pack.js';

/** What applying an operation returned (the operator's reply). */
export type ReplResult =
  | { op: 'flow_mods'; flow_mods: FlowModsReply }
  | { op: 'replace_flows'; flow_diff: FlowDiffReply }
  | { op: 'move_host'; move_host: MoveHostReply }
  | { op: 'migration'; migration: MigrationPhase }
  | { op: 'archive'; archive: { applied: number } };

/** What a snapshot carries besides the flows: where the hosts are, and the migration under way. */
export type Locations = Pick<ReplSnapshot, 'hosts' | 'migration'>;

function locationsOf(s: ReplSnapshot): Locations {
  return s.migration !== undefined ? { hosts: s.hosts ?? [], migration: s.migration } : { hosts: s.hosts ?? [] };
}

/** An operation was refused: the operator sees `code` and `message`. */
export class ReplicationError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ReplicationError';
  }
}

export type ReplicaLogFn = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** The rest of the daemon, as replication sees it. */
export interface ReplicaIo {
  /** Apply an operation to the local table as of `time` (Unix ms). Throws when it is invalid (then nothing changed). */
  apply(op: ReplOp, time: number): ReplResult;
  /** The local table, for a snapshot (flows with their age in duration_s). */
  snapshotFlows(time: number): FlowEntry[];
  /**
   * The local table as of now, packed (flow/pack.ts) in chunks of at most `perChunk` flows,
   * each made when asked for (at least one), for a follower that takes packed snapshots
   * (optional: without it, snapshots go as text).
   */
  snapshotPacked?(time: number, perChunk: number): Iterator<Uint8Array>;
  /**
   * Replace the local table by a snapshot's flows (taken at `time`): `add` takes the flows
   * chunk by chunk as they arrive (checking and preparing them: the work is spread over the
   * chunks), `install` swaps the table. Both throw on a flow the local table rejects.
   */
  snapshotLoader(time: number): SnapshotLoader;
  /** Make an entry durable (the journal): `bytes` is its encoding (what the journal stores). */
  persist(seq: number, bytes: Uint8Array): Promise<void>;
  /** Make a snapshot durable and drop the journal's entries up to its seq. */
  persistSnapshot(snapshot: ReplSnapshot): Promise<void>;
  /** The location map and migration phase, for a snapshot (optional: a site without hosts has none). */
  snapshotLocations?(): Locations;
  /** Take a snapshot's location map and migration phase (after its flows are installed). */
  restoreLocations?(locations: Locations): void;
  /** Wall clock, Unix ms. */
  now(): number;
  log: ReplicaLogFn;
}

export interface SnapshotLoader {
  add(flows: readonly FlowEntry[]): void;
  /** A chunk of packed flows (flow/pack.ts). */
  addPacked(packed: Uint8Array): void;
  install(): void;
}

/** The connected peer, as replication sees it (a PeerSession of channel.ts). */
export interface ReplicaLink {
  /** False when the connection's send buffer is full: wait for `onDrain`. */
  send(message: PeerMessage): boolean;
  onDrain(callback: () => void): void;
  close(reason: string): void;
  /** The follower takes packed snapshots (its hello listed the capability). */
  packedSnapshots?: boolean;
}

/** Where a site's log stands: sent in its hello. */
export interface LogPosition {
  log_id: string;
  applied_seq: number;
}

export interface ReplicaOptions {
  /** Entries the writer keeps for a resuming follower (and a follower's catch-up backlog). */
  windowEntries?: number;
  /** Flows per snapshot chunk (each chunk must stay well under the message size bound). */
  snapshotChunkFlows?: number;
  /** Encoded bytes per `entries` message, and per piece of a larger entry. */
  bytesPerMessage?: number;
  /** Largest entry a follower accepts (its journal's record limit). */
  maxEntryBytes?: number;
}

/**
 * Entries the writer keeps for a resuming follower. Each costs about 2 KB of memory (the
 * entry and its encoding); a follower further behind resyncs from a snapshot instead,
 * which takes about a second for a 100k-flow table. The soak showed 200,000 (400 MB at
 * the writer) was a poor trade on a router.
 */
const DEFAULT_WINDOW = 20_000;
const DEFAULT_CHUNK_FLOWS = 1000;
/** Well under the channel's 1 MiB message bound. */
const DEFAULT_BYTES_PER_MESSAGE = 256 * 1024;
const DEFAULT_MAX_ENTRY_BYTES = 64 * 1024 * 1024;

const msg = (m: PeerBody): PeerMessage => ({ version: PROTOCOL_VERSION, ...m });

function resultToForward(r: ReplResult): ForwardResult {
  if (r.op === 'flow_mods') return { result: 'flow_mods', flow_mods: r.flow_mods };
  if (r.op === 'move_host') return { result: 'move_host', move_host: r.move_host };
  if (r.op === 'migration') return { result: 'migration', migration: r.migration };
  if (r.op === 'archive') return { result: 'archive', archive: r.archive };
  return { result: 'flow_diff', flow_diff: r.flow_diff };
}

function forwardToResult(r: Exclude<ForwardResult, { result: 'error' }>): ReplResult {
  if (r.result === 'flow_mods') return { op: 'flow_mods', flow_mods: r.flow_mods };
  if (r.result === 'move_host') return { op: 'move_host', move_host: r.move_host };
  if (r.result === 'migration') return { op: 'migration', migration: r.migration };
  if (r.result === 'archive') return { op: 'archive', archive: r.archive };
  return { op: 'replace_flows', flow_diff: r.flow_diff };
}

function opOf(e: ReplEntry): ReplOp {
  if (e.op === 'flow_mods') return { op: 'flow_mods', flow_mods: e.flow_mods };
  if (e.op === 'move_host') return { op: 'move_host', move_host: e.move_host };
  if (e.op === 'migration') return { op: 'migration', migration: e.migration };
  if (e.op === 'archive') return { op: 'archive', archive: e.archive };
  return { op: 'replace_flows', replace_flows: e.replace_flows };
}

/** Snapshot pieces made from `from`'s chunks one at a time, as the writer sends them. */
function* pieces<T>(from: Iterator<T>, wrap: (x: T) => SnapshotPiece): Generator<SnapshotPiece> {
  for (let n = from.next(); n.done !== true; n = from.next()) yield wrap(n.value);
}

/** A snapshot's flows in chunks of `size` (one empty chunk for no flows: a snapshot has at least one message). */
function* chunks<T>(xs: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < xs.length; i += size) yield xs.slice(i, i + size);
  if (xs.length === 0) yield [];
}

interface Waiter {
  seq: number;
  resolve: () => void;
}

/** State both roles share: the log position and restore from the journal. */
abstract class Replica {
  protected readonly io: ReplicaIo;
  protected logId: string;
  /** Highest sequence number applied here (and durable once `durable` reaches it). */
  protected lastSeq: number;
  protected durableSeq: number;
  protected link: ReplicaLink | undefined;
  /** Entries applied here whose apply threw (the table may differ from the writer's). */
  nDivergent = 0;

  constructor(io: ReplicaIo, position: LogPosition) {
    this.io = io;
    this.logId = position.log_id;
    this.lastSeq = position.applied_seq;
    this.durableSeq = position.applied_seq;
  }

  get position(): LogPosition {
    return { log_id: this.logId, applied_seq: this.durableSeq };
  }

  get connected(): boolean {
    return this.link !== undefined;
  }

  /**
   * Rebuild the table from the journal: the snapshot (if any), then the entries after it in
   * order. Returns the position reached. An entry that no longer applies (say a port it
   * names is gone from the config) is logged and counted, and the log goes on.
   */
  static restore(io: ReplicaIo, snapshot: ReplSnapshot | undefined, entries: readonly ReplEntry[]): LogPosition & { divergent: number } {
    let seq = 0;
    let divergent = 0;
    if (snapshot !== undefined) {
      const loader = io.snapshotLoader(snapshot.time);
      loader.add(snapshot.flows);
      for (const p of snapshot.packed ?? []) loader.addPacked(p);
      loader.install();
      io.restoreLocations?.(locationsOf(snapshot));
      seq = snapshot.seq;
    }
    for (const e of entries) {
      if (e.seq <= seq) continue;
      try {
        io.apply(opOf(e), e.time);
      } catch (err) {
        divergent++;
        io.log('error', 'journal entry no longer applies; the table may differ from the writer', { seq: e.seq, error: (err as Error).message });
      }
      seq = e.seq;
    }
    return { log_id: snapshot?.log_id ?? '', applied_seq: seq, divergent };
  }

  /** Apply an entry from the log (the follower, and the writer's own entries). */
  protected applyEntry(e: ReplEntry): ReplResult | undefined {
    try {
      return this.io.apply(opOf(e), e.time);
    } catch (err) {
      this.nDivergent++;
      this.io.log('error', 'replicated entry does not apply here; the tables may differ', { seq: e.seq, error: (err as Error).message });
      return undefined;
    }
  }

  protected protocolError(reason: string): void {
    this.io.log('warn', `replication: ${reason}; closing the peer connection`);
    this.link?.close(reason);
  }
}

// ---------------------------------------------------------------------------------------

/** One chunk of a resync snapshot: flows as text, or packed (flow/pack.ts). */
type SnapshotPiece = { flows: FlowEntry[]; packed?: undefined } | { flows?: undefined; packed: Uint8Array };

interface FollowerState {
  link: ReplicaLink;
  /** Next entry to send (resuming or catching up after a snapshot). */
  next: number;
  /**
   * Snapshot chunks still to send (a resync), before entries from `next`: made as they are
   * sent (packing overlaps the follower's unpacking); `snapshotNext` is the one to send next.
   */
  snapshot: Iterator<SnapshotPiece> | undefined;
  snapshotNext: SnapshotPiece | undefined;
  snapshotSeq: number;
  snapshotTime: number;
  /** The location map at snapshotSeq: sent with the first chunk. */
  snapshotLocations: Locations | undefined;
  acked: number;
  live: boolean;
  waitingDrain: boolean;
  /** Bytes of entry `next` already sent as parts (a large entry in progress). */
  partSent: number;
}

/** An entry of the writer's window, with its encoding (sent and journaled as is). */
interface WindowEntry {
  entry: ReplEntry;
  bytes: Uint8Array;
}

/** The writer: sequences every operation, keeps the window, feeds the follower. */
export class Writer extends Replica {
  private readonly window: WindowEntry[] = [];
  private readonly windowLimit: number;
  private readonly chunkFlows: number;
  private readonly bytesPerMessage: number;
  private follower: FollowerState | undefined;
  private ackWaiters: Waiter[] = [];
  private durableWaiters: Waiter[] = [];
  /** Serialises persist() so `durableSeq` advances in order. */
  private persistChain: Promise<void> = Promise.resolve();
  nResyncs = 0;
  nResumes = 0;
  /** Follower connections cut loose for falling more than the window behind. */
  nWindowCutoffs = 0;
  lastResyncAt: number | undefined;
  /** The journal failed: nothing more can be made durable, so nothing more is accepted. */
  private failed: Error | undefined;

  constructor(io: ReplicaIo, position: LogPosition, restored: readonly ReplEntry[] = [], opts: ReplicaOptions = {}) {
    super(io, position);
    this.windowLimit = opts.windowEntries ?? DEFAULT_WINDOW;
    this.chunkFlows = opts.snapshotChunkFlows ?? DEFAULT_CHUNK_FLOWS;
    this.bytesPerMessage = opts.bytesPerMessage ?? DEFAULT_BYTES_PER_MESSAGE;
    for (const e of restored) {
      if (e.seq > position.applied_seq - this.windowLimit) this.window.push({ entry: e, bytes: encodeReplEntry(e) });
    }
  }

  /** The first sequence number still in the window (lastSeq + 1 when empty). */
  private get windowStart(): number {
    return this.window.length > 0 ? this.window[0]!.entry.seq : this.lastSeq + 1;
  }

  /**
   * Apply, sequence, persist and replicate an operator's operation. Resolves when it is
   * durable here and, while a follower is connected, applied there. Throws (nothing
   * changed, nothing logged) when the operation is invalid.
   */
  async submit(op: ReplOp): Promise<{ seq: number; result: ReplResult }> {
    if (this.failed !== undefined) throw new ReplicationError('FAILED', `the local journal failed (${this.failed.message}); this site cannot make changes durable`);
    const time = this.io.now();
    const result = this.io.apply(op, time);
    const seq = await this.record(op, time);
    return { seq, result };
  }

  /**
   * An operation already applied here (the writer's own flow expiries): sequence, persist
   * and replicate it like any other. Resolves as submit() does.
   */
  async record(op: ReplOp, time: number = this.io.now()): Promise<number> {
    if (this.failed !== undefined) throw new ReplicationError('FAILED', `the local journal failed (${this.failed.message}); this site cannot make changes durable`);
    const entry = { seq: ++this.lastSeq, time, ...op } as ReplEntry;
    const item = { entry, bytes: encodeReplEntry(entry) };
    this.window.push(item);
    this.trimWindow();
    this.pump();
    const durable = this.persistInOrder(item);
    const acked = this.follower !== undefined ? this.waitAck(entry.seq) : Promise.resolve();
    await Promise.all([durable, acked]);
    return entry.seq;
  }

  /** Everything submitted so far is durable here and applied at the connected follower. */
  async barrier(): Promise<number> {
    const seq = this.lastSeq;
    await Promise.all([this.waitDurable(seq), this.follower !== undefined ? this.waitAck(seq) : Promise.resolve()]);
    return seq;
  }

  /** The follower connected (handshake done) with its position: resume or resync. */
  attach(link: ReplicaLink, peer: LogPosition): void {
    if (this.follower !== undefined) this.detach('replaced by a new connection');
    this.link = link;
    const resume = peer.log_id === this.logId && peer.applied_seq <= this.lastSeq && peer.applied_seq + 1 >= this.windowStart;
    const f: FollowerState = {
      link, next: peer.applied_seq + 1, snapshot: undefined, snapshotNext: undefined, snapshotSeq: 0, snapshotTime: 0, snapshotLocations: undefined,
      acked: resume ? peer.applied_seq : 0, live: false, waitingDrain: false, partSent: 0,
    };
    if (resume) {
      this.nResumes++;
      this.io.log('info', 'replication: follower resumes', { from_seq: peer.applied_seq, to_seq: this.lastSeq });
    } else {
      this.nResyncs++;
      this.lastResyncAt = this.io.now();
      const why =
        peer.log_id !== this.logId ? (peer.log_id === '' ? 'the follower has no log' : 'the follower holds another log') :
        peer.applied_seq > this.lastSeq ? `the follower is ahead (${peer.applied_seq} > ${this.lastSeq})` :
        `the gap is larger than the window (follower at ${peer.applied_seq}, window from ${this.windowStart})`;
      f.snapshotSeq = this.lastSeq;
      f.snapshotTime = this.io.now();
      f.snapshotLocations = this.io.snapshotLocations?.() ?? { hosts: [] };
      f.snapshot =
        link.packedSnapshots === true && this.io.snapshotPacked !== undefined
          ? pieces(this.io.snapshotPacked(f.snapshotTime, this.chunkFlows), (packed) => ({ packed }))
          : pieces(chunks(this.io.snapshotFlows(f.snapshotTime), this.chunkFlows), (flows) => ({ flows }));
      f.snapshotNext = f.snapshot.next().value as SnapshotPiece | undefined;
      f.next = this.lastSeq + 1;
      this.io.log('info', `replication: resync (${why}): snapshot at seq ${this.lastSeq}, then the entries after it`);
    }
    this.follower = f;
    link.onDrain(() => {
      if (this.follower !== f) return;
      f.waitingDrain = false;
      this.pump();
    });
    this.pump();
  }

  /** The connection is gone: operators no longer wait for the follower. */
  detach(reason: string): void {
    if (this.follower === undefined) return;
    this.io.log('info', `replication: follower detached (${reason})`);
    this.follower = undefined;
    this.link = undefined;
    const waiters = this.ackWaiters;
    this.ackWaiters = [];
    for (const w of waiters) w.resolve();
  }

  /** A replication message from the follower. */
  async receive(message: PeerMessage): Promise<void> {
    const f = this.follower;
    if (f === undefined) return;
    switch (message.body) {
      case 'ack': {
        const seq = message.ack.applied_seq;
        if (seq > this.lastSeq) return this.protocolError(`the follower acknowledged seq ${seq}, beyond the log's end (${this.lastSeq})`);
        if (seq > f.acked) {
          f.acked = seq;
          if (!f.live && f.snapshot === undefined && seq === this.lastSeq) {
            f.live = true;
            this.io.log('info', 'replication: follower is live', { seq });
          }
          this.releaseAcks(seq);
        }
        return;
      }
      case 'forward': {
        const { id, request } = message.forward;
        let reply: ForwardReply;
        try {
          if (request.op === undefined) throw new ReplicationError('BAD_REQUEST', 'forwarded request has no operation');
          const { seq, result } = await this.submit(opOf(request));
          reply = { id, seq, ...resultToForward(result) };
        } catch (err) {
          const code: ErrorCode = err instanceof ReplicationError ? err.code : ((err as { code?: ErrorCode }).code ?? 'FAILED');
          reply = { id, seq: 0, result: 'error', error: { code, message: (err as Error).message } };
        }
        if (this.follower === f) f.link.send(msg({ body: 'forward_reply', forward_reply: reply }));
        return;
      }
      case 'barrier': {
        const seq = await this.barrier();
        if (this.follower === f) f.link.send(msg({ body: 'barrier_reply', barrier_reply: { id: message.barrier.id, seq } }));
        return;
      }
      default:
        return this.protocolError(`unexpected ${message.body} from the follower`);
    }
  }

  status(): {
    role: 'writer'; seq: number; durable_seq: number; acked_seq: number | undefined; lag: number | undefined; lag_ms: number | undefined;
    live: boolean; resyncs: number; resumes: number; divergent: number; window_cutoffs: number;
  } {
    const f = this.follower;
    let lagMs: number | undefined;
    if (f !== undefined) {
      // Age of the oldest entry the follower has not acknowledged (0 when it has them all).
      const oldest = this.window[f.acked + 1 - this.windowStart];
      lagMs = oldest !== undefined ? Math.max(0, this.io.now() - oldest.entry.time) : 0;
    }
    return {
      role: 'writer', seq: this.lastSeq, durable_seq: this.durableSeq, acked_seq: f?.acked,
      lag: f !== undefined ? this.lastSeq - f.acked : undefined, lag_ms: lagMs, live: f?.live ?? false,
      resyncs: this.nResyncs, resumes: this.nResumes, divergent: this.nDivergent, window_cutoffs: this.nWindowCutoffs,
    };
  }

  /** Send what the follower needs next, until its connection's buffer is full. */
  private pump(): void {
    const f = this.follower;
    if (f === undefined || f.waitingDrain) return;
    while (f.snapshot !== undefined) {
      const piece = f.snapshotNext;
      const following = f.snapshot.next();
      const last = following.done === true;
      f.snapshotNext = last ? undefined : following.value;
      if (last) f.snapshot = undefined;
      if (piece === undefined) break;
      const locations = f.snapshotLocations ?? { hosts: [] };
      f.snapshotLocations = undefined; // with the first chunk only
      const snapshot = { log_id: this.logId, seq: f.snapshotSeq, time: f.snapshotTime, flows: piece.flows ?? [], packed: piece.packed !== undefined ? [piece.packed] : [], more: !last, ...locations };
      const ok = f.link.send(msg({ body: 'snapshot', snapshot }));
      if (!ok) {
        f.waitingDrain = true;
        return;
      }
    }
    while (f.next <= this.lastSeq) {
      const from = f.next - this.windowStart;
      if (from < 0) {
        // Trimmed while the follower was behind: it must resync.
        this.nWindowCutoffs++;
        this.protocolError(`the follower fell more than ${this.windowLimit} entries behind`);
        this.detach('fell behind the window');
        return;
      }
      const first = this.window[from]!;
      let ok: boolean;
      if (first.bytes.length > this.bytesPerMessage) {
        // A large entry: the next piece of it.
        const data = first.bytes.subarray(f.partSent, f.partSent + this.bytesPerMessage);
        ok = f.link.send(msg({ body: 'entry_part', entry_part: { seq: first.entry.seq, total: first.bytes.length, data } }));
        f.partSent += data.length;
        if (f.partSent === first.bytes.length) {
          f.partSent = 0;
          f.next++;
        }
      } else {
        // Small entries, as many as fit one message.
        const batch: Uint8Array[] = [];
        let bytes = 0;
        for (let i = from; i < this.window.length; i++) {
          const b = this.window[i]!.bytes;
          if (b.length > this.bytesPerMessage || (batch.length > 0 && bytes + b.length > this.bytesPerMessage)) break;
          batch.push(b);
          bytes += b.length;
        }
        f.next += batch.length;
        ok = f.link.send(msg({ body: 'entries', entries: { entries: batch } }));
      }
      if (!ok) {
        f.waitingDrain = true;
        return;
      }
    }
  }

  /** Keep at most windowLimit entries, but never drop what a connected follower still needs. */
  private trimWindow(): void {
    const excess = this.window.length - this.windowLimit;
    if (excess <= 0) return;
    const f = this.follower;
    if (f !== undefined && f.next - this.windowStart < excess) {
      // The follower would lose entries it has not been sent: cut it loose instead of
      // holding an unbounded backlog; it resyncs on reconnection.
      this.nWindowCutoffs++;
      this.protocolError(`the follower fell more than ${this.windowLimit} entries behind`);
      this.detach('fell behind the window');
    }
    this.window.splice(0, excess);
  }

  private persistInOrder(item: WindowEntry): Promise<void> {
    const seq = item.entry.seq;
    // Issued now, not after the previous write: the journal keeps call order and writes
    // the appends that queue behind an in-flight write together (group commit). The chain
    // only keeps `durableSeq` advancing in order.
    const write = this.io.persist(seq, item.bytes);
    write.catch(() => undefined); // observed through the chain below
    const p = this.persistChain.then(() => write);
    this.persistChain = p.then(
      () => {
        this.durableSeq = seq;
        this.releaseDurable(seq);
      },
      (err: Error) => {
        if (this.failed === undefined) this.io.log('error', `replication: the journal failed; refusing further changes (${err.message})`);
        this.failed = err;
      },
    );
    return p;
  }

  private waitAck(seq: number): Promise<void> {
    if (this.follower === undefined || this.follower.acked >= seq) return Promise.resolve();
    return new Promise((resolve) => this.ackWaiters.push({ seq, resolve }));
  }

  private waitDurable(seq: number): Promise<void> {
    if (this.durableSeq >= seq) return Promise.resolve();
    return new Promise((resolve) => this.durableWaiters.push({ seq, resolve }));
  }

  private releaseAcks(seq: number): void {
    this.ackWaiters = release(this.ackWaiters, seq);
  }

  private releaseDurable(seq: number): void {
    this.durableWaiters = release(this.durableWaiters, seq);
  }
}

function release<W extends Waiter>(waiters: W[], seq: number): W[] {
  if (waiters.length === 0) return waiters;
  const keep: W[] = [];
  for (const w of waiters) {
    if (w.seq <= seq) w.resolve();
    else keep.push(w);
  }
  return keep;
}

// ---------------------------------------------------------------------------------------

interface Pending<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

/** The follower: applies the writer's log in order, forwards operators' commands. */
export class Follower extends Replica {
  private readonly writerName: string;
  private nextId = 1;
  private readonly forwards = new Map<number, Pending<{ seq: number; result: ReplResult }>>();
  private readonly barriers = new Map<number, Pending<number>>();
  /** A resync snapshot being received. */
  private incoming: { logId: string; seq: number; time: number; flows: FlowEntry[]; packed: Uint8Array[]; nPacked: number; locations: Locations; loader: SnapshotLoader } | undefined;
  /** A large entry being received in parts. */
  private part: { seq: number; total: number; pieces: Uint8Array[]; received: number } | undefined;
  private readonly maxEntryBytes: number;
  private persistChain: Promise<void> = Promise.resolve();
  private durableWaiters: Array<Waiter & { reject: (err: Error) => void }> = [];
  /** Per snapshot still being written (journal resets), the appends waiting for it. */
  private readonly afterSnapshot: Array<Array<() => void>> = [];
  private ackScheduled = false;
  private failed = false;
  nResyncs = 0;
  lastResyncAt: number | undefined;

  constructor(io: ReplicaIo, position: LogPosition, writerName: string, opts: ReplicaOptions = {}) {
    super(io, position);
    this.writerName = writerName;
    this.maxEntryBytes = opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  }

  attach(link: ReplicaLink): void {
    this.link = link;
    this.incoming = undefined;
    this.part = undefined;
    link.onDrain(() => undefined);
  }

  detach(reason: string): void {
    if (this.link === undefined) return;
    this.link = undefined;
    this.incoming = undefined;
    this.part = undefined;
    const err = new ReplicationError('FAILED', `the connection to the writer site ${this.writerName} was lost (${reason}) before it answered; the operation may or may not have been applied: check with dump-flows`);
    for (const p of this.forwards.values()) p.reject(err);
    for (const p of this.barriers.values()) p.reject(err);
    this.forwards.clear();
    this.barriers.clear();
  }

  /**
   * An operator's operation at the follower: the writer sequences it. Answered once the
   * writer has it durable and applied here, and it is durable in this site's journal too.
   */
  submit(op: ReplOp): Promise<{ seq: number; result: ReplResult }> {
    const link = this.unavailable('flow-mods'); // throws now, not in the promise
    const id = this.nextId++;
    const forwarded = new Promise<{ seq: number; result: ReplResult }>((resolve, reject) => {
      this.forwards.set(id, { resolve, reject });
      link.send(msg({ body: 'forward', forward: { id, request: { seq: 0, time: 0, ...op } as ReplEntry } }));
    });
    return forwarded.then(async (done) => {
      await this.waitDurable(done.seq);
      return done;
    });
  }

  /** Resolves once every entry up to `seq` is in this site's journal; rejects if it failed. */
  private waitDurable(seq: number): Promise<void> {
    if (this.durableSeq >= seq) return Promise.resolve();
    if (this.failed) return Promise.reject(new ReplicationError('FAILED', 'the local journal failed; this site cannot make changes durable'));
    return new Promise((resolve, reject) => this.durableWaiters.push({ seq, resolve, reject }));
  }

  barrier(): Promise<number> {
    const link = this.unavailable('a barrier');
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.barriers.set(id, { resolve, reject });
      link.send(msg({ body: 'barrier', barrier: { id } }));
    });
  }

  private unavailable(what: string): ReplicaLink {
    if (this.link === undefined) {
      throw new ReplicationError(
        'FAILED',
        `the writer site ${this.writerName} is not connected: ${what} at this site go through it (it orders every change of the logical table); retry when the sites are connected`,
      );
    }
    if (this.failed) throw new ReplicationError('FAILED', 'the local journal failed; this site cannot make changes durable');
    return this.link;
  }

  async receive(message: PeerMessage): Promise<void> {
    switch (message.body) {
      case 'entries':
        return this.onEntries(message.entries.entries);
      case 'entry_part':
        return this.onEntryPart(message.entry_part);
      case 'snapshot':
        return this.onSnapshot(message.snapshot);
      case 'forward_reply': {
        const r = message.forward_reply;
        const p = this.forwards.get(r.id);
        if (p === undefined) return;
        this.forwards.delete(r.id);
        if (r.result === 'error') p.reject(new ReplicationError(r.error.code, r.error.message));
        else p.resolve({ seq: r.seq, result: forwardToResult(r) });
        return;
      }
      case 'barrier_reply': {
        const p = this.barriers.get(message.barrier_reply.id);
        if (p === undefined) return;
        this.barriers.delete(message.barrier_reply.id);
        p.resolve(message.barrier_reply.seq);
        return;
      }
      default:
        return this.protocolError(`unexpected ${message.body} from the writer`);
    }
  }

  status(): { role: 'follower'; seq: number; durable_seq: number; resyncs: number; resumes: number; divergent: number; lag: undefined; lag_ms: undefined; window_cutoffs: 0 } {
    return { role: 'follower', seq: this.lastSeq, durable_seq: this.durableSeq, resyncs: this.nResyncs, resumes: 0, divergent: this.nDivergent, lag: undefined, lag_ms: undefined, window_cutoffs: 0 };
  }

  private onEntries(encoded: readonly Uint8Array[]): void {
    if (this.incoming !== undefined || this.part !== undefined) return this.protocolError('entries arrived in the middle of a snapshot or of a large entry');
    for (const bytes of encoded) if (!this.onEntry(bytes)) return;
  }

  private onEntryPart(p: { seq: number; total: number; data: Uint8Array }): void {
    if (this.incoming !== undefined) return this.protocolError('an entry part arrived in the middle of a snapshot');
    if (this.part === undefined) {
      if (p.total > this.maxEntryBytes) return this.protocolError(`entry ${p.seq} of ${p.total} bytes exceeds the ${this.maxEntryBytes}-byte limit`);
      this.part = { seq: p.seq, total: p.total, pieces: [], received: 0 };
    } else if (this.part.seq !== p.seq || this.part.total !== p.total) {
      return this.protocolError(`a part of entry ${p.seq} arrived in the middle of entry ${this.part.seq}`);
    }
    const part = this.part;
    if (part.received + p.data.length > part.total) return this.protocolError(`entry ${p.seq}: more bytes than announced (${part.total})`);
    part.pieces.push(Uint8Array.from(p.data)); // the message buffer is not ours to keep
    part.received += p.data.length;
    if (part.received < part.total) return;
    this.part = undefined;
    this.onEntry(Buffer.concat(part.pieces));
  }

  /** One encoded entry from the writer: apply in order, persist the same bytes. False after a protocol error. */
  private onEntry(bytes: Uint8Array): boolean {
    let e: ReturnType<typeof decodeReplEntry>;
    try {
      e = decodeReplEntry(bytes);
    } catch (err) {
      this.protocolError(`an entry does not decode: ${(err as Error).message}`);
      return false;
    }
    if (e.op === undefined) {
      this.protocolError(`entry ${e.seq} holds an operation this limed does not know`);
      return false;
    }
    // Applied before the connection dropped but not yet durable when the hello told the
    // writer where to resume: the same entries again.
    if (e.seq <= this.lastSeq) return true;
    if (e.seq !== this.lastSeq + 1) {
      this.protocolError(`entry seq ${e.seq} does not follow ${this.lastSeq}`);
      return false;
    }
    this.applyEntry(e);
    this.lastSeq = e.seq;
    this.scheduleAck(); // applied: the writer may answer its operator
    // Appends are issued at once (the journal copies the bytes, keeps call order and writes
    // what queues behind an in-flight write together), except behind a snapshot still being
    // written (a journal reset refuses to run with appends waiting): those are issued, in
    // order, the moment it is done.
    const waitFor = this.afterSnapshot.at(-1);
    let write: Promise<void>;
    if (waitFor === undefined) {
      write = this.io.persist(e.seq, bytes);
    } else {
      const copy = Uint8Array.from(bytes);
      write = new Promise<void>((resolve, reject) => waitFor.push(() => this.io.persist(e.seq, copy).then(resolve, reject)));
    }
    write.catch(() => undefined); // observed through the chain
    this.persistInOrder(() => write, e.seq);
    return true;
  }

  private onSnapshot(s: ReplSnapshot): void {
    if (this.incoming === undefined) {
      this.incoming = { logId: s.log_id, seq: s.seq, time: s.time, flows: [], packed: [], nPacked: 0, locations: locationsOf(s), loader: this.io.snapshotLoader(s.time) };
      this.io.log('info', `replication: receiving a snapshot of the writer's table at seq ${s.seq}`);
    } else if (this.incoming.logId !== s.log_id || this.incoming.seq !== s.seq) {
      return this.protocolError('a snapshot chunk of another snapshot arrived');
    }
    const snap = this.incoming;
    for (const f of s.flows) snap.flows.push(f);
    if (!s.more) this.incoming = undefined;
    try {
      snap.loader.add(s.flows);
      for (const p of s.packed ?? []) {
        snap.loader.addPacked(p);
        snap.packed.push(Uint8Array.from(p)); // journaled after this turn: our own copy
        snap.nPacked += packedCount(p);
      }
    } catch (err) {
      this.incoming = undefined; // nothing installed: the table is as it was
      throw err;
    }
    if (s.more) return;
    snap.loader.install();
    this.io.restoreLocations?.(snap.locations);
    this.logId = snap.logId;
    this.lastSeq = snap.seq;
    this.nResyncs++;
    this.lastResyncAt = this.io.now();
    this.io.log('info', `replication: snapshot loaded (${snap.flows.length + snap.nPacked} flows${snap.packed.length > 0 ? ', packed' : ''}, seq ${snap.seq})`);
    this.scheduleAck();
    // Written once every earlier append is durable (a reset refuses to run with appends
    // waiting); entries that arrive meanwhile wait in `queue` (see onEntry).
    const queue: Array<() => void> = [];
    this.afterSnapshot.push(queue);
    const release = (): void => {
      this.afterSnapshot.splice(this.afterSnapshot.indexOf(queue), 1);
      for (const issue of queue) issue();
    };
    const snapshot: ReplSnapshot = { log_id: snap.logId, seq: snap.seq, time: snap.time, flows: snap.flows, packed: snap.packed, more: false, ...snap.locations };
    this.persistInOrder(() => this.io.persistSnapshot(snapshot).finally(release), snap.seq);
  }

  /** Persist in log order; the position (what a reconnect resumes from) is the durable seq. */
  private persistInOrder(write: () => Promise<void>, seq: number): void {
    this.persistChain = this.persistChain.then(write).then(
      () => {
        this.durableSeq = seq;
        this.durableWaiters = release(this.durableWaiters, seq);
      },
      (err: Error) => {
        if (!this.failed) this.io.log('error', `replication: the journal failed; no more acknowledgements (${err.message})`);
        this.failed = true;
        const failed = new ReplicationError('FAILED', `the local journal failed (${err.message}); this site cannot make changes durable`);
        for (const w of this.durableWaiters.splice(0)) w.reject(failed);
        this.link?.close('the follower journal failed');
      },
    );
  }

  /** Acknowledge the highest applied seq once per turn of the loop (not per entry). */
  private scheduleAck(): void {
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    queueMicrotask(() => {
      this.ackScheduled = false;
      if (this.failed) return;
      this.link?.send(msg({ body: 'ack', ack: { applied_seq: this.lastSeq, durable_seq: this.durableSeq } }));
    });
  }
}
