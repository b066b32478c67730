/**
 * The native forwarding engine (native/engine.c) on its own thread, with AF_UNIX datagram
 * socket pairs as its ports (one frame per read and write, as a TAP device): flow-cache
 * hits are forwarded by the engine alone, everything else reaches onMiss on this thread,
 * a full hand-over ring drops and counts, and closing hands over what was waiting.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KEY_WORDS } from '../../../src/packet/key.js';
import { loadNative, type NativeEngine } from '../../../src/io/native.js';

const native = loadNative();
const OP_OUTPUT = 1;
const OP_NORMAL = 2;
const OP_DROP = 7;

/** An Ethernet/IPv4/UDP frame from 10.0.0.1:sport to 10.0.0.2:5000 with `payload` bytes. */
function udpFrame(sport: number, payload = 18): Buffer {
  const ip = Buffer.from('450000000000400040110000' + '0a000001' + '0a000002', 'hex');
  ip.writeUInt16BE(20 + 8 + payload, 2);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(sport, 0);
  udp.writeUInt16BE(5000, 2);
  udp.writeUInt16BE(8 + payload, 4);
  return Buffer.concat([Buffer.from('020000000002' + '020000000001' + '0800', 'hex'), ip, udp, Buffer.alloc(payload, 0xab)]);
}

function keyOf(frame: Buffer, port: number): Uint32Array {
  const key = new Uint32Array(KEY_WORDS);
  expect(native.lime_extract_key(frame, key, port)).toBe(0);
  return key;
}

/** xlate.ts program layout: [length, nRules, rule ids…, ops…]. */
const program = (rules: number[], ops: number[]): Uint32Array => Uint32Array.of(2 + rules.length + ops.length, rules.length, ...rules, ...ops);

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const EAGAIN = 11;
/** Write one frame, waiting (without an event loop turn) while the pair's queue is full (net.unix.max_dgram_qlen frames). */
function writeFrame(fd: number, frame: Buffer): void {
  for (let tries = 0; tries < 2000; tries++) {
    const r = native.lime_test_fd_write(fd, frame);
    if (r === frame.length) return;
    if (r !== -EAGAIN) throw new Error(`write failed: ${r}`);
    sleepSync(1);
  }
  throw new Error('the engine does not read its port');
}

async function until(what: string, cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const fds: number[] = [];
const engines: NativeEngine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) native.lime_engine_close(e);
  for (const fd of fds.splice(0)) native.lime_test_fd_close(fd);
});

/** An engine with ports 1..n, each an AF_UNIX pair: the engine holds [0], the test [1]. */
function rig(n: number) {
  const cache = native.lime_fc_new(256);
  const missed: Array<[number, Buffer]> = [];
  const engine = native.lime_engine_new(cache, (port, frame) => missed.push([port, frame]));
  engines.push(engine);
  const outside: number[] = [0];
  for (let p = 1; p <= n; p++) {
    const [inner, outer] = native.lime_test_socketpair();
    fds.push(inner, outer);
    native.lime_engine_add_port(engine, p, inner);
    outside.push(outer);
  }
  return { cache, engine, missed, outside };
}

describe('native forwarding engine', () => {
  it('forwards cache hits by itself and hands every other frame to onMiss', async () => {
    const { cache, engine, missed, outside } = rig(3);
    const a = udpFrame(1111);
    const b = udpFrame(2222);
    const c = udpFrame(3333);
    expect(native.lime_fc_insert(cache, keyOf(a, 1), program([7], [OP_OUTPUT, 2, OP_OUTPUT, 3]))).toBe(true);
    expect(native.lime_fc_insert(cache, keyOf(c, 1), program([], [OP_NORMAL, 1, 0, 0, 0, 0, 0]))).toBe(true);
    native.lime_engine_start(engine);

    writeFrame(outside[1]!, a);
    let out2: Buffer | null = null;
    let out3: Buffer | null = null;
    await until('a on ports 2 and 3', () => (out2 ??= native.lime_test_fd_read(outside[2]!)) !== null && (out3 ??= native.lime_test_fd_read(outside[3]!)) !== null);
    expect(out2!.equals(a)).toBe(true);
    expect(out3!.equals(a)).toBe(true);
    expect(missed).toHaveLength(0);

    // No entry, an op the engine does not run (NORMAL), and a runt: all to onMiss, intact.
    writeFrame(outside[1]!, b);
    writeFrame(outside[1]!, c);
    writeFrame(outside[3]!, Buffer.from('0200000000', 'hex'));
    await until('three frames handed over', () => missed.length === 3);
    expect(missed.map(([p, f]) => [p, f.toString('hex')])).toEqual([
      [1, b.toString('hex')],
      [1, c.toString('hex')],
      [3, '0200000000'],
    ]);
    expect(native.lime_test_fd_read(outside[2]!)).toBeNull(); // nothing else came out
    expect(native.lime_engine_stats(engine)).toEqual({ rx: 4, hits: 1, upcalls: 3, upcallDrops: 0, tx: 2, txErrors: 0 });
    expect(native.lime_fc_counters(cache, keyOf(a, 1))).toEqual([1, a.length]);

    // After an invalidation the same flow is a miss again.
    native.lime_fc_invalidate(cache);
    writeFrame(outside[1]!, a);
    await until('a handed over', () => missed.length === 4);
    expect(missed[3]![1].equals(a)).toBe(true);
  });

  it('drops (DROP op) and counts a write to a port it does not have', async () => {
    const { cache, engine, missed, outside } = rig(2);
    const a = udpFrame(1);
    const b = udpFrame(2);
    native.lime_fc_insert(cache, keyOf(a, 1), program([], [OP_DROP, 0]));
    native.lime_fc_insert(cache, keyOf(b, 1), program([], [OP_OUTPUT, 9]));
    native.lime_engine_start(engine);
    writeFrame(outside[1]!, a);
    writeFrame(outside[1]!, b);
    await until('both handled', () => native.lime_engine_stats(engine).rx === 2);
    await until('both run', () => native.lime_engine_stats(engine).hits === 2);
    expect(native.lime_engine_stats(engine)).toMatchObject({ hits: 2, tx: 0, txErrors: 1, upcalls: 0 });
    expect(missed).toHaveLength(0);
    expect(native.lime_test_fd_read(outside[2]!)).toBeNull();
  });

  it('counts what does not fit the hand-over ring while this thread is busy, and hands the rest over', async () => {
    const { engine, missed, outside } = rig(1);
    native.lime_engine_start(engine);
    const n = 400;
    for (let i = 0; i < n; i++) writeFrame(outside[1]!, udpFrame(i));
    // Busy here (no event loop turn) while the engine reads all of them.
    for (let i = 0; i < 200 && native.lime_engine_stats(engine).rx < n; i++) sleepSync(5);
    const st = native.lime_engine_stats(engine);
    expect(st.rx).toBe(n);
    expect(st.upcalls).toBe(256);
    expect(st.upcallDrops).toBe(n - 256);
    await until('the ring handed over', () => missed.length === 256);
    // In order: the first 256 frames.
    expect(missed.map(([, f]) => f.readUInt16BE(34))).toEqual(Array.from({ length: 256 }, (_, i) => i));
  });

  it('hands over what is waiting when closed, and refuses use after close', async () => {
    const { engine, missed, outside } = rig(1);
    native.lime_engine_start(engine);
    writeFrame(outside[1]!, udpFrame(9));
    for (let i = 0; i < 200 && native.lime_engine_stats(engine).upcalls < 1; i++) sleepSync(5);
    expect(missed).toHaveLength(0); // waiting in the ring: no event loop turn yet
    native.lime_engine_close(engine);
    expect(missed).toHaveLength(1);
    native.lime_engine_close(engine); // idempotent
    expect(() => native.lime_engine_stats(engine)).toThrow(/closed/);
    expect(() => native.lime_engine_start(engine)).toThrow(/closed/);
  });

  it('refuses bad ports and a second start', () => {
    const { engine, outside } = rig(1);
    expect(() => native.lime_engine_add_port(engine, 0, outside[1]!)).toThrow(/cannot add the port/);
    expect(() => native.lime_engine_add_port(engine, 64, outside[1]!)).toThrow(/cannot add the port/);
    expect(() => native.lime_engine_add_port(engine, 1, outside[1]!)).toThrow(/EEXIST/);
    native.lime_engine_start(engine);
    expect(() => native.lime_engine_start(engine)).toThrow(/EALREADY/);
    expect(() => native.lime_engine_add_port(engine, 2, outside[1]!)).toThrow(/EBUSY/);
    expect(() => native.lime_engine_new({} as never, () => {})).toThrow(/not a flow cache/);
  });
});
