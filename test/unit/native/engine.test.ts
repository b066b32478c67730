/**
 * The native forwarding engine (native/engine.c) on its own thread, with AF_UNIX datagram
 * socket pairs as its ports (one frame per read and write, as a TAP device): flow-cache
 * hits whose programs are only OUTPUT (to its own ports, none slow) and LEARN are run by
 * the engine alone and counted in the cache and the ports' stats; everything else — a
 * miss, DROP, NORMAL, an OUTPUT it cannot do, a frame from a slow port — reaches onMiss
 * on this thread whole; a full hand-over ring waits for this thread, then drops and
 * counts; stopping (or closing) hands over what was waiting, and a stopped engine reads
 * nothing until started again.
 * GRE ports need a started raw-socket handle (root): the integration tests cover them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KEY_WORDS } from '../../../src/packet/key.js';
import { collectGarbage } from '../../helpers/gc.js';
import { loadNative, type NativeEngine, type NativeFlowCache } from '../../../src/io/native.js';

const native = loadNative();
const OP_OUTPUT = 1;
const OP_NORMAL = 2;
const OP_DROP = 7;
const OP_LEARN = native.LIME_OP_LEARN;

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

/** An Ethernet/IPv4/TCP frame 10.0.0.1:sport → 10.0.0.2:80 with these TCP flags, no payload. */
function tcpFrame(flags: number, sport = 4000): Buffer {
  const ip = Buffer.from('450000280000400040060000' + '0a000001' + '0a000002', 'hex');
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(sport, 0);
  tcp.writeUInt16BE(80, 2);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  return Buffer.concat([Buffer.from('020000000002' + '020000000001' + '0800', 'hex'), ip, tcp]);
}

function keyOf(frame: Buffer, port: number): Uint32Array {
  const key = new Uint32Array(KEY_WORDS);
  expect(native.lime_extract_key(frame, key, port)).toBe(0);
  return key;
}

/** xlate.ts program layout: [length, nRules, rule ids…, ops…]. */
const program = (rules: number[], ops: number[]): Uint32Array => Uint32Array.of(2 + rules.length + ops.length, rules.length, ...rules, ...ops);
/** LEARN's operands: in-port, VLAN, source MAC (udpFrame's 02:00:00:00:00:01) high 16 and low 32 bits. */
const learn = (inPort: number): number[] => [OP_LEARN, inPort, 0, 0x0200, 0x00000001];

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const EAGAIN = 11;
/** Write one frame, waiting (without an event loop turn) while the pair's queue is full (the sender's socket buffer). */
function writeFrame(fd: number, frame: Buffer): void {
  for (let tries = 0; tries < 2000; tries++) {
    const r = native.lime_test_fd_write(fd, frame);
    if (r === frame.length) return;
    if (r !== -EAGAIN) throw new Error(`write failed: ${r}`);
    sleepSync(1);
  }
  throw new Error('the engine does not read its port');
}

/** Every frame waiting on fd. */
function readAll(fd: number): Buffer[] {
  const frames: Buffer[] = [];
  for (let f = native.lime_test_fd_read(fd); f !== null; f = native.lime_test_fd_read(fd)) frames.push(f);
  return frames;
}

async function until(what: string, cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function thrown(f: () => void): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
}

/** [rxPackets, rxBytes, txPackets, txBytes, txErrors, upcalls] of a port. */
function portStats(engine: NativeEngine, port: number): number[] {
  return allPortStats(engine, port).slice(0, 6);
}

/** The same and rxTooLong. */
function allPortStats(engine: NativeEngine, port: number): number[] {
  const out = new Float64Array(7);
  expect(native.lime_engine_port_stats(engine, port, out)).toBe(true);
  return [...out];
}

/** One whole harvest of the cache: [packets, bytes] by program. */
function harvest(cache: NativeFlowCache, flags = 0): Map<string, [number, number]> {
  const out = new Float64Array(4096);
  const state = new Uint32Array(2);
  const m = new Map<string, [number, number]>();
  do {
    const w = native.lime_fc_harvest(cache, out, flags, state);
    for (let i = 0; i < w; i += 3 + out[i + 2]!) m.set([...out.subarray(i + 3, i + 3 + out[i + 2]!)].join(','), [out[i]!, out[i + 1]!]);
  } while (state[0]! < native.lime_fc_usage(cache)[1]);
  return m;
}

const fds: number[] = [];
const engines: NativeEngine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) native.lime_engine_close(e);
  for (const fd of fds.splice(0)) native.lime_test_fd_close(fd);
});

/** An AF_UNIX pair: [the engine's end, the test's end]. */
function pair(): [number, number] {
  const [inner, outer] = native.lime_test_socketpair();
  fds.push(inner, outer);
  return [inner, outer];
}

/** An engine with ports 1..n, each an AF_UNIX pair: the engine holds [0], the test [1]. */
function rig(n: number, withOnMiss = true) {
  const cache = native.lime_fc_new(256);
  const missed: Array<[number, Buffer]> = [];
  const engine = native.lime_engine_new(cache, withOnMiss ? (port, frame) => missed.push([port, frame]) : null);
  engines.push(engine);
  const outside: number[] = [0];
  for (let p = 1; p <= n; p++) {
    const [inner, outer] = pair();
    native.lime_engine_add_port(engine, p, inner);
    outside.push(outer);
  }
  return { cache, engine, missed, outside };
}

describe('native forwarding engine', () => {
  it('forwards cache hits (OUTPUT, LEARN) by itself and hands every other frame to onMiss', async () => {
    const { cache, engine, missed, outside } = rig(3);
    const a = udpFrame(1111);
    const b = udpFrame(2222);
    const c = udpFrame(3333);
    const progA = program([7], [...learn(1), OP_OUTPUT, 2, OP_OUTPUT, 3]);
    expect(native.lime_fc_insert(cache, keyOf(a, 1), progA)).toBe(1);
    expect(native.lime_fc_insert(cache, keyOf(c, 1), program([], [OP_NORMAL, 1, 0, 0, 0, 0, 0]))).toBe(1);
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
    // In order per port (ports take turns, so port 3's may come between port 1's).
    expect(missed.filter(([p]) => p === 1).map(([, f]) => f.toString('hex'))).toEqual([b.toString('hex'), c.toString('hex')]);
    expect(missed.filter(([p]) => p === 3).map(([, f]) => f.toString('hex'))).toEqual(['0200000000']);
    expect(native.lime_test_fd_read(outside[2]!)).toBeNull(); // nothing else came out
    expect(native.lime_test_fd_read(outside[1]!)).toBeNull(); // LEARN sends nothing
    expect(native.lime_engine_stats(engine)).toEqual({ rx: 4, hits: 1, upcalls: 3, upcallDrops: 0, tx: 2, txErrors: 0, foreign: 0 });
    expect(native.lime_fc_counters(cache, keyOf(a, 1))).toEqual([1, a.length]);
    // Only what ran natively is counted in the cache: a's entry, not c's.
    expect(harvest(cache)).toEqual(new Map([[[...progA].join(','), [1, a.length]]]));

    // After an invalidation the same flow is a miss again.
    native.lime_fc_invalidate(cache);
    writeFrame(outside[1]!, a);
    await until('a handed over', () => missed.length === 4);
    expect(missed[3]![1].equals(a)).toBe(true);
    expect(native.lime_test_fd_read(outside[2]!)).toBeNull();
  });

  it('hands DROP, NORMAL, malformed programs and an OUTPUT it cannot do to onMiss whole, sending nothing', async () => {
    const { cache, engine, missed, outside } = rig(2);
    const programs: Uint32Array[] = [
      program([], [OP_DROP, 0]),
      program([3], [OP_OUTPUT, 2, OP_NORMAL, 1, 0, 0, 0, 0, 0]),
      program([], [OP_OUTPUT, 2, OP_OUTPUT, 9]), // port 9: the engine does not have it
      program([], [OP_OUTPUT, 2, OP_OUTPUT, native.LIME_ENGINE_MAX_PORTS]),
      program([], [OP_OUTPUT, 2, OP_OUTPUT, 0]),
      program([], [OP_OUTPUT, 2, OP_LEARN, 1, 0, 0x0200]), // LEARN short of an operand
      program([], [OP_OUTPUT, 2, OP_OUTPUT]), // OUTPUT without its port
      Uint32Array.of(9, 0, OP_OUTPUT, 2), // length word wrong
    ];
    const frames = programs.map((_, i) => udpFrame(100 + i));
    programs.forEach((p, i) => expect(native.lime_fc_insert(cache, keyOf(frames[i]!, 1), p)).toBe(1));
    native.lime_engine_start(engine);
    for (const f of frames) writeFrame(outside[1]!, f);
    await until('all handed over', () => missed.length === frames.length);
    expect(missed.map(([p, f]) => [p, f.toString('hex')])).toEqual(frames.map((f) => [1, f.toString('hex')]));
    // Nothing half done: no program's first OUTPUT went out.
    expect(native.lime_test_fd_read(outside[2]!)).toBeNull();
    expect(native.lime_engine_stats(engine)).toMatchObject({ rx: frames.length, hits: 0, tx: 0, txErrors: 0, upcalls: frames.length });
    expect(harvest(cache).size).toBe(0); // none counted as run natively
    expect(portStats(engine, 1)).toEqual([0, 0, 0, 0, 0, frames.length]);
  });

  it('hands a program without ops (not one the daemon installs) to onMiss, uncounted', async () => {
    const { cache, engine, missed, outside } = rig(2);
    const a = udpFrame(5);
    native.lime_fc_insert(cache, keyOf(a, 1), program([4], []));
    native.lime_engine_start(engine);
    writeFrame(outside[1]!, a);
    await until('a handed over', () => missed.length === 1);
    expect(missed[0]![1].equals(a)).toBe(true);
    expect(native.lime_engine_stats(engine).hits).toBe(0);
    expect(harvest(cache).size).toBe(0);
  });

  it('drops and counts a frame that fills its whole read buffer (possibly cut), and forwards the next', async () => {
    const { cache, engine, missed, outside } = rig(2);
    const big = Buffer.concat([udpFrame(6), Buffer.alloc(12_000 - udpFrame(6).length)]);
    const edge = Buffer.alloc(9216, 0x11); // exactly the buffer: cannot tell it was whole
    const a = udpFrame(7);
    native.lime_fc_insert(cache, keyOf(a, 1), program([], [OP_OUTPUT, 2]));
    native.lime_engine_start(engine);
    writeFrame(outside[1]!, big);
    writeFrame(outside[1]!, edge);
    writeFrame(outside[1]!, a);
    let out: Buffer | null = null;
    await until('a forwarded', () => (out ??= native.lime_test_fd_read(outside[2]!)) !== null);
    expect(out!.equals(a)).toBe(true);
    expect(missed).toHaveLength(0);
    expect(allPortStats(engine, 1)).toEqual([1, a.length, 0, 0, 0, 0, 2]);
  });

  it('counts each port’s native traffic and upcalls, and failed sends as tx errors', async () => {
    const { cache, engine, missed, outside } = rig(3);
    const a = udpFrame(1, 30);
    const b = udpFrame(2, 40);
    native.lime_fc_insert(cache, keyOf(a, 1), program([1], [...learn(1), OP_OUTPUT, 2, OP_OUTPUT, 3]));
    native.lime_fc_insert(cache, keyOf(b, 2), program([], [OP_OUTPUT, 1]));
    for (const p of [1, 2, 3]) expect(portStats(engine, p)).toEqual([0, 0, 0, 0, 0, 0]);
    native.lime_engine_start(engine);
    writeFrame(outside[1]!, a);
    writeFrame(outside[1]!, a);
    writeFrame(outside[2]!, b);
    writeFrame(outside[1]!, udpFrame(3)); // no entry
    writeFrame(outside[2]!, udpFrame(4)); // no entry
    writeFrame(outside[2]!, udpFrame(5)); // no entry
    await until('all read', () => native.lime_engine_stats(engine).rx === 6);
    await until('three handed over', () => missed.length === 3);
    expect(portStats(engine, 1)).toEqual([2, 2 * a.length, 1, b.length, 0, 1]);
    expect(portStats(engine, 2)).toEqual([1, b.length, 2, 2 * a.length, 0, 2]);
    expect(portStats(engine, 3)).toEqual([0, 0, 2, 2 * a.length, 0, 0]);
    expect(readAll(outside[1]!)).toEqual([b]);
    expect(readAll(outside[2]!)).toEqual([a, a]);
    expect(readAll(outside[3]!)).toEqual([a, a]);
    // A port the engine does not have, and an out too short.
    const out = new Float64Array(7).fill(-1);
    expect(native.lime_engine_port_stats(engine, 4, out)).toBe(false);
    expect(native.lime_engine_port_stats(engine, 0, out)).toBe(false);
    expect(native.lime_engine_port_stats(engine, native.LIME_ENGINE_MAX_PORTS, out)).toBe(false);
    expect([...out]).toEqual([-1, -1, -1, -1, -1, -1, -1]);
    expect(() => native.lime_engine_port_stats(engine, 1, new Float64Array(6))).toThrow(TypeError);
    expect(() => native.lime_engine_port_stats(engine, 1, new Uint32Array(6) as never)).toThrow(TypeError);

    // Port 3's peer reads nothing: once the engine's end has its send buffer full, sends fail.
    const big = udpFrame(6, 1400);
    native.lime_fc_insert(cache, keyOf(big, 1), program([], [OP_OUTPUT, 2, OP_OUTPUT, 3]));
    let sent = 0;
    for (let batch = 0; batch < 100 && portStats(engine, 3)[4] === 0; batch++) {
      for (let i = 0; i < 10; i++, sent++) {
        writeFrame(outside[1]!, big);
        readAll(outside[2]!); // port 2's peer keeps up
      }
      await until('the batch run', () => portStats(engine, 1)[0] === 2 + sent);
    }
    const [, , tx3, tx3Bytes, err3] = portStats(engine, 3);
    expect(err3).toBeGreaterThan(0);
    expect(tx3! + err3!).toBe(2 + sent);
    expect(tx3Bytes).toBe(2 * a.length + (tx3! - 2) * big.length);
    const queued = readAll(outside[3]!); // the two a were read above
    expect(queued).toHaveLength(tx3! - 2);
    expect(queued.every((f) => f.equals(big))).toBe(true);
    readAll(outside[2]!);
    expect(portStats(engine, 2).slice(2, 5)).toEqual([2 + sent, 2 * a.length + sent * big.length, 0]);
    // A failed send is still a run of the program (counted for its rule).
    expect(native.lime_engine_stats(engine)).toMatchObject({ hits: 3 + sent, tx: 1 + 2 * (2 + sent) - err3!, txErrors: err3, upcalls: 3 });
    expect(harvest(cache).get([...program([], [OP_OUTPUT, 2, OP_OUTPUT, 3])].join(','))).toEqual([sent, sent * big.length]);
  });

  it('sends every frame from a slow port to onMiss, and every program that outputs to a slow port', async () => {
    const { cache, engine, missed, outside } = rig(3);
    const a = udpFrame(1); // from port 1 to ports 2 and 3
    const b = udpFrame(2); // from port 2 to port 1
    const progA = program([], [OP_OUTPUT, 2, OP_OUTPUT, 3]);
    const progB = program([], [OP_OUTPUT, 1]);
    native.lime_fc_insert(cache, keyOf(a, 1), progA);
    native.lime_fc_insert(cache, keyOf(b, 2), progB);
    native.lime_engine_start(engine);

    // Port 1 slow (set while running): its own frames and frames to it go to onMiss.
    native.lime_engine_set_slow(engine, 1, true);
    writeFrame(outside[1]!, a);
    writeFrame(outside[2]!, b);
    await until('a and b handed over', () => missed.length === 2);
    expect(missed.map(([p, f]) => [p, f.toString('hex')])).toEqual([
      [1, a.toString('hex')],
      [2, b.toString('hex')],
    ]);
    for (const p of [1, 2, 3]) expect(native.lime_test_fd_read(outside[p]!), `port ${p}`).toBeNull();
    expect(portStats(engine, 1)[5]).toBe(1);

    // Port 3 slow instead: a's program outputs to it, so none of a goes out; b runs.
    native.lime_engine_set_slow(engine, 1, false);
    native.lime_engine_set_slow(engine, 3, true);
    writeFrame(outside[1]!, a);
    writeFrame(outside[2]!, b);
    await until('a handed over', () => missed.length === 3);
    await until('b on port 1', () => native.lime_engine_stats(engine).hits === 1);
    expect(missed[2]![0]).toBe(1);
    expect(missed[2]![1].equals(a)).toBe(true);
    expect(readAll(outside[1]!)).toEqual([b]);
    expect(native.lime_test_fd_read(outside[2]!)).toBeNull();
    expect(native.lime_test_fd_read(outside[3]!)).toBeNull();

    // None slow: a runs.
    native.lime_engine_set_slow(engine, 3, false);
    writeFrame(outside[1]!, a);
    await until('a run', () => native.lime_engine_stats(engine).hits === 2);
    expect(readAll(outside[2]!)).toEqual([a]);
    expect(readAll(outside[3]!)).toEqual([a]);
    expect(missed).toHaveLength(3);
    // The cache counted only the runs.
    expect(harvest(cache)).toEqual(
      new Map([
        [[...progA].join(','), [1, a.length]],
        [[...progB].join(','), [1, b.length]],
      ]),
    );
    expect(native.lime_engine_stats(engine)).toMatchObject({ rx: 5, hits: 2, upcalls: 3, tx: 3 });
  });

  it('stops and starts again: a stopped engine reads nothing, hands over what waited, and takes new ports', async () => {
    const { cache, engine, missed, outside } = rig(2);
    const a = udpFrame(1);
    const c = udpFrame(3);
    native.lime_fc_insert(cache, keyOf(a, 1), program([], [OP_OUTPUT, 2]));
    native.lime_fc_insert(cache, keyOf(c, 3), program([], [OP_OUTPUT, 1]));
    const [inner3, outer3] = pair();
    native.lime_engine_start(engine);
    writeFrame(outside[1]!, a);
    await until('a on port 2', () => native.lime_test_fd_read(outside[2]!) !== null);

    // Ports change only while stopped.
    const busy = thrown(() => native.lime_engine_add_port(engine, 3, inner3));
    expect(busy).toMatchObject({ code: 'EBUSY' });
    expect(String(busy)).toMatch(/lime_engine_add_port: port 3/);

    // A miss waiting in the ring (no event loop turn yet) is handed over by the stop itself.
    writeFrame(outside[1]!, udpFrame(9));
    for (let i = 0; i < 400 && native.lime_engine_stats(engine).upcalls < 1; i++) sleepSync(5);
    expect(missed).toHaveLength(0);
    native.lime_engine_stop(engine);
    expect(missed).toHaveLength(1);
    native.lime_engine_stop(engine); // idempotent
    native.lime_engine_add_port(engine, 3, inner3);
    expect(portStats(engine, 3)).toEqual([0, 0, 0, 0, 0, 0]);

    // Stopped: frames wait in the ports (fewer than the pair's queue holds).
    const before = native.lime_engine_stats(engine);
    for (let i = 0; i < 5; i++) writeFrame(outside[1]!, a);
    writeFrame(outer3, c);
    await new Promise((r) => setTimeout(r, 50));
    expect(native.lime_engine_stats(engine)).toEqual(before);
    expect(native.lime_test_fd_read(outside[2]!)).toBeNull();

    native.lime_engine_start(engine);
    const got: Buffer[] = [];
    await until('five a on port 2', () => (got.push(...readAll(outside[2]!)), got.length >= 5));
    expect(got).toEqual([a, a, a, a, a]);
    await until('c on port 1', () => native.lime_test_fd_read(outside[1]!) !== null);
    expect(native.lime_engine_stats(engine)).toMatchObject({ rx: before.rx + 6, hits: before.hits + 6 });
    expect(portStats(engine, 3)).toEqual([1, c.length, 0, 0, 0, 0]);
    expect(missed).toHaveLength(1);
    expect(() => native.lime_engine_start(engine)).toThrow(/EALREADY/);
  });

  it('reports its load: its thread\'s CPU time over all its runs, and reads that filled a whole batch', async () => {
    const { cache, engine, outside } = rig(2);
    const a = udpFrame(1);
    native.lime_fc_insert(cache, keyOf(a, 1), program([], [OP_OUTPUT, 2]));
    const load = new Float64Array(2);
    native.lime_engine_load(engine, load);
    expect([...load]).toEqual([0, 0]); // never ran
    // 150 frames wait while it is stopped: once started, its reads fill whole batches of 64.
    for (let i = 0; i < 150; i++) writeFrame(outside[1]!, a);
    native.lime_engine_start(engine);
    await until('150 frames read', () => native.lime_engine_stats(engine).rx >= 150, 10_000);
    native.lime_engine_load(engine, load);
    const cpuRunning = load[0]!;
    expect(cpuRunning).toBeGreaterThan(0);
    expect(load[1]).toBeGreaterThanOrEqual(1);
    expect(load[1]).toBeLessThanOrEqual(2); // 150 frames: at most two reads of 64
    native.lime_engine_stop(engine);
    native.lime_engine_load(engine, load);
    const cpuStopped = load[0]!;
    expect(cpuStopped).toBeGreaterThanOrEqual(cpuRunning); // the ended run's own total
    await new Promise((r) => setTimeout(r, 20));
    native.lime_engine_load(engine, load);
    expect(load[0]).toBe(cpuStopped); // nothing runs while stopped
    native.lime_engine_start(engine); // a second run adds to the first
    for (let i = 0; i < 200; i++) writeFrame(outside[1]!, a);
    await until('200 more frames read', () => native.lime_engine_stats(engine).rx >= 350, 10_000);
    native.lime_engine_load(engine, load);
    expect(load[0]).toBeGreaterThan(cpuStopped);
    expect(() => native.lime_engine_load(engine, new Float64Array(1))).toThrow(/Float64Array\(2\)/);
  });

  it('counts exactly across harvests that retire entries while the engine runs', async () => {
    const { cache, engine, outside } = rig(2);
    const a = udpFrame(1, 50);
    const key = keyOf(a, 1);
    const prog = program([5], [OP_OUTPUT, 2]);
    native.lime_fc_insert(cache, key, prog);
    native.lime_engine_start(engine);
    const send = async (n: number): Promise<void> => {
      const hits = native.lime_engine_stats(engine).hits;
      for (let i = 0; i < n; i++) writeFrame(outside[1]!, a);
      await until(`${n} run`, () => native.lime_engine_stats(engine).hits === hits + n);
      expect(readAll(outside[2]!)).toHaveLength(n);
    };
    await send(5);
    // Busy: RETIRE_IDLE keeps it and reports its counts; it keeps running natively.
    expect(harvest(cache, native.LIME_FC_RETIRE_IDLE)).toEqual(new Map([[[...prog].join(','), [5, 5 * a.length]]]));
    expect(native.lime_fc_usage(cache)[0]).toBe(1);
    await send(3);
    // RETIRE_ALL: the final counts; the slot is freed and the key installs again.
    expect(harvest(cache, native.LIME_FC_RETIRE_ALL)).toEqual(new Map([[[...prog].join(','), [3, 3 * a.length]]]));
    expect(native.lime_fc_usage(cache)[0]).toBe(0);
    expect(native.lime_fc_insert(cache, key, prog)).toBe(1);
    await send(2);
    expect(native.lime_fc_counters(cache, key)).toEqual([2, 2 * a.length]);
    // A plain harvest reports the counts but does not start an idle window: the entry had
    // packets since the last retiring harvest (its insert), so RETIRE_IDLE keeps it.
    expect(harvest(cache)).toEqual(new Map([[[...prog].join(','), [2, 2 * a.length]]]));
    expect(harvest(cache, native.LIME_FC_RETIRE_IDLE).size).toBe(0);
    expect(native.lime_fc_usage(cache)[0]).toBe(1);
    // Idle since that one: the next retiring harvest frees it, and the flow goes to JavaScript again.
    expect(harvest(cache, native.LIME_FC_RETIRE_IDLE).size).toBe(0);
    expect(native.lime_fc_usage(cache)[0]).toBe(0);
    expect(portStats(engine, 1).slice(0, 2)).toEqual([10, 10 * a.length]);
  });

  it('drops and counts what does not fit the hand-over ring while this thread stays busy, after waiting for it', async () => {
    const { engine, missed, outside } = rig(1);
    native.lime_engine_start(engine);
    const n = 256 + 20;
    for (let i = 0; i < n; i++) writeFrame(outside[1]!, udpFrame(i));
    // Busy here (no event loop turn) while the engine reads all of them: each frame past
    // the ring's 256 waits up to 10 ms for this thread, then is dropped.
    const t0 = Date.now();
    for (let i = 0; i < 600 && native.lime_engine_stats(engine).rx < n; i++) sleepSync(5);
    for (let i = 0; i < 600 && native.lime_engine_stats(engine).upcallDrops < n - 256; i++) sleepSync(5);
    const st = native.lime_engine_stats(engine);
    expect(st.rx).toBe(n);
    expect(st.upcalls).toBe(256);
    expect(st.upcallDrops).toBe(n - 256);
    expect(Date.now() - t0).toBeGreaterThanOrEqual((n - 256) * 10 - 20);
    await until('the ring handed over', () => missed.length === 256);
    // In order: the first 256 frames.
    expect(missed.map(([, f]) => f.readUInt16BE(34))).toEqual(Array.from({ length: 256 }, (_, i) => i));
    expect(portStats(engine, 1)[5]).toBe(256);
  });

  it('loses nothing to a full ring when this thread takes its turn in time (back-pressure)', async () => {
    const { engine, missed, outside } = rig(1);
    native.lime_engine_start(engine);
    const n = 1000;
    for (let i = 0; i < n; i += 50) {
      for (let j = i; j < i + 50; j++) writeFrame(outside[1]!, udpFrame(j));
      await new Promise((r) => setImmediate(r)); // the event loop runs: the ring drains
    }
    await until('all handed over', () => missed.length === n, 5000);
    expect(native.lime_engine_stats(engine)).toMatchObject({ rx: n, upcalls: n, upcallDrops: 0 });
    expect(missed.map(([, f]) => f.readUInt16BE(34))).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('runs without onMiss: hits are forwarded, the rest counted and let go', async () => {
    const { cache, engine, outside } = rig(2, false);
    const a = udpFrame(1);
    native.lime_fc_insert(cache, keyOf(a, 1), program([], [OP_OUTPUT, 2]));
    native.lime_engine_start(engine);
    writeFrame(outside[1]!, udpFrame(2));
    await until('the miss counted', () => native.lime_engine_stats(engine).upcalls === 1);
    await new Promise((r) => setTimeout(r, 20)); // a loop turn takes it (to nobody): a is not held behind it
    writeFrame(outside[1]!, a);
    await until('a on port 2', () => native.lime_test_fd_read(outside[2]!) !== null);
    native.lime_engine_stop(engine); // hands the miss over to nobody
    expect(native.lime_engine_stats(engine)).toMatchObject({ rx: 2, hits: 1, upcalls: 1, tx: 1 });
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
    expect(() => native.lime_engine_stop(engine)).toThrow(/closed/);
    expect(() => native.lime_engine_set_slow(engine, 1, true)).toThrow(/closed/);
    expect(() => native.lime_engine_port_stats(engine, 1, new Float64Array(6))).toThrow(/closed/);
  });

  it('holds a flow\'s hits behind its frames in this thread, and gives way when this thread is held up', async () => {
    // Engine hits counted when each handed-over frame reached this thread.
    const hitsAtMiss: number[] = [];
    const [in1, out1] = native.lime_test_socketpair();
    const [in2, out2] = native.lime_test_socketpair();
    fds.push(in1, out1, in2, out2);
    const cache = native.lime_fc_new(64);
    const engine = native.lime_engine_new(cache, () => hitsAtMiss.push(native.lime_engine_stats(engine).hits));
    engines.push(engine);
    native.lime_engine_add_port(engine, 1, in1);
    native.lime_engine_add_port(engine, 2, in2);
    native.lime_engine_start(engine);
    // A SYN (a miss) and then an ACK of the same connection (another cache entry, a hit).
    // Without the hold the ACK would always leave first (the engine runs it within
    // microseconds, this thread needs a wake-up); with it, it leaves only after the SYN
    // reached this thread — whenever this thread answers within 2 ms. A loaded machine may
    // miss that once: up to 5 connections are tried.
    let held = false;
    for (let sport = 4000; sport < 4005 && !held; sport++) {
      const ack = tcpFrame(0x10, sport);
      native.lime_fc_insert(cache, keyOf(ack, 1), program([], [OP_OUTPUT, 2]));
      const hits = native.lime_engine_stats(engine).hits;
      const n = hitsAtMiss.length;
      writeFrame(out1, tcpFrame(0x02, sport));
      writeFrame(out1, ack);
      await until('the SYN handed over', () => hitsAtMiss.length === n + 1);
      await until('the ACK forwarded', () => native.lime_engine_stats(engine).hits === hits + 1);
      expect(native.lime_test_fd_read(out2)!.equals(ack)).toBe(true);
      held = hitsAtMiss[n] === hits; // the ACK had not left when the SYN got here
    }
    expect(held).toBe(true);
    // This thread held up longer than the engine waits (2 ms): the ACK goes ahead.
    const ack = tcpFrame(0x10, 4009);
    native.lime_fc_insert(cache, keyOf(ack, 1), program([], [OP_OUTPUT, 2]));
    const hits = native.lime_engine_stats(engine).hits;
    const n = hitsAtMiss.length;
    writeFrame(out1, tcpFrame(0x12, 4009));
    writeFrame(out1, ack);
    for (let i = 0; i < 100 && native.lime_engine_stats(engine).hits === hits; i++) sleepSync(1);
    expect(native.lime_engine_stats(engine).hits).toBe(hits + 1);
    await until('the SYN-ACK handed over', () => hitsAtMiss.length === n + 1);
    expect(hitsAtMiss[n]).toBe(hits + 1);
  });

  it('keeps its flow cache alive while it runs, though nothing else refers to the cache', async () => {
    const [inner, outer] = native.lime_test_socketpair();
    const [inner2, outer2] = native.lime_test_socketpair();
    fds.push(inner, outer, inner2, outer2);
    const a = udpFrame(9);
    const engine = (() => {
      const cache = native.lime_fc_new(64);
      native.lime_fc_insert(cache, keyOf(a, 1), program([], [OP_OUTPUT, 2]));
      return native.lime_engine_new(cache, null); // the only holder of the cache from here on
    })();
    engines.push(engine);
    native.lime_engine_add_port(engine, 1, inner);
    native.lime_engine_add_port(engine, 2, inner2);
    native.lime_engine_start(engine);
    for (let i = 0; i < 3; i++) {
      collectGarbage();
      await new Promise((r) => setImmediate(r)); // finalizers run between turns
    }
    writeFrame(outer, a); // the engine looks it up in that cache: a freed one would crash here
    let out: Buffer | null = null;
    await until('a forwarded', () => (out ??= native.lime_test_fd_read(outer2)) !== null);
    expect(out!.equals(a)).toBe(true);
  });

  it('refuses bad ports and a second start', () => {
    const { engine, outside } = rig(1);
    expect(thrown(() => native.lime_engine_add_port(engine, 0, outside[1]!))).toMatchObject({ code: 'EINVAL' });
    expect(thrown(() => native.lime_engine_add_port(engine, native.LIME_ENGINE_MAX_PORTS, outside[1]!))).toMatchObject({ code: 'EINVAL' });
    expect(thrown(() => native.lime_engine_add_port(engine, 2, -1))).toMatchObject({ code: 'EINVAL' });
    expect(thrown(() => native.lime_engine_add_port(engine, 1, outside[1]!))).toMatchObject({ code: 'EEXIST' });
    native.lime_engine_start(engine);
    expect(thrown(() => native.lime_engine_start(engine))).toMatchObject({ code: 'EALREADY' });
    expect(thrown(() => native.lime_engine_add_port(engine, 2, outside[1]!))).toMatchObject({ code: 'EBUSY' });
    expect(() => native.lime_engine_new({} as never, () => {})).toThrow(/not a flow cache/);
    expect(() => native.lime_engine_new(native.lime_fc_new(2), 5 as never)).toThrow(TypeError);
  });
});
