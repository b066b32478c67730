/**
 * Classifier: tuple-space search over value/mask rules — the flow table's slow path.
 *
 * What it does: holds rules (identified by small integer ids chosen by the caller, the
 * flow table's slot numbers), each a (table, match, priority, seq), and answers
 * `lookup(table, key, keyOff)`: the id of the highest-priority rule of `table` whose match
 * covers the key words key[keyOff … keyOff+KEY_WORDS), or -1.
 *
 * Layout (as Open vSwitch's lib/classifier.c, "Basic Design"):
 * - One **subtable** per distinct mask per table. A subtable lists the key words its mask
 *   actually constrains (`words`, with the mask bits in `wordMasks`), and an open-addressing
 *   hash (linear probing, backward-shift deletion, load ≤ 1/2) over the masked values of
 *   those words only. Hashes, masked keys and chain heads live in typed arrays; there is no
 *   string and no Map on the lookup path.
 * - Each hash entry (one distinct masked value) heads a **chain** of the rules with that
 *   exact match, linked through `next[id]`, sorted by priority descending, then by `seq`
 *   ascending. Only the head can win a lookup, so a probe reads one rule.
 * - A table's subtables are kept **sorted by their highest priority** (`maxPriority`,
 *   descending). Lookup probes them in that order and stops as soon as the next subtable's
 *   `maxPriority` is below the best match found so far (early exit).
 *
 * Equal priorities: OpenFlow leaves the choice between overlapping rules of equal priority
 * undefined (OF 1.3.5 §5.3: "If there are multiple matching flow entries with the same
 * highest priority, the selected flow entry is explicitly undefined"); Open vSwitch
 * returns an arbitrary one. Here the tie is broken deterministically: the rule with the
 * smallest `seq` wins — the flow table passes an insertion counter, so the **earliest added**
 * rule wins. This is why a subtable whose `maxPriority` equals the best priority found is
 * still probed (it might hold an older rule of that priority); only strictly lower ones are
 * skipped.
 *
 * Cost model: a lookup costs one hash computation and one probe sequence (expected ~1.5
 * slots at load ≤ 1/2) per subtable visited, i.e. **cost = number of distinct masks probed,
 * not number of rules**; 100,000 rules over 10 masks cost at most 10 probes, the same as
 * 10 rules over 10 masks. `lookup` allocates nothing; its statistics are kept in a
 * Float64Array (`stats`), not in boxed numbers. Insert/remove are O(1) expected plus chain
 * walks (chains hold rules with identical matches, normally one) and a re-sort of the
 * table's subtable list when a subtable's `maxPriority` changes (O(number of masks)).
 *
 * Ownership: the classifier keeps a reference to each rule's Match (it re-hashes
 * `match.value` on removal); callers must not mutate a Match after inserting it. Per-rule
 * arrays grow (doubling) only in `ensureCapacity`/`insert`, never in `lookup`.
 *
 * Versioning is the flow table's job (flow-table.ts bumps `version` once per published
 * change); this module is a plain mutable index.
 */
import { KEY_WORDS, isMatchWord } from '../packet/key.js';
import { MAX_TABLES, type Match } from '../flow/types.js';

const EMPTY = -1;
const NONE = -1;
const INITIAL_SLOTS = 8;
const HASH_SEED = 0x9747b28c | 0;

/** One murmur3 round: fold word `k` into hash `h`. */
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3 finaliser. */
function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

function maskHash(mask: Uint32Array): number {
  let h = HASH_SEED;
  for (let w = 0; w < KEY_WORDS; w++) h = mix(h, mask[w]! | 0);
  return finish(h);
}

function sameMask(a: Uint32Array, b: Uint32Array): boolean {
  for (let w = 0; w < KEY_WORDS; w++) if (a[w] !== b[w]) return false;
  return true;
}

/** Rules of one table sharing one mask. */
export class Subtable {
  readonly table: number;
  readonly mask: Uint32Array;
  readonly maskHash: number;
  /** Key words the mask constrains (mask word ≠ 0), ascending. */
  readonly words: Int32Array;
  /** mask[words[i]], as int32. */
  readonly wordMasks: Int32Array;
  readonly nWords: number;

  /** Highest priority of any rule in the subtable (-1 when empty). */
  maxPriority = -1;
  /** Number of rules (sum of chain lengths). */
  nRules = 0;
  /** Number of distinct masked values (occupied slots). */
  nEntries = 0;

  capMask: number;
  /** Full 32-bit hash of the slot's masked key. */
  hashes: Int32Array;
  /** Rule id at the head of the slot's chain, EMPTY for a free slot. */
  heads: Int32Array;
  /** Masked key words of the slot: keys[slot * nWords + i] = value[words[i]]. */
  keys: Int32Array;
  /** Rule count per priority (to maintain maxPriority on removal). Slow path only. */
  readonly priorityCounts = new Map<number, number>();

  constructor(table: number, mask: Uint32Array, hash: number) {
    this.table = table;
    this.mask = mask;
    this.maskHash = hash;
    const words: number[] = [];
    for (let w = 0; w < KEY_WORDS; w++) if (mask[w] !== 0) words.push(w);
    this.words = Int32Array.from(words);
    this.wordMasks = Int32Array.from(words, (w) => mask[w]! | 0);
    this.nWords = words.length;
    this.capMask = INITIAL_SLOTS - 1;
    this.hashes = new Int32Array(INITIAL_SLOTS);
    this.heads = new Int32Array(INITIAL_SLOTS).fill(EMPTY);
    this.keys = new Int32Array(INITIAL_SLOTS * Math.max(1, this.nWords));
  }

  /** Hash of a match value (already normalised to this mask). */
  hashValue(value: Uint32Array): number {
    let h = HASH_SEED;
    const words = this.words;
    for (let i = 0; i < this.nWords; i++) h = mix(h, value[words[i]!]! | 0);
    return finish(h);
  }

  /** Slot holding `value` (normalised to this mask), or EMPTY. */
  findSlot(value: Uint32Array, h: number): number {
    const n = this.nWords;
    const words = this.words;
    let slot = h & this.capMask;
    for (;;) {
      if (this.heads[slot] === EMPTY) return EMPTY;
      if (this.hashes[slot] === h) {
        const base = slot * n;
        let i = 0;
        while (i < n && this.keys[base + i] === (value[words[i]!]! | 0)) i++;
        if (i === n) return slot;
      }
      slot = (slot + 1) & this.capMask;
    }
  }

  /** Occupy a free slot for `value` with chain head `id`. Caller ensured it is absent. */
  addSlot(value: Uint32Array, h: number, id: number): void {
    if ((this.nEntries + 1) * 2 > this.capMask + 1) this.grow();
    const n = this.nWords;
    let slot = h & this.capMask;
    while (this.heads[slot] !== EMPTY) slot = (slot + 1) & this.capMask;
    this.heads[slot] = id;
    this.hashes[slot] = h;
    const base = slot * n;
    for (let i = 0; i < n; i++) this.keys[base + i] = value[this.words[i]!]! | 0;
    this.nEntries++;
  }

  /** Free `slot`, shifting later members of its probe run back (no tombstones). */
  removeSlot(slot: number): void {
    const n = this.nWords;
    const cap = this.capMask;
    let hole = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & cap;
      if (this.heads[j] === EMPTY) break;
      const home = this.hashes[j]! & cap;
      // Entry j may move into the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      this.heads[hole] = this.heads[j]!;
      this.hashes[hole] = this.hashes[j]!;
      this.keys.copyWithin(hole * n, j * n, j * n + n);
      hole = j;
    }
    this.heads[hole] = EMPTY;
    this.nEntries--;
  }

  private grow(): void {
    const oldHeads = this.heads;
    const oldHashes = this.hashes;
    const oldKeys = this.keys;
    const n = this.nWords;
    const size = (this.capMask + 1) * 2;
    this.capMask = size - 1;
    this.heads = new Int32Array(size).fill(EMPTY);
    this.hashes = new Int32Array(size);
    this.keys = new Int32Array(size * Math.max(1, n));
    for (let s = 0; s < oldHeads.length; s++) {
      if (oldHeads[s] === EMPTY) continue;
      const h = oldHashes[s]!;
      let slot = h & this.capMask;
      while (this.heads[slot] !== EMPTY) slot = (slot + 1) & this.capMask;
      this.heads[slot] = oldHeads[s]!;
      this.hashes[slot] = h;
      for (let i = 0; i < n; i++) this.keys[slot * n + i] = oldKeys[s * n + i]!;
    }
  }
}

export class Classifier {
  /** [0] = lookups, [1] = subtable probes. Plain doubles, so counting allocates nothing. */
  readonly stats = new Float64Array(2);

  /** Per table: subtables sorted by maxPriority descending. */
  private readonly tables: Subtable[][] = [];
  /** Per table: mask hash → subtables with that mask hash (slow path only). */
  private readonly byMask: Map<number, Subtable[]>[] = [];

  // Per-rule columns, indexed by rule id.
  private capacity = 0;
  private priority = new Int32Array(0);
  private seq = new Float64Array(0);
  private next = new Int32Array(0);
  private subtableOf: (Subtable | undefined)[] = [];
  private matchOf: (Match | undefined)[] = [];
  private nRulesTotal = 0;

  constructor() {
    for (let t = 0; t < MAX_TABLES; t++) {
      this.tables.push([]);
      this.byMask.push(new Map());
    }
    this.ensureCapacity(64);
  }

  get nLookups(): number {
    return this.stats[0]!;
  }
  get nSubtableProbes(): number {
    return this.stats[1]!;
  }
  get size(): number {
    return this.nRulesTotal;
  }

  /** Make room for rule ids < n (doubling). */
  ensureCapacity(n: number): void {
    if (n <= this.capacity) return;
    let cap = Math.max(64, this.capacity);
    while (cap < n) cap *= 2;
    const priority = new Int32Array(cap);
    priority.set(this.priority);
    const seq = new Float64Array(cap);
    seq.set(this.seq);
    const next = new Int32Array(cap).fill(NONE);
    next.set(this.next);
    this.priority = priority;
    this.seq = seq;
    this.next = next;
    this.subtableOf.length = cap;
    this.matchOf.length = cap;
    this.capacity = cap;
  }

  /**
   * Highest-priority rule of `table` covering key[keyOff … keyOff+KEY_WORDS), -1 if none.
   * Equal priorities: the smallest seq wins. Allocates nothing.
   *
   * Order: for each subtable, best first by maxPriority — stop if it cannot beat the best
   * so far; hash the key words the subtable constrains; probe; compare the chain head.
   */
  lookup(table: number, key: Uint32Array, keyOff: number): number {
    const stats = this.stats;
    stats[0] = stats[0]! + 1;
    if (!(table >= 0 && table < MAX_TABLES)) return -1;
    const list = this.tables[table]!;
    const nSub = list.length;
    let best = -1;
    let bestPri = -1;
    let bestSeq = 0;
    let probes = 0;
    for (let s = 0; s < nSub; s++) {
      const st = list[s]!;
      if (st.maxPriority < bestPri) break;
      probes++;
      const words = st.words;
      const wordMasks = st.wordMasks;
      const n = st.nWords;
      let h = HASH_SEED;
      for (let i = 0; i < n; i++) h = mix(h, key[keyOff + words[i]!]! & wordMasks[i]!);
      h = finish(h);
      const heads = st.heads;
      const hashes = st.hashes;
      const keys = st.keys;
      const capMask = st.capMask;
      let slot = h & capMask;
      for (;;) {
        const head = heads[slot]!;
        if (head === EMPTY) break;
        if (hashes[slot] === h) {
          const base = slot * n;
          let i = 0;
          while (i < n && keys[base + i] === (key[keyOff + words[i]!]! & wordMasks[i]!)) i++;
          if (i === n) {
            const pri = this.priority[head]!;
            if (pri > bestPri || (pri === bestPri && this.seq[head]! < bestSeq)) {
              best = head;
              bestPri = pri;
              bestSeq = this.seq[head]!;
            }
            break;
          }
        }
        slot = (slot + 1) & capMask;
      }
    }
    stats[1] = stats[1]! + probes;
    return best;
  }

  /**
   * Insert rule `id`. The match must be normalised (value & ~mask = 0), with no mask on the
   * offset words; (table, match, priority) must not already be present (the flow table
   * replaces identical rules itself). `seq` orders equal priorities (smaller wins).
   */
  insert(id: number, table: number, match: Match, priority: number, seq: number): void {
    this.ensureCapacity(id + 1);
    const st = this.subtableFor(table, match.mask, true)!;
    const h = st.hashValue(match.value);
    const slot = st.findSlot(match.value, h);
    this.priority[id] = priority;
    this.seq[id] = seq;
    this.subtableOf[id] = st;
    this.matchOf[id] = match;
    if (slot === EMPTY) {
      this.next[id] = NONE;
      st.addSlot(match.value, h, id);
    } else {
      // Chain order: priority descending, then seq ascending.
      let prev = NONE;
      let cur = st.heads[slot]!;
      while (cur !== NONE && (this.priority[cur]! > priority || (this.priority[cur] === priority && this.seq[cur]! < seq))) {
        prev = cur;
        cur = this.next[cur]!;
      }
      this.next[id] = cur;
      if (prev === NONE) st.heads[slot] = id;
      else this.next[prev] = id;
    }
    st.nRules++;
    this.nRulesTotal++;
    st.priorityCounts.set(priority, (st.priorityCounts.get(priority) ?? 0) + 1);
    if (priority > st.maxPriority) {
      st.maxPriority = priority;
      this.resort(st);
    }
  }

  /** Remove rule `id` (no-op if absent). */
  remove(id: number): void {
    const st = id >= 0 && id < this.capacity ? this.subtableOf[id] : undefined;
    if (st === undefined) return;
    const match = this.matchOf[id]!;
    const slot = st.findSlot(match.value, st.hashValue(match.value));
    let prev = NONE;
    let cur = slot === EMPTY ? NONE : st.heads[slot]!;
    while (cur !== id && cur !== NONE) {
      prev = cur;
      cur = this.next[cur]!;
    }
    if (cur === NONE) throw new Error(`classifier: rule ${id} is not in its subtable (index corrupt)`);
    const after = this.next[id]!;
    if (prev !== NONE) this.next[prev] = after;
    else if (after !== NONE) st.heads[slot] = after;
    else st.removeSlot(slot);
    this.next[id] = NONE;
    this.subtableOf[id] = undefined;
    this.matchOf[id] = undefined;
    st.nRules--;
    this.nRulesTotal--;

    const priority = this.priority[id]!;
    const left = st.priorityCounts.get(priority)! - 1;
    if (left > 0) st.priorityCounts.set(priority, left);
    else {
      st.priorityCounts.delete(priority);
      if (priority === st.maxPriority) {
        let max = -1;
        for (const p of st.priorityCounts.keys()) if (p > max) max = p;
        st.maxPriority = max;
        if (st.nRules > 0) this.resort(st);
      }
    }
    if (st.nRules === 0) this.dropSubtable(st);
  }

  /** The rule with exactly this match and priority in `table`, or -1. */
  findExact(table: number, match: Match, priority: number): number {
    const st = this.subtableFor(table, match.mask, false);
    if (st === undefined) return -1;
    const slot = st.findSlot(match.value, st.hashValue(match.value));
    if (slot === EMPTY) return -1;
    for (let cur = st.heads[slot]!; cur !== NONE; cur = this.next[cur]!) {
      if (this.priority[cur] === priority) return cur;
      if (this.priority[cur]! < priority) break;
    }
    return -1;
  }

  /**
   * A rule of `table` with priority `priority` that some packet could match together with
   * `match` (OpenFlow's overlap, OF 1.3.5 §6.4), or -1. Subtables whose mask is a subset of
   * `match.mask` are probed by hash; others are scanned.
   */
  findOverlap(table: number, match: Match, priority: number): number {
    const list = this.tables[table]!;
    for (const st of list) {
      if (st.maxPriority < priority) break;
      if (!st.priorityCounts.has(priority)) continue;
      let subset = true;
      for (let w = 0; w < KEY_WORDS; w++) {
        if ((st.mask[w]! & ~match.mask[w]!) !== 0) {
          subset = false;
          break;
        }
      }
      if (subset) {
        // Every rule here constrains only bits `match` constrains too: they overlap iff
        // equal on the subtable's mask, i.e. iff they sit in the slot of match.value & mask.
        const masked = new Uint32Array(KEY_WORDS);
        for (let w = 0; w < KEY_WORDS; w++) masked[w] = match.value[w]! & st.mask[w]!;
        const slot = st.findSlot(masked, st.hashValue(masked));
        if (slot !== EMPTY) {
          const hit = this.chainWithPriority(st.heads[slot]!, priority);
          if (hit !== -1) return hit;
        }
        continue;
      }
      const n = st.nWords;
      for (let slot = 0; slot <= st.capMask; slot++) {
        const head = st.heads[slot]!;
        if (head === EMPTY) continue;
        let i = 0;
        for (; i < n; i++) {
          const w = st.words[i]!;
          if (((st.keys[slot * n + i]! ^ match.value[w]!) & match.mask[w]! & st.wordMasks[i]!) !== 0) break;
        }
        if (i < n) continue;
        const hit = this.chainWithPriority(head, priority);
        if (hit !== -1) return hit;
      }
    }
    return -1;
  }

  /**
   * Append to `out` every rule of `table` whose match is covered by `match` (the rule's
   * mask includes match's mask, and the rule's value agrees with match.value on it): the
   * set a non-strict modify/delete acts on. Only subtables whose mask includes match's
   * mask can hold such rules; those are scanned.
   */
  collectCovered(table: number, match: Match, out: number[]): void {
    for (const st of this.tables[table]!) {
      let superset = true;
      for (let w = 0; w < KEY_WORDS; w++) {
        if ((match.mask[w]! & ~st.mask[w]!) !== 0) {
          superset = false;
          break;
        }
      }
      if (!superset) continue;
      const n = st.nWords;
      for (let slot = 0; slot <= st.capMask; slot++) {
        const head = st.heads[slot]!;
        if (head === EMPTY) continue;
        let i = 0;
        for (; i < n; i++) {
          const w = st.words[i]!;
          if ((st.keys[slot * n + i]! & match.mask[w]!) !== (match.value[w]! | 0)) break;
        }
        if (i < n) continue;
        for (let cur = head; cur !== NONE; cur = this.next[cur]!) out.push(cur);
      }
    }
  }

  /** Append every rule id of `table` to `out` (unordered). */
  collectAll(table: number, out: number[]): void {
    for (const st of this.tables[table]!) {
      for (let slot = 0; slot <= st.capMask; slot++) {
        for (let cur = st.heads[slot]!; cur !== NONE; cur = this.next[cur]!) out.push(cur);
      }
    }
  }

  /** Number of subtables (distinct masks) of `table`. */
  nSubtables(table: number): number {
    return this.tables[table]?.length ?? 0;
  }

  /** Seq of rule `id` (tie-break order). */
  seqOf(id: number): number {
    return this.seq[id]!;
  }

  /** Subtables of `table` in probe order (for tests and `trace`). */
  subtables(table: number): readonly Subtable[] {
    return this.tables[table] ?? [];
  }

  private chainWithPriority(head: number, priority: number): number {
    for (let cur = head; cur !== NONE; cur = this.next[cur]!) {
      if (this.priority[cur] === priority) return cur;
      if (this.priority[cur]! < priority) break;
    }
    return -1;
  }

  private subtableFor(table: number, mask: Uint32Array, create: boolean): Subtable | undefined {
    const hash = maskHash(mask);
    const map = this.byMask[table]!;
    let bucket = map.get(hash);
    if (bucket !== undefined) {
      for (const st of bucket) if (sameMask(st.mask, mask)) return st;
    }
    if (!create) return undefined;
    for (let w = 0; w < KEY_WORDS; w++) {
      if (mask[w] !== 0 && !isMatchWord(w)) throw new RangeError(`key word ${w} is not a match field`);
    }
    const st = new Subtable(table, Uint32Array.from(mask), hash);
    if (bucket === undefined) map.set(hash, (bucket = []));
    bucket.push(st);
    this.tables[table]!.push(st); // maxPriority -1: last; insert() re-sorts it.
    return st;
  }

  private dropSubtable(st: Subtable): void {
    const list = this.tables[st.table]!;
    list.splice(list.indexOf(st), 1);
    const map = this.byMask[st.table]!;
    const bucket = map.get(st.maskHash)!;
    bucket.splice(bucket.indexOf(st), 1);
    if (bucket.length === 0) map.delete(st.maskHash);
  }

  /** Restore descending maxPriority order after `st`'s maxPriority changed (stable). */
  private resort(st: Subtable): void {
    const list = this.tables[st.table]!;
    let i = list.indexOf(st);
    while (i > 0 && list[i - 1]!.maxPriority < st.maxPriority) {
      list[i] = list[i - 1]!;
      i--;
    }
    while (i < list.length - 1 && list[i + 1]!.maxPriority > st.maxPriority) {
      list[i] = list[i + 1]!;
      i++;
    }
    list[i] = st;
  }
}
