/**
 * The site-to-site control channel transport: one limed talks to its peer limed over TCP,
 * carrying length-delimited PeerMessages (src/proto/lime.proto, "Site-to-site channel").
 * This module is the thin adapter between sockets and the sync core: it authenticates the
 * peer, runs the version handshake and heartbeats, and hands every other message up
 * unread. It owns sockets and timers; it knows nothing of replication (the position in the
 * hello is opaque to it).
 *
 * Security: TLS with mutual certificate authentication (minimum TLS 1.2). Both ends
 * present a certificate signed by the configured CA, and each checks that the other's
 * certificate names the configured peer (SAN DNS name or CN, as tls.checkServerIdentity
 * matches them). Plain TCP only with `insecure: true` AND every configured host (listen
 * and dial) on loopback; any other combination throws ChannelConfigError from the
 * constructor, with a message saying why. Insecure mode authenticates nothing: any local
 * process can connect and name itself the peer in its hello (it is for tests and demos).
 *
 * Deviation from "rejectUnauthorized: true" on the server: with it, Node verifies the
 * client's chain after the handshake and destroys the socket silently (tlsClientError
 * reports only "socket hang up"), so an expired or foreign certificate could not be
 * logged with its reason. The server therefore uses rejectUnauthorized: false and checks
 * `socket.authorized` itself in 'secureConnection', before a single byte of the peer is
 * read; refused sockets are destroyed. The dialer keeps Node's default checks, with the
 * identity check made against the peer name (not the dialled host).
 *
 * Connection, in order (one PeerConnection per socket):
 *   1. the dialer connects (TLS handshake included), then sends `hello`;
 *   2. the acceptor checks protocol_version and site (= its peerName) and answers
 *      `hello_reply` accepted, or refused with the reason and closes;
 *   3. the dialer checks the reply the same way (a mismatch → goodbye and close);
 *   4. both sides are up: a PeerSession is emitted ('up'); heartbeats every deadPeerMs/3
 *      (and one at once, so rttMs is known early); a heartbeat is answered with
 *      reply=true echoing sent_at, which gives the round-trip time;
 *   5. nothing received for deadPeerMs → goodbye, close, 'down' ("peer silent for N ms").
 * Steps 1–3 must complete within deadPeerMs of the connection starting (an absolute
 * deadline: a peer trickling bytes cannot hold a pending connection open). A goodbye is
 * accepted at any time and closes the connection with the peer's reason.
 *
 * Failure policy (nothing here throws out of a socket callback; each connection fails on
 * its own):
 *   - a framing error (oversize length prefix, malformed prefix), bytes that do not decode
 *     as a PeerMessage, a body this build does not know, or a message out of turn (anything
 *     but hello/hello_reply before the handshake, hello/hello_reply after it) → goodbye
 *     BAD_REQUEST with the reason, a warn log naming the peer address and the reason,
 *     close;
 *   - the stream ending mid-frame → logged (warn) with the reason, closed (no goodbye: the
 *     peer has stopped sending and Node ends our side too);
 *   - TLS handshake failures are logged with OpenSSL's reason: on the accepting side from
 *     'tlsClientError' (a plain TCP client gets nothing back, not even a protobuf byte),
 *     on the dialing side from the socket's 'error';
 *   - a listener of 'up'/'down'/'message' that throws is logged at error level.
 * A closing connection writes its goodbye, ends the socket, and destroys it if the peer has
 * not closed within CLOSE_GRACE_MS.
 *
 * One live session at a time: a newly completed handshake replaces the current session
 * (the old one gets goodbye "replaced by a new connection"; its 'down' comes before the
 * new 'up'). So a peer that restarted is accepted at once, without waiting for the dead
 * session's silence timeout. The one exception is when both sites dial and the two
 * connections cross (the new one runs in the other direction from the current one): then
 * both ends keep the connection dialed by the site whose name sorts first, and drop the
 * other — "newest wins" alone would have each end keep a different one and close both.
 *
 * Dialing: while started and without a live session, the dialer keeps one connection
 * attempt going; after a failure or a 'down' it redials after a backoff of 100 ms doubling
 * to 2 s, reset when a session comes up. A dial problem that repeats unchanged is logged
 * once at warn/error and then at debug, so a peer that is down for an hour does not
 * flood the log.
 *
 * Bounds: every message ≤ maxMessageBytes (checked by FrameDecoder before buffering, and
 * by encodeFrame before sending); at most MAX_PEER_CONNECTIONS sockets per listener (the
 * rest are dropped and logged); a pending connection lives at most deadPeerMs in the TLS
 * handshake (handshakeTimeout) and deadPeerMs more for the hello. Output is
 * bounded only by the caller honouring send()'s `false` (wait for the session's 'drain');
 * heartbeats are written regardless (a few bytes per deadPeerMs/3). A hard cap on unsent
 * bytes is left for when replication sends bulk data.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { FrameDecoder, FramingError, MAX_MESSAGE_BYTES, encodeFrame } from '../proto/framing.js';
import {
  type ErrorCode,
  type PeerGoodbye,
  type PeerHelloReply,
  type PeerMessage,
  type UnknownBody,
  PROTOCOL_VERSION,
  decodePeerMessage,
  encodePeerMessage,
} from '../proto/schema.js';
import { isLoopbackHost } from '../util/addr.js';

export { isLoopbackHost };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** Dead-peer time unless configured (the issue: "within a configurable time (default 3 s)"). */
export const DEFAULT_DEAD_PEER_MS = 3000;
/** First redial delay; doubles after each failed attempt up to REDIAL_MAX_MS. */
export const REDIAL_MIN_MS = 100;
export const REDIAL_MAX_MS = 2000;
/** How long a closing connection waits for the peer to close before it is destroyed. */
export const CLOSE_GRACE_MS = 1000;
/**
 * Sockets one listener holds at once: the live session, a replacement, and connections
 * still in their (TLS or hello) handshake, each of which lives at most deadPeerMs. Enough
 * that a stranger opening connections in a loop has a hard time crowding out the peer.
 */
export const MAX_PEER_CONNECTIONS = 32;
/** Smallest maxMessageBytes accepted: a hello must fit. */
export const MIN_MESSAGE_BYTES = 1024;
/**
 * Bytes a session may have queued before send() says wait (the socket's own high-water
 * mark is 16 KiB, less than one snapshot chunk: stopping there made the writer wait for a
 * drain between every two chunks instead of staying ahead of the follower).
 */
export const SEND_AHEAD_BYTES = 1 << 20;

/** Where a site is in the replication log; carried in hello/hello_reply, opaque here. */
export interface ReplicationPosition {
  log_id: string;
  applied_seq: number;
}

export interface Endpoint {
  host: string;
  /** 0 on a listener: any free port (see PeerChannel.listenPort). */
  port: number;
}

/** PEM text or bytes; reading the files named in the config is the daemon's job. */
export interface ChannelTlsOptions {
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
}

export interface PeerChannelOptions {
  /** This site's name (sent in hello; the peer checks it against its peerName). */
  site: string;
  /** The peer's site name: its hello must say it, its certificate must name it. */
  peerName: string;
  listen?: Endpoint;
  /** When set, this side dials the peer (and redials while started). */
  dial?: Endpoint;
  tls?: ChannelTlsOptions;
  /** Plain TCP; allowed only when every configured host is loopback. */
  insecure?: boolean;
  /** Silence after which the peer is declared dead; also the handshake deadline. */
  deadPeerMs?: number;
  maxMessageBytes?: number;
  capabilities: string[];
  position: () => ReplicationPosition;
  log: LogFn;
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
}

/** A channel configuration that cannot work; the message says why. */
export class ChannelConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChannelConfigError';
  }
}

/** start() could not listen (address in use, not local, ...). */
export class ChannelStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChannelStartError';
  }
}

/** The checked, defaulted settings every connection of a channel shares. */
interface Settings {
  site: string;
  peerName: string;
  deadPeerMs: number;
  maxMessageBytes: number;
  capabilities: string[];
  position: () => ReplicationPosition;
  now: () => number;
}

function validate(opts: PeerChannelOptions): void {
  const who = `peer channel to ${JSON.stringify(opts.peerName)}`;
  if (!opts.site) throw new ChannelConfigError(`${who}: the site name is empty`);
  if (!opts.peerName) throw new ChannelConfigError('peer channel: the peer name is empty');
  if (opts.site === opts.peerName) {
    throw new ChannelConfigError(`${who}: this site and its peer are both named ${JSON.stringify(opts.site)}; each site needs its own name`);
  }
  if (!opts.listen && !opts.dial) throw new ChannelConfigError(`${who}: neither listen nor dial is set, so it would never connect`);
  for (const [what, ep] of [['listen', opts.listen], ['dial', opts.dial]] as const) {
    if (!ep) continue;
    if (!ep.host) throw new ChannelConfigError(`${who}: ${what} host is empty`);
    const minPort = what === 'listen' ? 0 : 1;
    if (!Number.isInteger(ep.port) || ep.port < minPort || ep.port > 65535) {
      throw new ChannelConfigError(`${who}: ${what} port ${ep.port} is not in ${minPort}..65535`);
    }
  }
  if (opts.tls && opts.insecure) {
    throw new ChannelConfigError(`${who}: both tls and insecure are set; choose TLS, or plain TCP on loopback`);
  }
  if (opts.insecure) {
    for (const [what, ep] of [['listen', opts.listen], ['dial', opts.dial]] as const) {
      if (ep && !isLoopbackHost(ep.host)) {
        throw new ChannelConfigError(
          `${who}: insecure (plain TCP) is allowed only on loopback, but the ${what} host is ${ep.host}; ` +
            'configure TLS (ca, cert, key) between machines',
        );
      }
    }
  } else if (!opts.tls) {
    throw new ChannelConfigError(`${who}: TLS needs ca, cert and key (plain TCP only with insecure: true on loopback)`);
  } else {
    for (const part of ['ca', 'cert', 'key'] as const) {
      if (!opts.tls[part] || opts.tls[part].length === 0) throw new ChannelConfigError(`${who}: tls ${part} is empty`);
    }
  }
  const dead = opts.deadPeerMs;
  if (dead !== undefined && (!Number.isFinite(dead) || dead < 3)) {
    throw new ChannelConfigError(`${who}: deadPeerMs ${dead} must be a number ≥ 3 (ms)`);
  }
  const max = opts.maxMessageBytes;
  if (max !== undefined && (!Number.isInteger(max) || max < MIN_MESSAGE_BYTES || max > 0xffffffff)) {
    throw new ChannelConfigError(`${who}: maxMessageBytes ${max} must be an integer in ${MIN_MESSAGE_BYTES}..${0xffffffff}`);
  }
}

/** "host:port", with IPv6 in brackets. */
function formatAddress(host: string | undefined, port: number | undefined): string {
  const h = host ?? '?';
  return `${h.includes(':') ? `[${h}]` : h}:${port ?? '?'}`;
}

/**
 * The peer address of an accepted TLS socket, also once a failed handshake has destroyed
 * it: then the address is read from the TCP socket underneath (`_parent`, a Node internal,
 * read defensively; the listener read its address while it was connected).
 */
function tlsPeerAddress(socket: tls.TLSSocket): string {
  if (socket.remoteAddress !== undefined) return formatAddress(socket.remoteAddress, socket.remotePort);
  const parent = (socket as unknown as { _parent?: unknown })._parent;
  if (parent instanceof net.Socket && parent.remoteAddress !== undefined) return formatAddress(parent.remoteAddress, parent.remotePort);
  return 'an unknown address';
}

/** Subject CN and SANs of a peer certificate, e.g. "CN=site-b, DNS:site-b". */
function describeCertificate(cert: tls.PeerCertificate | undefined): string {
  if (!cert || Object.keys(cert).length === 0) return 'no certificate';
  const parts: string[] = [];
  const cn = cert.subject?.CN as string | string[] | undefined;
  if (cn !== undefined) parts.push(`CN=${Array.isArray(cn) ? cn.join('+') : cn}`);
  if (cert.subjectaltname) parts.push(cert.subjectaltname);
  return parts.length > 0 ? parts.join(', ') : 'a certificate with no subject name';
}

/** Why the chain of a presented client certificate was not trusted, in words. */
function untrustedReason(code: string, cert: tls.PeerCertificate | undefined): string {
  if (!cert || Object.keys(cert).length === 0) return 'the peer presented no certificate';
  const what = `certificate for ${describeCertificate(cert)}`;
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return `${what} has expired (valid until ${cert.valid_to}) (${code})`;
    case 'CERT_NOT_YET_VALID':
      return `${what} is not valid yet (valid from ${cert.valid_from}) (${code})`;
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return `${what} is not signed by the configured CA (issuer ${cert.issuer?.CN ?? '?'}) (${code})`;
    default:
      return `${what} is not trusted (${code})`;
  }
}

/** OpenSSL's short reason ("wrong version number") rather than its whole error string. */
function describeError(err: Error): string {
  const reason = (err as { reason?: unknown }).reason;
  const text = typeof reason === 'string' && reason !== '' ? reason : err.message;
  if (/wrong version number|packet length too long|http request/i.test(text)) {
    return `${text} (the other end does not speak TLS: a plain TCP client, or insecure mode there?)`;
  }
  return text;
}

/** Why a hello/hello_reply from the peer is incompatible with this side, or undefined. */
function incompatibility(
  settings: Settings,
  envelopeVersion: number,
  info: { protocol_version: number; site: string },
): string | undefined {
  const theirs = info.protocol_version !== PROTOCOL_VERSION ? info.protocol_version : envelopeVersion;
  const name = info.site || '(unnamed)';
  if (theirs !== PROTOCOL_VERSION) {
    return `peer ${name} speaks protocol version ${theirs}, this limed (${settings.site}) speaks ${PROTOCOL_VERSION}`;
  }
  if (info.site !== settings.peerName) {
    return `peer says it is site ${JSON.stringify(info.site)}, but this limed (${settings.site}) expects ${JSON.stringify(settings.peerName)}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Session: what the sync core sees of a connection once the handshake is done.

/** What a PeerSession needs of its connection. */
interface SessionLink {
  readonly isUp: boolean;
  readonly rttMs: number | undefined;
  write(message: PeerMessage): boolean;
  closeLocally(reason: string): void;
}

/** What the peer said about itself in its hello / hello_reply. */
interface PeerInfo {
  site: string;
  capabilities: string[];
  deadPeerMs: number;
  position: ReplicationPosition;
}

export type SessionEvents = { drain: [] };

/**
 * One live session with the peer. Emits 'drain' when send() returned false and the
 * socket's buffer has emptied. The channel emits 'down' when it ends.
 */
export class PeerSession extends EventEmitter<SessionEvents> {
  readonly peerSite: string;
  readonly capabilities: readonly string[];
  /** The peer certificate's subject CN and SANs ("CN=site-b, DNS:site-b"), or 'insecure'. */
  readonly tlsIdentity: string;
  /** The peer's "host:port". */
  readonly remoteAddress: string;
  /** The peer's replication position from its hello / hello_reply. */
  readonly peerPosition: ReplicationPosition;
  /** The peer's own dead-peer time (each side uses its own; informational). */
  readonly peerDeadPeerMs: number;
  /** Whether this side dialed the connection or accepted it. */
  readonly direction: 'dialed' | 'accepted';

  constructor(
    private readonly link: SessionLink,
    peer: PeerInfo,
    fields: { tlsIdentity: string; remoteAddress: string; direction: 'dialed' | 'accepted' },
  ) {
    super();
    this.peerSite = peer.site;
    this.capabilities = peer.capabilities;
    this.peerPosition = peer.position;
    this.peerDeadPeerMs = peer.deadPeerMs;
    this.tlsIdentity = fields.tlsIdentity;
    this.remoteAddress = fields.remoteAddress;
    this.direction = fields.direction;
  }

  /** Round trip of the last answered heartbeat, ms; undefined until one is answered. */
  get rttMs(): number | undefined {
    return this.link.rttMs;
  }

  /** True until the session ends (then 'down' has been emitted). */
  get isOpen(): boolean {
    return this.link.isUp;
  }

  /**
   * Frame and write `message`. Returns false when the socket holds SEND_AHEAD_BYTES or more
   * unsent (the message is queued; wait for 'drain' before sending more) and when
   * the session has ended (the message is dropped). Throws FramingError for a message
   * larger than maxMessageBytes: the caller must split it.
   */
  send(message: PeerMessage): boolean {
    if (!this.link.isUp) return false;
    return this.link.write(message);
  }

  /** End the session: goodbye with `reason`, close; the channel emits 'down'. */
  close(reason: string): void {
    this.link.closeLocally(reason);
  }
}

// ---------------------------------------------------------------------------------------
// Connection: one socket, from connect/accept to close.

type Role = 'dialer' | 'acceptor';
type Phase = 'connecting' | 'handshake' | 'up' | 'closed';

interface ConnectionHooks {
  up(connection: PeerConnection): void;
  message(connection: PeerConnection, message: PeerMessage): void;
  /** Called once, when the connection starts closing; `reason` says why. */
  ended(connection: PeerConnection, reason: string): void;
}

interface ConnectionOptions {
  socket: net.Socket;
  role: Role;
  address: string;
  /** TLS sockets: the dialer waits for 'secureConnect'; identity comes from the certificate. */
  secure: boolean;
  /** Known for accepted sockets (checked before the connection exists). */
  tlsIdentity?: string;
  settings: Settings;
  log: LogFn;
  hooks: ConnectionHooks;
}

/**
 * The protocol on one socket: framing, handshake, heartbeats, silence detection. The
 * dialer's connection starts in 'connecting'; an accepted one in 'handshake'.
 */
class PeerConnection implements SessionLink {
  readonly socket: net.Socket;
  readonly role: Role;
  readonly address: string;
  /** Resolves when the socket has closed (the channel's close() waits for it). */
  readonly closed: Promise<void>;
  session: PeerSession | undefined;
  rttMs: number | undefined;
  private phase: Phase;
  private tlsIdentity: string;
  private readonly settings: Settings;
  private readonly log: LogFn;
  private readonly hooks: ConnectionHooks;
  private readonly decoder: FrameDecoder;
  private readonly startedAt: number;
  private heardAt: number;
  private tcpConnected = false;
  private peerEnded = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(opts: ConnectionOptions) {
    this.socket = opts.socket;
    this.role = opts.role;
    this.address = opts.address;
    this.settings = opts.settings;
    this.log = opts.log;
    this.hooks = opts.hooks;
    this.tlsIdentity = opts.tlsIdentity ?? (opts.secure ? 'unknown' : 'insecure');
    this.decoder = new FrameDecoder({ maxMessageBytes: opts.settings.maxMessageBytes });
    this.startedAt = this.heardAt = opts.settings.now();
    this.phase = opts.role === 'dialer' ? 'connecting' : 'handshake';
    const socket = opts.socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));

    socket.on('error', (err) => this.guard(() => this.onError(err)));
    socket.on('close', () => this.guard(() => this.onSocketClose()));
    socket.on('end', () => this.guard(() => this.onEnd()));
    socket.on('data', (chunk: Buffer) => this.guard(() => this.onData(chunk)));
    socket.on('drain', () => this.guard(() => this.session?.emit('drain')));
    if (opts.role === 'dialer') {
      socket.once('connect', () => {
        this.tcpConnected = true;
        socket.setNoDelay(true);
        if (!opts.secure) this.guard(() => this.onConnected());
      });
      if (opts.secure) socket.once('secureConnect', () => this.guard(() => this.onConnected()));
    } else {
      socket.setNoDelay(true);
    }
    this.armDeadline();
  }

  get isUp(): boolean {
    return this.phase === 'up';
  }

  /** A method, not a field read, so that TypeScript does not narrow it across calls. */
  private hasClosed(): boolean {
    return this.phase === 'closed';
  }

  write(message: PeerMessage): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    // Past SEND_AHEAD_BYTES the socket's write() has returned false too, so a 'drain' follows.
    const below = this.socket.write(encodeFrame(encodePeerMessage(message), this.settings.maxMessageBytes));
    return below || this.socket.writableLength < SEND_AHEAD_BYTES;
  }

  closeLocally(reason: string): void {
    if (this.phase === 'closed') return;
    this.log('info', `closing the peer connection with ${this.address}: ${reason}`, this.fields({ reason }));
    this.close(reason, 'CODE_UNSPECIFIED');
  }

  /**
   * Stop the protocol: clear timers, say goodbye (when `goodbye` is given and the socket
   * can still carry it), end the socket (destroyed after CLOSE_GRACE_MS at the latest),
   * and tell the channel. Idempotent.
   */
  close(reason: string, goodbye?: ErrorCode): void {
    if (this.phase === 'closed') return;
    const wasConnecting = this.phase === 'connecting';
    this.phase = 'closed';
    this.clearTimers();
    const socket = this.socket;
    if (wasConnecting) {
      socket.destroy();
    } else if (!socket.destroyed) {
      if (goodbye !== undefined && !this.peerEnded) this.sendQuietly({ version: PROTOCOL_VERSION, body: 'goodbye', goodbye: { code: goodbye, reason } });
      socket.end();
      this.graceTimer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    }
    this.hooks.ended(this, reason);
  }

  private fields(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { peer: this.settings.peerName, address: this.address, ...extra };
  }

  /** Run a socket callback; an exception (a bug, or a throwing position()) closes this connection only. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      const reason = `internal error: ${(err as Error).message}`;
      this.log('error', `closing the peer connection with ${this.address}: ${reason}`, this.fields({ reason, stack: (err as Error).stack }));
      this.close(reason, 'FAILED');
    }
  }

  /**
   * Write a control message we built. Encoding can fail only for a configuration that
   * makes it too big (capabilities past maxMessageBytes): logged, not thrown; a hello that
   * never leaves then ends in the handshake deadline, with that log line explaining it.
   */
  private sendQuietly(message: PeerMessage): void {
    try {
      this.write(message);
    } catch (err) {
      this.log('warn', `cannot send ${message.body} to ${this.address}: ${(err as Error).message}`, this.fields());
    }
  }

  private violation(reason: string): void {
    if (this.phase === 'closed') return;
    this.log('warn', `closing the peer connection with ${this.address}: ${reason}`, this.fields({ reason }));
    this.close(reason, 'BAD_REQUEST');
  }

  private onConnected(): void {
    if (this.phase !== 'connecting') return;
    if (this.socket instanceof tls.TLSSocket) this.tlsIdentity = describeCertificate(this.socket.getPeerCertificate());
    this.phase = 'handshake';
    this.log('debug', `connected to peer ${this.settings.peerName} at ${this.address}; sending hello`, this.fields({ identity: this.tlsIdentity }));
    const position = this.settings.position();
    this.sendQuietly({
      version: PROTOCOL_VERSION,
      body: 'hello',
      hello: {
        protocol_version: PROTOCOL_VERSION,
        site: this.settings.site,
        capabilities: this.settings.capabilities,
        dead_peer_ms: Math.round(this.settings.deadPeerMs),
        log_id: position.log_id,
        applied_seq: position.applied_seq,
      },
    });
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.heardAt = this.settings.now();
    let bodies: Uint8Array[];
    try {
      bodies = this.decoder.push(chunk);
    } catch (err) {
      this.violation(err instanceof FramingError ? `framing error: ${err.message}` : (err as Error).message);
      return;
    }
    for (const bytes of bodies) {
      if (this.hasClosed()) return; // an earlier message of this chunk closed the connection
      let message: PeerMessage | UnknownBody;
      try {
        message = decodePeerMessage(bytes);
      } catch (err) {
        // MessageDecodeError: "cannot decode PeerMessage: ..."
        this.violation((err as Error).message);
        return;
      }
      this.dispatch(message);
    }
  }

  private dispatch(message: PeerMessage | UnknownBody): void {
    if (message.body === undefined) {
      this.violation(`message of an unknown type (not in protocol version ${PROTOCOL_VERSION}, sender says version ${message.version})`);
      return;
    }
    if (message.body === 'goodbye') {
      this.onGoodbye(message.goodbye);
      return;
    }
    if (this.phase === 'handshake') {
      if (this.role === 'acceptor') this.onHello(message);
      else this.onHelloReply(message);
      return;
    }
    switch (message.body) {
      case 'heartbeat': {
        const beat = message.heartbeat;
        if (beat.reply) {
          const rtt = this.settings.now() - beat.sent_at;
          if (Number.isFinite(rtt) && rtt >= 0) this.rttMs = rtt;
        } else {
          this.sendQuietly({ version: PROTOCOL_VERSION, body: 'heartbeat', heartbeat: { sent_at: beat.sent_at, reply: true } });
        }
        return;
      }
      case 'hello':
      case 'hello_reply':
        this.violation(`unexpected ${message.body} after the handshake`);
        return;
      default:
        // Replication bodies (none in this protocol version yet) go to the sync core unread.
        this.hooks.message(this, message);
    }
  }

  /** Acceptor, handshake: the first message must be a compatible hello. */
  private onHello(message: PeerMessage): void {
    if (message.body !== 'hello') {
      this.violation(`${message.body} before the handshake completed (expected hello)`);
      return;
    }
    const hello = message.hello;
    const refusal = incompatibility(this.settings, message.version, hello);
    const base: PeerHelloReply = {
      accepted: false,
      reason: '',
      protocol_version: PROTOCOL_VERSION,
      site: this.settings.site,
      capabilities: [],
      dead_peer_ms: Math.round(this.settings.deadPeerMs),
      log_id: '',
      applied_seq: 0,
    };
    if (refusal !== undefined) {
      this.log('error', `refused the handshake with ${this.address}: ${refusal}`, this.fields({ reason: refusal }));
      this.sendQuietly({ version: PROTOCOL_VERSION, body: 'hello_reply', hello_reply: { ...base, reason: refusal } });
      this.close(refusal); // the reply carries the reason; no goodbye
      return;
    }
    const position = this.settings.position();
    this.sendQuietly({
      version: PROTOCOL_VERSION,
      body: 'hello_reply',
      hello_reply: { ...base, accepted: true, capabilities: this.settings.capabilities, log_id: position.log_id, applied_seq: position.applied_seq },
    });
    this.becomeUp({
      site: hello.site,
      capabilities: hello.capabilities,
      deadPeerMs: hello.dead_peer_ms,
      position: { log_id: hello.log_id, applied_seq: hello.applied_seq },
    });
  }

  /** Dialer, handshake: the answer to our hello. */
  private onHelloReply(message: PeerMessage): void {
    if (message.body !== 'hello_reply') {
      this.violation(`${message.body} before the handshake completed (expected hello_reply)`);
      return;
    }
    const reply = message.hello_reply;
    if (!reply.accepted) {
      const reason = `peer ${reply.site || this.settings.peerName} at ${this.address} refused the handshake: ${reply.reason || 'no reason given'}`;
      this.log('error', reason, this.fields({ reason: reply.reason }));
      this.close(reason);
      return;
    }
    const refusal = incompatibility(this.settings, message.version, reply);
    if (refusal !== undefined) {
      this.log('error', `refused the handshake with ${this.address}: ${refusal}`, this.fields({ reason: refusal }));
      this.close(refusal, 'BAD_REQUEST');
      return;
    }
    this.becomeUp({
      site: reply.site,
      capabilities: reply.capabilities,
      deadPeerMs: reply.dead_peer_ms,
      position: { log_id: reply.log_id, applied_seq: reply.applied_seq },
    });
  }

  private onGoodbye(goodbye: PeerGoodbye): void {
    const reason = `peer said goodbye: ${goodbye.reason || goodbye.code}`;
    // BAD_REQUEST means the peer thinks *we* broke the protocol: worth a warning.
    const level: LogLevel = goodbye.code === 'BAD_REQUEST' || this.phase === 'handshake' ? 'warn' : 'info';
    this.log(level, `peer ${this.settings.peerName} at ${this.address} closed the connection: ${goodbye.reason || goodbye.code}`, this.fields({ code: goodbye.code }));
    this.close(reason);
  }

  private becomeUp(peer: PeerInfo): void {
    this.phase = 'up';
    this.heardAt = this.settings.now();
    this.clearTimers();
    this.armDeadline();
    this.session = new PeerSession(this, peer, {
      tlsIdentity: this.tlsIdentity,
      remoteAddress: this.address,
      direction: this.role === 'dialer' ? 'dialed' : 'accepted',
    });
    const every = Math.max(1, Math.floor(this.settings.deadPeerMs / 3));
    this.heartbeatTimer = setInterval(() => this.guard(() => this.sendHeartbeat()), every);
    this.sendHeartbeat();
    this.hooks.up(this);
  }

  private sendHeartbeat(): void {
    if (this.phase !== 'up') return;
    this.sendQuietly({ version: PROTOCOL_VERSION, body: 'heartbeat', heartbeat: { sent_at: this.settings.now(), reply: false } });
  }

  /**
   * One timer for both deadlines: before 'up', an absolute deadline from the start of the
   * connection; once up, deadPeerMs after the last bytes heard. When it fires early (bytes
   * arrived meanwhile), it re-arms for the remainder: one timer per deadPeerMs at most, not
   * one per message.
   */
  private armDeadline(): void {
    const since = this.phase === 'up' ? this.heardAt : this.startedAt;
    const wait = Math.max(1, Math.ceil(since + this.settings.deadPeerMs - this.settings.now()));
    this.deadlineTimer = setTimeout(() => this.guard(() => this.onDeadline()), wait);
  }

  private onDeadline(): void {
    this.deadlineTimer = undefined;
    const limit = this.settings.deadPeerMs;
    switch (this.phase) {
      case 'closed':
        return;
      case 'up': {
        const silent = this.settings.now() - this.heardAt;
        if (silent < limit) {
          this.armDeadline();
          return;
        }
        const reason = `peer silent for ${Math.round(silent)} ms`;
        this.log('warn', `closing the peer connection with ${this.address}: ${reason}`, this.fields({ reason }));
        this.close(reason, 'FAILED');
        return;
      }
      case 'connecting': {
        const reason = `no connection to ${this.address} within ${limit} ms`;
        this.log('warn', `cannot connect to peer ${this.settings.peerName} at ${this.address}: ${reason}`, this.fields({ reason }));
        this.close(reason);
        return;
      }
      case 'handshake': {
        const expected = this.role === 'acceptor' ? 'hello' : 'hello_reply';
        const reason = `handshake timed out: no ${expected} within ${limit} ms`;
        this.log('warn', `closing the peer connection with ${this.address}: ${reason}`, this.fields({ reason }));
        this.close(reason, 'FAILED');
        return;
      }
    }
  }

  private onEnd(): void {
    this.peerEnded = true;
    if (this.phase === 'closed') return;
    try {
      this.decoder.end();
    } catch (err) {
      const reason = (err as Error).message; // "stream ended inside a frame (...)"
      this.log('warn', `closing the peer connection with ${this.address}: ${reason}`, this.fields({ reason }));
      this.close(reason);
      return;
    }
    if (this.phase === 'handshake') {
      const hint =
        this.role === 'dialer' && this.tlsIdentity !== 'insecure'
          ? " (if this repeats, see the peer's log: it may not trust this site's certificate)"
          : '';
      const reason = 'peer closed the connection during the handshake';
      this.log('warn', `peer ${this.settings.peerName} at ${this.address} closed the connection during the handshake${hint}`, this.fields({ reason }));
      this.close(reason);
      return;
    }
    this.close('peer closed the connection');
  }

  private onError(err: Error): void {
    if (this.phase === 'closed') return;
    const why = describeError(err);
    if (this.phase === 'connecting') {
      const reason = this.tcpConnected ? `TLS handshake with peer ${this.settings.peerName} at ${this.address} failed: ${why}` : `cannot connect to peer ${this.settings.peerName} at ${this.address}: ${why}`;
      this.log('warn', reason, this.fields({ reason: why, code: (err as NodeJS.ErrnoException).code }));
      this.close(reason);
      return;
    }
    const reason = `connection error: ${why}`;
    this.log('warn', `lost the peer connection with ${this.address}: ${why}`, this.fields({ reason: why }));
    this.close(reason);
  }

  private onSocketClose(): void {
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    if (this.phase !== 'closed') this.close(this.phase === 'connecting' ? `connection to ${this.address} closed` : 'connection closed');
  }

  private clearTimers(): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.deadlineTimer = undefined;
    this.heartbeatTimer = undefined;
  }
}

// ---------------------------------------------------------------------------------------
// Channel: listener, dialer, and the one live session.

export type PeerChannelEvents = {
  up: [session: PeerSession];
  down: [session: PeerSession, reason: string];
  message: [session: PeerSession, message: PeerMessage];
};

export class PeerChannel extends EventEmitter<PeerChannelEvents> {
  private readonly settings: Settings;
  private readonly log: LogFn;
  private readonly listenAt: Endpoint | undefined;
  private readonly dialTo: Endpoint | undefined;
  private readonly tlsOptions: ChannelTlsOptions | undefined;
  private state: 'new' | 'started' | 'closing' | 'closed' = 'new';
  private closing: Promise<void> | undefined;
  /** start()'s listen, which close() lets finish so that it can close the server too. */
  private listening: Promise<void> | undefined;
  private server: net.Server | undefined;
  private boundPort: number | undefined;
  /** Every socket the listener accepted (TLS: before the handshake), to destroy on close. */
  private readonly acceptedSockets = new Set<net.Socket>();
  private readonly connections = new Set<PeerConnection>();
  private current: PeerConnection | undefined;
  private dialing: PeerConnection | undefined;
  private redialTimer: NodeJS.Timeout | undefined;
  private redialDelayMs = REDIAL_MIN_MS;
  /** The last dial problem logged at its own level; repeats of it go to debug. */
  private lastDialProblem: string | undefined;
  private readonly hooks: ConnectionHooks;
  /** Sessions whose 'up' was emitted: only those get a 'down'. */
  private readonly announced = new WeakSet<PeerSession>();

  /** Throws ChannelConfigError when the options cannot work (see validate). */
  constructor(opts: PeerChannelOptions) {
    super();
    validate(opts);
    this.settings = {
      site: opts.site,
      peerName: opts.peerName,
      deadPeerMs: opts.deadPeerMs ?? DEFAULT_DEAD_PEER_MS,
      maxMessageBytes: opts.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      capabilities: [...opts.capabilities],
      position: opts.position,
      now: opts.now ?? (() => performance.now()),
    };
    this.log = opts.log;
    this.listenAt = opts.listen;
    this.dialTo = opts.dial;
    this.tlsOptions = opts.insecure ? undefined : opts.tls;
    this.hooks = {
      up: (connection) => this.onSessionUp(connection),
      message: (connection, message) => {
        const session = connection.session;
        if (session) this.emitSafely('message', () => this.emit('message', session, message));
      },
      ended: (connection, reason) => this.onConnectionEnded(connection, reason),
    };
  }

  /** The port the listener is bound to (after start(); useful with port 0). */
  get listenPort(): number | undefined {
    return this.boundPort;
  }

  /** The live session, if any. */
  get session(): PeerSession | undefined {
    return this.current?.session;
  }

  /** Listen (when configured; resolves once listening) and start dialing (when configured). */
  async start(): Promise<void> {
    if (this.state !== 'new') {
      throw new ChannelStartError(`peer channel to ${this.settings.peerName} cannot start: it was ${this.state === 'started' ? 'already started' : 'closed'}`);
    }
    this.state = 'started';
    if (this.listenAt) {
      this.listening = this.listen(this.listenAt);
      try {
        await this.listening;
      } catch (err) {
        this.state = 'closed';
        throw err;
      }
    }
    this.dialNow(); // does nothing if close() came meanwhile
  }

  /**
   * Say goodbye ("shutting down") on every connection, stop listening and dialing, and
   * resolve when every socket is closed (at most CLOSE_GRACE_MS for a peer that does not
   * close its side). No timer or socket is left behind.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    const wasStarted = this.state === 'started';
    this.state = 'closing';
    this.cancelRedial();
    await this.listening?.catch(() => {}); // start() reports a failure to listen
    const server = this.server;
    this.server = undefined;
    const serverClosed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const connections = [...this.connections];
    for (const connection of connections) connection.close('shutting down', 'CODE_UNSPECIFIED');
    await Promise.all(connections.map((c) => c.closed));
    for (const socket of this.acceptedSockets) socket.destroy();
    await serverClosed;
    this.state = 'closed';
    if (wasStarted) this.log('info', `peer channel to ${this.settings.peerName} closed`, { peer: this.settings.peerName });
  }

  private listen(at: Endpoint): Promise<void> {
    const tlsOptions = this.tlsOptions;
    const server: net.Server = tlsOptions
      ? tls.createServer({
          ca: tlsOptions.ca,
          cert: tlsOptions.cert,
          key: tlsOptions.key,
          requestCert: true,
          // Checked in onSecureConnection, so the reason can be logged (see the header).
          rejectUnauthorized: false,
          minVersion: 'TLSv1.2',
          handshakeTimeout: Math.max(1, Math.round(this.settings.deadPeerMs)),
        })
      : net.createServer();
    server.maxConnections = MAX_PEER_CONNECTIONS;
    server.on('connection', (socket: net.Socket) => {
      // Reading the address caches it in the socket, so it can still be logged after a
      // failed TLS handshake has destroyed the TLS layer (see tlsPeerAddress).
      void socket.remoteAddress;
      this.acceptedSockets.add(socket);
      socket.once('close', () => this.acceptedSockets.delete(socket));
      if (!tlsOptions) this.guardAccept(socket, () => this.accept(socket, 'insecure'));
    });
    if (server instanceof tls.Server) {
      server.on('secureConnection', (socket: tls.TLSSocket) => this.guardAccept(socket, () => this.onSecureConnection(socket)));
      server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
        const address = tlsPeerAddress(socket);
        let reason = describeError(err);
        if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') {
          reason += " (the peer hung up during the TLS handshake: it may not trust this site's certificate; see its log)";
        }
        this.log('warn', `TLS handshake with ${address} failed: ${reason}`, { peer: this.settings.peerName, address, reason });
      });
    }
    server.on('drop', (data?: net.DropArgument) => {
      const address = formatAddress(data?.remoteAddress, data?.remotePort);
      this.log('warn', `refused a peer connection from ${address}: already ${MAX_PEER_CONNECTIONS} connections open`, {
        peer: this.settings.peerName,
        address,
      });
    });
    return new Promise<void>((resolve, reject) => {
      const where = formatAddress(at.host, at.port);
      const onError = (err: Error): void => {
        reject(new ChannelStartError(`cannot listen for peer ${this.settings.peerName} on ${where}: ${err.message}`));
      };
      server.once('error', onError);
      server.listen({ host: at.host, port: at.port }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.log('error', `peer listener on ${where} failed: ${err.message}`, { peer: this.settings.peerName }));
        this.server = server;
        this.boundPort = (server.address() as net.AddressInfo).port;
        this.log('info', `listening for peer ${this.settings.peerName} on ${formatAddress(at.host, this.boundPort)}`, {
          peer: this.settings.peerName,
          tls: tlsOptions !== undefined,
        });
        resolve();
      });
    });
  }

  /** Accepting must not throw into the server's callback: a failure costs that socket only. */
  private guardAccept(socket: net.Socket, accept: () => void): void {
    try {
      accept();
    } catch (err) {
      this.log('error', `cannot accept a peer connection: ${(err as Error).message}`, { peer: this.settings.peerName, stack: (err as Error).stack });
      socket.destroy();
    }
  }

  /** TLS acceptor: the chain and the name are checked here, before anything is read. */
  private onSecureConnection(socket: tls.TLSSocket): void {
    socket.on('error', () => {}); // until a PeerConnection owns it; a refused socket is only destroyed
    const address = formatAddress(socket.remoteAddress, socket.remotePort);
    if (this.state !== 'started') {
      socket.destroy();
      return;
    }
    const cert = socket.getPeerCertificate();
    let refusal: string | undefined;
    if (!socket.authorized) {
      refusal = untrustedReason(String(socket.authorizationError), cert);
    } else if (tls.checkServerIdentity(this.settings.peerName, cert) !== undefined) {
      refusal = `certificate is for ${describeCertificate(cert)}, expected ${this.settings.peerName}`;
    }
    if (refusal !== undefined) {
      this.log('warn', `refused a peer connection from ${address}: ${refusal}`, { peer: this.settings.peerName, address, reason: refusal });
      socket.destroy();
      return;
    }
    this.accept(socket, describeCertificate(cert));
  }

  private accept(socket: net.Socket, tlsIdentity: string): void {
    const address = formatAddress(socket.remoteAddress, socket.remotePort);
    if (this.state !== 'started') {
      socket.destroy();
      return;
    }
    this.log('debug', `peer connection from ${address}`, { peer: this.settings.peerName, address, identity: tlsIdentity });
    const connection = new PeerConnection({
      socket,
      role: 'acceptor',
      address,
      secure: this.tlsOptions !== undefined,
      tlsIdentity,
      settings: this.settings,
      log: this.log,
      hooks: this.hooks,
    });
    this.track(connection);
  }

  /** One dial attempt, unless one is under way or a session is up. */
  private dialNow(): void {
    this.redialTimer = undefined;
    const to = this.dialTo;
    if (!to || this.state !== 'started' || this.current || this.dialing) return;
    const tlsOptions = this.tlsOptions;
    const peerName = this.settings.peerName;
    const socket: net.Socket = tlsOptions
      ? tls.connect({
          host: to.host,
          port: to.port,
          ca: tlsOptions.ca,
          cert: tlsOptions.cert,
          key: tlsOptions.key,
          // SNI must not be an IP address (RFC 6066 §3); the identity check below does not need it.
          ...(net.isIP(peerName) === 0 ? { servername: peerName } : {}),
          checkServerIdentity: (_host, cert) => tls.checkServerIdentity(peerName, cert),
          minVersion: 'TLSv1.2',
        })
      : net.connect({ host: to.host, port: to.port });
    const connection = new PeerConnection({
      socket,
      role: 'dialer',
      address: formatAddress(to.host, to.port),
      secure: tlsOptions !== undefined,
      settings: this.settings,
      log: this.dialLog,
      hooks: this.hooks,
    });
    this.dialing = connection;
    this.track(connection);
  }

  /** The dialer's log: a problem repeated word for word is logged once, then at debug. */
  private readonly dialLog: LogFn = (level, msg, fields) => {
    if (level === 'warn' || level === 'error') {
      if (msg === this.lastDialProblem) level = 'debug';
      else this.lastDialProblem = msg;
    }
    this.log(level, msg, fields);
  };

  private scheduleRedial(): void {
    if (!this.dialTo || this.state !== 'started' || this.current || this.dialing || this.redialTimer) return;
    const delay = this.redialDelayMs;
    this.redialDelayMs = Math.min(delay * 2, REDIAL_MAX_MS);
    this.log('debug', `redialing peer ${this.settings.peerName} in ${delay} ms`, { peer: this.settings.peerName });
    this.redialTimer = setTimeout(() => this.dialNow(), delay);
  }

  private cancelRedial(): void {
    if (this.redialTimer !== undefined) clearTimeout(this.redialTimer);
    this.redialTimer = undefined;
  }

  private track(connection: PeerConnection): void {
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
  }

  private onSessionUp(connection: PeerConnection): void {
    const session = connection.session!;
    if (this.state !== 'started') {
      connection.close('shutting down', 'CODE_UNSPECIFIED');
      return;
    }
    const old = this.current;
    if (old && old.role !== connection.role && old.role === this.preferredRole()) {
      // Both sites dial, and the two connections crossed: both ends keep the same one.
      this.log('info', `dropping the peer connection with ${connection.address}: the one dialed by ${this.lowerSite()} is up`, {
        peer: this.settings.peerName,
      });
      connection.close('a connection in the other direction is already up', 'CODE_UNSPECIFIED');
      return;
    }
    // The old session goes first, so its 'down' precedes the new 'up'.
    old?.closeLocally('replaced by a new connection');
    this.current = connection;
    this.cancelRedial();
    this.redialDelayMs = REDIAL_MIN_MS;
    this.lastDialProblem = undefined;
    this.log('info', `peer session with ${session.peerSite} up (${session.direction}, ${session.remoteAddress})`, {
      peer: session.peerSite,
      address: session.remoteAddress,
      identity: session.tlsIdentity,
      capabilities: session.capabilities,
    });
    this.announced.add(session);
    this.emitSafely('up', () => this.emit('up', session));
  }

  /** Of the two site names, the one that sorts first: its dialed connection wins a crossing. */
  private lowerSite(): string {
    return this.settings.site < this.settings.peerName ? this.settings.site : this.settings.peerName;
  }

  /** This side's role in the connection that wins when connections cross. */
  private preferredRole(): Role {
    return this.lowerSite() === this.settings.site ? 'dialer' : 'acceptor';
  }

  private onConnectionEnded(connection: PeerConnection, reason: string): void {
    if (connection === this.dialing) this.dialing = undefined;
    if (connection === this.current) this.current = undefined;
    const session = connection.session;
    if (session && this.announced.has(session)) {
      this.log('info', `peer session with ${session.peerSite} down: ${reason}`, { peer: session.peerSite, address: session.remoteAddress, reason });
      this.emitSafely('down', () => this.emit('down', session, reason));
    }
    this.scheduleRedial();
  }

  /** A throwing listener must not unwind into a socket callback. */
  private emitSafely(event: keyof PeerChannelEvents, emit: () => void): void {
    try {
      emit();
    } catch (err) {
      this.log('error', `a '${event}' listener of the peer channel threw: ${(err as Error).message}`, {
        peer: this.settings.peerName,
        stack: (err as Error).stack,
      });
    }
  }
}
