/**
 * GRE encap/decap against independent byte fixtures (test/fixtures/packet/frames.ts, made
 * by a Python script), a round-trip property over random frames and options, and one test
 * per decap drop reason.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  buildGreTemplate,
  greDecap,
  GreDecapResult,
  greEncap,
  greFits,
  greInnerIpMtu,
  innerIpTos,
  innerIpTtl,
  type GreTemplateSpec,
} from '../../../src/tunnel/gre.js';
import { DropReason } from '../../../src/packet/drop.js';
import { internetChecksum } from '../../../src/util/checksum.js';
import { hex } from '../../fixtures/packet/frames.js';
import * as fx from '../../fixtures/packet/frames.js';

const A = 0xc6336401; // 198.51.100.1
const B = 0xc6336402; // 198.51.100.2
const HEADROOM = 128;

/** The fixture's outer IPv4 packet (after its 14-byte Ethernet header) and its inner frame. */
function split(frame: Uint8Array, greSize: number): { outer: Uint8Array; inner: Uint8Array } {
  const outer = frame.subarray(14);
  return { outer, inner: outer.subarray(20 + greSize) };
}

function encapInto(tpl: ReturnType<typeof buildGreTemplate>, inner: Uint8Array, key = 0, seq = 0, tos = -1, ttl = -1) {
  const buf = new Uint8Array(HEADROOM + inner.length + 16).fill(0xa5);
  buf.set(inner, HEADROOM);
  const s = greEncap(buf, HEADROOM, inner.length, tpl, key, seq, tos, ttl);
  return { buf, s, size: HEADROOM + inner.length - s };
}

describe('greEncap byte layout', () => {
  it('GRE with a key, as Open vSwitch sends it (fixture greKey)', () => {
    const { outer, inner } = split(fx.greKey, 8);
    const tpl = buildGreTemplate({ src: A, dst: B, key: 0xfedcba98 });
    expect(tpl.size).toBe(28);
    const { buf, s, size } = encapInto(tpl, inner);
    expect(s).toBe(HEADROOM - 28);
    expect(Array.from(buf.subarray(s, s + size))).toEqual(Array.from(outer));
  });

  it('hand-written header: proto 47, DF, TTL 64, flags 0x2000, 0x6558, key', () => {
    const inner = fx.arpRequest.subarray(0, 42);
    const tpl = buildGreTemplate({ src: 0x0a000001, dst: 0x0a000002, key: 0x1234 });
    const { buf, s } = encapInto(tpl, inner);
    // total length 28 + 42 = 70 = 0x46; checksum by hand: 0x4500+0x0046+0x4000+0x402f+0x0a00+0x0001+0x0a00+0x0002
    // = 0xd978 (no carry) → ~ = 0x2687.
    expect(Array.from(buf.subarray(s, s + 28))).toEqual(
      Array.from(hex('4500 0046 0000 4000 402f 2687 0a00 0001 0a00 0002 2000 6558 0000 1234')),
    );
    expect(Array.from(buf.subarray(s + 28, s + 70))).toEqual(Array.from(inner));
  });

  it('C, K and S bits with checksum (fixture greCks)', () => {
    const { outer, inner } = split(fx.greCks, 16);
    const tpl = buildGreTemplate({ src: A, dst: B, key: 'flow', csum: true, seq: true });
    expect(tpl.flags).toBe(0xb000);
    const { buf, s, size } = encapInto(tpl, inner, 100, 1);
    expect(Array.from(buf.subarray(s, s + size))).toEqual(Array.from(outer));
  });

  it('no key: flags 0, 24-byte header; DF clear, TTL, TOS and TOS override', () => {
    const tpl = buildGreTemplate({ src: A, dst: B, df: false, ttl: 9, tos: 0x28 });
    expect(tpl.size).toBe(24);
    const inner = fx.icmpEcho;
    let r = encapInto(tpl, inner);
    expect(Array.from(r.buf.subarray(r.s + 20, r.s + 24))).toEqual([0, 0, 0x65, 0x58]);
    expect(r.buf[r.s + 1]).toBe(0x28);
    expect(r.buf[r.s + 6]).toBe(0);
    expect(r.buf[r.s + 8]).toBe(9);
    expect(internetChecksum(r.buf, r.s, 20)).toBe(0);
    r = encapInto(tpl, inner, 0, 0, 0xb8);
    expect(r.buf[r.s + 1]).toBe(0xb8);
    expect(internetChecksum(r.buf, r.s, 20)).toBe(0);
  });

  it('TTL override (ttl=inherit): the byte and a checksum that verifies; innerIpTtl reads IPv4 TTL and IPv6 hop limit', () => {
    const tpl = buildGreTemplate({ src: A, dst: B, key: 7, ttl: 200 });
    let r = encapInto(tpl, fx.icmpEcho, 0, 0, -1, 3);
    expect(r.buf[r.s + 8]).toBe(3);
    expect(internetChecksum(r.buf, r.s, 20)).toBe(0);
    r = encapInto(tpl, fx.icmpEcho);
    expect(r.buf[r.s + 8]).toBe(200);
    expect(internetChecksum(r.buf, r.s, 20)).toBe(0);
    // fx.icmpEcho is IPv4: its TTL byte sits at 14 + 8.
    expect(innerIpTtl(fx.icmpEcho, 0, fx.icmpEcho.length)).toBe(fx.icmpEcho[22]);
    const v6 = Uint8Array.from(fx.icmpEcho);
    v6[12] = 0x86;
    v6[13] = 0xdd;
    v6[14] = 0x60;
    v6[21] = 17;
    expect(innerIpTtl(v6, 0, v6.length)).toBe(17);
    v6[12] = 0x08;
    v6[13] = 0x06; // ARP: no IP header
    expect(innerIpTtl(v6, 0, v6.length)).toBe(-1);
  });

  it('identification counts per packet and wraps at 16 bits', () => {
    const tpl = buildGreTemplate({ src: A, dst: B, key: 1 });
    tpl.ipId = 0xfffe;
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = encapInto(tpl, fx.icmpEcho);
      ids.push((r.buf[r.s + 4]! << 8) | r.buf[r.s + 5]!);
      expect(internetChecksum(r.buf, r.s, 20)).toBe(0);
    }
    expect(ids).toEqual([0xfffe, 0xffff, 0]);
  });

  it('template spec errors name the field', () => {
    expect(() => buildGreTemplate({ src: A, dst: -1 })).toThrow(/dst/);
    expect(() => buildGreTemplate({ src: A, dst: B, ttl: 0 })).toThrow(/ttl/);
    expect(() => buildGreTemplate({ src: A, dst: B, tos: 256 })).toThrow(/tos/);
    expect(() => buildGreTemplate({ src: A, dst: B, key: 2 ** 32 })).toThrow(/key/);
  });

  it('MTU helpers: GRE+key over a 1500 path carries a 1458-byte inner IP packet', () => {
    const tpl = buildGreTemplate({ src: A, dst: B, key: 1 });
    expect(greInnerIpMtu(tpl, 1500)).toBe(1458);
    expect(greFits(tpl, 1472, 1500)).toBe(true);
    expect(greFits(tpl, 1473, 1500)).toBe(false);
  });

  it('innerIpTos reads IPv4 TOS / IPv6 traffic class after tags', () => {
    const f = Uint8Array.from(fx.icmpEcho);
    f[15] = 0xb8;
    expect(innerIpTos(f, 0, f.length)).toBe(0xb8);
    expect(innerIpTos(fx.arpRequest, 0, 60)).toBe(-1);
    expect(innerIpTos(fx.icmpv6Ns, 0, fx.icmpv6Ns.length)).toBeGreaterThanOrEqual(0);
  });
});

describe('encap → decap round trip', () => {
  it('random inner frames, keys, C/S bits, TOS', () => {
    const out = new GreDecapResult();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 14, maxLength: 1600 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom<'fixed' | 'flow' | 'none'>('fixed', 'flow', 'none'),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: -1, max: 255 }),
        fc.integer({ min: 0, max: 0xffff }),
        (inner, key, csum, seq, keyMode, seqNo, tos, id) => {
          const spec: GreTemplateSpec = { src: A, dst: B, csum, seq };
          if (keyMode === 'fixed') spec.key = key;
          if (keyMode === 'flow') spec.key = 'flow';
          const tpl = buildGreTemplate(spec);
          tpl.ipId = id;
          const { buf, s, size } = encapInto(tpl, inner, key, seqNo, tos);
          expect(internetChecksum(buf, s, 20)).toBe(0);
          if (csum) expect(internetChecksum(buf, s + 20, size - 20)).toBe(0);
          const reason = greDecap(buf, s, size, { remote: A, key: keyMode === 'none' ? undefined : key }, out);
          expect(reason).toBe(DropReason.NONE);
          expect(out.innerStart).toBe(HEADROOM);
          expect(out.innerLen).toBe(inner.length);
          expect(Array.from(buf.subarray(out.innerStart, out.innerStart + out.innerLen))).toEqual(Array.from(inner));
          expect(out.hasKey).toBe(keyMode !== 'none');
          expect(out.key).toBe(keyMode === 'none' ? 0 : key);
          expect(out.hasSeq).toBe(seq);
          expect(out.seq).toBe(seq ? seqNo : 0);
          expect(out.src).toBe(A);
          expect(out.tos).toBe(tos >= 0 ? tos : 0);
          expect(greDecap(buf, s, size, { key: 'any' }, out)).toBe(DropReason.NONE);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('decodes the independent fixtures', () => {
    const out = new GreDecapResult();
    expect(greDecap(fx.greKey, 14, fx.greKey.length - 14, { remote: A, key: 0xfedcba98 }, out)).toBe(DropReason.NONE);
    expect([out.innerStart, out.innerLen, out.key]).toEqual([42, 42, 0xfedcba98]);
    expect(greDecap(fx.greCks, 14, fx.greCks.length - 14, { remote: A, key: 100 }, out)).toBe(DropReason.NONE);
    expect([out.innerStart, out.innerLen, out.key, out.seq]).toEqual([50, 42, 100, 1]);
  });

  it('ignores bytes after the IPv4 total length (Ethernet padding)', () => {
    const out = new GreDecapResult();
    const padded = new Uint8Array(fx.greKey.length + 10);
    padded.set(fx.greKey);
    expect(greDecap(padded, 14, padded.length - 14, { key: 0xfedcba98 }, out)).toBe(DropReason.NONE);
    expect(out.innerLen).toBe(42);
  });
});

describe('greDecap drop reasons', () => {
  const out = new GreDecapResult();
  /** A fresh valid outer packet (GRE, key 7, optional C/S), mutated by `f`, checksums fixed unless told. */
  function pkt(
    f: (b: Uint8Array, s: number) => void = () => {},
    o: { csum?: boolean; seq?: boolean; key?: number | null; fixIp?: boolean } = {},
  ) {
    const spec: GreTemplateSpec = { src: A, dst: B, csum: o.csum ?? false, seq: o.seq ?? false };
    if (o.key !== null) spec.key = o.key ?? 7;
    const { buf, s, size } = encapInto(buildGreTemplate(spec), fx.icmpEcho);
    f(buf, s);
    if (o.fixIp ?? true) {
      buf[s + 10] = 0;
      buf[s + 11] = 0;
      const c = internetChecksum(buf, s, 20);
      buf[s + 10] = c >>> 8;
      buf[s + 11] = c & 0xff;
    }
    return { buf, s, size };
  }
  function decap(p: { buf: Uint8Array; s: number; size: number }, expect: Parameters<typeof greDecap>[3] = { remote: A, key: 7 }, size = p.size) {
    return greDecap(p.buf, p.s, size, expect, out);
  }

  it('accepts the unmodified packet', () => {
    expect(decap(pkt())).toBe(DropReason.NONE);
  });
  it('truncated outer IPv4 → IPV4_TRUNCATED', () => {
    expect(decap(pkt(), undefined, 19)).toBe(DropReason.IPV4_TRUNCATED);
  });
  it('IP version 6 → IPV4_BAD_VERSION', () => {
    expect(decap(pkt((b, s) => (b[s] = 0x65)))).toBe(DropReason.IPV4_BAD_VERSION);
  });
  it('IHL 4 or past the data → IPV4_BAD_IHL', () => {
    expect(decap(pkt((b, s) => (b[s] = 0x44)))).toBe(DropReason.IPV4_BAD_IHL);
    expect(decap(pkt((b, s) => (b[s] = 0x4f)), undefined, 40)).toBe(DropReason.IPV4_BAD_IHL);
  });
  it('total length past the data → IPV4_BAD_TOTAL_LEN', () => {
    const p = pkt();
    expect(decap(p, undefined, p.size - 1)).toBe(DropReason.IPV4_BAD_TOTAL_LEN);
  });
  it('bad outer header checksum → TUNNEL_IPV4_BAD_CHECKSUM', () => {
    expect(decap(pkt((b, s) => (b[s + 10] ^= 1), { fixIp: false }))).toBe(DropReason.TUNNEL_IPV4_BAD_CHECKSUM);
  });
  it('wrong remote (spoofed source) → TUNNEL_UNKNOWN_REMOTE', () => {
    expect(decap(pkt((b, s) => (b[s + 15] = 9)))).toBe(DropReason.TUNNEL_UNKNOWN_REMOTE);
    expect(decap(pkt((b, s) => (b[s + 15] = 9)), { key: 7 })).toBe(DropReason.NONE);
  });
  it('IP protocol ≠ 47 → TUNNEL_NOT_GRE', () => {
    expect(decap(pkt((b, s) => (b[s + 9] = 17)))).toBe(DropReason.TUNNEL_NOT_GRE);
  });
  it('IPv4 fragment (MF or offset) → TUNNEL_FRAGMENT', () => {
    expect(decap(pkt((b, s) => (b[s + 6] = 0x20)))).toBe(DropReason.TUNNEL_FRAGMENT);
    expect(decap(pkt((b, s) => (b[s + 7] = 0x01)))).toBe(DropReason.TUNNEL_FRAGMENT);
  });
  it('GRE shorter than 4 bytes or than its options → GRE_TRUNCATED', () => {
    const cut = (n: number) =>
      pkt((b, s) => {
        b[s + 2] = 0;
        b[s + 3] = 20 + n;
      });
    expect(decap(cut(3))).toBe(DropReason.GRE_TRUNCATED);
    expect(decap(cut(6))).toBe(DropReason.GRE_TRUNCATED);
  });
  it('GRE version 1 → GRE_BAD_VERSION', () => {
    expect(decap(pkt((b, s) => (b[s + 21] = 1)))).toBe(DropReason.GRE_BAD_VERSION);
  });
  it('routing bit (or s / Recur) → GRE_BAD_FLAGS', () => {
    expect(decap(pkt((b, s) => (b[s + 20] |= 0x40)))).toBe(DropReason.GRE_BAD_FLAGS);
    expect(decap(pkt((b, s) => (b[s + 20] |= 0x08)))).toBe(DropReason.GRE_BAD_FLAGS);
  });
  it('protocol not 0x6558 → GRE_BAD_PROTO', () => {
    expect(decap(pkt((b, s) => (b[s + 22] = 0x08)))).toBe(DropReason.GRE_BAD_PROTO);
  });
  it('bad GRE checksum → GRE_BAD_CHECKSUM (payload or header corrupted)', () => {
    expect(decap(pkt(() => {}, { csum: true }))).toBe(DropReason.NONE);
    expect(decap(pkt((b, s) => (b[s + 40] ^= 0x10), { csum: true }))).toBe(DropReason.GRE_BAD_CHECKSUM);
    expect(decap(pkt((b, s) => (b[s + 24] ^= 0x10), { csum: true }))).toBe(DropReason.GRE_BAD_CHECKSUM);
  });
  it('wrong key → GRE_KEY_MISMATCH; key where none expected → GRE_KEY_MISMATCH', () => {
    expect(decap(pkt(() => {}, { key: 8 }))).toBe(DropReason.GRE_KEY_MISMATCH);
    expect(decap(pkt(), { remote: A })).toBe(DropReason.GRE_KEY_MISMATCH);
  });
  it('missing key → GRE_KEY_MISSING; key "any" accepts none', () => {
    expect(decap(pkt(() => {}, { key: null }))).toBe(DropReason.GRE_KEY_MISSING);
    expect(decap(pkt(() => {}, { key: null }), { key: 'any' })).toBe(DropReason.NONE);
    expect(out.hasKey).toBe(false);
  });
  it('inner frame shorter than an Ethernet header → RUNT', () => {
    expect(
      decap(
        pkt((b, s) => {
          b[s + 2] = 0;
          b[s + 3] = 28 + 13;
        }),
      ),
    ).toBe(DropReason.RUNT);
  });
  it('never throws on random bytes, and len is clamped to the buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.integer({ min: 0, max: 200 }), (bytes, len) => {
        const r = greDecap(bytes, 0, len, { key: 'any' }, out);
        expect(typeof r).toBe('number');
        if (r === DropReason.NONE) expect(out.innerStart + out.innerLen).toBeLessThanOrEqual(bytes.length);
      }),
      { numRuns: 2000 },
    );
  });
});
