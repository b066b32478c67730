/**
 * The site-to-site channel over real sockets on 127.0.0.1 (ports picked by the kernel):
 * mutual TLS with test certificates made by openssl (test/helpers/certs.ts), insecure
 * mode on loopback, and hand-rolled peers (raw sockets + encodeFrame) that send what a
 * PeerChannel never would. Timing assertions are one-sided and generous: the machine is
 * shared.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import protobuf from 'protobufjs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FrameDecoder, encodeFrame } from '../../../src/proto/framing.js';
import {
  MessageDecodeError,
  PROTOCOL_VERSION,
  decodePeerMessage,
  encodePeerMessage,
  type PeerHello,
  type PeerHelloReply,
  type PeerMessage,
  type UnknownBody,
} from '../../../src/proto/schema.js';
import {
  ChannelConfigError,
  PeerChannel,
  isLoopbackHost,
  type LogLevel,
  type PeerChannelOptions,
  type PeerSession,
} from '../../../src/sync/channel.js';
import { haveOpenssl, makeTestCerts, type TestCerts, type TestIdentity } from '../../helpers/certs.js';
import { describeWhen } from '../../helpers/root.js';

interface LogLine {
  level: LogLevel;
  msg: string;
  fields: Record<string, unknown> | undefined;
}

/** A channel under test and everything it reported. */
interface Rig {
  channel: PeerChannel;
  logs: LogLine[];
  ups: PeerSession[];
  downs: Array<{ session: PeerSession; reason: string; at: number }>;
  /** 'up' / 'down' in the order they were emitted. */
  events: string[];
}

const LOOPBACK = '127.0.0.1';
const WAIT = { timeout: 5000, interval: 10 };

let rigs: Rig[] = [];
let peers: RawPeer[] = [];
let servers: net.Server[] = [];
let sockets: net.Socket[] = [];

afterEach(async () => {
  for (const r of rigs) await r.channel.close();
  for (const p of peers) p.socket.destroy();
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  rigs = [];
  peers = [];
  servers = [];
  sockets = [];
});

type RigOptions = Partial<PeerChannelOptions> & Pick<PeerChannelOptions, 'site' | 'peerName'>;

function makeRig(opts: RigOptions): Rig {
  const logs: LogLine[] = [];
  const channel = new PeerChannel({
    capabilities: [`caps-of-${opts.site}`],
    position: () => ({ log_id: `log-of-${opts.site}`, applied_seq: 0 }),
    log: (level, msg, fields) => logs.push({ level, msg, fields }),
    ...opts,
  });
  const r: Rig = { channel, logs, ups: [], downs: [], events: [] };
  channel.on('up', (session) => {
    r.ups.push(session);
    r.events.push(`up ${session.remoteAddress}`);
  });
  channel.on('down', (session, reason) => {
    r.downs.push({ session, reason, at: performance.now() });
    r.events.push(`down ${session.remoteAddress}`);
  });
  rigs.push(r);
  return r;
}

async function startRig(opts: RigOptions): Promise<Rig> {
  const r = makeRig(opts);
  await r.channel.start();
  return r;
}

/** Log lines at warn or above whose message matches. */
function problems(r: Rig, pattern: RegExp): LogLine[] {
  return r.logs.filter((l) => (l.level === 'warn' || l.level === 'error') && pattern.test(l.msg));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function helloFrom(site: string, overrides: Partial<PeerHello> = {}): PeerMessage {
  return {
    version: PROTOCOL_VERSION,
    body: 'hello',
    hello: { protocol_version: PROTOCOL_VERSION, site, capabilities: ['raw'], dead_peer_ms: 60_000, log_id: 'raw-log', applied_seq: 42, ...overrides },
  };
}

function replyFrom(site: string, overrides: Partial<PeerHelloReply> = {}): PeerMessage {
  return {
    version: PROTOCOL_VERSION,
    body: 'hello_reply',
    hello_reply: {
      accepted: true,
      reason: '',
      protocol_version: PROTOCOL_VERSION,
      site,
      capabilities: ['raw'],
      dead_peer_ms: 60_000,
      log_id: 'raw-log',
      applied_seq: 42,
      ...overrides,
    },
  };
}

/** A hand-rolled peer on a raw socket: sends what it is told, records what it gets. */
class RawPeer {
  readonly messages: Array<PeerMessage | UnknownBody> = [];
  nBytes = 0;
  closed = false;
  /** Kept: the socket forgets it once closed. */
  readonly localPort: number;
  private readonly decoder = new FrameDecoder();

  constructor(readonly socket: net.Socket) {
    this.localPort = socket.localPort!;
    socket.on('data', (chunk: Buffer) => {
      this.nBytes += chunk.length;
      for (const body of this.decoder.push(chunk)) this.messages.push(decodePeerMessage(body));
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
    peers.push(this);
  }

  static connect(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: LOOPBACK, port });
      socket.once('connect', () => resolve(new RawPeer(socket)));
      socket.once('error', reject);
    });
  }


  send(message: PeerMessage): void {
    this.socket.write(encodeFrame(encodePeerMessage(message)));
  }

  writeRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  of<B extends PeerMessage['body']>(body: B): Array<Extract<PeerMessage, { body: B }>> {
    return this.messages.filter((m): m is Extract<PeerMessage, { body: B }> => m.body === body);
  }

  /** Send hello as `site` and wait for the hello_reply. */
  async hello(site: string, overrides: Partial<PeerHello> = {}): Promise<PeerHelloReply> {
    this.send(helloFrom(site, overrides));
    await vi.waitFor(() => expect(this.of('hello_reply')).toHaveLength(1), WAIT);
    return this.of('hello_reply')[0]!.hello_reply;
  }

  async waitClosed(): Promise<void> {
    await vi.waitFor(() => expect(this.closed).toBe(true), WAIT);
  }
}

/** A port nothing listens on (just released by the kernel; good enough on loopback). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** How many of each kind of libuv handle/request are active (sockets, servers, timers). */
function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

/** A hand-rolled acceptor: answers every hello with `reply(hello)`. */
async function rawAcceptor(reply: (hello: PeerHello) => PeerMessage): Promise<{ port: number; peers: RawPeer[] }> {
  const accepted: RawPeer[] = [];
  const server = net.createServer((socket) => {
    const peer = new RawPeer(socket);
    accepted.push(peer);
    let answered = false;
    socket.on('data', () => {
      const hello = peer.of('hello')[0];
      if (hello && !answered && socket.writable) {
        answered = true;
        peer.send(reply(hello.hello));
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  return { port: (server.address() as net.AddressInfo).port, peers: accepted };
}

describe('isLoopbackHost', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.255.3.4', true],
    ['localhost', true],
    ['LocalHost', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['128.0.0.1', false],
    ['10.0.0.1', false],
    ['0.0.0.0', false],
    ['::', false],
    ['::2', false],
    ['::ffff:10.0.0.1', false],
    ['fe80::1%lo', false],
    ['site-b.example', false],
    ['localhost.example', false],
    ['', false],
  ])('%s → %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});

describe('PeerChannel configuration', () => {
  const base = {
    site: 'site-a',
    peerName: 'site-b',
    capabilities: [],
    position: () => ({ log_id: '', applied_seq: 0 }),
    log: () => {},
  };
  const pem = { ca: 'ca', cert: 'cert', key: 'key' };

  function configError(opts: Partial<PeerChannelOptions>): ChannelConfigError {
    try {
      new PeerChannel({ ...base, ...opts });
    } catch (err) {
      expect(err).toBeInstanceOf(ChannelConfigError);
      return err as ChannelConfigError;
    }
    throw new Error('expected a ChannelConfigError');
  }

  it('refuses insecure with a non-loopback listen host, saying loopback', () => {
    const err = configError({ insecure: true, listen: { host: '10.1.2.3', port: 7000 } });
    expect(err.message).toMatch(/loopback/);
    expect(err.message).toContain('10.1.2.3');
  });

  it('refuses insecure with a non-loopback dial host even when the listen host is loopback', () => {
    const err = configError({ insecure: true, listen: { host: LOOPBACK, port: 0 }, dial: { host: 'site-b.example', port: 7000 } });
    expect(err.message).toMatch(/loopback/);
    expect(err.message).toContain('site-b.example');
  });

  it('refuses a channel without TLS that is not insecure', () => {
    expect(configError({ listen: { host: LOOPBACK, port: 0 } }).message).toMatch(/TLS/);
  });

  it('refuses tls and insecure together', () => {
    expect(configError({ tls: pem, insecure: true, listen: { host: LOOPBACK, port: 0 } }).message).toMatch(/both/);
  });

  it('refuses a channel that neither listens nor dials', () => {
    expect(configError({ tls: pem }).message).toMatch(/neither listen nor dial/);
  });

  it('refuses a peer with this site’s own name, and a maxMessageBytes too small for a hello', () => {
    expect(configError({ tls: pem, peerName: 'site-a', listen: { host: LOOPBACK, port: 0 } }).message).toMatch(/both named/);
    expect(configError({ tls: pem, listen: { host: LOOPBACK, port: 0 }, maxMessageBytes: 10 }).message).toMatch(/maxMessageBytes/);
  });

  it('accepts insecure on loopback (IPv4, IPv6, localhost) and TLS anywhere', () => {
    expect(() => new PeerChannel({ ...base, insecure: true, listen: { host: '::1', port: 0 }, dial: { host: 'localhost', port: 1 } })).not.toThrow();
    expect(() => new PeerChannel({ ...base, tls: pem, listen: { host: '0.0.0.0', port: 0 }, dial: { host: '10.1.2.3', port: 7000 } })).not.toThrow();
  });
});

describe('PeerChannel in insecure mode (plain TCP on loopback)', () => {
  async function acceptor(opts: Partial<RigOptions> = {}): Promise<Rig> {
    return startRig({ site: 'site-a', peerName: 'site-b', insecure: true, listen: { host: LOOPBACK, port: 0 }, ...opts });
  }

  it('connects two channels and passes each side’s hello information to the other', async () => {
    const a = await acceptor({ position: () => ({ log_id: 'log-A', applied_seq: 17 }) });
    const b = await startRig({
      site: 'site-b',
      peerName: 'site-a',
      insecure: true,
      dial: { host: LOOPBACK, port: a.channel.listenPort! },
      position: () => ({ log_id: 'log-B', applied_seq: 5 }),
    });
    await vi.waitFor(() => {
      expect(a.ups).toHaveLength(1);
      expect(b.ups).toHaveLength(1);
    }, WAIT);
    const [onA, onB] = [a.ups[0]!, b.ups[0]!];
    expect(onA.peerSite).toBe('site-b');
    expect(onB.peerSite).toBe('site-a');
    expect(onA.tlsIdentity).toBe('insecure');
    expect(onA.capabilities).toEqual(['caps-of-site-b']);
    expect(onB.capabilities).toEqual(['caps-of-site-a']);
    expect(onA.peerPosition).toEqual({ log_id: 'log-B', applied_seq: 5 });
    expect(onB.peerPosition).toEqual({ log_id: 'log-A', applied_seq: 17 });
    expect(onA.direction).toBe('accepted');
    expect(onB.direction).toBe('dialed');
    expect(a.channel.session).toBe(onA);
  });

  it('settles on one connection when both sites dial each other at once', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = makeRig({ site: 'site-a', peerName: 'site-b', insecure: true, listen: { host: LOOPBACK, port: portA }, dial: { host: LOOPBACK, port: portB } });
    const b = makeRig({ site: 'site-b', peerName: 'site-a', insecure: true, listen: { host: LOOPBACK, port: portB }, dial: { host: LOOPBACK, port: portA } });
    await Promise.all([a.channel.start(), b.channel.start()]);
    await vi.waitFor(() => {
      expect(a.channel.session?.isOpen).toBe(true);
      expect(b.channel.session?.isOpen).toBe(true);
    }, WAIT);
    await sleep(500); // let any crossing connection be dropped
    const [onA, onB] = [a.channel.session!, b.channel.session!];
    expect(onA.isOpen && onB.isOpen).toBe(true);
    // The same TCP connection at both ends: one dialed it, the other accepted it.
    expect([onA.direction, onB.direction].sort()).toEqual(['accepted', 'dialed']);
    const [dialer, listenPort] = onA.direction === 'dialed' ? [onA, portB] : [onB, portA];
    expect(dialer.remoteAddress).toBe(`${LOOPBACK}:${listenPort}`);
    // At most one replacement at each end (crossing connections must not flap), and every
    // session that came up and is not the live one went down again.
    expect(a.ups.length).toBeLessThanOrEqual(2);
    expect(b.ups.length).toBeLessThanOrEqual(2);
    expect(a.ups.length - a.downs.length).toBe(1);
    expect(b.ups.length - b.downs.length).toBe(1);
  });

  it('says goodbye on close(): the other side goes down with the reason, and the closed side does not redial', async () => {
    const a = await acceptor();
    const b = await startRig({ site: 'site-b', peerName: 'site-a', insecure: true, dial: { host: LOOPBACK, port: a.channel.listenPort! } });
    await vi.waitFor(() => expect(a.ups).toHaveLength(1), WAIT);
    await b.channel.close();
    await vi.waitFor(() => expect(a.downs).toHaveLength(1), WAIT);
    expect(a.downs[0]!.reason).toMatch(/shutting down/);
    expect(b.downs.map((d) => d.reason)).toEqual(['shutting down']);
    expect(b.ups[0]!.isOpen).toBe(false);
    await sleep(300); // several redial periods
    expect(a.ups).toHaveLength(1);
  });

  it('stops the listener when close() comes while start() is still binding', async () => {
    const a = makeRig({ site: 'site-a', peerName: 'site-b', insecure: true, listen: { host: LOOPBACK, port: 0 } });
    const started = a.channel.start();
    await a.channel.close();
    await started;
    expect(a.channel.listenPort).toBeGreaterThan(0);
    await expect(RawPeer.connect(a.channel.listenPort!)).rejects.toThrow(/ECONNREFUSED/);
    await expect(a.channel.start()).rejects.toThrow(/closed/);
  });

  it('keeps redialing a peer that is not there yet, logging the failure once, and connects when it appears', async () => {
    const port = await freePort();
    const b = await startRig({ site: 'site-b', peerName: 'site-a', insecure: true, dial: { host: LOOPBACK, port } });
    await sleep(800); // attempts at about 0, 100, 300 and 700 ms
    const refused = b.logs.filter((l) => l.msg.startsWith(`cannot connect to peer site-a at ${LOOPBACK}:${port}`));
    expect(refused.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(refused.filter((l) => l.level === 'debug').length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeLessThanOrEqual(6); // backing off, not spinning
    const a = await acceptor({ listen: { host: LOOPBACK, port } });
    await vi.waitFor(() => {
      expect(a.ups).toHaveLength(1);
      expect(b.ups).toHaveLength(1);
    }, WAIT);
  });

  it('refuses a hello of another protocol version, with both versions in the reply and the log', async () => {
    const a = await acceptor();
    const peer = await RawPeer.connect(a.channel.listenPort!);
    const reply = await peer.hello('site-b', { protocol_version: PROTOCOL_VERSION + 1 });
    expect(reply.accepted).toBe(false);
    const both = new RegExp(`version ${PROTOCOL_VERSION + 1}\\b.*\\b${PROTOCOL_VERSION}\\b`);
    expect(reply.reason).toMatch(both);
    expect(reply.protocol_version).toBe(PROTOCOL_VERSION);
    await peer.waitClosed();
    expect(problems(a, both)).toHaveLength(1);
    expect(problems(a, both)[0]!.level).toBe('error');
    expect(a.ups).toHaveLength(0);
  });

  it('refuses a hello from a site other than the configured peer', async () => {
    const a = await acceptor();
    const peer = await RawPeer.connect(a.channel.listenPort!);
    const reply = await peer.hello('site-z');
    expect(reply.accepted).toBe(false);
    expect(reply.reason).toMatch(/site-z.*site-b/);
    await peer.waitClosed();
    expect(problems(a, /site-z/)).toHaveLength(1);
    expect(a.ups).toHaveLength(0);
  });

  it('as the dialer, refuses a reply of another protocol version (goodbye, logged) and logs a refusal it receives', async () => {
    const newer = await rawAcceptor(() => replyFrom('site-a', { protocol_version: PROTOCOL_VERSION + 1 }));
    const b = await startRig({ site: 'site-b', peerName: 'site-a', insecure: true, dial: { host: LOOPBACK, port: newer.port } });
    const both = new RegExp(`version ${PROTOCOL_VERSION + 1}\\b.*\\b${PROTOCOL_VERSION}\\b`);
    await vi.waitFor(() => expect(problems(b, both).length).toBeGreaterThan(0), WAIT);
    await vi.waitFor(() => expect(newer.peers[0]!.of('goodbye')).toHaveLength(1), WAIT);
    const goodbye = newer.peers[0]!.of('goodbye')[0]!.goodbye;
    expect(goodbye.code).toBe('BAD_REQUEST');
    expect(goodbye.reason).toMatch(both);
    expect(b.ups).toHaveLength(0);

    const refusing = await rawAcceptor(() => replyFrom('site-a', { accepted: false, reason: 'closed for maintenance' }));
    const c = await startRig({ site: 'site-b', peerName: 'site-a', insecure: true, dial: { host: LOOPBACK, port: refusing.port } });
    await vi.waitFor(() => expect(problems(c, /refused the handshake: closed for maintenance/).length).toBeGreaterThan(0), WAIT);
    expect(c.ups).toHaveLength(0);
  });

  describe('closes a connection that sends bad input, logs why, and keeps serving', () => {
    const MAX = 4096;
    // Field 50 with wire type 7, which does not exist: not a PeerMessage.
    const GARBAGE = Uint8Array.of(0x97, 0x03, 0x01, 0x02);
    // version = PROTOCOL_VERSION, then field 99 (length-delimited): a body this build does not know.
    const UNKNOWN = protobuf.Writer.create()
      .uint32((1 << 3) | 0)
      .uint32(PROTOCOL_VERSION)
      .uint32((99 << 3) | 2)
      .bytes(Uint8Array.of(1, 2, 3))
      .finish();

    it('uses bad inputs that are what the cases below say they are', () => {
      expect(() => decodePeerMessage(GARBAGE)).toThrow(MessageDecodeError);
      expect(decodePeerMessage(UNKNOWN).body).toBeUndefined();
      expect(decodePeerMessage(UNKNOWN).version).toBe(PROTOCOL_VERSION);
    });

    const cases: Array<{ name: string; afterHello: boolean; goodbye: boolean; send: (p: RawPeer) => void; reason: RegExp }> = [
      {
        name: 'a valid frame that is not a PeerMessage',
        afterHello: true,
        goodbye: true,
        send: (p) => p.writeRaw(encodeFrame(GARBAGE)),
        reason: /cannot decode PeerMessage/,
      },
      {
        name: 'a length prefix over maxMessageBytes',
        afterHello: true,
        goodbye: true,
        // The prefix alone (2 bytes for 4097): the body is never sent.
        send: (p) => p.writeRaw(encodeFrame(new Uint8Array(MAX + 1)).subarray(0, 2)),
        reason: new RegExp(`${MAX + 1} bytes, more than the ${MAX}-byte limit`),
      },
      {
        name: 'a truncated message',
        afterHello: true,
        goodbye: false,
        send: (p) => {
          p.writeRaw(Buffer.concat([Buffer.from([100]), Buffer.alloc(10, 0x41)]));
          p.socket.end();
        },
        reason: /stream ended inside a frame \(10 of 100 body bytes/,
      },
      {
        name: 'a message of an unknown type',
        afterHello: true,
        goodbye: true,
        send: (p) => p.writeRaw(encodeFrame(UNKNOWN)),
        reason: /unknown type/,
      },
      {
        name: 'a second hello after the handshake',
        afterHello: true,
        goodbye: true,
        send: (p) => p.send(helloFrom('site-b')),
        reason: /unexpected hello after the handshake/,
      },
      {
        name: 'a heartbeat before hello',
        afterHello: false,
        goodbye: true,
        send: (p) => p.send({ version: PROTOCOL_VERSION, body: 'heartbeat', heartbeat: { sent_at: 1, reply: false } }),
        reason: /heartbeat before the handshake completed/,
      },
      {
        name: 'garbage before hello',
        afterHello: false,
        goodbye: true,
        send: (p) => p.writeRaw(encodeFrame(GARBAGE)),
        reason: /cannot decode PeerMessage/,
      },
    ];

    it.each(cases)('$name', async ({ afterHello, goodbye, send, reason }) => {
      const a = await acceptor({ maxMessageBytes: MAX, deadPeerMs: 10_000 });
      const port = a.channel.listenPort!;
      const bad = await RawPeer.connect(port);
      if (afterHello) {
        expect((await bad.hello('site-b')).accepted).toBe(true);
        await vi.waitFor(() => expect(a.ups).toHaveLength(1), WAIT);
      }
      send(bad);
      await bad.waitClosed();

      // Logged with the reason and the peer's address.
      const logged = problems(a, reason);
      expect(logged).toHaveLength(1);
      expect(logged[0]!.msg).toContain(`${LOOPBACK}:${bad.localPort}`);
      if (goodbye) {
        const said = bad.of('goodbye');
        expect(said).toHaveLength(1);
        expect(said[0]!.goodbye.code).toBe('BAD_REQUEST');
        expect(said[0]!.goodbye.reason).toMatch(reason);
      }
      if (afterHello) {
        expect(a.downs).toHaveLength(1);
        expect(a.downs[0]!.reason).toMatch(reason);
      }

      // The listener still accepts a good peer.
      const good = await RawPeer.connect(port);
      expect((await good.hello('site-b')).accepted).toBe(true);
      await vi.waitFor(() => expect(a.ups).toHaveLength(afterHello ? 2 : 1), WAIT);
    });
  });

  it('closes a connection that sends no hello within deadPeerMs', async () => {
    const a = await acceptor({ deadPeerMs: 300 });
    const t0 = performance.now();
    const idle = await RawPeer.connect(a.channel.listenPort!);
    await idle.waitClosed();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(300);
    expect(problems(a, /no hello within 300 ms/)).toHaveLength(1);
    expect(a.ups).toHaveLength(0);
  });

  it('declares a silent peer dead after deadPeerMs, having sent it heartbeats', async () => {
    const a = await acceptor({ deadPeerMs: 300 });
    const silent = await RawPeer.connect(a.channel.listenPort!);
    const t0 = performance.now(); // before the hello: the server cannot have heard anything earlier
    expect((await silent.hello('site-b')).accepted).toBe(true);
    await vi.waitFor(() => expect(a.downs).toHaveLength(1), WAIT);
    const down = a.downs[0]!;
    expect(down.reason).toMatch(/silent/);
    expect(down.at - t0).toBeGreaterThanOrEqual(300);
    expect(down.session).toBe(a.ups[0]);
    expect(silent.of('heartbeat').filter((m) => !m.heartbeat.reply).length).toBeGreaterThan(0);
    await silent.waitClosed();
  });

  it('answers heartbeats, echoing sent_at', async () => {
    const a = await acceptor({ deadPeerMs: 10_000 });
    const peer = await RawPeer.connect(a.channel.listenPort!);
    await peer.hello('site-b');
    peer.send({ version: PROTOCOL_VERSION, body: 'heartbeat', heartbeat: { sent_at: 12345.5, reply: false } });
    await vi.waitFor(() => expect(peer.of('heartbeat').filter((m) => m.heartbeat.reply)).toHaveLength(1), WAIT);
    expect(peer.of('heartbeat').find((m) => m.heartbeat.reply)!.heartbeat.sent_at).toBe(12345.5);
  });

  it('replaces the live session with a newly accepted one (old: goodbye, down before the new up)', async () => {
    const a = await acceptor({ deadPeerMs: 10_000 });
    const first = await RawPeer.connect(a.channel.listenPort!);
    await first.hello('site-b');
    await vi.waitFor(() => expect(a.ups).toHaveLength(1), WAIT);
    const second = await RawPeer.connect(a.channel.listenPort!);
    expect((await second.hello('site-b')).accepted).toBe(true);
    await first.waitClosed();
    expect(first.of('goodbye').map((m) => m.goodbye.reason)).toEqual(['replaced by a new connection']);
    expect(a.events).toEqual([
      `up ${LOOPBACK}:${first.localPort}`,
      `down ${LOOPBACK}:${first.localPort}`,
      `up ${LOOPBACK}:${second.localPort}`,
    ]);
    expect(a.channel.session).toBe(a.ups[1]);
    expect(second.closed).toBe(false);
  });
});

describeWhen(haveOpenssl(), 'the openssl CLI (Debian package openssl)', 'PeerChannel over mutual TLS', () => {
  let certs: TestCerts;
  beforeAll(() => {
    certs = makeTestCerts();
  });

  async function tlsAcceptor(identity: TestIdentity, opts: Partial<RigOptions> = {}): Promise<Rig> {
    return startRig({
      site: 'site-a',
      peerName: 'site-b',
      listen: { host: LOOPBACK, port: 0 },
      tls: { ca: certs.ca, ...identity },
      ...opts,
    });
  }

  async function tlsDialer(identity: TestIdentity, port: number, opts: Partial<RigOptions> = {}): Promise<Rig> {
    return startRig({
      site: 'site-b',
      peerName: 'site-a',
      dial: { host: LOOPBACK, port },
      tls: { ca: certs.ca, ...identity },
      ...opts,
    });
  }

  it('connects site-b to site-a: both up, peers named by site and certificate, heartbeats keep it alive', async () => {
    const a = await tlsAcceptor(certs.siteA, { deadPeerMs: 300 });
    const b = await tlsDialer(certs.siteB, a.channel.listenPort!, { deadPeerMs: 300 });
    await vi.waitFor(() => {
      expect(a.ups).toHaveLength(1);
      expect(b.ups).toHaveLength(1);
    }, WAIT);
    const [onA, onB] = [a.ups[0]!, b.ups[0]!];
    expect(onA.peerSite).toBe('site-b');
    expect(onB.peerSite).toBe('site-a');
    expect(onA.tlsIdentity).toMatch(/CN=site-b/);
    expect(onA.tlsIdentity).toMatch(/DNS:site-b/);
    expect(onB.tlsIdentity).toMatch(/DNS:site-a/);
    expect(onB.remoteAddress).toBe(`${LOOPBACK}:${a.channel.listenPort}`);

    // A heartbeat round trip on each side.
    await vi.waitFor(() => {
      expect(onA.rttMs).toBeTypeOf('number');
      expect(onB.rttMs).toBeTypeOf('number');
    }, WAIT);
    expect(onA.rttMs!).toBeGreaterThanOrEqual(0);
    expect(onB.rttMs!).toBeGreaterThanOrEqual(0);

    // Well past deadPeerMs, the heartbeats have kept the session up on both sides.
    await sleep(1000);
    expect(a.downs).toEqual([]);
    expect(b.downs).toEqual([]);
    expect(onA.isOpen && onB.isOpen).toBe(true);
  });

  it('leaves no socket, server or timer behind after close()', async () => {
    const before = activeResources();
    const a = await tlsAcceptor(certs.siteA, { deadPeerMs: 300 });
    const b = await tlsDialer(certs.siteB, a.channel.listenPort!, { deadPeerMs: 300 });
    await vi.waitFor(() => expect(b.ups[0]?.rttMs).toBeTypeOf('number'), WAIT);
    expect(activeResources()).not.toEqual(before);
    await b.channel.close();
    await a.channel.close();
    await sleep(20); // libuv finishes closing handles on its next loop turn
    const after = activeResources();
    for (const kind of ['TCPSocketWrap', 'TCPServerWrap', 'TLSWrap']) expect(after[kind] ?? 0, kind).toBe(before[kind] ?? 0);
    // vitest may hold a timer of its own; ours must all be gone.
    expect(after['Timeout'] ?? 0).toBeLessThanOrEqual(before['Timeout'] ?? 0);
  });

  const refusals: Array<{ name: string; acceptor: () => TestIdentity; dialer: () => TestIdentity; refuser: 'acceptor' | 'dialer'; reason: RegExp; acceptorToo?: RegExp }> = [
    {
      name: 'a client certificate from another CA',
      acceptor: () => certs.siteA,
      dialer: () => certs.siteBOtherCa,
      refuser: 'acceptor',
      reason: /refused a peer connection from 127\.0\.0\.1:\d+: .*not signed by the configured CA/,
    },
    {
      name: 'an expired client certificate',
      acceptor: () => certs.siteA,
      dialer: () => certs.siteBExpired,
      refuser: 'acceptor',
      reason: /refused a peer connection from 127\.0\.0\.1:\d+: .*expired/,
    },
    {
      name: 'a client certificate for the wrong name',
      acceptor: () => certs.siteA,
      dialer: () => certs.mallory,
      refuser: 'acceptor',
      reason: /refused a peer connection from 127\.0\.0\.1:\d+: certificate is for .*mallory.*, expected site-b/,
    },
    {
      name: 'a server certificate for the wrong name',
      acceptor: () => certs.mallory,
      dialer: () => certs.siteB,
      refuser: 'dialer',
      reason: /TLS handshake with peer site-a .*failed: .*mallory/,
      // The acceptor sees the dialer hang up, and says from where.
      acceptorToo: /TLS handshake with 127\.0\.0\.1:\d+ failed: .*hung up/,
    },
  ];

  it.each(refusals)('refuses $name and logs why', async ({ acceptor, dialer, refuser, reason, acceptorToo }) => {
    const a = await tlsAcceptor(acceptor());
    const b = await tlsDialer(dialer(), a.channel.listenPort!);
    const refusing = refuser === 'acceptor' ? a : b;
    await vi.waitFor(() => expect(problems(refusing, reason).length).toBeGreaterThan(0), WAIT);
    if (acceptorToo) await vi.waitFor(() => expect(problems(a, acceptorToo).length).toBeGreaterThan(0), WAIT);
    await sleep(400); // a few redials
    expect(a.ups).toHaveLength(0);
    expect(b.ups).toHaveLength(0);
  });

  it('gives a plain TCP client nothing, closes it, and logs the failed TLS handshake', async () => {
    const a = await tlsAcceptor(certs.siteA);
    const plain = await RawPeer.connect(a.channel.listenPort!);
    plain.send(helloFrom('site-b'));
    await plain.waitClosed();
    expect(plain.nBytes).toBe(0);
    expect(problems(a, new RegExp(`TLS handshake with ${LOOPBACK}:${plain.localPort} failed`))).toHaveLength(1);
    expect(a.ups).toHaveLength(0);
  });

  it('redials after the connection is cut and comes up again on both sides', async () => {
    const a = await tlsAcceptor(certs.siteA);
    // A TCP proxy between the two, so the test can cut the connection under both.
    const pipes: net.Socket[] = [];
    const proxy = net.createServer((client) => {
      const upstream = net.connect({ host: LOOPBACK, port: a.channel.listenPort! });
      for (const s of [client, upstream]) {
        s.on('error', () => {});
        pipes.push(s);
        sockets.push(s);
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    servers.push(proxy);
    await new Promise<void>((resolve) => proxy.listen(0, LOOPBACK, resolve));
    const b = await tlsDialer(certs.siteB, (proxy.address() as net.AddressInfo).port);
    await vi.waitFor(() => {
      expect(a.ups).toHaveLength(1);
      expect(b.ups).toHaveLength(1);
    }, WAIT);

    for (const s of pipes) s.destroy();
    await vi.waitFor(() => {
      expect(a.downs).toHaveLength(1);
      expect(b.downs).toHaveLength(1);
    }, WAIT);
    expect(b.ups[0]!.isOpen).toBe(false);

    await vi.waitFor(() => {
      expect(a.ups).toHaveLength(2);
      expect(b.ups).toHaveLength(2);
    }, WAIT);
    expect(b.ups[1]).not.toBe(b.ups[0]);
    expect(b.ups[1]!.isOpen).toBe(true);
    expect(b.channel.session).toBe(b.ups[1]);
  });
});
