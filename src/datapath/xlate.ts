/**
 * Translation — the slow path: from a frame's flow key and the flow table to a flat
 * action PROGRAM, as Open vSwitch's `ofproto/ofproto-dpif-xlate.c` does it.
 *
 * What it does: look the key up in table 0, run the matching rule's action list against a
 * SCRATCH COPY of the key (so that set_field / mod_* / load / move change what a later
 * `resubmit` or `goto_table` looks up), recurse into resubmit(port,table) and goto_table,
 * and write what the frame must undergo as ops into a preallocated Uint32Array. The
 * program is then cached (emc.ts) and run on every frame of the flow (execute.ts).
 *
 * Everything that depends only on the key and the table is resolved here: output to the
 * in-port is skipped (OpenFlow: only IN_PORT sends back), mod_vlan_vid on an untagged
 * frame becomes a push, strip_vlan on an untagged frame disappears, a rewrite whose
 * prerequisite the frame lacks (mod_nw_src on ARP, mod_tp_dst on ICMP) is a no-op, which
 * checksums a rewrite must patch is decided from nw_proto / nw_frag, and dec_ttl on a TTL
 * ≤ 1 ends the action list with a `ttl_expired` drop. Only NORMAL, FLOOD and ALL stay
 * symbolic: the MAC table and the port states change between packets.
 *
 * Program layout (words of a Uint32Array, from `base`):
 *   [base+0] total length in words (header included)
 *   [base+1] nRules
 *   [base+2 … +2+nRules) ids of every rule the lookups matched, in lookup order (a rule
 *            matched twice through resubmits appears twice): the executor credits each one
 *            packet and the frame's bytes, on cache hits too, so counters are exact
 *   then ops: an opcode followed by OP_OPERANDS[opcode] operands (see OP below).
 *
 * Semantics follow Open vSwitch:
 * - resubmit(port,table): look up in `table` (255 = the current one) with in_port = port
 *   for the lookup only (restored afterwards, so NORMAL and IN_PORT still see the real
 *   in-port); then continue with the caller's remaining actions. goto_table:N is treated
 *   as resubmit(,N) (it is the last instruction of a flow anyway).
 * - A miss in any table runs no actions; a frame that ends up with no output counts as
 *   `table_miss` when some lookup missed, else as `action_drop`. The table-miss rule of
 *   table 0 (the FlowTable installs priority=0,actions=NORMAL) is an ordinary rule here.
 * - Nesting deeper than MAX_DEPTH, or more than MAX_LOOKUPS lookups in one translation
 *   (a resubmit loop, an exponential fan-out), aborts: the program keeps the rule credits
 *   and drops the frame (`resubmit_limit`), as OVS does with "recursion too deep".
 * - dec_ttl on TTL 0/1: drop (`ttl_expired`) and stop the current action list; outputs
 *   already emitted stand (OVS: "processing of the current set of actions then stops").
 * - CONTROLLER: reason `no_match` when the rule is a table-miss rule (priority 0, match
 *   all), else `action`. (dec_ttl expiry is a counted drop, not an invalid_ttl packet-in.)
 * - output:TABLE (in a packet-out's actions) runs the frame through table 0.
 * - metadata is pipeline state only (changes lookups, emits no op); tun_id emits
 *   SET_TUNNEL for a later tunnel port's encapsulation.
 *
 * Cost model: one TableView.lookup per table visited plus a loop over the actions; no
 * allocation (the bigint operands of set_tunnel and load are converted once per action
 * object and remembered in a WeakMap). Tracing (`traceSteps`, management path only)
 * allocates a step per lookup.
 */
import { MAX_TABLES, OFPP, type Action, type WritableField } from '../flow/types.js';
import { DropReason } from '../packet/drop.js';
import { K, KEY_WORDS, NW_FRAG_LATER } from '../packet/key.js';
import type { Rule, TableView } from '../table/types.js';

/**
 * Opcodes. Ops below FIRST_WRITE_OP do not touch the frame's bytes; those from it do (the
 * executor copies the frame first when it has already been output: output-copy semantics).
 */
export const OP = {
  /** port */
  OUTPUT: 1,
  /** inPort vlan srcHi srcLo dstHi dstLo — the key as the action saw it; learn + look up at run time. */
  NORMAL: 2,
  /** inPort — every port that is up except inPort. */
  FLOOD: 3,
  /** inPort — every port except inPort. */
  ALL: 4,
  /** (none) — no local port yet: counted as `no_local_port`. */
  LOCAL: 5,
  /** maxLen table ruleId reason(PACKET_IN_ACTION | PACKET_IN_NO_MATCH) */
  CONTROLLER: 6,
  /** reason (DropReason) — counted; emitted once when the frame ends up nowhere. */
  DROP: 7,
  /** hi lo — tunnel id for a later encapsulating output (no bytes change). */
  SET_TUNNEL: 8,
  // ---- ops that rewrite bytes ----
  /** hi lo */
  SET_DL_SRC: 16,
  /** hi lo */
  SET_DL_DST: 17,
  /** addr l4kind — IPv4 source; patches the IPv4 checksum and the TCP/UDP pseudo-header sum. */
  SET_NW_SRC: 18,
  /** addr l4kind */
  SET_NW_DST: 19,
  /** tos — the whole IPv4 TOS byte (ECN kept by the translator). */
  SET_NW_TOS: 20,
  /** ttl — IPv4 TTL */
  SET_NW_TTL: 21,
  /** (none) — IPv4 TTL - 1 with checksum update; the translator checked TTL > 1. */
  DEC_TTL: 22,
  /** port l4kind — TCP/UDP source port with checksum update. */
  SET_TP_SRC: 23,
  /** port l4kind */
  SET_TP_DST: 24,
  /** w0 w1 w2 w3 l4kind — IPv6 source (network-order words); patches TCP/UDP/ICMPv6 checksums. */
  SET_IPV6_SRC: 25,
  /** w0 w1 w2 w3 l4kind */
  SET_IPV6_DST: 26,
  /** tc — IPv6 traffic class */
  SET_IPV6_TC: 27,
  /** hlim — IPv6 hop limit */
  SET_HLIM: 28,
  /** (none) — IPv6 hop limit - 1 */
  DEC_HLIM: 29,
  /** vid — outer tag's VID (the frame is tagged). */
  SET_VLAN_VID: 30,
  /** pcp — outer tag's PCP (the frame is tagged). */
  SET_VLAN_PCP: 31,
  /** tpid tci — push a new outer tag (TCI as on the wire). */
  PUSH_VLAN: 32,
  /** (none) — pop the outer tag (the frame is tagged). */
  POP_VLAN: 33,
} as const;

export const FIRST_WRITE_OP = 16;

/** Operand count per opcode. */
export const OP_OPERANDS: Readonly<Uint8Array> = (() => {
  const n = new Uint8Array(64);
  n[OP.OUTPUT] = 1;
  n[OP.NORMAL] = 6;
  n[OP.FLOOD] = 1;
  n[OP.ALL] = 1;
  n[OP.LOCAL] = 0;
  n[OP.CONTROLLER] = 4;
  n[OP.DROP] = 1;
  n[OP.SET_TUNNEL] = 2;
  n[OP.SET_DL_SRC] = 2;
  n[OP.SET_DL_DST] = 2;
  n[OP.SET_NW_SRC] = 2;
  n[OP.SET_NW_DST] = 2;
  n[OP.SET_NW_TOS] = 1;
  n[OP.SET_NW_TTL] = 1;
  n[OP.DEC_TTL] = 0;
  n[OP.SET_TP_SRC] = 2;
  n[OP.SET_TP_DST] = 2;
  n[OP.SET_IPV6_SRC] = 5;
  n[OP.SET_IPV6_DST] = 5;
  n[OP.SET_IPV6_TC] = 1;
  n[OP.SET_HLIM] = 1;
  n[OP.DEC_HLIM] = 0;
  n[OP.SET_VLAN_VID] = 1;
  n[OP.SET_VLAN_PCP] = 1;
  n[OP.PUSH_VLAN] = 2;
  n[OP.POP_VLAN] = 0;
  return n;
})();

/** Which transport checksum an L3/L4 rewrite must patch. */
export const L4_NONE = 0;
export const L4_TCP = 1;
export const L4_UDP = 2;
export const L4_ICMPV6 = 3;

/** Packet-in reasons as program operands. */
export const PACKET_IN_ACTION = 0;
export const PACKET_IN_NO_MATCH = 1;

/** Program header. */
export const PROG_LEN = 0;
export const PROG_N_RULES = 1;
export const PROG_RULES = 2;

/** Deepest resubmit/goto_table nesting (OVS: MAX_DEPTH 64). */
export const MAX_DEPTH = 64;
/** Most lookups in one translation (OVS: MAX_RESUBMITS 4096). */
export const MAX_LOOKUPS = 4096;
/** Default capacity of the op arena, in words. */
export const DEFAULT_OPS_CAPACITY = 16_384;

const ETH_TYPE_IPV4 = 0x0800;
const ETH_TYPE_IPV6 = 0x86dd;
const TPID_8021Q = 0x8100;
const TCI_PRESENT = 0x1000;
const NO_PORT = -1;

/** One lookup of a trace: which rule in which table, its actions, and the key after them. */
export interface TraceStep {
  /** 0 for the first lookup; +1 per nested resubmit/goto_table. */
  depth: number;
  table: number;
  /** in_port the lookup used (resubmit(port,…) changes it for the lookup only). */
  inPort: number;
  /** -1 for a miss. */
  ruleId: number;
  /** -1 for a miss. */
  priority: number;
  cookie: bigint;
  actions: readonly Action[];
  /** The key after this rule's actions (and those of resubmits nested in them). */
  key: Uint32Array;
}

/** Bigint operands (set_tunnel, load) as 32-bit words, least significant first. */
const bigWords = new WeakMap<object, Uint32Array>();
function wordsOfBig(owner: object, v: bigint): Uint32Array {
  let w = bigWords.get(owner);
  if (w === undefined) {
    w = new Uint32Array(4);
    for (let i = 0; i < 4; i++) w[i] = Number((v >> BigInt(32 * i)) & 0xffffffffn);
    bigWords.set(owner, w);
  }
  return w;
}

function isTableMissRule(rule: Rule): boolean {
  if (rule.priority !== 0) return false;
  const m = rule.match.mask;
  for (let w = 0; w < m.length; w++) if (m[w] !== 0) return false;
  return true;
}

export class Translator {
  /** Set to an array to record a trace (management path); null on the data path. */
  traceSteps: TraceStep[] | null = null;

  private readonly table: TableView;
  /**
   * The key as the actions have left it: src[srcOff … +KEY_WORDS). Until the first write it
   * is the caller's key row itself (most translations modify nothing, and copying 39 words
   * costs as much as a hash); mut() copies it into the scratch key `k` on the first write.
   */
  private src: Uint32Array = new Uint32Array(KEY_WORDS);
  private srcOff = 0;
  /** The scratch key that actions modify. */
  private readonly k = new Uint32Array(KEY_WORDS);
  private readonly rules = new Uint32Array(MAX_LOOKUPS + 1);
  private nRules = 0;
  private readonly ops: Uint32Array;
  private nOps = 0;
  private nLookups = 0;
  /** Ops that send the frame somewhere (or to the controller, or count a drop). */
  private nOutputs = 0;
  private nDrops = 0;
  private missed = false;
  private abort = 0;
  /** Field values for load/move, least significant word first. */
  private readonly fvA = new Uint32Array(4);
  private readonly fvB = new Uint32Array(4);

  constructor(table: TableView, opsCapacity = DEFAULT_OPS_CAPACITY) {
    this.table = table;
    this.ops = new Uint32Array(opsCapacity);
  }

  /** Length in words of the program last translated (header included). */
  get length(): number {
    return PROG_RULES + this.nRules + this.nOps;
  }

  /** A copy of the key as the last translation left it (management path). */
  finalKey(): Uint32Array {
    return this.src.slice(this.srcOff, this.srcOff + KEY_WORDS);
  }

  /**
   * Translates the frame with key words key[keyOff … +KEY_WORDS) through the table,
   * starting in table 0. Returns the program's length; writeProgram() copies it out.
   */
  translate(key: Uint32Array, keyOff: number): number {
    this.begin(key, keyOff);
    this.doTable(0, 0, NO_PORT);
    return this.finish();
  }

  /**
   * Translates an explicit action list (packet-out) for the frame with this key, as if a
   * rule with these actions had matched; resubmits inside it look the table up.
   */
  translateActions(actions: readonly Action[], key: Uint32Array, keyOff: number): number {
    this.begin(key, keyOff);
    this.runActions(actions, 0, 0, -1, false);
    return this.finish();
  }

  /** Writes the last program at out[off …]; returns its length. */
  writeProgram(out: Uint32Array, off: number): number {
    const nRules = this.nRules;
    const nOps = this.nOps;
    const len = PROG_RULES + nRules + nOps;
    out[off + PROG_LEN] = len;
    out[off + PROG_N_RULES] = nRules;
    const rules = this.rules;
    let p = off + PROG_RULES;
    for (let i = 0; i < nRules; i++) out[p++] = rules[i]!;
    const ops = this.ops;
    for (let i = 0; i < nOps; i++) out[p++] = ops[i]!;
    return len;
  }

  private begin(key: Uint32Array, keyOff: number): void {
    this.src = key;
    this.srcOff = keyOff;
    this.nRules = 0;
    this.nOps = 0;
    this.nLookups = 0;
    this.nOutputs = 0;
    this.nDrops = 0;
    this.missed = false;
    this.abort = 0;
  }

  /** The scratch key, after copying the key into it on the first write. */
  private mut(): Uint32Array {
    const k = this.k;
    if (this.src !== k) {
      const src = this.src;
      const o = this.srcOff;
      for (let w = 0; w < KEY_WORDS; w++) k[w] = src[o + w]!;
      this.src = k;
      this.srcOff = 0;
    }
    return k;
  }

  private finish(): number {
    if (this.abort !== 0) {
      // Keep the credits; drop the frame.
      this.nOps = 0;
      this.emit1(OP.DROP, this.abort);
      this.abort = 0;
    } else if (this.nOutputs === 0 && this.nDrops === 0) {
      this.emit1(OP.DROP, this.missed ? DropReason.TABLE_MISS : DropReason.ACTION_DROP);
    }
    return this.length;
  }

  // ---- lookups ----------------------------------------------------------------------

  private doTable(tableId: number, depth: number, inPortOverride: number): void {
    if (depth >= MAX_DEPTH || this.nLookups >= MAX_LOOKUPS) {
      this.abort = DropReason.RESUBMIT_LIMIT;
      return;
    }
    this.nLookups++;
    const table = this.table;
    let id: number;
    let lookupInPort: number;
    if (inPortOverride === NO_PORT) {
      id = table.lookup(tableId, this.src, this.srcOff);
      lookupInPort = this.src[this.srcOff + K.IN_PORT]!;
    } else {
      const k = this.mut();
      const savedInPort = k[K.IN_PORT]!;
      k[K.IN_PORT] = inPortOverride;
      id = table.lookup(tableId, k, 0);
      lookupInPort = inPortOverride;
      k[K.IN_PORT] = savedInPort;
    }
    const rule = id >= 0 ? table.rule(id) : undefined;
    let step: TraceStep | undefined;
    if (this.traceSteps !== null) {
      step = {
        depth,
        table: tableId,
        inPort: lookupInPort,
        ruleId: rule === undefined ? -1 : id,
        priority: rule === undefined ? -1 : rule.priority,
        cookie: rule === undefined ? 0n : rule.cookie,
        actions: rule === undefined ? [] : rule.actions,
        key: this.finalKey(),
      };
      this.traceSteps.push(step);
    }
    if (rule === undefined) {
      this.missed = true;
      return;
    }
    this.rules[this.nRules++] = id;
    this.runActions(rule.actions, depth, tableId, id, rule.priority === 0 && isTableMissRule(rule));
    if (step !== undefined) step.key = this.finalKey();
  }

  /** Runs one action list; returns early after dec_ttl expiry or an abort. */
  private runActions(actions: readonly Action[], depth: number, tableId: number, ruleId: number, tableMiss: boolean): void {
    for (let i = 0; i < actions.length; i++) {
      if (this.abort !== 0) return;
      const a = actions[i]!;
      switch (a.type) {
        case 'output':
          // output:TABLE (packet-out) submits the frame to table 0, as a resubmit.
          if (a.port === OFPP.TABLE) this.doTable(0, depth + 1, NO_PORT);
          else this.output(a.port, tableId, ruleId, tableMiss, 0xffff);
          break;
        case 'normal':
          this.emitNormal();
          break;
        case 'flood':
          this.emit1(OP.FLOOD, this.src[this.srcOff + K.IN_PORT]!);
          this.nOutputs++;
          break;
        case 'all':
          this.emit1(OP.ALL, this.src[this.srcOff + K.IN_PORT]!);
          this.nOutputs++;
          break;
        case 'in_port':
          this.emit1(OP.OUTPUT, this.src[this.srcOff + K.IN_PORT]!);
          this.nOutputs++;
          break;
        case 'local':
          this.emit0(OP.LOCAL);
          this.nOutputs++;
          break;
        case 'controller':
          this.emitController(a.maxLen, tableId, ruleId, tableMiss);
          break;
        case 'drop':
          break;
        case 'mod_vlan_vid':
          this.setVlanVid(a.vid);
          break;
        case 'mod_vlan_pcp':
          this.setVlanPcp(a.pcp);
          break;
        case 'push_vlan':
          this.pushVlan(a.tpid, 0);
          break;
        case 'strip_vlan':
          this.popVlan();
          break;
        case 'mod_dl_src':
          this.setDl(true, a.hi, a.lo);
          break;
        case 'mod_dl_dst':
          this.setDl(false, a.hi, a.lo);
          break;
        case 'mod_nw_src':
          this.setNw(true, a.addr);
          break;
        case 'mod_nw_dst':
          this.setNw(false, a.addr);
          break;
        case 'mod_nw_tos':
          this.setNwTos(a.tos);
          break;
        case 'dec_ttl':
          if (!this.decTtl()) return;
          break;
        case 'mod_tp_src':
          this.setTp(true, a.port);
          break;
        case 'mod_tp_dst':
          this.setTp(false, a.port);
          break;
        case 'set_field':
          this.setFieldFromKeyWords(a.field, a.value);
          break;
        case 'set_tunnel': {
          const w = wordsOfBig(a, a.tunId);
          this.setTunnel(w[1]!, w[0]!);
          break;
        }
        case 'load':
          this.load(a, a.field, a.value, a.ofs, a.nBits);
          break;
        case 'move':
          this.move(a.src, a.srcOfs, a.dst, a.dstOfs, a.nBits);
          break;
        case 'resubmit':
          this.doTable(a.table === MAX_TABLES ? tableId : a.table, depth + 1, a.port === OFPP.IN_PORT ? NO_PORT : a.port);
          break;
        case 'goto_table':
          this.doTable(a.table, depth + 1, NO_PORT);
          break;
        default: {
          const never: never = a;
          void never;
        }
      }
    }
  }

  // ---- outputs ----------------------------------------------------------------------

  private output(port: number, tableId: number, ruleId: number, tableMiss: boolean, maxLen: number): void {
    const inPort = this.src[this.srcOff + K.IN_PORT]!;
    switch (port) {
      case OFPP.IN_PORT:
        this.emit1(OP.OUTPUT, inPort);
        break;
      case OFPP.NORMAL:
        this.emitNormal();
        return;
      case OFPP.FLOOD:
        this.emit1(OP.FLOOD, inPort);
        break;
      case OFPP.ALL:
        this.emit1(OP.ALL, inPort);
        break;
      case OFPP.LOCAL:
        this.emit0(OP.LOCAL);
        break;
      case OFPP.CONTROLLER:
        this.emitController(maxLen, tableId, ruleId, tableMiss);
        return;
      case OFPP.NONE:
        return;
      default:
        // OpenFlow: output to the in-port is not sent (only output:IN_PORT does that).
        if (port === inPort) return;
        this.emit1(OP.OUTPUT, port);
    }
    this.nOutputs++;
  }

  private emitNormal(): void {
    const k = this.src;
    const o = this.srcOff;
    this.emit6(
      OP.NORMAL,
      k[o + K.IN_PORT]!,
      k[o + K.VLAN_TCI]! & 0xfff,
      k[o + K.DL_SRC_HI]!,
      k[o + K.DL_SRC_LO]!,
      k[o + K.DL_DST_HI]!,
      k[o + K.DL_DST_LO]!,
    );
    this.nOutputs++;
  }

  private emitController(maxLen: number, tableId: number, ruleId: number, tableMiss: boolean): void {
    const reason = tableMiss ? PACKET_IN_NO_MATCH : PACKET_IN_ACTION;
    if (this.nOps + 5 > this.ops.length) return this.overflow();
    const ops = this.ops;
    let n = this.nOps;
    ops[n++] = OP.CONTROLLER;
    ops[n++] = maxLen;
    ops[n++] = tableId;
    ops[n++] = ruleId < 0 ? 0xffffffff : ruleId;
    ops[n++] = reason;
    this.nOps = n;
    this.nOutputs++;
  }

  // ---- field writes (key + op) --------------------------------------------------------

  private isIpv4(): boolean {
    return this.src[this.srcOff + K.DL_TYPE] === ETH_TYPE_IPV4;
  }
  private isIpv6(): boolean {
    return this.src[this.srcOff + K.DL_TYPE] === ETH_TYPE_IPV6;
  }
  private isTagged(): boolean {
    return (this.src[this.srcOff + K.VLAN_TCI]! & TCI_PRESENT) !== 0;
  }
  /** Which transport checksum an address/port rewrite patches (none in a later fragment). */
  private l4Kind(): number {
    const k = this.src;
    const o = this.srcOff;
    if ((k[o + K.NW_FRAG]! & NW_FRAG_LATER) !== 0) return L4_NONE;
    const proto = k[o + K.NW_PROTO]!;
    if (proto === 6) return L4_TCP;
    if (proto === 17) return L4_UDP;
    if (proto === 58 && this.isIpv6()) return L4_ICMPV6;
    return L4_NONE;
  }

  private setDl(src: boolean, hi: number, lo: number): void {
    const k = this.mut();
    hi &= 0xffff;
    lo >>>= 0;
    k[src ? K.DL_SRC_HI : K.DL_DST_HI] = hi;
    k[src ? K.DL_SRC_LO : K.DL_DST_LO] = lo;
    this.emit2(src ? OP.SET_DL_SRC : OP.SET_DL_DST, hi, lo);
  }

  private setNw(src: boolean, addr: number): void {
    if (!this.isIpv4()) return;
    addr >>>= 0;
    this.mut()[src ? K.NW_SRC : K.NW_DST] = addr;
    this.emit2(src ? OP.SET_NW_SRC : OP.SET_NW_DST, addr, this.l4Kind());
  }

  /** Sets the DSCP bits (tos & 0xfc) and keeps the frame's ECN bits. */
  private setNwTos(tos: number): void {
    const k = this.mut();
    const v4 = this.isIpv4();
    if (!v4 && !this.isIpv6()) return;
    const t = (k[K.NW_TOS]! & 0x03) | (tos & 0xfc);
    k[K.NW_TOS] = t;
    this.emit1(v4 ? OP.SET_NW_TOS : OP.SET_IPV6_TC, t);
  }

  private setNwTtl(ttl: number): void {
    const v4 = this.isIpv4();
    if (!v4 && !this.isIpv6()) return;
    ttl &= 0xff;
    this.mut()[K.NW_TTL] = ttl;
    this.emit1(v4 ? OP.SET_NW_TTL : OP.SET_HLIM, ttl);
  }

  /** Returns false when the TTL expired (the current action list stops). */
  private decTtl(): boolean {
    const v4 = this.isIpv4();
    if (!v4 && !this.isIpv6()) return true;
    const k = this.mut();
    const ttl = k[K.NW_TTL]!;
    if (ttl <= 1) {
      this.emit1(OP.DROP, DropReason.TTL_EXPIRED);
      this.nDrops++;
      return false;
    }
    k[K.NW_TTL] = ttl - 1;
    this.emit0(v4 ? OP.DEC_TTL : OP.DEC_HLIM);
    return true;
  }

  private setTp(src: boolean, port: number): void {
    const kind = this.l4Kind();
    if (kind !== L4_TCP && kind !== L4_UDP) return;
    port &= 0xffff;
    this.mut()[src ? K.TP_SRC : K.TP_DST] = port;
    this.emit2(src ? OP.SET_TP_SRC : OP.SET_TP_DST, port, kind);
  }

  private setIpv6(src: boolean, w0: number, w1: number, w2: number, w3: number): void {
    if (!this.isIpv6()) return;
    const k = this.mut();
    const base = src ? K.IPV6_SRC : K.IPV6_DST;
    k[base] = w0;
    k[base + 1] = w1;
    k[base + 2] = w2;
    k[base + 3] = w3;
    const kind = this.l4Kind();
    if (this.nOps + 6 > this.ops.length) return this.overflow();
    const ops = this.ops;
    let n = this.nOps;
    ops[n++] = src ? OP.SET_IPV6_SRC : OP.SET_IPV6_DST;
    ops[n++] = k[base]!;
    ops[n++] = k[base + 1]!;
    ops[n++] = k[base + 2]!;
    ops[n++] = k[base + 3]!;
    ops[n++] = kind;
    this.nOps = n;
  }

  /** mod_vlan_vid: rewrite the outer tag's VID, or push a tag with it (OpenFlow 1.0). */
  private setVlanVid(vid: number): void {
    vid &= 0xfff;
    if (!this.isTagged()) return this.pushVlan(TPID_8021Q, vid);
    const k = this.mut();
    k[K.VLAN_TCI] = (k[K.VLAN_TCI]! & ~0xfff) | vid;
    this.emit1(OP.SET_VLAN_VID, vid);
  }

  /** mod_vlan_pcp: rewrite the outer tag's PCP, or push a tag (VID 0) with it. */
  private setVlanPcp(pcp: number): void {
    pcp &= 7;
    if (!this.isTagged()) return this.pushVlan(TPID_8021Q, pcp << 13);
    const k = this.mut();
    k[K.VLAN_TCI] = (k[K.VLAN_TCI]! & 0x1fff) | (pcp << 13);
    this.emit1(OP.SET_VLAN_PCP, pcp);
  }

  /** vlan_tci: CFI clear = strip the tag; else set VID and PCP (pushing a tag if none). */
  private setVlanTci(tci: number): void {
    if ((tci & TCI_PRESENT) === 0) return this.popVlan();
    if (!this.isTagged()) return this.pushVlan(TPID_8021Q, tci & ~TCI_PRESENT & 0xffff);
    this.setVlanVid(tci & 0xfff);
    this.setVlanPcp((tci >>> 13) & 7);
  }

  /** Push a new outer tag; the old outer tag becomes the inner one in the key. */
  private pushVlan(tpid: number, wireTci: number): void {
    const k = this.mut();
    k[K.VLAN2_TCI] = k[K.VLAN_TCI]!;
    k[K.VLAN2_TPID] = k[K.VLAN_TPID]!;
    k[K.VLAN_TCI] = (wireTci & 0xffff & ~TCI_PRESENT) | TCI_PRESENT;
    k[K.VLAN_TPID] = tpid & 0xffff;
    this.emit2(OP.PUSH_VLAN, tpid & 0xffff, wireTci & 0xffff & ~TCI_PRESENT);
  }

  private popVlan(): void {
    if (!this.isTagged()) return;
    const k = this.mut();
    k[K.VLAN_TCI] = k[K.VLAN2_TCI]!;
    k[K.VLAN_TPID] = k[K.VLAN2_TPID]!;
    k[K.VLAN2_TCI] = 0;
    k[K.VLAN2_TPID] = 0;
    this.emit0(OP.POP_VLAN);
  }

  private setTunnel(hi: number, lo: number): void {
    const k = this.mut();
    k[K.TUN_ID_HI] = hi;
    k[K.TUN_ID] = lo;
    this.emit2(OP.SET_TUNNEL, hi, lo);
  }

  private setMetadata(hi: number, lo: number): void {
    this.mut()[K.METADATA_HI] = hi;
    this.mut()[K.METADATA_LO] = lo;
  }

  /**
   * set_field: `v` holds the field's key words, most significant first, each value at its
   * position in the key word (flow/fields.ts FIELDS[field].words): dl_*: [hi, lo]; ipv6_*:
   * four words; tun_id and metadata: [hi, lo]; dl_vlan: 0x1000|vid; dl_vlan_pcp:
   * pcp<<13|0x1000; ip_dscp and nw_tos: the TOS byte's DSCP bits (dscp<<2).
   */
  private setFieldFromKeyWords(field: WritableField, v: Uint32Array): void {
    const v0 = v[0] ?? 0;
    switch (field) {
      case 'dl_src':
        return this.setDl(true, v0, v[1] ?? 0);
      case 'dl_dst':
        return this.setDl(false, v0, v[1] ?? 0);
      case 'dl_vlan':
        return this.setVlanVid(v0 & 0xfff);
      case 'dl_vlan_pcp':
        return this.setVlanPcp((v0 >>> 13) & 7);
      case 'vlan_tci':
        return this.setVlanTci(v0 & 0xffff);
      case 'nw_src':
        return this.setNw(true, v0);
      case 'nw_dst':
        return this.setNw(false, v0);
      case 'nw_tos':
        return this.setNwTos(v0 & 0xfc);
      case 'ip_dscp':
        return this.setNwTos(v0 & 0xfc);
      case 'nw_ttl':
        return this.setNwTtl(v0);
      case 'tp_src':
        return this.setTp(true, v0);
      case 'tp_dst':
        return this.setTp(false, v0);
      case 'ipv6_src':
        return this.setIpv6(true, v0, v[1] ?? 0, v[2] ?? 0, v[3] ?? 0);
      case 'ipv6_dst':
        return this.setIpv6(false, v0, v[1] ?? 0, v[2] ?? 0, v[3] ?? 0);
      case 'tun_id':
        return this.setTunnel(v0, v[1] ?? 0);
      case 'metadata':
        return this.setMetadata(v0, v[1] ?? 0);
      default: {
        const never: never = field;
        void never;
      }
    }
  }

  // ---- load / move: fields as bit strings (least significant word first) ---------------

  /** Reads `field` of the scratch key into fv (fv[0] = least significant 32 bits). */
  private readField(field: WritableField, fv: Uint32Array): void {
    const k = this.mut();
    fv.fill(0);
    switch (field) {
      case 'dl_src':
        fv[0] = k[K.DL_SRC_LO]!;
        fv[1] = k[K.DL_SRC_HI]!;
        return;
      case 'dl_dst':
        fv[0] = k[K.DL_DST_LO]!;
        fv[1] = k[K.DL_DST_HI]!;
        return;
      case 'dl_vlan':
        fv[0] = k[K.VLAN_TCI]! & 0xfff;
        return;
      case 'dl_vlan_pcp':
        fv[0] = (k[K.VLAN_TCI]! >>> 13) & 7;
        return;
      case 'vlan_tci':
        fv[0] = k[K.VLAN_TCI]! & 0xffff;
        return;
      case 'nw_src':
        fv[0] = k[K.NW_SRC]!;
        return;
      case 'nw_dst':
        fv[0] = k[K.NW_DST]!;
        return;
      case 'nw_tos':
        fv[0] = k[K.NW_TOS]! & 0xfc;
        return;
      case 'ip_dscp':
        fv[0] = (k[K.NW_TOS]! >>> 2) & 0x3f;
        return;
      case 'nw_ttl':
        fv[0] = k[K.NW_TTL]!;
        return;
      case 'tp_src':
        fv[0] = k[K.TP_SRC]!;
        return;
      case 'tp_dst':
        fv[0] = k[K.TP_DST]!;
        return;
      case 'ipv6_src':
      case 'ipv6_dst': {
        const b = field === 'ipv6_src' ? K.IPV6_SRC : K.IPV6_DST;
        fv[0] = k[b + 3]!;
        fv[1] = k[b + 2]!;
        fv[2] = k[b + 1]!;
        fv[3] = k[b]!;
        return;
      }
      case 'tun_id':
        fv[0] = k[K.TUN_ID]!;
        fv[1] = k[K.TUN_ID_HI]!;
        return;
      case 'metadata':
        fv[0] = k[K.METADATA_LO]!;
        fv[1] = k[K.METADATA_HI]!;
        return;
      default: {
        const never: never = field;
        void never;
      }
    }
  }

  /** Writes fv (least significant word first) to `field`, with the op that applies it. */
  private writeField(field: WritableField, fv: Uint32Array): void {
    const f0 = fv[0]!;
    switch (field) {
      case 'dl_src':
        return this.setDl(true, fv[1]!, f0);
      case 'dl_dst':
        return this.setDl(false, fv[1]!, f0);
      case 'dl_vlan':
        return this.setVlanVid(f0);
      case 'dl_vlan_pcp':
        return this.setVlanPcp(f0);
      case 'vlan_tci':
        return this.setVlanTci(f0 & 0xffff);
      case 'nw_src':
        return this.setNw(true, f0);
      case 'nw_dst':
        return this.setNw(false, f0);
      case 'nw_tos':
        return this.setNwTos(f0);
      case 'ip_dscp':
        return this.setNwTos((f0 << 2) & 0xfc);
      case 'nw_ttl':
        return this.setNwTtl(f0);
      case 'tp_src':
        return this.setTp(true, f0);
      case 'tp_dst':
        return this.setTp(false, f0);
      case 'ipv6_src':
        return this.setIpv6(true, fv[3]!, fv[2]!, fv[1]!, f0);
      case 'ipv6_dst':
        return this.setIpv6(false, fv[3]!, fv[2]!, fv[1]!, f0);
      case 'tun_id':
        return this.setTunnel(fv[1]!, f0);
      case 'metadata':
        return this.setMetadata(fv[1]!, f0);
      default: {
        const never: never = field;
        void never;
      }
    }
  }

  /** load:value->field[ofs..ofs+nBits-1] */
  private load(owner: object, field: WritableField, value: bigint, ofs: number, nBits: number): void {
    const src = wordsOfBig(owner, value);
    const dst = this.fvA;
    this.readField(field, dst);
    copyBits(src, 0, dst, ofs, nBits);
    this.writeField(field, dst);
  }

  /** move:src[srcOfs..]->dst[dstOfs..] (nBits bits) */
  private move(srcField: WritableField, srcOfs: number, dstField: WritableField, dstOfs: number, nBits: number): void {
    const src = this.fvB;
    const dst = this.fvA;
    this.readField(srcField, src);
    this.readField(dstField, dst);
    copyBits(src, srcOfs, dst, dstOfs, nBits);
    this.writeField(dstField, dst);
  }

  // ---- op arena ------------------------------------------------------------------------

  private overflow(): void {
    this.abort = DropReason.PROGRAM_TOO_LONG;
  }
  private emit0(op: number): void {
    if (this.nOps + 1 > this.ops.length) return this.overflow();
    this.ops[this.nOps++] = op;
  }
  private emit1(op: number, a: number): void {
    if (this.nOps + 2 > this.ops.length) return this.overflow();
    const ops = this.ops;
    const n = this.nOps;
    ops[n] = op;
    ops[n + 1] = a;
    this.nOps = n + 2;
  }
  private emit2(op: number, a: number, b: number): void {
    if (this.nOps + 3 > this.ops.length) return this.overflow();
    const ops = this.ops;
    const n = this.nOps;
    ops[n] = op;
    ops[n + 1] = a;
    ops[n + 2] = b;
    this.nOps = n + 3;
  }
  private emit6(op: number, a: number, b: number, c: number, d: number, e: number, f: number): void {
    if (this.nOps + 7 > this.ops.length) return this.overflow();
    const ops = this.ops;
    const n = this.nOps;
    ops[n] = op;
    ops[n + 1] = a;
    ops[n + 2] = b;
    ops[n + 3] = c;
    ops[n + 4] = d;
    ops[n + 5] = e;
    ops[n + 6] = f;
    this.nOps = n + 7;
  }
}

/** Copies nBits bits from src starting at bit srcOfs to dst starting at bit dstOfs (LSB-first words). */
function copyBits(src: Uint32Array, srcOfs: number, dst: Uint32Array, dstOfs: number, nBits: number): void {
  for (let i = 0; i < nBits; i++) {
    const s = srcOfs + i;
    const d = dstOfs + i;
    if (s >= 128 || d >= 128) return;
    const bit = (src[s >>> 5]! >>> (s & 31)) & 1;
    const w = d >>> 5;
    const m = 1 << (d & 31);
    dst[w] = bit !== 0 ? dst[w]! | m : dst[w]! & ~m;
  }
}
