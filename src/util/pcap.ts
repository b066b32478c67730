/**
 * The classic libpcap file format (https://wiki.wireshark.org/Development/LibpcapFileFormat;
 * draft-ietf-opsawg-pcap), for `limectl capture` and for pcap-in / pcap-out test goldens:
 *
 *   file   = global header (24 bytes) then records, nothing else;
 *   header = magic(4) version major(2) = 2, minor(2) = 4, thiszone(4) = 0,
 *            sigfigs(4) = 0, snaplen(4), linktype(4);
 *   record = ts_sec(4) ts_usec(4) caplen(4) origlen(4), then caplen bytes.
 *
 * Choices: microsecond timestamps (magic 0xa1b2c3d4; every reader since 1998 takes it,
 * and a millisecond clock has nothing for nanoseconds to add); fields written
 * little-endian always, whatever the host — readers tell the byte order from the magic
 * (they all do, it is how the format works) —, so the same frames give the same file
 * bytes on every machine and goldens compare byte for byte. A record keeps the first
 * min(size, snaplen) bytes of its frame and the frame's original size.
 *
 * Who owns what: pcapRecord() copies the frame, so the caller's slab slot may be reused
 * as soon as it returns, even when a stream writes the record later. PcapWriter owns its
 * target: close() ends the stream (a file stream then closes its descriptor) or closes
 * the descriptor.
 *
 * This is management-path code: it allocates one Buffer per record and throws a
 * RangeError naming the bad field (snaplen, linktype, timeMs, origLen; readPcap: magic,
 * version, a record's caplen).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** Magic of a microsecond-resolution file, and of a nanosecond one (read only). */
export const PCAP_MAGIC_USEC = 0xa1b2c3d4;
export const PCAP_MAGIC_NSEC = 0xa1b23c4d;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
export const PCAP_HEADER_SIZE = 24;
export const PCAP_RECORD_HEADER_SIZE = 16;
/** tcpdump's default snaplen (and the 16-bit IP maximum); libpcap's MAXIMUM_SNAPLEN is the cap. */
export const PCAP_DEFAULT_SNAPLEN = 65535;
export const PCAP_MAX_SNAPLEN = 262144;

/** Link types (https://www.tcpdump.org/linktypes.html). */
export const LINKTYPE_ETHERNET = 1;
/** Raw IP: the packet starts with an IPv4 or IPv6 header (what a GRE raw socket carries). */
export const LINKTYPE_RAW = 101;

function checkSnaplen(snaplen: number): void {
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > PCAP_MAX_SNAPLEN) {
    throw new RangeError(`pcap: snaplen must be an integer 1-${PCAP_MAX_SNAPLEN}, got ${snaplen}`);
  }
}

/** The 24-byte global header. */
export function pcapHeader(snaplen = PCAP_DEFAULT_SNAPLEN, linktype = LINKTYPE_ETHERNET): Buffer {
  checkSnaplen(snaplen);
  // The upper 16 bits carry FCS information (draft-ietf-opsawg-pcap §4); not used here.
  if (!Number.isInteger(linktype) || linktype < 0 || linktype > 0xffff) {
    throw new RangeError(`pcap: linktype must be an integer 0-65535, got ${linktype}`);
  }
  const h = Buffer.alloc(PCAP_HEADER_SIZE);
  h.writeUInt32LE(PCAP_MAGIC_USEC, 0);
  h.writeUInt16LE(PCAP_VERSION_MAJOR, 4);
  h.writeUInt16LE(PCAP_VERSION_MINOR, 6);
  // 8 thiszone, 12 sigfigs: 0 (timestamps are UTC; no one has ever set sigfigs)
  h.writeUInt32LE(snaplen, 16);
  h.writeUInt32LE(linktype, 20);
  return h;
}

/**
 * One record: the 16-byte record header then the first min(frame.length, snaplen) bytes
 * of `frame` (copied). `timeMs` is milliseconds since the Unix epoch (Date.now(), or
 * performance.timeOrigin + performance.now() for sub-millisecond stamps), rounded to the
 * microsecond. `origLen` is the frame's size on the wire when `frame` is already cut
 * short (e.g. a packet-in's first max_len bytes); default frame.length.
 */
export function pcapRecord(
  frame: Uint8Array,
  timeMs: number,
  origLen = frame.length,
  snaplen = PCAP_DEFAULT_SNAPLEN,
): Buffer {
  checkSnaplen(snaplen);
  const usTotal = Math.round(timeMs * 1000);
  const sec = Math.floor(usTotal / 1_000_000);
  if (!(usTotal >= 0 && sec <= 0xffffffff)) {
    throw new RangeError(`pcap: timeMs must be milliseconds since the epoch, 0 … 2^32 s, got ${timeMs}`);
  }
  if (!Number.isInteger(origLen) || origLen < frame.length || origLen > 0xffffffff) {
    throw new RangeError(`pcap: origLen must be an integer ≥ the frame size ${frame.length}, got ${origLen}`);
  }
  const caplen = Math.min(frame.length, snaplen);
  const r = Buffer.allocUnsafe(PCAP_RECORD_HEADER_SIZE + caplen);
  r.writeUInt32LE(sec, 0);
  r.writeUInt32LE(usTotal - sec * 1_000_000, 4);
  r.writeUInt32LE(caplen, 8);
  r.writeUInt32LE(origLen, 12);
  r.set(caplen === frame.length ? frame : frame.subarray(0, caplen), PCAP_RECORD_HEADER_SIZE);
  return r;
}

export interface PcapWriterOptions {
  /** Default 65535. */
  snaplen?: number;
  /** Default LINKTYPE_ETHERNET. */
  linktype?: number;
}

/**
 * Writes a pcap file to a file descriptor (synchronously, each record whole) or a
 * Writable (a file stream, a socket, a pipe): the global header at construction — so
 * even an empty capture is a valid file —, then one record per write(). Stream errors
 * are the stream's: the caller listens for 'error'; close() rejects with it.
 */
export class PcapWriter {
  readonly snaplen: number;
  readonly linktype: number;
  /** Records written. */
  count = 0;
  private readonly target: number | Writable;
  private closed = false;

  /** Creates (or truncates) `path`, mode 0600 (captures hold traffic), and writes the header. */
  static open(path: string, options: PcapWriterOptions = {}): PcapWriter {
    pcapHeader(options.snaplen, options.linktype); // throws on bad options before the file exists
    const fd = openSync(path, 'w', 0o600);
    try {
      return new PcapWriter(fd, options);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Writes the global header to `target` at once; throws a RangeError for bad options. */
  constructor(target: number | Writable, options: PcapWriterOptions = {}) {
    this.snaplen = options.snaplen ?? PCAP_DEFAULT_SNAPLEN;
    this.linktype = options.linktype ?? LINKTYPE_ETHERNET;
    this.target = target;
    this.put(pcapHeader(this.snaplen, this.linktype));
  }

  /**
   * Appends one frame (see pcapRecord). Returns false when the stream asks the caller to
   * wait for 'drain' before writing more (Writable.write's answer); true otherwise.
   * Throws once closed.
   */
  write(frame: Uint8Array, timeMs: number, origLen?: number): boolean {
    if (this.closed) throw new Error('pcap: write after close');
    const ok = this.put(pcapRecord(frame, timeMs, origLen ?? frame.length, this.snaplen));
    this.count++;
    return ok;
  }

  /** Ends the stream and waits until it has finished (and closed), or closes the descriptor. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const t = this.target;
    if (typeof t === 'number') {
      closeSync(t);
      return;
    }
    t.end();
    await finished(t);
  }

  private put(bytes: Buffer): boolean {
    const t = this.target;
    if (typeof t !== 'number') return t.write(bytes);
    let off = 0;
    while (off < bytes.length) off += writeSync(t, bytes, off, bytes.length - off);
    return true;
  }
}

/** A pcap file read back: for tests, goldens and `limectl` replay. */
export interface PcapFile {
  /** True for a nanosecond file (magic 0xa1b23c4d). */
  nanosecond: boolean;
  /** True when the file was written big-endian. */
  bigEndian: boolean;
  versionMajor: number;
  versionMinor: number;
  snaplen: number;
  linktype: number;
  records: PcapFileRecord[];
}

export interface PcapFileRecord {
  /** Timestamp in milliseconds since the epoch (fractional below the millisecond). */
  timeMs: number;
  /** Size on the wire; `data.length` is the captured size. */
  origLen: number;
  /** The captured bytes (a view into the input). */
  data: Uint8Array;
}

/** Parses a whole classic pcap file (either byte order, either resolution). */
export function readPcap(file: Uint8Array): PcapFile {
  if (file.length < PCAP_HEADER_SIZE) throw new RangeError(`pcap: file of ${file.length} bytes has no 24-byte header`);
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const magicLe = dv.getUint32(0, true);
  const magicBe = dv.getUint32(0, false);
  let le: boolean;
  let nanosecond: boolean;
  if (magicLe === PCAP_MAGIC_USEC || magicLe === PCAP_MAGIC_NSEC) {
    le = true;
    nanosecond = magicLe === PCAP_MAGIC_NSEC;
  } else if (magicBe === PCAP_MAGIC_USEC || magicBe === PCAP_MAGIC_NSEC) {
    le = false;
    nanosecond = magicBe === PCAP_MAGIC_NSEC;
  } else {
    throw new RangeError(`pcap: magic 0x${magicBe.toString(16).padStart(8, '0')} is not a classic pcap file`);
  }
  const versionMajor = dv.getUint16(4, le);
  const versionMinor = dv.getUint16(6, le);
  if (versionMajor !== PCAP_VERSION_MAJOR) throw new RangeError(`pcap: version ${versionMajor}.${versionMinor} is not 2.x`);
  const records: PcapFileRecord[] = [];
  const frac = nanosecond ? 1e-6 : 1e-3;
  let p = PCAP_HEADER_SIZE;
  while (p < file.length) {
    if (p + PCAP_RECORD_HEADER_SIZE > file.length) throw new RangeError(`pcap: record ${records.length}: header cut short`);
    const caplen = dv.getUint32(p + 8, le);
    if (p + PCAP_RECORD_HEADER_SIZE + caplen > file.length) {
      throw new RangeError(`pcap: record ${records.length}: caplen ${caplen} past the end of the file`);
    }
    records.push({
      timeMs: dv.getUint32(p, le) * 1000 + dv.getUint32(p + 4, le) * frac,
      origLen: dv.getUint32(p + 12, le),
      data: file.subarray(p + PCAP_RECORD_HEADER_SIZE, p + PCAP_RECORD_HEADER_SIZE + caplen),
    });
    p += PCAP_RECORD_HEADER_SIZE + caplen;
  }
  return {
    nanosecond,
    bigEndian: !le,
    versionMajor,
    versionMinor,
    snaplen: dv.getUint32(16, le),
    linktype: dv.getUint32(20, le),
    records,
  };
}
