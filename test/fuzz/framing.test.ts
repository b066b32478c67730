/**
 * Fuzz target "framing": the length-prefix decoder every lime stream goes through first
 * (src/proto/framing.ts FrameDecoder, used by sync/channel.ts and mgmt/server.ts), fed
 * streams of valid frames (canonical and padded prefixes, bodies up to the limit, a cut
 * tail), their byte-level mutations and random bytes, each in a random chunking.
 *
 * The decoder is held against a one-shot reference (decodeWhole below, the framing rules
 * applied to the whole stream at once). For every stream and chunking: the bodies it
 * yields are the reference's (all of them, or — when the stream breaks the rules — a
 * prefix of them: bodies completed in the chunk that breaks the rules are dropped with it,
 * the connection is closed anyway); it fails with FramingError of the reference's reason
 * and nothing else, and stays failed; end() says `truncated` exactly when the stream
 * stops inside a frame; and it never allocates, nor holds, more than maxMessageBytes for a
 * body whatever size a prefix announces.
 *
 * Findings are saved in test/fixtures/fuzz-regression/framing/*.json ({ "comment", "hex",
 * "max": maxMessageBytes, "cuts": chunk boundaries or "bytewise" }) and replayed here.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { FrameDecoder, FramingError, MAX_MESSAGE_BYTES, encodeFrame, type FramingErrorReason } from '../../src/proto/framing.js';
import { mutated } from './arbitraries/mutate.js';
import { fuzzCheck, testTimeout, type Budget } from './budget.js';
import { hexBytes, jsonRegressions, replay } from './regressions.js';

interface Whole {
  bodies: Uint8Array[];
  error: FramingErrorReason | undefined;
  /** The stream ends inside a frame (only meaningful without an error). */
  partial: boolean;
}

/** The framing rules (framing.ts) applied to a whole stream, the simplest way. */
function decodeWhole(s: Uint8Array, max: number): Whole {
  const bodies: Uint8Array[] = [];
  let i = 0;
  while (i < s.length) {
    let size = 0;
    for (let n = 1, scale = 1; ; n++, scale *= 128) {
      if (i >= s.length) return { bodies, error: undefined, partial: true };
      const b = s[i++]!;
      size += (b & 0x7f) * scale;
      if (size > max) return { bodies, error: 'oversize', partial: false };
      if ((b & 0x80) === 0) break;
      if (n >= 5) return { bodies, error: 'malformed_length', partial: false };
    }
    if (s.length - i < size) return { bodies, error: undefined, partial: true };
    bodies.push(s.subarray(i, i + size));
    i += size;
  }
  return { bodies, error: undefined, partial: false };
}

let allocations: MockInstance<typeof Buffer.allocUnsafe>;
beforeAll(() => {
  allocations = vi.spyOn(Buffer, 'allocUnsafe');
});
afterAll(() => allocations.mockRestore());

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Chunk boundaries: sorted offsets into the stream, or one chunk per byte. */
type Cuts = readonly number[] | 'bytewise';

/** Feeds `stream` cut at `cuts` to a decoder; checks it against decodeWhole. */
function checkStream(stream: Uint8Array, max: number, cuts: Cuts): void {
  const want = decodeWhole(stream, max);
  const decoder = new FrameDecoder({ maxMessageBytes: max });
  const got: Uint8Array[] = [];
  let failure: unknown;
  allocations.mockClear();
  const inner = cuts === 'bytewise' ? Array.from({ length: stream.length }, (_, i) => i) : cuts;
  const bounds = [0, ...inner.filter((c) => c > 0 && c < stream.length), stream.length];
  for (let k = 0; k + 1 < bounds.length && failure === undefined; k++) {
    const chunk = Buffer.from(stream.buffer, stream.byteOffset + bounds[k]!, bounds[k + 1]! - bounds[k]!);
    try {
      got.push(...decoder.push(chunk).map((b) => Uint8Array.from(b))); // copies: views of a chunk are the caller's to keep or not
    } catch (err) {
      failure = err;
    }
    expect(decoder.bufferedBytes).toBeLessThanOrEqual(max + 5);
  }
  for (const [size] of allocations.mock.calls) expect(size, 'allocation for a body').toBeLessThanOrEqual(max);
  if (want.error !== undefined) {
    expect(failure, 'decoder error').toBeInstanceOf(FramingError);
    expect((failure as FramingError).reason).toBe(want.error);
    expect(want.bodies.slice(0, got.length).map(hex)).toEqual(got.map(hex));
    expect(() => decoder.push(Uint8Array.of(0)), 'stays failed').toThrow(failure as Error);
    expect(() => decoder.end()).toThrow(failure as Error);
    return;
  }
  if (failure !== undefined) throw new Error(`unexpected decoder failure: ${String(failure)}`, { cause: failure });
  expect(got.map(hex)).toEqual(want.bodies.map(hex));
  expect(decoder.idle).toBe(!want.partial);
  if (want.partial) {
    expect(() => decoder.end()).toThrow(FramingError);
    expect(() => decoder.end()).toThrow(expect.objectContaining({ reason: 'truncated' }) as Error);
  } else {
    expect(() => decoder.end()).not.toThrow();
  }
}

/** Limits worth testing: tiny (every size field matters), varint boundaries, the default. */
const maxBytes = fc.constantFrom(0, 1, 127, 128, 300, 16384, MAX_MESSAGE_BYTES);

/** A frame whose prefix may be padded with 0x80 continuation bytes (non-canonical, allowed up to 5 bytes). */
const frame = fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 3 })).map(([body, pad]) => {
  const canonical = encodeFrame(body, Number.MAX_SAFE_INTEGER);
  const prefixLen = canonical.length - body.length;
  if (pad === 0 || prefixLen + pad > 5) return Uint8Array.from(canonical);
  const prefix = [...canonical.subarray(0, prefixLen)];
  prefix[prefix.length - 1]! |= 0x80;
  for (let i = 1; i < pad; i++) prefix.push(0x80);
  prefix.push(0);
  return Uint8Array.from([...prefix, ...body]);
});

/** Valid frames back to back, the last possibly cut short. */
const validStream = fc.tuple(fc.array(frame, { maxLength: 6 }), fc.option(fc.nat(), { nil: undefined })).map(([frames, cut]) => {
  const s = Buffer.concat(frames);
  return Uint8Array.from(cut === undefined || s.length === 0 ? s : s.subarray(0, cut % s.length));
});

/** Chunk boundaries: none, a few anywhere, or every byte. */
const cuts: fc.Arbitrary<Cuts> = fc.oneof(
  fc.constant([]),
  fc.array(fc.nat({ max: 2000 }), { maxLength: 8 }).map((c) => [...c].sort((a, b) => a - b)),
  fc.constant('bytewise' as const),
);

const BUDGET = {
  valid: { share: 0.3, cost: 2 },
  mutated: { share: 0.4, cost: 2 },
  random: { share: 0.3, cost: 1 },
} satisfies Record<string, Budget>;

describe('fuzz: length-prefix framing (FrameDecoder)', () => {
  it('reassembles valid streams in any chunking, under any limit', () => {
    fuzzCheck('framing/valid', fc.property(validStream, maxBytes, cuts, (s, m, c) => checkStream(s, m, c)), BUDGET.valid);
  }, testTimeout(BUDGET.valid));

  it('matches the reference on mutated streams', () => {
    fuzzCheck('framing/mutated', fc.property(mutated(validStream, 3), maxBytes, cuts, (s, m, c) => checkStream(s, m, c)), BUDGET.mutated);
  }, testTimeout(BUDGET.mutated));

  it('matches the reference on random bytes, and never allocates past the limit', () => {
    fuzzCheck('framing/random', fc.property(fc.uint8Array({ maxLength: 64 }), maxBytes, cuts, (s, m, c) => checkStream(s, m, c)), BUDGET.random);
  }, testTimeout(BUDGET.random));

  it('replays the saved findings (test/fixtures/fuzz-regression/framing)', () => {
    const ran = replay(jsonRegressions<{ hex: string; max: number; cuts: Cuts }>('framing'), ({ hex: h, max, cuts: c }) => {
      checkStream(hexBytes(h), max, c);
    });
    expect(ran).toBeGreaterThan(0);
  });
});
