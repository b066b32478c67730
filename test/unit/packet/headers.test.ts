/**
 * Per-protocol accessors and writers (eth, vlan, arp, ipv4, ipv6, tcp, udp, icmp, gre)
 * read the fixture bytes as decoded by hand, and setters write what getters read back.
 */
import { describe, it, expect } from 'vitest';
import * as eth from '../../../src/packet/eth.js';
import * as vlan from '../../../src/packet/vlan.js';
import * as arp from '../../../src/packet/arp.js';
import * as ipv4 from '../../../src/packet/ipv4.js';
import * as ipv6 from '../../../src/packet/ipv6.js';
import * as tcp from '../../../src/packet/tcp.js';
import * as udp from '../../../src/packet/udp.js';
import * as icmp from '../../../src/packet/icmp.js';
import * as gre from '../../../src/packet/gre.js';
import { rd16, rd32, wr16, wr32 } from '../../../src/packet/bytes.js';
import * as C from '../../../src/packet/constants.js';
import * as fx from '../../fixtures/packet/frames.js';

describe('bytes', () => {
  it('big-endian reads and writes', () => {
    const b = new Uint8Array(8);
    wr32(b, 1, 0xdeadbeef);
    wr16(b, 5, 0xcafe);
    expect(Array.from(b)).toEqual([0, 0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0]);
    expect(rd32(b, 1)).toBe(0xdeadbeef);
    expect(rd16(b, 5)).toBe(0xcafe);
  });
});

describe('eth + vlan', () => {
  it('reads MACs and type', () => {
    const f = fx.arpRequest;
    expect([eth.ethDstHi(f, 0), eth.ethDstLo(f, 0), eth.ethSrcHi(f, 0), eth.ethSrcLo(f, 0)]).toEqual([
      0xffff, 0xffffffff, 0x5254, 0x00123456,
    ]);
    expect(eth.ethType(f, 0)).toBe(C.ETH_TYPE_ARP);
    expect(eth.isBroadcastMac(0xffff, 0xffffffff)).toBe(true);
    expect(eth.isMulticastMac(0x3333)).toBe(true);
    expect(eth.isMulticastMac(0x0200)).toBe(false);
  });
  it('writes what it reads', () => {
    const b = new Uint8Array(20).fill(0xa5);
    eth.setEthDst(b, 2, 0x0102, 0x03040506);
    eth.setEthSrc(b, 2, 0x0a0b, 0x0c0d0e0f);
    eth.setEthType(b, 2, 0x86dd);
    expect(Buffer.from(b.subarray(2, 16)).toString('hex')).toBe('010203040506' + '0a0b0c0d0e0f' + '86dd');
  });
  it('tags', () => {
    const f = fx.vlanDouble;
    expect(vlan.vlanTpid(f, 12)).toBe(C.TPID_8021AD);
    expect(vlan.vlanVid(f, 12)).toBe(10);
    expect(vlan.vlanTci(f, 16)).toBe(0xa014);
    expect(vlan.vlanPcp(f, 16)).toBe(5);
    expect(vlan.vlanVid(f, 16)).toBe(20);
    expect(vlan.makeTci(20, 5)).toBe(0xa014);
    expect(vlan.makeTci(10, 0, true)).toBe(0x100a);
    expect(vlan.isOuterVlanTpid(0x9100)).toBe(true);
    expect(vlan.isVlanTpid(0x9100)).toBe(false);
    const b = new Uint8Array(4);
    vlan.writeVlanTag(b, 0, 0x8100, 0x0064);
    vlan.setVlanTci(b, 0, 0x2064);
    expect(Buffer.from(b).toString('hex')).toBe('81002064');
  });
});

describe('arp', () => {
  it('reads an ARP request', () => {
    const f = fx.arpRequest;
    const o = 14;
    expect(arp.arpIsEthIpv4(f, o)).toBe(true);
    expect([arp.arpHtype(f, o), arp.arpPtype(f, o), arp.arpHlen(f, o), arp.arpPlen(f, o), arp.arpOp(f, o)]).toEqual([
      1, 0x0800, 6, 4, 1,
    ]);
    expect([arp.arpShaHi(f, o), arp.arpShaLo(f, o), arp.arpSpa(f, o)]).toEqual([0x5254, 0x00123456, 0xc0a80001]);
    expect([arp.arpThaHi(f, o), arp.arpThaLo(f, o), arp.arpTpa(f, o)]).toEqual([0, 0, 0xc0a80002]);
  });
  it('turns it into a reply in place', () => {
    const f = fx.arpRequest.slice();
    const o = 14;
    arp.setArpOp(f, o, C.ARP_OP_REPLY);
    arp.setArpTha(f, o, 0x5254, 0x00123456);
    arp.setArpTpa(f, o, 0xc0a80001);
    arp.setArpSha(f, o, 0x0200, 0x00000009);
    arp.setArpSpa(f, o, 0xc0a80002);
    expect([arp.arpOp(f, o), arp.arpShaLo(f, o), arp.arpSpa(f, o), arp.arpThaLo(f, o), arp.arpTpa(f, o)]).toEqual([
      2, 9, 0xc0a80002, 0x00123456, 0xc0a80001,
    ]);
  });
});

describe('ipv4', () => {
  it('reads the TCP SYN header', () => {
    const f = fx.tcpSyn;
    const o = 14;
    expect(ipv4.ipv4Version(f, o)).toBe(4);
    expect(ipv4.ipv4HeaderSize(f, o)).toBe(20);
    expect(ipv4.ipv4Tos(f, o)).toBe(0x10);
    expect(ipv4.ipv4TotalLen(f, o)).toBe(60);
    expect(ipv4.ipv4Id(f, o)).toBe(0xbeef);
    expect(ipv4.ipv4FragWord(f, o)).toBe(C.IPV4_FLAG_DF);
    expect(ipv4.ipv4Ttl(f, o)).toBe(64);
    expect(ipv4.ipv4Proto(f, o)).toBe(6);
    expect(ipv4.ipv4Checksum(f, o)).toBe(0x67ba);
    expect(ipv4.ipv4Src(f, o)).toBe(0x0a000001);
    expect(ipv4.ipv4Dst(f, o)).toBe(0x0a000002);
    expect(ipv4.ipv4ChecksumValid(f, o)).toBe(true);
  });
  it('fragments', () => {
    expect(ipv4.ipv4MoreFragments(fx.ipv4FragFirst, 14)).toBe(true);
    expect(ipv4.ipv4FragOffset(fx.ipv4FragFirst, 14)).toBe(0);
    expect(ipv4.ipv4MoreFragments(fx.ipv4FragLater, 14)).toBe(false);
    expect(ipv4.ipv4FragOffset(fx.ipv4FragLater, 14)).toBe(1480);
    expect(ipv4.ipv4HeaderSize(fx.ipv4Options, 14)).toBe(32);
  });
  it('TTL decrement patches the checksum incrementally', () => {
    const f = fx.tcpSyn.slice();
    ipv4.decIpv4Ttl(f, 14);
    expect(ipv4.ipv4Ttl(f, 14)).toBe(63);
    expect(ipv4.ipv4ChecksumValid(f, 14)).toBe(true);
    const g = f.slice();
    ipv4.updateIpv4Checksum(g, 14);
    expect(ipv4.ipv4Checksum(f, 14)).toBe(ipv4.ipv4Checksum(g, 14));
  });
  it('setters + checksum', () => {
    const b = new Uint8Array(24).fill(0xa5);
    ipv4.setIpv4VerIhl(b, 0, 24);
    ipv4.setIpv4Tos(b, 0, 0);
    ipv4.setIpv4TotalLen(b, 0, 24);
    ipv4.setIpv4Id(b, 0, 1);
    ipv4.setIpv4FragWord(b, 0, 0);
    ipv4.setIpv4Ttl(b, 0, 1);
    ipv4.setIpv4Proto(b, 0, 17);
    ipv4.setIpv4Src(b, 0, 0x01020304);
    ipv4.setIpv4Dst(b, 0, 0x05060708);
    b.fill(0, 20, 24);
    ipv4.setIpv4Checksum(b, 0, 0x1234);
    expect(ipv4.ipv4ChecksumValid(b, 0)).toBe(false);
    ipv4.updateIpv4Checksum(b, 0);
    expect(ipv4.ipv4ChecksumValid(b, 0)).toBe(true);
    expect([ipv4.ipv4HeaderSize(b, 0), ipv4.ipv4Src(b, 0), ipv4.ipv4Dst(b, 0)]).toEqual([24, 0x01020304, 0x05060708]);
  });
});

describe('ipv6', () => {
  it('reads the header and extension headers', () => {
    const f = fx.ipv6HbhFrag;
    const o = 14;
    expect(ipv6.ipv6Version(f, o)).toBe(6);
    expect(ipv6.ipv6TrafficClass(f, o)).toBe(0xb8);
    expect(ipv6.ipv6FlowLabel(f, o)).toBe(0x12345);
    expect(ipv6.ipv6PayloadLen(f, o)).toBe(32);
    expect(ipv6.ipv6Next(f, o)).toBe(C.IPPROTO_HOPOPTS);
    expect(ipv6.ipv6HopLimit(f, o)).toBe(64);
    expect([0, 1, 2, 3].map((i) => ipv6.ipv6SrcWord(f, o, i))).toEqual([0x20010db8, 0, 0, 1]);
    expect(ipv6.ipv6DstWord(f, o, 3)).toBe(2);
    expect(ipv6.isIpv6ExtHeader(0)).toBe(true);
    expect(ipv6.isIpv6ExtHeader(17)).toBe(false);
    expect(ipv6.ipv6ExtSize(f, 54, 0)).toBe(8);
    expect(ipv6.ipv6ExtNext(f, 54)).toBe(C.IPPROTO_FRAGMENT);
    expect(ipv6.ipv6ExtSize(f, 62, C.IPPROTO_FRAGMENT)).toBe(8);
    expect(ipv6.ipv6FragOffset(f, 62)).toBe(0);
    expect(ipv6.ipv6FragMore(f, 62)).toBe(true);
    expect(ipv6.ipv6FragId(f, 62)).toBe(0xdeadbeef);
    expect(ipv6.ipv6FragOffset(fx.ipv6FragLater, 54)).toBe(1232);
    // AH length counts 4-byte units minus 2; others 8-byte units minus 1.
    expect(ipv6.ipv6ExtSize(fx.ipv6ExtChain, 54, C.IPPROTO_DSTOPTS)).toBe(16);
    expect(ipv6.ipv6ExtSize(fx.ipv6ExtChain, 78, C.IPPROTO_AH)).toBe(24);
  });
  it('setters', () => {
    const b = new Uint8Array(40);
    ipv6.setIpv6VerTcFl(b, 0, 0xb8, 0x12345);
    ipv6.setIpv6PayloadLen(b, 0, 300);
    ipv6.setIpv6Next(b, 0, 58);
    ipv6.setIpv6HopLimit(b, 0, 255);
    expect(Buffer.from(b.subarray(0, 8)).toString('hex')).toBe('6b812345012c3aff');
  });
});

describe('tcp, udp, icmp', () => {
  it('tcp', () => {
    const f = fx.tcpSyn;
    const o = 34;
    expect([tcp.tcpSrc(f, o), tcp.tcpDst(f, o), tcp.tcpSeq(f, o), tcp.tcpAck(f, o)]).toEqual([54321, 80, 0x11223344, 0]);
    expect([tcp.tcpHeaderSize(f, o), tcp.tcpFlags(f, o), tcp.tcpWindow(f, o), tcp.tcpChecksum(f, o)]).toEqual([
      40,
      C.TCP_SYN,
      64240,
      0x3de3,
    ]);
    const b = new Uint8Array(20);
    tcp.setTcpSrc(b, 0, 1);
    tcp.setTcpDst(b, 0, 2);
    tcp.setTcpSeq(b, 0, 0xffffffff);
    tcp.setTcpAck(b, 0, 5);
    tcp.setTcpOffFlags(b, 0, 20, C.TCP_FIN | C.TCP_ACK | C.TCP_NS);
    tcp.setTcpWindow(b, 0, 7);
    tcp.setTcpChecksum(b, 0, 8);
    tcp.setTcpUrgent(b, 0, 9);
    expect(Buffer.from(b).toString('hex')).toBe('00010002ffffffff00000005' + '5111' + '0007' + '0008' + '0009');
  });
  it('udp', () => {
    const f = fx.udpPadded;
    const o = 34;
    expect([udp.udpSrc(f, o), udp.udpDst(f, o), udp.udpLength(f, o), udp.udpChecksum(f, o)]).toEqual([
      40000, 53, 12, 0x705a,
    ]);
    const b = new Uint8Array(8);
    udp.setUdpSrc(b, 0, 1);
    udp.setUdpDst(b, 0, 2);
    udp.setUdpLength(b, 0, 3);
    udp.setUdpChecksum(b, 0, 4);
    expect(Buffer.from(b).toString('hex')).toBe('0001000200030004');
  });
  it('icmp', () => {
    const f = fx.icmpEcho;
    const o = 34;
    expect([icmp.icmpType(f, o), icmp.icmpCode(f, o), icmp.icmpChecksum(f, o)]).toEqual([8, 0, 0x2cf6]);
    expect([icmp.icmpEchoId(f, o), icmp.icmpEchoSeq(f, o), icmp.icmpRest(f, o)]).toEqual([0x1234, 1, 0x12340001]);
    const b = new Uint8Array(8);
    icmp.setIcmpTypeCode(b, 0, 3, 4);
    icmp.setIcmpChecksum(b, 0, 0xabcd);
    icmp.setIcmpRest(b, 0, 1500);
    expect(Buffer.from(b).toString('hex')).toBe('0304abcd000005dc');
  });
});

describe('gre', () => {
  it('C|K|S header', () => {
    const f = fx.greCks;
    const o = 34;
    expect(gre.greFlags(f, o)).toBe(C.GRE_FLAG_C | C.GRE_FLAG_K | C.GRE_FLAG_S);
    expect(gre.greVersion(f, o)).toBe(0);
    expect(gre.greProto(f, o)).toBe(C.ETH_TYPE_TEB);
    expect(gre.greHeaderSize(f, o)).toBe(16);
    expect(gre.greFlagsValid(gre.greFlags(f, o))).toBe(true);
    expect(gre.greChecksum(f, o)).toBe(0x4568);
    expect(gre.greKey(f, o)).toBe(100);
    expect(gre.greSeq(f, o)).toBe(1);
  });
  it('K-only header; key and seq setters', () => {
    const f = fx.greKey.slice();
    const o = 34;
    expect(gre.greHeaderSize(f, o)).toBe(8);
    expect(gre.greKeyOffset(gre.greFlags(f, o))).toBe(4);
    expect(gre.greKey(f, o)).toBe(0xfedcba98);
    expect(gre.greSeq(f, o)).toBe(0);
    gre.setGreKey(f, o, 7);
    expect(gre.greKey(f, o)).toBe(7);
    const b = new Uint8Array(16);
    gre.setGreFlagsProto(b, 0, C.GRE_FLAG_C | C.GRE_FLAG_S, 0x0800);
    gre.setGreSeq(b, 0, 42);
    gre.setGreChecksum(b, 0, 0xbeef);
    expect(Buffer.from(b.subarray(0, 12)).toString('hex')).toBe('90000800' + 'beef0000' + '0000002a');
    expect(gre.greFlagsValid(C.GRE_FLAG_R)).toBe(false);
    expect(gre.greFlagsValid(0x0300 | 0x00f8)).toBe(true); // bits 6-12 ignored
  });
});
