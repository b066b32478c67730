/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * The checksum is the one's-complement of the one's-complement sum of the data taken as
 * big-endian 16-bit words (an odd final byte is padded with a zero byte). We accumulate
 * plain integer sums and fold the carries at the end (RFC 1071 §2 (B), "deferred carries"):
 * a frame of up to 64 KiB sums below 2^31, so the accumulator stays a small integer.
 *
 * Verification: the sum over data that includes its own correct checksum folds to 0xffff,
 * so `internetChecksum()` over it returns 0.
 *
 * Cost: one pass, two byte loads per word; nothing allocates, so these may be used on the
 * fast path (e.g. GRE checksum, TTL decrement).
 */

/** Plain (unfolded) sum of the 16-bit big-endian words of buf[off … off+size), plus `initial`. */
export function onesSum(buf: Uint8Array, off: number, size: number, initial = 0): number {
  let sum = initial;
  const end = off + (size & ~1);
  let i = off;
  for (; i < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if ((size & 1) !== 0) sum += buf[i]! << 8;
  return sum;
}

/** Folds the carries of a non-negative sum into 16 bits (end-around carry). */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * The Internet checksum of buf[off … off+size): ~fold(sum + initial) & 0xffff. `initial`
 * adds, e.g., a pseudo-header sum. Returns 0 when the data carries a correct checksum.
 */
export function internetChecksum(buf: Uint8Array, off: number, size: number, initial = 0): number {
  return ~foldSum(onesSum(buf, off, size, initial)) & 0xffff;
}

/**
 * RFC 1624 eqn. 3: the new checksum after a 16-bit word of the covered data changed from
 * `oldWord` to `newWord`: HC' = ~(~HC + ~m + m').
 */
export function checksumUpdate16(csum: number, oldWord: number, newWord: number): number {
  return ~foldSum((~csum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/** As checksumUpdate16, for an aligned 32-bit field (an IPv4 address, a GRE key). */
export function checksumUpdate32(csum: number, oldValue: number, newValue: number): number {
  const sum =
    (~csum & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) +
    (~oldValue & 0xffff) +
    ((newValue >>> 16) & 0xffff) +
    (newValue & 0xffff);
  return ~foldSum(sum) & 0xffff;
}

/**
 * Unfolded sum of the IPv4 pseudo-header (RFC 9293 §3.1, RFC 768): src, dst, zero,
 * protocol, transport length. Pass it as `initial` to internetChecksum().
 */
export function pseudoHeaderSumIpv4(src: number, dst: number, proto: number, l4Size: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + l4Size;
}

/**
 * Unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1): the 16-byte addresses at
 * `srcOff` and `dstOff` in `buf`, the 32-bit upper-layer length and the next header.
 */
export function pseudoHeaderSumIpv6(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  proto: number,
  l4Size: number,
): number {
  return onesSum(buf, dstOff, 16, onesSum(buf, srcOff, 16)) + (l4Size >>> 16) + (l4Size & 0xffff) + proto;
}
