/**
 * Big-endian reads and writes over a Uint8Array (a Buffer is one), for the per-protocol
 * accessors. Plain index math: no DataView per call, no allocation, no bounds checks — the
 * caller has checked the length once (extract.ts, or the builder's own size arithmetic).
 * Small enough that V8 inlines them into the callers.
 */

export function rd8(buf: Uint8Array, off: number): number {
  return buf[off]!;
}

export function rd16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

/** Unsigned 32-bit read (result in 0 … 2^32-1). */
export function rd32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function wr8(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v;
}

export function wr16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v;
}

export function wr32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}
