/**
 * The control channel of a running limed under attack: two sites peered over mutual TLS
 * (as in peering.test.ts), a ping running host A → host B across the GRE tunnel the whole
 * time, and site A's listener (WAN_A:6640) attacked from inside site B's namespace by a
 * small client process:
 *   - a plain TCP client gets nothing and is closed, and A logs the failed TLS handshake;
 *   - a certificate from another CA, an expired one, one for the wrong name: refused, logged;
 *   - a client with site B's valid certificate that sends garbage, a length prefix over the
 *     maximum, a truncated message or a message of an unknown type (before its hello, and
 *     after it, when it has replaced B's live session): closed, the reason logged.
 * Through it all both daemons run and forward; at the end the real B is peered again and
 * a flow added at A is at B when limectl returns.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import type { LimedProcess } from '../../src/demo/limed-process.js';
import { FrameDecoder, MAX_MESSAGE_BYTES, encodeFrame } from '../../src/proto/framing.js';
import { PROTOCOL_VERSION, decodePeerMessage, encodePeerMessage, type PeerMessage, type UnknownBody } from '../../src/proto/schema.js';
import { describeWhen, ROOT } from '../helpers/root.js';
import { peerStatus, waitPeered } from '../helpers/peer-status.js';
import { haveOpenssl, makeTestCerts, type TestCerts, type TestIdentity } from '../helpers/certs.js';
import { baseSites, HOST_B, startLimed, WAN_A, WAN_B, type Sites } from '../helpers/sites.js';

const dir = mkdtempSync(join(tmpdir(), 'lime-peering-security-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PREFIX = 'limesx';
let certs: TestCerts;
let sites: Sites | undefined;

/**
 * The attacker: node attacker.mjs HOST PORT SPEC. Connects (TLS when SPEC.tls names PEM
 * files; it does not check A's certificate), runs SPEC.steps once connected, and when the
 * socket closes prints one JSON line: what it received (base64), its local port (A logs
 * it), the first error. After SPEC.timeoutMs it gives up (timedOut: A never closed it).
 */
const ATTACKER_SOURCE = `
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
const [host, port, specText] = process.argv.slice(2);
const spec = JSON.parse(specText);
const result = { connected: false, secured: false, localPort: 0, received: '', error: null, timedOut: false };
const chunks = [];
let dataArrived = () => {};
const socket = spec.tls
  ? tls.connect({ host, port: Number(port), ca: readFileSync(spec.tls.ca), cert: readFileSync(spec.tls.cert), key: readFileSync(spec.tls.key), servername: 'site-a', rejectUnauthorized: false })
  : net.connect({ host, port: Number(port) });
const timer = setTimeout(() => { result.timedOut = true; socket.destroy(); }, spec.timeoutMs);
socket.on('data', (d) => { chunks.push(d); dataArrived(); });
socket.on('error', (e) => { result.error ??= e.code ?? e.message; });
socket.on('close', () => {
  clearTimeout(timer);
  result.received = Buffer.concat(chunks).toString('base64');
  process.stdout.write(JSON.stringify(result) + '\\n');
});
socket.once('connect', () => { result.connected = true; result.localPort = socket.localPort; });
socket.once(spec.tls ? 'secureConnect' : 'connect', async () => {
  result.secured = spec.tls !== undefined;
  for (const step of spec.steps) {
    if (step.write !== undefined) socket.write(Buffer.from(step.write, 'base64'));
    else if (step.awaitData && chunks.length === 0) await new Promise((r) => (dataArrived = r));
    else if (step.end) socket.end();
  }
});
`;

type Step = { write: string } | { awaitData: true } | { end: true };
interface AttackResult {
  connected: boolean;
  secured: boolean;
  localPort: number;
  received: string;
  error: string | null;
  timedOut: boolean;
}

/** PEM files of `id` (trusted CA beside them), for the attacker. */
function identityFiles(name: string, id: TestIdentity): { ca: string; cert: string; key: string } {
  const base = join(dir, `attacker-${name}`);
  writeFileSync(`${base}.ca.pem`, certs.ca);
  writeFileSync(`${base}.pem`, id.cert);
  writeFileSync(`${base}.key`, id.key, { mode: 0o600 });
  return { ca: `${base}.ca.pem`, cert: `${base}.pem`, key: `${base}.key` };
}

/** Run the attacker in site B's namespace against A's listener; it is killed (by PID) by Sites.destroy(). */
async function attack(s: Sites, steps: Step[], tlsId?: { name: string; id: TestIdentity }): Promise<AttackResult> {
  const spec = { steps, timeoutMs: 5000, ...(tlsId !== undefined ? { tls: identityFiles(tlsId.name, tlsId.id) } : {}) };
  const child = s.net.spawn(s.siteB, process.execPath, [join(dir, 'attacker.mjs'), WAN_A, '6640', JSON.stringify(spec)]);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await new Promise<number | null>((r) => child.once('close', r));
  if (code !== 0 || out.trim() === '') throw new Error(`the attacker failed (${code}): ${err}`);
  return JSON.parse(out) as AttackResult;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/** The PeerMessages A sent the attacker. */
function messagesOf(r: AttackResult): Array<PeerMessage | UnknownBody> {
  return new FrameDecoder().push(Buffer.from(r.received, 'base64')).map((body) => decodePeerMessage(body));
}

interface LogLine {
  level: number;
  msg: string;
}

/** limed's JSON log lines written since `mark` (an offset into its stdout). */
function logSince(l: LimedProcess, mark: number): LogLine[] {
  return l.stdout
    .slice(mark)
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogLine];
      } catch {
        return []; // a line still being written
      }
    });
}

const WARN = 40; // pino's level number

/** Copied from peering.test.ts, shortened: TLS-peered sites A (writer, listens) and B (dials). */
async function peeredSites(prefix: string): Promise<Sites> {
  const s = baseSites(prefix);
  sites = s;
  const gre = (remote: string) => ({ name: 'wan', type: 'gre' as const, remote_ip: remote, key: 77 });
  const config = (side: 'a' | 'b') => ({
    listen: `${side === 'a' ? WAN_A : WAN_B}:6640`,
    peer: { name: side === 'a' ? 'site-b' : 'site-a', address: `${side === 'a' ? WAN_B : WAN_A}:6640`, dead_peer_ms: 1000 },
    tls: identityFiles(`limed-${side}`, side === 'a' ? certs.siteA : certs.siteB),
    state_dir: join(dir, `${prefix}-state-${side}`),
  });
  await startLimed(s, 'a', [gre(WAN_B)], { config: config('a') });
  await startLimed(s, 'b', [gre(WAN_A)], { config: config('b') });
  await waitPeered(s.limedA!);
  await waitPeered(s.limedB!);
  return s;
}


const running = (l: LimedProcess): boolean => l.child !== undefined && l.child.exitCode === null && l.child.signalCode === null;

/** A ping host A → host B every 50 ms for the whole file. */
interface PingRun {
  replies(): number;
  stop(): Promise<{ transmitted: number; received: number }>;
}

function startPing(s: Sites): PingRun {
  const child: ChildProcess = s.net.spawn(s.hostA, 'ping', ['-n', '-i', '0.05', HOST_B]);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  return {
    replies: () => (out.match(/bytes from/g) ?? []).length,
    async stop() {
      const closed = new Promise((r) => child.once('close', r));
      child.kill('SIGINT'); // ping prints its totals
      await closed;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      if (m === null) throw new Error(`no ping summary in: ${out.slice(-300)}`);
      return { transmitted: Number(m[1]), received: Number(m[2]) };
    },
  };
}

// Field 50 with wire type 7, which does not exist: a frame whose body is not a PeerMessage.
const GARBAGE = Uint8Array.of(0x97, 0x03, 0x01, 0x02, 0xde, 0xad, 0xbe, 0xef);
// version, then field 99 (length-delimited): a well-framed PeerMessage with a body no version knows.
const UNKNOWN = protobuf.Writer.create().uint32((1 << 3) | 0).uint32(PROTOCOL_VERSION).uint32((99 << 3) | 2).bytes(Uint8Array.of(1, 2, 3)).finish();
const OVER = MAX_MESSAGE_BYTES + 1;
const HELLO: PeerMessage = {
  version: PROTOCOL_VERSION,
  body: 'hello',
  hello: { protocol_version: PROTOCOL_VERSION, site: 'site-b', capabilities: ['flows/v1'], dead_peer_ms: 1000, log_id: '', applied_seq: 0 },
};

const badInputs: Array<{ name: string; steps: Step[]; reason: RegExp; goodbye: boolean }> = [
  { name: 'garbage', steps: [{ write: b64(encodeFrame(GARBAGE)) }], reason: /^cannot decode PeerMessage/, goodbye: true },
  {
    name: 'a length prefix over the maximum',
    // The prefix alone (3 bytes): the body is never sent.
    steps: [{ write: b64(encodeFrame(new Uint8Array(OVER), OVER).subarray(0, 3)) }],
    reason: new RegExp(`^framing error: frame announces ${OVER} bytes, more than the ${MAX_MESSAGE_BYTES}-byte limit`),
    goodbye: true,
  },
  {
    name: 'a truncated message',
    steps: [{ write: b64(Buffer.concat([Buffer.of(100), Buffer.alloc(10, 0x41)])) }, { end: true }],
    reason: /^stream ended inside a frame \(10 of 100 body bytes/,
    goodbye: false, // the attacker stopped sending: A just closes
  },
  { name: 'a message of an unknown type', steps: [{ write: b64(encodeFrame(UNKNOWN)) }], reason: /^message of an unknown type/, goodbye: true },
];

describeWhen(ROOT && haveOpenssl(), 'root and openssl', 'the control channel of peered sites under attack', () => {
  let s: Sites;
  let ping: PingRun;

  beforeAll(async () => {
    certs = makeTestCerts();
    writeFileSync(join(dir, 'attacker.mjs'), ATTACKER_SOURCE);
    s = await peeredSites(PREFIX);
    await vi.waitFor(() => expect(s.net.tryExec(s.hostA, 'ping', ['-c', '1', '-W', '1', HOST_B])).toBe(true), { timeout: 10_000 });
    ping = startPing(s);
  });
  afterAll(async () => {
    await sites?.destroy();
    sites = undefined;
  });

  /** Both daemons run, and host A's pings keep crossing the tunnel (a few more replies since `repliesBefore`). */
  async function expectStillServing(repliesBefore: number): Promise<void> {
    expect(running(s.limedA!), 'limed A runs').toBe(true);
    expect(running(s.limedB!), 'limed B runs').toBe(true);
    await vi.waitFor(() => expect(ping.replies()).toBeGreaterThanOrEqual(repliesBefore + 3), { timeout: 3000 });
  }

  /** A logged one warning for the attacker's connection: `prefix`, its address, `sep`, then matching `reason`. */
  async function expectLogged(mark: number, prefix: string, r: AttackResult, sep: string, reason: RegExp): Promise<void> {
    const head = `${prefix} ${WAN_B}:${r.localPort}${sep}`;
    await vi.waitFor(() => {
      const lines = logSince(s.limedA!, mark).filter((l) => l.msg.startsWith(head));
      expect(lines, `A's log since the attack:\n${s.limedA!.stdout.slice(mark)}`).toHaveLength(1);
      expect(lines[0]!.level).toBe(WARN);
      expect(lines[0]!.msg.slice(head.length)).toMatch(reason);
    }, { timeout: 3000 });
  }

  /** The real B's session at A was not touched, and the attacker never had one. */
  async function expectSessionUntouched(mark: number, r: AttackResult): Promise<void> {
    const lines = logSince(s.limedA!, mark);
    expect(lines.filter((l) => /^peer session with .* (up|down)\b/.test(l.msg)).map((l) => l.msg)).toEqual([]);
    expect(lines.filter((l) => l.msg.includes(`:${r.localPort}`) && /session|up \(/.test(l.msg))).toEqual([]);
    expect(await peerStatus(s.limedA!)).toMatchObject({ connected: true, tls_identity: expect.stringContaining('site-b') });
  }

  it('gives a plain TCP client nothing, closes it, and logs the failed TLS handshake', async () => {
    const [mark, replies] = [s.limedA!.stdout.length, ping.replies()];
    const r = await attack(s, [{ write: b64(encodeFrame(encodePeerMessage(HELLO))) }]);
    expect(r.connected).toBe(true);
    expect(r.timedOut).toBe(false); // A closed it
    expect(r.received).toBe(''); // not a byte: no TLS alert, no protobuf
    await expectLogged(mark, 'TLS handshake with', r, ' failed: ', /does not speak TLS/);
    await expectSessionUntouched(mark, r);
    await expectStillServing(replies);
  });

  const refusals: Array<{ name: string; id: () => TestIdentity; reason: RegExp }> = [
    { name: 'a certificate from another CA', id: () => certs.siteBOtherCa, reason: /^certificate for CN=site-b, DNS:site-b is not signed by the configured CA \(issuer lime-other-ca\)/ },
    { name: 'an expired certificate', id: () => certs.siteBExpired, reason: /^certificate for CN=site-b, DNS:site-b has expired \(valid until .*2020/ },
    { name: 'a certificate for the wrong name', id: () => certs.mallory, reason: /^certificate is for CN=mallory, DNS:mallory, expected site-b$/ },
  ];

  it.each(refusals)('refuses a TLS client with $name, logs why, and reads nothing from it', async ({ name, id, reason }) => {
    const [mark, replies] = [s.limedA!.stdout.length, ping.replies()];
    const r = await attack(s, [{ write: b64(encodeFrame(encodePeerMessage(HELLO))) }], { name: name.replaceAll(' ', '-'), id: id() });
    expect(r.connected).toBe(true);
    expect(r.timedOut).toBe(false);
    expect(r.received).toBe(''); // no hello_reply: its hello was never read
    await expectLogged(mark, 'refused a peer connection from', r, ': ', reason);
    await expectSessionUntouched(mark, r);
    await expectStillServing(replies);
  });

  it.each(badInputs)('closes a client with a valid certificate that sends $name before its hello, and logs why', async ({ steps, reason, goodbye }) => {
    const [mark, replies] = [s.limedA!.stdout.length, ping.replies()];
    const r = await attack(s, steps, { name: 'site-b', id: certs.siteB });
    expect(r.secured).toBe(true);
    expect(r.timedOut).toBe(false);
    const said = messagesOf(r);
    if (goodbye) {
      expect(said).toHaveLength(1);
      expect(said[0]).toMatchObject({ body: 'goodbye', goodbye: { code: 'BAD_REQUEST', reason: expect.stringMatching(reason) } });
    } else {
      expect(said).toEqual([]);
    }
    await expectLogged(mark, 'closing the peer connection with', r, ': ', reason);
    await expectSessionUntouched(mark, r);
    await expectStillServing(replies);
  });

  it.each(badInputs)('closes a session from a valid certificate that sends $name after its hello, and B peers again', async ({ steps, reason, goodbye }) => {
    const [mark, replies] = [s.limedA!.stdout.length, ping.replies()];
    const r = await attack(s, [{ write: b64(encodeFrame(encodePeerMessage(HELLO))) }, { awaitData: true }, ...steps], { name: 'site-b', id: certs.siteB });
    expect(r.timedOut).toBe(false);
    const said = messagesOf(r);
    expect(said[0]).toMatchObject({ body: 'hello_reply', hello_reply: { accepted: true, site: 'site-a' } });
    const goodbyes = said.filter((m) => m.body === 'goodbye');
    if (goodbye) {
      expect(goodbyes).toEqual([{ version: PROTOCOL_VERSION, body: 'goodbye', goodbye: { code: 'BAD_REQUEST', reason: expect.stringMatching(reason) } }]);
      expect(said.at(-1)!.body).toBe('goodbye');
    } else {
      expect(goodbyes).toEqual([]);
    }
    await expectLogged(mark, 'closing the peer connection with', r, ': ', reason);
    // The attacker's session replaced B's (expected: newest wins), and ended for its reason.
    const sessions = logSince(s.limedA!, mark).map((l) => l.msg).filter((m) => m.startsWith('peer session with site-b'));
    expect(sessions.slice(0, 3)).toEqual([
      expect.stringMatching(/down: replaced by a new connection$/),
      `peer session with site-b up (accepted, ${WAN_B}:${r.localPort})`,
      expect.stringMatching(new RegExp(`down: ${reason.source.replace(/^\^/, '')}`)),
    ]);
    await waitPeered(s.limedB!);
    await waitPeered(s.limedA!);
    await expectStillServing(replies);
  });

  it('kept both daemons running and forwarding throughout; B is peered again and a flow added at A is at B when limectl returns', async () => {
    const { transmitted, received } = await ping.stop();
    expect(transmitted).toBeGreaterThanOrEqual(50); // the ping covered the attacks
    expect(received / transmitted).toBeGreaterThanOrEqual(0.9);
    expect(running(s.limedA!)).toBe(true);
    expect(running(s.limedB!)).toBe(true);
    expect(logSince(s.limedA!, 0).filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([]); // no error (or fatal) at A
    expect(logSince(s.limedB!, 0).filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([]);
    await waitPeered(s.limedA!);
    await waitPeered(s.limedB!);
    expect(await peerStatus(s.limedA!)).toMatchObject({ connected: true, tls_identity: expect.stringContaining('site-b') });
    const barrier = await s.limedB!.ctl(['sync', 'barrier', '--json']);
    expect(barrier.code, barrier.stderr).toBe(0);
    expect(JSON.parse(barrier.stdout)).toMatchObject({ peered: true });
    const add = await s.limedA!.ctl(['add-flow', 'priority=900,ip,nw_dst=10.77.0.1,actions=drop']);
    expect(add.code, add.stderr).toBe(0);
    const dump = await s.limedB!.ctl(['dump-flows', '--json', '--site', 'local']);
    expect(dump.code, dump.stderr).toBe(0);
    const flows = JSON.parse(dump.stdout) as Array<{ priority: number; match: string; actions: string }>;
    expect(flows.filter((f) => f.priority === 900 && f.match.includes('nw_dst=10.77.0.1'))).toHaveLength(1);
    expect(s.net.tryExec(s.hostA, 'ping', ['-c', '2', '-W', '1', '-i', '0.2', HOST_B])).toBe(true);
  });
});
