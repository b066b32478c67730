/**
 * limectl's end of the management channel: connect to limed's unix socket, send one framed
 * MgmtRequest, wait for the MgmtReply with the same id, close. Every failure becomes a
 * named error with a message meant for the operator (no errno soup, no stack):
 *   - ConnectError: the socket is missing, refuses, or is not ours to open;
 *   - TimeoutError: no reply within the deadline (which covers connect + reply);
 *   - ChannelError: the connection broke, or the reply could not be understood;
 *   - DaemonError: limed answered with an Error reply (code + message).
 */
import net from 'node:net';
import { FrameDecoder, encodeFrame } from '../proto/framing.js';
import {
  type ErrorCode,
  type MgmtEvent,
  type MgmtReplyBody,
  type MgmtRequestBody,
  PROTOCOL_VERSION,
  decodeMgmtReply,
  encodeMgmtRequest,
} from '../proto/schema.js';

/** Base of every failure talking to limed (limectl exit code 1). */
export class ClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientError';
  }
}

export class ConnectError extends ClientError {
  constructor(
    readonly path: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'ConnectError';
  }
}

export class TimeoutError extends ClientError {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

export class ChannelError extends ClientError {
  constructor(message: string) {
    super(message);
    this.name = 'ChannelError';
  }
}

export class DaemonError extends ClientError {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DaemonError';
  }
}

const HINT = 'is limed running? use --socket or LIME_SOCKET';

/** The operator's message for a failed connect to `path` (exported for tests). */
export function connectMessage(path: string, err: NodeJS.ErrnoException): string {
  const prefix = `cannot connect to limed at ${path}`;
  switch (err.code) {
    case 'ENOENT':
      return `${prefix}: no such socket (${HINT})`;
    case 'ECONNREFUSED':
      return `${prefix}: connection refused (${HINT})`;
    case 'EACCES':
    case 'EPERM':
      return `${prefix}: permission denied (the socket is mode 0600: run limectl as the user limed runs as, usually root)`;
    case 'ENOTDIR':
      return `${prefix}: not a socket path (${HINT})`;
    default:
      return `${prefix}: ${err.message}`;
  }
}

function closedEarly(path: string): ChannelError {
  return new ChannelError(`limed at ${path} closed the connection without replying (see its log)`);
}

type DecodedReply = ReturnType<typeof decodeMgmtReply>;

/**
 * Feed a chunk from limed to the decoder and decode every complete reply in it. A framing
 * or decoding failure comes back as a ChannelError (`what`: "reply" or "event"), never thrown.
 */
function decodeChunk(decoder: FrameDecoder, chunk: Buffer, path: string, what: string): DecodedReply[] | ChannelError {
  try {
    return decoder.push(chunk).map((bytes) => decodeMgmtReply(bytes));
  } catch (err) {
    return new ChannelError(`bad ${what} from limed at ${path}: ${(err as Error).message}`);
  }
}

/** The error for a failed socket: a connect failure before `connected`, else a broken channel. */
function socketError(path: string, connected: boolean, err: NodeJS.ErrnoException, what = 'connection'): Error {
  if (!connected) return new ConnectError(path, err.code, connectMessage(path, err));
  if (what === 'connection' && (err.code === 'EPIPE' || err.code === 'ECONNRESET')) return closedEarly(path);
  return new ChannelError(`${what} to limed at ${path} failed: ${err.message}`);
}

export interface RequestOptions {
  /** Unix socket path of limed. */
  path: string;
  /** Give up after this many milliseconds (connect + reply). */
  timeoutMs: number;
}

let lastId = 0;

/**
 * Send one request and return the reply body. An Error reply is thrown as DaemonError,
 * so a returned body is always a success.
 */
export function request(opts: RequestOptions, body: MgmtRequestBody): Promise<Exclude<MgmtReplyBody, { body: 'error' }>> {
  const id = ++lastId;
  const frame = encodeFrame(encodeMgmtRequest({ version: PROTOCOL_VERSION, id, ...body }));
  return new Promise((resolve, reject) => {
    let connected = false;
    let settled = false;
    const socket = net.createConnection(opts.path);
    const decoder = new FrameDecoder();
    const timer = setTimeout(
      () => fail(new TimeoutError(`no reply from limed at ${opts.path} within ${opts.timeoutMs} ms (is it overloaded or stuck? see its log; --timeout MS to wait longer)`)),
      opts.timeoutMs,
    );

    function finish(): void {
      settled = true;
      clearTimeout(timer);
      socket.destroy();
    }
    function fail(err: Error): void {
      if (settled) return;
      finish();
      reject(err);
    }

    socket.once('connect', () => {
      connected = true;
      socket.write(frame);
    });
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      const replies = decodeChunk(decoder, chunk, opts.path, 'reply');
      if (replies instanceof ChannelError) {
        fail(replies);
        return;
      }
      for (const reply of replies) {
        if (reply.id !== id) continue; // not ours (cannot happen on a private connection)
        if (reply.body === undefined) {
          fail(new ChannelError(`limed at ${opts.path} sent a reply this limectl does not understand (limed newer than limectl?)`));
        } else if (reply.body === 'error') {
          fail(new DaemonError(reply.error.code, reply.error.message));
        } else {
          finish();
          resolve(reply);
        }
        return;
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => fail(socketError(opts.path, connected, err)));
    socket.on('close', () => {
      fail(closedEarly(opts.path));
    });
  });
}

// ---------------------------------------------------------------------------------------
// Several requests on one connection, multipart replies, and the monitor stream

export type SuccessBody = Exclude<MgmtReplyBody, { body: 'error' }>;

/** Does this reply part announce more parts with the same id (lime.proto: multipart replies)? */
function hasMore(reply: SuccessBody): boolean {
  if (reply.body === 'dump_flows') return reply.dump_flows.more;
  if (reply.body === 'flow_diff') return reply.flow_diff.more;
  return false;
}

interface Pending {
  id: number;
  parts: SuccessBody[];
}

/**
 * Send `bodies` in order on one connection (pipelined; limed serves them in order) and
 * return, for each, its reply parts (one part, or several for a multipart reply). The
 * first Error reply is thrown as DaemonError (the requests after it are abandoned). This is
 * how add-flows sends a file larger than one message: all chunks but the last say `more`,
 * and limed applies them together at the last one.
 */
export function transact(opts: RequestOptions, bodies: readonly MgmtRequestBody[]): Promise<SuccessBody[][]> {
  const pending: Pending[] = bodies.map(() => ({ id: ++lastId, parts: [] }));
  const frames = bodies.map((body, i) => encodeFrame(encodeMgmtRequest({ version: PROTOCOL_VERSION, id: pending[i]!.id, ...body })));
  return new Promise((resolve, reject) => {
    let connected = false;
    let settled = false;
    let next = 0; // index of the request whose reply is expected
    const socket = net.createConnection(opts.path);
    const decoder = new FrameDecoder();
    const timer = setTimeout(
      () => fail(new TimeoutError(`no reply from limed at ${opts.path} within ${opts.timeoutMs} ms (is it overloaded or stuck? see its log; --timeout MS to wait longer)`)),
      opts.timeoutMs,
    );
    function fail(err: Error): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    socket.once('connect', () => {
      connected = true;
      for (const f of frames) socket.write(f);
    });
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      const replies = decodeChunk(decoder, chunk, opts.path, 'reply');
      if (replies instanceof ChannelError) {
        fail(replies);
        return;
      }
      for (const reply of replies) {
        const p = pending[next];
        if (p === undefined || reply.id !== p.id) continue;
        if (reply.body === undefined) {
          fail(new ChannelError(`limed at ${opts.path} sent a reply this limectl does not understand (limed newer than limectl?)`));
          return;
        }
        if (reply.body === 'error') {
          fail(new DaemonError(reply.error.code, reply.error.message));
          return;
        }
        p.parts.push(reply);
        if (hasMore(reply)) continue;
        next++;
        if (next === pending.length) {
          settled = true;
          clearTimeout(timer);
          socket.destroy();
          resolve(pending.map((x) => x.parts));
          return;
        }
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => fail(socketError(opts.path, connected, err)));
    socket.on('close', () => fail(closedEarly(opts.path)));
  });
}

export interface MonitorOptions extends RequestOptions {
  /** Aborting ends the stream normally (Ctrl-C). */
  signal?: AbortSignal;
  /** The request that starts the stream: `monitor` (default) or a `capture`. */
  start?: Extract<MgmtRequestBody, { body: 'monitor' } | { body: 'capture' }>;
}

/**
 * Open a monitor stream: send `monitor`, wait (up to the timeout) for limed's ok, then call
 * `onEvent` for every event until `signal` aborts (resolves) or limed closes the
 * connection (rejects with ChannelError, e.g. when it dropped us for reading too slowly).
 */
export function monitor(opts: MonitorOptions, onEvent: (event: MgmtEvent) => void): Promise<void> {
  const id = ++lastId;
  const start = opts.start ?? { body: 'monitor', monitor: {} };
  const frame = encodeFrame(encodeMgmtRequest({ version: PROTOCOL_VERSION, id, ...start }));
  return new Promise((resolve, reject) => {
    let connected = false;
    let started = false;
    let settled = false;
    const socket = net.createConnection(opts.path);
    const decoder = new FrameDecoder();
    const timer = setTimeout(
      () => finish(new TimeoutError(`no reply from limed at ${opts.path} within ${opts.timeoutMs} ms (is it overloaded or stuck? see its log; --timeout MS to wait longer)`)),
      opts.timeoutMs,
    );
    const onAbort = (): void => finish();
    function finish(err?: Error): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    }
    if (opts.signal?.aborted) {
      finish();
      return;
    }
    opts.signal?.addEventListener('abort', onAbort);
    socket.once('connect', () => {
      connected = true;
      socket.write(frame);
    });
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      const replies = decodeChunk(decoder, chunk, opts.path, 'event');
      if (replies instanceof ChannelError) {
        finish(replies);
        return;
      }
      for (const reply of replies) {
        if (reply.id !== id) continue;
        if (reply.body === 'error') {
          finish(new DaemonError(reply.error.code, reply.error.message));
          return;
        }
        if (!started) {
          if (reply.body !== 'ok') {
            finish(new ChannelError(`limed at ${opts.path} answered ${start.body} with '${reply.body ?? 'unknown'}'`));
            return;
          }
          started = true;
          clearTimeout(timer);
          continue;
        }
        if (reply.body === 'event') onEvent(reply.event);
        if (settled) return;
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish(socketError(opts.path, connected, err, 'monitor connection')));
    socket.on('close', () => {
      finish(
        started
          ? new ChannelError(`limed at ${opts.path} closed the ${start.body} stream (stopped, the port was removed, or it dropped a client reading too slowly; see its log)`)
          : closedEarly(opts.path),
      );
    });
  });
}
