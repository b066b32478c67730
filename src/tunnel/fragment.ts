/**
 * IPv4 fragmentation (RFC 791 §2.3 "Fragmentation", §3.2 procedure; RFC 815 is the
 * receiver's side) of an OUTER IPv4 packet: what a GRE tunnel port sends when its packet
 * does not fit the path MTU and the policy allows fragmentation instead of a drop — the
 * template was built with df: false, so the outer DF bit is clear. The receiving end's
 * kernel (or tshark) reassembles; lime itself never reassembles (greDecap drops outer
 * fragments as TUNNEL_FRAGMENT).
 *
 * fragmentIpv4() reads the packet src[start … start+len) and writes its fragments one
 * after another into `out` from outOff, with no gaps, recording fragment i in the
 * columns at index first + i: out[fragStart[first+i] … + fragSize[first+i]) (absolute
 * offsets in `out`, as a TxQueue's start/len columns). So one pair of columns and one
 * scratch slab collect the fragments of a whole batch: pass the count so far as
 * `first`, the end of the last fragment as outOff, the column capacity as `limit`.
 * In this order:
 *   1. validate the input (first failure → 0): mtu < 68 (RFC 791 §3.2: every module
 *      must forward 68 bytes — it is also what guarantees 8 payload bytes after a
 *      60-byte header); < 20 bytes, version ≠ 4, IHL < 5 or past the data, total length
 *      < IHL*4 or past the data (bytes after the total length are padding: dropped);
 *   2. a packet that fits (total length ≤ mtu) is copied unchanged as the one fragment
 *      (DF may be set); returns 1;
 *   3. otherwise: DF set → 0; malformed options (a length < 2 or past the header) → 0;
 *      offset + data past 65535 (a malformed earlier fragment) → 0;
 *   4. plan: the first fragment keeps the whole header; every later one carries the
 *      fixed 20 bytes plus only the options whose copied flag (bit 0x80 of the type) is
 *      set, padded with zeros (End of Option List) to a multiple of 4 (RFC 791 §3.1,
 *      "copied flag"). Each fragment's data is the most that fits mtu, rounded down to a
 *      multiple of 8, the last gets the rest. The count and the total size are computed
 *      before anything is written: first + count past `limit` (or the columns'
 *      length), or more than out.length - outOff bytes → 0 and nothing written;
 *   5. write: header (first: copied from the input; later: built once into the second
 *      fragment, then copied from there), data, then per fragment total length, the
 *      flags/offset word and the header checksum. Identification, TOS, TTL, protocol and
 *      addresses stay the input's. MF is set on every fragment but the last, and on the
 *      last too when the input had it (fragmenting a fragment, RFC 791 §3.2); the
 *      offset is the input's own offset + the fragment's position. The reserved bit is
 *      kept.
 * Checksums: as greEncap, the one's-complement sum of each header shape (first, later)
 * is taken once with total length, flags/offset and checksum zero; each fragment's
 * checksum is then ~fold(sum + its total length + its flags/offset word). The input's
 * own checksum is not verified (it is lime's own packet, fresh from greEncap).
 *
 * Cost: one copy of the payload (a memmove when src and out share an ArrayBuffer and the
 * source lies inside out's view — e.g. a slot of the same slab —, else a byte loop; both
 * avoid the subarray() object that a set() would need), one pass over ≤ 60 header
 * bytes per header shape, constant work per fragment.
 *
 * Invariants: never throws, never allocates; reads only src[start … start+len), writes
 * only out[outOff … outOff + the returned fragments' total size), fragStart and fragSize
 * [first … first+n). src and the written part of out must not overlap.
 */
import { foldSum, onesSum } from '../util/checksum.js';
import { rd16, wr16 } from '../packet/bytes.js';
import {
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  IPV4_FRAG_OFFSET_MASK,
  IPV4_MIN_HEADER_SIZE,
  IPV4_VERSION,
} from '../packet/constants.js';

/** RFC 791 §3.2: "Every internet module must be able to forward a datagram of 68 octets". */
export const IPV4_MIN_MTU = 68;

/** RFC 791 §3.1: option types with this bit are copied into every fragment. */
const IPOPT_COPIED = 0x80;
/** RFC 791 §3.1: End of Option List and No Operation, the two single-byte options. */
const IPOPT_EOL = 0;
const IPOPT_NOP = 1;
/** Bytes of the largest datagram (total length is 16 bits). */
const IPV4_MAX_PACKET_SIZE = 0xffff;

/**
 * An upper bound on the fragments of any packet (every fragment carries at least 8 data
 * bytes): for sizing the columns when the mtu is not known in advance.
 */
export const IPV4_MAX_FRAGMENTS = Math.ceil((IPV4_MAX_PACKET_SIZE - IPV4_MIN_HEADER_SIZE) / 8);

/**
 * How many fragments a packet of `totalLen` bytes with a `headerSize`-byte header
 * becomes at `mtu` (1 when it fits; 0 for an mtu below 68, as fragmentIpv4): for sizing
 * the columns and `out` (which needs totalLen + (count - 1) * headerSize bytes). Exact
 * without options; with options an upper bound, as later headers are never longer.
 */
export function ipv4FragmentCount(totalLen: number, mtu: number, headerSize = IPV4_MIN_HEADER_SIZE): number {
  if (!(mtu >= IPV4_MIN_MTU)) return 0;
  if (totalLen <= mtu) return 1;
  return Math.ceil((totalLen - headerSize) / ((mtu - headerSize) & ~7));
}

/**
 * Copies n bytes src[from …) → out[to …) without allocating: one memmove (copyWithin)
 * when both views share an ArrayBuffer and the source lies inside out's view, else a
 * byte loop.
 */
function copyBytes(src: Uint8Array, from: number, out: Uint8Array, to: number, n: number): void {
  if (src.buffer === out.buffer) {
    const rel = src.byteOffset + from - out.byteOffset;
    if (rel >= 0 && rel + n <= out.length) {
      out.copyWithin(to, rel, rel + n);
      return;
    }
  }
  for (let i = 0; i < n; i++) out[to + i] = src[from + i]!;
}

/** Writes the per-fragment fields of the header at `o` and its checksum from the shape's base sum. */
function finishHeader(out: Uint8Array, o: number, baseSum: number, totalLen: number, flagsWord: number): void {
  wr16(out, o + 2, totalLen);
  wr16(out, o + 6, flagsWord);
  wr16(out, o + 10, ~foldSum(baseSum + totalLen + flagsWord) & 0xffff);
}

/** Zeroes total length, flags/offset and checksum of the header at `o` and returns its unfolded sum. */
function baseSumOf(out: Uint8Array, o: number, headerSize: number): number {
  wr16(out, o + 2, 0);
  wr16(out, o + 6, 0);
  wr16(out, o + 10, 0);
  return onesSum(out, o, headerSize);
}

/**
 * Splits the IPv4 packet src[start … start+len) into fragments of at most `mtu` bytes
 * written into out from outOff; fragment i is out[fragStart[first+i] … +fragSize[first+i]),
 * and first + n ≤ limit. Returns the number of fragments n (1: the packet fitted and was
 * copied unchanged), or 0 when it cannot (see the module comment, steps 1-4): nothing
 * was written then.
 */
export function fragmentIpv4(
  src: Uint8Array,
  start: number,
  len: number,
  mtu: number,
  out: Uint8Array,
  outOff: number,
  fragStart: Uint32Array,
  fragSize: Uint32Array,
  first: number,
  limit: number,
): number {
  // 1. Validate.
  if (!(mtu >= IPV4_MIN_MTU) || start < 0 || outOff < 0) return 0;
  if (len > src.length - start) len = src.length - start;
  if (len < IPV4_MIN_HEADER_SIZE) return 0;
  const verIhl = src[start]!;
  if (verIhl >>> 4 !== IPV4_VERSION) return 0;
  const ihl = (verIhl & 0x0f) << 2;
  if (ihl < IPV4_MIN_HEADER_SIZE || ihl > len) return 0;
  const totalLen = rd16(src, start + 2);
  if (totalLen < ihl || totalLen > len) return 0;
  if (limit > fragStart.length) limit = fragStart.length;
  if (limit > fragSize.length) limit = fragSize.length;
  if (!(first >= 0) || first >= limit) return 0;
  const room = out.length - outOff;

  // 2. Fits: one fragment, unchanged.
  if (totalLen <= mtu) {
    if (totalLen > room) return 0;
    copyBytes(src, start, out, outOff, totalLen);
    fragStart[first] = outOff;
    fragSize[first] = totalLen;
    return 1;
  }

  // 3. May and can it be fragmented?
  const flags = rd16(src, start + 6);
  if ((flags & IPV4_FLAG_DF) !== 0) return 0;
  let copiedSize = 0;
  let p = start + IPV4_MIN_HEADER_SIZE;
  const hdrEnd = start + ihl;
  while (p < hdrEnd) {
    const type = src[p]!;
    if (type === IPOPT_EOL) break;
    if (type === IPOPT_NOP) {
      p++;
      continue;
    }
    if (p + 1 >= hdrEnd) return 0;
    const size = src[p + 1]!;
    if (size < 2 || p + size > hdrEnd) return 0;
    if ((type & IPOPT_COPIED) !== 0) copiedSize += size;
    p += size;
  }
  const laterIhl = IPV4_MIN_HEADER_SIZE + ((copiedSize + 3) & ~3);
  const dataLen = totalLen - ihl;
  const inOffset = (flags & IPV4_FRAG_OFFSET_MASK) << 3;
  if (inOffset + dataLen > IPV4_MAX_PACKET_SIZE) return 0;
  const inMf = flags & IPV4_FLAG_MF;
  const keptFlags = flags & ~(IPV4_FLAG_MF | IPV4_FRAG_OFFSET_MASK); // the reserved bit (DF is clear)

  // 4. Plan: count and total size before writing anything.
  const firstData = (mtu - ihl) & ~7; // ≥ 8: mtu ≥ 68, ihl ≤ 60
  const laterData = (mtu - laterIhl) & ~7;
  const rest = dataLen - firstData; // > 0: the packet does not fit
  const nLater = Math.ceil(rest / laterData);
  const n = 1 + nLater;
  if (first + n > limit || totalLen + nLater * laterIhl > room) return 0;

  // 5. Write. First fragment: the input's header and the first firstData bytes.
  let o = outOff;
  copyBytes(src, start, out, o, ihl);
  const firstSum = baseSumOf(out, o, ihl);
  copyBytes(src, hdrEnd, out, o + ihl, firstData);
  finishHeader(out, o, firstSum, ihl + firstData, keptFlags | IPV4_FLAG_MF | (inOffset >>> 3));
  fragStart[first] = o;
  fragSize[first] = ihl + firstData;
  o += ihl + firstData;

  // The later header, built once in the second fragment: fixed part, copied options,
  // zero padding (EOL), IHL adjusted.
  const laterHdr = o;
  copyBytes(src, start, out, o, IPV4_MIN_HEADER_SIZE);
  out[o] = (IPV4_VERSION << 4) | (laterIhl >>> 2);
  let q = o + IPV4_MIN_HEADER_SIZE;
  p = start + IPV4_MIN_HEADER_SIZE;
  while (p < hdrEnd) {
    const type = src[p]!;
    if (type === IPOPT_EOL) break;
    if (type === IPOPT_NOP) {
      p++;
      continue;
    }
    const size = src[p + 1]!;
    if ((type & IPOPT_COPIED) !== 0) {
      for (let i = 0; i < size; i++) out[q + i] = src[p + i]!;
      q += size;
    }
    p += size;
  }
  while (q < laterHdr + laterIhl) out[q++] = IPOPT_EOL;
  const laterSum = baseSumOf(out, laterHdr, laterIhl);

  let pos = firstData; // data bytes already placed
  for (let i = 1; i < n; i++) {
    const last = i === n - 1;
    const size = last ? dataLen - pos : laterData;
    if (i > 1) out.copyWithin(o, laterHdr, laterHdr + laterIhl);
    copyBytes(src, hdrEnd + pos, out, o + laterIhl, size);
    const mf = last ? inMf : IPV4_FLAG_MF;
    finishHeader(out, o, laterSum, laterIhl + size, keptFlags | mf | ((inOffset + pos) >>> 3));
    fragStart[first + i] = o;
    fragSize[first + i] = laterIhl + size;
    o += laterIhl + size;
    pos += size;
  }
  return n;
}
