/**
 * Fuzz target "proto": the protobuf decoders that turn a peer's or a client's bytes into
 * messages (src/proto/schema.ts) — decodePeerMessage (control channel, sync/channel.ts),
 * decodeMgmtRequest (management socket, mgmt/server.ts), decodeMgmtReply (limectl),
 * decodeReplEntry (entries inside a PeerMessage, and the journal) and decodeReplSnapshot —
 * on arbitrary bytes, valid encodings generated from lime.proto (arbitraries/proto.ts)
 * and byte-level mutations of those.
 *
 * For every input: the decoder returns a message or throws MessageDecodeError ("cannot
 * decode …", which the channel and the server turn into a logged close) — never any other
 * error. A valid encoding always decodes. A decoded message is a fixed point: encoding it
 * and decoding again gives the same message (so what the daemon logs, stores in its
 * journal or forwards is what it received).
 *
 * Findings are saved in test/fixtures/fuzz-regression/proto/*.json ({ "comment", "decoder":
 * one of DECODERS' names, "hex", "decodes"?: the expected outcome }) and replayed here.
 */
import fc from 'fast-check';
import type protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  MessageDecodeError,
  MgmtReplyType,
  MgmtRequestType,
  PeerMessageType,
  ReplEntryType,
  ReplSnapshotType,
  decodeMessage,
  decodeMgmtReply,
  decodeMgmtRequest,
  decodePeerMessage,
  decodeReplEntry,
  decodeReplSnapshot,
  encodeMessage,
} from '../../src/proto/schema.js';
import { encodingOf } from './arbitraries/proto.js';
import { mutated } from './arbitraries/mutate.js';
import { fuzzCheck, testTimeout, type Budget } from './budget.js';
import { hexBytes, jsonRegressions, replay } from './regressions.js';

interface Decoder {
  type: protobuf.Type;
  decode: (bytes: Uint8Array) => unknown;
}

const DECODERS: Record<string, Decoder> = {
  PeerMessage: { type: PeerMessageType, decode: decodePeerMessage },
  MgmtRequest: { type: MgmtRequestType, decode: decodeMgmtRequest },
  MgmtReply: { type: MgmtReplyType, decode: decodeMgmtReply },
  ReplEntry: { type: ReplEntryType, decode: decodeReplEntry },
  ReplSnapshot: { type: ReplSnapshotType, decode: decodeReplSnapshot },
};
const NAMES = Object.keys(DECODERS);

/** Decodes `bytes` as `name`; returns whether it decoded. Checks every invariant. */
function checkDecode(name: string, bytes: Uint8Array): boolean {
  const d = DECODERS[name]!;
  try {
    d.decode(bytes);
  } catch (err) {
    if (!(err instanceof MessageDecodeError)) throw new Error(`${name}: not a MessageDecodeError: ${String(err)}`, { cause: err });
    expect(err.message).toMatch(new RegExp(`^cannot decode ${d.type.name}: `));
    return false;
  }
  const once = decodeMessage(d.type, bytes);
  const twice = decodeMessage(d.type, encodeMessage(d.type, once));
  expect(comparable(twice), `${name} re-encoded`).toEqual(comparable(once));
  return true;
}

/** `value` with every bytes field as a plain array: a Buffer and a Uint8Array of the same bytes are the same field. */
function comparable(value: unknown): unknown {
  if (ArrayBuffer.isView(value)) return [...new Uint8Array(value.buffer, value.byteOffset, value.byteLength)];
  if (Array.isArray(value)) return value.map(comparable);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, comparable(v)]));
  return value;
}

const decoderName = fc.constantFrom(...NAMES);
/** A decoder and a valid encoding of its message. */
const validInput = decoderName.chain((name) => encodingOf(DECODERS[name]!.type).map((bytes) => ({ name, bytes })));

const BUDGET = {
  random: { share: 0.2, cost: 1 },
  valid: { share: 0.3, cost: 4 },
  mutated: { share: 0.5, cost: 4 },
} satisfies Record<string, Budget>;

describe('fuzz: protobuf decoders of the control channel and the management socket', () => {
  it('return a message or MessageDecodeError on arbitrary bytes', () => {
    const bytes = fc.uint8Array({ maxLength: 120 });
    fuzzCheck('proto/random', fc.property(decoderName, bytes, (name, b) => void checkDecode(name, b)), BUDGET.random);
  }, testTimeout(BUDGET.random));

  it('decode every valid encoding (unknown fields included) to a fixed point', () => {
    fuzzCheck('proto/valid', fc.property(validInput, ({ name, bytes }) => void expect(checkDecode(name, bytes)).toBe(true)), BUDGET.valid);
  }, testTimeout(BUDGET.valid));

  it('return a message or MessageDecodeError on mutated valid encodings', () => {
    let decoded = 0;
    const input = decoderName.chain((name) => mutated(encodingOf(DECODERS[name]!.type)).map((bytes) => ({ name, bytes })));
    fuzzCheck('proto/mutated', fc.property(input, ({ name, bytes }) => void (decoded += checkDecode(name, bytes) ? 1 : 0)), BUDGET.mutated);
    expect(decoded, 'mutants that still decode (the deep paths were reached)').toBeGreaterThan(0);
  }, testTimeout(BUDGET.mutated));

  it('replays the saved findings (test/fixtures/fuzz-regression/proto)', () => {
    const ran = replay(jsonRegressions<{ decoder: string; hex: string; decodes?: boolean }>('proto'), ({ decoder, hex, decodes }) => {
      expect(NAMES).toContain(decoder);
      const ok = checkDecode(decoder, hexBytes(hex));
      if (decodes !== undefined) expect(ok, 'decodes').toBe(decodes);
    });
    expect(ran).toBeGreaterThan(0);
  });
});
