/**
 * MemoryPort: a Port with no device behind it, for unit tests and in-process benchmarks.
 *
 * Receive: `inject(frames)` copies frames into the shared batch and runs the datapath's
 * callback, exactly as a native port does after a read. `injectBatchFromSlab` re-delivers
 * frames already laid out in the batch (no copy, for allocation-free benchmarks).
 * Send: `flush()` records sent frames (copied, when `record` is on) and counts them.
 */
import { FrameBatch, TxQueue } from '../packet/batch.js';
import type { Port, PortIoCounters, PortState, PortType } from './port.js';

export class MemoryPort implements Port {
  readonly type: PortType = 'memory';
  readonly tx = new TxQueue();
  readonly device: string;
  state: PortState = 'up';
  /** Frames sent through this port (copies), when `record` is true. */
  readonly sent: Buffer[] = [];
  /** The tunnel key queued with each recorded frame (its tun_id when output). */
  readonly sentTunKeys: number[] = [];
  record: boolean;
  private batch: FrameBatch | undefined;
  private onBatch: ((port: Port) => void) | undefined;
  private onStatus: ((port: Port, state: PortState, reason: string) => void) | undefined;
  private readonly counters: PortIoCounters = {
    txPackets: 0,
    txBytes: 0,
    txQueueFull: 0,
    txPortDown: 0,
    txError: 0,
    rxTooLong: 0,
  };

  constructor(
    readonly name: string,
    readonly number: number,
    readonly mtu = 1500,
    opts: { record?: boolean; clock?: () => number } = {},
  ) {
    this.device = name;
    this.record = opts.record ?? true;
    this.clock = opts.clock ?? Date.now;
  }
  /** Time stamp given to each injected batch (ms). */
  private readonly clock: () => number;

  start(batch: FrameBatch, onBatch: (port: Port) => void, onStatus: (port: Port, state: PortState, reason: string) => void): void {
    this.batch = batch;
    this.onBatch = onBatch;
    this.onStatus = onStatus;
  }

  /**
   * Deliver frames as one received batch (at most the batch's capacity); with `tunKeys`,
   * as a tunnel port does: each frame arrives with that key (its tun_id).
   */
  inject(frames: readonly Uint8Array[], tunKeys?: readonly number[]): void {
    const batch = this.batch;
    if (batch === undefined || this.onBatch === undefined) throw new Error(`port ${this.name} not started`);
    if (frames.length > batch.capacity) throw new RangeError(`at most ${batch.capacity} frames per batch`);
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      if (f.length > batch.maxFrameSize) throw new RangeError(`frame of ${f.length} bytes exceeds the slot`);
      const off = i * batch.slotSize + (batch.slotSize - batch.maxFrameSize);
      batch.slab.set(f, off);
      batch.start[i] = off;
      batch.len[i] = f.length;
    }
    batch.count = frames.length;
    batch.inPort = this.number;
    batch.tunneled = tunKeys !== undefined;
    if (tunKeys !== undefined) for (let i = 0; i < frames.length; i++) batch.tunKey[i] = tunKeys[i] ?? 0;
    batch.time[0] = this.clock();
    this.onBatch(this);
  }

  /**
   * Deliver `count` frames already placed in the batch's slab (start/len and time set by
   * the caller); `tunneled`: with the tunnel keys already in batch.tunKey.
   */
  injectInPlace(count: number, tunneled = false): void {
    const batch = this.batch!;
    batch.count = count;
    batch.inPort = this.number;
    batch.tunneled = tunneled;
    this.onBatch!(this);
  }

  flush(slab: Buffer): number {
    const tx = this.tx;
    const n = tx.count;
    if (this.state === 'down') {
      this.counters.txPortDown += n;
      tx.count = 0;
      return 0;
    }
    for (let i = 0; i < n; i++) {
      const size = tx.len[i]!;
      this.counters.txBytes += size;
      if (this.record) {
        const off = tx.start[i]!;
        this.sent.push(Buffer.from(slab.subarray(off, off + size)));
        this.sentTunKeys.push(tx.tunKey[i]!);
      }
    }
    this.counters.txPackets += n;
    tx.count = 0;
    return n;
  }

  setState(state: PortState, reason: string): void {
    this.state = state;
    this.onStatus?.(this, state, reason);
  }

  ioCounters(): PortIoCounters {
    return { ...this.counters };
  }

  close(): void {
    this.state = 'down';
  }
}
