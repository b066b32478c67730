/**
 * Builders: byte-exact against the independently generated fixtures, written into
 * 0xa5-filled buffers (so a byte the builder forgot shows up), round-tripped through
 * extract(), and with checksums that verify.
 */
import { describe, it, expect } from 'vitest';
import {
  buildArpReply,
  buildArpRequest,
  buildFrame,
  buildGratuitousArp,
  buildRarp,
  padFrame,
  setGreChecksum,
  writeGreHeader,
  writeIpv4Header,
  type FrameSpec,
} from '../../../src/packet/build.js';
import { extract } from '../../../src/packet/extract.js';
import { K, KEY_WORDS, OFF_ABSENT } from '../../../src/packet/key.js';
import { DropReason } from '../../../src/packet/drop.js';
import { foldSum, onesSum, pseudoHeaderSumIpv4, pseudoHeaderSumIpv6 } from '../../../src/util/checksum.js';
import { greKey, greSeq, greChecksum, greHeaderSize } from '../../../src/packet/gre.js';
import { TCP_SYN, TCP_ACK, TCP_PSH } from '../../../src/packet/constants.js';
import { parseIpv6 } from '../../../src/util/addr.js';
import * as fx from '../../fixtures/packet/frames.js';

const A = { hi: 0x0200, lo: 1 };
const B = { hi: 0x0200, lo: 2 };
const AT = 10; // build at a non-zero offset

function build(fn: (buf: Uint8Array, off: number) => number): Uint8Array {
  const buf = new Uint8Array(2048).fill(0xa5);
  const n = fn(buf, AT);
  return buf.slice(AT, AT + n);
}

function parse(frame: Uint8Array): { reason: DropReason; key: Uint32Array } {
  const key = new Uint32Array(KEY_WORDS);
  return { reason: extract(frame, 0, frame.length, key, 0, 1), key };
}

/** Sum over the IPv4 header folds to 0xffff. */
function ipv4HeaderVerifies(f: Uint8Array, l3: number): boolean {
  return foldSum(onesSum(f, l3, (f[l3]! & 0x0f) * 4)) === 0xffff;
}
/** Sum over pseudo-header + transport packet folds to 0xffff. */
function l4Verifies(f: Uint8Array, key: Uint32Array, l4Size: number, ipv6: boolean): boolean {
  const l3 = key[K.L3_OFF]!;
  const l4 = key[K.L4_OFF]!;
  const proto = key[K.NW_PROTO]!;
  let initial: number;
  if (proto === 1) initial = 0;
  else if (ipv6) initial = pseudoHeaderSumIpv6(f, l3 + 8, l3 + 24, proto, l4Size);
  else initial = pseudoHeaderSumIpv4(key[K.NW_SRC]!, key[K.NW_DST]!, proto, l4Size);
  return foldSum(onesSum(f, l4, l4Size, initial)) === 0xffff;
}

const hexOf = (a: Uint8Array): string => Buffer.from(a).toString('hex');

describe('builders match the independent fixtures byte for byte', () => {
  it('ARP request (padded)', () => {
    const f = build((b, o) =>
      padFrame(b, o, buildArpRequest(b, o, { sha: { hi: 0x5254, lo: 0x00123456 }, spa: 0xc0a80001, tpa: 0xc0a80002 })),
    );
    expect(hexOf(f)).toBe(hexOf(fx.arpRequest));
  });

  it('double-tagged ARP reply with DEI', () => {
    const f = build((b, o) =>
      buildArpReply(b, o, {
        sha: A,
        spa: 0x0a090001,
        tha: B,
        tpa: 0x0a090002,
        vlans: [{ vid: 10, dei: true }, { vid: 20, pcp: 5 }],
      }),
    );
    expect(hexOf(f)).toBe(hexOf(fx.vlanDouble));
  });

  it('ICMP echo', () => {
    const payload = Uint8Array.from({ length: 56 }, (_, i) => 0x10 + i);
    const f = build((b, o) =>
      buildFrame(b, o, {
        dst: B,
        src: A,
        ip: { version: 4, src: 0x0a000001, dst: 0x0a000002, id: 0x1c46, df: true },
        l4: { proto: 'icmp', type: 8, code: 0, rest: 0x12340001 },
        payload,
      }),
    );
    expect(hexOf(f)).toBe(hexOf(fx.icmpEcho));
  });

  it('TCP SYN with options', () => {
    const f = build((b, o) =>
      buildFrame(b, o, {
        dst: B,
        src: A,
        ip: { version: 4, src: 0x0a000001, dst: 0x0a000002, id: 0xbeef, df: true, tos: 0x10 },
        l4: {
          proto: 'tcp',
          srcPort: 54321,
          dstPort: 80,
          seq: 0x11223344,
          flags: TCP_SYN,
          window: 64240,
          options: fx.hex('020405b4 0402080a 0001e240 00000000 01030307'),
        },
      }),
    );
    expect(hexOf(f)).toBe(hexOf(fx.tcpSyn));
  });

  it('UDP, padded', () => {
    const f = build((b, o) =>
      padFrame(
        b,
        o,
        buildFrame(b, o, {
          dst: B,
          src: A,
          ip: { version: 4, src: 0x0a000001, dst: 0x0a000035, df: true, ttl: 63 },
          l4: { proto: 'udp', srcPort: 40000, dstPort: 53 },
          payload: new TextEncoder().encode('ping'),
        }),
      ),
    );
    expect(hexOf(f)).toBe(hexOf(fx.udpPadded));
  });

  it('IPv4 with options', () => {
    const f = build((b, o) =>
      buildFrame(b, o, {
        dst: B,
        src: A,
        ip: { version: 4, src: 0xac100101, dst: 0xac100202, options: fx.hex('070b0400 00000000 00000000') },
        l4: { proto: 'udp', srcPort: 5000, dstPort: 6000 },
        payload: new TextEncoder().encode('lime!\n'),
      }),
    );
    expect(hexOf(f)).toBe(hexOf(fx.ipv4Options));
  });

  it('IPv6 hop-by-hop + fragment + UDP', () => {
    const f = build((b, o) =>
      buildFrame(b, o, {
        dst: { hi: 0x3333, lo: 2 },
        src: A,
        ip: {
          version: 6,
          src: parseIpv6('2001:db8::1'),
          dst: parseIpv6('2001:db8::2'),
          trafficClass: 0xb8,
          flowLabel: 0x12345,
          ext: [
            { type: 0, data: fx.hex('0104 00000000') },
            { type: 44, offset: 0, more: true, id: 0xdeadbeef },
          ],
        },
        l4: { proto: 'udp', srcPort: 9000, dstPort: 9001 },
        payload: new TextEncoder().encode('fragment'),
      }),
    );
    expect(hexOf(f)).toBe(hexOf(fx.ipv6HbhFrag));
  });

  it('IPv6 destination options + routing + AH + TCP', () => {
    const f = build((b, o) =>
      buildFrame(b, o, {
        dst: B,
        src: A,
        ip: {
          version: 6,
          src: parseIpv6('2001:db8:0:1::1'),
          dst: parseIpv6('2001:db8:0:2::2'),
          ext: [
            { type: 60, data: fx.hex('010c 000000000000000000000000') },
            { type: 43, data: fx.hex('0400 00000000') },
            { type: 51, data: fx.hex('0000 00000100 00000007 000000000000000000000000') },
          ],
        },
        l4: { proto: 'tcp', srcPort: 443, dstPort: 50000, seq: 1, ack: 2, flags: TCP_PSH | TCP_ACK, window: 1000 },
        payload: new TextEncoder().encode('hi'),
      }),
    );
    expect(hexOf(f)).toBe(hexOf(fx.ipv6ExtChain));
  });

  it('ICMPv6 neighbor solicitation', () => {
    const f = build((b, o) =>
      buildFrame(b, o, {
        dst: { hi: 0x3333, lo: 0xff000002 },
        src: A,
        ip: { version: 6, src: parseIpv6('fe80::1'), dst: parseIpv6('ff02::1:ff00:2'), hopLimit: 255 },
        l4: { proto: 'icmp', type: 135, code: 0 },
        payload: fx.hex('fe800000000000000000000000000002 0101 020000000001'),
      }),
    );
    expect(hexOf(f)).toBe(hexOf(fx.icmpv6Ns));
  });

  it('single-tagged IPv4 UDP', () => {
    const f = build((b, o) =>
      buildFrame(b, o, {
        dst: B,
        src: A,
        vlans: [{ vid: 100, pcp: 3 }],
        ip: { version: 4, src: 0xc0000201, dst: 0xc0000202, df: true },
        l4: { proto: 'udp', srcPort: 1111, dstPort: 2222 },
        payload: new TextEncoder().encode('vlan'),
      }),
    );
    expect(hexOf(f)).toBe(hexOf(fx.vlanSingle));
  });

  it('GRE with checksum, key and sequence number', () => {
    const inner = fx.arpRequest.subarray(0, 42);
    const f = build((b, o) =>
      buildFrame(b, o, {
        dst: B,
        src: A,
        ip: { version: 4, src: 0xc6336401, dst: 0xc6336402, df: true },
        l4: { proto: 'gre', checksum: true, key: 100, seq: 1 },
        payload: inner,
      }),
    );
    expect(hexOf(f)).toBe(hexOf(fx.greCks));
  });

  it('GRE with key only', () => {
    const f = build((b, o) =>
      buildFrame(b, o, {
        dst: B,
        src: A,
        ip: { version: 4, src: 0xc6336401, dst: 0xc6336402, df: true },
        l4: { proto: 'gre', key: 0xfedcba98 },
        payload: fx.arpRequest.subarray(0, 42),
      }),
    );
    expect(hexOf(f)).toBe(hexOf(fx.greKey));
  });
});

describe('builders round-trip through extract, checksums verify', () => {
  const cases: [string, FrameSpec, Partial<Record<keyof typeof K, number>>][] = [
    [
      'UDP/IPv4 double-tagged',
      {
        dst: B,
        src: A,
        vlans: [{ vid: 4000, pcp: 7 }, { vid: 1 }],
        ip: { version: 4, src: 0x01020304, dst: 0x05060708, ttl: 9, tos: 0xb8 },
        l4: { proto: 'udp', srcPort: 65535, dstPort: 0 },
        payload: new Uint8Array(333).fill(7),
      },
      { VLAN_TPID: 0x88a8, VLAN_TCI: 0xffa0, VLAN2_TPID: 0x8100, VLAN2_TCI: 0x1001, NW_TTL: 9, NW_TOS: 0xb8, TP_SRC: 65535, TP_DST: 0, L3_OFF: 22, L4_OFF: 42, L7_OFF: 50 },
    ],
    [
      'TCP/IPv6 odd payload',
      {
        dst: B,
        src: A,
        ip: { version: 6, src: parseIpv6('::1'), dst: parseIpv6('fe80::abcd'), hopLimit: 1 },
        l4: { proto: 'tcp', srcPort: 1, dstPort: 2, flags: 0xfff, options: fx.hex('0101 02') },
        payload: new Uint8Array(101).fill(0xff),
      },
      { NW_PROTO: 6, TCP_FLAGS: 0xfff, L4_OFF: 54, L7_OFF: 78 },
    ],
    [
      'ICMPv6 echo',
      {
        dst: B,
        src: A,
        ip: { version: 6, src: parseIpv6('2001:db8::a'), dst: parseIpv6('2001:db8::b') },
        l4: { proto: 'icmp', type: 128, code: 0, rest: 0x00010002 },
        payload: new Uint8Array(7).fill(1),
      },
      { NW_PROTO: 58, TP_SRC: 128, L7_OFF: 62 },
    ],
    [
      'ICMP frag-needed',
      {
        dst: B,
        src: A,
        ip: { version: 4, src: 1, dst: 2 },
        l4: { proto: 'icmp', type: 3, code: 4, rest: 1400 },
        payload: new Uint8Array(28).fill(3),
      },
      { NW_PROTO: 1, TP_SRC: 3, TP_DST: 4 },
    ],
  ];
  for (const [name, spec, want] of cases) {
    it(name, () => {
      const f = build((b, o) => buildFrame(b, o, spec));
      const { reason, key } = parse(f);
      expect(reason).toBe(DropReason.NONE);
      for (const [n, v] of Object.entries(want)) expect(key[K[n as keyof typeof K]], n).toBe(v);
      const ipv6 = spec.ip?.version === 6;
      if (!ipv6) expect(ipv4HeaderVerifies(f, key[K.L3_OFF]!)).toBe(true);
      expect(l4Verifies(f, key, f.length - key[K.L4_OFF]!, ipv6)).toBe(true);
    });
  }

  it('IPv4 later fragment: no L4', () => {
    const f = build((b, o) =>
      buildFrame(b, o, {
        dst: B,
        src: A,
        ip: { version: 4, src: 1, dst: 2, fragOffset: 1480, mf: true },
        l4: { proto: 'raw', number: 17 },
        payload: new Uint8Array(16),
      }),
    );
    const { reason, key } = parse(f);
    expect(reason).toBe(DropReason.NONE);
    expect(key[K.NW_FRAG]).toBe(3);
    expect(key[K.L4_OFF]).toBe(OFF_ABSENT);
    expect(ipv4HeaderVerifies(f, 14)).toBe(true);
  });

  it('UDP checksum that computes to 0 is sent as 0xffff (RFC 768)', () => {
    const udp = (srcPort: number): number => {
      const f = build((b, o) =>
        buildFrame(b, o, {
          dst: B,
          src: A,
          ip: { version: 4, src: 0x0a000001, dst: 0x0a000002 },
          l4: { proto: 'udp', srcPort, dstPort: 9 },
        }),
      );
      return (f[40]! << 8) | f[41]!;
    };
    // With source port 0 the checksum is c0 = ~S; adding c0 to the sum makes it 0xffff,
    // i.e. a computed checksum of 0, which must go on the wire as 0xffff.
    const c0 = udp(0);
    expect(udp(c0)).toBe(0xffff);
  });

  it('gratuitous ARP (announcement and reply forms) and RARP', () => {
    const mac = { hi: 0x5254, lo: 0xabcdef01 };
    const g = build((b, o) => buildGratuitousArp(b, o, { mac, ip: 0x0a000063 }));
    let { reason, key } = parse(g);
    expect(reason).toBe(DropReason.NONE);
    expect([key[K.DL_DST_HI], key[K.DL_DST_LO], key[K.DL_SRC_LO], key[K.NW_PROTO]]).toEqual([0xffff, 0xffffffff, 0xabcdef01, 1]);
    expect([key[K.NW_SRC], key[K.NW_DST], key[K.ARP_THA_HI], key[K.ARP_THA_LO]]).toEqual([0x0a000063, 0x0a000063, 0, 0]);

    const r = build((b, o) => buildGratuitousArp(b, o, { mac, ip: 0x0a000063, reply: true, vlans: [{ vid: 5 }] }));
    ({ reason, key } = parse(r));
    expect(reason).toBe(DropReason.NONE);
    expect([key[K.NW_PROTO], key[K.ARP_THA_HI], key[K.ARP_THA_LO], key[K.VLAN_TCI]]).toEqual([2, 0x5254, 0xabcdef01, 0x1005]);

    const rarp = build((b, o) => buildRarp(b, o, { mac }));
    expect(rarp.length).toBe(42);
    ({ reason, key } = parse(rarp));
    expect(reason).toBe(DropReason.NONE);
    expect([key[K.DL_TYPE], key[K.NW_PROTO], key[K.NW_SRC], key[K.NW_DST]]).toEqual([0x8035, 3, 0, 0]);
    expect([key[K.ARP_SHA_LO], key[K.ARP_THA_LO]]).toEqual([0xabcdef01, 0xabcdef01]);
    expect(padFrame(new Uint8Array(64), 0, 42)).toBe(60);
  });

  it('GRE header alone: template fields and checksum (RFC 2784 §2.5)', () => {
    const buf = new Uint8Array(64).fill(0xa5);
    const size = writeGreHeader(buf, 0, { checksum: true, key: 0x12345678, seq: 0xffffffff });
    expect(size).toBe(16);
    expect(greHeaderSize(buf, 0)).toBe(16);
    expect(greKey(buf, 0)).toBe(0x12345678);
    expect(greSeq(buf, 0)).toBe(0xffffffff);
    buf.fill(0x42, 16, 40);
    setGreChecksum(buf, 0, 40);
    expect(greChecksum(buf, 0)).not.toBe(0);
    expect(foldSum(onesSum(buf, 0, 40))).toBe(0xffff);
  });

  it('refuses specs it cannot encode', () => {
    const buf = new Uint8Array(256);
    const ip = { src: 1, dst: 2 };
    expect(() => writeIpv4Header(buf, 0, { ...ip, options: new Uint8Array(3) }, 17, 0)).toThrow(RangeError);
    expect(() => writeIpv4Header(buf, 0, { ...ip, options: new Uint8Array(44) }, 17, 0)).toThrow(RangeError);
    expect(() => writeIpv4Header(buf, 0, { ...ip, fragOffset: 3 }, 17, 0)).toThrow(/fragment offset/);
    expect(() => buildFrame(buf, 0, { dst: A, src: B })).toThrow(/etherType/);
    expect(() => buildFrame(buf, 0, { dst: A, src: B, etherType: 0x800, vlans: [{ vid: 1 }, { vid: 2 }, { vid: 3 }] })).toThrow(
      /VLAN/,
    );
  });

  it('non-IP frame with an arbitrary EtherType', () => {
    const f = build((b, o) => buildFrame(b, o, { dst: B, src: A, etherType: 0x88cc, payload: new Uint8Array(46) }));
    expect(f.length).toBe(60);
    const { reason, key } = parse(f);
    expect(reason).toBe(DropReason.NONE);
    expect(key[K.DL_TYPE]).toBe(0x88cc);
    expect(key[K.L3_OFF]).toBe(OFF_ABSENT);
  });
});
