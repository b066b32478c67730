/**
 * parsePacket (limectl trace) fills the flow key as extract() does for the same frame: a
 * frame is built with packet/build.ts, extracted, and compared word by word with
 * parsePacket of its description in flow syntax.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildFrame, writeArp, type FrameSpec } from '../../../src/packet/build.js';
import { extract } from '../../../src/packet/extract.js';
import { KEY_WORDS } from '../../../src/packet/key.js';
import { DropReason } from '../../../src/packet/drop.js';
import { formatIpv4, formatIpv6, formatMac, type Mac } from '../../../src/util/addr.js';
import { parsePacket } from '../../../src/flow/parse.js';
import type { PortNames } from '../../../src/flow/types.js';

const ports: PortNames = { numberOf: (n) => (n === 'vm1' ? 7 : undefined), nameOf: (p) => (p === 7 ? 'vm1' : undefined) };

function extracted(f: FrameSpec, inPort: number): Uint32Array {
  const buf = new Uint8Array(2048);
  const len = buildFrame(buf, 0, f);
  const key = new Uint32Array(KEY_WORDS);
  expect(extract(buf, 0, len, key, 0, inPort)).toBe(DropReason.NONE);
  return key;
}

const mac = fc.record({ hi: fc.integer({ min: 0, max: 0xffff }), lo: fc.integer({ min: 0, max: 0xffffffff }) });
const ip4 = fc.integer({ min: 0, max: 0xffffffff });
const ip6 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 0xff });

const mac$ = (m: Mac): string => formatMac(m.hi, m.lo);

describe('parsePacket = extract(build(frame))', () => {
  it('the example from the issue', () => {
    const desc = 'in_port=vm1,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,ip,nw_src=10.0.0.1,nw_dst=10.0.0.2,tcp,tp_dst=22';
    const key = extracted(
      {
        src: { hi: 0x0200, lo: 1 },
        dst: { hi: 0x0200, lo: 2 },
        ip: { version: 4, src: 0x0a000001, dst: 0x0a000002 },
        l4: { proto: 'tcp', srcPort: 0, dstPort: 22 },
      },
      7,
    );
    expect(parsePacket(desc, ports).key).toEqual(key);
  });

  it('IPv4 TCP/UDP/ICMP with and without a VLAN tag (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          inPort: fc.integer({ min: 0, max: 0xfeff }),
          src: mac,
          dst: mac,
          vlan: fc.option(fc.record({ vid: fc.integer({ min: 0, max: 4095 }), pcp: fc.integer({ min: 0, max: 7 }) })),
          nwSrc: ip4,
          nwDst: ip4,
          tos: u8,
          ttl: fc.option(u8),
          l4: fc.oneof(
            fc.record({ proto: fc.constant('tcp' as const), srcPort: u16, dstPort: u16, flags: fc.integer({ min: 0, max: 0xfff }) }),
            fc.record({ proto: fc.constant('udp' as const), srcPort: u16, dstPort: u16 }),
            fc.record({ proto: fc.constant('icmp' as const), type: u8, code: u8 }),
          ),
        }),
        (p) => {
          const f: FrameSpec = {
            src: p.src,
            dst: p.dst,
            vlans: p.vlan === null ? [] : [{ vid: p.vlan.vid, pcp: p.vlan.pcp }],
            ip: { version: 4, src: p.nwSrc, dst: p.nwDst, tos: p.tos, ...(p.ttl === null ? {} : { ttl: p.ttl }) },
            l4: p.l4,
          };
          const parts = [`in_port=${p.inPort}`, `dl_src=${mac$(p.src)}`, `dl_dst=${mac$(p.dst)}`];
          if (p.vlan !== null) parts.push(`dl_vlan=${p.vlan.vid}`, `dl_vlan_pcp=${p.vlan.pcp}`);
          parts.push(p.l4.proto, `nw_src=${formatIpv4(p.nwSrc)}`, `nw_dst=${formatIpv4(p.nwDst)}`, `nw_tos=${p.tos & 0xfc}`, `nw_ecn=${p.tos & 3}`);
          if (p.ttl !== null) parts.push(`nw_ttl=${p.ttl}`);
          if (p.l4.proto === 'icmp') parts.push(`icmp_type=${p.l4.type}`, `icmp_code=${p.l4.code}`);
          else parts.push(`tp_src=${p.l4.srcPort}`, `tp_dst=${p.l4.dstPort}`);
          if (p.l4.proto === 'tcp') parts.push(`tcp_flags=0x${p.l4.flags.toString(16)}`);
          expect(parsePacket(parts.join(',')).key).toEqual(extracted(f, p.inPort));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('IPv6 TCP/UDP/ICMPv6 (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          src: ip6,
          dst: ip6,
          tc: u8,
          label: fc.integer({ min: 0, max: 0xfffff }),
          hop: u8,
          l4: fc.oneof(
            fc.record({ proto: fc.constant('tcp' as const), srcPort: u16, dstPort: u16 }),
            fc.record({ proto: fc.constant('udp' as const), srcPort: u16, dstPort: u16 }),
            fc.record({ proto: fc.constant('icmp' as const), type: u8, code: u8 }),
          ),
        }),
        (p) => {
          const f: FrameSpec = {
            src: { hi: 0, lo: 1 },
            dst: { hi: 0, lo: 2 },
            ip: { version: 6, src: p.src, dst: p.dst, trafficClass: p.tc, flowLabel: p.label, hopLimit: p.hop },
            l4: p.l4,
          };
          const sh = p.l4.proto === 'icmp' ? 'icmp6' : `${p.l4.proto}6`;
          const parts = ['in_port=1', 'dl_src=00:00:00:00:00:01', 'dl_dst=00:00:00:00:00:02', sh];
          parts.push(`ipv6_src=${formatIpv6(p.src)}`, `ipv6_dst=${formatIpv6(p.dst)}`, `ipv6_label=0x${p.label.toString(16)}`);
          parts.push(`nw_tos=${p.tc & 0xfc}`, `nw_ecn=${p.tc & 3}`, `nw_ttl=${p.hop}`);
          if (p.l4.proto === 'icmp') parts.push(`icmpv6_type=${p.l4.type}`, `icmpv6_code=${p.l4.code}`);
          else parts.push(`tp_src=${p.l4.srcPort}`, `tp_dst=${p.l4.dstPort}`);
          expect(parsePacket(parts.join(' ')).key).toEqual(extracted(f, 1));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('ARP and RARP', () => {
    fc.assert(
      fc.property(fc.constantFrom(0x0806, 0x8035), fc.integer({ min: 1, max: 4 }), mac, ip4, mac, ip4, (type, op, sha, spa, tha, tpa) => {
        const payload = new Uint8Array(28);
        writeArp(payload, 0, { op, sha, spa, tha, tpa });
        const key = extracted({ src: sha, dst: { hi: 0xffff, lo: 0xffffffff }, etherType: type, payload }, 3);
        const desc = `in_port=3,dl_src=${mac$(sha)},dl_dst=ff:ff:ff:ff:ff:ff,${type === 0x0806 ? 'arp' : 'rarp'},arp_op=${op},arp_spa=${formatIpv4(spa)},arp_tpa=${formatIpv4(tpa)},arp_sha=${mac$(sha)},arp_tha=${mac$(tha)}`;
        expect(parsePacket(desc).key).toEqual(key);
      }),
      { numRuns: 200 },
    );
  });

  it('IPv4 fragments: a first fragment has L4, a later one does not', () => {
    const base: FrameSpec = {
      src: { hi: 0, lo: 1 },
      dst: { hi: 0, lo: 2 },
      ip: { version: 4, src: 1, dst: 2, mf: true },
      l4: { proto: 'udp', srcPort: 5, dstPort: 6 },
    };
    expect(parsePacket('in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,udp,nw_src=0.0.0.1,nw_dst=0.0.0.2,ip_frag=first,tp_src=5,tp_dst=6').key).toEqual(extracted(base, 1));
    const later: FrameSpec = { ...base, ip: { version: 4, src: 1, dst: 2, fragOffset: 8 } };
    expect(parsePacket('in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,udp,nw_src=0.0.0.1,nw_dst=0.0.0.2,ip_frag=later').key).toEqual(extracted(later, 1));
  });

  it('an L2-only frame (other EtherType) and a TTL default of 64', () => {
    const key = extracted({ src: { hi: 0, lo: 1 }, dst: { hi: 0, lo: 2 }, etherType: 0x88cc, payload: new Uint8Array(46) }, 2);
    expect(parsePacket('in_port=2,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,dl_type=0x88cc').key).toEqual(key);
    expect(parsePacket('ip').key[14]).toBe(64);
  });
});
