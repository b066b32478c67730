/**
 * The OpenFlow model shared by the flow-syntax parser/printer (flow/), the flow table
 * (table/) and the data path (datapath/). Plain data; no behaviour.
 *
 * A match is a value and a mask over the flow-key words of packet/key.ts: a packet with key
 * `k` matches when `(k[w] & mask[w]) === value[w]` for every word `w`. `value` is always
 * normalised (`value[w] & ~mask[w] === 0`). Offset words (L3_OFF..L7_OFF) are never masked.
 */

/** OpenFlow reserved port numbers (OpenFlow 1.0 numbering, as ovs-ofctl prints them). */
export const OFPP = {
  IN_PORT: 0xfff8,
  TABLE: 0xfff9,
  NORMAL: 0xfffa,
  FLOOD: 0xfffb,
  ALL: 0xfffc,
  CONTROLLER: 0xfffd,
  LOCAL: 0xfffe,
  NONE: 0xffff,
} as const;

export const MAX_TABLES = 255;
export const MAX_PRIORITY = 65535;
export const DEFAULT_PRIORITY = 32768;

export interface Match {
  readonly value: Uint32Array; // KEY_WORDS words
  readonly mask: Uint32Array; // KEY_WORDS words
}

/** Fields an action may write with set_field / load / move (ovs-ofctl names). */
export type WritableField =
  | 'dl_src'
  | 'dl_dst'
  | 'dl_vlan'
  | 'dl_vlan_pcp'
  | 'vlan_tci'
  | 'nw_src'
  | 'nw_dst'
  | 'nw_tos'
  | 'ip_dscp'
  | 'nw_ttl'
  | 'tp_src'
  | 'tp_dst'
  | 'ipv6_src'
  | 'ipv6_dst'
  | 'tun_id'
  | 'metadata';

export type Action =
  | { type: 'output'; port: number } // a real port number (names are resolved when parsing)
  | { type: 'normal' }
  | { type: 'flood' }
  | { type: 'all' }
  | { type: 'in_port' }
  | { type: 'local' }
  | { type: 'controller'; maxLen: number } // 65535 = whole frame
  | { type: 'drop' } // only as the whole action list ("actions=drop")
  | { type: 'mod_vlan_vid'; vid: number }
  | { type: 'mod_vlan_pcp'; pcp: number }
  | { type: 'push_vlan'; tpid: number }
  | { type: 'strip_vlan' } // also spelled pop_vlan
  | { type: 'mod_dl_src'; hi: number; lo: number }
  | { type: 'mod_dl_dst'; hi: number; lo: number }
  | { type: 'mod_nw_src'; addr: number }
  | { type: 'mod_nw_dst'; addr: number }
  | { type: 'mod_nw_tos'; tos: number } // DSCP bits, as OpenFlow 1.0 (low 2 bits 0)
  | { type: 'dec_ttl' }
  | { type: 'mod_tp_src'; port: number }
  | { type: 'mod_tp_dst'; port: number }
  /** set_field:VALUE->FIELD: `value` holds the field's words (as in the key), full width. */
  | { type: 'set_field'; field: WritableField; value: Uint32Array }
  | { type: 'set_tunnel'; tunId: bigint } // set_tunnel / set_tunnel64
  /** load:VALUE->FIELD[ofs..ofs+nBits-1] (64-bit fields: tun_id, metadata, and the others). */
  | { type: 'load'; field: WritableField; value: bigint; ofs: number; nBits: number }
  /** move:SRC[a..b]->DST[c..d] */
  | { type: 'move'; src: WritableField; srcOfs: number; dst: WritableField; dstOfs: number; nBits: number }
  /** resubmit(port,table): port OFPP.IN_PORT = keep in_port; table MAX_TABLES = same table. */
  | { type: 'resubmit'; port: number; table: number }
  | { type: 'goto_table'; table: number };

export type ActionType = Action['type'];

/** Flags of a flow (ovs-ofctl names). */
export interface FlowFlags {
  sendFlowRem: boolean;
  checkOverlap: boolean;
  resetCounts: boolean;
  noPacketCounts: boolean;
  noByteCounts: boolean;
}

/** One flow as parsed from ovs-ofctl text (add-flow, or a line of add-flows FILE). */
export interface FlowSpec {
  table: number;
  priority: number;
  cookie: bigint;
  /** For mod-flows / del-flows: only flows whose cookie & cookieMask = cookie & cookieMask. 0 = any. */
  cookieMask: bigint;
  idleTimeout: number; // seconds, 0 = none
  hardTimeout: number; // seconds, 0 = none
  flags: FlowFlags;
  match: Match;
  actions: Action[];
}

/** A flow as a table holds it: a spec's contents without the filters, and its birth. */
export interface InstalledFlow {
  readonly table: number;
  readonly priority: number;
  readonly cookie: bigint;
  readonly idleTimeout: number;
  readonly hardTimeout: number;
  readonly flags: FlowFlags;
  readonly match: Match;
  readonly actions: readonly Action[];
  /** When the flow was added (ms, the table's clock: the data path's). */
  readonly createdAt: number;
}

export type FlowModCommand = 'add' | 'modify' | 'modify_strict' | 'delete' | 'delete_strict';

export interface FlowMod {
  command: FlowModCommand;
  /** For delete/modify: table MAX_TABLES (255) = all tables. */
  spec: FlowSpec;
  /** For delete: only flows with an output action to this port (OFPP.NONE = any). */
  outPort: number;
  /**
   * For add: when the rule was created (ms, the table's clock), if earlier than the apply:
   * a rule cloned from another site keeps its age, so its hard timeout keeps its deadline.
   */
  createdAt?: number;
}

export type FlowRemovedReason = 'idle_timeout' | 'hard_timeout' | 'delete' | 'group_delete' | 'meter_delete' | 'eviction';

/** Resolves port names in flow text and names port numbers when printing. */
export interface PortNames {
  numberOf(name: string): number | undefined;
  nameOf(num: number): string | undefined;
}
