/**
 * The C flow key (native/extract.c) against the JavaScript one (src/packet/extract.ts):
 * for every frame, the same 39 words and the same drop reason. The native fast path will
 * look frames up in a cache keyed by what JavaScript computed, so the two must agree on
 * every frame, malformed ones included. Frames come from a generator that builds them
 * layer by layer (VLAN tags, ARP, IPv4 with options and fragments, IPv6 with extension
 * headers, TCP, UDP, ICMP, ICMPv6, GRE) with random field values and then cuts them at a
 * random length, and from plain random bytes; the test also checks that the generator
 * reached every drop reason the parser has.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { extract } from '../../../src/packet/extract.js';
import { KEY_WORDS } from '../../../src/packet/key.js';
import { DropReason } from '../../../src/packet/drop.js';
import { loadNative } from '../../../src/io/native.js';

const native = loadNative();

const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const be16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];

/** An L4 header (and a little payload) for protocol `proto`, with random fields. */
const l4 = (proto: number) => {
  switch (proto) {
    case 6: // TCP: data offset anywhere in 0..15
      return fc.tuple(u16, u16, bytes(8, 8), fc.integer({ min: 0, max: 15 }), u8, bytes(0, 48)).map(([s, d, seq, off, flags, rest]) => [
        ...be16(s), ...be16(d), ...seq, (off << 4) | (flags & 0x0f), flags, 0, 0, 0, 0, 0, 0, ...rest,
      ]);
    case 17: // UDP: length right, short or long
      return fc.tuple(u16, u16, fc.oneof(fc.constant(-1), u16), bytes(0, 40)).map(([s, d, len, rest]) => [
        ...be16(s), ...be16(d), ...be16(len < 0 ? 8 + rest.length : len), 0, 0, ...rest,
      ]);
    case 47: // GRE: random flags and version
      return fc.tuple(fc.oneof(fc.constantFrom(0x0000, 0x2000, 0xb000, 0x8000, 0x1000, 0x4000, 0x0001), u16), bytes(0, 24)).map(([flags, rest]) => [
        ...be16(flags), 0x65, 0x58, ...rest,
      ]);
    default: // ICMP, ICMPv6 or anything else
      return bytes(0, 24).map((b) => [...b]);
  }
};

const l4Proto = fc.oneof(fc.constantFrom(1, 6, 17, 47, 58), u8);

/** Mostly the right value, sometimes anything: deep layers are reached, bad ones tried. */
const mostly = (right: number, any: fc.Arbitrary<number>) => fc.oneof({ weight: 8, arbitrary: fc.constant(right) }, { weight: 2, arbitrary: any });
/** A length field: right (-1), cut short inside what follows (-2 - n), or anything. */
const lengthField = fc.oneof({ weight: 6, arbitrary: fc.constant(-1) }, { weight: 3, arbitrary: fc.integer({ min: 0, max: 30 }).map((n) => -2 - n) }, { weight: 1, arbitrary: u16 });
const resolveLength = (field: number, header: number, payload: number): number => (field === -1 ? header + payload : field < -1 ? header + Math.min(payload, -2 - field) : field);

const ipv4 = fc
  .tuple(mostly(4, fc.integer({ min: 0, max: 15 })), mostly(5, fc.integer({ min: 0, max: 15 })), u8, fc.constantFrom(0x0000, 0x4000, 0x2000, 0x0001, 0x2005), u8, l4Proto, bytes(8, 8), lengthField)
  .chain(([version, ihl, tos, frag, ttl, proto, addrs, total]) =>
    l4(proto).map((payload) => {
      const options = Array.from({ length: Math.max(0, ihl * 4 - 20) }, (_, i) => i & 0xff);
      const length = resolveLength(total, 20 + options.length, payload.length);
      return [(version << 4) | ihl, tos, ...be16(length), 0, 1, ...be16(frag), ttl, proto, 0, 0, ...addrs, ...options, ...payload];
    }),
  );

/** An IPv6 extension header: next header, its length byte, and padding to its size. */
const ext = fc.tuple(fc.constantFrom(0, 43, 44, 60, 51), u8, fc.integer({ min: 0, max: 3 }), u16).map(([type, next, len, fragOff]) => ({ type, next, len, fragOff }));

const ipv6 = fc
  .tuple(mostly(6, fc.integer({ min: 0, max: 15 })), u8, fc.integer({ min: 0, max: 0xfffff }), fc.array(ext, { maxLength: 3 }), l4Proto, u8, bytes(32, 32), lengthField)
  .chain(([version, tc, label, exts, last, hop, addrs, plen]) =>
    l4(last).map((payload) => {
      const body: number[] = [];
      for (let i = 0; i < exts.length; i++) {
        const e = exts[i]!;
        const next = i + 1 < exts.length ? exts[i + 1]!.type : last;
        if (e.type === 44) body.push(next, 0, ...be16(e.fragOff), 0, 0, 0, 1);
        else {
          const size = e.type === 51 ? (e.len + 2) * 4 : (e.len + 1) * 8;
          body.push(next, e.len, ...Array.from({ length: size - 2 }, () => 0));
        }
      }
      body.push(...payload);
      const first = exts.length > 0 ? exts[0]!.type : last;
      const word = ((version & 15) << 28) | (tc << 20) | label;
      return [(word >>> 24) & 0xff, (word >>> 16) & 0xff, (word >>> 8) & 0xff, word & 0xff, ...be16(resolveLength(plen, 0, body.length)), first, hop, ...addrs, ...body];
    }),
  );

const arp = fc.tuple(fc.constantFrom(1, 6), fc.constantFrom(0x0800, 0x86dd), fc.constantFrom(6, 4, 8), fc.constantFrom(4, 6), u16, bytes(20, 20)).map(([htype, ptype, hlen, plen, op, rest]) => [
  ...be16(htype), ...be16(ptype), hlen, plen, ...be16(op), ...rest,
]);

const l3 = fc.oneof(
  ipv4.map((b) => ({ type: 0x0800, b })),
  ipv6.map((b) => ({ type: 0x86dd, b })),
  arp.map((b) => ({ type: 0x0806, b })),
  arp.map((b) => ({ type: 0x8035, b })),
  fc.tuple(fc.oneof(u16, fc.integer({ min: 0, max: 0x5ff })), bytes(0, 30)).map(([type, b]) => ({ type, b: [...b] })),
);

const tag = fc.tuple(fc.constantFrom(0x8100, 0x88a8, 0x9100), u16);

/** A whole frame, cut at a random length (or not cut). */
const frame = fc
  .tuple(bytes(12, 12), fc.array(tag, { maxLength: 3 }), l3, fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 200 })))
  .map(([macs, tags, { type, b }, cut]) => {
    const whole = [...macs, ...tags.flatMap(([tpid, tci]) => [...be16(tpid), ...be16(tci)]), ...be16(type), ...b];
    return Uint8Array.from(cut < 0 ? whole : whole.slice(0, cut));
  });

/** Both parsers on one frame: [JS words, JS reason, C words, C reason]. */
function both(f: Uint8Array, inPort: number, headroom: number): [number[], number, number[], number] {
  const buf = new Uint8Array(headroom + f.length + 7);
  buf.set(f, headroom);
  const jsKey = new Uint32Array(KEY_WORDS + 4);
  const jsReason = extract(buf, headroom, f.length, jsKey, 2, inPort);
  const cKey = new Uint32Array(KEY_WORDS);
  const cReason = native.lime_extract_key(Buffer.from(f), cKey, inPort);
  return [[...jsKey.subarray(2, 2 + KEY_WORDS)], jsReason, [...cKey], cReason];
}

describe('native flow key (native/extract.c) equals packet/extract.ts', () => {
  it('has the same key size', () => {
    expect(native.LIME_KEY_WORDS).toBe(KEY_WORDS);
  });

  it('agrees on generated frames, and the generator reaches every drop reason', () => {
    const seen = new Set<number>();
    fc.assert(
      fc.property(frame, fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 64 }), (f, inPort, headroom) => {
        const [jk, jr, ck, cr] = both(f, inPort, headroom);
        seen.add(jr);
        expect(cr).toBe(jr);
        expect(ck).toEqual(jk);
      }),
      { numRuns: 20_000, seed: 4242 },
    );
    const extractReasons = Array.from({ length: DropReason.GRE_BAD_FLAGS + 1 }, (_, i) => i);
    expect([...seen].sort((a, b) => a - b)).toEqual(extractReasons);
  });

  it('agrees on random bytes', () => {
    fc.assert(
      fc.property(bytes(0, 120), fc.integer({ min: 0, max: 0xffff }), (f, inPort) => {
        const [jk, jr, ck, cr] = both(f, inPort, 3);
        expect(cr).toBe(jr);
        expect(ck).toEqual(jk);
      }),
      { numRuns: 5_000, seed: 7 },
    );
  });

  it('takes an empty frame (a runt) and refuses a key too short', () => {
    const key = new Uint32Array(KEY_WORDS);
    expect(native.lime_extract_key(Buffer.alloc(0), key, 9)).toBe(DropReason.RUNT);
    expect(key[0]).toBe(9);
    expect(() => native.lime_extract_key(Buffer.alloc(60), new Uint32Array(KEY_WORDS - 1), 1)).toThrow(/LIME_KEY_WORDS/);
    expect(() => native.lime_extract_key('frame' as unknown as Buffer, key, 1)).toThrow(TypeError);
  });
});
