/**
 * Text forms of MAC, IPv4 and IPv6 addresses, for configuration, the CLI and logs.
 *
 * These are edge helpers: they may allocate, and parsers throw a RangeError whose message
 * quotes the bad text. The hot path never formats or parses text; it keeps addresses as
 * numbers (a MAC as `hi` = first 2 bytes, `lo` = last 4 bytes, as in the flow key; an IPv4
 * address as an unsigned 32-bit number; an IPv6 address as 16 bytes or 4 words).
 */
import { isIPv4, isIPv6 } from 'node:net';

/** A MAC address as the flow key holds it: hi = bytes 0-1, lo = bytes 2-5 (unsigned). */
export interface Mac {
  hi: number;
  lo: number;
}

const MAC_RE = /^([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})$/i;

/** Parses "02:00:00:00:00:01" (or with '-'; 1-2 hex digits per byte). */
export function parseMac(text: string): Mac {
  const m = MAC_RE.exec(text);
  if (m === null) throw new RangeError(`invalid MAC address "${text}"`);
  const b = (i: number): number => parseInt(m[i]!, 16);
  return { hi: (b(1) << 8) | b(2), lo: ((b(3) << 24) | (b(4) << 16) | (b(5) << 8) | b(6)) >>> 0 };
}

function hex2(n: number): string {
  return (n & 0xff).toString(16).padStart(2, '0');
}

/** "aa:bb:cc:dd:ee:ff", lower case. */
export function formatMac(hi: number, lo: number): string {
  return `${hex2(hi >>> 8)}:${hex2(hi)}:${hex2(lo >>> 24)}:${hex2(lo >>> 16)}:${hex2(lo >>> 8)}:${hex2(lo)}`;
}

/** The 6 bytes of a MAC, in a new array. */
export function macToBytes(mac: Mac): Uint8Array {
  const { hi, lo } = mac;
  return Uint8Array.of(hi >>> 8, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff);
}

/** The MAC in bytes[off … off+6). */
export function macFromBytes(bytes: Uint8Array, off = 0): Mac {
  return {
    hi: (bytes[off]! << 8) | bytes[off + 1]!,
    lo: ((bytes[off + 2]! << 24) | (bytes[off + 3]! << 16) | (bytes[off + 4]! << 8) | bytes[off + 5]!) >>> 0,
  };
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipv4Byte(s: string, text: string): number {
  const n = Number(s);
  if (n > 255 || (s.length > 1 && s[0] === '0')) throw new RangeError(`invalid IPv4 address "${text}"`);
  return n;
}

/** Parses dotted-quad "10.0.0.1" into an unsigned 32-bit number. Leading zeros are refused. */
export function parseIpv4(text: string): number {
  const m = IPV4_RE.exec(text);
  if (m === null) throw new RangeError(`invalid IPv4 address "${text}"`);
  return (
    ((ipv4Byte(m[1]!, text) << 24) |
      (ipv4Byte(m[2]!, text) << 16) |
      (ipv4Byte(m[3]!, text) << 8) |
      ipv4Byte(m[4]!, text)) >>>
    0
  );
}

export function formatIpv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

/**
 * Parses an IPv6 address (RFC 4291 §2.2: full, "::"-compressed, or with a dotted IPv4
 * tail) into 16 bytes.
 */
export function parseIpv6(text: string): Uint8Array {
  const bad = (): RangeError => new RangeError(`invalid IPv6 address "${text}"`);
  let s = text;
  // A trailing dotted IPv4 address is rewritten as its two hex groups.
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.indexOf('.', lastColon) > lastColon) {
    let v4: number;
    try {
      v4 = parseIpv4(s.slice(lastColon + 1));
    } catch {
      throw bad();
    }
    s = `${s.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) throw bad();
  const parseGroups = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').map((g) => {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) throw bad();
      return parseInt(g, 16);
    });
  };
  const head = parseGroups(halves[0]!);
  let all: number[];
  if (halves.length === 2) {
    const rest = parseGroups(halves[1]!);
    const n = head.length + rest.length;
    if (n > 7) throw bad();
    all = [...head, ...new Array<number>(8 - n).fill(0), ...rest];
  } else {
    all = head;
    if (all.length !== 8) throw bad();
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i]! >>> 8;
    out[2 * i + 1] = all[i]! & 0xff;
  }
  return out;
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (≥ 2) of zero groups as "::". */
export function formatIpv6(bytes: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((bytes[off + 2 * i]! << 8) | bytes[off + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** 16 bytes from the 4 network-order words of the flow key's IPV6_SRC/IPV6_DST. */
export function ipv6FromWords(words: ArrayLike<number>, off = 0): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 4; i++) {
    const w = words[off + i]!;
    out[4 * i] = w >>> 24;
    out[4 * i + 1] = (w >>> 16) & 0xff;
    out[4 * i + 2] = (w >>> 8) & 0xff;
    out[4 * i + 3] = w & 0xff;
  }
  return out;
}

/**
 * True for a loopback host: "localhost", 127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104
 * (IPv4-mapped loopback), also in brackets ("[::1]"). The control channel's rule for
 * `insecure: true` (config validation and the channel itself).
 */
export function isLoopbackHost(host: string): boolean {
  let h = host.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h === 'localhost' || h === 'localhost.') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (!isIPv6(h)) return false;
  let bytes: Uint8Array;
  try {
    bytes = parseIpv6(h);
  } catch {
    return false; // e.g. a zone id ("fe80::1%eth0"): not loopback anyway
  }
  const zeroUpTo = (n: number): boolean => bytes.subarray(0, n).every((b) => b === 0);
  if (zeroUpTo(15) && bytes[15] === 1) return true;
  return zeroUpTo(10) && bytes[10] === 0xff && bytes[11] === 0xff && bytes[12] === 127;
}

/** "HOST:PORT" (HOST an IPv4 address, a name, or [IPv6]) → its parts; undefined if malformed. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}
