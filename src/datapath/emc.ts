/**
 * ExactMatchCache — the fast path: flow key → translated action program, as Open vSwitch's
 * EMC (`lib/dpif-netdev-private-dfc.h`).
 *
 * What it does: maps the match words of a flow key (every key word except the header
 * offsets L3_OFF..L7_OFF, which differ between frames of one flow and are read per frame
 * by the executor) to the program xlate.ts built for it.
 *
 * Invariants:
 * - Fixed size: `nEntries` (a power of two) entries, allocated once; never grows.
 * - Each entry stores its hash, the table version it was translated at, a copy of the
 *   key's words, and its program (at most `progWords` words; a longer program is not
 *   cached — the caller runs it from a scratch arena).
 * - An entry whose version is not the table's current version is a miss: any flow-mod
 *   bumps the version, so it takes effect for the very next packet. Stale entries are
 *   overwritten first. (Versions are stored as int32: an entry 2^32 versions old would
 *   alias; it is overwritten long before.)
 * - Two candidate slots per hash (`h & mask` and `(h >>> log2(nEntries)) & mask`); insert
 *   takes an empty or stale one, else overwrites the one with the lower stored hash (as
 *   OVS), so a cache full of live flows churns without any bookkeeping.
 *
 * Which words: extract() leaves every key word that does not apply to a frame zero
 * (key.ts), and METADATA is zero for every frame entering the pipeline. So two keys with
 * the same dl_type can differ only in words [0, TCP_FLAGS] (in_port … tcp_flags: L2, IPv4
 * and L4), TUN_ID/TUN_ID_HI, and either the IPv6 words (IPv6 only) or the ARP hardware
 * addresses (ARP/RARP only). Hash, compare and insert touch just those: 21 words for IPv4,
 * 30 for IPv6, 25 for ARP.
 *
 * Layout: one Int32Array of ENTRY_WORDS (32 words = 128 bytes, two cache lines) per entry:
 *   [0] hash  [1] version|0  [2 … 21) words 0 … TCP_FLAGS  [21] TUN_ID  [22] TUN_ID_HI
 *   [23 … 32) IPv6 src, dst, label — or ARP sha hi/lo, tha hi/lo (they never coexist)
 * so a probe touches one line for the hash/version check and a hit at most two. Programs
 * live in `progs`, `progWords` words per entry.
 *
 * Cost model: a hit = one hash over those words (independent Math.imul products, which the
 * CPU pipelines) + up to two compares of them; a miss costs the same before the caller
 * translates, then one insert (a copy of the words). Nothing allocates.
 */
import { K, KEY_WORDS } from '../packet/key.js';

export const DEFAULT_EMC_ENTRIES = 8192;
/** Program words per entry: header (2) + rule ids + ops; 128 bytes. */
export const DEFAULT_EMC_PROGRAM_WORDS = 32;

const ENTRY_WORDS = 32;
const E_HASH = 0;
const E_VERSION = 1;
const E_COMMON = 2;
const COMMON_END = K.TCP_FLAGS + 1; // key words [0, COMMON_END)
const E_TUN = E_COMMON + COMMON_END; // 21
const E_EXTRA = E_TUN + 2; // 23
const IPV6_START = K.IPV6_SRC;
const IPV6_END = K.IPV6_LABEL + 1; // 9 words
const ARP_START = K.ARP_SHA_HI;
const ARP_END = K.ARP_THA_LO + 1; // 4 words
const ETH_TYPE_IPV6 = 0x86dd;
const ETH_TYPE_ARP = 0x0806;
const ETH_TYPE_RARP = 0x8035;
/** Version stored in an empty entry; a TableView's version never equals it as int32 in practice. */
const EMPTY_VERSION = -1;

/** Distinct odd multipliers per key word. */
const MULT = new Int32Array(KEY_WORDS);
for (let w = 0; w < KEY_WORDS; w++) MULT[w] = (Math.imul(0x9e3779b1, 2 * w + 1) ^ Math.imul(0x6a09e667, w)) | 1;

export class ExactMatchCache {
  readonly nEntries: number;
  readonly progWords: number;
  /** Programs: entry e's program starts at e * progWords. */
  readonly progs: Uint32Array;
  nHits = 0;
  nMisses = 0;
  nInserts = 0;
  private readonly entries: Int32Array;
  private readonly mask: number;
  private readonly shift: number;

  constructor(nEntries = DEFAULT_EMC_ENTRIES, progWords = DEFAULT_EMC_PROGRAM_WORDS) {
    if (!Number.isInteger(nEntries) || nEntries < 2 || (nEntries & (nEntries - 1)) !== 0 || nEntries > 1 << 20) {
      throw new RangeError(`EMC entries must be a power of two in [2, 2^20], got ${nEntries}`);
    }
    if (!Number.isInteger(progWords) || progWords < 4) throw new RangeError(`EMC program words must be ≥ 4, got ${progWords}`);
    this.nEntries = nEntries;
    this.progWords = progWords;
    this.mask = nEntries - 1;
    this.shift = Math.log2(nEntries);
    this.progs = new Uint32Array(nEntries * progWords);
    this.entries = new Int32Array(nEntries * ENTRY_WORDS);
    this.clear();
  }

  /**
   * Hash of the key's words (see the module doc for which): a sum of per-word products with
   * distinct odd multipliers, then the murmur3 finaliser. The products do not depend on
   * each other, so they pipeline (a chained hash, h = mix(h ^ w), pays a multiply latency
   * per word); each is a bijection of its word, so changing any one word changes the sum;
   * the finaliser spreads the sum's bits over both slot indexes. Collisions cost a miss.
   */
  hash(key: Uint32Array, keyOff: number): number {
    let h = 0;
    for (let w = 0; w < COMMON_END; w++) h = (h + Math.imul(key[keyOff + w]! | 0, MULT[w]!)) | 0;
    h = (h + Math.imul(key[keyOff + K.TUN_ID]! | 0, MULT[K.TUN_ID]!)) | 0;
    h = (h + Math.imul(key[keyOff + K.TUN_ID_HI]! | 0, MULT[K.TUN_ID_HI]!)) | 0;
    const type = key[keyOff + K.DL_TYPE]!;
    if (type === ETH_TYPE_IPV6) {
      for (let w = IPV6_START; w < IPV6_END; w++) h = (h + Math.imul(key[keyOff + w]! | 0, MULT[w]!)) | 0;
    } else if (type === ETH_TYPE_ARP || type === ETH_TYPE_RARP) {
      for (let w = ARP_START; w < ARP_END; w++) h = (h + Math.imul(key[keyOff + w]! | 0, MULT[w]!)) | 0;
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    // 30 bits: a small integer, never boxed when passed to lookup()/insert() (the two slot
    // indexes use at most 2 × 13 of them).
    return h & 0x3fffffff;
  }

  /** Entry holding this key at `version`, or -1 (counted as a hit or a miss). */
  lookup(key: Uint32Array, keyOff: number, version: number, h: number): number {
    const entries = this.entries;
    const v = version | 0;
    const e1 = h & this.mask;
    let b = e1 * ENTRY_WORDS;
    if (entries[b + E_HASH] === h && entries[b + E_VERSION] === v && this.keyEquals(b, key, keyOff)) {
      this.nHits++;
      return e1;
    }
    const e2 = (h >>> this.shift) & this.mask;
    b = e2 * ENTRY_WORDS;
    if (entries[b + E_HASH] === h && entries[b + E_VERSION] === v && this.keyEquals(b, key, keyOff)) {
      this.nHits++;
      return e2;
    }
    this.nMisses++;
    return -1;
  }

  /**
   * Claims an entry for this key at `version` and returns it; the caller then writes the
   * program at progs[e * progWords …].
   */
  insert(key: Uint32Array, keyOff: number, version: number, h: number): number {
    const entries = this.entries;
    const v = version | 0;
    const e1 = h & this.mask;
    const e2 = (h >>> this.shift) & this.mask;
    let e: number;
    if (entries[e1 * ENTRY_WORDS + E_VERSION] !== v) e = e1;
    else if (entries[e2 * ENTRY_WORDS + E_VERSION] !== v) e = e2;
    else e = entries[e1 * ENTRY_WORDS + E_HASH]! >>> 0 <= entries[e2 * ENTRY_WORDS + E_HASH]! >>> 0 ? e1 : e2;
    const b = e * ENTRY_WORDS;
    entries[b + E_HASH] = h;
    entries[b + E_VERSION] = v;
    for (let w = 0; w < COMMON_END; w++) entries[b + E_COMMON + w] = key[keyOff + w]! | 0;
    entries[b + E_TUN] = key[keyOff + K.TUN_ID]! | 0;
    entries[b + E_TUN + 1] = key[keyOff + K.TUN_ID_HI]! | 0;
    const type = key[keyOff + K.DL_TYPE]!;
    if (type === ETH_TYPE_IPV6) {
      for (let w = IPV6_START; w < IPV6_END; w++) entries[b + E_EXTRA + w - IPV6_START] = key[keyOff + w]! | 0;
    } else if (type === ETH_TYPE_ARP || type === ETH_TYPE_RARP) {
      for (let w = ARP_START; w < ARP_END; w++) entries[b + E_EXTRA + w - ARP_START] = key[keyOff + w]! | 0;
    }
    this.nInserts++;
    return e;
  }

  /** Forgets every entry. */
  clear(): void {
    const entries = this.entries;
    for (let e = 0; e < this.nEntries; e++) entries[e * ENTRY_WORDS + E_VERSION] = EMPTY_VERSION;
  }

  /** Number of entries valid at `version` (for `limectl show`; walks the whole cache). */
  countValid(version: number): number {
    let n = 0;
    for (let e = 0; e < this.nEntries; e++) if (this.entries[e * ENTRY_WORDS + E_VERSION] === (version | 0)) n++;
    return n;
  }

  /** The entry at word b holds the key's words (dl_type is among the common words). */
  private keyEquals(b: number, key: Uint32Array, keyOff: number): boolean {
    const entries = this.entries;
    const c = b + E_COMMON;
    for (let w = 0; w < COMMON_END; w++) if (entries[c + w] !== (key[keyOff + w]! | 0)) return false;
    if (entries[b + E_TUN] !== (key[keyOff + K.TUN_ID]! | 0) || entries[b + E_TUN + 1] !== (key[keyOff + K.TUN_ID_HI]! | 0)) {
      return false;
    }
    const type = key[keyOff + K.DL_TYPE]!;
    if (type === ETH_TYPE_IPV6) {
      const x = b + E_EXTRA - IPV6_START;
      for (let w = IPV6_START; w < IPV6_END; w++) if (entries[x + w] !== (key[keyOff + w]! | 0)) return false;
    } else if (type === ETH_TYPE_ARP || type === ETH_TYPE_RARP) {
      const x = b + E_EXTRA - ARP_START;
      for (let w = ARP_START; w < ARP_END; w++) if (entries[x + w] !== (key[keyOff + w]! | 0)) return false;
    }
    return true;
  }
}
