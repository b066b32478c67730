/**
 * extract() against hand-decoded byte fixtures (test/fixtures/packet/frames.ts), and one
 * test per drop reason it can return. Expected key words are written by hand from the
 * bytes, never copied from parser output.
 */
import { describe, it, expect } from 'vitest';
import { extract, extractBatch } from '../../../src/packet/extract.js';
import { K, KEY_WORDS, OFF_ABSENT } from '../../../src/packet/key.js';
import { DropReason, DROP_REASON_NAMES } from '../../../src/packet/drop.js';
import { FrameBatch } from '../../../src/packet/batch.js';
import * as fx from '../../fixtures/packet/frames.js';

type KeyName = keyof typeof K;
type Expect = Partial<Record<KeyName, number>> & { IPV6_SRC_W?: number[]; IPV6_DST_W?: number[] };

/** Runs extract on `frame` copied into a 0xa5-filled buffer at offset `at`. */
function run(frame: Uint8Array, inPort = 1, at = 0, len = frame.length): { reason: DropReason; key: Uint32Array } {
  const buf = new Uint8Array(at + frame.length + 32).fill(0xa5);
  buf.set(frame, at);
  const key = new Uint32Array(KEY_WORDS + 8).fill(0xdeadbeef);
  const reason = extract(buf, at, len, key, 4, inPort);
  return { reason, key: key.subarray(4, 4 + KEY_WORDS) };
}

/** Every word: the listed ones as given, offsets absent unless listed, all others zero. */
function expectKey(key: Uint32Array, e: Expect): void {
  const want = new Array<number>(KEY_WORDS).fill(0);
  want[K.L3_OFF] = OFF_ABSENT;
  want[K.L4_OFF] = OFF_ABSENT;
  want[K.L7_OFF] = OFF_ABSENT;
  for (const [name, v] of Object.entries(e)) {
    if (name === 'IPV6_SRC_W' || name === 'IPV6_DST_W') {
      const base = name === 'IPV6_SRC_W' ? K.IPV6_SRC : K.IPV6_DST;
      (v as number[]).forEach((w, i) => (want[base + i] = w));
    } else {
      want[K[name as KeyName]] = v as number;
    }
  }
  const named = (a: ArrayLike<number>): Record<string, string> => {
    const o: Record<string, string> = {};
    for (const [n, i] of Object.entries(K)) o[n] = `0x${(a[i] ?? 0).toString(16)}`;
    for (let i = 0; i < 4; i++) {
      o[`IPV6_SRC+${i}`] = `0x${(a[K.IPV6_SRC + i] ?? 0).toString(16)}`;
      o[`IPV6_DST+${i}`] = `0x${(a[K.IPV6_DST + i] ?? 0).toString(16)}`;
    }
    return o;
  };
  expect(named(key)).toEqual(named(want));
}

const MAC_A = { hi: 0x0200, lo: 0x00000001 }; // 02:00:00:00:00:01
const MAC_B = { hi: 0x0200, lo: 0x00000002 }; // 02:00:00:00:00:02
const AB = { DL_DST_HI: MAC_B.hi, DL_DST_LO: MAC_B.lo, DL_SRC_HI: MAC_A.hi, DL_SRC_LO: MAC_A.lo };

/** Copy with bytes patched: [offset, value] pairs. */
function patch(frame: Uint8Array, ...edits: [number, number][]): Uint8Array {
  const f = frame.slice();
  for (const [o, v] of edits) f[o] = v;
  return f;
}
/** Copy with the 16-bit big-endian word at `o` set. */
function patch16(frame: Uint8Array, o: number, v: number): Uint8Array {
  return patch(frame, [o, v >>> 8], [o + 1, v & 0xff]);
}

describe('extract: well-formed frames', () => {
  it('ARP request (padded to 60)', () => {
    const { reason, key } = run(fx.arpRequest, 7);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 7,
      DL_DST_HI: 0xffff,
      DL_DST_LO: 0xffffffff,
      DL_SRC_HI: 0x5254,
      DL_SRC_LO: 0x00123456,
      DL_TYPE: 0x0806,
      NW_PROTO: 1,
      NW_SRC: 0xc0a80001,
      NW_DST: 0xc0a80002,
      ARP_SHA_HI: 0x5254,
      ARP_SHA_LO: 0x00123456,
      L3_OFF: 14,
    });
  });

  it('ICMP echo request', () => {
    const { reason, key } = run(fx.icmpEcho);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      DL_TYPE: 0x0800,
      NW_SRC: 0x0a000001,
      NW_DST: 0x0a000002,
      NW_PROTO: 1,
      NW_TTL: 64,
      TP_SRC: 8,
      TP_DST: 0,
      L3_OFF: 14,
      L4_OFF: 34,
      L7_OFF: 42,
    });
  });

  it('TCP SYN with options (data offset 10)', () => {
    const { reason, key } = run(fx.tcpSyn);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      DL_TYPE: 0x0800,
      NW_SRC: 0x0a000001,
      NW_DST: 0x0a000002,
      NW_PROTO: 6,
      NW_TOS: 0x10,
      NW_TTL: 64,
      TP_SRC: 54321,
      TP_DST: 80,
      TCP_FLAGS: 0x002,
      L3_OFF: 14,
      L4_OFF: 34,
      L7_OFF: 74,
    });
  });

  it('UDP with Ethernet padding after the IPv4 total length', () => {
    const { reason, key } = run(fx.udpPadded);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      DL_TYPE: 0x0800,
      NW_SRC: 0x0a000001,
      NW_DST: 0x0a000035,
      NW_PROTO: 17,
      NW_TTL: 63,
      TP_SRC: 40000,
      TP_DST: 53,
      L3_OFF: 14,
      L4_OFF: 34,
      L7_OFF: 42,
    });
  });

  it('IPv4 with options: L4 found by IHL', () => {
    const { reason, key } = run(fx.ipv4Options);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      DL_TYPE: 0x0800,
      NW_SRC: 0xac100101,
      NW_DST: 0xac100202,
      NW_PROTO: 17,
      NW_TTL: 64,
      TP_SRC: 5000,
      TP_DST: 6000,
      L3_OFF: 14,
      L4_OFF: 46,
      L7_OFF: 54,
    });
  });

  it('IPv4 first fragment: NW_FRAG any, L4 parsed although UDP length covers the whole datagram', () => {
    const { reason, key } = run(fx.ipv4FragFirst);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      DL_TYPE: 0x0800,
      NW_SRC: 0x0a010001,
      NW_DST: 0x0a010002,
      NW_PROTO: 17,
      NW_TTL: 64,
      NW_FRAG: 1,
      TP_SRC: 7000,
      TP_DST: 7001,
      L3_OFF: 14,
      L4_OFF: 34,
      L7_OFF: 42,
    });
  });

  it('IPv4 later fragment: NW_FRAG any|later, no L4', () => {
    const { reason, key } = run(fx.ipv4FragLater);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      DL_TYPE: 0x0800,
      NW_SRC: 0x0a010001,
      NW_DST: 0x0a010002,
      NW_PROTO: 17,
      NW_TTL: 64,
      NW_FRAG: 3,
      L3_OFF: 14,
    });
  });

  it('IPv6 hop-by-hop + fragment header (first fragment) + UDP', () => {
    const { reason, key } = run(fx.ipv6HbhFrag);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      DL_DST_HI: 0x3333,
      DL_DST_LO: 0x00000002,
      DL_SRC_HI: 0x0200,
      DL_SRC_LO: 0x00000001,
      DL_TYPE: 0x86dd,
      IPV6_SRC_W: [0x20010db8, 0, 0, 1],
      IPV6_DST_W: [0x20010db8, 0, 0, 2],
      IPV6_LABEL: 0x12345,
      NW_TOS: 0xb8,
      NW_TTL: 64,
      NW_PROTO: 17,
      NW_FRAG: 1,
      TP_SRC: 9000,
      TP_DST: 9001,
      L3_OFF: 14,
      L4_OFF: 70,
      L7_OFF: 78,
    });
  });

  it('IPv6 later fragment: NW_PROTO from the fragment header, no L4', () => {
    const { reason, key } = run(fx.ipv6FragLater);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      DL_TYPE: 0x86dd,
      IPV6_SRC_W: [0x20010db8, 0, 0, 1],
      IPV6_DST_W: [0x20010db8, 0, 0, 2],
      NW_TTL: 64,
      NW_PROTO: 17,
      NW_FRAG: 3,
      L3_OFF: 14,
    });
  });

  it('ICMPv6 neighbor solicitation', () => {
    const { reason, key } = run(fx.icmpv6Ns);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      DL_DST_HI: 0x3333,
      DL_DST_LO: 0xff000002,
      DL_SRC_HI: 0x0200,
      DL_SRC_LO: 0x00000001,
      DL_TYPE: 0x86dd,
      IPV6_SRC_W: [0xfe800000, 0, 0, 1],
      IPV6_DST_W: [0xff020000, 0, 1, 0xff000002],
      NW_TTL: 255,
      NW_PROTO: 58,
      TP_SRC: 135,
      TP_DST: 0,
      L3_OFF: 14,
      L4_OFF: 54,
      L7_OFF: 62,
    });
  });

  it('IPv6 destination options + routing + AH skipped to reach TCP', () => {
    const { reason, key } = run(fx.ipv6ExtChain);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      DL_TYPE: 0x86dd,
      IPV6_SRC_W: [0x20010db8, 1, 0, 1],
      IPV6_DST_W: [0x20010db8, 2, 0, 2],
      NW_TTL: 64,
      NW_PROTO: 6,
      TP_SRC: 443,
      TP_DST: 50000,
      TCP_FLAGS: 0x018,
      L3_OFF: 14,
      L4_OFF: 102,
      L7_OFF: 122,
    });
  });

  it('single 802.1Q tag', () => {
    const { reason, key } = run(fx.vlanSingle);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      VLAN_TPID: 0x8100,
      VLAN_TCI: 0x7064, // PCP 3, present, VID 100
      DL_TYPE: 0x0800,
      NW_SRC: 0xc0000201,
      NW_DST: 0xc0000202,
      NW_PROTO: 17,
      NW_TTL: 64,
      TP_SRC: 1111,
      TP_DST: 2222,
      L3_OFF: 18,
      L4_OFF: 38,
      L7_OFF: 46,
    });
  });

  it('802.1ad + 802.1Q double tag, ARP reply', () => {
    const { reason, key } = run(fx.vlanDouble);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      VLAN_TPID: 0x88a8,
      VLAN_TCI: 0x100a, // DEI in the frame; bit 12 = present in the key; VID 10
      VLAN2_TPID: 0x8100,
      VLAN2_TCI: 0xb014, // PCP 5, present, VID 20
      DL_TYPE: 0x0806,
      NW_PROTO: 2,
      NW_SRC: 0x0a090001,
      NW_DST: 0x0a090002,
      ARP_SHA_HI: 0x0200,
      ARP_SHA_LO: 0x00000001,
      ARP_THA_HI: 0x0200,
      ARP_THA_LO: 0x00000002,
      L3_OFF: 22,
    });
  });

  it('legacy 0x9100 outer tag, unknown EtherType: L2 fields only', () => {
    const { reason, key } = run(fx.vlanQinq9100);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      VLAN_TPID: 0x9100,
      VLAN_TCI: 0x1abc,
      VLAN2_TPID: 0x8100,
      VLAN2_TCI: 0x1001,
      DL_TYPE: 0x88b5,
    });
  });

  it('0x9100 is not accepted as the inner tag', () => {
    const f = patch16(fx.vlanSingle, 16, 0x9100); // 8100 6064 9100 …
    const { reason, key } = run(f);
    expect(reason).toBe(DropReason.NONE);
    expect(key[K.VLAN_TPID]).toBe(0x8100);
    expect(key[K.VLAN2_TPID]).toBe(0);
    expect(key[K.DL_TYPE]).toBe(0x9100);
    expect(key[K.L3_OFF]).toBe(OFF_ABSENT);
  });

  it('a third tag is left as the EtherType (two tags at most)', () => {
    const f = new Uint8Array([
      ...fx.vlanDouble.subarray(0, 20), // dst, src, 88a8 100a, 8100 a014
      0x81, 0x00, 0x00, 0x05, 0x08, 0x00, ...new Uint8Array(40),
    ]);
    const { reason, key } = run(f);
    expect(reason).toBe(DropReason.NONE);
    expect(key[K.VLAN_TPID]).toBe(0x88a8);
    expect(key[K.VLAN2_TPID]).toBe(0x8100);
    expect(key[K.DL_TYPE]).toBe(0x8100);
    expect(key[K.L3_OFF]).toBe(OFF_ABSENT);
  });

  it('802.3 length field + LLC (STP BPDU): dl_type 0x05ff', () => {
    const { reason, key } = run(fx.llcStp);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      DL_DST_HI: 0x0180,
      DL_DST_LO: 0xc2000000,
      DL_SRC_HI: 0x0200,
      DL_SRC_LO: 0x00000003,
      DL_TYPE: 0x05ff,
    });
  });

  it('GRE with checksum, key and sequence number', () => {
    const { reason, key } = run(fx.greCks);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      ...AB,
      DL_TYPE: 0x0800,
      NW_SRC: 0xc6336401,
      NW_DST: 0xc6336402,
      NW_PROTO: 47,
      NW_TTL: 64,
      L3_OFF: 14,
      L4_OFF: 34,
      L7_OFF: 50, // 4 + checksum 4 + key 4 + seq 4
    });
  });

  it('GRE with key only', () => {
    const { reason, key } = run(fx.greKey);
    expect(reason).toBe(DropReason.NONE);
    expect(key[K.L4_OFF]).toBe(34);
    expect(key[K.L7_OFF]).toBe(42);
    expect(key[K.TUN_ID]).toBe(0); // set by the tunnel layer, not by extract
  });

  it('GRE bits 6-12 are ignored on receipt (RFC 2784 §2.3)', () => {
    const f = patch(fx.greKey, [34, 0x20 | 0x03], [35, 0xf8]);
    expect(run(f).reason).toBe(DropReason.NONE);
  });

  it('ARP with a non-Ethernet hardware type is kept, ARP fields zero', () => {
    const f = patch16(fx.arpRequest, 14, 6); // htype IEEE 802
    const { reason, key } = run(f);
    expect(reason).toBe(DropReason.NONE);
    expectKey(key, {
      IN_PORT: 1,
      DL_DST_HI: 0xffff,
      DL_DST_LO: 0xffffffff,
      DL_SRC_HI: 0x5254,
      DL_SRC_LO: 0x00123456,
      DL_TYPE: 0x0806,
      L3_OFF: 14,
    });
  });

  it('RARP is parsed like ARP', () => {
    const f = patch(patch16(fx.arpRequest, 12, 0x8035), [21, 3]);
    const { reason, key } = run(f);
    expect(reason).toBe(DropReason.NONE);
    expect(key[K.DL_TYPE]).toBe(0x8035);
    expect(key[K.NW_PROTO]).toBe(3);
    expect(key[K.ARP_SHA_LO]).toBe(0x00123456);
  });

  it('works at any offset, with offsets relative to the frame start', () => {
    const a = run(fx.tcpSyn, 3, 0);
    const b = run(fx.tcpSyn, 3, 301);
    expect(b.reason).toBe(DropReason.NONE);
    expect(Array.from(b.key)).toEqual(Array.from(a.key));
  });

  it('clamps a length larger than the buffer', () => {
    const buf = fx.udpPadded.slice();
    const key = new Uint32Array(KEY_WORDS);
    expect(extract(buf, 0, 5000, key, 0, 1)).toBe(DropReason.NONE);
    expect(key[K.TP_DST]).toBe(53);
  });

  it('overwrites a previously used key row completely', () => {
    const buf = new Uint8Array(200);
    buf.set(fx.ipv6ExtChain);
    const key = new Uint32Array(KEY_WORDS);
    extract(buf, 0, fx.ipv6ExtChain.length, key, 0, 1);
    buf.set(fx.arpRequest);
    extract(buf, 0, fx.arpRequest.length, key, 0, 1);
    expect(key[K.IPV6_SRC]).toBe(0);
    expect(key[K.TP_SRC]).toBe(0);
    expect(key[K.L4_OFF]).toBe(OFF_ABSENT);
  });
});

/** [name, frame, expected reason] — one or more per reason extract can return. */
const malformed: [string, Uint8Array, DropReason][] = [
  ['13-byte frame', fx.arpRequest.subarray(0, 13), DropReason.RUNT],
  ['empty frame', new Uint8Array(0), DropReason.RUNT],
  ['TPID + TCI, no EtherType', fx.vlanSingle.subarray(0, 16), DropReason.VLAN_TRUNCATED],
  ['TPID, half a TCI', fx.vlanSingle.subarray(0, 15), DropReason.VLAN_TRUNCATED],
  ['inner tag truncated', fx.vlanDouble.subarray(0, 20), DropReason.VLAN_TRUNCATED],
  ['ARP fixed part truncated', fx.arpRequest.subarray(0, 21), DropReason.ARP_TRUNCATED],
  ['ARP addresses truncated', fx.arpRequest.subarray(0, 41), DropReason.ARP_TRUNCATED],
  ['ARP hlen 8', patch(fx.arpRequest, [18, 8]), DropReason.ARP_BAD_FORMAT],
  ['ARP plen 16', patch(fx.arpRequest, [19, 16]), DropReason.ARP_BAD_FORMAT],
  ['IPv4 header truncated', fx.icmpEcho.subarray(0, 33), DropReason.IPV4_TRUNCATED],
  ['IPv4 version 6 under EtherType 0x0800', patch(fx.icmpEcho, [14, 0x65]), DropReason.IPV4_BAD_VERSION],
  ['IPv4 IHL 4', patch(fx.icmpEcho, [14, 0x44]), DropReason.IPV4_BAD_IHL],
  ['IPv4 IHL 15 past the frame', patch(fx.udpPadded, [14, 0x4f]), DropReason.IPV4_BAD_IHL],
  ['IPv4 total length < header', patch16(fx.icmpEcho, 16, 19), DropReason.IPV4_BAD_TOTAL_LEN],
  ['IPv4 total length past the frame', fx.icmpEcho.subarray(0, 97), DropReason.IPV4_BAD_TOTAL_LEN],
  ['TCP header truncated', patch16(fx.tcpSyn, 16, 20 + 19), DropReason.TCP_TRUNCATED],
  ['TCP data offset 4', patch(fx.tcpSyn, [46, 0x42]), DropReason.TCP_BAD_DATA_OFFSET],
  ['TCP data offset 15 past the packet', patch(fx.tcpSyn, [46, 0xf2]), DropReason.TCP_BAD_DATA_OFFSET],
  ['UDP header truncated', patch16(fx.udpPadded, 16, 20 + 7), DropReason.UDP_TRUNCATED],
  ['UDP length 7', patch16(fx.udpPadded, 38, 7), DropReason.UDP_BAD_LENGTH],
  ['UDP length past the IP packet', patch16(fx.udpPadded, 38, 13), DropReason.UDP_BAD_LENGTH],
  ['ICMP header truncated', patch16(fx.icmpEcho, 16, 20 + 7), DropReason.ICMP_TRUNCATED],
  ['IPv6 header truncated', fx.icmpv6Ns.subarray(0, 53), DropReason.IPV6_TRUNCATED],
  ['IPv6 version 4 under EtherType 0x86dd', patch(fx.icmpv6Ns, [14, 0x40]), DropReason.IPV6_BAD_VERSION],
  ['IPv6 payload length past the frame', fx.icmpv6Ns.subarray(0, 85), DropReason.IPV6_BAD_PAYLOAD_LEN],
  ['IPv6 ext header < 8 bytes', patch16(fx.ipv6HbhFrag, 18, 7), DropReason.IPV6_EXT_TRUNCATED],
  ['IPv6 AH length past the payload', patch(fx.ipv6ExtChain, [79, 40]), DropReason.IPV6_EXT_TRUNCATED],
  ['IPv6 fragment header truncated', patch16(fx.ipv6HbhFrag, 18, 12), DropReason.IPV6_EXT_TRUNCATED],
  ['ICMPv6 truncated', patch16(fx.icmpv6Ns, 18, 7), DropReason.ICMPV6_TRUNCATED],
  ['GRE base header truncated', patch16(fx.greCks, 16, 20 + 3), DropReason.GRE_TRUNCATED],
  ['GRE options past the packet', patch16(fx.greCks, 16, 20 + 15), DropReason.GRE_TRUNCATED],
  ['GRE version 1 (PPTP)', patch(fx.greKey, [35, 0x01]), DropReason.GRE_BAD_VERSION],
  ['GRE routing bit', patch(fx.greKey, [34, 0x60]), DropReason.GRE_BAD_FLAGS],
  ['GRE strict source route bit', patch(fx.greKey, [34, 0x28]), DropReason.GRE_BAD_FLAGS],
  ['GRE recursion control MSB', patch(fx.greKey, [34, 0x24]), DropReason.GRE_BAD_FLAGS],
];

describe('extract: malformed frames', () => {
  for (const [name, frame, reason] of malformed) {
    it(`${name} → ${DROP_REASON_NAMES[reason]}`, () => {
      const r = run(frame);
      expect(DROP_REASON_NAMES[r.reason]).toBe(DROP_REASON_NAMES[reason]);
      expect(r.key[K.IN_PORT]).toBe(1);
      for (const w of [K.L3_OFF, K.L4_OFF, K.L7_OFF]) {
        const v = r.key[w]!;
        if (v !== OFF_ABSENT) expect(v).toBeLessThanOrEqual(frame.length);
      }
    });
  }

  it('covers every parse-time drop reason', () => {
    const covered = new Set(malformed.map(([, , r]) => r));
    for (let r = DropReason.RUNT; r <= DropReason.GRE_BAD_FLAGS; r++) {
      expect(covered.has(r), DROP_REASON_NAMES[r]).toBe(true);
    }
  });

  it('GRE bad version wins over bad flags', () => {
    expect(run(patch(fx.greKey, [34, 0x60], [35, 0x01])).reason).toBe(DropReason.GRE_BAD_VERSION);
  });

  it('ICMP (protocol 1) inside IPv6 is not parsed as ICMPv6', () => {
    const f = patch(fx.icmpv6Ns, [20, 1]);
    const { reason, key } = run(f);
    expect(reason).toBe(DropReason.NONE);
    expect(key[K.NW_PROTO]).toBe(1);
    expect(key[K.TP_SRC]).toBe(0);
    expect(key[K.L4_OFF]).toBe(54);
    expect(key[K.L7_OFF]).toBe(OFF_ABSENT);
  });
});

describe('extractBatch', () => {
  it('fills every row and drop slot, and counts the drops', () => {
    const frames = [fx.tcpSyn, fx.arpRequest.subarray(0, 10), fx.vlanSingle, patch(fx.greKey, [35, 1])];
    const batch = new FrameBatch(8);
    batch.key.fill(0x77777777);
    batch.drop.fill(0xee);
    frames.forEach((f, i) => {
      batch.slab.set(f, batch.start[i]!);
      batch.len[i] = f.length;
    });
    batch.count = frames.length;
    batch.inPort = 9;
    expect(extractBatch(batch)).toBe(2);
    expect(Array.from(batch.drop.subarray(0, 4))).toEqual([
      DropReason.NONE,
      DropReason.RUNT,
      DropReason.NONE,
      DropReason.GRE_BAD_VERSION,
    ]);
    const row = (i: number): Uint32Array => batch.key.subarray(i * KEY_WORDS, (i + 1) * KEY_WORDS);
    expect(row(0)[K.TP_DST]).toBe(80);
    expect(row(0)[K.IN_PORT]).toBe(9);
    expect(row(2)[K.VLAN_TCI]).toBe(0x7064);
    expect(row(2)[K.VLAN2_TCI]).toBe(0);
    expect(row(1)[K.IN_PORT]).toBe(9);
    // Rows past count are untouched.
    expect(batch.drop[4]).toBe(0xee);
    expect(row(4)[0]).toBe(0x77777777);
  });
});
