/**
 * ovs-ofctl flow syntax → FlowSpec / Action[] / packet key (for `limectl trace`).
 *
 * Grammar (ovs-ofctl(8) "Flow Syntax"), as accepted here:
 *
 *   flow    := item* ["actions=" action-list]      items separated by ',' and/or white space
 *   item    := shorthand | flag | key "=" value ["/" mask]
 *   key     := a FIELDS name or alias | table | priority | cookie | idle_timeout |
 *              hard_timeout | out_port (delete) | duration, n_packets, n_bytes, idle_age,
 *              hard_age (ignored, so that dump-flows output can be fed back)
 *   actions := everything after "actions=" (must come last), split at top-level ',' or
 *              white space; "drop" alone, or nothing, is the list [{ type: 'drop' }] (so
 *              parseFlow never returns an empty list; formatActions prints [] as "drop"
 *              too, as OVS prints an empty list).
 *
 * Order of work in parseFlow: scan items left to right, building the match with setField
 * (a later item for the same field replaces an earlier one, as in OVS); then check every
 * named field's prerequisites against the finished match (so order does not matter:
 * `tp_dst=22,tcp` is fine); then parse actions, checking set-field/mod prerequisites
 * against the match.
 *
 * Errors: every failure is a FlowSyntaxError whose message names the offending token and
 * its 1-based column; `.caret` draws it. Error classes and their messages:
 *   malformed text       field in_port missing value / expected "name=value" / unbalanced parentheses
 *   unknown field        unknown field "nw_dstt"
 *   unknown action       unknown action "frob"
 *   unknown port         unknown port "vm9"
 *   bad value            bad value "1.2.3" for nw_src: invalid IPv4 address "1.2.3"
 *   bad mask             bad mask "33" for nw_src: prefix length must be 0..32
 *   non-maskable field   nw_proto does not accept a mask
 *   prerequisite         tp_dst requires a transport protocol: add "tcp" or "udp" (…)
 *   out of range         priority 65536 out of range (0..65535)
 *
 * Edge code: allocates freely; never on the packet path.
 */
import { parseIpv4, parseIpv6, parseMac } from '../util/addr.js';
import { K, KEY_WORDS, OFF_ABSENT, NW_FRAG_ANY, NW_FRAG_LATER } from '../packet/key.js';
import { DEFAULT_TTL } from '../packet/constants.js';
import {
  DL_TYPE_ARP,
  DL_TYPE_IPV4,
  DL_TYPE_IPV6,
  DL_TYPE_RARP,
  DL_VLAN_NONE,
  FIELD_ALIASES,
  FIELDS,
  NW_PROTO_ICMP,
  NW_PROTO_ICMPV6,
  NW_PROTO_TCP,
  NW_PROTO_UDP,
  SHORTHANDS,
  TCP_FLAG_NAMES,
  VLAN_TCI_PRESENT,
  isFieldName,
  isShorthand,
  type FieldFormat,
  type FieldName,
} from './fields.js';
import { getField, newMatch, setField } from './match.js';
import { exactDlType, prereqError } from './prereq.js';
import {
  DEFAULT_PRIORITY,
  MAX_PRIORITY,
  MAX_TABLES,
  OFPP,
  type Action,
  type FlowMod,
  type FlowModCommand,
  type FlowSpec,
  type Match,
  type PortNames,
  type WritableField,
} from './types.js';

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/** A flow text that cannot be parsed; the message names the token and its column. */
export class FlowSyntaxError extends Error {
  override readonly name = 'FlowSyntaxError';
  /** 1-based column of the offending token in the text. */
  readonly column: number;
  readonly token: string;
  /** The text, a newline, and carets under the token. */
  readonly caret: string;
  /** The message without the "flow syntax error at column N: " prefix. */
  readonly detail: string;

  constructor(text: string, start: number, token: string, detail: string) {
    super(`flow syntax error at column ${start + 1}: ${detail}`);
    this.column = start + 1;
    this.token = token;
    this.detail = detail;
    const line = text.replace(/[\t\r\n]/g, ' ');
    this.caret = `${line}\n${' '.repeat(start)}${'^'.repeat(Math.max(1, token.length))}`;
  }
}

/** Internal: a failure inside a value, before its position is known. */
class ValueError extends Error {}

/**
 * `table[key]` if `key` is the table's own entry: text is user input, and a plain object
 * also answers "constructor", "valueOf", "__proto__"… from its prototype.
 */
function lookup<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

// ---------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------

const UINT_RE = /^(?:0x[0-9a-f]+|[0-9]+)$/i;

/** Decimal or 0x-hex unsigned integer as a bigint; ValueError when not a number. */
function parseBigUint(s: string): bigint {
  if (!UINT_RE.test(s)) throw new ValueError(`"${s}" is not a number`);
  return BigInt(s);
}

/** Internal: a number that parsed but is out of range. */
class RangeValueError extends Error {}

function parseUintIn(s: string, max: number, what: string): number {
  const n = parseBigUint(s);
  if (n > BigInt(max)) throw new RangeValueError(`${what} ${s} out of range (0..${max})`);
  return Number(n);
}

function parseUint64(s: string, what: string): bigint {
  const n = parseBigUint(s);
  if (n > 0xffffffffffffffffn) throw new RangeValueError(`${what} ${s} out of range (64 bits)`);
  return n;
}

// ---------------------------------------------------------------------------------------
// Scanning
// ---------------------------------------------------------------------------------------

interface Item {
  key: string;
  keyStart: number;
  /** undefined: a bare word (no '='). */
  value: string | undefined;
  valueStart: number;
}

// Character codes: scanning compares numbers, not one-character strings (add-flows of
// 100,000 flows spends most of its parse time here).
const C_COMMA = 0x2c;
const C_SPACE = 0x20;
const C_TAB = 0x09;
const C_CR = 0x0d;
const C_LF = 0x0a;
const C_EQ = 0x3d;
const isDelimCode = (c: number): boolean => c === C_COMMA || c === C_SPACE || c === C_TAB || c === C_CR || c === C_LF;
const isDelim = (c: string): boolean => isDelimCode(c.charCodeAt(0));

/** Context for raising errors at positions in the original text. */
interface Ctx {
  text: string;
  ports: PortNames | undefined;
}

function fail(ctx: Ctx, start: number, token: string, detail: string): never {
  throw new FlowSyntaxError(ctx.text, start, token, detail);
}

/**
 * Splits text[from…to) into items; stops at an "actions" key and returns where its value
 * starts.
 */
function scanItems(ctx: Ctx, from: number, to: number): { items: Item[]; actionsStart: number | undefined; actionsKey: number } {
  const t = ctx.text;
  const items: Item[] = [];
  let i = from;
  for (;;) {
    while (i < to && isDelimCode(t.charCodeAt(i))) i++;
    if (i >= to) return { items, actionsStart: undefined, actionsKey: -1 };
    const keyStart = i;
    for (; i < to; i++) {
      const c = t.charCodeAt(i);
      if (c === C_EQ || isDelimCode(c)) break;
    }
    const key = t.slice(keyStart, i);
    if (key === '') {
      let j = i;
      while (j < to && !isDelimCode(t.charCodeAt(j))) j++;
      fail(ctx, keyStart, t.slice(keyStart, j), `expected "name=value", got "${t.slice(keyStart, j)}"`);
    }
    if (i >= to || t.charCodeAt(i) !== C_EQ) {
      if (key === 'actions') fail(ctx, keyStart, key, 'expected "actions=" followed by the actions');
      items.push({ key, keyStart, value: undefined, valueStart: i });
      continue;
    }
    i++; // '='
    if (key === 'actions' || key === 'action') return { items, actionsStart: i, actionsKey: keyStart };
    const valueStart = i;
    while (i < to && !isDelimCode(t.charCodeAt(i))) i++;
    items.push({ key, keyStart, value: t.slice(valueStart, i), valueStart });
  }
}

// ---------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------

const SPECIAL_PORTS: Readonly<Record<string, number>> = {
  IN_PORT: OFPP.IN_PORT,
  TABLE: OFPP.TABLE,
  NORMAL: OFPP.NORMAL,
  FLOOD: OFPP.FLOOD,
  ALL: OFPP.ALL,
  CONTROLLER: OFPP.CONTROLLER,
  LOCAL: OFPP.LOCAL,
  NONE: OFPP.NONE,
  ANY: OFPP.NONE,
};

/** Highest port number a real port may have (OpenFlow 1.0 OFPP_MAX - 1). */
export const MAX_PORT = 0xfeff;

/**
 * A port by number, special name (case-insensitive) or name known to `ports`. Numbers
 * 0xff00… are the reserved ports (65534 = LOCAL, as OVS reads them).
 */
function resolvePort(ctx: Ctx, s: string, start: number): number {
  if (UINT_RE.test(s)) {
    const n = parseBigUint(s);
    if (n <= BigInt(MAX_PORT)) return Number(n);
    if (n <= 0xffffn && Object.values(SPECIAL_PORTS).includes(Number(n))) return Number(n);
    fail(ctx, start, s, `port ${s} out of range (0..${MAX_PORT} or a reserved port)`);
  }
  const special = lookup(SPECIAL_PORTS, s.toUpperCase());
  if (special !== undefined) return special;
  const n = ctx.ports?.numberOf(s);
  if (n === undefined) fail(ctx, start, s, `unknown port "${s}"`);
  return n;
}

// ---------------------------------------------------------------------------------------
// Field values
// ---------------------------------------------------------------------------------------

interface Words {
  value: number[];
  mask: number[] | undefined;
}

function ipv6Words(bytes: Uint8Array): number[] {
  const w: number[] = [];
  for (let i = 0; i < 4; i++) w.push(((bytes[4 * i]! << 24) | (bytes[4 * i + 1]! << 16) | (bytes[4 * i + 2]! << 8) | bytes[4 * i + 3]!) >>> 0);
  return w;
}

function prefixWords(len: number, nWords: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < nWords; i++) {
    const bits = Math.max(0, Math.min(32, len - 32 * i));
    out.push(bits === 0 ? 0 : bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0);
  }
  return out;
}

/** An n-bit unsigned value (n ≤ 64) as `words.length` key words (hi first), shifted. */
function uintWords(n: bigint, nWords: number, shift: number): number[] {
  if (nWords === 1) return [(Number(n) * 2 ** shift) >>> 0];
  return [Number(n >> 32n) >>> 0, Number(n & 0xffffffffn) >>> 0];
}

function macWords(s: string): number[] {
  let m;
  try {
    m = parseMac(s);
  } catch (e) {
    throw new ValueError((e as Error).message);
  }
  return [m.hi, m.lo];
}

/** Parses a field's value text (no mask) into key words. */
function parseFieldValue(ctx: Ctx, field: FieldName, s: string, start: number): number[] {
  const spec = FIELDS[field];
  const format: FieldFormat = spec.format;
  switch (format) {
    case 'decimal':
    case 'hex': {
      const max = spec.nBits === 64 ? 0xffffffffffffffffn : (1n << BigInt(spec.nBits)) - 1n;
      const n = parseBigUint(s);
      if (n > max) throw new RangeValueError(`${field} ${s} out of range (0..${spec.nBits === 64 ? '2^64-1' : max.toString()})`);
      return uintWords(n, spec.words.length, spec.shift);
    }
    case 'mac':
      return macWords(s);
    case 'ipv4':
      try {
        return [parseIpv4(s)];
      } catch (e) {
        throw new ValueError((e as Error).message);
      }
    case 'ipv6':
      try {
        return ipv6Words(parseIpv6(s));
      } catch (e) {
        throw new ValueError((e as Error).message);
      }
    case 'port': {
      const p = resolvePort(ctx, s, start);
      if (p > MAX_PORT && p !== OFPP.LOCAL && p !== OFPP.CONTROLLER) fail(ctx, start, s, `${s} cannot be used as in_port`);
      return [p];
    }
    case 'vlan_vid': {
      const n = parseBigUint(s);
      if (n === BigInt(DL_VLAN_NONE)) return [0];
      if (n > 4095n) throw new RangeValueError(`dl_vlan ${s} out of range (0..4095, or 0xffff for no tag)`);
      return [VLAN_TCI_PRESENT | Number(n)];
    }
    case 'vlan_pcp': {
      const n = parseUintIn(s, 7, 'dl_vlan_pcp');
      return [(n << 13) | VLAN_TCI_PRESENT];
    }
    case 'frag':
    case 'tcp_flags':
      throw new Error(`${field} is parsed with its mask`);
    default: {
      const never: never = format;
      throw new Error(`unhandled format ${String(never)}`);
    }
  }
}

const FRAG_VALUES: Readonly<Record<string, [number, number]>> = {
  no: [0, NW_FRAG_ANY],
  yes: [NW_FRAG_ANY, NW_FRAG_ANY],
  first: [NW_FRAG_ANY, NW_FRAG_ANY | NW_FRAG_LATER],
  later: [NW_FRAG_ANY | NW_FRAG_LATER, NW_FRAG_ANY | NW_FRAG_LATER],
  not_later: [0, NW_FRAG_LATER],
};

/** tcp_flags: NUMBER[/MASK], "+syn-ack" (mask = the flags named) or "syn|ack" (exact). */
function parseTcpFlags(s: string): Words {
  if (/^[0-9]/.test(s)) {
    const [v, m] = s.split('/', 2) as [string, string | undefined];
    const value = Number(parseUintFlags(v));
    const mask = m === undefined ? 0xfff : Number(parseUintFlags(m));
    return { value: [value & mask], mask: [mask] };
  }
  const bit = (name: string): number => {
    const i = TCP_FLAG_NAMES.indexOf(name);
    if (i < 0) throw new ValueError(`unknown TCP flag "${name}"`);
    return 1 << i;
  };
  if (s.startsWith('+') || s.startsWith('-')) {
    let value = 0;
    let mask = 0;
    const re = /([+-])([a-z]+|\[[0-9]+\])/gy;
    let pos = 0;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      const b = bit(m[2]!);
      mask |= b;
      if (m[1] === '+') value |= b;
      pos = re.lastIndex;
    }
    if (pos !== s.length) throw new ValueError(`bad TCP flags "${s}"`);
    return { value: [value], mask: [mask] };
  }
  let value = 0;
  for (const name of s.split('|')) value |= bit(name);
  return { value: [value], mask: [0xfff] };
}

function parseUintFlags(s: string): number {
  const n = parseBigUint(s);
  if (n > 0xfffn) throw new RangeValueError(`tcp_flags ${s} out of range (12 bits)`);
  return Number(n);
}

/** A field's value with an optional "/mask", as key words. */
function parseFieldValueMasked(ctx: Ctx, field: FieldName, text: string, start: number): Words {
  const spec = FIELDS[field];
  const wrap = <T>(tokStart: number, tok: string, f: () => T, mask: boolean): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof RangeValueError) fail(ctx, tokStart, tok, e.message);
      if (e instanceof ValueError) {
        fail(ctx, tokStart, tok, mask ? `bad mask "${tok}" for ${field}: ${e.message}` : `bad value "${tok}" for ${field}: ${e.message}`);
      }
      throw e;
    }
  };
  if (spec.format === 'tcp_flags') return wrap(start, text, () => parseTcpFlags(text), false);
  if (spec.format === 'frag') {
    const fv = lookup(FRAG_VALUES, text);
    if (fv === undefined) fail(ctx, start, text, `bad value "${text}" for ip_frag: expected no, yes, first, later or not_later`);
    return { value: [fv[0]], mask: [fv[1]] };
  }
  const slash = text.indexOf('/');
  const vText = slash < 0 ? text : text.slice(0, slash);
  const value = wrap(start, vText, () => parseFieldValue(ctx, field, vText, start), false);
  if (slash < 0) return { value, mask: undefined };
  const mText = text.slice(slash + 1);
  const mStart = start + slash + 1;
  if (!spec.maskable) fail(ctx, start + slash, `/${mText}`, `${field} does not accept a mask`);
  if (mText === '') fail(ctx, start + slash, '/', `bad mask "" for ${field}: empty`);
  let mask: number[];
  if ((spec.format === 'ipv4' || spec.format === 'ipv6') && /^[0-9]+$/.test(mText)) {
    const max = spec.format === 'ipv4' ? 32 : 128;
    const len = Number(mText);
    if (len > max) fail(ctx, mStart, mText, `bad mask "${mText}" for ${field}: prefix length must be 0..${max}`);
    mask = prefixWords(len, spec.words.length);
  } else if (spec.format === 'decimal' || spec.format === 'hex') {
    // Masks of integer fields: any number of the field's width (OVS: 0x…/0x…).
    mask = wrap(mStart, mText, () => parseFieldValue(ctx, field, mText, mStart), true);
  } else {
    mask = wrap(mStart, mText, () => parseFieldValue(ctx, field, mText, mStart), true);
  }
  return { value, mask };
}

// ---------------------------------------------------------------------------------------
// Flows
// ---------------------------------------------------------------------------------------

export interface ParseFlowOptions {
  /** add-flow / mod-flows / del-flows (strictness does not change the syntax). */
  command: 'add' | 'modify' | 'delete';
  ports?: PortNames;
}

const FLAG_KEYS = {
  send_flow_rem: 'sendFlowRem',
  check_overlap: 'checkOverlap',
  reset_counts: 'resetCounts',
  no_packet_counts: 'noPacketCounts',
  no_byte_counts: 'noByteCounts',
} as const;

/** dump-flows fields that are accepted and ignored, so its output can be fed back. */
const IGNORED_KEYS = new Set(['duration', 'n_packets', 'n_bytes', 'idle_age', 'hard_age']);

/** Parses the match part (items) into `match`, returning the named fields for prereq checks. */
function applyMatchItem(ctx: Ctx, match: Match, it: Item, named: { field: FieldName; start: number; name: string }[]): boolean {
  if (isShorthand(it.key) && it.value === undefined) {
    const sh = SHORTHANDS[it.key];
    setField(match, 'dl_type', [sh.dlType]);
    if (sh.nwProto !== undefined) {
      setField(match, 'nw_proto', [sh.nwProto]);
      // Checked like a named nw_proto: a later dl_type (`icmp6,dl_type=0`) can take its
      // IP away, leaving a match no flow text can express.
      named.push({ field: 'nw_proto', start: it.keyStart, name: it.key });
    }
    return true;
  }
  const field: FieldName | undefined = isFieldName(it.key) ? it.key : lookup(FIELD_ALIASES, it.key);
  if (field === undefined) return false;
  if (it.value === undefined) fail(ctx, it.keyStart, it.key, `field ${it.key} missing value`);
  if (it.value === '') fail(ctx, it.keyStart, `${it.key}=`, `field ${it.key} missing value`);
  const w = parseFieldValueMasked(ctx, field, it.value, it.valueStart);
  setField(match, field, w.value, w.mask);
  // dl_vlan=0xffff: no tag at all, i.e. the whole TCI is 0 (OVS match_set_dl_vlan).
  if (field === 'dl_vlan' && w.value[0] === 0) setField(match, 'vlan_tci', [0], [0xffff]);
  named.push({ field, start: it.keyStart, name: it.key });
  return true;
}

function checkMatchPrereqs(ctx: Ctx, match: Match, named: readonly { field: FieldName; start: number; name: string }[]): void {
  const dl = exactDlType(match);
  for (const n of named) {
    // ovs-ofctl reads nw_src/nw_dst in an ARP match as arp_spa/arp_tpa (same key words).
    if ((n.field === 'nw_src' || n.field === 'nw_dst') && (dl === DL_TYPE_ARP || dl === DL_TYPE_RARP)) continue;
    const err = prereqError(n.name, FIELDS[n.field].prereq, match);
    if (err === undefined) continue;
    if (isShorthand(n.name)) {
      const sh = SHORTHANDS[n.name];
      fail(ctx, n.start, n.name, `${n.name} (dl_type=0x${sh.dlType.toString(16).padStart(4, '0')},nw_proto=${sh.nwProto}) conflicts with dl_type=0x${(dl ?? 0).toString(16).padStart(4, '0')} given after it`);
    }
    fail(ctx, n.start, n.name, err);
  }
}

interface ParsedFlow {
  spec: FlowSpec;
  outPort: number;
}

function parseFlowInternal(text: string, opts: ParseFlowOptions): ParsedFlow {
  const ctx: Ctx = { text, ports: opts.ports };
  const cmd = opts.command;
  const { items, actionsStart, actionsKey } = scanItems(ctx, 0, text.length);
  const match = newMatch();
  const named: { field: FieldName; start: number; name: string }[] = [];
  const spec: FlowSpec = {
    table: cmd === 'add' ? 0 : MAX_TABLES,
    priority: DEFAULT_PRIORITY,
    cookie: 0n,
    cookieMask: 0n,
    idleTimeout: 0,
    hardTimeout: 0,
    flags: { sendFlowRem: false, checkOverlap: false, resetCounts: false, noPacketCounts: false, noByteCounts: false },
    match,
    actions: [],
  };
  let outPort: number = OFPP.NONE;
  const num = (it: Item, max: number, what: string): number => {
    const v = it.value!;
    try {
      return parseUintIn(v, max, what);
    } catch (e) {
      if (e instanceof RangeValueError) fail(ctx, it.valueStart, v, e.message);
      if (e instanceof ValueError) fail(ctx, it.valueStart, v, `bad value "${v}" for ${what}: ${e.message}`);
      throw e;
    }
  };
  for (const it of items) {
    if (applyMatchItem(ctx, match, it, named)) continue;
    const flag = lookup<keyof FlowSpec['flags']>(FLAG_KEYS, it.key);
    if (flag !== undefined && it.value === undefined) {
      if (cmd === 'delete') fail(ctx, it.keyStart, it.key, `${it.key} is not allowed in a delete`);
      spec.flags[flag] = true;
      continue;
    }
    const known = ['table', 'priority', 'cookie', 'idle_timeout', 'hard_timeout', 'out_port'].includes(it.key) || IGNORED_KEYS.has(it.key);
    if (!known) fail(ctx, it.keyStart, it.key, `unknown field "${it.key}"`);
    if (it.value === undefined) fail(ctx, it.keyStart, it.key, `field ${it.key} missing value`);
    if (it.value === '') fail(ctx, it.keyStart, `${it.key}=`, `field ${it.key} missing value`);
    switch (it.key) {
      case 'table':
        spec.table = num(it, cmd === 'add' ? MAX_TABLES - 1 : MAX_TABLES, 'table');
        break;
      case 'priority':
        spec.priority = num(it, MAX_PRIORITY, 'priority');
        break;
      case 'idle_timeout':
      case 'hard_timeout': {
        if (cmd === 'delete') fail(ctx, it.keyStart, it.key, `${it.key} is not allowed in a delete`);
        const v = num(it, 65535, it.key);
        if (it.key === 'idle_timeout') spec.idleTimeout = v;
        else spec.hardTimeout = v;
        break;
      }
      case 'out_port':
        if (cmd !== 'delete') fail(ctx, it.keyStart, it.key, 'out_port is only allowed in a delete');
        outPort = resolvePort(ctx, it.value, it.valueStart);
        break;
      case 'cookie': {
        const v = it.value;
        const slash = v.indexOf('/');
        const big = (s: string, start: number): bigint => {
          try {
            return parseUint64(s, 'cookie');
          } catch (e) {
            if (e instanceof RangeValueError) fail(ctx, start, s, e.message);
            if (e instanceof ValueError) fail(ctx, start, s, `bad value "${s}" for cookie: ${e.message}`);
            throw e;
          }
        };
        if (slash < 0) {
          if (cmd === 'delete') fail(ctx, it.keyStart, `cookie=${v}`, 'a delete cannot set a cookie (use cookie=VALUE/MASK to select flows)');
          spec.cookie = big(v, it.valueStart);
        } else {
          if (cmd === 'add') fail(ctx, it.valueStart + slash, v.slice(slash), 'flow additions cannot use a cookie mask');
          const cookie = big(v.slice(0, slash), it.valueStart);
          spec.cookieMask = big(v.slice(slash + 1), it.valueStart + slash + 1);
          // cookie=V/0 selects every flow, whatever V: kept as 0/0, because a cookie V with
          // mask 0 reads as "set the cookie to V" (no mask) to the table and to print.ts.
          spec.cookie = spec.cookieMask === 0n ? 0n : cookie;
        }
        break;
      }
      default:
        break; // ignored dump-flows fields
    }
  }
  checkMatchPrereqs(ctx, match, named);
  if (cmd === 'delete') {
    if (actionsStart !== undefined) fail(ctx, actionsKey, 'actions', 'a delete takes no actions');
  } else {
    if (actionsStart === undefined) fail(ctx, text.length, '', 'must specify actions ("actions=…" at the end)');
    spec.actions = parseActionsAt(ctx, actionsStart, text.length, match);
  }
  return { spec, outPort };
}

/** Parses one flow in ovs-ofctl syntax (add-flow, mod-flows, del-flows, a line of add-flows). */
export function parseFlow(text: string, opts: ParseFlowOptions): FlowSpec {
  return parseFlowInternal(text, opts).spec;
}

/** Like parseFlow, as a FlowMod (with out_port for deletes, and strictness). */
export function parseFlowMod(text: string, opts: ParseFlowOptions & { strict?: boolean }): FlowMod {
  const { spec, outPort } = parseFlowInternal(text, opts);
  const strict = opts.strict === true;
  const command: FlowModCommand =
    opts.command === 'add' ? 'add' : opts.command === 'modify' ? (strict ? 'modify_strict' : 'modify') : strict ? 'delete_strict' : 'delete';
  return { command, spec, outPort };
}

// ---------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------

/** NXM/OXM names ovs-ofctl prints in load/move, and accepts besides the field names. */
export const NXM_NAMES: Readonly<Partial<Record<WritableField, string>>> = {
  dl_src: 'NXM_OF_ETH_SRC',
  dl_dst: 'NXM_OF_ETH_DST',
  vlan_tci: 'NXM_OF_VLAN_TCI',
  nw_src: 'NXM_OF_IP_SRC',
  nw_dst: 'NXM_OF_IP_DST',
  nw_tos: 'NXM_OF_IP_TOS',
  nw_ttl: 'NXM_NX_IP_TTL',
  ipv6_src: 'NXM_NX_IPV6_SRC',
  ipv6_dst: 'NXM_NX_IPV6_DST',
  tun_id: 'NXM_NX_TUN_ID',
  metadata: 'OXM_OF_METADATA',
};

const WRITABLE: readonly WritableField[] = [
  'dl_src',
  'dl_dst',
  'dl_vlan',
  'dl_vlan_pcp',
  'vlan_tci',
  'nw_src',
  'nw_dst',
  'nw_tos',
  'ip_dscp',
  'nw_ttl',
  'tp_src',
  'tp_dst',
  'ipv6_src',
  'ipv6_dst',
  'tun_id',
  'metadata',
];

const EXTRA_FIELD_NAMES: Readonly<Record<string, WritableField>> = {
  NXM_OF_TCP_SRC: 'tp_src',
  NXM_OF_TCP_DST: 'tp_dst',
  NXM_OF_UDP_SRC: 'tp_src',
  NXM_OF_UDP_DST: 'tp_dst',
  OXM_OF_TCP_SRC: 'tp_src',
  OXM_OF_TCP_DST: 'tp_dst',
  OXM_OF_UDP_SRC: 'tp_src',
  OXM_OF_UDP_DST: 'tp_dst',
  OXM_OF_IPV4_SRC: 'nw_src',
  OXM_OF_IPV4_DST: 'nw_dst',
  OXM_OF_ETH_SRC: 'dl_src',
  OXM_OF_ETH_DST: 'dl_dst',
  OXM_OF_TUNNEL_ID: 'tun_id',
  OXM_OF_IPV6_SRC: 'ipv6_src',
  OXM_OF_IPV6_DST: 'ipv6_dst',
};

export function isWritableField(name: string): name is WritableField {
  return (WRITABLE as readonly string[]).includes(name);
}

/** A writable field by its name, alias, or NXM/OXM name; undefined if none. */
function writableFieldOf(name: string): WritableField | undefined {
  if (isWritableField(name)) return name;
  const alias = lookup(FIELD_ALIASES, name);
  if (alias !== undefined && isWritableField(alias)) return alias;
  for (const [f, nxm] of Object.entries(NXM_NAMES)) if (nxm === name) return f as WritableField;
  return lookup(EXTRA_FIELD_NAMES, name);
}

/** Splits text[from…to) at top-level ',' / white space; returns [token, start] pairs. */
function splitActions(ctx: Ctx, from: number, to: number): [string, number][] {
  const t = ctx.text;
  const out: [string, number][] = [];
  let i = from;
  for (;;) {
    while (i < to && isDelim(t[i]!)) i++;
    if (i >= to) return out;
    const start = i;
    let depth = 0;
    while (i < to && (depth > 0 || !isDelim(t[i]!))) {
      if (t[i] === '(') depth++;
      else if (t[i] === ')') {
        depth--;
        if (depth < 0) fail(ctx, i, ')', 'unbalanced parentheses');
      }
      i++;
    }
    if (depth > 0) fail(ctx, start, t.slice(start, i), 'unbalanced parentheses');
    out.push([t.slice(start, i), start]);
  }
}

/** FIELD[], FIELD[a..b] or FIELD[a] → field and bit range. */
function parseSubfield(ctx: Ctx, s: string, start: number, match: Match | undefined, what: string): { field: WritableField; ofs: number; nBits: number } {
  const m = /^([A-Za-z0-9_]+)\[(?:(\d+)(?:\.\.(\d+))?)?\]$/.exec(s);
  if (m === null) fail(ctx, start, s, `bad field "${s}" in ${what}: expected FIELD[], FIELD[a..b] or FIELD[a]`);
  const field = writableFieldOf(m[1]!);
  if (field === undefined) fail(ctx, start, m[1]!, `unknown field "${m[1]!}" in ${what}`);
  const width = FIELDS[field].nBits;
  let ofs = 0;
  let nBits = width;
  if (m[2] !== undefined) {
    ofs = Number(m[2]);
    const end = m[3] === undefined ? ofs : Number(m[3]);
    if (end < ofs || end >= width) fail(ctx, start, s, `bit range [${m[2]}${m[3] === undefined ? '' : `..${m[3]}`}] out of range for ${m[1]!} (${width} bits)`);
    nBits = end - ofs + 1;
  }
  if (match !== undefined) {
    const err = prereqError(`${what} to ${m[1]!}`, FIELDS[field].prereq, match);
    if (err !== undefined) fail(ctx, start, s, err);
  }
  return { field, ofs, nBits };
}

/** Actions in text[from…to); prerequisites checked against `match` when given. */
function parseActionsAt(ctx: Ctx, from: number, to: number, match: Match | undefined): Action[] {
  const toks = splitActions(ctx, from, to);
  // "actions=" and "actions=drop" are both the drop list, one { type: 'drop' } (types.ts).
  if (toks.length === 0) return [{ type: 'drop' }];
  const actions: Action[] = [];
  for (const [tok, start] of toks) {
    const a = parseOneAction(ctx, tok, start, match);
    if (a.type === 'drop' && toks.length > 1) fail(ctx, start, tok, '"drop" must not be accompanied by any other action');
    actions.push(a);
  }
  return actions;
}

function parseOneAction(ctx: Ctx, tok: string, start: number, match: Match | undefined): Action {
  const m = /^([A-Za-z0-9_]+)(?::(.*)|\((.*)\))?$/s.exec(tok);
  if (m === null) {
    fail(ctx, start, tok, /^[A-Za-z0-9_]+[:(]/.test(tok) ? `malformed action "${tok}"` : `unknown action "${tok}"`);
  }
  const name = m[1]!;
  const lname = name.toLowerCase();
  const colonArg = m[2];
  const parenArg = m[3];
  const arg = colonArg ?? parenArg;
  const argStart = start + name.length + 1;
  const need = (): string => {
    if (arg === undefined || arg === '') fail(ctx, start, tok, `action ${name} needs an argument`);
    return arg;
  };
  const noArg = (): void => {
    if (arg !== undefined) fail(ctx, argStart, arg, `action ${name} takes no argument`);
  };
  const uint = (s: string, sStart: number, max: number, what: string): number => {
    try {
      return parseUintIn(s, max, what);
    } catch (e) {
      if (e instanceof RangeValueError) fail(ctx, sStart, s, e.message);
      if (e instanceof ValueError) fail(ctx, sStart, s, `bad value "${s}" for ${what}: ${e.message}`);
      throw e;
    }
  };
  const prereq = (what: string, id: Parameters<typeof prereqError>[1]): void => {
    if (match === undefined) return;
    const err = prereqError(what, id, match);
    if (err !== undefined) fail(ctx, start, tok, err.replace(' requires ', ' requires, in the match, '));
  };
  const addr = <T>(s: string, sStart: number, f: (x: string) => T, what: string): T => {
    try {
      return f(s);
    } catch (e) {
      fail(ctx, sStart, s, `bad value "${s}" for ${what}: ${(e as Error).message}`);
    }
  };
  const portAction = (p: number): Action => {
    switch (p) {
      case OFPP.NORMAL:
        return { type: 'normal' };
      case OFPP.FLOOD:
        return { type: 'flood' };
      case OFPP.ALL:
        return { type: 'all' };
      case OFPP.IN_PORT:
        return { type: 'in_port' };
      case OFPP.LOCAL:
        return { type: 'local' };
      case OFPP.CONTROLLER:
        return { type: 'controller', maxLen: 65535 };
      default:
        if (p > MAX_PORT) fail(ctx, start, tok, `cannot output to port ${tok}`);
        return { type: 'output', port: p };
    }
  };
  switch (lname) {
    case 'output': {
      const p = need();
      if (parenArg !== undefined) fail(ctx, start, tok, `malformed action "${tok}"`);
      return portAction(resolvePort(ctx, p, argStart));
    }
    case 'normal':
      noArg();
      return { type: 'normal' };
    case 'flood':
      noArg();
      return { type: 'flood' };
    case 'all':
      noArg();
      return { type: 'all' };
    case 'in_port':
      noArg();
      return { type: 'in_port' };
    case 'local':
      noArg();
      return { type: 'local' };
    case 'drop':
      noArg();
      return { type: 'drop' };
    case 'controller': {
      if (arg === undefined || arg === '') return { type: 'controller', maxLen: 65535 };
      if (colonArg !== undefined) return { type: 'controller', maxLen: uint(colonArg, argStart, 65535, 'max_len') };
      let maxLen = 65535;
      let p = argStart;
      for (const part of arg.split(',')) {
        const kv = /^\s*max_len\s*=\s*(\S+)\s*$/.exec(part);
        if (kv === null) fail(ctx, p, part, `unknown controller argument "${part}" (only max_len=N is supported)`);
        maxLen = uint(kv[1]!, p + part.indexOf(kv[1]!), 65535, 'max_len');
        p += part.length + 1;
      }
      return { type: 'controller', maxLen };
    }
    case 'mod_vlan_vid':
      return { type: 'mod_vlan_vid', vid: uint(need(), argStart, 4095, 'mod_vlan_vid') };
    case 'mod_vlan_pcp':
      return { type: 'mod_vlan_pcp', pcp: uint(need(), argStart, 7, 'mod_vlan_pcp') };
    case 'push_vlan': {
      const tpid = uint(need(), argStart, 0xffff, 'push_vlan');
      if (tpid !== 0x8100 && tpid !== 0x88a8) fail(ctx, argStart, arg!, `bad value "${arg!}" for push_vlan: the ethertype must be 0x8100 or 0x88a8`);
      return { type: 'push_vlan', tpid };
    }
    case 'strip_vlan':
    case 'pop_vlan':
      noArg();
      return { type: 'strip_vlan' };
    case 'mod_dl_src':
    case 'mod_dl_dst': {
      const mac = addr(need(), argStart, parseMac, name);
      return { type: lname, hi: mac.hi, lo: mac.lo };
    }
    case 'mod_nw_src':
    case 'mod_nw_dst': {
      const ip = addr(need(), argStart, parseIpv4, name);
      prereq(name, 'ipv4');
      return { type: lname, addr: ip };
    }
    case 'mod_nw_tos': {
      const tos = uint(need(), argStart, 255, 'mod_nw_tos');
      if ((tos & 3) !== 0) fail(ctx, argStart, arg!, `bad value "${arg!}" for mod_nw_tos: not a valid TOS (the low 2 bits, ECN, must be 0)`);
      prereq(name, 'ip_any');
      return { type: 'mod_nw_tos', tos };
    }
    case 'dec_ttl':
      noArg();
      return { type: 'dec_ttl' };
    case 'mod_tp_src':
    case 'mod_tp_dst': {
      const port = uint(need(), argStart, 65535, name);
      prereq(name, 'transport');
      return { type: lname, port };
    }
    case 'set_tunnel':
    case 'set_tunnel64': {
      const v = need();
      let tunId: bigint;
      try {
        tunId = parseUint64(v, name);
      } catch (e) {
        if (e instanceof RangeValueError) fail(ctx, argStart, v, e.message);
        fail(ctx, argStart, v, `bad value "${v}" for ${name}: ${(e as Error).message}`);
      }
      if (lname === 'set_tunnel' && tunId > 0xffffffffn) fail(ctx, argStart, v, `set_tunnel ${v} out of range (32 bits; use set_tunnel64)`);
      return { type: 'set_tunnel', tunId };
    }
    case 'goto_table':
      return { type: 'goto_table', table: uint(need(), argStart, MAX_TABLES - 1, 'goto_table') };
    case 'resubmit': {
      const a = need();
      if (colonArg !== undefined) return { type: 'resubmit', port: resolvePort(ctx, a, argStart), table: MAX_TABLES };
      const parts = a.split(',');
      if (parts.length > 2) fail(ctx, start, tok, `malformed action "${tok}"`);
      const pText = parts[0]!.trim();
      const tText = (parts[1] ?? '').trim();
      const port = pText === '' ? OFPP.IN_PORT : resolvePort(ctx, pText, argStart);
      const table = tText === '' ? MAX_TABLES : uint(tText, argStart + parts[0]!.length + 1, MAX_TABLES - 1, 'resubmit table');
      if (port === OFPP.IN_PORT && table === MAX_TABLES) fail(ctx, start, tok, 'resubmit needs a port or a table');
      return { type: 'resubmit', port, table };
    }
    case 'set_field': {
      const a = need();
      const arrow = a.lastIndexOf('->');
      if (arrow < 0) fail(ctx, start, tok, `malformed action "${tok}": expected set_field:VALUE->FIELD`);
      const fName = a.slice(arrow + 2);
      const fStart = argStart + arrow + 2;
      const field = writableFieldOf(fName);
      if (field === undefined) fail(ctx, fStart, fName, `unknown field "${fName}" in set_field`);
      const vText = a.slice(0, arrow);
      if (vText.includes('/')) fail(ctx, argStart, vText, `set_field does not accept a mask`);
      let words: number[];
      try {
        words = parseFieldValue(ctx, field, vText, argStart);
      } catch (e) {
        if (e instanceof RangeValueError) fail(ctx, argStart, vText, e.message);
        if (e instanceof ValueError) fail(ctx, argStart, vText, `bad value "${vText}" for ${fName}: ${e.message}`);
        throw e;
      }
      if (field === 'dl_vlan' && words[0] === 0) fail(ctx, argStart, vText, `bad value "${vText}" for dl_vlan: set_field needs a VID 0..4095`);
      if (match !== undefined) {
        const err = prereqError(`set_field to ${fName}`, FIELDS[field].prereq, match);
        if (err !== undefined) fail(ctx, start, tok, err.replace(' requires ', ' requires, in the match, '));
      }
      const spec = FIELDS[field];
      return { type: 'set_field', field, value: Uint32Array.from(words.map((w, i) => (w & spec.wordMask[i]!) >>> 0)) };
    }
    case 'load': {
      const a = need();
      const arrow = a.indexOf('->');
      if (arrow < 0) fail(ctx, start, tok, `malformed action "${tok}": expected load:VALUE->FIELD[a..b]`);
      const vText = a.slice(0, arrow);
      const sf = parseSubfield(ctx, a.slice(arrow + 2), argStart + arrow + 2, match, 'load');
      let value: bigint;
      try {
        value = parseBigUint(vText);
      } catch (e) {
        fail(ctx, argStart, vText, `bad value "${vText}" for load: ${(e as Error).message}`);
      }
      if (value >> BigInt(sf.nBits) !== 0n) fail(ctx, argStart, vText, `load value ${vText} does not fit into ${sf.nBits} bits`);
      return { type: 'load', field: sf.field, value, ofs: sf.ofs, nBits: sf.nBits };
    }
    case 'move': {
      const a = need();
      const arrow = a.indexOf('->');
      if (arrow < 0) fail(ctx, start, tok, `malformed action "${tok}": expected move:SRC[a..b]->DST[c..d]`);
      const src = parseSubfield(ctx, a.slice(0, arrow), argStart, match, 'move');
      const dst = parseSubfield(ctx, a.slice(arrow + 2), argStart + arrow + 2, match, 'move');
      if (src.nBits !== dst.nBits) fail(ctx, argStart, a, `move: source is ${src.nBits} bits but destination is ${dst.nBits} bits`);
      return { type: 'move', src: src.field, srcOfs: src.ofs, dst: dst.field, dstOfs: dst.ofs, nBits: src.nBits };
    }
    default: {
      if (arg !== undefined) fail(ctx, start, name, `unknown action "${name}"`);
      // A bare port number or port name is "output:" that port (ovs-ofctl accepts both).
      if (UINT_RE.test(tok)) return portAction(resolvePort(ctx, tok, start));
      const p = ctx.ports?.numberOf(tok);
      if (p !== undefined) return { type: 'output', port: p };
      fail(ctx, start, tok, `unknown action "${tok}"`);
    }
  }
}

/**
 * Parses an action list ("output:2,mod_vlan_vid:5" or "drop"). With `match`, checks the
 * prerequisites of set-field/mod actions against it.
 */
export function parseActions(text: string, ports?: PortNames, match?: Match): Action[] {
  const ctx: Ctx = { text, ports };
  return parseActionsAt(ctx, 0, text.length, match);
}

// ---------------------------------------------------------------------------------------
// Packets (limectl trace)
// ---------------------------------------------------------------------------------------

export interface ParsedPacket {
  /** KEY_WORDS words, filled as packet/extract.ts fills them for the described frame. */
  key: Uint32Array;
}

/** Default TTL / hop limit of a described IP packet (as packet/build.ts builds them). */
export const PACKET_DEFAULT_TTL = DEFAULT_TTL;

/**
 * Parses a packet description in flow syntax (no masks, no actions), e.g.
 * `in_port=vm1,dl_src=…,dl_dst=…,tcp,nw_src=…,nw_dst=…,tp_dst=22`, into the flow key that
 * extract() would produce for that frame: dl_type from the shorthand, VLAN_TPID 0x8100 for
 * a tagged frame, TTL 64 for IP unless given, offsets of an option-less IPv4 / extension-
 * less IPv6 header. Unnamed fields are zero; in_port defaults to OFPP.NONE.
 */
export function parsePacket(text: string, ports?: PortNames): ParsedPacket {
  const ctx: Ctx = { text, ports };
  const { items, actionsStart, actionsKey } = scanItems(ctx, 0, text.length);
  if (actionsStart !== undefined) fail(ctx, actionsKey, 'actions', 'a packet description takes no actions');
  const match = newMatch();
  const named: { field: FieldName; start: number; name: string }[] = [];
  const key = new Uint32Array(KEY_WORDS);
  key[K.IN_PORT] = OFPP.NONE;
  let ttlSet = false;
  for (const it of items) {
    if (it.value !== undefined && it.value.includes('/')) {
      const field = isFieldName(it.key) ? it.key : lookup(FIELD_ALIASES, it.key);
      if (field !== undefined && FIELDS[field].format !== 'tcp_flags') {
        const slash = it.value.indexOf('/');
        fail(ctx, it.valueStart + slash, it.value.slice(slash), `a packet field takes no mask`);
      }
    }
    if (!applyMatchItem(ctx, match, it, named)) fail(ctx, it.keyStart, it.key, `unknown field "${it.key}"`);
    if (named.length > 0 && named[named.length - 1]!.start === it.keyStart) {
      const f = named[named.length - 1]!.field;
      if (f === 'nw_ttl') ttlSet = true;
      if (f === 'ip_frag' || f === 'tcp_flags') {
        const g = getField(match, f);
        if (g.mask[0] !== FIELDS[f].wordMask[0] && f === 'tcp_flags') fail(ctx, it.valueStart, it.value!, 'a packet field takes no mask');
      }
    }
  }
  checkMatchPrereqs(ctx, match, named);
  // The match now holds every named bit; copy the values into the key.
  for (let w = 0; w < KEY_WORDS; w++) key[w] = match.value[w]!;
  if ((match.mask[K.IN_PORT]! & 0xffff) === 0) key[K.IN_PORT] = OFPP.NONE;
  // A tagged frame: dl_vlan_pcp alone means VID 0; the TPID is 802.1Q.
  if (key[K.VLAN_TCI] !== 0) {
    key[K.VLAN_TCI] = key[K.VLAN_TCI]! | VLAN_TCI_PRESENT;
    key[K.VLAN_TPID] = 0x8100;
  }
  const dl = key[K.DL_TYPE]!;
  const l3 = 14 + (key[K.VLAN_TCI] !== 0 ? 4 : 0);
  key[K.L3_OFF] = OFF_ABSENT;
  key[K.L4_OFF] = OFF_ABSENT;
  key[K.L7_OFF] = OFF_ABSENT;
  if (dl === DL_TYPE_ARP || dl === DL_TYPE_RARP) {
    key[K.L3_OFF] = l3;
  } else if (dl === DL_TYPE_IPV4 || dl === DL_TYPE_IPV6) {
    key[K.L3_OFF] = l3;
    if (!ttlSet) key[K.NW_TTL] = PACKET_DEFAULT_TTL;
    const frag = key[K.NW_FRAG]!;
    if ((frag & NW_FRAG_LATER) !== 0) {
      for (const f of ['tp_src', 'tp_dst', 'tcp_flags'] as const) {
        const n = named.find((x) => FIELDS[x.field].words[0] === FIELDS[f].words[0]);
        if (n !== undefined) fail(ctx, n.start, n.name, `${n.name} cannot be given for a later fragment (it has no transport header)`);
      }
    } else {
      const l4 = l3 + (dl === DL_TYPE_IPV4 ? 20 : 40) + (dl === DL_TYPE_IPV6 && frag !== 0 ? 8 : 0);
      key[K.L4_OFF] = l4;
      const proto = key[K.NW_PROTO]!;
      const icmp = dl === DL_TYPE_IPV4 ? NW_PROTO_ICMP : NW_PROTO_ICMPV6;
      if (proto === NW_PROTO_TCP) key[K.L7_OFF] = l4 + 20;
      else if (proto === NW_PROTO_UDP || proto === icmp) key[K.L7_OFF] = l4 + 8;
      else if (proto === 47) key[K.L7_OFF] = l4 + 4;
    }
  }
  return { key };
}
