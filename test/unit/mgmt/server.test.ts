import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ManagementServer,
  ManagementSocketError,
  SocketInUseError,
  type LogLevel,
} from '../../../src/mgmt/server.js';
import { ManagementError } from '../../../src/mgmt/service.js';
import { MAX_MESSAGE_BYTES } from '../../../src/proto/framing.js';
import { FakeManagementService, RawClient, tempDir } from '../../helpers/fake-mgmt.js';
import { CI, ROOT } from '../../helpers/root.js';

interface LogLine {
  level: LogLevel;
  msg: string;
  fields: Record<string, unknown> | undefined;
}

let tmp: ReturnType<typeof tempDir>;
let servers: ManagementServer[];
let clients: RawClient[];
let logs: LogLine[];
let service: FakeManagementService;

beforeEach(() => {
  tmp = tempDir();
  servers = [];
  clients = [];
  logs = [];
  service = new FakeManagementService();
});

afterEach(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.stop();
  tmp.cleanup();
});

async function startServer(path = join(tmp.dir, 'limed.sock'), svc = service): Promise<ManagementServer> {
  const server = new ManagementServer({
    path,
    service: svc,
    log: (level, msg, fields) => logs.push({ level, msg, fields }),
  });
  await server.start();
  servers.push(server);
  return server;
}

async function connect(path: string): Promise<RawClient> {
  const c = await RawClient.connect(path);
  clients.push(c);
  return c;
}

/** Leave a socket file with nothing listening: a process that bound it was SIGKILLed. */
function makeStaleSocket(path: string): void {
  const script = `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
  spawnSync(process.execPath, ['-e', script]);
  expect(lstatSync(path).isSocket()).toBe(true);
}

describe('ManagementServer start/stop', () => {
  it('creates the socket with mode 0600, and a missing parent directory with 0755', async () => {
    const path = join(tmp.dir, 'run', 'lime', 'limed.sock');
    await startServer(path);
    expect(lstatSync(path).isSocket()).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(tmp.dir, 'run', 'lime')).mode & 0o777).toBe(0o755);
  });

  // Outside CI a non-root run skips this; under CI it runs (and fails without root).
  it.skipIf(!ROOT && !CI)('keeps other users out (mode 0600 enforced; needs root to switch user)', async () => {
    const server = await startServer();
    chmodSync(tmp.dir, 0o755); // so the directory is not what stops them
    const script = `const s = require('net').createConnection(${JSON.stringify(server.path)});
      s.on('connect', () => { console.log('CONNECTED'); process.exit(0); });
      s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
    const r = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('EACCES');
  });

  it('refuses a second server on the same path with SocketInUseError', async () => {
    const first = await startServer();
    const second = new ManagementServer({ path: first.path, service });
    const err = await second.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SocketInUseError);
    expect((err as Error).name).toBe('SocketInUseError');
    expect((err as Error).message).toBe(
      `management socket ${first.path} is already in use (another limed running?)`,
    );
    // the first server is unharmed
    const c = await connect(first.path);
    c.send({ version: 1, id: 1, body: 'show', show: {} });
    expect((await c.waitReplies(1))[0]!.body).toBe('show');
  });

  it('replaces a stale socket file', async () => {
    const path = join(tmp.dir, 'limed.sock');
    makeStaleSocket(path);
    await startServer(path);
    expect(logs.some((l) => l.msg === 'removed stale management socket')).toBe(true);
    const c = await connect(path);
    c.send({ version: 1, id: 1, body: 'show', show: {} });
    expect((await c.waitReplies(1))[0]!.body).toBe('show');
  });

  it('refuses a path that is a regular file, and leaves it alone', async () => {
    const path = join(tmp.dir, 'limed.sock');
    writeFileSync(path, 'not a socket');
    const server = new ManagementServer({ path, service });
    await expect(server.start()).rejects.toThrow(ManagementSocketError);
    await expect(server.start()).rejects.toThrow(/exists and is not a socket/);
    expect(lstatSync(path).isFile()).toBe(true);
  });

  it('stop() closes connections and removes the socket file', async () => {
    const server = await startServer();
    const c = await connect(server.path);
    c.send({ version: 1, id: 1, body: 'show', show: {} });
    await c.waitReplies(1);
    await server.stop();
    expect(existsSync(server.path)).toBe(false);
    await c.waitClosed();
    await expect(RawClient.connect(server.path)).rejects.toMatchObject({ code: 'ENOENT' });
    await server.stop(); // idempotent
  });

  it('can start again after stop', async () => {
    const server = await startServer();
    await server.stop();
    await server.start();
    const c = await connect(server.path);
    c.send({ version: 1, id: 8, body: 'fdb_show', fdb_show: {} });
    expect((await c.waitReplies(1))[0]!.id).toBe(8);
  });
});

describe('ManagementServer admission (control policing)', () => {
  it('serves a request only once admit() lets it in, in order, and serves at once when admit() says so', async () => {
    const gates: Array<() => void> = [];
    let hold = true;
    const server = new ManagementServer({
      path: join(tmp.dir, 'limed.sock'),
      service,
      admit: () => (hold ? new Promise<void>((resolve) => gates.push(resolve)) : undefined),
    });
    await server.start();
    servers.push(server);
    const a = await connect(server.path);
    const b = await connect(server.path);
    a.send({ version: 1, id: 1, body: 'show', show: {} });
    b.send({ version: 1, id: 2, body: 'fdb_show', fdb_show: {} });
    await new Promise((r) => setTimeout(r, 50));
    expect(gates).toHaveLength(2);
    expect(a.replies).toHaveLength(0);
    expect(b.replies).toHaveLength(0);
    expect(service.calls).toEqual([]); // nothing reached the service yet
    gates[1]!();
    expect((await b.waitReplies(1))[0]!.body).toBe('fdb_show');
    expect(a.replies).toHaveLength(0);
    gates[0]!();
    expect((await a.waitReplies(1))[0]!.body).toBe('show');
    hold = false;
    a.send({ version: 1, id: 3, body: 'show', show: {} });
    expect((await a.waitReplies(2))[1]!.id).toBe(3);
    expect(gates).toHaveLength(2);
  });

  it('drops a request still waiting for admission when the server stops', async () => {
    let release: () => void = () => {};
    const server = new ManagementServer({
      path: join(tmp.dir, 'limed.sock'),
      service,
      admit: () => new Promise<void>((resolve) => (release = resolve)),
    });
    await server.start();
    servers.push(server);
    const c = await connect(server.path);
    c.send({ version: 1, id: 1, body: 'add_port', add_port: { name: 'vm9', type: 'tap' } });
    await new Promise((r) => setTimeout(r, 50));
    await server.stop();
    release();
    await new Promise((r) => setTimeout(r, 50));
    expect(service.calls).toEqual([]);
    expect(service.ports.map((p) => p.name)).toEqual(['vm1', 'vm2']);
  });
});

describe('ManagementServer requests', () => {
  it('answers each request with the same id, in order, for pipelined requests', async () => {
    const server = await startServer();
    const c = await connect(server.path);
    c.send({ version: 1, id: 10, body: 'add_port', add_port: { name: 'vm3', type: 'tap', mtu: 9000 } });
    c.send({ version: 1, id: 11, body: 'show', show: {} });
    c.send({ version: 1, id: 12, body: 'fdb_show', fdb_show: {} });
    c.send({ version: 1, id: 13, body: 'del_port', del_port: { name: 'vm3' } });
    const replies = await c.waitReplies(4);
    expect(replies.map((r) => [r.id, r.body])).toEqual([
      [10, 'port'],
      [11, 'show'],
      [12, 'fdb_show'],
      [13, 'ok'],
    ]);
    const [added, shown, fdb] = replies;
    if (added!.body !== 'port' || shown!.body !== 'show' || fdb!.body !== 'fdb_show') throw new Error('bad bodies');
    expect(added.port).toMatchObject({ name: 'vm3', number: 3, mtu: 9000, device: 'vm3' });
    expect(shown.show.ports.map((p) => p.name)).toEqual(['vm1', 'vm2', 'vm3']);
    expect(shown.show.ports[0]!.drops).toEqual({ runt: 3, too_long: 1 });
    expect(fdb.fdb_show.entries).toEqual(service.fdb);
    // the service got the spec with only the fields that were given
    expect(service.calls[0]).toEqual(['addPort', { name: 'vm3', type: 'tap', mtu: 9000 }]);
    expect(service.ports.map((p) => p.name)).toEqual(['vm1', 'vm2']);
  });

  it('turns a ManagementError into an Error reply with its code', async () => {
    const server = await startServer();
    const c = await connect(server.path);
    c.send({ version: 1, id: 1, body: 'del_port', del_port: { name: 'nosuch' } });
    c.send({ version: 1, id: 2, body: 'add_port', add_port: { name: 'vm1', type: 'tap' } });
    const replies = await c.waitReplies(2);
    expect(replies[0]).toEqual({ version: 1, id: 1, body: 'error', error: { code: 'NOT_FOUND', message: 'no port named nosuch' } });
    expect(replies[1]).toMatchObject({ id: 2, error: { code: 'ALREADY_EXISTS', message: 'port vm1 already exists' } });
  });

  it('turns any other exception into FAILED, logs it, and keeps serving', async () => {
    service.showError = new TypeError('cannot read properties of undefined');
    const server = await startServer();
    const c = await connect(server.path);
    c.send({ version: 1, id: 1, body: 'show', show: {} });
    c.send({ version: 1, id: 2, body: 'fdb_show', fdb_show: {} });
    const replies = await c.waitReplies(2);
    expect(replies[0]).toEqual({
      version: 1,
      id: 1,
      body: 'error',
      error: { code: 'FAILED', message: 'cannot read properties of undefined' },
    });
    expect(replies[1]!.body).toBe('fdb_show');
    expect(logs.find((l) => l.msg === 'management request failed')?.level).toBe('warn');
    // a thrown non-Error is handled too
    service.showError = 'a string';
    c.send({ version: 1, id: 3, body: 'show', show: {} });
    expect((await c.waitReplies(3))[2]).toMatchObject({ error: { code: 'FAILED', message: 'a string' } });
    service.showError = new ManagementError('BAD_REQUEST', 'nope');
    c.send({ version: 1, id: 4, body: 'show', show: {} });
    expect((await c.waitReplies(4))[3]).toMatchObject({ error: { code: 'BAD_REQUEST', message: 'nope' } });
  });

  it('rejects another protocol version and an unknown body with BAD_REQUEST', async () => {
    const server = await startServer();
    const c = await connect(server.path);
    c.send({ version: 2, id: 1, body: 'show', show: {} });
    c.send({ version: 1, id: 2 }); // no body at all
    c.send({ version: 1, id: 3, body: 'add_port', add_port: { name: 'x', type: 'gre' } });
    const replies = await c.waitReplies(3);
    expect(replies[0]).toMatchObject({ id: 1, error: { code: 'BAD_REQUEST', message: expect.stringMatching(/version 2/) } });
    expect(replies[1]).toMatchObject({ id: 2, error: { code: 'BAD_REQUEST', message: expect.stringMatching(/no body/) } });
    expect(replies[2]).toMatchObject({ id: 3, error: { code: 'BAD_REQUEST', message: expect.stringMatching(/type 'gre'/) } });
    expect(service.calls).toEqual([]);
  });

  it('closes only the connection that sent a garbage frame, and logs why', async () => {
    const server = await startServer();
    const good = await connect(server.path);
    const bad = await connect(server.path);
    bad.writeRaw(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80)); // malformed length prefix
    await bad.waitClosed();
    const warn = logs.find((l) => l.msg === 'closing management connection');
    expect(warn?.level).toBe('warn');
    expect(String(warn?.fields?.['reason'])).toMatch(/framing error: .*longer than 5 bytes/);
    good.send({ version: 1, id: 1, body: 'show', show: {} });
    expect((await good.waitReplies(1))[0]!.body).toBe('show');
  });

  it('logs one line for a burst of garbage connections, not one per connection', async () => {
    const server = await startServer();
    for (let i = 0; i < 20; i++) {
      const bad = await connect(server.path);
      bad.writeRaw(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80));
      await bad.waitClosed();
    }
    expect(logs.filter((l) => l.msg === 'closing management connection')).toHaveLength(1);
    const good = await connect(server.path);
    good.send({ version: 1, id: 1, body: 'show', show: {} });
    expect((await good.waitReplies(1))[0]!.body).toBe('show');
  });

  it('answers every request of a refused peer with permission denied, serving none', async () => {
    const server = new ManagementServer({
      path: join(tmp.dir, 'refusing.sock'),
      service,
      log: (level, msg, fields) => logs.push({ level, msg, fields }),
      checkPeer: () => 'user id 1000 is not root',
    });
    await server.start();
    servers.push(server);
    const c = await connect(join(tmp.dir, 'refusing.sock'));
    c.send({ version: 1, id: 7, body: 'del_port', del_port: { name: 'vm1' } });
    const replies = await c.waitReplies(1);
    expect(replies[0]).toMatchObject({ id: 7, error: { code: 'FAILED', message: 'permission denied: user id 1000 is not root' } });
    await c.waitClosed();
    expect(service.calls).toEqual([]);
    expect(server.refusedConnections).toBe(1);
  });

  it('closes a connection announcing an oversized frame without waiting for its body', async () => {
    const server = await startServer();
    const good = await connect(server.path);
    const bad = await connect(server.path);
    const n = MAX_MESSAGE_BYTES + 1;
    bad.writeRaw(Uint8Array.of((n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, n >> 14));
    await bad.waitClosed();
    expect(logs.some((l) => /more than the 1048576-byte limit/.test(String(l.fields?.['reason'])))).toBe(true);
    good.send({ version: 1, id: 2, body: 'fdb_show', fdb_show: {} });
    expect((await good.waitReplies(1))[0]!.id).toBe(2);
    expect(server.connectionCount).toBe(1);
  });

  it('closes a connection whose frame is not a MgmtRequest', async () => {
    const server = await startServer();
    const good = await connect(server.path);
    const bad = await connect(server.path);
    // a well-formed 3-byte frame whose body is truncated protobuf
    bad.writeRaw(Uint8Array.of(0x03, 0x52, 0x7f, 0x01));
    await bad.waitClosed();
    expect(logs.some((l) => /cannot decode MgmtRequest/.test(String(l.fields?.['reason'])))).toBe(true);
    good.send({ version: 1, id: 3, body: 'show', show: {} });
    expect((await good.waitReplies(1))[0]!.body).toBe('show');
  });

  it('answers requests from a client that half-closed after sending', async () => {
    const server = await startServer();
    const c = await connect(server.path);
    c.send({ version: 1, id: 1, body: 'add_port', add_port: { name: 'vm9', type: 'tap' } });
    c.socket.end();
    const replies = await c.waitReplies(1);
    expect(replies[0]).toMatchObject({ id: 1, body: 'port' });
    await c.waitClosed();
  });
});
