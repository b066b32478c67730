/**
 * Length-delimited framing for every lime stream (management socket now, site-to-site
 * channel later): each message is a varint byte count followed by that many bytes of
 * protobuf — exactly what protobuf's `encodeDelimited`/`writeDelimited` produce, so any
 * protobuf library can speak it.
 *
 * Bounds: a message is at most MAX_MESSAGE_BYTES. The decoder checks the announced size
 * as soon as the varint prefix is known (even before it is complete when the bytes read so
 * far already exceed the bound) and BEFORE buffering or allocating anything for the body,
 * so a peer cannot make us hold more than MAX_MESSAGE_BYTES per connection.
 *
 * Errors: a bad prefix throws FramingError (reason `oversize` or `malformed_length`); the
 * decoder is then dead (every later push throws the same error) and the caller closes the
 * connection with `err.message` as the logged reason. `end()` reports a stream that stopped
 * mid-frame (`truncated`).
 *
 * Cost model: one allocation per message whose body spans chunks; a body wholly inside
 * one chunk is returned as a view of that chunk (no copy).
 */

/** Largest message body, in bytes (1 MiB). Checked before the body is buffered. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** A uint32 varint is at most 5 bytes; a longer prefix is malformed. */
const MAX_PREFIX_BYTES = 5;

export type FramingErrorReason = 'oversize' | 'malformed_length' | 'truncated';

export class FramingError extends Error {
  constructor(
    readonly reason: FramingErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'FramingError';
  }
}

/** Size of the varint prefix for a body of `size` bytes. */
export function prefixSize(size: number): number {
  let n = 1;
  while (size >= 0x80) {
    size = Math.floor(size / 128);
    n++;
  }
  return n;
}

/**
 * One frame: varint(body.length) + body, in a new Buffer. Throws FramingError (`oversize`)
 * for a body larger than `maxMessageBytes`: we never send what the peer must refuse.
 */
export function encodeFrame(body: Uint8Array, maxMessageBytes = MAX_MESSAGE_BYTES): Buffer {
  const size = body.length;
  if (size > maxMessageBytes) {
    throw new FramingError('oversize', `message of ${size} bytes exceeds the ${maxMessageBytes}-byte limit`);
  }
  const out = Buffer.allocUnsafe(prefixSize(size) + size);
  let off = 0;
  let rest = size;
  while (rest >= 0x80) {
    out[off++] = (rest & 0x7f) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[off++] = rest;
  out.set(body, off);
  return out;
}

/**
 * Streaming decoder: feed it the chunks a socket delivers, get back complete bodies.
 *
 * State: either reading a prefix (`prefixValue` so far, `prefixBytes` consumed) or filling
 * a body (`body` allocated at the announced size, `bodyFilled` bytes in it).
 */
export class FrameDecoder {
  readonly maxMessageBytes: number;
  private prefixValue = 0;
  private prefixBytes = 0;
  private prefixScale = 1;
  private body: Buffer | undefined;
  private bodyFilled = 0;
  private failure: FramingError | undefined;

  constructor(opts: { maxMessageBytes?: number } = {}) {
    this.maxMessageBytes = opts.maxMessageBytes ?? MAX_MESSAGE_BYTES;
  }

  /** Bytes of the incomplete message held so far (prefix bytes while the prefix is incomplete, then body bytes). */
  get bufferedBytes(): number {
    return this.prefixBytes + this.bodyFilled;
  }

  /** True when the stream is at a frame boundary (nothing partial held). */
  get idle(): boolean {
    return this.prefixBytes === 0 && this.body === undefined;
  }

  /**
   * Consume `chunk`; return the bodies it completes, in order (possibly none). Throws
   * FramingError on a bad prefix; the decoder then stays failed.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure) throw this.failure;
    const out: Uint8Array[] = [];
    let off = 0;
    const end = chunk.length;
    while (off < end) {
      if (this.body === undefined) {
        // Prefix: one byte at a time, bound checked after every byte.
        const b = chunk[off++]!;
        this.prefixValue += (b & 0x7f) * this.prefixScale;
        this.prefixScale *= 128;
        this.prefixBytes++;
        if (this.prefixValue > this.maxMessageBytes) {
          return this.fail(
            'oversize',
            `frame announces ${b & 0x80 ? 'at least ' : ''}${this.prefixValue} bytes, more than the ${this.maxMessageBytes}-byte limit`,
          );
        }
        if (b & 0x80) {
          if (this.prefixBytes >= MAX_PREFIX_BYTES) {
            return this.fail('malformed_length', `frame length prefix is longer than ${MAX_PREFIX_BYTES} bytes`);
          }
          continue;
        }
        const size = this.prefixValue;
        this.prefixValue = 0;
        this.prefixBytes = 0;
        this.prefixScale = 1;
        if (end - off >= size) {
          // Whole body in this chunk: hand out a view, no copy.
          out.push(chunk.subarray(off, off + size));
          off += size;
        } else {
          this.body = Buffer.allocUnsafe(size);
          this.bodyFilled = 0;
        }
      } else {
        const body = this.body;
        const take = Math.min(body.length - this.bodyFilled, end - off);
        body.set(chunk.subarray(off, off + take), this.bodyFilled);
        this.bodyFilled += take;
        off += take;
        if (this.bodyFilled === body.length) {
          out.push(body);
          this.body = undefined;
          this.bodyFilled = 0;
        }
      }
    }
    return out;
  }

  /** The stream ended: throws FramingError (`truncated`) if it stopped mid-frame. */
  end(): void {
    if (this.failure) throw this.failure;
    if (!this.idle) {
      const what = this.body
        ? `${this.bodyFilled} of ${this.body.length} body bytes`
        : `${this.prefixBytes} length-prefix byte(s)`;
      this.fail('truncated', `stream ended inside a frame (${what} received)`);
    }
  }

  private fail(reason: FramingErrorReason, message: string): never {
    this.failure = new FramingError(reason, message);
    this.body = undefined;
    throw this.failure;
  }
}
