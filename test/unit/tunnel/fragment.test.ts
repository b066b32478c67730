/**
 * IPv4 fragmentation of outer GRE packets: split sizes and offsets worked out by hand,
 * reassembly by an independent helper (byte for byte), header checksums, options
 * (copied flag), fragments of fragments, every "cannot" case, a property over random
 * packets, no allocation, and tshark reassembling the fragments and dissecting the GRE
 * inside (skips visibly without tshark outside CI, fails under CI).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import {
  fragmentIpv4,
  IPV4_MAX_FRAGMENTS,
  IPV4_MIN_MTU,
  ipv4FragmentCount,
} from '../../../src/tunnel/fragment.js';
import { buildGreTemplate, greEncap } from '../../../src/tunnel/gre.js';
import { buildFrame, writeIpv4Header } from '../../../src/packet/build.js';
import { rd16 } from '../../../src/packet/bytes.js';
import { internetChecksum } from '../../../src/util/checksum.js';
import { LINKTYPE_RAW, PcapWriter } from '../../../src/util/pcap.js';
import { describeWhen } from '../../helpers/root.js';
import { collectGarbage } from '../../helpers/gc.js';

const A = 0xc6336401; // 198.51.100.1
const B = 0xc6336402; // 198.51.100.2
const HEADROOM = 128;
const MAC1 = { hi: 0x0200, lo: 0x00000001 };
const MAC2 = { hi: 0x0200, lo: 0x00000002 };

/** A 1514-byte inner Ethernet frame (UDP 10.0.0.1:1234 → 10.0.0.2:5678, patterned payload). */
function innerFrame(size = 1514): Uint8Array {
  const payload = new Uint8Array(size - 14 - 20 - 8);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + 3) & 0xff;
  const buf = new Uint8Array(size);
  const n = buildFrame(buf, 0, {
    dst: MAC2,
    src: MAC1,
    ip: { version: 4, src: 0x0a000001, dst: 0x0a000002 },
    l4: { proto: 'udp', srcPort: 1234, dstPort: 5678 },
    payload,
  });
  expect(n).toBe(size);
  return buf;
}

const dfClear = buildGreTemplate({ src: A, dst: B, key: 0x1234, df: false });

/** The outer GRE packet (20 + 8 + inner = 1542 bytes for a 1514-byte inner frame), DF clear. */
function grePacket(innerSize = 1514, tpl = dfClear): Uint8Array {
  const inner = innerFrame(innerSize);
  const buf = new Uint8Array(HEADROOM + inner.length);
  buf.set(inner, HEADROOM);
  const s = greEncap(buf, HEADROOM, inner.length, tpl, 0, 0);
  return buf.slice(s);
}

interface Frags {
  n: number;
  frags: Uint8Array[];
  out: Uint8Array;
  fragStart: Uint32Array;
  fragSize: Uint32Array;
}

function frag(pkt: Uint8Array, mtu: number, opts: { outSize?: number; outOff?: number; limit?: number } = {}): Frags {
  const outOff = opts.outOff ?? 0;
  const out = new Uint8Array(opts.outSize ?? outOff + 4 * pkt.length + 4096).fill(0xa5);
  const fragStart = new Uint32Array(64);
  const fragSize = new Uint32Array(64);
  const n = fragmentIpv4(pkt, 0, pkt.length, mtu, out, outOff, fragStart, fragSize, 0, opts.limit ?? 64);
  const frags: Uint8Array[] = [];
  for (let i = 0; i < n; i++) frags.push(out.subarray(fragStart[i], fragStart[i]! + fragSize[i]!));
  return { n, frags, out, fragStart, fragSize };
}

const ihlOf = (p: Uint8Array): number => (p[0]! & 0x0f) << 2;
const flagsOf = (p: Uint8Array): number => rd16(p, 6);
const mfOf = (p: Uint8Array): boolean => (flagsOf(p) & 0x2000) !== 0;
const offsetOf = (p: Uint8Array): number => (flagsOf(p) & 0x1fff) * 8;

/**
 * Reassembles fragments the way RFC 815 describes (independently of the code under
 * test): each fragment's data goes to its offset; the holes must close and exactly one
 * fragment (the one with MF clear) ends the datagram. Returns the first fragment's
 * header fields and the data.
 */
function reassemble(frags: Uint8Array[], baseOffset = 0): { data: Uint8Array; id: number; mf: boolean } {
  const buf = new Uint8Array(65536);
  const filled = new Uint8Array(65536);
  let end = -1;
  let lastMf = false;
  let overlaps = 0;
  for (const f of frags) {
    const ihl = ihlOf(f);
    const totalLen = rd16(f, 2);
    expect(totalLen).toBe(f.length);
    const off = offsetOf(f) - baseOffset;
    const data = f.subarray(ihl, totalLen);
    for (let i = 0; i < data.length; i++) {
      overlaps += filled[off + i]!;
      filled[off + i] = 1;
      buf[off + i] = data[i]!;
    }
    if (off + data.length > end) {
      end = off + data.length;
      lastMf = mfOf(f);
    }
  }
  expect(overlaps).toBe(0);
  expect(filled.subarray(0, end).every((b) => b === 1)).toBe(true); // no holes
  return { data: buf.slice(0, end), id: rd16(frags[0]!, 4), mf: lastMf };
}

/** An IPv4 packet (proto 47) with `data` patterned payload bytes and the given header fields. */
function ipPacket(
  data: number,
  spec: { mf?: boolean; fragOffset?: number; id?: number; options?: Uint8Array; tos?: number } = {},
): Uint8Array {
  const hdr = 20 + (spec.options?.length ?? 0);
  const buf = new Uint8Array(hdr + data);
  writeIpv4Header(buf, 0, { src: A, dst: B, id: 0x4242, ...spec }, 47, data);
  for (let i = 0; i < data; i++) buf[hdr + i] = (i * 13 + 1) & 0xff;
  return buf;
}

/** Every fragment's invariants: size ≤ mtu, total length = size, data a multiple of 8 but the last, checksum, shared fields. */
function checkFrags(pkt: Uint8Array, frags: Uint8Array[], mtu: number): void {
  frags.forEach((f, i) => {
    expect(f.length).toBeLessThanOrEqual(mtu);
    expect(rd16(f, 2)).toBe(f.length);
    expect(internetChecksum(f, 0, ihlOf(f))).toBe(0);
    if (i < frags.length - 1) {
      expect((f.length - ihlOf(f)) % 8).toBe(0);
      expect(mfOf(f)).toBe(true);
    }
    // version, TOS, identification, TTL, protocol, addresses: the input's.
    expect(f[0]! >>> 4).toBe(4);
    expect(f[1]).toBe(pkt[1]);
    expect(rd16(f, 4)).toBe(rd16(pkt, 4));
    expect(Array.from(f.subarray(8, 10))).toEqual(Array.from(pkt.subarray(8, 10)));
    expect(Array.from(f.subarray(12, 20))).toEqual(Array.from(pkt.subarray(12, 20)));
  });
  if (frags.length > 1) expect(Array.from(frags[0]!.subarray(0, ihlOf(pkt)).subarray(20))).toEqual(Array.from(pkt.subarray(20, ihlOf(pkt))));
}

describe('fragmentIpv4: a 1542-byte GRE packet', () => {
  const pkt = grePacket();

  it('is 20 + 8 + 1514 bytes with DF clear', () => {
    expect(pkt.length).toBe(1542);
    expect(rd16(pkt, 2)).toBe(1542);
    expect(flagsOf(pkt)).toBe(0);
  });

  // Data per fragment = (mtu - 20) rounded down to a multiple of 8; 1522 data bytes in all.
  it.each([
    { mtu: 1500, sizes: [1500, 62], offsets: [0, 1480] }, // 1480 + 42
    { mtu: 1400, sizes: [1396, 166], offsets: [0, 1376] }, // 1376 + 146
    { mtu: 576, sizes: [572, 572, 438], offsets: [0, 552, 1104] }, // 552 + 552 + 418
  ])('mtu $mtu: sizes $sizes at offsets $offsets, MF on all but the last', ({ mtu, sizes, offsets }) => {
    const r = frag(pkt, mtu);
    expect(r.n).toBe(sizes.length);
    expect(r.frags.map((f) => f.length)).toEqual(sizes);
    expect(r.frags.map(offsetOf)).toEqual(offsets);
    expect(r.frags.map(mfOf)).toEqual(sizes.map((_, i) => i < sizes.length - 1));
    expect(ipv4FragmentCount(1542, mtu)).toBe(r.n);
  });

  it('mtu 68: 31 fragments of 48 data bytes and one of 1522 - 31 * 48 = 34', () => {
    const r = frag(pkt, 68);
    expect(r.n).toBe(32);
    expect(r.frags.slice(0, 31).every((f) => f.length === 68)).toBe(true);
    expect(r.frags[31]!.length).toBe(20 + 34);
    expect(r.frags.map(offsetOf)).toEqual(r.frags.map((_, i) => i * 48));
    expect(ipv4FragmentCount(1542, 68)).toBe(32);
  });

  it('fragments lie one after another from outOff; the bytes after them are untouched', () => {
    const r = frag(pkt, 576, { outOff: 10 });
    expect(Array.from(r.fragStart.subarray(0, 3))).toEqual([10, 10 + 572, 10 + 572 + 572]);
    expect(Array.from(r.fragSize.subarray(0, 3))).toEqual([572, 572, 438]);
    expect(r.out[9]).toBe(0xa5);
    expect(r.out[10 + 572 + 572 + 438]).toBe(0xa5);
  });

  it.each([1500, 1400, 576, 68, 1000, 1541])('mtu %i: reassembles to the original payload byte for byte; checksums verify', (mtu) => {
    const r = frag(pkt, mtu);
    checkFrags(pkt, r.frags, mtu);
    const { data, id, mf } = reassemble(r.frags);
    expect(id).toBe(rd16(pkt, 4));
    expect(mf).toBe(false);
    expect(Buffer.from(data).equals(Buffer.from(pkt.subarray(20)))).toBe(true);
  });

  it('a packet that fits (also exactly, also with DF) is one unchanged copy', () => {
    for (const mtu of [1542, 9000]) {
      const r = frag(pkt, mtu);
      expect(r.n).toBe(1);
      expect(Buffer.from(r.frags[0]!).equals(Buffer.from(pkt))).toBe(true);
    }
    const df = grePacket(100, buildGreTemplate({ src: A, dst: B, key: 1 }));
    expect(flagsOf(df) & 0x4000).toBe(0x4000);
    const r = frag(df, 1500);
    expect(r.n).toBe(1);
    expect(Buffer.from(r.frags[0]!).equals(Buffer.from(df))).toBe(true);
  });

  it('bytes after the total length (padding) are not copied', () => {
    const padded = new Uint8Array(pkt.length + 6).fill(0xee);
    padded.set(pkt);
    const r = frag(padded, 1600);
    expect(r.n).toBe(1);
    expect(r.fragSize[0]).toBe(1542);
    const s = frag(padded, 576);
    expect(s.frags.map((f) => f.length)).toEqual([572, 572, 438]);
  });

  it('the same bytes whether src and out share a slab (memmove) or not (byte loop)', () => {
    const ref = frag(pkt, 576, { outOff: 4 }); // separate buffers: the byte loop
    const fragStart = new Uint32Array(8);
    const fragSize = new Uint32Array(8);
    const check = (out: Uint8Array, base: number): void => {
      for (let i = 0; i < 3; i++) {
        expect(fragStart[i]! - base).toBe(ref.fragStart[i]);
        expect(Buffer.from(out.subarray(fragStart[i], fragStart[i]! + fragSize[i]!)).equals(Buffer.from(ref.frags[i]!))).toBe(true);
      }
    };
    // One view over the slab, packet in one slot, fragments into another: memmove.
    const slab = new Uint8Array(8192).fill(0xa5);
    slab.set(pkt, 100);
    expect(fragmentIpv4(slab, 100, pkt.length, 576, slab, 2048 + 4, fragStart, fragSize, 0, 8)).toBe(3);
    check(slab, 2048);
    // Two views of one ArrayBuffer, the source before out's view: the byte loop.
    const out = slab.subarray(4096);
    expect(fragmentIpv4(slab.subarray(100, 100 + pkt.length), 0, pkt.length, 576, out, 4, fragStart, fragSize, 0, 8)).toBe(3);
    check(out, 0);
    // Fits: the one copy takes the same two paths.
    expect(fragmentIpv4(slab, 100, pkt.length, 1600, slab, 6000, fragStart, fragSize, 0, 8)).toBe(1);
    expect(Buffer.from(slab.subarray(6000, 6000 + pkt.length)).equals(Buffer.from(pkt))).toBe(true);
  });
});

describe('fragmentIpv4: a batch of packets into one scratch slab and one pair of columns', () => {
  it('first = count so far, outOff = end of the last fragment, limit = capacity', () => {
    const pkts = [grePacket(), grePacket(600), grePacket(1514)];
    const scratch = new Uint8Array(8192).fill(0xa5);
    const fragStart = new Uint32Array(6);
    const fragSize = new Uint32Array(6);
    let n = 0;
    let pos = 0;
    const counts: number[] = [];
    for (const p of pkts) {
      const f = fragmentIpv4(p, 0, p.length, 1400, scratch, pos, fragStart, fragSize, n, fragStart.length);
      counts.push(f);
      n += f;
      pos = fragStart[n - 1]! + fragSize[n - 1]!;
    }
    expect(counts).toEqual([2, 1, 2]);
    expect(Array.from(fragSize.subarray(0, n))).toEqual([1396, 166, 628, 1396, 166]);
    let expectStart = 0;
    for (let i = 0; i < n; i++) {
      expect(fragStart[i]).toBe(expectStart);
      expectStart += fragSize[i]!;
    }
    // The columns are full after one more 2-fragment packet: the next does not fit them.
    expect(fragmentIpv4(pkts[0]!, 0, 1542, 1400, scratch, pos, fragStart, fragSize, 5, 6)).toBe(0);
    expect(fragmentIpv4(pkts[1]!, 0, 628, 1400, scratch, pos, fragStart, fragSize, 5, 6)).toBe(1);
    expect(fragmentIpv4(pkts[1]!, 0, 628, 1400, scratch, pos, fragStart, fragSize, 6, 6)).toBe(0);
    expect(fragmentIpv4(pkts[1]!, 0, 628, 1400, scratch, pos, fragStart, fragSize, 5, 99)).toBe(1); // limit capped by the columns
    expect(fragmentIpv4(pkts[1]!, 0, 628, 1400, scratch, pos, fragStart, fragSize, -1, 6)).toBe(0);
  });
});

describe('fragmentIpv4: flags and offsets of fragments of fragments', () => {
  it('a first fragment (MF, offset 0) again: every piece keeps MF', () => {
    const pkt = ipPacket(1480, { mf: true });
    const r = frag(pkt, 576);
    expect(r.frags.map(offsetOf)).toEqual([0, 552, 1104]);
    expect(r.frags.map(mfOf)).toEqual([true, true, true]);
    const { data, mf } = reassemble(r.frags);
    expect(mf).toBe(true);
    expect(Buffer.from(data).equals(Buffer.from(pkt.subarray(20)))).toBe(true);
  });

  it('a middle fragment at offset 1480: offsets continue from it', () => {
    const pkt = ipPacket(1480, { mf: true, fragOffset: 1480 });
    const r = frag(pkt, 576);
    expect(r.frags.map(offsetOf)).toEqual([1480, 2032, 2584]);
    expect(r.frags.map(mfOf)).toEqual([true, true, true]);
    const { data } = reassemble(r.frags, 1480);
    expect(Buffer.from(data).equals(Buffer.from(pkt.subarray(20)))).toBe(true);
  });

  it('a last fragment (MF clear, offset 2960): the last piece has MF clear', () => {
    const pkt = ipPacket(1000, { fragOffset: 2960 });
    const r = frag(pkt, 576);
    expect(r.frags.map(offsetOf)).toEqual([2960, 3512]);
    expect(r.frags.map(mfOf)).toEqual([true, false]);
  });

  it('keeps the reserved bit and TOS', () => {
    const pkt = ipPacket(1000, { tos: 0xb8 });
    pkt[6] = pkt[6]! | 0x80;
    pkt[10] = 0;
    pkt[11] = 0;
    const c = internetChecksum(pkt, 0, 20);
    pkt[10] = c >>> 8;
    pkt[11] = c & 0xff;
    const r = frag(pkt, 576);
    expect(r.frags.map((f) => flagsOf(f) & 0x8000)).toEqual([0x8000, 0x8000]);
    checkFrags(pkt, r.frags, 576);
  });

  // Options: Router Alert (0x94, copied, RFC 2113), Record Route (7, not copied), LSRR
  // (0x83, copied), NOP, EOL: 4 + 7 + 7 + 1 + 1 = 20 bytes; header 40.
  const options = Uint8Array.from([
    0x94, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0x83, 7, 4, 192, 0, 2, 1, 1, 0,
  ]);

  it('options: the first fragment keeps them all, later ones only the copied ones, padded to 4', () => {
    const pkt = ipPacket(1480, { options });
    expect(ihlOf(pkt)).toBe(40);
    const r = frag(pkt, 576);
    // first: (576 - 40) & ~7 = 536; later: header 20 + 12 = 32, (576 - 32) & ~7 = 544; 1480 = 536 + 544 + 400.
    expect(r.frags.map(ihlOf)).toEqual([40, 32, 32]);
    expect(r.frags.map((f) => f.length)).toEqual([576, 576, 432]);
    expect(r.frags.map(offsetOf)).toEqual([0, 536, 1080]);
    expect(Array.from(r.frags[0]!.subarray(20, 40))).toEqual(Array.from(options));
    for (const f of r.frags.slice(1)) {
      expect(Array.from(f.subarray(20, 32))).toEqual([0x94, 4, 0, 0, 0x83, 7, 4, 192, 0, 2, 1, 0]);
    }
    checkFrags(pkt, r.frags, 576);
    const { data } = reassemble(r.frags);
    expect(Buffer.from(data).equals(Buffer.from(pkt.subarray(40)))).toBe(true);
  });

  it('options, none copied: later fragments have a 20-byte header', () => {
    const rr = Uint8Array.from([7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const r = frag(ipPacket(1000, { options: rr }), 576);
    expect(r.frags.map(ihlOf)).toEqual([32, 20]);
    // first: (576 - 32) & ~7 = 544 data bytes; the last: 20 + 456.
    expect(r.frags.map((f) => f.length)).toEqual([576, 476]);
  });

  it('malformed options (length 0, 1 or past the header) → 0', () => {
    for (const bad of [
      [0x83, 0, 0, 0],
      [0x83, 1, 0, 0],
      [0x83, 9, 4, 0],
      [1, 1, 1, 0x83],
    ]) {
      const pkt = ipPacket(1000, { options: Uint8Array.from(bad) });
      expect(frag(pkt, 576).n).toBe(0);
      expect(frag(pkt, 1500).n).toBe(1); // fits: copied as it is, options not read
    }
  });

  it('offset + data past 65535 → 0', () => {
    const pkt = ipPacket(1000, { fragOffset: 65528 - 504 });
    expect(frag(pkt, 576).n).toBe(0);
  });
});

describe('fragmentIpv4: when it cannot', () => {
  const pkt = grePacket();

  it('DF set and too big → 0, nothing recorded', () => {
    const df = grePacket(1514, buildGreTemplate({ src: A, dst: B, key: 0x1234 }));
    const r = frag(df, 1500);
    expect(r.n).toBe(0);
    expect(r.out.every((b) => b === 0xa5)).toBe(true);
  });

  it('out too small → 0 and nothing written; exactly enough → the fragments', () => {
    // mtu 576: 1542 + 2 more 20-byte headers = 1582 bytes.
    expect(frag(pkt, 576, { outSize: 1581 }).n).toBe(0);
    expect(frag(pkt, 576, { outSize: 1581 }).out.every((b) => b === 0xa5)).toBe(true);
    expect(frag(pkt, 576, { outSize: 1582 }).n).toBe(3);
    expect(frag(pkt, 576, { outSize: 1590, outOff: 9 }).n).toBe(0);
    expect(frag(pkt, 576, { outSize: 1591, outOff: 9 }).n).toBe(3);
    expect(frag(pkt, 9000, { outSize: 1541 }).n).toBe(0); // fits, but no room for the copy
  });

  it('more fragments than limit or than the columns hold → 0', () => {
    expect(frag(pkt, 576, { limit: 2 }).n).toBe(0);
    expect(frag(pkt, 576, { limit: 3 }).n).toBe(3);
    expect(frag(pkt, 9000, { limit: 0 }).n).toBe(0);
    const out = new Uint8Array(4096);
    expect(fragmentIpv4(pkt, 0, pkt.length, 576, out, 0, new Uint32Array(2), new Uint32Array(8), 0, 8)).toBe(0);
    expect(fragmentIpv4(pkt, 0, pkt.length, 576, out, 0, new Uint32Array(8), new Uint32Array(2), 0, 8)).toBe(0);
  });

  it('mtu below 68 → 0 (even when the packet would fit)', () => {
    expect(IPV4_MIN_MTU).toBe(68);
    expect(frag(pkt, 67).n).toBe(0);
    expect(frag(ipPacket(20), 67).n).toBe(0);
    expect(frag(pkt, Number.NaN).n).toBe(0);
    expect(ipv4FragmentCount(40, 67)).toBe(0);
  });

  it('not a well-formed IPv4 packet → 0', () => {
    const bad = (mutate: (p: Uint8Array) => void, len = pkt.length): number => {
      const p = pkt.slice(0, len);
      mutate(p);
      return frag(p, 576).n;
    };
    expect(bad(() => {}, 19)).toBe(0); // < 20 bytes
    expect(bad((p) => (p[0] = 0x65))).toBe(0); // version 6
    expect(bad((p) => (p[0] = 0x44))).toBe(0); // IHL 4
    expect(bad((p) => (p[0] = 0x4f), 40)).toBe(0); // IHL 60 past the data
    expect(bad((p) => (p[2] = 0), 1542)).toBe(0); // total length < IHL (0x0006)
    expect(bad(() => {}, 1541)).toBe(0); // total length past the data
    expect(frag(new Uint8Array(0), 576).n).toBe(0);
  });
});

describe('fragmentIpv4: property', () => {
  it('random packets, options, flags and mtus: invariants hold and the data reassembles', () => {
    const optionChoices = [
      new Uint8Array(0),
      Uint8Array.from([0x94, 4, 0, 0]),
      Uint8Array.from([7, 7, 4, 0, 0, 0, 0, 1]),
      Uint8Array.from([0x94, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0x83, 7, 4, 192, 0, 2, 1, 1, 0]),
      Uint8Array.from([0x83, 39, 4, ...new Array<number>(36).fill(9), 0]), // 40 bytes, copied
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4000 }),
        fc.integer({ min: 68, max: 2000 }),
        fc.integer({ min: 0, max: optionChoices.length - 1 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 600 }),
        (data, mtu, oi, mf, offUnits, outOff) => {
          const options = optionChoices[oi]!;
          const hdr = 20 + options.length;
          const pkt = new Uint8Array(hdr + data);
          writeIpv4Header(pkt, 0, { src: A, dst: B, id: data, mf, fragOffset: offUnits * 8, options }, 47, data);
          for (let i = 0; i < data; i++) pkt[hdr + i] = (i * 31 + data) & 0xff;
          const out = new Uint8Array(outOff + pkt.length + ipv4FragmentCount(pkt.length, mtu, hdr) * hdr);
          const fragStart = new Uint32Array(IPV4_MAX_FRAGMENTS);
          const fragSize = new Uint32Array(IPV4_MAX_FRAGMENTS);
          const n = fragmentIpv4(pkt, 0, pkt.length, mtu, out, outOff, fragStart, fragSize, 0, IPV4_MAX_FRAGMENTS);
          expect(n).toBeGreaterThan(0);
          expect(n).toBeLessThanOrEqual(ipv4FragmentCount(pkt.length, mtu, hdr));
          const frags: Uint8Array[] = [];
          let expectStart = outOff;
          for (let i = 0; i < n; i++) {
            expect(fragStart[i]).toBe(expectStart);
            expectStart += fragSize[i]!;
            frags.push(out.subarray(fragStart[i], fragStart[i]! + fragSize[i]!));
          }
          if (n === 1) {
            expect(Buffer.from(frags[0]!).equals(Buffer.from(pkt))).toBe(true);
            return;
          }
          checkFrags(pkt, frags, mtu);
          const r = reassemble(frags, offUnits * 8);
          expect(r.mf).toBe(mf);
          expect(Buffer.from(r.data).equals(Buffer.from(pkt.subarray(hdr)))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws on random bytes, lengths and arguments', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.integer({ min: -10, max: 300 }),
        fc.integer({ min: -10, max: 300 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: -5, max: 400 }),
        (bytes, len, mtu, outSize, outOff) => {
          // Mostly plausible headers, so that the later steps run too.
          if (bytes.length >= 8) {
            bytes[0] = 0x40 | (bytes[0]! & 0x0f);
            bytes[2] = bytes.length >>> 8;
            bytes[3] = bytes.length & 0xff;
            bytes[6] = bytes[6]! & ~0x40;
          }
          const out = new Uint8Array(outSize);
          const n = fragmentIpv4(bytes, 0, len, mtu, out, outOff, new Uint32Array(16), new Uint32Array(16), 0, 16);
          expect(n).toBeGreaterThanOrEqual(0);
          expect(n).toBeLessThanOrEqual(16);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('fragmentIpv4: allocation', () => {
  it('100k fragmentations (slab memmove and byte loop): no heap growth ≥ 1 MB and no GC during the loop', async () => {
    const pkt = grePacket();
    const slab = new Uint8Array(16384);
    slab.set(pkt, 128);
    const other = new Uint8Array(4096);
    const fragStart = new Uint32Array(8);
    const fragSize = new Uint32Array(8);
    let total = 0;
    const run = (n: number): void => {
      for (let i = 0; i < n; i++) {
        total += fragmentIpv4(slab, 128, 1542, 576 + (i & 0x3ff), slab, 4096, fragStart, fragSize, 0, 8);
        total += fragmentIpv4(slab, 128, 1542, 1400, other, 0, fragStart, fragSize, 0, 8);
      }
    };
    run(100_000); // warm-up
    await new Promise((resolve) => setTimeout(resolve, 20));
    collectGarbage(); // start from a collected heap (helpers/gc.ts)
    const gcStarts: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcStarts.push(e.startTime);
    });
    obs.observe({ entryTypes: ['gc'] });
    await new Promise((resolve) => setTimeout(resolve, 20));
    total = 0;
    const t0 = performance.now();
    const before = process.memoryUsage().heapUsed;
    run(100_000);
    const after = process.memoryUsage().heapUsed;
    const t1 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    obs.disconnect();
    expect(total).toBeGreaterThanOrEqual(300_000);
    expect(after - before).toBeLessThan(1 << 20);
    expect(gcStarts.filter((t) => t >= t0 && t <= t1).length).toBe(0);
  });
});

const HAVE_TSHARK = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

describeWhen(HAVE_TSHARK, 'tshark', 'IPv4 fragments vs tshark', () => {
  it('tshark reassembles the fragments (checksums good) and dissects GRE and the inner frame', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lime-frag-'));
    try {
      const file = join(dir, 'frags.pcap');
      const w = PcapWriter.open(file, { linktype: LINKTYPE_RAW });
      const t0 = 1_700_000_000_000;
      const mtus = [1500, 1400, 576];
      for (const mtu of mtus) {
        // A new packet per mtu: greEncap advances the identification, so the three
        // datagrams do not mix in reassembly.
        for (const f of frag(grePacket(), mtu).frags) w.write(f, t0 + w.count);
      }
      await w.close();
      expect(w.count).toBe(2 + 2 + 3);

      const fields = execFileSync(
        'tshark',
        // -2: two passes, so that the earlier fragments name the frame that reassembles them.
        ['-r', file, '-2', '-o', 'ip.defragment:TRUE', '-o', 'ip.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|',
          '-e', 'frame.number', '-e', 'ip.flags.mf', '-e', 'ip.checksum.status', '-e', 'ip.reassembled_in',
          '-e', 'ip.reassembled.length', '-e', 'gre.key', '-e', 'eth.src', '-e', 'eth.dst', '-e', 'udp.dstport'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const rows = fields.trim().split('\n').map((l) => l.split('|'));
      expect(rows.length).toBe(7);
      // The frames that complete a datagram: 2, 4 and 7.
      const lastOf = [2, 2, 4, 4, 7, 7, 7];
      rows.forEach((r, i) => {
        expect(r[0]).toBe(String(i + 1));
        expect(r[2]!.split(',')[0]).toBe('1'); // header checksum good
        const done = lastOf[i] === i + 1;
        expect(r[1]!.split(',')[0]).toBe(done ? '0' : '1');
        if (!done) {
          expect(r[3]).toBe(String(lastOf[i]));
          return;
        }
        expect(r[4]).toBe('1522');
        expect(Number(r[5])).toBe(0x1234);
        expect(r[6]).toBe('02:00:00:00:00:01');
        expect(r[7]).toBe('02:00:00:00:00:02');
        expect(r[8]).toBe('5678');
      });

      const verbose = execFileSync('tshark', ['-r', file, '-o', 'ip.defragment:TRUE', '-V'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 64 << 20,
      });
      expect(verbose).toContain('[3 IPv4 Fragments (1522 bytes): #5(552), #6(552), #7(418)]');
      expect(verbose).toMatch(/Generic Routing Encapsulation \(Transparent Ethernet bridging\)/);
      expect(verbose.match(/Ethernet II, Src: 02:00:00:00:00:01/g)?.length).toBe(3);
      expect(verbose).not.toMatch(/\[Malformed Packet|Expert Info \(Error/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
