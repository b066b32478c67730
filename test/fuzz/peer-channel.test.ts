/**
 * Fuzz target "peer-channel": the site-to-site control channel's accepting side end to end
 * (src/sync/channel.ts, insecure mode on loopback): bytes on a real TCP connection →
 * FrameDecoder → decodePeerMessage → handshake, heartbeats, goodbye and out-of-turn checks.
 *
 * Each case opens a connection, sometimes completes a valid handshake first, then sends
 * random bytes, mutated frames of generated PeerMessages or frames of valid but arbitrary
 * PeerMessages, in random chunks, and hangs up. Whatever arrives, the channel closes that
 * connection at worst, with a reason — never an "internal error" (an exception inside its
 * socket callbacks, caught by its guard) — and a peer that then says a proper hello is
 * still accepted.
 *
 * Findings are saved in test/fixtures/fuzz-regression/peer-channel/*.json ({ "comment",
 * "handshake": boolean, "chunks": [hex, …] }) and replayed here.
 */
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameDecoder, encodeFrame } from '../../src/proto/framing.js';
import { PROTOCOL_VERSION, PeerMessageType, decodePeerMessage, encodePeerMessage, type PeerMessage } from '../../src/proto/schema.js';
import { PeerChannel } from '../../src/sync/channel.js';
import { mutated } from './arbitraries/mutate.js';
import { encodingOf } from './arbitraries/proto.js';
import { fuzzCheckAsync, testTimeout, type Budget } from './budget.js';
import { hexBytes, jsonRegressions } from './regressions.js';

const LOOPBACK = '127.0.0.1';
/** Log messages that mean an exception escaped into the channel's guards. */
const BUG = /internal error|cannot accept a peer connection/;

let channel: PeerChannel;
let port: number;
const bugs: string[] = [];
let ups = 0;

beforeAll(async () => {
  channel = new PeerChannel({
    site: 'b',
    peerName: 'a',
    listen: { host: LOOPBACK, port: 0 },
    insecure: true,
    deadPeerMs: 5000,
    capabilities: ['fuzz'],
    position: () => ({ log_id: 'log-b', applied_seq: 0 }),
    log: (level, msg, fields) => {
      if (BUG.test(msg)) bugs.push(`${level} ${msg} ${JSON.stringify(fields)}`);
    },
  });
  channel.on('up', () => ups++);
  channel.on('message', () => {}); // replication bodies: the sync core's, not under test here
  await channel.start();
  port = channel.listenPort!;
});
afterAll(async () => {
  await channel?.close();
});

const HELLO: PeerMessage = {
  version: PROTOCOL_VERSION,
  body: 'hello',
  hello: { protocol_version: PROTOCOL_VERSION, site: 'a', capabilities: [], dead_peer_ms: 5000, log_id: 'log-a', applied_seq: 0 },
};

/** A raw connection to the channel that collects what it answers. */
async function connect(): Promise<{ socket: net.Socket; replies: PeerMessage['body'][]; closed: Promise<void> }> {
  const socket = net.connect({ host: LOOPBACK, port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const decoder = new FrameDecoder();
  const replies: PeerMessage['body'][] = [];
  socket.on('data', (chunk) => {
    for (const b of decoder.push(chunk)) replies.push(decodePeerMessage(b).body as PeerMessage['body']);
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, replies, closed };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** One case: optional handshake, the chunks, hang up; then a proper peer is still accepted. */
async function checkConnection(handshake: boolean, chunks: readonly Uint8Array[]): Promise<void> {
  const before = bugs.length;
  const bad = await connect();
  if (handshake) bad.socket.write(encodeFrame(encodePeerMessage(HELLO)));
  for (const c of chunks) if (!bad.socket.destroyed) bad.socket.write(c);
  bad.socket.end();
  await within(bad.closed, 8000, 'the channel closing the fuzzed connection');
  expect(bugs.slice(before), 'internal errors logged by the channel').toEqual([]);

  const upsBefore = ups;
  const good = await connect();
  try {
    good.socket.write(encodeFrame(encodePeerMessage(HELLO)));
    await within(
      new Promise<void>((resolve) => {
        const poll = (): void => void (good.replies.includes('hello_reply') && ups > upsBefore ? resolve() : setTimeout(poll, 2));
        poll();
      }),
      5000,
      'a proper hello accepted after the fuzzed connection',
    );
  } finally {
    good.socket.destroy();
    await good.closed;
  }
}

const frameOf = (b: Uint8Array): Uint8Array => encodeFrame(b);
const chunk = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 40 }),
  encodingOf(PeerMessageType).map(frameOf),
  mutated(encodingOf(PeerMessageType).map(frameOf), 3),
);

const BUDGET = { connections: { share: 1, cost: 25 } } satisfies Record<string, Budget>;

describe('fuzz: control channel (accepting side) over a real socket', () => {
  it('closes a connection carrying anything at worst, and keeps accepting proper peers', async () => {
    await fuzzCheckAsync('peer-channel/connections', fc.asyncProperty(fc.boolean(), fc.array(chunk, { minLength: 1, maxLength: 4 }), checkConnection), BUDGET.connections);
  }, testTimeout(BUDGET.connections));

  it('replays the saved findings (test/fixtures/fuzz-regression/peer-channel)', async () => {
    const saved = jsonRegressions<{ handshake: boolean; chunks: string[] }>('peer-channel');
    for (const { name, input } of saved) {
      await checkConnection(input.handshake, input.chunks.map(hexBytes)).catch((err: Error) => {
        throw new Error(`regression ${name}: ${err.message}`, { cause: err });
      });
    }
    expect(saved.length).toBeGreaterThan(0);
  });
});
