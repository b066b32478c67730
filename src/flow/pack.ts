/**
 * Flows packed in binary for a resync snapshot between two sites (sync/replication.ts).
 *
 * Cloning a table as ovs-ofctl text costs a format at the writer and a parse at the
 * follower per flow (4.3 s for 100,000 flows between two limeds here). Packed, a flow is its
 * match words as they sit in the classifier (only the words its mask constrains), its
 * numbers, and its actions as text (short, and naming ports); the follower rebuilds the
 * Match directly. Port numbers are local to a site, so the two things that name ports
 * travel by name: `in_port` (the one match field holding a port) and the actions.
 *
 * Layout (little-endian): a header `u32 magic "LFP1" | u32 KEY_WORDS | u32 count`, then per
 * flow: `u8 table | u16 priority | u64 cookie | u16 idle_timeout | u16 hard_timeout |
 * u8 flags | f64 age_ms | u64 word bitmap | (u32 value, u32 mask) per set bit, except
 * IN_PORT: u8 length + its name | u16 length + actions text`. A header with another
 * KEY_WORDS (another build's key layout) is refused.
 */
import { K, KEY_WORDS } from '../packet/key.js';
import { newMatch } from './match.js';
import { parseActions, parseFlowMod } from './parse.js';
import { formatActions, formatPort } from './print.js';
import type { Action, FlowFlags, FlowSpec, InstalledFlow, PortNames } from './types.js';

const MAGIC = 0x3150464c; // "LFP1" read as a little-endian u32

export class FlowPackError extends Error {
  override readonly name = 'FlowPackError';
}

const FLAG_BITS: ReadonlyArray<keyof FlowFlags> = ['sendFlowRem', 'checkOverlap', 'resetCounts', 'noPacketCounts', 'noByteCounts'];
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** Pack `rules` (as of `now`, the table's clock: ages are kept). */
export function packFlows(rules: readonly InstalledFlow[], now: number, ports?: PortNames): Uint8Array {
  const texts: Uint8Array[] = [];
  const inPorts: Array<Uint8Array | undefined> = [];
  let size = 12;
  for (const r of rules) {
    const a = enc.encode(formatActions(r.actions, ports));
    if (a.length > 0xffff) throw new FlowPackError(`flow actions longer than 65535 bytes (priority ${r.priority})`);
    texts.push(a);
    let n = 0;
    for (let w = 0; w < KEY_WORDS; w++) if (r.match.mask[w] !== 0 && w !== K.IN_PORT) n++;
    const ip = r.match.mask[K.IN_PORT] !== 0 ? enc.encode(formatPort(r.match.value[K.IN_PORT]!, ports)) : undefined;
    inPorts.push(ip);
    size += 1 + 2 + 8 + 2 + 2 + 1 + 8 + 8 + 8 * n + (ip !== undefined ? 1 + ip.length : 0) + 2 + a.length;
  }
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, KEY_WORDS, true);
  v.setUint32(8, rules.length, true);
  let o = 12;
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    v.setUint8(o, r.table);
    v.setUint16(o + 1, r.priority, true);
    v.setBigUint64(o + 3, r.cookie, true);
    v.setUint16(o + 11, r.idleTimeout, true);
    v.setUint16(o + 13, r.hardTimeout, true);
    let flags = 0;
    for (let b = 0; b < FLAG_BITS.length; b++) if (r.flags[FLAG_BITS[b]!]) flags |= 1 << b;
    v.setUint8(o + 15, flags);
    v.setFloat64(o + 16, Math.max(0, now - r.createdAt), true);
    let lo = 0;
    let hi = 0;
    for (let w = 0; w < KEY_WORDS; w++) {
      if (r.match.mask[w] === 0) continue;
      if (w < 32) lo |= 1 << w;
      else hi |= 1 << (w - 32);
    }
    v.setUint32(o + 24, lo >>> 0, true);
    v.setUint32(o + 28, hi >>> 0, true);
    o += 32;
    for (let w = 0; w < KEY_WORDS; w++) {
      if (r.match.mask[w] === 0) continue;
      if (w === K.IN_PORT) {
        const ip = inPorts[i]!;
        if (ip.length > 255) throw new FlowPackError('in_port name longer than 255 bytes');
        v.setUint8(o, ip.length);
        out.set(ip, o + 1);
        o += 1 + ip.length;
        continue;
      }
      v.setUint32(o, r.match.value[w]!, true);
      v.setUint32(o + 4, r.match.mask[w]!, true);
      o += 8;
    }
    const a = texts[i]!;
    v.setUint16(o, a.length, true);
    out.set(a, o + 2);
    o += 2 + a.length;
  }
  return out;
}

/** A packed flow, unpacked: an add's spec and its age (ms before the snapshot was taken). */
export interface UnpackedFlow {
  spec: FlowSpec;
  ageMs: number;
}

/**
 * Unpack what packFlows packed, naming ports with this site's `ports`. Throws FlowPackError
 * on a malformed or truncated buffer, another key layout, an unknown port, or actions that
 * do not parse here (the whole buffer is refused).
 */
export function unpackFlows(bytes: Uint8Array, ports?: PortNames): UnpackedFlow[] {
  const out: UnpackedFlow[] = [];
  forEachPackedFlow(bytes, ports, (spec, ageMs) => out.push({ spec, ageMs }));
  return out;
}

/**
 * unpackFlows without the list: `each` gets every flow in order. A throw can come after
 * some calls (the buffer is checked as it is read): the caller discards what it got then.
 * Flows with the same actions text share one action list, and the same flags one flags
 * object: the table never mutates either (table/flow-table.ts).
 */
export function forEachPackedFlow(bytes: Uint8Array, ports: PortNames | undefined, each: (spec: FlowSpec, ageMs: number) => void): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (o: number, n: number): void => {
    if (o + n > bytes.byteLength) throw new FlowPackError(`packed flows truncated at byte ${o} (${bytes.byteLength} bytes)`);
  };
  need(0, 12);
  if (v.getUint32(0, true) !== MAGIC) throw new FlowPackError('not packed flows (bad magic)');
  const words = v.getUint32(4, true);
  if (words !== KEY_WORDS) throw new FlowPackError(`packed flows of another key layout (${words} words, this build has ${KEY_WORDS})`);
  const count = v.getUint32(8, true);
  const inPorts = new TextCache<number>(bytes);
  const actionLists = new TextCache<Action[]>(bytes);
  let o = 12;
  for (let i = 0; i < count; i++) {
    need(o, 32);
    const spec: FlowSpec = {
      table: v.getUint8(o),
      priority: v.getUint16(o + 1, true),
      cookie: v.getBigUint64(o + 3, true),
      cookieMask: 0n,
      idleTimeout: v.getUint16(o + 11, true),
      hardTimeout: v.getUint16(o + 13, true),
      flags: flagsOf(v.getUint8(o + 15)),
      match: newMatch(),
      actions: [],
    };
    const ageMs = v.getFloat64(o + 16, true);
    if (!(ageMs >= 0)) throw new FlowPackError(`flow ${i}: bad age`);
    const lo = v.getUint32(o + 24, true);
    const hi = v.getUint32(o + 28, true);
    if (hi >>> (KEY_WORDS - 32) !== 0) throw new FlowPackError(`flow ${i}: word bitmap names words past the key`);
    o += 32;
    for (let w = 0; w < KEY_WORDS; w++) {
      if (((w < 32 ? lo >>> w : hi >>> (w - 32)) & 1) === 0) continue;
      if (w === K.IN_PORT) {
        need(o, 1);
        const n = v.getUint8(o);
        need(o + 1, n);
        spec.match.value[w] = inPorts.get(o + 1, n, i, (name) => resolveInPort(name, ports, i));
        spec.match.mask[w] = 0xffff;
        o += 1 + n;
        continue;
      }
      need(o, 8);
      const mask = v.getUint32(o + 4, true);
      spec.match.mask[w] = mask;
      spec.match.value[w] = v.getUint32(o, true) & mask;
      o += 8;
    }
    need(o, 2);
    const n = v.getUint16(o, true);
    need(o + 2, n);
    spec.actions = actionLists.get(o + 2, n, i, (text) => {
      try {
        return parseActions(text, ports, spec.match);
      } catch (err) {
        throw new FlowPackError(`flow ${i}: actions "${text}": ${(err as Error).message}`);
      }
    });
    o += 2 + n;
    each(spec, ageMs);
  }
  if (o !== bytes.byteLength) throw new FlowPackError(`${bytes.byteLength - o} bytes after the last of ${count} packed flows`);
}

/** Shared flags objects, one per combination of bits. */
const FLAGS_BY_BITS: FlowFlags[] = [];
function flagsOf(bits: number): FlowFlags {
  let f = FLAGS_BY_BITS[bits];
  if (f === undefined) {
    f = {} as FlowFlags;
    for (let b = 0; b < FLAG_BITS.length; b++) f[FLAG_BITS[b]!] = (bits & (1 << b)) !== 0;
    FLAGS_BY_BITS[bits] = Object.freeze(f) as FlowFlags;
  }
  return f;
}

/**
 * What a text field of packed flows resolves to (an in_port's number, an action list),
 * worked out once per distinct text: consecutive flows mostly repeat the previous one, which
 * is recognised from the bytes without decoding them.
 */
class TextCache<T> {
  private readonly byText = new Map<string, T>();
  private lastAt = -1;
  private lastN = 0;
  private lastValue: T | undefined;

  constructor(private readonly bytes: Uint8Array) {}

  /** The value for the text at bytes[at, at + n). */
  get(at: number, n: number, i: number, resolve: (text: string) => T): T {
    if (this.lastAt >= 0 && this.lastN === n && this.sameAsLast(at, n)) return this.lastValue!;
    const text = decodeText(this.bytes.subarray(at, at + n), i);
    let value = this.byText.get(text);
    if (value === undefined) {
      value = resolve(text);
      this.byText.set(text, value);
    }
    this.lastAt = at;
    this.lastN = n;
    this.lastValue = value;
    return value;
  }

  private sameAsLast(at: number, n: number): boolean {
    const b = this.bytes;
    for (let k = 0; k < n; k++) if (b[at + k] !== b[this.lastAt + k]) return false;
    return true;
  }
}

function decodeText(b: Uint8Array, i: number): string {
  try {
    return dec.decode(b);
  } catch {
    throw new FlowPackError(`flow ${i}: text that is not UTF-8`);
  }
}

/** in_port as flow text names it (a name, a reserved name or a number). */
function resolveInPort(name: string, ports: PortNames | undefined, i: number): number {
  try {
    return parseFlowMod(`in_port=${name}`, { command: 'delete', strict: false, ports }).spec.match.value[K.IN_PORT]!;
  } catch (err) {
    throw new FlowPackError(`flow ${i}: in_port ${name}: ${(err as Error).message}`);
  }
}

/** The number of flows a packed buffer says it holds (0 for one too short to say). */
export function packedCount(bytes: Uint8Array): number {
  return bytes.byteLength >= 12 ? new DataView(bytes.buffer, bytes.byteOffset, 12).getUint32(8, true) : 0;
}

/** The peer capability that says a site unpacks what this build packs. */
export const PACKED_CAPABILITY = `snapshot/packed-v1-k${KEY_WORDS}`;
