import { describe, it, expect } from 'vitest';
import fc from 'fast-check';

const U32 = fc.integer({ min: 0, max: 0xffffffff });
import {
  checksumUpdate16,
  checksumUpdate32,
  foldSum,
  internetChecksum,
  onesSum,
  pseudoHeaderSumIpv4,
  pseudoHeaderSumIpv6,
} from '../../../src/util/checksum.js';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

describe('Internet checksum (RFC 1071)', () => {
  it('RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2', () => {
    const d = bytes(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
    expect(onesSum(d, 0, 8)).toBe(0x2ddf0); // unfolded: 0001 + f203 + f4f5 + f6f7
    expect(foldSum(onesSum(d, 0, 8))).toBe(0xddf2);
    expect(internetChecksum(d, 0, 8)).toBe(0x220d);
  });

  it('a textbook IPv4 header (Wikipedia "IPv4 header checksum") gives b861', () => {
    const h = bytes(0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7);
    expect(internetChecksum(h, 0, 20)).toBe(0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    expect(internetChecksum(h, 0, 20)).toBe(0); // verifies
    expect(foldSum(onesSum(h, 0, 20))).toBe(0xffff);
  });

  it('odd length pads with a zero byte; offset and initial are honoured', () => {
    const d = bytes(0x99, 0x12, 0x34, 0x56);
    expect(onesSum(d, 1, 3)).toBe(0x1234 + 0x5600);
    expect(onesSum(d, 1, 3, 5)).toBe(0x1234 + 0x5600 + 5);
    expect(internetChecksum(new Uint8Array(0), 0, 0)).toBe(0xffff);
  });

  it('byte order independence (RFC 1071 §2 (B)): swapping bytes swaps the sum', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }).filter((a) => a.length % 2 === 0), (a) => {
        const sw = a.slice();
        for (let i = 0; i < sw.length; i += 2) [sw[i], sw[i + 1]] = [sw[i + 1]!, sw[i]!];
        const s = foldSum(onesSum(a, 0, a.length));
        const t = foldSum(onesSum(sw, 0, sw.length));
        expect(t).toBe(((s & 0xff) << 8) | (s >>> 8));
      }),
    );
  });

  it('foldSum handles sums beyond 32 bits', () => {
    expect(foldSum(0xffff * 100000)).toBe(0xffff);
    expect(foldSum(0x1_0000_0000)).toBe(1);
  });

  it('pseudo-headers', () => {
    expect(pseudoHeaderSumIpv4(0x0a000001, 0x0a000002, 17, 12)).toBe(0x0a00 + 1 + 0x0a00 + 2 + 17 + 12);
    const a = new Uint8Array(32);
    a[15] = 1;
    a[31] = 2;
    expect(pseudoHeaderSumIpv6(a, 0, 16, 58, 0x10020)).toBe(1 + 2 + 1 + 0x20 + 58);
  });
});

/** Equal as one's-complement numbers (0x0000 and 0xffff are both zero). */
const sameOnes = (a: number, b: number): boolean => a === b || (a % 0xffff === 0 && b % 0xffff === 0);

describe('incremental update (RFC 1624) equals full recompute', () => {
  it('16-bit word change', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 2, maxLength: 80 }),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff }),
        (data, pos, newWord) => {
          const d = data.length % 2 === 0 ? data : data.subarray(0, data.length - 1);
          const i = (pos % (d.length / 2)) * 2;
          const before = internetChecksum(d, 0, d.length);
          const oldWord = (d[i]! << 8) | d[i + 1]!;
          const e = d.slice();
          e[i] = newWord >>> 8;
          e[i + 1] = newWord & 0xff;
          const full = internetChecksum(e, 0, e.length);
          const inc = checksumUpdate16(before, oldWord, newWord);
          // Exactly equal unless the new data is all zero (then 0xffff vs 0: both are zero).
          if (e.some((b) => b !== 0)) expect(inc).toBe(full);
          else expect(sameOnes(inc, full)).toBe(true);
          // The updated checksum always verifies (sum ≡ 0 in one's complement).
          expect(sameOnes(foldSum(onesSum(e, 0, e.length) + inc), 0xffff)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('32-bit field change (IPv4 address rewrite in a real header)', () => {
    fc.assert(
      fc.property(U32, U32, fc.integer({ min: 0, max: 255 }), (src, newSrc, ttl) => {
        const h = bytes(0x45, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, ttl, 6, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2);
        new DataView(h.buffer).setUint32(12, src);
        const c = internetChecksum(h, 0, 20);
        new DataView(h.buffer).setUint32(12, newSrc);
        expect(checksumUpdate32(c, src, newSrc)).toBe(internetChecksum(h, 0, 20));
      }),
      { numRuns: 2000 },
    );
  });
});
