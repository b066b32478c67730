/**
 * Ethernet frames for fuzzing the frame parsers, built layer by layer so that the deep
 * layers are reached: 0–3 VLAN tags (802.1Q, 802.1ad, 0x9100), then ARP/RARP, IPv4 (with
 * options and fragments), IPv6 (with hop-by-hop, routing, destination-options, AH and
 * fragment headers), an 802.3 length or any EtherType; then TCP (with options), UDP, ICMP,
 * ICMPv6, GRE (with checksum/key/sequence, an inner Ethernet frame) or anything. Every
 * length, version and flag field is mostly right and sometimes anything, so both the
 * accepting paths and every drop reason are exercised.
 */
import fc from 'fast-check';

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const bytes = (min: number, max: number): fc.Arbitrary<number[]> => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => [...b]);
const be16 = (v: number): number[] => [(v >>> 8) & 0xff, v & 0xff];

/** Mostly `right`, sometimes anything from `any`. */
const mostly = <T>(right: T, any: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.oneof({ weight: 9, arbitrary: fc.constant(right) }, { weight: 1, arbitrary: any });

/**
 * A length field for `header` + `payload` bytes: the true length, one that ends inside
 * the payload (the next layer is cut short), off by a little either way, or anything.
 */
const lengthOf = (header: number, payload: number): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.constant(header + payload) },
    // Mostly inside the next layer's header, where its own truncation checks are.
    { weight: 3, arbitrary: fc.integer({ min: 0, max: Math.min(payload, 24) }).map((n) => header + n) },
    { weight: 1, arbitrary: fc.integer({ min: -9, max: 9 }).map((d) => Math.max(0, Math.min(0xffff, header + payload + d))) },
    { weight: 1, arbitrary: u16 },
  );

const TCP = 6;
const UDP = 17;
const GRE = 47;
const ICMP = 1;
const ICMPV6 = 58;
const transportProto = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(TCP, UDP, GRE, ICMP, ICMPV6, 132, 59) }, { weight: 2, arbitrary: u8 });

const tcp: fc.Arbitrary<number[]> = fc
  .tuple(u16, u16, bytes(8, 8), fc.integer({ min: 0, max: 10 }), mostly<number | undefined>(undefined, fc.integer({ min: 0, max: 15 })), fc.integer({ min: 0, max: 0xfff }), bytes(0, 32))
  .map(([src, dst, seqAck, optWords, badOffset, flags, payload]) => {
    const offset = badOffset ?? 5 + optWords;
    const options = Array.from({ length: optWords * 4 }, (_, i) => (i === 0 ? 2 : 1));
    return [...be16(src), ...be16(dst), ...seqAck, (offset << 4) | (flags >>> 8), flags & 0xff, 0xff, 0xff, 0, 0, 0, 0, ...options, ...payload];
  });

const udp: fc.Arbitrary<number[]> = fc
  .tuple(u16, u16, bytes(0, 40))
  .chain(([src, dst, payload]) => lengthOf(8, payload.length).map((len) => [...be16(src), ...be16(dst), ...be16(len), 0, 0, ...payload]));

const icmp: fc.Arbitrary<number[]> = fc.tuple(u8, u8, bytes(0, 30)).map(([type, code, rest]) => [type, code, 0, 0, ...rest]);

/** GRE flags: the usual C/K/S combinations, the forbidden bits, other versions. */
const greFlags = fc.oneof(fc.constantFrom(0x0000, 0x8000, 0x2000, 0x1000, 0xb000, 0x3000, 0x4000, 0x0800, 0x0001, 0x0007, 0x0078), u16);

const gre = (inner: fc.Arbitrary<number[]>): fc.Arbitrary<number[]> =>
  fc.tuple(greFlags, mostly(0x6558, u16), bytes(12, 12), inner).map(([flags, proto, opts, payload]) => {
    const optionBytes = ((flags & 0x8000 ? 4 : 0) + (flags & 0x2000 ? 4 : 0) + (flags & 0x1000 ? 4 : 0)) as number;
    return [...be16(flags), ...be16(proto), ...opts.slice(0, optionBytes), ...payload];
  });

/** A transport header for `proto`; GRE carries `inner` (an Ethernet frame, or bytes). */
function transport(proto: number, inner: fc.Arbitrary<number[]>): fc.Arbitrary<number[]> {
  switch (proto) {
    case TCP:
      return tcp;
    case UDP:
      return udp;
    case GRE:
      return gre(inner);
    case ICMP:
    case ICMPV6:
      return icmp;
    default:
      return bytes(0, 40);
  }
}

/** IPv4 fragment field values: mostly none, DF or MF (a first fragment); later fragments. */
const ipv4Frag = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0x0000, 0x4000, 0x2000) }, { weight: 1, arbitrary: fc.constantFrom(0x0001, 0x2005, 0x1fff) }, { weight: 1, arbitrary: u16 });

const ipv4 = (inner: fc.Arbitrary<number[]>): fc.Arbitrary<number[]> =>
  fc
    .tuple(mostly(4, fc.integer({ min: 0, max: 15 })), fc.integer({ min: 0, max: 10 }), mostly<number | undefined>(undefined, fc.integer({ min: 0, max: 15 })), u8, ipv4Frag, u8, transportProto, bytes(8, 8))
    .chain(([version, optWords, badIhl, tos, frag, ttl, proto, addrs]) =>
      fc.tuple(transport(proto, inner), bytes(0, 8)).chain(([payload, padding]) => {
        const options = Array.from({ length: optWords * 4 }, (_, i) => (i % 4 === 0 ? 1 : 0));
        const headerSize = 20 + options.length;
        return lengthOf(headerSize, payload.length).map((total) => {
          const ihl = badIhl ?? 5 + optWords;
          return [(version << 4) | ihl, tos, ...be16(total), 0x12, 0x34, ...be16(frag), ttl, proto, 0, 0, ...addrs, ...options, ...payload, ...padding];
        });
      }),
    );

const HOPOPTS = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const DSTOPTS = 60;
const AH = 51;
const extensionType = fc.constantFrom(HOPOPTS, ROUTING, FRAGMENT, DSTOPTS, AH);

/** Extension headers (types in order) then the upper layer, as IPv6 payload bytes. */
function ipv6Payload(exts: Array<{ type: number; len: number; fragOffset: number }>, last: number, upper: number[]): number[] {
  const body: number[] = [];
  exts.forEach((e, i) => {
    const next = i + 1 < exts.length ? exts[i + 1]!.type : last;
    if (e.type === FRAGMENT) body.push(next, 0, ...be16(e.fragOffset), 0, 0, 0, 7);
    else {
      const size = e.type === AH ? (e.len + 2) * 4 : (e.len + 1) * 8;
      body.push(next, e.len, ...Array.from({ length: size - 2 }, (_, j) => j & 0xff));
    }
  });
  return [...body, ...upper];
}

const extension = fc.record({
  type: extensionType,
  len: fc.integer({ min: 0, max: 4 }),
  fragOffset: fc.oneof(fc.constantFrom(0x0000, 0x0001, 0x0008, 0xfff8), u16),
});

const ipv6 = (inner: fc.Arbitrary<number[]>): fc.Arbitrary<number[]> =>
  fc
    .tuple(mostly(6, fc.integer({ min: 0, max: 15 })), u8, fc.integer({ min: 0, max: 0xfffff }), fc.array(extension, { maxLength: 4 }), transportProto, u8, bytes(32, 32))
    .chain(([version, tclass, label, exts, last, hops, addrs]) =>
      fc.tuple(transport(last, inner), bytes(0, 8)).chain(([upper, padding]) => {
        const payload = ipv6Payload(exts, last, upper);
        const first = exts.length > 0 ? exts[0]!.type : last;
        return lengthOf(0, payload.length).map((plen) => {
          const word = (((version & 15) << 28) | (tclass << 20) | label) >>> 0;
          return [word >>> 24, (word >>> 16) & 0xff, (word >>> 8) & 0xff, word & 0xff, ...be16(plen), first, hops, ...addrs, ...payload, ...padding];
        });
      }),
    );

const arp: fc.Arbitrary<number[]> = fc
  .tuple(mostly(1, u16), mostly(0x0800, u16), mostly(6, u8), mostly(4, u8), fc.constantFrom(1, 2, 3, 4, 0x0101), bytes(20, 20))
  .map(([htype, ptype, hlen, plen, op, rest]) => [...be16(htype), ...be16(ptype), hlen, plen, ...be16(op), ...rest]);

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;

/** An EtherType and what follows it. */
const network = (inner: fc.Arbitrary<number[]>): fc.Arbitrary<{ type: number; body: number[] }> =>
  fc.oneof(
    { weight: 4, arbitrary: ipv4(inner).map((body) => ({ type: ETH_IPV4, body })) },
    { weight: 4, arbitrary: ipv6(inner).map((body) => ({ type: ETH_IPV6, body })) },
    { weight: 1, arbitrary: arp.map((body) => ({ type: 0x0806, body })) },
    { weight: 1, arbitrary: arp.map((body) => ({ type: 0x8035, body })) },
    // An 802.3 length field, a tag TPID where a type should be, or any type.
    { weight: 1, arbitrary: fc.tuple(fc.oneof(fc.integer({ min: 0, max: 0x5ff }), fc.constantFrom(0x0600, 0x8100, 0x88a8, 0x9100, 0x88cc), u16), bytes(0, 40)).map(([type, body]) => ({ type, body })) },
  );

const vlanTag = fc.tuple(fc.constantFrom(0x8100, 0x88a8, 0x9100), u16).map(([tpid, tci]) => [...be16(tpid), ...be16(tci)]);

const ethernet = (inner: fc.Arbitrary<number[]>): fc.Arbitrary<number[]> =>
  fc
    .tuple(bytes(12, 12), fc.array(vlanTag, { maxLength: 3 }), network(inner))
    .map(([macs, tags, { type, body }]) => [...macs, ...tags.flat(), ...be16(type), ...body]);

/** A GRE payload: an inner Ethernet frame (not itself tunnelling), or bytes. */
const innerFrame = fc.oneof(ethernet(bytes(0, 24)), bytes(0, 24));

/** A well-formed-ish frame (lengths and versions mostly right). */
export const structuredFrame: fc.Arbitrary<Uint8Array> = ethernet(innerFrame).map((b) => Uint8Array.from(b));
