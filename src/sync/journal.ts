/**
 * Journal: the durable local copy of a site's replicated state (issue 5, "Durability").
 * The sync layer appends every replication entry here before acknowledging it, and
 * compacts into a snapshot now and then; after `kill -9` at any moment, `Journal.open`
 * gives back the latest snapshot plus every record appended after it whose `append()`
 * resolved. The journal is payload-agnostic: records are opaque bytes (protobuf-encoded
 * entries) tagged with a caller-chosen sequence number that strictly increases (integers
 * up to 2^53-1).
 *
 * Files in `dir` (created 0700 if missing): `journal`, the append-only records, and
 * `snapshot`, the latest snapshot. Both use one framing; all integers little-endian:
 *
 *   u32 payload size | u32 CRC-32 of bytes 8.. (seq + payload) | u64 seq | payload
 *
 * seq sits before the payload so one CRC over a contiguous span covers both. There is no
 * file header: a first record that fails its checksum is as good a "not a journal" test
 * as a magic number, and a header would be one more thing a crash can tear.
 *
 * Contract:
 *   - `append(seq, data)` resolves only once the record is written and durable (the handle
 *     is O_DSYNC: the write returns when the data is on disk, as after fdatasync). Group
 *     commit: appends issued while a write is in flight (or in the same tick as the first)
 *     are written with ONE writev, and resolve together. All I/O
 *     is async (FileHandle), so the event loop that runs the data path never waits on disk.
 *   - Recovery scans `journal` from the start and stops at the first record that is torn
 *     (shorter than its header or its announced size), announces more than
 *     `maxRecordBytes`, fails its checksum, or does not increase seq. The file is truncated
 *     there (ftruncate + fsync), so a torn record is discarded, never half-applied, and
 *     later appends start on a clean boundary. `recovery` says what was cut and why. Note
 *     that a bad record in the MIDDLE also cuts everything after it: we cannot tell a
 *     record's boundaries once one length is wrong, and a gap in the sequence would be worse.
 *     Records that were written but whose sync never completed may come back: they were
 *     never acknowledged, and the caller must accept them like any other.
 *   - The snapshot is only ever replaced by rename, so a bad one is real corruption, not a
 *     torn write: `open` throws JournalError rather than silently losing state.
 *
 * Compaction, `compact(seq, data)` ("data reflects everything up to and including seq"):
 *   1. write `snapshot.tmp`, fsync, rename over `snapshot`, fsync the directory;
 *   2. write `journal.tmp` holding the records with seq > snapshot seq, fsync, rename over
 *      `journal`, fsync the directory; the journal's handle becomes the new file's.
 * Appends keep flowing to the old journal during step 1 (the big write); recovery skips
 * records at or below the snapshot's seq, so every crash point opens to the same logical
 * state. Step 2 holds the writer: appends arriving then queue and go to the new file after
 * it, in order. Step 2 copies records from memory, not from disk: the journal keeps every
 * record written since the last compaction (`tail`), which costs memory equal to the
 * journal's size, the very number the daemon compacts on (`sizeBytes`). Stale `*.tmp`
 * files (ours only: the state directory may hold other things) are removed at open.
 *
 * Failure: a failed write or sync of `journal` fails the journal for good: that append,
 * every queued one and every later one reject with the same JournalError. Retrying is not
 * safe: after a failed fsync Linux may report the next one clean although the data is
 * gone; the daemon must restart and recover from what is on disk. A compaction that fails
 * before it touches `journal` (snapshot write, `journal.tmp`) only rejects the compaction.
 *
 * Cost model: one allocation and copy per append (header + payload, owned by the journal so
 * the caller's buffer is free at once); one O_DSYNC writev per batch; `open` reads
 * each file whole, so recovery memory is the journal's size, and a garbage length can
 * never make us allocate more than the file holds.
 */
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/** Bytes before a record's payload: size, CRC, seq. */
export const RECORD_HEADER_BYTES = 16;
/** Default bound on a journal record's payload; a larger announced size is garbage. */
export const DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024;
/** The size field is a u32. */
const MAX_PAYLOAD_BYTES = 0xffff_ffff;
const TWO_32 = 0x1_0000_0000;

const JOURNAL_FILE = 'journal';
const SNAPSHOT_FILE = 'snapshot';
const TMP = '.tmp';
const CREATE_RW = fsConstants.O_RDWR | fsConstants.O_CREAT;
/**
 * The journal's own handle is O_DSYNC: a write returns once its data is durable, so a batch
 * is one writev instead of writev + fdatasync — one trip to libuv's thread pool instead of
 * two, which on a small VM (a futex wake-up each way) was a seventh of a writer site's CPU
 * per flow-mod and a good part of its round trip.
 */
const JOURNAL_FLAGS = CREATE_RW | fsConstants.O_DSYNC;

export class JournalError extends Error {
  constructor(
    readonly path: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${path}: ${message}`, options);
    this.name = 'JournalError';
  }
}

export interface JournalRecord {
  seq: number;
  data: Uint8Array;
}

/** What `open` cut from the end of `journal`, for the daemon's log. */
export interface JournalRecovery {
  /** Bytes discarded from the end of the journal (0 when it ended cleanly). */
  truncatedBytes: number;
  /** Offset the journal was truncated at (= its size when nothing was cut). */
  offset: number;
  /** Why, e.g. "record at offset 1234 has a bad checksum"; undefined when nothing was cut. */
  reason: string | undefined;
}

export interface JournalStats {
  /** Appends made durable (resolved). */
  appends: number;
  /** fdatasync calls of appends: appends / syncs is the group-commit factor. */
  syncs: number;
  /** Bytes of records written by appends (headers included). */
  bytes: number;
  /** Records in the journal file now (compaction lowers it). */
  records: number;
}

export type JournalIoOp = 'write' | 'sync' | 'rename' | 'truncate' | 'syncDir';

export interface JournalOptions {
  maxRecordBytes?: number;
  /**
   * For tests (fault injection and crash simulation, like FaultPort): called before every
   * write, sync, rename, truncate and directory sync, with the path it is about. Throwing
   * (or rejecting) makes that operation fail as if the OS had refused it; returning a
   * promise holds the operation until it settles.
   */
  faultHook?: (op: JournalIoOp, path: string) => void | Promise<void>;
}

/** One record found by `scanRecords`: `bytes` is the whole record (header + payload). */
export interface ScannedRecord extends JournalRecord {
  offset: number;
  bytes: Uint8Array;
}

export interface ScanResult {
  records: ScannedRecord[];
  /** Bytes from the start that hold good records; the rest must be discarded. */
  validBytes: number;
  reason: string | undefined;
}

/** Header of a record holding `payload` (CRC included). */
export function encodeRecordHeader(seq: number, payload: Uint8Array): Buffer {
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(seq % TWO_32, 8);
  header.writeUInt32LE(Math.floor(seq / TWO_32), 12);
  header.writeUInt32LE(crc32(payload, crc32(header.subarray(8))), 4);
  return header;
}

/**
 * A whole record in one new buffer of its own: the journal keeps every record since the
 * last compaction in memory (its tail), and a small buffer from Node's shared pool would
 * pin an 8 KB slab per dozen records (the soak measured 0.6–0.7 KB per 200-byte record).
 */
export function encodeRecord(seq: number, payload: Uint8Array): Buffer {
  const record = Buffer.allocUnsafeSlow(RECORD_HEADER_BYTES + payload.length);
  record.set(encodeRecordHeader(seq, payload), 0);
  record.set(payload, RECORD_HEADER_BYTES);
  return record;
}

/**
 * Pure recovery core: the good records at the start of `buf`, where the first bad one
 * begins (`validBytes`) and why it is bad. Never throws.
 */
export function scanRecords(buf: Uint8Array, maxRecordBytes: number, firstSeqMin = 1): ScanResult {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  const records: ScannedRecord[] = [];
  let off = 0;
  // Journal records start at seq 1; a snapshot may be at seq 0 (an empty log).
  let prevSeq = firstSeqMin - 1;
  const stop = (reason: string): ScanResult => ({ records, validBytes: off, reason });
  while (off < view.length) {
    const left = view.length - off;
    if (left < RECORD_HEADER_BYTES) return stop(`torn record at offset ${off}: ${left} of ${RECORD_HEADER_BYTES} header bytes`);
    const size = view.readUInt32LE(off);
    if (size > maxRecordBytes) {
      return stop(`record at offset ${off} announces ${size} bytes, more than the ${maxRecordBytes}-byte limit`);
    }
    const end = off + RECORD_HEADER_BYTES + size;
    if (end > view.length) return stop(`torn record at offset ${off}: ${left - RECORD_HEADER_BYTES} of ${size} payload bytes`);
    if (crc32(view.subarray(off + 8, end)) !== view.readUInt32LE(off + 4)) return stop(`record at offset ${off} has a bad checksum`);
    const seqHigh = view.readUInt32LE(off + 12);
    const seq = seqHigh * TWO_32 + view.readUInt32LE(off + 8);
    if (seqHigh > 0x1f_ffff) return stop(`record at offset ${off} has a seq beyond 2^53-1`);
    if (seq <= prevSeq) return stop(`record at offset ${off} has seq ${seq}, not greater than the previous ${prevSeq}`);
    records.push({ seq, data: view.subarray(off + RECORD_HEADER_BYTES, end), offset: off, bytes: view.subarray(off, end) });
    prevSeq = seq;
    off = end;
  }
  return { records, validBytes: off, reason: undefined };
}

interface PendingAppend {
  seq: number;
  bytes: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A record written since the last compaction, kept for rewriting the journal. */
interface TailRecord {
  seq: number;
  bytes: Uint8Array;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, fsConstants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function readSnapshot(path: string): Promise<JournalRecord | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new JournalError(path, `cannot read the snapshot: ${describe(err)}`, { cause: err });
  }
  const scan = scanRecords(bytes, MAX_PAYLOAD_BYTES, 0);
  const record = scan.records[0];
  if (record === undefined || scan.records.length !== 1 || scan.validBytes !== bytes.length) {
    const why = scan.reason ?? `${bytes.length} bytes hold more than one record`;
    throw new JournalError(path, `snapshot is corrupt (${why}); it is only ever replaced by rename, so this is not a torn write`);
  }
  return { seq: record.seq, data: record.data };
}

export class Journal {
  readonly dir: string;
  /** The journal file (JournalError.path of append failures). */
  readonly path: string;
  readonly snapshotPath: string;
  readonly maxRecordBytes: number;
  /**
   * What `open` recovered: the snapshot, and the records after it, in order. The data are
   * views of the buffer the files were read into, held as long as the Journal is.
   */
  readonly snapshot: JournalRecord | undefined;
  readonly records: readonly JournalRecord[];
  readonly recovery: JournalRecovery;
  readonly stats: JournalStats = { appends: 0, syncs: 0, bytes: 0, records: 0 };
  private readonly faultHook: JournalOptions['faultHook'];
  private file: FileHandle;
  private size: number;
  private last: number;
  private snapshotCovers: number;
  private tail: TailRecord[];
  /** Accepted appends not yet handed to a write, in seq order. */
  private pending: PendingAppend[] = [];
  /** The running drain loop, if any. */
  private writer: Promise<void> | undefined;
  /** Set while a compaction swaps the journal file: the writer must not start a batch. */
  private exclusive = false;
  private compactions: Promise<void> = Promise.resolve();
  private failed: JournalError | undefined;
  private closed = false;

  private constructor(
    dir: string,
    opts: JournalOptions,
    file: FileHandle,
    snapshot: JournalRecord | undefined,
    scan: ScanResult,
    fileBytes: number,
  ) {
    this.dir = dir;
    this.path = join(dir, JOURNAL_FILE);
    this.snapshotPath = join(dir, SNAPSHOT_FILE);
    this.maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    this.faultHook = opts.faultHook;
    this.file = file;
    this.size = scan.validBytes;
    this.snapshot = snapshot;
    this.snapshotCovers = snapshot?.seq ?? 0;
    const after = scan.records.filter((r) => r.seq > this.snapshotCovers);
    this.records = after.map((r) => ({ seq: r.seq, data: r.data }));
    this.tail = after.map((r) => ({ seq: r.seq, bytes: r.bytes }));
    this.last = Math.max(this.snapshotCovers, scan.records.at(-1)?.seq ?? 0);
    this.recovery = { truncatedBytes: fileBytes - scan.validBytes, offset: scan.validBytes, reason: scan.reason };
    this.stats.records = scan.records.length;
  }

  /** Open (creating if needed) the journal in `dir` and recover its state; see the header. */
  static async open(dir: string, opts: JournalOptions = {}): Promise<Journal> {
    const maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    if (!Number.isInteger(maxRecordBytes) || maxRecordBytes < 0 || maxRecordBytes > MAX_PAYLOAD_BYTES) {
      throw new RangeError(`maxRecordBytes must be an integer in 0..${MAX_PAYLOAD_BYTES}, not ${maxRecordBytes}`);
    }
    const path = join(dir, JOURNAL_FILE);
    let file: FileHandle;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await rm(path + TMP, { force: true });
      await rm(join(dir, SNAPSHOT_FILE + TMP), { force: true });
      file = await open(path, JOURNAL_FLAGS, 0o600);
    } catch (err) {
      throw new JournalError(path, `cannot open: ${describe(err)}`, { cause: err });
    }
    try {
      const snapshot = await readSnapshot(join(dir, SNAPSHOT_FILE));
      const bytes = await file.readFile();
      const scan = scanRecords(bytes, maxRecordBytes);
      if (scan.validBytes < bytes.length) {
        await opts.faultHook?.('truncate', path);
        await file.truncate(scan.validBytes);
        await opts.faultHook?.('sync', path);
        await file.sync();
      }
      // Makes the journal's creation and the removal of temporaries durable.
      await opts.faultHook?.('syncDir', dir);
      await syncDir(dir);
      return new Journal(dir, opts, file, snapshot, scan, bytes.length);
    } catch (err) {
      await file.close().catch(() => undefined);
      if (err instanceof JournalError) throw err;
      throw new JournalError(path, `recovery failed: ${describe(err)}`, { cause: err });
    }
  }

  /** Highest seq accepted (appended, possibly not yet durable) or covered by the snapshot; 0 when empty. */
  get lastSeq(): number {
    return this.last;
  }

  /** Seq of the latest snapshot (0 when there is none). */
  get snapshotSeq(): number {
    return this.snapshotCovers;
  }

  /** Size of the journal file in bytes: what compaction would reclaim. */
  get sizeBytes(): number {
    return this.size;
  }

  /** The error that failed the journal, if one did. */
  get failure(): JournalError | undefined {
    return this.failed;
  }

  /** Resolves once the record is durable. `data` is copied: the caller may reuse it at once. */
  append(seq: number, data: Uint8Array): Promise<void> {
    const refused = this.refuse(seq, data, 'append');
    if (refused !== undefined) return Promise.reject(refused);
    if (!Number.isSafeInteger(seq) || seq <= this.last) {
      return Promise.reject(new JournalError(this.path, `append refused: seq ${seq} is not greater than the last seq ${this.last}`));
    }
    if (data.length > this.maxRecordBytes) {
      const why = `${data.length} bytes exceed the ${this.maxRecordBytes}-byte record limit`;
      return Promise.reject(new JournalError(this.path, `append refused: ${why}`));
    }
    const bytes = encodeRecord(seq, data);
    this.last = seq;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ seq, bytes, resolve, reject });
      this.kick();
    });
  }

  /**
   * Replace the snapshot with `data`, which reflects every record up to and including
   * `seq` (snapshotSeq ≤ seq ≤ lastSeq), and drop those records from the journal.
   * Compactions run one at a time, in call order.
   */
  compact(seq: number, data: Uint8Array): Promise<void> {
    const refused = this.refuse(seq, data, 'compaction');
    if (refused !== undefined) return Promise.reject(refused);
    if (!Number.isSafeInteger(seq) || seq > this.last || seq < this.snapshotCovers) {
      const why = `seq ${seq} is outside ${this.snapshotCovers}..${this.last} (snapshot seq .. last seq)`;
      return Promise.reject(new JournalError(this.snapshotPath, `compaction refused: ${why}`));
    }
    if (data.length > MAX_PAYLOAD_BYTES) {
      return Promise.reject(new JournalError(this.snapshotPath, `compaction refused: a snapshot of ${data.length} bytes is too large`));
    }
    const run = this.compactions.then(() => this.compactNow(seq, data));
    this.compactions = run.catch(() => undefined);
    return run;
  }

  /**
   * Start over from a snapshot that does not continue this journal's records (a follower
   * resynced from another log, or from far ahead): every record is dropped, `data` becomes
   * the snapshot at `seq`, and appends continue after `seq`. Crash-safe by order: the
   * journal is emptied (and synced) before the new snapshot replaces the old one, so a
   * crash in between opens to the old snapshot alone — an older state, never a mix of two
   * logs; the follower then resyncs again.
   */
  reset(seq: number, data: Uint8Array): Promise<void> {
    const refused = this.refuse(seq, data, 'reset');
    if (refused !== undefined) return Promise.reject(refused);
    if (!Number.isSafeInteger(seq) || seq < 0) return Promise.reject(new JournalError(this.snapshotPath, `reset refused: seq ${seq} is not a sequence number`));
    const run = this.compactions.then(() => this.resetNow(seq, data));
    this.compactions = run.catch(() => undefined);
    return run;
  }

  /** Wait for queued compactions and appends, then close the file. Later calls are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.compactions;
    while (this.writer !== undefined) await this.writer;
    try {
      await this.file.close();
    } catch (err) {
      throw new JournalError(this.path, `close failed: ${describe(err)}`, { cause: err });
    }
  }

  private refuse(seq: number, data: Uint8Array, what: string): JournalError | undefined {
    if (this.failed !== undefined) return this.failed;
    if (this.closed) return new JournalError(this.path, `${what} of seq ${seq} refused: the journal is closed`);
    if (!(data instanceof Uint8Array)) return new JournalError(this.path, `${what} of seq ${seq} refused: data is not a Uint8Array`);
    return undefined;
  }

  private async io(op: JournalIoOp, path: string): Promise<void> {
    if (this.faultHook !== undefined) await this.faultHook(op, path);
  }

  // ---- group commit -------------------------------------------------------------------

  private kick(): void {
    if (this.writer !== undefined || this.exclusive || this.pending.length === 0) return;
    this.writer = this.drain();
  }

  /**
   * Write batches until nothing is pending. Each batch is everything queued while the
   * previous one was in flight. `writer` is cleared in the same synchronous step as the
   * last emptiness check, so an append can never find a writer that is about to exit.
   */
  private async drain(): Promise<void> {
    // One microtask's delay: appends issued in the same tick as the first share its batch.
    await Promise.resolve();
    try {
      while (this.pending.length > 0 && !this.exclusive && this.failed === undefined) {
        const batch = this.pending;
        this.pending = [];
        try {
          await this.writeBatch(batch);
        } catch (err) {
          const failure = this.fail('append', err);
          for (const p of batch) p.reject(failure);
          return;
        }
        for (const p of batch) p.resolve();
      }
    } finally {
      this.writer = undefined;
    }
  }

  private async writeBatch(batch: PendingAppend[]): Promise<void> {
    let size = 0;
    const buffers = batch.map((p) => {
      size += p.bytes.length;
      return p.bytes;
    });
    await this.io('write', this.path);
    await this.io('sync', this.path); // the same system call: the handle is O_DSYNC
    const { bytesWritten } = await this.file.writev(buffers, this.size);
    if (bytesWritten !== size) throw new Error(`short write: ${bytesWritten} of ${size} bytes`);
    this.size += size;
    this.stats.syncs++;
    this.stats.appends += batch.length;
    this.stats.records += batch.length;
    this.stats.bytes += size;
    for (const p of batch) this.tail.push({ seq: p.seq, bytes: p.bytes });
  }

  /** Fail the journal (once) and reject everything queued. */
  private fail(what: string, err: unknown): JournalError {
    const message = `${what} failed, the journal refuses all writes until reopened: ${describe(err)}`;
    this.failed ??= new JournalError(this.path, message, { cause: err });
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) p.reject(this.failed);
    return this.failed;
  }

  // ---- compaction ---------------------------------------------------------------------

  private async compactNow(seq: number, data: Uint8Array): Promise<void> {
    if (this.failed !== undefined) throw this.failed;
    if (seq < this.snapshotCovers) {
      throw new JournalError(this.snapshotPath, `compaction refused: seq ${seq} is below the snapshot seq ${this.snapshotCovers}`);
    }
    // Step 1, concurrent with appends: they still go to the old journal, which stays complete.
    await this.writeSnapshot(seq, data);
    this.snapshotCovers = seq;
    // Step 2: hold the writer, so the file we copy from is the file appends go to.
    this.exclusive = true;
    try {
      while (this.writer !== undefined) await this.writer;
      if (this.failed !== undefined) throw this.failed;
      await this.rewriteJournal(seq);
    } finally {
      this.exclusive = false;
      this.kick();
    }
  }

  private async resetNow(seq: number, data: Uint8Array): Promise<void> {
    if (this.failed !== undefined) throw this.failed;
    this.exclusive = true;
    try {
      while (this.writer !== undefined) await this.writer;
      if (this.failed !== undefined) throw this.failed;
      if (this.pending.length > 0) throw new JournalError(this.path, `reset to seq ${seq} refused: appends are waiting to be written`);
      try {
        await this.io('truncate', this.path);
        await this.file.truncate(0);
        await this.io('sync', this.path);
        await this.file.sync();
      } catch (err) {
        throw this.fail('reset', err);
      }
      this.size = 0;
      this.tail = [];
      this.stats.records = 0;
      await this.writeSnapshot(seq, data);
      this.snapshotCovers = seq;
      this.last = seq;
    } finally {
      this.exclusive = false;
      this.kick();
    }
  }

  private async writeSnapshot(seq: number, data: Uint8Array): Promise<void> {
    const tmp = this.snapshotPath + TMP;
    let renamed = false;
    try {
      const file = await open(tmp, CREATE_RW | fsConstants.O_TRUNC, 0o600);
      try {
        await this.io('write', tmp);
        const header = encodeRecordHeader(seq, data);
        const { bytesWritten } = await file.writev([header, data], 0);
        if (bytesWritten !== header.length + data.length) throw new Error(`short write: ${bytesWritten} bytes`);
        await this.io('sync', tmp);
        await file.sync();
      } finally {
        await file.close();
      }
      await this.io('rename', tmp);
      await rename(tmp, this.snapshotPath);
      renamed = true;
      await this.io('syncDir', this.dir);
      await syncDir(this.dir);
    } catch (err) {
      if (!renamed) await rm(tmp, { force: true }).catch(() => undefined);
      // Either snapshot on disk opens to the same state: the journal still holds every record.
      const message = `compaction to seq ${seq} failed writing the snapshot (the journal is intact): ${describe(err)}`;
      throw new JournalError(this.snapshotPath, message, { cause: err });
    }
  }

  private async rewriteJournal(seq: number): Promise<void> {
    const tmp = this.path + TMP;
    const keep = this.tail.filter((r) => r.seq > seq);
    const size = keep.reduce((sum, r) => sum + r.bytes.length, 0);
    let file: FileHandle | undefined;
    try {
      file = await open(tmp, JOURNAL_FLAGS | fsConstants.O_TRUNC, 0o600);
      await this.io('write', tmp);
      const { bytesWritten } = await file.writev(keep.map((r) => r.bytes), 0);
      if (bytesWritten !== size) throw new Error(`short write: ${bytesWritten} of ${size} bytes`);
      await this.io('sync', tmp);
      await file.sync();
      await this.io('rename', tmp);
      await rename(tmp, this.path);
    } catch (err) {
      await file?.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
      const message = `compaction to seq ${seq} failed writing the new journal (the journal is intact): ${describe(err)}`;
      throw new JournalError(tmp, message, { cause: err });
    }
    // The renamed file is the journal now; from here a failure leaves it in doubt.
    const old = this.file;
    this.file = file;
    this.size = size;
    this.tail = keep;
    this.stats.records = keep.length;
    await old.close().catch(() => undefined);
    try {
      await this.io('syncDir', this.dir);
      await syncDir(this.dir);
    } catch (err) {
      throw this.fail('compaction (directory sync after replacing the journal)', err);
    }
  }
}
