/**
 * The journal against its promises: every acknowledged append survives close/reopen and
 * any crash point (simulated by copying the directory, which is what kill -9 leaves), a
 * torn or corrupt tail is cut and reported, never half-applied, and appends are group
 * committed. Files are checked byte for byte against a reference encoder written here from
 * the format in the module header, not from the module's own encoder.
 */
import { constants as fsConstants, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Journal, JournalError, type JournalIoOp, type JournalOptions } from '../../../src/sync/journal.js';

const HEADER = 16;
const dirs: string[] = [];

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lime-journal-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Deterministic payload for a seq: 1..40 bytes (some 0-byte ones too) derived from seq. */
function payload(seq: number): Uint8Array {
  const size = seq % 13 === 0 ? 0 : 1 + ((seq * 7) % 40);
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (seq * 31 + i * 17) & 0xff;
  return b;
}

/** Reference encoder: u32 size, u32 crc32(seq bytes + payload), u64 seq, payload; LE. */
function refRecord(seq: number, data: Uint8Array): Buffer {
  const out = Buffer.alloc(HEADER + data.length);
  const v = new DataView(out.buffer, out.byteOffset, out.length);
  v.setUint32(0, data.length, true);
  v.setBigUint64(8, BigInt(seq), true);
  out.set(data, HEADER);
  v.setUint32(4, crc32(out.subarray(8)), true);
  return out;
}

function refJournal(seqs: number[]): Buffer {
  return Buffer.concat(seqs.map((s) => refRecord(s, payload(s))));
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let s = from; s <= to; s++) out.push(s);
  return out;
}

async function appendAll(j: Journal, seqs: number[]): Promise<void> {
  await Promise.all(seqs.map((s) => j.append(s, payload(s))));
}

/** A journal dir holding records `seqs`, written through the journal itself. */
async function journalWith(seqs: number[]): Promise<string> {
  const dir = freshDir();
  const j = await Journal.open(dir);
  for (const s of seqs) await j.append(s, payload(s));
  await j.close();
  return dir;
}

async function reopen(dir: string, opts?: JournalOptions): Promise<Journal> {
  return Journal.open(dir, opts);
}

function seqsOf(j: Journal): number[] {
  return j.records.map((r) => r.seq);
}

/** Every record's data is the payload its seq was appended with. */
function expectPayloads(j: Journal): void {
  for (const r of j.records) expect(Buffer.from(r.data).equals(Buffer.from(payload(r.seq))), `payload of seq ${r.seq}`).toBe(true);
}

async function rejection(p: Promise<unknown>): Promise<JournalError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(JournalError);
    return err as JournalError;
  }
  throw new Error('expected a JournalError');
}

describe('append and reopen', () => {
  it('gives back the records in order, with lastSeq, and writes the documented format', async () => {
    const seqs = [1, 2, 3, 7, 13, 2 ** 32 + 5, 2 ** 53 - 1];
    const dir = await journalWith(seqs);
    expect(readFileSync(join(dir, 'journal')).equals(refJournal(seqs))).toBe(true);
    const j = await reopen(dir);
    expect(seqsOf(j)).toEqual(seqs);
    expectPayloads(j);
    expect(j.lastSeq).toBe(2 ** 53 - 1);
    expect(j.snapshot).toBeUndefined();
    expect(j.recovery).toEqual({ truncatedBytes: 0, offset: refJournal(seqs).length, reason: undefined });
    expect(j.sizeBytes).toBe(refJournal(seqs).length);
    await j.close();
  });

  it('starts empty in a new nested directory created 0700', async () => {
    const dir = join(freshDir(), 'state', 'journal');
    const j = await Journal.open(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(j.lastSeq).toBe(0);
    expect(j.records).toEqual([]);
    expect(j.sizeBytes).toBe(0);
    await j.close();
  });

  it('refuses a seq that does not increase, and writes nothing for it', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir);
    await j.append(5, payload(5));
    const before = readFileSync(join(dir, 'journal'));
    for (const bad of [5, 4, 0, -1, 6.5, Number.NaN, 2 ** 53]) {
      const err = await rejection(j.append(bad, payload(1)));
      expect(err.path).toBe(join(dir, 'journal'));
    }
    expect((await rejection(j.append(5, payload(5)))).message).toMatch(/seq 5 is not greater than the last seq 5/);
    expect(readFileSync(join(dir, 'journal')).equals(before)).toBe(true);
    expect(j.lastSeq).toBe(5);
    await j.append(6, payload(6));
    await j.close();
    const r = await reopen(dir);
    expect(seqsOf(r)).toEqual([5, 6]);
    await r.close();
  });

  it('refuses a record over maxRecordBytes, and appends after close', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir, { maxRecordBytes: 10 });
    await j.append(1, new Uint8Array(10));
    expect((await rejection(j.append(2, new Uint8Array(11)))).message).toMatch(/11 bytes exceed the 10-byte record limit/);
    await j.append(2, new Uint8Array(3));
    await j.close();
    expect((await rejection(j.append(3, new Uint8Array(1)))).message).toMatch(/closed/);
    expect(readFileSync(join(dir, 'journal')).length).toBe(HEADER + 10 + HEADER + 3);
  });

  it('copies the payload, so the caller may reuse its buffer at once', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir);
    const buf = Uint8Array.from(payload(3));
    const done = j.append(3, buf);
    buf.fill(0xee);
    await done;
    await j.close();
    const r = await reopen(dir);
    expectPayloads(r);
    expect(seqsOf(r)).toEqual([3]);
    await r.close();
  });

  it('close waits for appends in flight', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir);
    let resolved = 0;
    for (const s of range(1, 20)) void j.append(s, payload(s)).then(() => resolved++);
    await j.close();
    expect(resolved).toBe(20);
    const r = await reopen(dir);
    expect(seqsOf(r)).toEqual(range(1, 20));
    await r.close();
  });
});

describe('group commit', () => {
  it('acknowledges an append only after its write to the O_DSYNC journal has returned', async () => {
    const dir = freshDir();
    const probe = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const realWritev = proto.writev;
    const events: string[] = [];
    const spy = vi.spyOn(proto, 'writev').mockImplementation(async function (this: FileHandle, ...args: Parameters<FileHandle['writev']>) {
      const r = await realWritev.apply(this, args);
      events.push('write');
      return r;
    });
    try {
      const j = await Journal.open(dir);
      // The handle is O_DSYNC (a write returns once durable): the kernel says so.
      const fd = readdirSync('/proc/self/fd').find((n) => {
        try {
          return readlinkSync(`/proc/self/fd/${n}`) === join(dir, 'journal');
        } catch {
          return false;
        }
      });
      expect(fd, 'the journal is open').toBeDefined();
      const flags = parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
      expect(flags & fsConstants.O_DSYNC).toBe(fsConstants.O_DSYNC);
      for (const s of [1, 2, 3]) await j.append(s, payload(s)).then(() => events.push(`ack ${s}`));
      await Promise.all([4, 5].map((s) => j.append(s, payload(s)).then(() => events.push(`ack ${s}`))));
      await j.close();
      expect(events).toEqual(['write', 'ack 1', 'write', 'ack 2', 'write', 'ack 3', 'write', 'ack 4', 'ack 5']);
    } finally {
      spy.mockRestore();
    }
  });

  it('writes a burst of 200 appends with few syncs, all durable', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir);
    await appendAll(j, range(1, 200));
    expect(j.stats.appends).toBe(200);
    expect(j.stats.records).toBe(200);
    expect(j.stats.syncs).toBeGreaterThanOrEqual(1);
    expect(j.stats.syncs).toBeLessThan(50);
    expect(j.stats.bytes).toBe(refJournal(range(1, 200)).length);
    await j.close();
    const r = await reopen(dir);
    expect(seqsOf(r)).toEqual(range(1, 200));
    expectPayloads(r);
    await r.close();
  });

  it('collects the appends issued while a sync is in flight into one write and one sync', async () => {
    const dir = freshDir();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const atFirstSync = new Promise<void>((resolve) => (reached = resolve));
    let syncs = 0;
    let writes = 0;
    const j = await Journal.open(dir, {
      faultHook: (op) => {
        if (op === 'write') writes++;
        if (op !== 'sync') return;
        if (++syncs > 1) return;
        reached();
        return gate;
      },
    });
    const writesAtOpen = writes;
    const first = j.append(1, payload(1));
    await atFirstSync;
    const rest: Promise<void>[] = [];
    for (const s of range(2, 51)) rest.push(j.append(s, payload(s)));
    await new Promise((r) => setTimeout(r, 20));
    expect(j.stats.appends).toBe(0); // nothing acknowledged before its sync
    release();
    await Promise.all([first, ...rest]);
    expect(j.stats.syncs).toBe(2);
    expect(writes - writesAtOpen).toBe(2);
    await j.close();
    expect(readFileSync(join(dir, 'journal')).equals(refJournal(range(1, 51)))).toBe(true);
  });
});

describe('torn tail', () => {
  it('discards a record cut at every byte offset, keeps the ones before, and appends cleanly after', async () => {
    const seqs = [1, 2, 3, 4, 5, 6];
    const src = await journalWith(seqs);
    const full = readFileSync(join(src, 'journal'));
    const lastStart = refJournal(seqs.slice(0, -1)).length;
    const lastSize = HEADER + payload(6).length;
    expect(full.length).toBe(lastStart + lastSize);
    for (let cut = 0; cut < lastSize; cut++) {
      const dir = freshDir();
      writeFileSync(join(dir, 'journal'), full.subarray(0, lastStart + cut));
      const j = await Journal.open(dir);
      expect(seqsOf(j), `cut ${cut}`).toEqual([1, 2, 3, 4, 5]);
      expectPayloads(j);
      expect(j.recovery.truncatedBytes, `cut ${cut}`).toBe(cut);
      expect(j.recovery.offset).toBe(lastStart);
      if (cut === 0) expect(j.recovery.reason).toBeUndefined();
      else expect(j.recovery.reason).toMatch(new RegExp(`^torn record at offset ${lastStart}`));
      expect(statSync(join(dir, 'journal')).size).toBe(lastStart);
      expect(j.lastSeq).toBe(5);
      await j.append(9, payload(9));
      await j.close();
      const again = await Journal.open(dir);
      expect(seqsOf(again), `cut ${cut}`).toEqual([1, 2, 3, 4, 5, 9]);
      expect(again.recovery.truncatedBytes).toBe(0);
      expectPayloads(again);
      await again.close();
    }
  });
});

describe('corruption', () => {
  const seqs = [1, 2, 3, 4, 5, 6];
  const offsets = seqs.map((_, i) => refJournal(seqs.slice(0, i)).length);
  const total = refJournal(seqs).length;

  function withBytes(mutate: (b: Buffer) => void): string {
    const dir = freshDir();
    const bytes = refJournal(seqs);
    mutate(bytes);
    writeFileSync(join(dir, 'journal'), bytes);
    return dir;
  }

  it('discards the last record when a payload byte flips', async () => {
    const j = await Journal.open(withBytes((b) => (b[total - 1]! ^= 0x01)));
    expect(seqsOf(j)).toEqual([1, 2, 3, 4, 5]);
    expect(j.recovery.reason).toBe(`record at offset ${offsets[5]} has a bad checksum`);
    expect(j.recovery.truncatedBytes).toBe(total - offsets[5]!);
    await j.close();
  });

  it('discards a middle record with a flipped seq byte and everything after it', async () => {
    const j = await Journal.open(withBytes((b) => (b[offsets[2]! + 8]! ^= 0x80)));
    expect(seqsOf(j)).toEqual([1, 2]);
    expectPayloads(j);
    expect(j.recovery.reason).toBe(`record at offset ${offsets[2]} has a bad checksum`);
    expect(j.recovery.truncatedBytes).toBe(total - offsets[2]!);
    expect(statSync(join(j.dir, 'journal')).size).toBe(offsets[2]);
    await j.close();
  });

  it('discards a garbage length (0xffffffff) as oversize, not as a huge record', async () => {
    const j = await Journal.open(withBytes((b) => b.writeUInt32LE(0xffffffff, offsets[4]!)));
    expect(seqsOf(j)).toEqual([1, 2, 3, 4]);
    expect(j.recovery.reason).toMatch(new RegExp(`^record at offset ${offsets[4]} announces 4294967295 bytes, more than the`));
    expect(j.recovery.truncatedBytes).toBe(total - offsets[4]!);
    await j.close();
  });

  it('discards a length within the limit but past the end of the file as torn', async () => {
    const j = await Journal.open(withBytes((b) => b.writeUInt32LE(1000, offsets[5]!)));
    expect(seqsOf(j)).toEqual([1, 2, 3, 4, 5]);
    expect(j.recovery.reason).toMatch(new RegExp(`^torn record at offset ${offsets[5]}`));
    await j.close();
  });

  it('discards a well-formed record whose seq does not increase', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'journal'), Buffer.concat([refJournal([1, 2, 3]), refRecord(3, payload(3)), refRecord(4, payload(4))]));
    const j = await Journal.open(dir);
    expect(seqsOf(j)).toEqual([1, 2, 3]);
    expect(j.recovery.reason).toBe(`record at offset ${refJournal([1, 2, 3]).length} has seq 3, not greater than the previous 3`);
    await j.close();
  });

  it('treats a zero-filled tail (a crash after the size grew, before the data landed) as a bad record', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'journal'), Buffer.concat([refJournal([1, 2]), Buffer.alloc(64)]));
    const j = await Journal.open(dir);
    expect(seqsOf(j)).toEqual([1, 2]);
    expect(j.recovery.truncatedBytes).toBe(64);
    await j.close();
  });
});

describe('compaction', () => {
  const snap = Buffer.from('table at 60');

  it('keeps the snapshot and only the records after it', async () => {
    const dir = await journalWith(range(1, 100));
    const j = await reopen(dir);
    await j.compact(60, snap);
    expect(j.snapshotSeq).toBe(60);
    expect(j.sizeBytes).toBe(refJournal(range(61, 100)).length);
    expect(j.stats.records).toBe(40);
    await j.close();
    expect(readFileSync(join(dir, 'journal')).equals(refJournal(range(61, 100)))).toBe(true);
    expect(readFileSync(join(dir, 'snapshot')).equals(refRecord(60, snap))).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['journal', 'snapshot']);
    const r = await reopen(dir);
    expect(r.snapshot?.seq).toBe(60);
    expect(Buffer.from(r.snapshot!.data).toString()).toBe('table at 60');
    expect(seqsOf(r)).toEqual(range(61, 100));
    expectPayloads(r);
    expect(r.lastSeq).toBe(100);
    await r.close();
  });

  it('keeps appends issued during a compaction, in order', async () => {
    const dir = await journalWith(range(1, 100));
    const j = await reopen(dir);
    const compacted = j.compact(60, snap);
    const appended = range(101, 110).map((s) => j.append(s, payload(s)));
    await Promise.all([compacted, ...appended]);
    // A second round: the new journal is the one appends now go to.
    await appendAll(j, range(111, 115));
    await j.compact(105, Buffer.from('table at 105'));
    await j.close();
    const r = await reopen(dir);
    expect(r.snapshot?.seq).toBe(105);
    expect(seqsOf(r)).toEqual(range(106, 115));
    expectPayloads(r);
    await r.close();
  });

  it('swaps the journal file only between batches, and queues appends made meanwhile', async () => {
    const dir = await journalWith(range(1, 100));
    const journalPath = join(dir, 'journal');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = false;
    let reached!: () => void;
    const atHeldSync = new Promise<void>((resolve) => (reached = resolve));
    const late: Promise<void>[] = [];
    const ops: string[] = [];
    const j: Journal = await Journal.open(dir, {
      faultHook: (op, path) => {
        ops.push(`${op} ${path.slice(dir.length + 1)}`);
        // Hold the first append batch's sync, so it is in flight when the compaction's step 2 begins.
        if (op === 'sync' && path === journalPath && !held) {
          held = true;
          reached();
          return gate;
        }
        if (op === 'syncDir' && ops.includes('rename snapshot.tmp') && !ops.includes('write journal.tmp')) release();
        // An append made while the new journal is being written must land after it, in order.
        if (op === 'write' && path.endsWith('journal.tmp')) late.push(j.append(106, payload(106)));
      },
    });
    ops.length = 0;
    const first = j.append(101, payload(101));
    await atHeldSync;
    const compacted = j.compact(60, snap);
    const queued = range(102, 105).map((s) => j.append(s, payload(s)));
    await Promise.all([first, compacted, ...queued]);
    await Promise.all(late);
    expect(late).toHaveLength(1);
    // No journal write between the rewrite's write and its rename.
    const rewrite = ops.indexOf('write journal.tmp');
    const swapped = ops.indexOf('rename journal.tmp');
    expect(rewrite).toBeGreaterThan(ops.indexOf('sync journal'));
    expect(ops.slice(rewrite, swapped).filter((o) => o.endsWith(' journal'))).toEqual([]);
    await j.close();
    const r = await reopen(dir);
    expect(r.snapshot?.seq).toBe(60);
    expect(seqsOf(r)).toEqual(range(61, 106));
    expectPayloads(r);
    await r.close();
  });

  it('covers appends that were accepted but not yet written when it started', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir);
    const appended = range(1, 30).map((s) => j.append(s, payload(s)));
    await Promise.all([j.compact(20, snap), ...appended]);
    await j.close();
    const r = await reopen(dir);
    expect(r.snapshot?.seq).toBe(20);
    expect(seqsOf(r)).toEqual(range(21, 30));
    await r.close();
  });

  it('can compact everything, leaving an empty journal', async () => {
    const dir = await journalWith(range(1, 10));
    const j = await reopen(dir);
    await j.compact(10, snap);
    expect(j.sizeBytes).toBe(0);
    await j.append(11, payload(11));
    await j.close();
    const r = await reopen(dir);
    expect([r.snapshot?.seq, ...seqsOf(r)]).toEqual([10, 11]);
    await r.close();
  });

  it('refuses a seq beyond lastSeq or below the snapshot', async () => {
    const dir = await journalWith(range(1, 10));
    const j = await reopen(dir);
    expect((await rejection(j.compact(11, snap))).message).toMatch(/seq 11 is outside 0\.\.10/);
    await j.compact(5, snap);
    expect((await rejection(j.compact(4, snap))).message).toMatch(/seq 4 is outside 5\.\.10/);
    await j.close();
    const r = await reopen(dir);
    expect(r.snapshot?.seq).toBe(5);
    await r.close();
  });
});

describe('crash during compaction', () => {
  const snap = Buffer.from('snapshot through 60');

  function stateDir(files: Record<string, Buffer>): string {
    const dir = freshDir();
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    return dir;
  }

  it('ignores and removes snapshot.tmp left before the rename', async () => {
    const dir = stateDir({ journal: refJournal(range(1, 100)), 'snapshot.tmp': refRecord(60, snap).subarray(0, 9) });
    const j = await Journal.open(dir);
    expect(j.snapshot).toBeUndefined();
    expect(seqsOf(j)).toEqual(range(1, 100));
    expect(existsSync(join(dir, 'snapshot.tmp'))).toBe(false);
    await j.close();
  });

  it('skips journal records the renamed snapshot already covers', async () => {
    const dir = stateDir({ journal: refJournal(range(1, 100)), snapshot: refRecord(60, snap) });
    const j = await Journal.open(dir);
    expect(j.snapshot?.seq).toBe(60);
    expect(seqsOf(j)).toEqual(range(61, 100));
    expect(j.lastSeq).toBe(100);
    // The next compaction drops the covered records for good.
    await j.compact(60, snap);
    await j.close();
    expect(readFileSync(join(dir, 'journal')).equals(refJournal(range(61, 100)))).toBe(true);
  });

  it('ignores and removes journal.tmp left before the rename', async () => {
    const dir = stateDir({
      journal: refJournal(range(1, 100)),
      snapshot: refRecord(60, snap),
      'journal.tmp': refJournal(range(61, 80)),
    });
    const j = await Journal.open(dir);
    expect([j.snapshot?.seq, ...seqsOf(j)]).toEqual([60, ...range(61, 100)]);
    expect(readdirSync(dir).sort()).toEqual(['journal', 'snapshot']);
    await j.close();
  });

  it('opens to the same logical state from a copy taken before every I/O step, with appends racing', async () => {
    const dir = await journalWith(range(1, 100));
    let acked = 100;
    const crashes: { dir: string; acked: number; op: JournalIoOp }[] = [];
    const j = await Journal.open(dir, {
      faultHook: (op) => {
        const copy = freshDir();
        cpSync(dir, copy, { recursive: true });
        crashes.push({ dir: copy, acked, op });
      },
    });
    crashes.length = 0; // only the compaction's steps
    const compacted = j.compact(60, snap);
    const appended = range(101, 120).map((s) => j.append(s, payload(s)).then(() => (acked = Math.max(acked, s))));
    await Promise.all([compacted, ...appended]);
    await j.close();
    const ops = new Set(crashes.map((c) => c.op));
    for (const op of ['write', 'sync', 'rename', 'syncDir'] as const) expect(ops.has(op), op).toBe(true);
    crashes.push({ dir, acked: 120, op: 'sync' });
    for (const crash of crashes) {
      const r = await Journal.open(crash.dir);
      const covered = r.snapshot?.seq ?? 0;
      if (r.snapshot) expect(Buffer.from(r.snapshot.data).equals(snap)).toBe(true);
      expect([0, 60]).toContain(covered);
      const seqs = seqsOf(r);
      // Contiguous after the snapshot, through at least every acknowledged append.
      expect(seqs).toEqual(range(covered + 1, covered + seqs.length));
      expect(covered + seqs.length).toBeGreaterThanOrEqual(crash.acked);
      expectPayloads(r);
      expect(readdirSync(crash.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      await r.close();
    }
  });
});

describe('errors', () => {
  it('throws a JournalError naming the snapshot when its checksum is bad', async () => {
    const dir = freshDir();
    const bad = refRecord(60, Buffer.from('snapshot'));
    bad[bad.length - 1]! ^= 0x20;
    writeFileSync(join(dir, 'snapshot'), bad);
    writeFileSync(join(dir, 'journal'), refJournal([61]));
    const err = await rejection(Journal.open(dir));
    expect(err.path).toBe(join(dir, 'snapshot'));
    expect(err.message).toContain(join(dir, 'snapshot'));
    expect(err.message).toMatch(/bad checksum/);
    // Open did not touch the journal.
    expect(readFileSync(join(dir, 'journal')).equals(refJournal([61]))).toBe(true);
  });

  it('throws on a truncated snapshot and on trailing bytes after it', async () => {
    const good = refRecord(7, Buffer.from('snapshot data'));
    for (const bytes of [good.subarray(0, good.length - 1), Buffer.concat([good, Buffer.from([0])])]) {
      const dir = freshDir();
      writeFileSync(join(dir, 'snapshot'), bytes);
      expect((await rejection(Journal.open(dir))).path).toBe(join(dir, 'snapshot'));
    }
  });

  it('fails for good when a write fails: that append and all later ones reject', async () => {
    const dir = freshDir();
    let failWrites = false;
    const j = await Journal.open(dir, {
      faultHook: (op, path) => {
        if (failWrites && op === 'write') throw Object.assign(new Error(`EIO: i/o error, write '${path}'`), { code: 'EIO' });
      },
    });
    await appendAll(j, [1, 2]);
    failWrites = true;
    const err = await rejection(j.append(3, payload(3)));
    expect(err.path).toBe(join(dir, 'journal'));
    expect(err.message).toMatch(/append failed.*EIO/);
    expect((err.cause as NodeJS.ErrnoException).code).toBe('EIO');
    failWrites = false; // the disk is fine again, but the journal must not trust it
    expect(await rejection(j.append(4, payload(4)))).toBe(err);
    expect(await rejection(j.compact(2, payload(0)))).toBe(err);
    expect(j.failure).toBe(err);
    await j.close();
    const r = await reopen(dir);
    expect(seqsOf(r)).toEqual([1, 2]);
    await r.close();
  });

  it('rejects every queued append when a sync fails', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir, {
      faultHook: (op) => {
        if (op === 'sync') throw new Error('EIO: fsync failed');
      },
    });
    const results = await Promise.allSettled(range(1, 10).map((s) => j.append(s, payload(s))));
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof JournalError)).toBe(true);
    expect(j.stats.appends).toBe(0);
    await j.close();
  });

  it('a failed snapshot write rejects the compaction only; the journal stays usable', async () => {
    const dir = await journalWith(range(1, 10));
    const j = await Journal.open(dir, {
      faultHook: (op, path) => {
        if (op === 'sync' && path.endsWith('snapshot.tmp')) throw new Error('ENOSPC: no space left');
      },
    });
    const err = await rejection(j.compact(5, Buffer.from('s')));
    expect(err.path).toBe(join(dir, 'snapshot'));
    expect(err.message).toMatch(/ENOSPC/);
    expect(j.failure).toBeUndefined();
    await j.append(11, payload(11));
    await j.close();
    expect(readdirSync(dir)).toEqual(['journal']);
    const r = await reopen(dir);
    expect(r.snapshot).toBeUndefined();
    expect(seqsOf(r)).toEqual(range(1, 11));
    await r.close();
  });
});

describe('reset (a snapshot of another log)', () => {
  it('drops every record and continues after the new snapshot, below or beyond the old seq', async () => {
    for (const [newSeq, next] of [[5, 6], [500, 501]] as const) {
      const dir = await journalWith(range(1, 20));
      const j = await reopen(dir);
      await j.compact(8, Buffer.from('old lineage at 8'));
      await j.reset(newSeq, Buffer.from('new lineage'));
      expect([j.snapshotSeq, j.lastSeq, j.sizeBytes]).toEqual([newSeq, newSeq, 0]);
      await j.append(next, payload(next));
      await j.close();
      const r = await reopen(dir);
      expect(r.snapshot?.seq).toBe(newSeq);
      expect(Buffer.from(r.snapshot!.data).toString()).toBe('new lineage');
      expect(seqsOf(r)).toEqual([next]);
      await r.close();
    }
  });

  it('a crash between emptying the journal and the new snapshot opens to the old snapshot alone, never a mix', async () => {
    const dir = await journalWith(range(1, 20));
    const j = await reopen(dir, {
      faultHook: (op, path) => {
        if (op === 'write' && path.endsWith('snapshot.tmp')) {
          cpSync(dir, `${dir}-crash`, { recursive: true });
          dirs.push(`${dir}-crash`);
        }
      },
    });
    await j.compact(10, Buffer.from('old at 10'));
    await j.reset(3, Buffer.from('new at 3'));
    await j.close();
    // The first snapshot.tmp write is the compaction's; the copy we want is the reset's.
    const r = await reopen(`${dir}-crash`);
    expect(r.snapshot !== undefined && Buffer.from(r.snapshot.data).toString()).toBe('old at 10');
    expect(seqsOf(r)).toEqual([]);
    await r.close();
  });
});

describe('a snapshot at seq 0 (a new, empty log)', () => {
  it('is written, reopened and appended after', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir);
    await j.compact(0, Buffer.from('empty table'));
    await j.append(1, payload(1));
    await j.close();
    const r = await reopen(dir);
    expect(r.snapshot?.seq).toBe(0);
    expect(Buffer.from(r.snapshot!.data).toString()).toBe('empty table');
    expect(seqsOf(r)).toEqual([1]);
    await r.close();
  });
});
