/**
 * FlowService: the daemon's owner of the flow table — flow-mods from ovs-ofctl text, the
 * expiry timer, and the event fan-out to `limectl monitor` streams.
 *
 * What it owns: the FlowTable (table/flow-table.ts, pure) and the port-name resolver the
 * text is parsed with (the daemon's ports: "in_port=vm1" resolves to vm1's number, and an
 * unknown name is the same column-pointing FlowSyntaxError limectl shows for bad syntax).
 * It does not own the data path: the switch reads the table through TableView, and hands
 * packet-ins to `onPacketIn`; `trace` and `packetOut` go to the switch through the narrow
 * FlowDatapath interface (given late, as the switch is built with this table).
 *
 * Flow-mods: every request is parsed completely first (any bad flow → ManagementError
 * BAD_REQUEST naming the source line and column, with a caret line), then applied with one
 * `FlowTable.apply()`, which is all or none — so a rejected add-flows / replace-flows leaves
 * the table exactly as it was.
 *
 * Timeouts: one timer, set for `nextExpiry()` (clamped to 5 ms … 1 s, so the sweep runs at
 * least once a second even when idle deadlines move with traffic) and re-armed after every
 * sweep and every flow-mod; flows expire to within a few milliseconds of their deadline.
 *
 * Events (MgmtEvent, lime.proto), to every monitor, in the order they happened:
 *   added / modified / deleted — every change of the table, whatever made it (flow-mod,
 *     replace-flows, timeout), like `ovs-ofctl monitor` with its default full monitoring;
 *     an add that replaces an identical flow is `modified` (as OVS reports it);
 *   flow_removed — the OpenFlow flow-removed message, only for flows with send_flow_rem,
 *     right after their `deleted`, with the reason and the final counters;
 *   packet_in — from CONTROLLER actions: the frame copied and truncated to max_len. The
 *     switch's token bucket (config packet_in.rate/burst, one per daemon) has already
 *     dropped and counted (`packet_in_rate`) what exceeds the rate.
 * Events are queued and handed to the sinks in a microtask, so the data path never waits
 * on a monitor socket (the server bounds each connection's backlog).
 */
import { FlowSyntaxError, parseActions, parseFlow, parseFlowMod, parsePacket } from '../flow/parse.js';
import { formatActions, formatFlow, formatMatch } from '../flow/print.js';
import { FlowPackError, forEachPackedFlow, packFlows } from '../flow/pack.js';
import { DEFAULT_PRIORITY, OFPP, type Action, type FlowMod, type FlowSpec, type PortNames } from '../flow/types.js';
import { FlowModError, FlowTable, type ApplyResult } from '../table/flow-table.js';
import type { FlowRemovedEvent, Rule } from '../table/types.js';
import type { PacketInHook } from '../datapath/execute.js';
import type { TraceResult } from '../datapath/pipeline.js';
import {
  ManagementError,
  type DumpFlowsRequest,
  type FlowDiffReply,
  type FlowEntry,
  type FlowModsReply,
  type FlowModsRequest,
  type MgmtEvent,
  type PacketOutRequest,
  type ReplaceFlowsRequest,
  type TraceReply,
} from '../mgmt/service.js';
import type { FlowText, TraceStep } from '../proto/schema.js';
import { LogLimiter, withSuppressed } from '../util/log-limiter.js';

/** What the flow service needs of the switch (datapath/switch.ts satisfies it). */
export interface FlowDatapath {
  packetOut(frame: Uint8Array, inPort: number, actions: Action[]): void;
  trace(key: Uint32Array): TraceResult;
}

export type FlowLogFn = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface FlowComponents {
  /** The data path's clock (ms): batches are stamped with it, the table ages by it. */
  now: () => number;
  /** Wall clock (ms) for event time stamps. Default Date.now. */
  wallNow?: () => number;
  /** The daemon's ports, by name and number. */
  ports: PortNames;
  /** The switch, once built (trace and packet-out need it). */
  datapath?: () => FlowDatapath | undefined;
  log?: FlowLogFn;
  /** Bring the rules' counters up to date before they are read (the native fast path counts on their behalf). */
  syncCounters?: () => void;
}

export interface FlowServiceOptions {
  /** What the default table-miss rule (table 0, priority 0, match all) does. */
  tableMiss: 'normal' | 'drop';
}

/**
 * How a peered site's flow service takes part in the logical table (daemon/peering.ts):
 * - the writer expires idle flows knowing both sites' use (`touchFromPeer`), and hands
 *   every expiry to `onExpired` so that it is replicated (the follower removes the flow
 *   too, and a restart replays it);
 * - the follower leaves idle timeouts to the writer (`expireIdle: false`) and emits no
 *   flow_removed of its own (`localFlowRemoved: false`): the writer's reach its monitors
 *   through `publish`, so each is seen once at either site;
 * - both hand their flow_removed and packet_in events to `forward`, for the peer's monitors.
 */
export interface PeerRole {
  expireIdle: boolean;
  /** The writer waits this long past an idle deadline for the follower's usage report. */
  idleGraceMs?: number;
  localFlowRemoved: boolean;
  onExpired?: (removed: readonly FlowRemovedEvent[]) => void;
  forward?: (event: MgmtEvent) => void;
}

/** A snapshot being loaded: chunks parsed as they come, then installed at once (FlowService.snapshotLoader). */
export interface SnapshotLoader {
  add(flows: readonly FlowEntry[]): void;
  addPacked(packed: Uint8Array): void;
  install(): void;
}

/** Bytes per packed snapshot chunk, well under the peer channel's 1 MiB message bound. */
const PACKED_CHUNK_BYTES = 256 * 1024;

function* packedChunks(rules: readonly Rule[], at: number, perChunk: number, ports: PortNames): Generator<Uint8Array> {
  function* pack(from: number, to: number): Generator<Uint8Array> {
    const bytes = packFlows(rules.slice(from, to), at, ports);
    if (bytes.byteLength <= PACKED_CHUNK_BYTES || to - from <= 1) {
      yield bytes;
      return;
    }
    const mid = (from + to) >>> 1;
    yield* pack(from, mid);
    yield* pack(mid, to);
  }
  if (rules.length === 0) yield packFlows([], at, ports);
  for (let i = 0; i < rules.length; i += perChunk) yield* pack(i, Math.min(rules.length, i + perChunk));
}

/** Longest and shortest wait of the expiry timer (ms). */
const MAX_SWEEP_MS = 1000;
const MIN_SWEEP_MS = 5;
/** buffer_id of an unbuffered packet-in (OpenFlow OFP_NO_BUFFER). */
const NO_BUFFER = 0xffffffff;

type Command = 'add' | 'modify' | 'delete';

const COMMANDS: Record<FlowModsRequest['command'], { command: Command; strict: boolean }> = {
  ADD: { command: 'add', strict: false },
  MODIFY: { command: 'modify', strict: false },
  MODIFY_STRICT: { command: 'modify', strict: true },
  DELETE: { command: 'delete', strict: false },
  DELETE_STRICT: { command: 'delete', strict: true },
};

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

function flagNames(rule: { flags: FlowSpec['flags'] }): string[] {
  const f = rule.flags;
  const out: string[] = [];
  if (f.sendFlowRem) out.push('send_flow_rem');
  if (f.checkOverlap) out.push('check_overlap');
  if (f.resetCounts) out.push('reset_counts');
  if (f.noPacketCounts) out.push('no_packet_counts');
  if (f.noByteCounts) out.push('no_byte_counts');
  return out;
}

/** A rule as a FlowSpec (for printing in add-flows syntax). */
export function specOfRule(rule: Rule): FlowSpec {
  return {
    table: rule.table,
    priority: rule.priority,
    cookie: rule.cookie,
    cookieMask: 0n,
    idleTimeout: rule.idleTimeout,
    hardTimeout: rule.hardTimeout,
    flags: { ...rule.flags },
    match: rule.match,
    actions: [...rule.actions],
  };
}

/** Where a flow came from, for error messages: "flows.txt line 3" / "flow 2" / "". */
function place(text: FlowText, index: number): string {
  const line = text.lines[index] ?? 0;
  if (text.source !== '' && line > 0) return `${text.source} line ${line}`;
  if (line > 0) return `line ${line}`;
  if (text.flows.length > 1) return `flow ${index + 1}`;
  return '';
}

function withPlace(where: string, message: string): string {
  return where === '' ? message : `${where}: ${message}`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** A FlowSyntaxError as the operator sees it: place, column, detail, and the caret lines. */
export function syntaxMessage(where: string, err: FlowSyntaxError): string {
  return `${withPlace(where, err.message)}\n${indent(err.caret)}`;
}

export class FlowService {
  readonly table: FlowTable;
  /** Packet-ins handed to the hook (after the switch's rate limit), and those no monitor saw. */
  nPacketIns = 0;
  nPacketInsUnwatched = 0;
  private readonly components: FlowComponents;
  /** Warnings that could repeat per frame or per event: one line per kind per 10 s, with a count. */
  private readonly warnings = new LogLimiter();
  private readonly sinks = new Set<(event: MgmtEvent) => void>();
  private queue: MgmtEvent[] = [];
  private flushScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private role: PeerRole | undefined;

  constructor(components: FlowComponents, options: FlowServiceOptions = { tableMiss: 'normal' }) {
    this.components = components;
    this.table = new FlowTable({
      now: components.now,
      tableMiss: options.tableMiss === 'drop' ? [] : [{ type: 'normal' }],
    });
  }

  start(): void {
    this.running = true;
    this.schedule();
  }

  /** Take part in a logical table shared with a peer site (see PeerRole). */
  setPeerRole(role: PeerRole | undefined): void {
    this.role = role;
    this.schedule();
  }

  /** Flows with an idle timeout used since `since` (table clock): the follower's usage report. */
  idleUsage(since: number, now: number = this.components.now()): Array<{ flow: string; ago_ms: number }> {
    const out: Array<{ flow: string; ago_ms: number }> = [];
    this.components.syncCounters?.();
    // Only the timed rules: a walk of the whole table here (once a second) held a follower
    // with 100,000 flows for tens of milliseconds.
    for (const rule of this.table.idleRules()) {
      const c = this.table.counters(rule.id, now);
      if (c === undefined || c.lastUsed <= since) continue;
      out.push({ flow: this.strictText(rule), ago_ms: Math.max(0, now - c.lastUsed) });
    }
    return out;
  }

  /**
   * Add (`sign` 1) or take off (-1, never below zero) archived counts to the flows they
   * name (del-flows --strict text): counters moving between the sites at a migration's
   * finalize. Last-used times are left alone. Returns how many named a flow here.
   */
  moveCounters(flows: ReadonlyArray<{ flow: string; n_packets: number; n_bytes: number }>, sign: 1 | -1): number {
    let applied = 0;
    this.components.syncCounters?.();
    const now = this.components.now();
    for (const f of flows) {
      let mod: FlowMod;
      try {
        mod = parseFlowMod(f.flow, { command: 'delete', strict: true, ports: this.ports });
      } catch {
        continue; // a flow this site cannot name (a port only the other site has)
      }
      const rule = this.table.find(mod.spec.table, mod.spec.match, mod.spec.priority);
      if (rule === undefined) continue;
      const c = this.table.counters(rule.id, now)!;
      const packets = sign > 0 ? f.n_packets : -Math.min(f.n_packets, c.nPackets);
      const bytes = sign > 0 ? f.n_bytes : -Math.min(f.n_bytes, c.nBytes);
      this.table.credit(rule.id, packets, bytes, -Infinity);
      applied++;
    }
    return applied;
  }

  /** A rule as del-flows --strict names it: table, priority and match. */
  strictText(rule: Rule): string {
    const m = formatMatch(rule.match, this.ports, rule.priority);
    return m === '' ? `table=${rule.table}` : `table=${rule.table},${m}`;
  }

  /** The peer used these flows (`ago_ms` before now): their idle deadlines move here too. Unknown flows are skipped. */
  touchFromPeer(usage: ReadonlyArray<{ flow: string; ago_ms: number }>, now: number = this.components.now()): void {
    for (const u of usage) {
      let mod: FlowMod;
      try {
        mod = parseFlowMod(u.flow, { command: 'delete', strict: true, ports: this.ports });
      } catch {
        continue; // a flow the peer has and we cannot name (a port only it has): nothing to move
      }
      const rule = this.table.find(mod.spec.table, mod.spec.match, mod.spec.priority);
      if (rule !== undefined) this.table.touch(rule.id, now - u.ago_ms);
    }
    this.schedule();
  }

  /**
   * An event for this site's monitors only: one from the peer site (its packet-ins; the
   * writer's flow-removed), or one each site raises itself (a host's move).
   */
  publish(event: MgmtEvent): void {
    if (this.sinks.size > 0) this.emit(event);
  }

  stop(): void {
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.sinks.clear();
    this.queue = [];
  }

  private get ports(): PortNames {
    return this.components.ports;
  }

  // ---- flow-mods ----------------------------------------------------------------------

  /** `at`: the table-clock time to apply at (replication applies the writer's time); default now. */
  flowMods(request: FlowModsRequest, at?: number): FlowModsReply {
    const c = COMMANDS[request.command];
    if (c === undefined) throw new ManagementError('BAD_REQUEST', `unknown flow-mod command ${String(request.command)}`);
    const text = request.text;
    const mods: FlowMod[] = [];
    if (text.flows.length === 0) {
      if (c.command !== 'delete') throw new ManagementError('BAD_REQUEST', `${c.command === 'add' ? 'add-flows' : 'mod-flows'}: no flows given`);
      mods.push(parseFlowMod('', { command: 'delete', strict: c.strict, ports: this.ports }));
    }
    for (let i = 0; i < text.flows.length; i++) {
      mods.push(this.parseMod(text, i, c.command, c.strict));
    }
    const result = this.apply(mods, text, at);
    return { added: result.added.length, modified: result.modified.length + result.replaced.length, removed: result.removed.length };
  }

  private parseMod(text: FlowText, index: number, command: Command, strict: boolean): FlowMod {
    try {
      return parseFlowMod(text.flows[index]!, { command, strict, ports: this.ports });
    } catch (err) {
      if (err instanceof FlowSyntaxError) throw new ManagementError('BAD_REQUEST', syntaxMessage(place(text, index), err));
      throw err;
    }
  }

  /** Apply all or none; report FlowModError with the flow's place; emit the events. */
  private apply(mods: readonly FlowMod[], text: FlowText | undefined, at?: number): ApplyResult {
    let result: ApplyResult;
    try {
      result = this.table.apply(mods, at);
    } catch (err) {
      if (err instanceof FlowModError) {
        const where = text !== undefined && text.flows.length > 0 ? place(text, err.index) : '';
        throw new ManagementError('BAD_REQUEST', withPlace(where, `flow rejected (${err.code}): ${err.field}: ${err.message.replace(/^flow-mod #\d+: [^:]+: /, '')}`));
      }
      throw err;
    }
    this.report(result);
    this.schedule();
    return result;
  }

  private report(result: ApplyResult): void {
    const replacedIds = new Set(result.replaced.map((r) => r.id));
    for (const ev of result.removed) this.emitRemoved(ev);
    for (const rule of result.added) this.emitFlow(replacedIds.has(rule.id) ? 'modified' : 'added', rule);
    for (const rule of result.modified) this.emitFlow('modified', rule);
  }

  // ---- replace-flows / diff-flows -----------------------------------------------------

  replaceFlows(request: ReplaceFlowsRequest, at?: number): FlowDiffReply {
    const text = request.text;
    // Parse the whole file first; a later line for the same table/match/priority wins.
    const byExisting = new Map<number, FlowSpec>();
    const order: FlowSpec[] = [];
    for (let i = 0; i < text.flows.length; i++) {
      let spec: FlowSpec;
      try {
        spec = parseFlow(text.flows[i]!, { command: 'add', ports: this.ports });
      } catch (err) {
        if (err instanceof FlowSyntaxError) throw new ManagementError('BAD_REQUEST', syntaxMessage(place(text, i), err));
        throw err;
      }
      order.push(spec);
    }
    // Deduplicate the file by (table, priority, match) keeping the last.
    const fileKey = (s: { table: number; priority: number; match: FlowSpec['match'] }): string =>
      `${s.table}/${s.priority}/${Buffer.from(s.match.value.buffer, s.match.value.byteOffset, s.match.value.byteLength).toString('hex')}/${Buffer.from(s.match.mask.buffer, s.match.mask.byteOffset, s.match.mask.byteLength).toString('hex')}`;
    const dedup = new Map<string, FlowSpec>();
    for (const spec of order) dedup.set(fileKey(spec), spec);

    const lines: string[] = [];
    const mods: FlowMod[] = [];
    let nAdded = 0;
    let nModified = 0;
    let nRemoved = 0;
    const print = (spec: FlowSpec): string => formatFlow(spec, { ports: this.ports });
    for (const spec of dedup.values()) {
      const existing = this.table.find(spec.table, spec.match, spec.priority);
      if (existing === undefined) {
        lines.push(`+${print(spec)}`);
        mods.push({ command: 'add', spec, outPort: OFPP.NONE });
        nAdded++;
        continue;
      }
      byExisting.set(existing.id, spec);
      const old = specOfRule(existing);
      const sameActions = formatActions(old.actions, this.ports) === formatActions(spec.actions, this.ports);
      const sameRest =
        old.cookie === spec.cookie &&
        old.idleTimeout === spec.idleTimeout &&
        old.hardTimeout === spec.hardTimeout &&
        flagNames(old).join() === flagNames(spec).join();
      if (sameActions && sameRest) continue; // identical: untouched, counters kept
      lines.push(`-${print(old)}`, `+${print(spec)}`);
      nModified++;
      if (sameRest) {
        // Only the actions differ: modify keeps counters, duration and timeouts.
        mods.push({ command: 'modify_strict', spec: { ...spec, cookie: old.cookie, cookieMask: 0n }, outPort: OFPP.NONE });
      } else {
        mods.push({ command: 'add', spec, outPort: OFPP.NONE });
      }
    }
    const deletes: FlowMod[] = [];
    for (const rule of this.table.dump()) {
      if (byExisting.has(rule.id)) continue;
      const spec = specOfRule(rule);
      lines.push(`-${print(spec)}`);
      deletes.push({ command: 'delete_strict', spec: { ...spec, cookie: 0n, cookieMask: 0n }, outPort: OFPP.NONE });
      nRemoved++;
    }
    if (!request.dry_run && (mods.length > 0 || deletes.length > 0)) {
      this.apply([...deletes, ...mods], undefined, at);
    }
    return { lines, more: false, n_added: nAdded, n_modified: nModified, n_removed: nRemoved };
  }

  /**
   * Replace the whole table by `flows` (a snapshot of another site's table, dump-flows
   * entries) as of table-clock time `at`: each flow keeps its age (duration_s), so a hard
   * timeout keeps its deadline; counters start from zero (each site counts its own).
   * All or none, like every flow-mod.
   */
  loadFlows(flows: readonly FlowEntry[], at: number): void {
    const loader = this.snapshotLoader(at);
    loader.add(flows);
    loader.install();
  }

  /**
   * The table packed for a peer (flow/pack.ts), as of `at` (the table's clock), in chunks of
   * at most `perChunk` flows and about PACKED_CHUNK_BYTES (a chunk is one message), each
   * packed when asked for.
   */
  snapshotPacked(at: number, perChunk: number): Iterator<Uint8Array> {
    // Rules are immutable (a modify replaces the object): the list taken now is the table
    // now, however long the chunks take to be asked for.
    this.components.syncCounters?.();
    return packedChunks(this.table.rulesInAddOrder(), at, perChunk, this.ports);
  }

  /**
   * Replace the table by another site's flows (a snapshot taken at `at`), prepared in
   * pieces: `add` parses a chunk as it arrives (throwing ManagementError on a bad flow), so
   * that a large snapshot never holds the event loop long enough to miss the peer's
   * heartbeats; `install` then swaps the whole table in one step.
   */
  snapshotLoader(at: number): SnapshotLoader {
    const deleteAll = (): FlowMod => parseFlowMod('', { command: 'delete', strict: false, ports: this.ports });
    // The new table is built aside, chunk by chunk as they arrive, and swapped in at the end:
    // the data path keeps the old one until then, and the install itself costs nothing.
    const shadow = new FlowTable({ now: this.components.now });
    shadow.apply([deleteAll()]); // a new table's own table-miss rule: the snapshot brings its own
    const text: FlowText = { flows: [], lines: [], source: 'snapshot', more: false };
    const applyChunk = (mods: FlowMod[], first: number): void => {
      try {
        shadow.apply(mods, at);
      } catch (err) {
        if (err instanceof FlowModError) {
          const where = first >= 0 ? place(text, first + err.index) : '';
          throw new ManagementError('BAD_REQUEST', withPlace(where, `snapshot flow rejected (${err.code}): ${err.field}: ${err.message.replace(/^flow-mod #\d+: [^:]+: /, '')}`));
        }
        throw err;
      }
    };
    return {
      addPacked: (packed) => {
        const mods: FlowMod[] = [];
        try {
          forEachPackedFlow(packed, this.ports, (spec, ageMs) => mods.push({ command: 'add', spec, outPort: OFPP.NONE, createdAt: at - ageMs }));
        } catch (err) {
          if (err instanceof FlowPackError) throw new ManagementError('BAD_REQUEST', `snapshot: ${err.message}`);
          throw err;
        }
        applyChunk(mods, -1);
      },
      add: (flows) => {
        const mods: FlowMod[] = [];
        const first = text.flows.length;
        for (const f of flows) {
          const parts = [`table=${f.table}`, `priority=${f.priority}`, `cookie=${f.cookie}`];
          if (f.idle_timeout > 0) parts.push(`idle_timeout=${f.idle_timeout}`);
          if (f.hard_timeout > 0) parts.push(`hard_timeout=${f.hard_timeout}`);
          parts.push(...f.flags);
          if (f.match !== '') parts.push(f.match);
          text.flows.push(`${parts.join(',')},actions=${f.actions}`);
          text.lines.push(0);
          const mod = this.parseMod(text, text.flows.length - 1, 'add', false);
          mod.createdAt = at - f.duration_s * 1000;
          mods.push(mod);
        }
        applyChunk(mods, first);
      },
      install: () => {
        // The old rules leave with their counters (events for monitors), then the swap.
        const result = this.table.apply([deleteAll()], at);
        this.table.adopt(shadow);
        this.report({ ...result, version: this.table.version, added: this.sinks.size > 0 ? this.table.rulesInAddOrder() : [] });
        this.schedule();
      },
    };
  }

  // ---- dump ---------------------------------------------------------------------------

  dumpFlows(request: DumpFlowsRequest): FlowEntry[] {
    this.components.syncCounters?.();
    const now = this.components.now();
    if (request.match.trim() === '') return this.table.dump().map((r) => this.entry(r, now));
    let mod: FlowMod;
    try {
      mod = parseFlowMod(request.match, { command: 'delete', strict: request.strict, ports: this.ports });
    } catch (err) {
      if (err instanceof FlowSyntaxError) throw new ManagementError('BAD_REQUEST', syntaxMessage('', err));
      throw err;
    }
    const s = mod.spec;
    return this.table
      .dump({
        table: s.table,
        match: s.match,
        strict: request.strict,
        priority: s.priority,
        cookie: s.cookie,
        cookieMask: s.cookieMask,
        outPort: mod.outPort,
      })
      .map((r) => this.entry(r, now));
  }

  /** A rule as dump-flows --json prints it, with its counters at `now`. */
  entry(rule: Rule, now: number, final?: { nPackets: number; nBytes: number; durationMs: number }): FlowEntry {
    const c = final ?? this.table.counters(rule.id, now) ?? { nPackets: 0, nBytes: 0, durationMs: now - rule.createdAt };
    return {
      table: rule.table,
      priority: rule.priority,
      cookie: hex(rule.cookie),
      match: formatMatch(rule.match, this.ports, DEFAULT_PRIORITY),
      actions: formatActions(rule.actions, this.ports),
      n_packets: c.nPackets,
      n_bytes: c.nBytes,
      duration_s: Math.max(0, Math.round(c.durationMs)) / 1000,
      idle_timeout: rule.idleTimeout,
      hard_timeout: rule.hardTimeout,
      flags: flagNames(rule),
    };
  }

  // ---- trace / packet-out -------------------------------------------------------------

  private datapath(what: string): FlowDatapath {
    const dp = this.components.datapath?.();
    if (dp === undefined) throw new ManagementError('FAILED', `${what}: the data path is not running`);
    return dp;
  }

  trace(packet: string): TraceReply {
    let key: Uint32Array;
    try {
      key = parsePacket(packet, this.ports).key;
    } catch (err) {
      if (err instanceof FlowSyntaxError) throw new ManagementError('BAD_REQUEST', syntaxMessage('trace', err));
      throw err;
    }
    const result = this.datapath('trace').trace(key);
    const portName = (n: number): string => (n === OFPP.NONE ? 'NONE' : (this.ports.nameOf(n) ?? String(n)));
    const steps: TraceStep[] = result.steps.map((s) => {
      const rule = s.ruleId >= 0 ? this.table.rule(s.ruleId) : undefined;
      return {
        depth: s.depth,
        table: s.table,
        in_port: portName(s.inPort),
        miss: s.ruleId < 0,
        priority: s.ruleId < 0 ? 0 : s.priority,
        cookie: hex(s.cookie),
        match: rule !== undefined ? formatMatch(rule.match, this.ports, DEFAULT_PRIORITY) : '',
        actions: s.ruleId < 0 ? '' : formatActions(s.actions, this.ports),
      };
    });
    return { flow: packet, steps, actions: result.actions };
  }

  packetOut(request: PacketOutRequest): void {
    const inPort = this.resolveInPort(request.in_port);
    let actions: Action[];
    try {
      actions = parseActions(request.actions, this.ports);
    } catch (err) {
      if (err instanceof FlowSyntaxError) throw new ManagementError('BAD_REQUEST', syntaxMessage('packet-out actions', err));
      throw err;
    }
    try {
      this.datapath('packet-out').packetOut(request.packet, inPort, actions);
    } catch (err) {
      if (err instanceof ManagementError) throw err;
      throw new ManagementError('BAD_REQUEST', `packet-out: ${(err as Error).message}`);
    }
  }

  private resolveInPort(text: string): number {
    const t = text.trim();
    const upper = t.toUpperCase();
    if (t === '' || upper === 'NONE' || upper === 'ANY') return OFPP.NONE;
    if (upper === 'CONTROLLER') return OFPP.CONTROLLER;
    if (upper === 'LOCAL') return OFPP.LOCAL;
    if (/^\d+$/.test(t)) return Number(t);
    const n = this.ports.numberOf(t);
    if (n === undefined) throw new ManagementError('BAD_REQUEST', `packet-out: unknown in_port "${t}"`);
    return n;
  }

  // ---- timeouts -----------------------------------------------------------------------

  /** Expire what is due at `now` and report it; re-arms the timer. */
  sweep(now: number = this.components.now()): FlowRemovedEvent[] {
    const events = this.table.expire(now, this.expiryOptions());
    for (const ev of events) this.emitRemoved(ev);
    if (events.length > 0) this.role?.onExpired?.(events);
    this.schedule();
    return events;
  }

  /** Which timeouts this site decides (all, unless its peer role says otherwise). */
  private expiryOptions(): { idle: boolean; idleGraceMs: number } {
    return { idle: this.role?.expireIdle ?? true, idleGraceMs: this.role?.idleGraceMs ?? 0 };
  }

  private schedule(): void {
    if (!this.running) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const wait = this.table.nextExpiry(this.expiryOptions()) - this.components.now();
    const delay = Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, Number.isFinite(wait) ? Math.ceil(wait) : MAX_SWEEP_MS));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.sweep();
      } catch (err) {
        this.components.log?.('error', 'flow expiry sweep failed', { error: (err as Error).message });
        this.schedule();
      }
    }, delay);
    this.timer.unref();
  }

  // ---- events -------------------------------------------------------------------------

  /** Register a monitor sink; returns its unsubscribe. */
  monitor(sink: (event: MgmtEvent) => void): () => void {
    this.sinks.add(sink);
    return () => {
      this.sinks.delete(sink);
    };
  }

  get monitorCount(): number {
    return this.sinks.size;
  }

  /** The switch's packet-in hook (datapath/execute.ts): copy, truncate, queue. */
  readonly onPacketIn: PacketInHook = (slab, offset, size, inPort, reason, table, ruleId, maxLen, held) => {
    this.nPacketIns++;
    if (this.sinks.size === 0 && this.role?.forward === undefined) {
      this.nPacketInsUnwatched++;
      if (held === true) this.release(slab.subarray(offset, offset + size), inPort, ruleId);
      return;
    }
    const n = Math.min(size, maxLen);
    const data = new Uint8Array(n);
    data.set(slab.subarray(offset, offset + n));
    const rule = ruleId >= 0 ? this.table.rule(ruleId) : undefined;
    const event: MgmtEvent = {
      kind: 'packet_in',
      time: this.wallSeconds(),
      reason,
      dropped: 0,
      packet_in: {
        table,
        cookie: hex(rule?.cookie ?? 0n),
        in_port: this.ports.nameOf(inPort) ?? String(inPort),
        in_port_number: inPort,
        total_len: size,
        data,
        buffer_id: NO_BUFFER,
        match: rule !== undefined ? formatMatch(rule.match, this.ports, rule.priority) : '',
      },
    };
    if (this.sinks.size > 0) this.emit(event);
    // A packet-in is an event of the logical switch: the peer site's monitors see it too.
    this.role?.forward?.(event);
    // After the event (queued for the monitors before this, sent to the peer above).
    if (held === true) this.release(slab.subarray(offset, offset + size), inPort, ruleId);
  };

  /**
   * A frame held for its packet-in during a migration (execute.ts holdFor): forwarded by
   * the rule's other actions at this site — the one that held it — once the event is out
   * (monitors are flushed, and the peer sent to, in earlier microtasks).
   */
  private release(frame: Uint8Array, inPort: number, ruleId: number): void {
    const rule = ruleId >= 0 ? this.table.rule(ruleId) : undefined;
    if (rule === undefined) return;
    const actions = rule.actions.filter((a) => a.type !== 'controller');
    const copy = Uint8Array.from(frame); // the batch slab is reused after this batch
    queueMicrotask(() => {
      try {
        this.components.datapath?.()?.packetOut(copy, inPort, actions);
      } catch (err) {
        const n = this.warnings.admit('release');
        if (n >= 0) this.components.log?.('warn', 'could not forward a frame held for its packet-in', withSuppressed({ error: (err as Error).message }, n));
      }
    });
  }

  private wallSeconds(): number {
    return (this.components.wallNow ?? Date.now)() / 1000;
  }

  private emitFlow(kind: 'added' | 'modified', rule: Rule): void {
    if (this.sinks.size === 0) return;
    this.emit({ kind, time: this.wallSeconds(), flow: this.entry(rule, this.components.now()), reason: '', dropped: 0 });
  }

  private emitRemoved(ev: FlowRemovedEvent): void {
    if (ev.rule.flags.sendFlowRem) {
      this.components.log?.('debug', 'flow removed', { reason: ev.reason, table: ev.rule.table, cookie: hex(ev.rule.cookie) });
    }
    const forward = this.role?.localFlowRemoved === false ? undefined : this.role?.forward;
    const removedToo = ev.rule.flags.sendFlowRem && this.role?.localFlowRemoved !== false;
    if (this.sinks.size === 0 && !(removedToo && forward !== undefined)) return;
    const flow = this.entry(ev.rule, 0, ev);
    const time = this.wallSeconds();
    if (this.sinks.size > 0) this.emit({ kind: 'deleted', time, flow, reason: ev.reason, dropped: 0 });
    if (!removedToo) return;
    const removed: MgmtEvent = { kind: 'flow_removed', time, flow, reason: ev.reason, dropped: 0 };
    if (this.sinks.size > 0) this.emit(removed);
    forward?.(removed);
  }

  private emit(event: MgmtEvent): void {
    this.queue.push(event);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const events = this.queue;
    this.queue = [];
    for (const event of events) {
      for (const sink of this.sinks) {
        try {
          sink(event);
        } catch (err) {
          const n = this.warnings.admit('sink');
          if (n >= 0) this.components.log?.('warn', 'monitor sink failed', withSuppressed({ error: (err as Error).message }, n));
        }
      }
    }
  }
}

/** The logical view of two physical tables: each flow once, counters summed (flows only one site has yet are kept). */
export function sumFlowCounters(local: readonly FlowEntry[], remote: readonly FlowEntry[]): FlowEntry[] {
  const key = (f: FlowEntry): string => `${f.table}\n${f.priority}\n${f.match}`;
  const out = local.map((f) => ({ ...f }));
  const byKey = new Map(out.map((f) => [key(f), f]));
  for (const r of remote) {
    const mine = byKey.get(key(r));
    if (mine === undefined) out.push({ ...r });
    else {
      mine.n_packets += r.n_packets;
      mine.n_bytes += r.n_bytes;
    }
  }
  return out;
}
