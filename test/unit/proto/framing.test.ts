import { describe, expect, it, vi } from 'vitest';
import protobuf from 'protobufjs';
import {
  FrameDecoder,
  FramingError,
  MAX_MESSAGE_BYTES,
  encodeFrame,
  prefixSize,
} from '../../../src/proto/framing.js';

function body(size: number, seed = 1): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function catchFraming(fn: () => unknown): FramingError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FramingError);
    return err as FramingError;
  }
  throw new Error('expected a FramingError');
}

describe('encodeFrame', () => {
  it('writes the same bytes as protobufjs writeDelimited', () => {
    for (const size of [0, 1, 127, 128, 300, 16383, 16384, 70000]) {
      const b = body(size);
      const reference = protobuf.Writer.create().bytes(b).finish();
      expect(Buffer.from(encodeFrame(b)).equals(Buffer.from(reference))).toBe(true);
    }
  });

  it('sizes the prefix at the varint boundaries', () => {
    expect([0, 127, 128, 16383, 16384, MAX_MESSAGE_BYTES].map(prefixSize)).toEqual([1, 1, 2, 2, 3, 3]);
  });

  it('refuses to encode a body over the limit', () => {
    const err = catchFraming(() => encodeFrame(new Uint8Array(MAX_MESSAGE_BYTES + 1)));
    expect(err.reason).toBe('oversize');
    expect(encodeFrame(new Uint8Array(MAX_MESSAGE_BYTES)).length).toBe(MAX_MESSAGE_BYTES + 3);
  });
});

describe('FrameDecoder', () => {
  it('round-trips bodies of every prefix size, including empty and the maximum', () => {
    const sizes = [0, 1, 127, 128, 300, 16384, MAX_MESSAGE_BYTES];
    for (const size of sizes) {
      const d = new FrameDecoder();
      const b = body(size, size);
      const out = d.push(encodeFrame(b));
      expect(out.length).toBe(1);
      expect(Buffer.from(out[0]!).equals(Buffer.from(b))).toBe(true);
      expect(d.idle).toBe(true);
    }
  });

  it('reassembles messages split at every byte position', () => {
    const bodies = [body(0), body(5, 2), body(200, 3), body(130, 4)];
    const stream = Buffer.concat(bodies.map((b) => encodeFrame(b)));
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const out = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(out.map((b) => Buffer.from(b).toString('hex'))).toEqual(bodies.map((b) => Buffer.from(b).toString('hex')));
    }
    // and one byte at a time
    const d = new FrameDecoder();
    const out: Uint8Array[] = [];
    for (const byte of stream) {
      out.push(...d.push(Uint8Array.of(byte)));
      if (out.length < bodies.length) expect(d.bufferedBytes).toBeLessThanOrEqual(202);
    }
    expect(out.length).toBe(bodies.length);
    expect(Buffer.from(out[2]!).equals(Buffer.from(bodies[2]!))).toBe(true);
  });

  it('yields many messages from one chunk, in order', () => {
    const bodies = Array.from({ length: 1000 }, (_, i) => body(i % 150, i));
    const out = new FrameDecoder().push(Buffer.concat(bodies.map((b) => encodeFrame(b))));
    expect(out.length).toBe(1000);
    out.forEach((b, i) => expect(Buffer.from(b).equals(Buffer.from(bodies[i]!))).toBe(true));
  });

  it('keeps a partial frame across pushes and reports it', () => {
    const d = new FrameDecoder();
    const frame = encodeFrame(body(100));
    expect(d.push(frame.subarray(0, 40))).toEqual([]);
    expect(d.idle).toBe(false);
    expect(d.bufferedBytes).toBe(39); // body bytes after the 1-byte prefix
    const err = catchFraming(() => d.end());
    expect(err.reason).toBe('truncated');
    expect(err.message).toMatch(/39 of 100 body bytes/);
  });

  it('end() at a frame boundary is fine', () => {
    const d = new FrameDecoder();
    d.push(encodeFrame(body(3)));
    expect(() => d.end()).not.toThrow();
  });

  it('rejects an oversize length from the prefix alone, before allocating a body', () => {
    const alloc = vi.spyOn(Buffer, 'allocUnsafe');
    try {
      const d = new FrameDecoder();
      // varint(MAX + 1) and not a single body byte
      const n = MAX_MESSAGE_BYTES + 1;
      const varint = Uint8Array.of((n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, n >> 14);
      const err = catchFraming(() => d.push(varint));
      expect(err.reason).toBe('oversize');
      expect(err.message).toContain(String(MAX_MESSAGE_BYTES));
      expect(alloc).not.toHaveBeenCalled();
    } finally {
      alloc.mockRestore();
    }
  });

  it('rejects a huge length even before its varint is complete', () => {
    const d = new FrameDecoder();
    // 0xff 0xff 0xff (continuation still set): already > 2 MiB after three bytes
    expect(d.push(Uint8Array.of(0xff, 0xff))).toEqual([]);
    const err = catchFraming(() => d.push(Uint8Array.of(0xff)));
    expect(err.reason).toBe('oversize');
  });

  it('honours a smaller maxMessageBytes', () => {
    const d = new FrameDecoder({ maxMessageBytes: 10 });
    expect(d.push(encodeFrame(body(10))).length).toBe(1);
    expect(catchFraming(() => d.push(encodeFrame(body(11)))).reason).toBe('oversize');
  });

  it('rejects a length prefix longer than 5 bytes as malformed', () => {
    const d = new FrameDecoder();
    // value stays 0, so only the length of the varint is wrong
    const err = catchFraming(() => d.push(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x00)));
    expect(err.reason).toBe('malformed_length');
    expect(err.name).toBe('FramingError');
  });

  it('stays failed after an error', () => {
    const d = new FrameDecoder();
    const first = catchFraming(() => d.push(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80)));
    const again = catchFraming(() => d.push(encodeFrame(body(1))));
    expect(again).toBe(first);
  });

  it('accepts a non-canonical but short prefix', () => {
    // 0x85 0x00 is a 2-byte encoding of 5
    const out = new FrameDecoder().push(Buffer.concat([Uint8Array.of(0x85, 0x00), body(5)]));
    expect(out.length).toBe(1);
    expect(out[0]!.length).toBe(5);
  });
});
