/**
 * Peering: the daemon's side of issue 5 — the local journal, the replication role and the
 * control channel to the peer site, wired to the flow service.
 *
 * Durability: with a state directory (config `state_dir`, or the default one when a peer
 * is configured) every change of the flow table is an entry of the replicated log
 * (sync/replication.ts), journaled (sync/journal.ts: checksummed records, fsync before the
 * operator's answer) and replayed at start: `kill -9` at any moment loses nothing that was
 * acknowledged. Without a state directory and without a peer, flows live in memory only,
 * as before.
 *
 * Roles: the site whose name sorts first is the writer (it listens for the peer); the
 * other is the follower (it dials). A site without a peer is a writer with no follower.
 *
 * Clocks: an entry carries the writer's wall clock (Unix ms); the flow table runs on the
 * data path's clock. `tableTime` converts, so a hard timeout has the same deadline at both
 * sites (to within their wall clocks' agreement, which NTP keeps to milliseconds).
 *
 * Compaction: once the journal holds `limits.journal_compact_entries` records (config;
 * 50,000 by default) and everything applied is durable, the table is written as the new
 * snapshot and the journal restarts. So the journal stays near that many records, at
 * either role (a follower's journal grows by the writer's entries, not by its own
 * submits); compactions are counted (`limectl peer status`).
 *
 * The writer keeps the last `limits.replication_window_entries` entries (its window) for
 * a follower that resumes or catches up; a connected follower further behind is cut loose
 * (counted: window_cutoffs) and resyncs when it reconnects (sync/replication.ts).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Journal } from '../sync/journal.js';
import { Follower, ReplicationError, Writer, type Locations, type LogPosition, type ReplicaIo, type ReplicaLink, type ReplicaOptions, type ReplResult } from '../sync/replication.js';
import { PeerChannel, type PeerSession } from '../sync/channel.js';
import {
  decodeReplEntry,
  decodeReplSnapshot,
  encodeReplSnapshot,
  PROTOCOL_VERSION,
  type DumpFlowsRequest,
  type FlowEntry,
  type MgmtEvent,
  type PeerMessage,
  type PeerShowReply,
  type ReplEntry,
  type ReplOp,
  type ReplSnapshot,
  type SyncBarrierReply,
} from '../proto/schema.js';
import { parseHostPort } from '../util/addr.js';
import type { Config } from './config.js';
import { DEFAULT_LIMITS, DEFAULT_STATE_DIR } from './config.js';
import type { FlowService, SnapshotLoader } from './flows.js';
import { PACKED_CAPABILITY } from '../flow/pack.js';
import type { Logger } from './log.js';
import type { Migration } from './migration.js';

/** How long a flow-stats query to the peer may take. */
const QUERY_TIMEOUT_MS = 10_000;
/** Flows per flow-stats reply message (well under the 1 MiB message bound). */
const STATS_CHUNK = 1000;
/** How often the follower reports its use of idle-timeout flows: the resolution of logical idle timeouts. */
const IDLE_REPORT_MS = 1000;
/** Transit and timer slack on top of the report interval. */
const IDLE_REPORT_SLACK_MS = 500;

export const CAPABILITIES = ['flows/v1', PACKED_CAPABILITY];


/** The state directory limed uses for this config, or undefined (no journal). */
export function stateDirOf(config: Config): string | undefined {
  return config.state_dir ?? (config.peer !== undefined ? DEFAULT_STATE_DIR : undefined);
}

/** The replication options this config asks for (limits.replication_window_entries). */
export function replicaOptions(config: Config): ReplicaOptions {
  return { windowEntries: config.limits?.replication_window_entries ?? DEFAULT_LIMITS.replication_window_entries };
}

export class Peering {
  private readonly replica: Writer | Follower;
  private channel: PeerChannel | undefined;
  private session: PeerSession | undefined;
  private compacting = false;
  /** Journal records that start a compaction (limits.journal_compact_entries). */
  private readonly compactEvery: number;
  /** Compactions done since start. */
  private compactions = 0;
  private stopped = false;
  private nextQueryId = 1;
  private usageTimer: NodeJS.Timeout | undefined;
  private readonly queries = new Map<number, { flows: FlowEntry[]; resolve: (f: FlowEntry[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  private constructor(
    private readonly config: Config,
    private readonly flows: FlowService,
    private readonly tableNow: () => number,
    private readonly io: DaemonReplicaIo,
    private readonly journal: Journal,
    readonly stateDir: string,
    position: LogPosition,
    restored: readonly ReplEntry[],
  ) {
    const peer = config.peer;
    const opts = replicaOptions(config);
    this.replica = peer === undefined || config.site < peer.name ? new Writer(io, position, restored, opts) : new Follower(io, position, peer.name, opts);
    this.compactEvery = config.limits?.journal_compact_entries ?? DEFAULT_LIMITS.journal_compact_entries;
    // Entries become durable after the request or message that brought them was handled
    // (a follower's, the writer's own expiries): look again once they are (coalesced,
    // after the replica's bookkeeping).
    let scheduled = false;
    io.afterPersist = () => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        this.maybeCompact();
      });
    };
  }

  /** Open the journal, restore the table from it, and choose the role. */
  static async open(config: Config, flows: FlowService, tableNow: () => number, log: Logger, migration?: Migration): Promise<Peering> {
    const dir = stateDirOf(config)!;
    const journal = await Journal.open(dir);
    const io = new DaemonReplicaIo(flows, tableNow, journal, log, migration, config.site);
    if (journal.recovery.truncatedBytes > 0) {
      log.warn({ journal: journal.path, offset: journal.recovery.offset, bytes: journal.recovery.truncatedBytes, reason: journal.recovery.reason }, 'discarded a torn or corrupt tail of the journal (never acknowledged)');
    }
    const snapshot = journal.snapshot !== undefined ? decodeReplSnapshot(journal.snapshot.data) : undefined;
    const entries: ReplEntry[] = [];
    for (const r of journal.records) {
      const e = decodeReplEntry(r.data);
      if (e.op === undefined) throw new Error(`journal ${journal.path}: entry ${r.seq} holds an operation this limed does not know (written by a newer version?)`);
      entries.push(e);
    }
    const restored = Writer.restore(io, snapshot, entries);
    let position: LogPosition = { log_id: restored.log_id, applied_seq: restored.applied_seq };
    const isWriter = config.peer === undefined || config.site < config.peer.name;
    if (position.log_id === '' && isWriter) {
      // A new log: name its lineage and make the (empty) start durable.
      position = { log_id: randomUUID(), applied_seq: restored.applied_seq };
      await journal.compact(journal.lastSeq, encodeReplSnapshot({ log_id: position.log_id, seq: journal.lastSeq, time: Date.now(), flows: io.snapshotFlows(Date.now()), more: false, ...io.snapshotLocations() }));
    }
    log.info({ state_dir: dir, log_id: position.log_id, seq: position.applied_seq, entries: entries.length, divergent: restored.divergent }, 'flow table restored from the journal');
    return new Peering(config, flows, tableNow, io, journal, dir, position, entries);
  }

  /** Start the control channel (when a peer is configured). */
  async start(log: Logger): Promise<void> {
    this.takeRole(log);
    const peer = this.config.peer;
    if (peer === undefined) return;
    const tls = this.config.tls;
    const listen = this.config.listen !== undefined ? parseHostPort(this.config.listen) : undefined;
    const isWriter = this.replica instanceof Writer;
    this.channel = new PeerChannel({
      site: this.config.site,
      peerName: peer.name,
      ...(isWriter && listen !== undefined ? { listen } : {}),
      ...(!isWriter ? { dial: parseHostPort(peer.address)! } : {}),
      ...(tls !== undefined ? { tls: { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) } } : { insecure: true }),
      deadPeerMs: peer.dead_peer_ms,
      capabilities: CAPABILITIES,
      position: () => this.replica.position,
      log: (level, msg, fields) => log[level](fields ?? {}, msg),
    });
    this.channel.on('up', (session: PeerSession) => this.onUp(session));
    this.channel.on('down', (session: PeerSession, reason: string) => this.onDown(session, reason));
    this.channel.on('message', (session: PeerSession, message: PeerMessage) => {
      if (session !== this.session) return;
      if (message.body === 'flow_stats' || message.body === 'flow_stats_reply') return this.onQuery(session, message);
      if (message.body === 'event') return this.flows.publish(message.event);
      if (message.body === 'idle_usage') {
        if (this.replica instanceof Writer) this.flows.touchFromPeer(message.idle_usage.flows);
        return;
      }
      this.replica.receive(message).then(
        () => this.maybeCompact(),
        (err: Error) => {
          // A bug, not bad input (the replica answers bad input itself): never crash the
          // data path for it; drop the connection, which resumes or resyncs.
          log.error({ err: err.message, body: message.body }, 'replication failed on a peer message; closing the connection');
          session.close(`internal error: ${err.message}`);
        },
      );
    });
    await this.channel.start();
  }

  /**
   * The flow service's part in the logical table (flows.ts PeerRole): the writer decides
   * idle expiry with the follower's usage and journals and replicates every expiry; the
   * follower leaves idle expiry and flow-removed events to the writer and reports its usage.
   */
  private takeRole(log: Logger): void {
    const forward = (event: MgmtEvent): void => {
      this.session?.send({ version: PROTOCOL_VERSION, body: 'event', event });
    };
    const replica = this.replica;
    if (replica instanceof Writer) {
      // A move of a host away from here takes effect in the data path once the follower
      // has applied it (daemon/migration.ts). apply() runs inside submit() before the
      // entry is sequenced, so the barrier is taken a microtask later, past this entry.
      this.io.afterPeerApplied = () => (this.session === undefined ? Promise.resolve() : Promise.resolve().then(() => replica.barrier()));
      this.flows.setPeerRole({
        expireIdle: true,
        // The follower reports its use once a second: an idle deadline is final only once
        // the report that could move it has had time to arrive.
        ...(this.config.peer !== undefined ? { idleGraceMs: IDLE_REPORT_MS + IDLE_REPORT_SLACK_MS } : {}),
        localFlowRemoved: true,
        forward,
        onExpired: (removed) => {
          const flows = removed.map((ev) => this.flows.strictText(ev.rule));
          const op: ReplOp = { op: 'flow_mods', flow_mods: { command: 'DELETE_STRICT', text: { flows, lines: [], source: 'expiry', more: false } } };
          replica.record(op).catch((err: Error) => log.error({ err: err.message }, 'could not journal a flow expiry'));
        },
      });
      return;
    }
    this.flows.setPeerRole({ expireIdle: false, localFlowRemoved: false, forward });
    let mark = this.tableNow();
    this.usageTimer = setInterval(() => {
      const now = this.tableNow();
      const flows = this.flows.idleUsage(mark, now);
      mark = now;
      if (flows.length > 0) this.session?.send({ version: PROTOCOL_VERSION, body: 'idle_usage', idle_usage: { flows } });
    }, IDLE_REPORT_MS);
    this.usageTimer.unref();
  }

  private onUp(session: PeerSession): void {
    this.session = session;
    const link: ReplicaLink = {
      send: (m) => session.send(m),
      onDrain: (cb) => session.on('drain', cb),
      close: (reason) => session.close(reason),
      packedSnapshots: session.capabilities.includes(PACKED_CAPABILITY),
    };
    if (this.replica instanceof Writer) this.replica.attach(link, session.peerPosition);
    else this.replica.attach(link);
  }

  private onDown(session: PeerSession, reason: string): void {
    if (session !== this.session) return;
    this.session = undefined;
    this.replica.detach(reason);
    const err = new ReplicationError('FAILED', `the connection to the peer site was lost (${reason}) before it answered`);
    for (const q of this.queries.values()) {
      clearTimeout(q.timer);
      q.reject(err);
    }
    this.queries.clear();
  }

  /** The peer site's flows with its counters (its physical table). */
  peerFlows(request: DumpFlowsRequest): Promise<FlowEntry[]> {
    const session = this.session;
    if (session === undefined) {
      return Promise.reject(new ReplicationError('FAILED', `the peer site ${this.config.peer?.name ?? ''} is not connected`));
    }
    const id = this.nextQueryId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.queries.delete(id);
        reject(new ReplicationError('FAILED', `the peer site did not send its flows within ${QUERY_TIMEOUT_MS} ms`));
      }, QUERY_TIMEOUT_MS);
      this.queries.set(id, { flows: [], resolve, reject, timer });
      session.send({ version: PROTOCOL_VERSION, body: 'flow_stats', flow_stats: { id, request: { match: request.match, strict: request.strict } } });
    });
  }

  /** Is a peer configured and connected (so that a logical dump can sum both sites)? */
  get peerConnected(): boolean {
    return this.session !== undefined;
  }

  get hasPeer(): boolean {
    return this.config.peer !== undefined;
  }

  /** A flow-stats query from the peer, or a reply to ours. */
  private onQuery(session: PeerSession, message: PeerMessage): void {
    if (message.body === 'flow_stats') {
      const { id, request } = message.flow_stats;
      let flows: FlowEntry[];
      try {
        flows = this.flows.dumpFlows({ match: request.match, strict: request.strict });
      } catch (err) {
        session.send({ version: PROTOCOL_VERSION, body: 'flow_stats_reply', flow_stats_reply: { id, flows: [], more: false, error: (err as Error).message } });
        return;
      }
      for (let i = 0; i === 0 || i < flows.length; i += STATS_CHUNK) {
        const part = flows.slice(i, i + STATS_CHUNK);
        session.send({ version: PROTOCOL_VERSION, body: 'flow_stats_reply', flow_stats_reply: { id, flows: part, more: i + STATS_CHUNK < flows.length, error: '' } });
      }
      return;
    }
    if (message.body !== 'flow_stats_reply') return;
    const r = message.flow_stats_reply;
    const q = this.queries.get(r.id);
    if (q === undefined) return;
    if (r.error !== '') {
      this.queries.delete(r.id);
      clearTimeout(q.timer);
      q.reject(new ReplicationError('BAD_REQUEST', `the peer site refused: ${r.error}`));
      return;
    }
    for (const f of r.flows) q.flows.push(f);
    if (r.more) return;
    this.queries.delete(r.id);
    clearTimeout(q.timer);
    q.resolve(q.flows);
  }

  /** An operator's flow-mods / replace-flows: sequenced by the writer, durable, replicated. */
  async submit(op: ReplOp): Promise<ReplResult> {
    return (await this.submitSequenced(op)).result;
  }

  /** submit(), with the sequence number the writer gave the entry. */
  async submitSequenced(op: ReplOp): Promise<{ seq: number; result: ReplResult }> {
    const r = await this.replica.submit(op);
    this.maybeCompact();
    return r;
  }

  barrier(): Promise<number> {
    return this.replica.barrier();
  }

  status(): PeerShowReply {
    const s = this.replica.status();
    const session = this.session;
    const reply: PeerShowReply = {
      configured: true,
      role: s.role,
      site: this.config.site,
      peer: this.config.peer?.name ?? '',
      connected: session !== undefined,
      tls_identity: session?.tlsIdentity ?? '',
      remote_address: session?.remoteAddress ?? '',
      seq: s.seq,
      durable_seq: s.durable_seq,
      resyncs: s.resyncs,
      resumes: s.resumes,
      log_id: this.replica.position.log_id,
      state_dir: this.stateDir,
      divergent: s.divergent,
      journal_bytes: this.journal.sizeBytes,
      compactions: this.compactions,
      window_cutoffs: s.window_cutoffs,
    };
    if (session?.rttMs !== undefined) reply.rtt_ms = session.rttMs;
    if (s.role === 'writer' && s.lag !== undefined) reply.lag_entries = s.lag;
    if (s.role === 'writer' && s.lag_ms !== undefined) reply.lag_ms = s.lag_ms;
    if (this.replica.lastResyncAt !== undefined) reply.last_resync_at = this.replica.lastResyncAt / 1000;
    return reply;
  }

  /** Everything before it applied at both sites; `peered` false when no peer is connected. */
  async syncBarrier(): Promise<SyncBarrierReply> {
    const peered = this.session !== undefined;
    return { seq: await this.replica.barrier(), peered };
  }

  /** Snapshot the table into the journal once it holds enough records and all are durable. */
  private maybeCompact(): void {
    if (this.stopped || this.compacting || this.journal.stats.records < this.compactEvery) return;
    const pos = this.replica.position;
    if (pos.applied_seq !== this.replica.status().seq) return;
    this.compacting = true;
    const now = Date.now();
    const snap: ReplSnapshot = { log_id: pos.log_id, seq: pos.applied_seq, time: now, flows: this.io.snapshotFlows(now), more: false, ...this.io.snapshotLocations() };
    this.journal
      .compact(snap.seq, encodeReplSnapshot(snap))
      .then(() => {
        this.compactions++;
      })
      .catch((err: Error) => this.io.log('error', `journal compaction failed: ${err.message}`))
      .finally(() => {
        this.compacting = false;
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.usageTimer !== undefined) clearInterval(this.usageTimer);
    this.flows.setPeerRole(undefined);
    await this.channel?.close();
    await this.journal.close().catch(() => undefined);
  }
}

/** ReplicaIo over the flow service and the journal. */
class DaemonReplicaIo implements ReplicaIo {
  /** Set at the writer: resolves once the follower has applied the entry being submitted. */
  afterPeerApplied: (() => Promise<unknown>) | undefined;
  /** Called when an entry is durable (Peering checks for compaction). */
  afterPersist: (() => void) | undefined;

  constructor(
    private readonly flows: FlowService,
    private readonly tableNow: () => number,
    private readonly journal: Journal,
    private readonly logger: Logger,
    private readonly migration: Migration | undefined,
    private readonly site: string,
  ) {}

  /** A wall-clock time (Unix ms) on the flow table's clock. */
  private tableTime(wall: number): number {
    return this.tableNow() - (Date.now() - wall);
  }

  apply(op: ReplOp, time: number): ReplResult {
    const at = this.tableTime(time);
    if (op.op === 'flow_mods') return { op: 'flow_mods', flow_mods: this.flows.flowMods(op.flow_mods, at) };
    if (op.op === 'move_host') {
      if (this.migration === undefined) throw new ReplicationError('BAD_REQUEST', `move of host ${op.move_host.host}: this site declares no hosts`);
      return { op: 'move_host', move_host: this.migration.apply(op.move_host, this.afterPeerApplied) };
    }
    if (op.op === 'archive') {
      const from = op.archive.from;
      return { op: 'archive', archive: { applied: this.flows.moveCounters(op.archive.flows, from === this.site ? -1 : 1) } };
    }
    if (op.op === 'migration') {
      if (this.migration === undefined) throw new ReplicationError('BAD_REQUEST', 'migration: this site declares no hosts');
      return { op: 'migration', migration: this.migration.applyPhase(op.migration) };
    }
    return { op: 'replace_flows', flow_diff: this.flows.replaceFlows(op.replace_flows, at) };
  }

  snapshotLocations(): Locations {
    return this.migration?.snapshotLocations() ?? { hosts: [] };
  }

  restoreLocations(locations: Locations): void {
    this.migration?.restoreLocations(locations);
  }

  snapshotFlows(_time?: number): ReturnType<FlowService["dumpFlows"]> {
    return this.flows.dumpFlows({ match: '', strict: false });
  }

  snapshotPacked(time: number, perChunk: number): Iterator<Uint8Array> {
    return this.flows.snapshotPacked(this.tableTime(time), perChunk);
  }

  snapshotLoader(time: number): SnapshotLoader {
    return this.flows.snapshotLoader(this.tableTime(time));
  }

  persist(seq: number, bytes: Uint8Array): Promise<void> {
    const done = this.journal.append(seq, bytes);
    const after = this.afterPersist;
    if (after !== undefined) done.then(after, () => undefined);
    return done;
  }

  persistSnapshot(snapshot: ReplSnapshot): Promise<void> {
    return this.journal.reset(snapshot.seq, encodeReplSnapshot(snapshot));
  }

  now(): number {
    return Date.now();
  }

  log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void => {
    this.logger[level](fields ?? {}, msg);
  };
}
