/**
 * FlowTable: the OpenFlow flow tables — rule store, flow-mod semantics, counters, timeouts.
 *
 * What it does: holds the rules of tables 0 … MAX_TABLES-1, applies batches of flow-mods
 * with OpenFlow's semantics, looks packets up (through the tuple-space classifier, the slow
 * path), attributes packets and bytes to rules, expires rules on idle and hard timeouts and
 * reports every removal as a FlowRemovedEvent. Pure: time comes from the injected `now()`
 * or an explicit `now` argument; no timers, no I/O.
 *
 * Invariants and ownership:
 * - A rule's id is its slot number, stable for the rule's life and reused after removal
 *   (a stack of free ids). The data path may hold ids across batches only together with
 *   `version`: every published change (an `apply()` or `expire()` that changed anything)
 *   increments `version` exactly once, so a cache entry stamped with an older version is a
 *   miss. `version` starts at 1 (the table-miss rule is the first change), so a zero-filled
 *   cache never hits.
 * - `apply(mods)` is all-or-none. First every mod is validated on its own (ranges, match
 *   normalisation, actions); then the mods are applied in order, each recording its inverse
 *   in an undo journal; a conflict found while applying (check_overlap) undoes the journal
 *   exactly — same rules, same ids, same counters, same version — and throws FlowModError.
 *   Nothing is published until the whole batch succeeded (JS is single-threaded, so no
 *   lookup can observe a half-applied batch). This is what makes `limectl add-flows FILE`
 *   atomic.
 * - Rules, their Match arrays, action lists and flags objects are owned by the table once
 *   applied: callers must not mutate them. Rule objects are immutable; a modify replaces
 *   the object (same id).
 * - Counter columns (nPackets, nBytes, lastUsed) are Float64Arrays indexed by rule id and
 *   grow by doubling inside `apply()` only; `credit()` and `lookup()` never allocate or
 *   grow anything. `lastUsed` starts at the creation time (creation counts as use).
 *
 * OpenFlow semantics (OF 1.3.5 §6.4 "Flow Table Modification Messages", and Open vSwitch
 * `ofproto/ofproto.c` where it is more specific — operators know OVS):
 * - add: if a rule with an identical match and priority exists in the table, it is
 *   replaced: the new rule gets a fresh creation time (duration and hard timeout restart),
 *   the new cookie, timeouts, flags and actions; its packet/byte counters are **copied from
 *   the replaced rule unless reset_counts is set** (OF 1.3.5 §6.4; OVS
 *   `replace_rule_finish`, `modify_keep_counts`). The replacement keeps the slot id; it is
 *   reported in `added`, the old rule in `replaced`, and it sends no flow-removed (as OVS).
 *   For the equal-priority tie-break it counts as newly added.
 * - add with check_overlap: rejected with code OVERLAP if another rule of the same table
 *   and priority could match a packet that the new rule matches. An *identical* rule is not
 *   a conflict: it is replaced, as Open vSwitch does (`add_flow_start` checks overlap only
 *   when no identical rule exists; the spec's wording would reject it).
 * - modify (non-strict): every rule of the table (or of all tables for table 255, as
 *   ovs-ofctl mod-flows does) whose match is covered by the mod's match — the rule's mask
 *   includes the mod's mask and its value agrees there — whatever its priority, filtered by
 *   cookie/cookieMask when cookieMask ≠ 0. modify_strict: the rule with the identical match
 *   and priority, same cookie filter. Both replace the actions only; cookie, timeouts,
 *   flags, creation time (so duration and the hard timeout), tie-break order and counters
 *   stay — counters are zeroed if the mod sets reset_counts. A modify that matches nothing
 *   does nothing (OpenFlow 1.1+; OF 1.0 would add). `out_port` is ignored (OF 1.3.5
 *   §7.3.4.1). Cookie: as ovs-ofctl, a modify whose cookie has no mask (cookieMask = 0)
 *   *sets* the cookie of the rules it modifies — except cookie = 0, which this table takes
 *   as "cookie not given" (FlowSpec cannot tell the two apart).
 * - delete (non-strict) / delete_strict: as modify for the selection, plus the out_port
 *   filter (only rules with an output to that port; OFPP.NONE or 0xffffffff = any).
 *   Every removed rule is reported with reason 'delete' and its final counters.
 * - Default table-miss: `priority=0,actions=NORMAL` in table 0 (an ordinary rule, as in
 *   OVS; `del-flows` removes it). `tableMiss: []` installs `priority=0,actions=drop`, so
 *   drops are counted.
 *
 * Timeouts (`expire(now)` is a sweep over the rules that have a timeout, kept in a dense
 * list, never over all rules; the daemon calls it about once a second):
 * - hard: fires when now ≥ createdAt + hard_timeout·1000. It counts from installation; a
 *   modify does not restart it (OF 1.3.5 §5.5 "Flow Removal": the entry "is removed after
 *   the given number of seconds, regardless of how many packets it has matched"; lime's
 *   migration logic needs the hard timeout to fire once at a fixed time). Note: current
 *   Open vSwitch restarts it on modify (`rule_expire` uses `rule->modified`); lime does not.
 *   An add that replaces an identical flow installs a new entry, so it does restart.
 * - idle: fires when now ≥ lastUsed + idle_timeout·1000; `credit()` moves lastUsed.
 * - both due in the same sweep: hard_timeout is reported (OVS `rule_expire` order).
 * - Events: `expire()` and `apply()` return **every** removal, whether or not the rule has
 *   send_flow_rem — the monitor stream (`limectl monitor`, like `ovs-ofctl monitor`) shows
 *   them all. The daemon sends an OpenFlow flow-removed only for
 *   `event.rule.flags.sendFlowRem`.
 * - no_packet_counts / no_byte_counts are accepted and stored but counters are kept anyway
 *   (OpenFlow allows that).
 *
 * Dump order (`dump()`): by table ascending, then priority descending, then oldest first —
 * the order of `ovs-ofctl dump-flows --rsort` (priority descending) within OVS's
 * table-by-table reply, made total and deterministic. (Plain OVS dump-flows returns
 * classifier iteration order within a table, which is not meaningful.)
 *
 * Cost model: lookup = the classifier's (number of masks probed). add/modify_strict/
 * delete_strict = O(1) expected (hash probe on the rule's mask). Non-strict modify/delete
 * and dump with a match = a scan of the subtables whose mask includes the match's mask.
 * check_overlap = one probe per less-specific subtable plus a scan of the others.
 */
import {
  DEFAULT_PRIORITY,
  MAX_PRIORITY,
  MAX_TABLES,
  OFPP,
  type Action,
  type FlowFlags,
  type FlowMod,
  type FlowSpec,
  type Match,
} from '../flow/types.js';
import { KEY_WORDS, isMatchWord } from '../packet/key.js';
import { Classifier } from './classifier.js';
import type { FlowRemovedEvent, Rule, TableView } from './types.js';

/** table id meaning "all tables" in modify/delete/dump (OpenFlow's OFPTT_ALL). */
export const ALL_TABLES = MAX_TABLES;
/** OpenFlow 1.1+ OFPP_ANY, accepted like OFPP.NONE as "no out_port filter". */
export const OFPP_ANY = 0xffffffff;
const MAX_TIMEOUT = 65535;
const MAX_COOKIE = (1n << 64n) - 1n;
const MS_PER_S = 1000;

/** OpenFlow flow-mod error codes (OFPFMFC_* and the bad-match/bad-action classes). */
export type FlowModErrorCode =
  | 'OVERLAP'
  | 'BAD_COMMAND'
  | 'BAD_TABLE_ID'
  | 'BAD_PRIORITY'
  | 'BAD_TIMEOUT'
  | 'BAD_COOKIE'
  | 'BAD_FLAGS'
  | 'BAD_MATCH'
  | 'BAD_ACTION'
  | 'BAD_OUT_PORT';

/** A rejected flow-mod batch. `index` is the position of the offending mod in the batch. */
export class FlowModError extends Error {
  override readonly name = 'FlowModError';
  readonly code: FlowModErrorCode;
  readonly index: number;
  /** The FlowSpec/FlowMod field at fault (e.g. 'table', 'match.mask[5]'). */
  readonly field: string;

  constructor(code: FlowModErrorCode, index: number, field: string, message: string) {
    super(`flow-mod #${index}: ${field}: ${message}`);
    this.code = code;
    this.index = index;
    this.field = field;
  }
}

export interface FlowTableOptions {
  /** Clock (ms), used when a method is not given `now`. */
  now: () => number;
  /** Actions of the table-miss rule (priority 0, match all, table 0). Default NORMAL; [] = drop. */
  tableMiss?: readonly Action[];
}

export interface ApplyResult {
  /** `version` after the batch (unchanged if the batch changed nothing). */
  version: number;
  /** Rules added, in order (including adds that replaced an identical rule). */
  added: Rule[];
  /** Rules an add replaced (same id as the replacement); no flow-removed is due for them. */
  replaced: Rule[];
  /** Rules modified: the new Rule objects (same id, new actions/cookie). */
  modified: Rule[];
  /** Rules deleted, with reason 'delete' and their final counters. */
  removed: FlowRemovedEvent[];
}

export interface FlowCounters {
  nPackets: number;
  nBytes: number;
  lastUsed: number;
  durationMs: number;
}

export interface DumpFilter {
  /** Table id; undefined or 255 = all tables. */
  table?: number;
  /** Only rules covered by this match (non-strict), or with exactly it (strict). */
  match?: Match;
  /** With `match`: identical match and priority only. */
  strict?: boolean;
  /** For strict: the priority (default 32768, as ovs-ofctl). */
  priority?: number;
  /** With cookieMask ≠ 0: only rules with (cookie & mask) = (this & mask). */
  cookie?: bigint;
  cookieMask?: bigint;
  /** Only rules with an output to this port (OFPP.NONE / 0xffffffff = any). */
  outPort?: number;
}

type Undo =
  | { kind: 'insert'; id: number; fresh: boolean }
  | { kind: 'remove'; id: number; rule: Rule; seq: number; nPackets: number; nBytes: number; lastUsed: number }
  | { kind: 'update'; id: number; rule: Rule; nPackets: number; nBytes: number; lastUsed: number };

const COMMANDS = new Set(['add', 'modify', 'modify_strict', 'delete', 'delete_strict']);

const NO_FLAGS: FlowFlags = Object.freeze({
  sendFlowRem: false,
  checkOverlap: false,
  resetCounts: false,
  noPacketCounts: false,
  noByteCounts: false,
});

/** A match-all Match (all masks 0). */
export function matchAll(): Match {
  return { value: new Uint32Array(KEY_WORDS), mask: new Uint32Array(KEY_WORDS) };
}

/** Does some packet match both `a` and `b`? */
export function matchesOverlap(a: Match, b: Match): boolean {
  for (let w = 0; w < KEY_WORDS; w++) {
    if (((a.value[w]! ^ b.value[w]!) & a.mask[w]! & b.mask[w]!) !== 0) return false;
  }
  return true;
}

/** Is every packet matching `rule` also matched by `by` (OpenFlow's non-strict selection)? */
export function matchCovers(by: Match, rule: Match): boolean {
  for (let w = 0; w < KEY_WORDS; w++) {
    const m = by.mask[w]!;
    if ((m & ~rule.mask[w]!) !== 0) return false;
    if (((rule.value[w]! & m) >>> 0) !== by.value[w]) return false;
  }
  return true;
}

/** Identical value and mask. */
export function matchEquals(a: Match, b: Match): boolean {
  for (let w = 0; w < KEY_WORDS; w++) if (a.value[w] !== b.value[w] || a.mask[w] !== b.mask[w]) return false;
  return true;
}

/** Does the action list output to `port` (OpenFlow's out_port filter)? NONE/ANY = any. */
export function hasOutPort(actions: readonly Action[], port: number): boolean {
  if (port === OFPP.NONE || port === OFPP_ANY) return true;
  for (const a of actions) {
    switch (a.type) {
      case 'output':
        if (a.port === port) return true;
        break;
      case 'normal':
        if (port === OFPP.NORMAL) return true;
        break;
      case 'flood':
        if (port === OFPP.FLOOD) return true;
        break;
      case 'all':
        if (port === OFPP.ALL) return true;
        break;
      case 'in_port':
        if (port === OFPP.IN_PORT) return true;
        break;
      case 'local':
        if (port === OFPP.LOCAL) return true;
        break;
      case 'controller':
        if (port === OFPP.CONTROLLER) return true;
        break;
      default:
        break;
    }
  }
  return false;
}

function cookieSelected(cookie: bigint, want: bigint, mask: bigint): boolean {
  return mask === 0n || (cookie & mask) === (want & mask);
}

export class FlowTable implements TableView {
  private readonly now: () => number;
  private cls = new Classifier();
  private versionNo = 0;
  /**
   * Called before a change is made (apply, expire, adopt) while the rules and their ids
   * are still the old ones: a cache that counts on the rules' behalf (the native fast
   * path) credits what it holds, so that counters are exact and no count lands on a
   * reused id.
   */
  beforeChange: (() => void) | undefined = undefined;
  /** Called at the start of expire() when rules have timeouts: such a cache brings last-use times up to date. */
  beforeExpire: (() => void) | undefined = undefined;
  private seqNo = 0;

  private capacity = 0;
  private rules: (Rule | undefined)[] = [];
  private nPackets = new Float64Array(0);
  private nBytes = new Float64Array(0);
  private lastUsed = new Float64Array(0);
  /** Ids of free slots below nextId, used as a stack. */
  private freeIds: number[] = [];
  private nextId = 0;
  private tableSizes = new Int32Array(MAX_TABLES);

  /** Rules with an idle or hard timeout: dense list + position of each id (-1 = absent). */
  private timedList = new Int32Array(0);
  private timedPos = new Int32Array(0);
  private nTimed = 0;

  constructor(options: FlowTableOptions) {
    this.now = options.now;
    this.ensureCapacity(1024);
    const spec: FlowSpec = {
      table: 0,
      priority: 0,
      cookie: 0n,
      cookieMask: 0n,
      idleTimeout: 0,
      hardTimeout: 0,
      flags: NO_FLAGS,
      match: matchAll(),
      actions: [...(options.tableMiss ?? [{ type: 'normal' }])],
    };
    this.apply([{ command: 'add', spec, outPort: OFPP.NONE }]);
  }

  /** Increments once per published change (see the module doc). */
  get version(): number {
    return this.versionNo;
  }

  // ---- data-path view (hot) -------------------------------------------------------------

  lookup(table: number, key: Uint32Array, keyOff: number): number {
    return this.cls.lookup(table, key, keyOff);
  }

  rule(id: number): Rule | undefined {
    return this.rules[id];
  }

  credit(id: number, nPackets: number, nBytes: number, now: number): void {
    this.nPackets[id] = this.nPackets[id]! + nPackets;
    this.nBytes[id] = this.nBytes[id]! + nBytes;
    if (now > this.lastUsed[id]!) this.lastUsed[id] = now;
  }

  creditAt(id: number, nPackets: number, nBytes: number, clock: Float64Array): void {
    this.nPackets[id] = this.nPackets[id]! + nPackets;
    this.nBytes[id] = this.nBytes[id]! + nBytes;
    const now = clock[0]!;
    if (now > this.lastUsed[id]!) this.lastUsed[id] = now;
  }

  // ---- queries ----------------------------------------------------------------------------

  counters(id: number, now: number = this.now()): FlowCounters | undefined {
    const rule = this.rules[id];
    if (rule === undefined) return undefined;
    return {
      nPackets: this.nPackets[id]!,
      nBytes: this.nBytes[id]!,
      lastUsed: this.lastUsed[id]!,
      durationMs: now - rule.createdAt,
    };
  }

  /**
   * Every rule, in the order they were added (tie-break order): what a snapshot installs
   * elsewhere to get the same table. Cheaper than dump()'s table/priority order.
   */
  rulesInAddOrder(): Rule[] {
    const ids: number[] = [];
    for (let id = 0; id < this.rules.length; id++) if (this.rules[id] !== undefined) ids.push(id);
    const seqs = new Float64Array(this.rules.length);
    for (const id of ids) seqs[id] = this.cls.seqOf(id);
    ids.sort((a, b) => seqs[a]! - seqs[b]!);
    return ids.map((id) => this.rules[id]!);
  }

  /**
   * Take over `other`'s rules, counters and ids in one step (a table built aside: a peer's
   * snapshot, installed chunk by chunk while it arrived). What this table held is dropped
   * without events (a caller that wants them deletes first); `other` must not be used
   * again. The version moves past both tables', so nothing cached from either stays valid.
   */
  adopt(other: FlowTable): void {
    if (other === this) return;
    this.beforeChange?.();
    const version = Math.max(this.versionNo, other.versionNo) + 1;
    this.cls = other.cls;
    this.seqNo = other.seqNo;
    this.capacity = other.capacity;
    this.rules = other.rules;
    this.nPackets = other.nPackets;
    this.nBytes = other.nBytes;
    this.lastUsed = other.lastUsed;
    this.freeIds = other.freeIds;
    this.nextId = other.nextId;
    this.tableSizes = other.tableSizes;
    this.timedList = other.timedList;
    this.timedPos = other.timedPos;
    this.nTimed = other.nTimed;
    this.versionNo = version;
  }

  /** The rules with an idle timeout (any order): what a follower reports the use of. */
  idleRules(): Rule[] {
    const out: Rule[] = [];
    for (let k = 0; k < this.nTimed; k++) {
      const rule = this.rules[this.timedList[k]!]!;
      if (rule.idleTimeout > 0) out.push(rule);
    }
    return out;
  }

  /** Record a use of rule `id` at `at` (another site's traffic): its idle deadline moves. */
  touch(id: number, at: number): void {
    if (this.rules[id] !== undefined && at > this.lastUsed[id]!) this.lastUsed[id] = at;
  }

  /** Number of rules in `table`, or in all tables. */
  size(table?: number): number {
    if (table === undefined || table === ALL_TABLES) return this.cls.size;
    return this.tableSizes[table] ?? 0;
  }

  /** Number of distinct masks (subtables) in `table`: the worst-case probes of a lookup. */
  nSubtables(table: number): number {
    return this.cls.nSubtables(table);
  }

  get nLookups(): number {
    return this.cls.nLookups;
  }

  get nSubtableProbes(): number {
    return this.cls.nSubtableProbes;
  }

  /** The rule with exactly this match and priority in `table`. */
  find(table: number, match: Match, priority: number): Rule | undefined {
    if (!(table >= 0 && table < MAX_TABLES)) return undefined;
    const id = this.cls.findExact(table, match, priority);
    return id < 0 ? undefined : this.rules[id];
  }

  /** Rules selected by `filter`, by table, priority descending, then oldest first. */
  dump(filter: DumpFilter = {}): Rule[] {
    const ids: number[] = [];
    for (const t of this.tablesOf(filter.table ?? ALL_TABLES)) {
      if (filter.match === undefined) this.cls.collectAll(t, ids);
      else if (filter.strict) {
        const id = this.cls.findExact(t, filter.match, filter.priority ?? DEFAULT_PRIORITY);
        if (id >= 0) ids.push(id);
      } else this.cls.collectCovered(t, filter.match, ids);
    }
    const cookie = filter.cookie ?? 0n;
    const cookieMask = filter.cookieMask ?? 0n;
    const outPort = filter.outPort ?? OFPP.NONE;
    return this.sorted(ids)
      .map((id) => this.rules[id]!)
      .filter((r) => cookieSelected(r.cookie, cookie, cookieMask) && hasOutPort(r.actions, outPort));
  }

  // ---- flow-mods ----------------------------------------------------------------------

  /**
   * Apply a batch of flow-mods, all or none (see the module doc for the semantics). Throws
   * FlowModError — leaving every table, counter and `version` as they were — if any mod is
   * invalid or conflicts.
   */
  apply(mods: readonly FlowMod[], now: number = this.now()): ApplyResult {
    for (let i = 0; i < mods.length; i++) validate(mods[i]!, i);
    this.beforeChange?.();

    const result: ApplyResult = { version: this.versionNo, added: [], replaced: [], modified: [], removed: [] };
    const journal: Undo[] = [];
    const seqBefore = this.seqNo;
    try {
      for (let i = 0; i < mods.length; i++) this.execute(mods[i]!, i, now, journal, result);
    } catch (err) {
      this.rollback(journal);
      this.seqNo = seqBefore;
      throw err;
    }
    if (journal.length > 0) this.versionNo++;
    result.version = this.versionNo;
    return result;
  }

  /**
   * Remove the rules whose hard or idle timeout has passed at `now` and return one event
   * per removed rule (all of them; the caller filters on rule.flags.sendFlowRem).
   * `idle: false` leaves idle timeouts alone (a follower site: the writer decides them,
   * knowing both sites' use); `idleGraceMs` waits that much longer for idle ones (the
   * writer: for the follower's last usage report to arrive).
   */
  expire(now: number = this.now(), opts: { idle?: boolean; idleGraceMs?: number } = {}): FlowRemovedEvent[] {
    const idle = opts.idle ?? true;
    const grace = opts.idleGraceMs ?? 0;
    if (this.nTimed > 0) this.beforeExpire?.();
    const due: number[] = [];
    const reasons: ('hard_timeout' | 'idle_timeout')[] = [];
    for (let k = 0; k < this.nTimed; k++) {
      const id = this.timedList[k]!;
      const rule = this.rules[id]!;
      if (rule.hardTimeout > 0 && now >= rule.createdAt + rule.hardTimeout * MS_PER_S) {
        due.push(id);
        reasons.push('hard_timeout');
      } else if (idle && rule.idleTimeout > 0 && now >= this.lastUsed[id]! + rule.idleTimeout * MS_PER_S + grace) {
        due.push(id);
        reasons.push('idle_timeout');
      }
    }
    if (due.length > 0) this.beforeChange?.();
    const events: FlowRemovedEvent[] = [];
    for (let k = 0; k < due.length; k++) {
      const id = due[k]!;
      const rule = this.rules[id]!;
      events.push({
        rule,
        reason: reasons[k]!,
        nPackets: this.nPackets[id]!,
        nBytes: this.nBytes[id]!,
        durationMs: now - rule.createdAt,
      });
      this.unplace(id);
      this.freeIds.push(id);
    }
    if (events.length > 0) this.versionNo++;
    return events;
  }

  /**
   * Earliest time (ms) at which `expire()` could remove something, or Infinity. Lets the
   * daemon sleep until then instead of polling (idle deadlines move with traffic, so this
   * is a lower bound).
   */
  nextExpiry(opts: { idle?: boolean; idleGraceMs?: number } = {}): number {
    const idle = opts.idle ?? true;
    const grace = opts.idleGraceMs ?? 0;
    let next = Infinity;
    for (let k = 0; k < this.nTimed; k++) {
      const id = this.timedList[k]!;
      const rule = this.rules[id]!;
      if (rule.hardTimeout > 0) next = Math.min(next, rule.createdAt + rule.hardTimeout * MS_PER_S);
      if (idle && rule.idleTimeout > 0) next = Math.min(next, this.lastUsed[id]! + rule.idleTimeout * MS_PER_S + grace);
    }
    return next;
  }

  // ---- internals ----------------------------------------------------------------------

  private execute(mod: FlowMod, index: number, now: number, journal: Undo[], result: ApplyResult): void {
    const spec = mod.spec;
    switch (mod.command) {
      case 'add': {
        const old = this.cls.findExact(spec.table, spec.match, spec.priority);
        if (old < 0 && spec.flags.checkOverlap) {
          const other = this.cls.findOverlap(spec.table, spec.match, spec.priority);
          if (other >= 0) {
            throw new FlowModError(
              'OVERLAP',
              index,
              'match',
              `check_overlap: overlaps an existing flow of table ${spec.table} at priority ${spec.priority} (cookie 0x${this.rules[other]!.cookie.toString(16)})`,
            );
          }
        }
        let nPackets = 0;
        let nBytes = 0;
        if (old >= 0) {
          if (!spec.flags.resetCounts) {
            nPackets = this.nPackets[old]!;
            nBytes = this.nBytes[old]!;
          }
          result.replaced.push(this.removeJournaled(old, journal));
        }
        const fresh = this.freeIds.length === 0;
        const id = fresh ? this.nextId++ : this.freeIds.pop()!;
        if (id >= this.capacity) this.ensureCapacity(id + 1);
        const rule = makeRule(id, spec, spec.cookie, spec.flags, spec.actions, mod.createdAt ?? now);
        this.place(id, rule, this.seqNo++, nPackets, nBytes, now);
        journal.push({ kind: 'insert', id, fresh });
        result.added.push(rule);
        return;
      }
      case 'modify':
      case 'modify_strict': {
        const ids = this.select(mod);
        // ovs-ofctl: a cookie without a mask sets the cookie (0 = not given, see module doc).
        const setCookie = spec.cookieMask === 0n && spec.cookie !== 0n;
        for (const id of ids) {
          const old = this.rules[id]!;
          journal.push({
            kind: 'update',
            id,
            rule: old,
            nPackets: this.nPackets[id]!,
            nBytes: this.nBytes[id]!,
            lastUsed: this.lastUsed[id]!,
          });
          const rule = makeRule(id, old, setCookie ? spec.cookie : old.cookie, old.flags, spec.actions, old.createdAt);
          this.rules[id] = rule;
          if (spec.flags.resetCounts) {
            this.nPackets[id] = 0;
            this.nBytes[id] = 0;
          }
          result.modified.push(rule);
        }
        return;
      }
      case 'delete':
      case 'delete_strict': {
        for (const id of this.select(mod)) {
          const nPackets = this.nPackets[id]!;
          const nBytes = this.nBytes[id]!;
          const rule = this.removeJournaled(id, journal);
          result.removed.push({ rule, reason: 'delete', nPackets, nBytes, durationMs: now - rule.createdAt });
        }
        return;
      }
    }
  }

  /** Rules a modify/delete acts on, in dump order. */
  private select(mod: FlowMod): number[] {
    const spec = mod.spec;
    const strict = mod.command === 'modify_strict' || mod.command === 'delete_strict';
    const ids: number[] = [];
    for (const t of this.tablesOf(spec.table)) {
      if (strict) {
        const id = this.cls.findExact(t, spec.match, spec.priority);
        if (id >= 0) ids.push(id);
      } else this.cls.collectCovered(t, spec.match, ids);
    }
    const isDelete = mod.command === 'delete' || mod.command === 'delete_strict';
    return this.sorted(ids).filter((id) => {
      const r = this.rules[id]!;
      return cookieSelected(r.cookie, spec.cookie, spec.cookieMask) && (!isDelete || hasOutPort(r.actions, mod.outPort));
    });
  }

  private tablesOf(table: number): number[] {
    if (table !== ALL_TABLES) return table >= 0 && table < MAX_TABLES ? [table] : [];
    const out: number[] = [];
    for (let t = 0; t < MAX_TABLES; t++) if (this.tableSizes[t]! > 0) out.push(t);
    return out;
  }

  private sorted(ids: number[]): number[] {
    return ids.sort((a, b) => {
      const ra = this.rules[a]!;
      const rb = this.rules[b]!;
      return ra.table - rb.table || rb.priority - ra.priority || this.cls.seqOf(a) - this.cls.seqOf(b);
    });
  }

  private removeJournaled(id: number, journal: Undo[]): Rule {
    const rule = this.rules[id]!;
    journal.push({
      kind: 'remove',
      id,
      rule,
      seq: this.cls.seqOf(id),
      nPackets: this.nPackets[id]!,
      nBytes: this.nBytes[id]!,
      lastUsed: this.lastUsed[id]!,
    });
    this.unplace(id);
    this.freeIds.push(id);
    return rule;
  }

  /** Undo the journal newest first; the free-id stack unwinds exactly, so ids come back. */
  private rollback(journal: Undo[]): void {
    for (let k = journal.length - 1; k >= 0; k--) {
      const u = journal[k]!;
      switch (u.kind) {
        case 'insert':
          this.unplace(u.id);
          if (u.fresh) this.nextId--;
          else this.freeIds.push(u.id);
          break;
        case 'remove': {
          const id = this.freeIds.pop();
          if (id !== u.id) throw new Error(`flow table rollback: free-id stack out of step (${id} ≠ ${u.id})`);
          this.place(u.id, u.rule, u.seq, u.nPackets, u.nBytes, u.lastUsed);
          break;
        }
        case 'update':
          this.rules[u.id] = u.rule;
          this.nPackets[u.id] = u.nPackets;
          this.nBytes[u.id] = u.nBytes;
          this.lastUsed[u.id] = u.lastUsed;
          break;
      }
    }
  }

  private place(id: number, rule: Rule, seq: number, nPackets: number, nBytes: number, lastUsed: number): void {
    this.rules[id] = rule;
    this.nPackets[id] = nPackets;
    this.nBytes[id] = nBytes;
    this.lastUsed[id] = lastUsed;
    this.cls.insert(id, rule.table, rule.match, rule.priority, seq);
    this.tableSizes[rule.table]!++;
    if (rule.idleTimeout > 0 || rule.hardTimeout > 0) {
      this.timedPos[id] = this.nTimed;
      this.timedList[this.nTimed++] = id;
    }
  }

  private unplace(id: number): void {
    const rule = this.rules[id]!;
    this.cls.remove(id);
    this.rules[id] = undefined;
    this.tableSizes[rule.table]!--;
    const pos = this.timedPos[id]!;
    if (pos >= 0) {
      const last = this.timedList[--this.nTimed]!;
      this.timedList[pos] = last;
      this.timedPos[last] = pos;
      this.timedPos[id] = -1;
    }
  }

  private ensureCapacity(n: number): void {
    if (n <= this.capacity) return;
    let cap = Math.max(1024, this.capacity);
    while (cap < n) cap *= 2;
    const grow = (a: Float64Array): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.nPackets = grow(this.nPackets);
    this.nBytes = grow(this.nBytes);
    this.lastUsed = grow(this.lastUsed);
    const timedList = new Int32Array(cap);
    timedList.set(this.timedList);
    const timedPos = new Int32Array(cap).fill(-1);
    timedPos.set(this.timedPos);
    this.timedList = timedList;
    this.timedPos = timedPos;
    this.rules.length = cap;
    this.cls.ensureCapacity(cap);
    this.capacity = cap;
  }
}

function makeRule(
  id: number,
  from: { table: number; priority: number; idleTimeout: number; hardTimeout: number; match: Match },
  cookie: bigint,
  flags: FlowFlags,
  actions: readonly Action[],
  createdAt: number,
): Rule {
  return {
    id,
    table: from.table,
    priority: from.priority,
    cookie,
    idleTimeout: from.idleTimeout,
    hardTimeout: from.hardTimeout,
    flags,
    match: from.match,
    actions,
    createdAt,
  };
}

function isInt(x: unknown, min: number, max: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= min && x <= max;
}

/** Check one mod on its own; throws FlowModError naming the field. */
function validate(mod: FlowMod, index: number): void {
  const fail = (code: FlowModErrorCode, field: string, message: string): never => {
    throw new FlowModError(code, index, field, message);
  };
  if (!COMMANDS.has(mod.command)) fail('BAD_COMMAND', 'command', `unknown command ${JSON.stringify(mod.command)}`);
  const spec = mod.spec;
  const isAdd = mod.command === 'add';
  const maxTable = isAdd ? MAX_TABLES - 1 : ALL_TABLES;
  if (!isInt(spec.table, 0, maxTable)) {
    fail('BAD_TABLE_ID', 'table', `${spec.table} is out of range 0..${maxTable}${isAdd ? ' (an add needs one table)' : ''}`);
  }
  if (!isInt(spec.priority, 0, MAX_PRIORITY)) fail('BAD_PRIORITY', 'priority', `${spec.priority} is out of range 0..${MAX_PRIORITY}`);
  if (!isInt(spec.idleTimeout, 0, MAX_TIMEOUT)) fail('BAD_TIMEOUT', 'idle_timeout', `${spec.idleTimeout} is out of range 0..${MAX_TIMEOUT}`);
  if (!isInt(spec.hardTimeout, 0, MAX_TIMEOUT)) fail('BAD_TIMEOUT', 'hard_timeout', `${spec.hardTimeout} is out of range 0..${MAX_TIMEOUT}`);
  for (const [field, v] of [
    ['cookie', spec.cookie],
    ['cookie_mask', spec.cookieMask],
  ] as const) {
    if (typeof v !== 'bigint' || v < 0n || v > MAX_COOKIE) fail('BAD_COOKIE', field, `${String(v)} is not a 64-bit unsigned value`);
  }
  if (typeof spec.flags !== 'object' || spec.flags === null) fail('BAD_FLAGS', 'flags', 'missing');
  if (!isInt(mod.outPort, 0, OFPP_ANY)) fail('BAD_OUT_PORT', 'out_port', `${mod.outPort} is not a port number`);

  const { value, mask } = spec.match;
  if (!(value instanceof Uint32Array) || value.length !== KEY_WORDS) fail('BAD_MATCH', 'match.value', `must be a Uint32Array of ${KEY_WORDS} words`);
  if (!(mask instanceof Uint32Array) || mask.length !== KEY_WORDS) fail('BAD_MATCH', 'match.mask', `must be a Uint32Array of ${KEY_WORDS} words`);
  for (let w = 0; w < KEY_WORDS; w++) {
    if (mask[w] !== 0 && !isMatchWord(w)) fail('BAD_MATCH', `match.mask[${w}]`, 'key word is a header offset, not a match field');
    if ((value[w]! & ~mask[w]!) !== 0) {
      fail('BAD_MATCH', `match.value[${w}]`, `0x${value[w]!.toString(16)} has bits outside mask 0x${mask[w]!.toString(16)}`);
    }
  }

  if (mod.command === 'add' || mod.command === 'modify' || mod.command === 'modify_strict') {
    if (!Array.isArray(spec.actions)) fail('BAD_ACTION', 'actions', 'must be an array');
    spec.actions.forEach((a, k) => {
      if (a.type === 'drop' && spec.actions.length > 1) fail('BAD_ACTION', `actions[${k}]`, 'drop must be the only action');
      if (a.type === 'goto_table') {
        // OF 1.3.5 §5.1: goto_table may only go forward.
        const from = spec.table === ALL_TABLES ? -1 : spec.table;
        if (!isInt(a.table, from + 1, MAX_TABLES - 1)) fail('BAD_ACTION', `actions[${k}]`, `goto_table:${a.table} must name a later table (${from + 1}..${MAX_TABLES - 1})`);
      }
      if (a.type === 'resubmit' && !isInt(a.table, 0, MAX_TABLES)) fail('BAD_ACTION', `actions[${k}]`, `resubmit table ${a.table} is out of range`);
    });
  }
}
