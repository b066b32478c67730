/**
 * The management server: limed's end of the local management channel. A unix socket
 * (node:net) at the configured path, mode 0600 (only the daemon's user — root — may
 * talk to it), carrying length-delimited MgmtRequest/MgmtReply messages (src/proto).
 *
 * Per connection, in order: bytes → FrameDecoder (size bound checked before buffering) →
 * decodeMgmtRequest → ManagementService call → MgmtReply with the request's id → frame
 * → socket. Requests on one connection are served one at a time, in order; the socket is
 * paused while a request is in service and while a reply waits for the client to read,
 * so a client can make the server hold at most one read chunk and one reply.
 *
 * Failure policy (nothing here may crash the daemon):
 *   - ManagementError from the service → Error reply with its code and message;
 *   - any other exception → Error reply FAILED with its message (logged at warn);
 *   - a framing error or an undecodable message → that connection is closed, the reason
 *     logged; other connections are untouched;
 *   - a request of another protocol version, or with a body this build does not know,
 *     → Error reply BAD_REQUEST.
 *
 * Flow text in several chunks (FlowText.more, see lime.proto): the server stages the
 * chunks of one connection (each answered with `ok`, at most MAX_STAGED_BYTES of text) and
 * calls the service once, with everything, at the last chunk; a chunk of another kind, or
 * the connection closing, discards what was staged. Replies too large for one message
 * (dump_flows, flow_diff) go out as several frames with the same id, all but the last
 * with `more` set.
 *
 * Monitor: a `monitor` request is answered with `ok`, then the connection carries only
 * events (MgmtReply bodies `event`, with the monitor request's id) until either side
 * closes it. Events are written as they happen, never awaited: the socket's own write
 * buffer is the per-connection queue, bounded by `monitorQueueBytes`; a client that lets
 * more pile up is disconnected with a logged reason, so a slow monitor never blocks or
 * bloats the daemon. A request sent on a monitor connection closes it (logged).
 *
 * Start-up: the parent directory is created (0755) if missing. A socket file already at
 * the path is probed: if something accepts a connection, start() fails with
 * SocketInUseError (another limed runs); if nothing listens, the file is stale and is
 * replaced. stop() closes every connection and removes the socket file.
 */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import net from 'node:net';
import { dirname } from 'node:path';
import { FrameDecoder, FramingError, encodeFrame } from '../proto/framing.js';
import { LogLimiter, withSuppressed } from '../util/log-limiter.js';
import {
  type ErrorBody,
  type FlowText,
  type MgmtEvent,
  type MgmtReplyBody,
  type MgmtRequest,
  type ShowReply as WireShowReply,
  type FdbEntry as WireFdbEntry,
  type PortInfo as WirePortInfo,
  type UnknownBody,
  PROTOCOL_VERSION,
  decodeMgmtRequest,
  encodeMgmtReply,
} from '../proto/schema.js';
import { ManagementError, type ManagementService, type PortSpec } from './service.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface ManagementServerOptions {
  /** Unix socket path, e.g. /run/lime/limed.sock. */
  path: string;
  service: ManagementService;
  log?: LogFn;
  /** Bytes a monitor connection may have waiting to be read before it is dropped (default 4 MiB). */
  monitorQueueBytes?: number;
  /**
   * Admission of each request before it is served (the daemon's control policer, see
   * daemon/control-policer.ts): undefined = serve now, a promise = serve once it resolves.
   */
  admit?: () => Promise<void> | undefined;
  /**
   * Who may connect (src/mgmt/peer-cred.ts: root and limed's own user, by the peer
   * credentials of the connection): undefined = allowed, else the reason of the refusal.
   * The socket's mode 0600 already keeps other users out; this holds even if the mode or
   * the directory's permissions were loosened.
   */
  checkPeer?: (socket: net.Socket) => string | undefined;
}

/** Default bound of a monitor connection's unread events, in bytes. */
export const MONITOR_QUEUE_BYTES = 4 * 1024 * 1024;
/** Most flow text one connection may stage across `more` chunks (see lime.proto). */
export const MAX_STAGED_BYTES = 256 * 1024 * 1024;
/** Target size of one part of a multipart reply (well under MAX_MESSAGE_BYTES). */
const REPLY_PART_BYTES = 512 * 1024;

/** Flow text staged on one connection, waiting for its last chunk. */
interface Staged {
  key: string; // body + command: a chunk must continue the same request
  text: FlowText;
  bytes: number;
}

/** Per-connection state the dispatcher needs. */
interface ConnectionState {
  id: number;
  staged: Staged | undefined;
  /** Set once the connection became a monitor stream. */
  monitor: { requestId: number; capture?: { port: string; snaplen: number } } | undefined;
}

/** A start-up problem with the management socket path. */
export class ManagementSocketError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'ManagementSocketError';
  }
}

/** Something (another limed, most likely) already accepts connections at the path. */
export class SocketInUseError extends ManagementSocketError {
  constructor(path: string) {
    super(path, `management socket ${path} is already in use (another limed running?)`);
    this.name = 'SocketInUseError';
  }
}

/** How long start() waits for a connect to an existing socket file before calling it in use. */
const PROBE_TIMEOUT_MS = 1000;

// The service speaks the TS shapes of service.ts; the wire speaks those of proto/schema.ts.
// They must stay assignable (service → wire); these aliases make the compiler check it.
type Assignable<From extends To, To> = [From, To];
export type ServiceShapesMatchWire = [
  Assignable<ReturnType<ManagementService['show']>, WireShowReply>,
  Assignable<ReturnType<ManagementService['fdbShow']>[number], WireFdbEntry>,
  Assignable<Awaited<ReturnType<ManagementService['addPort']>>, WirePortInfo>,
];

export class ManagementServer {
  readonly path: string;
  private readonly service: ManagementService;
  private readonly log: LogFn;
  private readonly monitorQueueBytes: number;
  private readonly admit: (() => Promise<void> | undefined) | undefined;
  private server: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();
  private nextConnectionId = 1;

  constructor(opts: ManagementServerOptions) {
    this.path = opts.path;
    this.service = opts.service;
    this.log = opts.log ?? (() => {});
    this.monitorQueueBytes = opts.monitorQueueBytes ?? MONITOR_QUEUE_BYTES;
    this.admit = opts.admit;
    this.checkPeer = opts.checkPeer;
  }

  /** Connections refused by checkPeer since start. */
  refusedConnections = 0;
  /** Monitor connections dropped because their unread events passed monitorQueueBytes, since start. */
  monitorsDropped = 0;
  private readonly checkPeer: ManagementServerOptions['checkPeer'];
  /** Warnings a client can cause again and again: one line per kind per 10 s, with a count. */
  private readonly warnings = new LogLimiter();

  async start(): Promise<void> {
    if (this.server) throw new ManagementSocketError(this.path, `management server on ${this.path} already started`);
    await mkdir(dirname(this.path), { recursive: true, mode: 0o755 });
    await this.removeStaleSocket();
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        if (err.code === 'EADDRINUSE') reject(new SocketInUseError(this.path));
        else reject(new ManagementSocketError(this.path, `cannot listen on management socket ${this.path}: ${err.message}`));
      };
      server.once('error', onError);
      server.listen(this.path, () => {
        server.off('error', onError);
        resolve();
      });
    });
    // Until this chmod the socket has the umask's mode; the window is a few microseconds and
    // the parent directory is normally root's. (Changing the process umask instead would
    // race with every other file the daemon creates.)
    try {
      await chmod(this.path, 0o600);
    } catch (err) {
      server.close();
      throw new ManagementSocketError(this.path, `cannot chmod management socket ${this.path}: ${(err as Error).message}`);
    }
    server.on('error', (err) => this.log('error', 'management socket error', { path: this.path, error: err.message }));
    this.server = server;
    this.log('info', 'management socket listening', { path: this.path });
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const socket of this.connections) socket.destroy();
    this.connections.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      await unlink(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.log('warn', 'cannot remove management socket', { path: this.path, error: (err as Error).message });
      }
    }
    this.log('info', 'management socket closed', { path: this.path });
  }

  /** Number of open client connections (for tests and `show`). */
  get connectionCount(): number {
    return this.connections.size;
  }

  private async removeStaleSocket(): Promise<void> {
    let isSocket: boolean;
    try {
      isSocket = (await lstat(this.path)).isSocket();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new ManagementSocketError(this.path, `cannot inspect management socket path ${this.path}: ${(err as Error).message}`);
    }
    if (!isSocket) {
      throw new ManagementSocketError(this.path, `management socket path ${this.path} exists and is not a socket`);
    }
    if (await this.probe()) throw new SocketInUseError(this.path);
    try {
      await unlink(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new ManagementSocketError(this.path, `cannot remove stale management socket ${this.path}: ${(err as Error).message}`);
      }
    }
    this.log('info', 'removed stale management socket', { path: this.path });
  }

  /** true if something accepts a connection at the path; false if the file is stale. */
  private probe(): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(this.path);
      const timer = setTimeout(() => finish(true), PROBE_TIMEOUT_MS);
      const finish = (inUse: boolean, err?: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        if (err) reject(err);
        else resolve(inUse);
      };
      socket.once('connect', () => finish(true));
      socket.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') finish(false);
        else finish(false, new ManagementSocketError(this.path, `cannot probe management socket ${this.path}: ${err.message}`));
      });
    });
  }

  private onConnection(socket: net.Socket): void {
    const connection = this.nextConnectionId++;
    this.connections.add(socket);
    this.log('debug', 'management client connected', { connection });
    const decoder = new FrameDecoder();
    const queue: Uint8Array[] = [];
    const state: ConnectionState = { id: connection, staged: undefined, monitor: undefined };
    let unsubscribe: (() => void) | undefined;
    let serving = false;
    let ended = false; // the client half-closed; finish its requests, then end our side
    const refusal = this.checkPeer?.(socket);
    if (refusal !== undefined) {
      this.refusedConnections++;
      const n = this.warnings.admit('refused');
      if (n >= 0) this.log('warn', 'management connection refused', withSuppressed({ connection, reason: refusal, refused: this.refusedConnections }, n));
    }

    const close = (reason: string): void => {
      const n = this.warnings.admit('close');
      if (n >= 0) this.log('warn', 'closing management connection', withSuppressed({ connection, reason }, n));
      queue.length = 0;
      socket.destroy();
    };

    const serve = async (): Promise<void> => {
      serving = true;
      socket.pause();
      while (queue.length > 0 && !socket.destroyed) {
        const bytes = queue.shift()!;
        let request: ReturnType<typeof decodeMgmtRequest>;
        try {
          request = decodeMgmtRequest(bytes);
        } catch (err) {
          close((err as Error).message);
          break;
        }
        if (refusal !== undefined) {
          // The request is answered (so limectl says why), not served; then the connection ends.
          queue.length = 0;
          socket.end(encodeFrame(encodeMgmtReply({ version: PROTOCOL_VERSION, id: request.id, ...errorBody('FAILED', `permission denied: ${refusal}`) })));
          return;
        }
        if (state.monitor !== undefined) {
          close(`request '${request.body ?? 'unknown'}' on a monitor connection`);
          break;
        }
        const admitted = this.admit?.();
        if (admitted !== undefined) {
          await admitted;
          if (socket.destroyed) break;
        }
        const frames = await this.replyTo(request, state);
        if (socket.destroyed) break;
        let full = false;
        for (const frame of frames) full = !socket.write(frame);
        if (full) await drained(socket);
        if (state.monitor !== undefined && unsubscribe === undefined && !socket.destroyed) {
          // replyTo() set state.monitor (TypeScript cannot see that through the call).
          const stream = state.monitor as ConnectionState['monitor'];
          unsubscribe = stream?.capture !== undefined ? this.startCapture(socket, state) : this.startMonitor(socket, state, close);
        }
      }
      serving = false;
      if (socket.destroyed) return;
      if (ended) socket.end();
      else socket.resume();
    };

    socket.on('data', (chunk: Buffer) => {
      let bodies: Uint8Array[];
      try {
        bodies = decoder.push(chunk);
      } catch (err) {
        close(err instanceof FramingError ? `framing error: ${err.message}` : (err as Error).message);
        return;
      }
      if (bodies.length === 0) return;
      queue.push(...bodies);
      if (!serving) void serve();
    });
    socket.on('end', () => {
      try {
        decoder.end();
      } catch (err) {
        this.log('debug', 'management client closed mid-frame', { connection, reason: (err as Error).message });
      }
      // Requests still in service get their replies before we end our side (serve() ends it).
      ended = true;
      if (!serving) socket.end();
    });
    socket.on('error', (err) => this.log('debug', 'management connection error', { connection, error: err.message }));
    socket.on('close', () => {
      unsubscribe?.();
      unsubscribe = undefined;
      state.staged = undefined;
      this.connections.delete(socket);
      this.log('debug', 'management client disconnected', { connection });
    });
  }

  /**
   * Register the connection as a monitor: every event is framed and written at once; when
   * the unread bytes exceed the bound, the connection is dropped with a logged reason.
   */
  private startMonitor(socket: net.Socket, state: ConnectionState, close: (reason: string) => void): () => void {
    const id = state.monitor!.requestId;
    this.log('info', 'monitor started', { connection: state.id });
    let stopped = false;
    const sink = (event: MgmtEvent): void => {
      if (stopped || socket.destroyed) return;
      let frame: Buffer;
      try {
        frame = encodeFrame(encodeMgmtReply({ version: PROTOCOL_VERSION, id, body: 'event', event }));
      } catch (err) {
        this.log('warn', 'cannot encode monitor event', { connection: state.id, kind: event.kind, error: (err as Error).message });
        return;
      }
      if (socket.writableLength + frame.length > this.monitorQueueBytes) {
        stopped = true;
        this.monitorsDropped++;
        close(`monitor client too slow: ${socket.writableLength} bytes of events unread (limit ${this.monitorQueueBytes})`);
        return;
      }
      socket.write(frame);
    };
    const stop = this.service.monitor(sink);
    return () => {
      stopped = true;
      stop();
      this.log('info', 'monitor stopped', { connection: state.id });
    };
  }

  /**
   * Register the connection as a capture of one port: each frame becomes a `frame` event.
   * Frames that would push the unread bytes past the bound are skipped and counted; the
   * count goes out as a `dropped` event before the next frame that fits, so a slow reader
   * loses frames (and knows how many), never the daemon's time or memory.
   */
  private startCapture(socket: net.Socket, state: ConnectionState): () => void {
    const id = state.monitor!.requestId;
    const { port, snaplen } = state.monitor!.capture!;
    this.log('info', 'capture started', { connection: state.id, port });
    let stopped = false;
    let dropped = 0;
    const write = (event: MgmtEvent): boolean => {
      const frame = encodeFrame(encodeMgmtReply({ version: PROTOCOL_VERSION, id, body: 'event', event }));
      if (socket.writableLength + frame.length > this.monitorQueueBytes) return false;
      socket.write(frame);
      return true;
    };
    const sink = (event: MgmtEvent): void => {
      if (stopped || socket.destroyed) return;
      try {
        if (dropped > 0) {
          if (!write({ kind: 'dropped', time: event.time, reason: '', dropped })) {
            dropped++;
            return;
          }
          dropped = 0;
        }
        if (!write(event)) dropped++;
      } catch (err) {
        this.log('warn', 'cannot encode captured frame', { connection: state.id, error: (err as Error).message });
      }
    };
    let stop: () => void;
    try {
      stop = this.service.capture(port, snaplen, sink);
    } catch (err) {
      // The port went away between the reply and now: end the stream.
      this.log('info', 'capture ended', { connection: state.id, port, reason: (err as Error).message });
      socket.end();
      return () => {};
    }
    return () => {
      stopped = true;
      stop();
      this.log('info', 'capture stopped', { connection: state.id, port });
    };
  }

  /** The framed reply (one or more frames) to one decoded request; never throws. */
  private async replyTo(request: ReturnType<typeof decodeMgmtRequest>, state: ConnectionState): Promise<Buffer[]> {
    const connection = state.id;
    let body: MgmtReplyBody;
    try {
      body = await this.dispatch(request, state);
    } catch (err) {
      if (err instanceof ManagementError) {
        body = errorBody(err.code, err.message);
      } else {
        const message = err instanceof Error ? err.message : String(err);
        this.log('warn', 'management request failed', {
          connection,
          request: request.body,
          error: message,
          stack: err instanceof Error ? err.stack : undefined,
        });
        body = errorBody('FAILED', message || 'internal error');
      }
    }
    try {
      return splitReply(body).map((part) => encodeFrame(encodeMgmtReply({ version: PROTOCOL_VERSION, id: request.id, ...part })));
    } catch (err) {
      // Too large, or a value the schema cannot carry: tell the client rather than go silent.
      this.log('warn', 'cannot encode management reply', { connection, request: request.body, error: (err as Error).message });
      const fallback = errorBody('FAILED', `cannot send reply to ${request.body ?? 'request'}: ${(err as Error).message}`);
      return [encodeFrame(encodeMgmtReply({ version: PROTOCOL_VERSION, id: request.id, ...fallback }))];
    }
  }

  /**
   * Stage a `more` chunk (returns undefined: answer ok) or return the whole text (the
   * chunks staged so far plus this last one). Throws ManagementError on a mismatch.
   */
  private stage(state: ConnectionState, key: string, text: FlowText): FlowText | undefined {
    let staged = state.staged;
    if (staged !== undefined && staged.key !== key) {
      state.staged = undefined;
      throw new ManagementError('BAD_REQUEST', `${key}: flows of another request (${staged.key}) were still being sent on this connection; both discarded`);
    }
    if (!text.more && staged === undefined) return text;
    if (staged === undefined) {
      staged = { key, text: { flows: [], lines: [], source: text.source, more: true }, bytes: 0 };
      state.staged = staged;
    }
    for (let i = 0; i < text.flows.length; i++) {
      const flow = text.flows[i]!;
      staged.bytes += flow.length + 8;
      staged.text.flows.push(flow);
      staged.text.lines.push(text.lines[i] ?? 0);
    }
    if (staged.bytes > MAX_STAGED_BYTES) {
      state.staged = undefined;
      throw new ManagementError('BAD_REQUEST', `${key}: more than ${MAX_STAGED_BYTES} bytes of flow text in one request`);
    }
    if (text.more) return undefined;
    state.staged = undefined;
    return { ...staged.text, more: false };
  }

  private async dispatch(request: MgmtRequest | UnknownBody, state: ConnectionState): Promise<MgmtReplyBody> {
    if (request.version !== PROTOCOL_VERSION) {
      return errorBody(
        'BAD_REQUEST',
        `unsupported management protocol version ${request.version} (this limed speaks version ${PROTOCOL_VERSION})`,
      );
    }
    switch (request.body) {
      case 'show':
        return { body: 'show', show: this.service.show() };
      case 'fdb_show':
        return { body: 'fdb_show', fdb_show: { entries: this.service.fdbShow() } };
      case 'add_port': {
        const r = request.add_port;
        if (r.name === '') return errorBody('BAD_REQUEST', 'add-port: name is required');
        if (r.type !== 'tap' && r.type !== 'system') {
          return errorBody('BAD_REQUEST', `add-port: type '${r.type}' is not supported at run time (supported: tap, system; gre tunnels come from the configuration)`);
        }
        const spec: PortSpec = { name: r.name, type: r.type };
        if (r.device !== undefined) spec.device = r.device;
        if (r.mtu !== undefined) spec.mtu = r.mtu;
        if (r.mac !== undefined) spec.mac = r.mac;
        return { body: 'port', port: await this.service.addPort(spec) };
      }
      case 'del_port': {
        if (request.del_port.name === '') return errorBody('BAD_REQUEST', 'del-port: name is required');
        await this.service.delPort(request.del_port.name);
        return { body: 'ok', ok: {} };
      }
      case 'flow_mods': {
        const r = request.flow_mods;
        const text = this.stage(state, `flow_mods/${r.command}`, r.text);
        if (text === undefined) return { body: 'ok', ok: {} };
        return { body: 'flow_mods', flow_mods: await this.service.flowMods({ command: r.command, text }) };
      }
      case 'replace_flows': {
        const r = request.replace_flows;
        const text = this.stage(state, r.dry_run ? 'diff_flows' : 'replace_flows', r.text);
        if (text === undefined) return { body: 'ok', ok: {} };
        return { body: 'flow_diff', flow_diff: await this.service.replaceFlows({ text, dry_run: r.dry_run }) };
      }
      case 'peer_show':
        return { body: 'peer_show', peer_show: this.service.peerShow() };
      case 'sync_barrier':
        return { body: 'sync_barrier', sync_barrier: await this.service.syncBarrier() };
      case 'reload':
        return { body: 'reload', reload: await this.service.reload() };
      case 'migrate': {
        const r = request.migrate;
        if (r.action === 'status') return { body: 'migrate', migrate: this.service.migrateStatus() };
        if (r.action === 'host') {
          if (r.host.host === '') return errorBody('BAD_REQUEST', 'migrate host: a host name is required');
          if (r.host.site === '') return errorBody('BAD_REQUEST', 'migrate host: a site is required (--to SITE)');
          return { body: 'migrate', migrate: await this.service.migrateHost({ host: r.host.host, site: r.host.site, cause: 'command' }) };
        }
        if (r.action === 'prepare') {
          if (r.prepare.to === '') return errorBody('BAD_REQUEST', 'migrate prepare: a site is required (--to SITE)');
          return { body: 'migrate', migrate: await this.service.migratePrepare(r.prepare) };
        }
        if (r.action === 'finalize') return { body: 'migrate', migrate: await this.service.migrateFinalize() };
        if (r.action === 'abort') return { body: 'migrate', migrate: await this.service.migrateAbort() };
        if (r.action === 'plan') return { body: 'migrate', migrate: await this.service.migratePlan(r.plan) };
        if (r.action === 'run') return { body: 'migrate', migrate: await this.service.migrateRun(r.run) };
        return errorBody('BAD_REQUEST', 'migrate: no action given (expected prepare, host, plan, run, finalize, abort or status)');
      }
      case 'dump_flows': {
        const r = await this.service.dumpFlows(request.dump_flows);
        if (Array.isArray(r)) return { body: 'dump_flows', dump_flows: { flows: r, more: false } };
        return { body: 'dump_flows', dump_flows: { flows: r.flows, more: false, ...(r.localOnly ? { local_only: true } : {}) } };
      }
      case 'trace':
        if (request.trace.packet === '') return errorBody('BAD_REQUEST', 'trace: a packet description is required');
        return { body: 'trace', trace: this.service.trace(request.trace.packet) };
      case 'packet_out':
        if (request.packet_out.packet.length === 0) return errorBody('BAD_REQUEST', 'packet-out: packet is required');
        this.service.packetOut(request.packet_out);
        return { body: 'ok', ok: {} };
      case 'monitor':
        state.monitor = { requestId: request.id };
        return { body: 'ok', ok: {} };
      case 'capture': {
        const port = request.capture.port;
        if (port === '') return errorBody('BAD_REQUEST', 'capture: a port name is required');
        if (!this.service.show().ports.some((p) => p.name === port)) return errorBody('NOT_FOUND', `capture: no port named ${port}`);
        const snaplen = request.capture.snaplen === 0 ? 65535 : Math.min(request.capture.snaplen, 65535);
        state.monitor = { requestId: request.id, capture: { port, snaplen } };
        return { body: 'ok', ok: {} };
      }
      case undefined:
        return errorBody('BAD_REQUEST', 'request has no body this limed understands (limectl newer than limed?)');
    }
  }
}

/** Split a reply too large for one message into parts (`more` on all but the last). */
function splitReply(body: MgmtReplyBody): MgmtReplyBody[] {
  if (body.body === 'dump_flows') {
    const parts = chunkBySize(body.dump_flows.flows, (f) => 64 + f.match.length + f.actions.length + f.cookie.length);
    const localOnly = body.dump_flows.local_only === true ? { local_only: true } : {};
    return parts.map((flows, i) => ({ body: 'dump_flows', dump_flows: { flows, more: i < parts.length - 1, ...localOnly } }));
  }
  if (body.body === 'flow_diff') {
    const d = body.flow_diff;
    const parts = chunkBySize(d.lines, (line) => line.length + 8);
    return parts.map((lines, i) => ({ body: 'flow_diff', flow_diff: { ...d, lines, more: i < parts.length - 1 } }));
  }
  return [body];
}

/** Consecutive chunks of `items` whose estimated sizes add up to at most REPLY_PART_BYTES (at least one chunk). */
function chunkBySize<T>(items: readonly T[], size: (item: T) => number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = size(item);
    if (cur.length > 0 && bytes + n > REPLY_PART_BYTES) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(item);
    bytes += n;
  }
  out.push(cur);
  return out;
}

function errorBody(code: ErrorBody['code'], message: string): MgmtReplyBody {
  return { body: 'error', error: { code, message } };
}

function drained(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.once('drain', done);
    socket.once('close', done);
  });
}
