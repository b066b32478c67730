import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildFragNeeded, FRAG_NEEDED_MAX_SIZE } from '../../../src/tunnel/icmp.js';
import { clampTcpMss, tcpMssForMtu } from '../../../src/tunnel/mss.js';
import { extract } from '../../../src/packet/extract.js';
import { DropReason } from '../../../src/packet/drop.js';
import { K, KEY_WORDS } from '../../../src/packet/key.js';
import { buildFrame } from '../../../src/packet/build.js';
import { TCP_ACK, TCP_SYN } from '../../../src/packet/constants.js';
import { internetChecksum, pseudoHeaderSumIpv4 } from '../../../src/util/checksum.js';
import * as fx from '../../fixtures/packet/frames.js';

const ROUTER_MAC = { hi: 0x0200, lo: 0x000000fe };
const ROUTER_IP = 0x0a0000fe;

describe('buildFragNeeded', () => {
  it('answers the sender with type 3 code 4, the MTU and the quoted header + 8 bytes', () => {
    const inner = fx.icmpEcho; // 10.0.0.1 > 10.0.0.2, DF, from 02:00:00:00:00:01
    const out = new Uint8Array(FRAG_NEEDED_MAX_SIZE).fill(0xa5);
    const n = buildFragNeeded(out, 0, inner, 0, inner.length, 1458, ROUTER_IP, ROUTER_MAC);
    expect(n).toBe(14 + 20 + 8 + 28);
    expect(Array.from(out.subarray(0, 14))).toEqual([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0xfe, 8, 0]);
    const ip = 14;
    expect(internetChecksum(out, ip, 20)).toBe(0);
    expect(out[ip + 9]).toBe(1);
    expect((out[ip + 2]! << 8) | out[ip + 3]!).toBe(56);
    expect(Array.from(out.subarray(ip + 12, ip + 20))).toEqual([10, 0, 0, 0xfe, 10, 0, 0, 1]);
    const c = 34;
    expect([out[c], out[c + 1]]).toEqual([3, 4]);
    expect((out[c + 6]! << 8) | out[c + 7]!).toBe(1458);
    expect(internetChecksum(out, c, n - c)).toBe(0);
    expect(Array.from(out.subarray(c + 8, n))).toEqual(Array.from(inner.subarray(14, 14 + 28)));

    const key = new Uint32Array(KEY_WORDS);
    expect(extract(out, 0, n, key, 0, 1)).toBe(DropReason.NONE);
    expect([key[K.NW_PROTO], key[K.TP_SRC], key[K.TP_DST], key[K.NW_DST]]).toEqual([1, 3, 4, 0x0a000001]);
  });

  it('keeps the VLAN tag of the inner frame', () => {
    const f = new Uint8Array(fx.icmpEcho.length + 4);
    f.set(fx.icmpEcho.subarray(0, 12));
    f.set([0x81, 0x00, 0x00, 0x64], 12);
    f.set(fx.icmpEcho.subarray(12), 16);
    const out = new Uint8Array(FRAG_NEEDED_MAX_SIZE);
    const n = buildFragNeeded(out, 0, f, 0, f.length, 1400, ROUTER_IP, ROUTER_MAC);
    expect(Array.from(out.subarray(12, 18))).toEqual([0x81, 0, 0, 0x64, 8, 0]);
    const key = new Uint32Array(KEY_WORDS);
    expect(extract(out, 0, n, key, 0, 1)).toBe(DropReason.NONE);
    expect(key[K.VLAN_TCI]! & 0xfff).toBe(100);
  });

  it('sends nothing for non-IPv4, later fragments, ICMP errors, broadcast/multicast', () => {
    const out = new Uint8Array(FRAG_NEEDED_MAX_SIZE);
    const b = (f: Uint8Array) => buildFragNeeded(out, 0, f, 0, f.length, 1400, ROUTER_IP, ROUTER_MAC);
    expect(b(fx.arpRequest)).toBe(0);
    expect(b(fx.ipv4FragLater)).toBe(0);
    expect(b(fx.icmpv6Ns)).toBe(0);
    const err = Uint8Array.from(fx.icmpEcho);
    err[34] = 3;
    expect(b(err)).toBe(0);
    const mcast = Uint8Array.from(fx.icmpEcho);
    mcast[30] = 224;
    expect(b(mcast)).toBe(0);
    const bcastSrc = Uint8Array.from(fx.icmpEcho);
    bcastSrc[6] = 0xff;
    expect(b(bcastSrc)).toBe(0);
    expect(b(fx.icmpEcho.subarray(0, 30))).toBe(0);
  });

  it('never throws on random bytes', () => {
    const out = new Uint8Array(FRAG_NEEDED_MAX_SIZE);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const n = buildFragNeeded(out, 0, bytes, 0, bytes.length, 1400, ROUTER_IP, ROUTER_MAC);
        expect(n).toBeLessThanOrEqual(FRAG_NEEDED_MAX_SIZE);
      }),
      { numRuns: 2000 },
    );
  });
});

function tcpFrame(flags: number, options: number[]): { buf: Uint8Array; len: number } {
  const buf = new Uint8Array(200);
  const len = buildFrame(buf, 0, {
    dst: { hi: 0x0200, lo: 2 },
    src: { hi: 0x0200, lo: 1 },
    ip: { version: 4, src: 0x0a000001, dst: 0x0a000002, df: true },
    l4: { proto: 'tcp', srcPort: 40000, dstPort: 80, flags, options: Uint8Array.from(options) },
    payload: Uint8Array.of(1, 2, 3),
  });
  return { buf, len };
}
function tcpValid(buf: Uint8Array, len: number): boolean {
  return internetChecksum(buf, 34, len - 34, pseudoHeaderSumIpv4(0x0a000001, 0x0a000002, 6, len - 34)) === 0;
}
const mssAt = (buf: Uint8Array, p: number) => (buf[p]! << 8) | buf[p + 1]!;

describe('clampTcpMss', () => {
  it('lowers a larger MSS in a SYN, checksum still valid (even and odd option offsets)', () => {
    for (const [opts, at] of [
      [[2, 4, 0x05, 0xb4], 56],
      [[1, 2, 4, 0x05, 0xb4, 0, 0, 0], 57],
      [[1, 1, 1, 2, 4, 0x23, 0x28, 0], 59],
    ] as const) {
      const { buf, len } = tcpFrame(TCP_SYN, [...opts]);
      expect(tcpValid(buf, len)).toBe(true);
      expect(clampTcpMss(buf, 0, len, 34, 1418)).toBe(true);
      expect(mssAt(buf, at)).toBe(1418);
      expect(tcpValid(buf, len)).toBe(true);
    }
  });
  it('SYN-ACK too', () => {
    const { buf, len } = tcpFrame(TCP_SYN | TCP_ACK, [2, 4, 0x05, 0xb4]);
    expect(clampTcpMss(buf, 0, len, 34, 1400)).toBe(true);
    expect(tcpValid(buf, len)).toBe(true);
  });
  it('leaves non-SYNs, smaller MSS, no MSS option and malformed options alone', () => {
    const cases: [number, number[]][] = [
      [TCP_ACK, [2, 4, 0x05, 0xb4]],
      [TCP_SYN, [2, 4, 0x04, 0x00]],
      [TCP_SYN, [1, 1, 1, 1]],
      [TCP_SYN, [0, 2, 4, 0x05, 0xb4, 0, 0, 0]],
      [TCP_SYN, [8, 1, 2, 4, 0x05, 0xb4, 0, 0]],
    ];
    for (const [flags, opts] of cases) {
      const { buf, len } = tcpFrame(flags, opts);
      const before = Array.from(buf.subarray(0, len));
      expect(clampTcpMss(buf, 0, len, 34, 1400)).toBe(false);
      expect(Array.from(buf.subarray(0, len))).toEqual(before);
    }
  });
  it('random MSS values: result ≤ max, changed iff larger, checksum valid', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 536, max: 9000 }), fc.boolean(), (mss, max, odd) => {
        const opts = odd ? [1, 2, 4, mss >>> 8, mss & 0xff, 0, 0, 0] : [2, 4, mss >>> 8, mss & 0xff];
        const { buf, len } = tcpFrame(TCP_SYN, opts);
        expect(clampTcpMss(buf, 0, len, 34, max)).toBe(mss > max);
        expect(mssAt(buf, odd ? 57 : 56)).toBe(Math.min(mss, max));
        expect(tcpValid(buf, len)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
  it('MSS for an MTU (RFC 6691)', () => {
    expect(tcpMssForMtu(1458, 4)).toBe(1418);
    expect(tcpMssForMtu(1500, 6)).toBe(1440);
  });
});
