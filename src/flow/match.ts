/**
 * The match algebra over flow-key words (a Match is `value` + `mask`, types.ts).
 *
 * Invariants kept by every function here: `value[w] & ~mask[w] === 0` (normalised), and
 * the offset words L3_OFF..L7_OFF are never masked. Matches are plain typed arrays, so the
 * classifier can hash/compare them word by word.
 *
 * Semantics (all per bit, because every key bit is an independent header bit):
 *   - a packet key k matches when (k[w] & mask[w]) === value[w] for every word;
 *   - matchCovers(filter, flow): every packet that matches `flow` also matches `filter`
 *     *as far as the filter can tell*, i.e. every bit the filter constrains the flow
 *     constrains to the same value (OpenFlow's non-strict modify/delete);
 *   - matchOverlaps(a, b): some packet matches both (check_overlap): on the bits both
 *     constrain, they agree.
 *
 * Cost: KEY_WORDS (39) word operations per call; no allocation except newMatch/cloneMatch.
 */
import { KEY_WORDS, isMatchWord } from '../packet/key.js';
import { FIELDS, type FieldName } from './fields.js';
import type { Match } from './types.js';

/**
 * Matches are carved from shared slabs: a typed array with its own buffer costs a
 * backing-store allocation (and GC work) apiece, which dominated parsing or unpacking
 * 100,000 flows. A slab lives as long as any match carved from it (a few hundred KiB at most).
 */
const SLAB_MATCHES = 256;
const MATCH_BYTES = KEY_WORDS * 4;
let slab = new ArrayBuffer(0);
let slabNext = 0;

export function newMatch(): Match {
  if (slabNext + 2 * MATCH_BYTES > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_MATCHES * 2 * MATCH_BYTES);
    slabNext = 0;
  }
  const value = new Uint32Array(slab, slabNext, KEY_WORDS);
  const mask = new Uint32Array(slab, slabNext + MATCH_BYTES, KEY_WORDS);
  slabNext += 2 * MATCH_BYTES;
  return { value, mask };
}

export function cloneMatch(m: Match): Match {
  return { value: m.value.slice(), mask: m.mask.slice() };
}

/**
 * Constrains `field` in `match`: `value` and `mask` are the field's key words (positioned as
 * in the key, one per FIELDS[field].words entry). Bits outside the field are left alone;
 * the field's previous constraint is replaced. `mask` defaults to the whole field.
 */
export function setField(match: Match, field: FieldName, value: ArrayLike<number>, mask?: ArrayLike<number>): void {
  const spec = FIELDS[field];
  for (let i = 0; i < spec.words.length; i++) {
    const w = spec.words[i]!;
    const fm = spec.wordMask[i]!;
    const m = (mask === undefined ? fm : mask[i]! & fm) >>> 0;
    match.mask[w] = ((match.mask[w]! & ~fm) | m) >>> 0;
    match.value[w] = ((match.value[w]! & ~fm) | (value[i]! & m)) >>> 0;
  }
}

/** The field's current value and mask words (positioned as in the key). */
export function getField(match: Match, field: FieldName): { value: number[]; mask: number[] } {
  const spec = FIELDS[field];
  const value: number[] = [];
  const mask: number[] = [];
  for (let i = 0; i < spec.words.length; i++) {
    const w = spec.words[i]!;
    value.push((match.value[w]! & spec.wordMask[i]!) >>> 0);
    mask.push((match.mask[w]! & spec.wordMask[i]!) >>> 0);
  }
  return { value, mask };
}

/** Whether the match constrains any bit of the field. */
export function fieldIsSet(match: Match, field: FieldName): boolean {
  const spec = FIELDS[field];
  for (let i = 0; i < spec.words.length; i++) if ((match.mask[spec.words[i]!]! & spec.wordMask[i]!) !== 0) return true;
  return false;
}

/** Whether the packet key key[off … off+KEY_WORDS) matches. Allocates nothing. */
export function matchesKey(match: Match, key: Uint32Array, off: number): boolean {
  const v = match.value;
  const m = match.mask;
  for (let w = 0; w < KEY_WORDS; w++) {
    if (((key[off + w]! & m[w]!) >>> 0) !== v[w]) return false;
  }
  return true;
}

export function matchEquals(a: Match, b: Match): boolean {
  for (let w = 0; w < KEY_WORDS; w++) {
    if (a.mask[w] !== b.mask[w] || a.value[w] !== b.value[w]) return false;
  }
  return true;
}

/** Non-strict modify/delete: `flow` is covered when it constrains every filter bit identically. */
export function matchCovers(filter: Match, flow: Match): boolean {
  for (let w = 0; w < KEY_WORDS; w++) {
    const fm = filter.mask[w]!;
    if ((fm & ~flow.mask[w]!) !== 0) return false;
    if (((flow.value[w]! & fm) >>> 0) !== filter.value[w]) return false;
  }
  return true;
}

/** check_overlap: some packet matches both (they agree on every bit both constrain). */
export function matchOverlaps(a: Match, b: Match): boolean {
  for (let w = 0; w < KEY_WORDS; w++) {
    if (((a.value[w]! ^ b.value[w]!) & a.mask[w]! & b.mask[w]!) !== 0) return false;
  }
  return true;
}

/** Whether the match satisfies the invariants (normalised, offsets unmasked). */
export function matchIsNormal(m: Match): boolean {
  for (let w = 0; w < KEY_WORDS; w++) {
    if ((m.value[w]! & ~m.mask[w]!) !== 0) return false;
    if (!isMatchWord(w) && m.mask[w] !== 0) return false;
  }
  return true;
}
