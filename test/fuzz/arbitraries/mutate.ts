/**
 * Byte-level mutations of valid inputs, the moves a coverage-guided fuzzer makes: flip a
 * bit, overwrite a byte or a 16-bit word with a boundary value, insert, delete or repeat a
 * range, cut the tail, append garbage. Positions are fractions of the input's length, so
 * a mutation list applies to an input of any size, and is biased towards the front,
 * where the headers are.
 */
import fc from 'fast-check';

export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'byte'; at: number; value: number }
  | { op: 'word'; at: number; value: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'repeat'; at: number; count: number }
  | { op: 'cut'; at: number }
  | { op: 'append'; bytes: Uint8Array };

/** Values that sit on the edges of length and type fields. */
const INTERESTING_BYTES = [0x00, 0x01, 0x04, 0x05, 0x06, 0x08, 0x0f, 0x10, 0x3f, 0x40, 0x45, 0x60, 0x7f, 0x80, 0x81, 0x86, 0xdd, 0xfe, 0xff];
const INTERESTING_WORDS = [0x0000, 0x0001, 0x0007, 0x0008, 0x0014, 0x05dc, 0x05ff, 0x0600, 0x0800, 0x0806, 0x8100, 0x86dd, 0x88a8, 0x6558, 0x7fff, 0x8000, 0xfffe, 0xffff];

/** A position: a fraction of the length, mostly within the first 96 bytes. */
const position = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 95 }).map((b) => -1 - b) }, { weight: 1, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }) });

function resolve(at: number, length: number): number {
  if (length === 0) return 0;
  const i = at < 0 ? -1 - at : Math.floor(at * length);
  return Math.min(i, length - 1);
}

const small = fc.uint8Array({ minLength: 1, maxLength: 16 });

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('byte' as const), at: position, value: fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.integer({ min: 0, max: 255 })) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('word' as const), at: position, value: fc.oneof(fc.constantFrom(...INTERESTING_WORDS), fc.integer({ min: 0, max: 0xffff })) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('insert' as const), at: position, bytes: small }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), at: position, count: fc.integer({ min: 1, max: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('repeat' as const), at: position, count: fc.integer({ min: 1, max: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cut' as const), at: position }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('append' as const), bytes: small }) },
);

/** `input` with `mutations` applied in order (a new array; the input is not changed). */
export function applyMutations(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b: Uint8Array = Uint8Array.from(input);
  for (const m of mutations) {
    const i = m.op === 'append' ? b.length : resolve(m.at, b.length);
    switch (m.op) {
      case 'flip':
        if (b.length > 0) b[i] = b[i]! ^ (1 << m.bit);
        break;
      case 'byte':
        if (b.length > 0) b[i] = m.value;
        break;
      case 'word':
        if (i + 1 < b.length) {
          b[i] = m.value >>> 8;
          b[i + 1] = m.value & 0xff;
        }
        break;
      case 'insert':
      case 'append':
        b = concat(b.subarray(0, i), m.bytes, b.subarray(i));
        break;
      case 'delete':
        b = concat(b.subarray(0, i), b.subarray(i + m.count));
        break;
      case 'repeat':
        b = concat(b.subarray(0, i + m.count), b.subarray(i));
        break;
      case 'cut':
        b = b.slice(0, i);
        break;
    }
  }
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** `valid` inputs, each with 1–maxMutations mutations. */
export function mutated(valid: fc.Arbitrary<Uint8Array>, maxMutations = 4): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: maxMutations })).map(([v, ms]) => applyMutations(v, ms));
}
