/**
 * NativePort: what every port backed by one of the native addon's file descriptors shares
 * (a TAP device, an AF_PACKET socket on an existing interface, a raw IPv4 socket for GRE).
 *
 * Receive: the addon polls the fd on the event loop and, per wake-up, reads up to
 * `batch.capacity` frames straight into the shared FrameBatch's slab (slot i at
 * `i * slotSize + HEADROOM`), then calls us once with the count; `deliver()` hands the
 * batch to the datapath synchronously (a tunnel port decapsulates first). Send: `flush()`
 * writes every queued frame in one native call. No per-frame allocation on either path.
 *
 * Failure: when the device disappears (deleted, or its fd fails) the port goes `down`
 * for good, reports it through `onStatus` with the errno name, stops receiving, and counts
 * whatever is queued to it as `tx_port_down`. Nothing on these paths throws. A port whose
 * device can go down and come back without being deleted (a `system` port's link, see
 * system.ts) overrides `deviceError` to report `down` and later `up` again instead.
 */
import { HEADROOM, TxQueue, type FrameBatch } from '../packet/batch.js';
import type { CaptureHook, Port, PortIoCounters, PortState, PortType } from './port.js';
import { allocTapHandle, tapCounterIndex, type LimeTapBinding, type TapCounterIndex } from './native.js';

/** Error from setting a port up: `code` is the errno name, `device` the interface name. */
export class PortError extends Error {
  override name = 'PortError';
  readonly code: string;
  /** Negative errno, Node's convention (0 when not an OS error). */
  readonly errno: number;
  readonly device: string;
  constructor(message: string, code: string, errno: number, device: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.errno = errno;
    this.device = device;
  }

  /** The fields of an error thrown by the binding (Error with code/errno/device). */
  protected static fields(err: unknown, device: string, what: string): [string, string, number, string] {
    const e = err as { message?: string; code?: unknown; errno?: unknown; device?: unknown };
    const code = typeof e.code === 'string' ? e.code : 'EINVAL';
    const errno = typeof e.errno === 'number' ? e.errno : 0;
    const dev = typeof e.device === 'string' && e.device !== '' ? e.device : device;
    const message = typeof e.message === 'string' ? e.message : `${code}: ${what} ${dev} failed`;
    return [message, code, errno, dev];
  }

  /** Wrap an error thrown by the binding. */
  static from(err: unknown, device: string): PortError {
    if (err instanceof PortError) return err;
    const [message, code, errno, dev] = PortError.fields(err, device, 'port');
    return new PortError(message, code, errno, dev, { cause: err });
  }
}

/** All native counters of a port. */
export interface NativeCounters extends PortIoCounters {
  rxPackets: number;
  rxBytes: number;
  /** Native drains that delivered at least one frame (rxPackets / rxBatches = mean batch size). */
  rxBatches: number;
  /** virtio-net handles (system ports): frames whose offloaded checksum the reader completed. */
  rxCsumCompleted: number;
  /** virtio-net handles: GSO super-frames cut into MTU-sized frames (those count in rxPackets). */
  rxGsoSegmented: number;
  /** virtio-net handles: datagrams dropped for an offload request the reader cannot honour. */
  rxGsoDropped: number;
  /** AF_PACKET handles (system ports): times the interface was reported down (ENETDOWN). */
  rxLinkDown: number;
  /** Wake-ups that read their most batches and left frames possibly queued (the port is saturated). */
  rxFullPolls: number;
}

/** Write errors after which the device will never work again (it was deleted). */
const DEVICE_GONE: ReadonlySet<string> = new Set(['EBADFD', 'EBADF', 'ENODEV', 'ENXIO']);

export interface NativePortOptions {
  name: string;
  number: number;
  device: string;
  mtu: number;
  /** Capacity of the send queue (default BATCH_MAX). */
  txCapacity?: number;
}

export abstract class NativePort implements Port {
  readonly name: string;
  readonly number: number;
  abstract readonly type: PortType;
  readonly device: string;
  readonly mtu: number;
  readonly tx: TxQueue;
  /** Native counters, read without a call: counters[index.rxPackets] etc. (see native.ts). */
  readonly counters: Float64Array;
  readonly counterIndex: TapCounterIndex;
  /** Set while `limectl capture` watches this port; one check per batch otherwise. */
  capture: CaptureHook | undefined = undefined;

  protected readonly native: LimeTapBinding;
  protected readonly handle: Buffer;
  protected readonly fd: number;
  protected portState: PortState = 'up';
  /** Why the port is down ('' while up). */
  protected downReason = '';
  /** The device is gone or its fd failed: down for good, not receiving. */
  protected gone = false;
  protected closed = false;
  private started = false;
  protected onStatus: ((port: Port, state: PortState, reason: string) => void) | undefined;
  /** What the port is, for messages: "TAP", "interface", "GRE tunnel". */
  protected abstract readonly what: string;

  /** `mode`: the reader's mode for this fd (LIME_TAP_MODE_PLAIN, or LIME_TAP_MODE_VNET for an AF_PACKET socket with virtio-net headers). */
  protected constructor(opts: NativePortOptions, native: LimeTapBinding, fd: number, mode = 0) {
    this.name = opts.name;
    this.number = opts.number;
    this.device = opts.device;
    this.mtu = opts.mtu;
    this.tx = new TxQueue(opts.txCapacity);
    this.native = native;
    this.fd = fd;
    const { handle, counters } = allocTapHandle();
    this.handle = handle;
    this.counters = counters;
    this.counterIndex = tapCounterIndex();
    if (mode === 0) native.lime_tap_init(handle, fd);
    else native.lime_tap_init_mode(handle, fd, mode);
  }

  get state(): PortState {
    return this.portState;
  }

  /** Why the port is down, as reported through onStatus ('' while up). */
  get stateReason(): string {
    return this.downReason;
  }

  start(batch: FrameBatch, onBatch: (port: Port) => void, onStatus: (port: Port, state: PortState, reason: string) => void): void {
    if (this.closed) throw new PortError(`EBADF: cannot start ${this.what} ${this.device}: port is closed`, 'EBADF', -9, this.device);
    if (this.started) throw new PortError(`EALREADY: cannot start ${this.what} ${this.device}: already started`, 'EALREADY', -114, this.device);
    this.started = true;
    this.onStatus = onStatus;
    if (this.portState === 'down') return;
    // One closure for the port's life, called once per drain (not per frame).
    const counters = this.counters;
    const loopTime = this.counterIndex.loopTime;
    const time = batch.time;
    const onNative = (n: number): void => {
      if (n >= 0) {
        batch.count = n;
        batch.inPort = this.number;
        batch.tunneled = false;
        // The reader stamped the batch with the loop's clock; copying it between typed
        // arrays keeps it an unboxed double (Date.now() would allocate on every batch).
        time[0] = counters[loopTime]!;
        this.deliver(batch, onBatch);
      } else {
        this.deviceError(n);
      }
    };
    this.native.lime_tap_start(this.handle, this.fd, batch.slab, batch.start, batch.len, batch.slotSize, HEADROOM, batch.capacity, onNative);
  }

  /**
   * The reader reported `errno` (negative). Polling has stopped, except for an AF_PACKET
   * socket's -ENETDOWN (see lime_tap_start): the default takes the port down for good.
   */
  protected deviceError(errno: number): void {
    this.markDown(`device ${this.device} gone: ${this.native.lime_tap_errname(errno)}`);
  }

  /** Hands a received batch to the datapath; a tunnel port decapsulates first. */
  protected deliver(batch: FrameBatch, onBatch: (port: Port) => void): void {
    if (this.capture !== undefined) this.capture(0, batch.slab, batch.start, batch.len, batch.count);
    onBatch(this);
  }

  flush(slab: Buffer): number {
    const n = this.tx.count;
    if (n === 0) return 0;
    this.tx.count = 0;
    if (this.portState === 'down') {
      this.counters[this.counterIndex.txPortDown] += n;
      return 0;
    }
    if (this.capture !== undefined) this.capture(1, slab, this.tx.start, this.tx.len, n);
    return this.writeBatch(this.handle, this.counters, this.fd, slab, this.tx.start, this.tx.len, n);
  }

  /** One native send of n frames through `handle` (whose counters are `c`); notices a device that went away. */
  protected writeBatch(handle: Buffer, c: Float64Array, fd: number, slab: Buffer, start: Uint32Array, len: Uint32Array, n: number): number {
    const i = this.counterIndex;
    const downBefore = c[i.txPortDown]!;
    const sent = this.native.lime_tap_write_batch(handle, fd, slab, start, len, n);
    if (c[i.txPortDown] !== downBefore) {
      // EIO means administratively down (the rest of the batch is dropped and counted, and
      // the port recovers when the device is up again); the others mean it is gone.
      const code = this.native.lime_tap_errname(c[i.lastErrno]!);
      if (DEVICE_GONE.has(code)) this.markDown(`device ${this.device} gone: ${code}`);
    }
    return sent;
  }

  ioCounters(): PortIoCounters {
    return this.ioFrom(this.counters);
  }

  /** The I/O counters with the send side read from `tx` (a port that sends through another handle). */
  protected ioFrom(tx: Float64Array): PortIoCounters {
    const i = this.counterIndex;
    return {
      txPackets: tx[i.txPackets]!,
      txBytes: tx[i.txBytes]!,
      txQueueFull: tx[i.txQueueFull]!,
      txPortDown: tx[i.txPortDown]!,
      txError: tx[i.txError]!,
      rxTooLong: this.counters[i.rxTooLong]!,
    };
  }

  /** Every native counter (for limectl show / tests). */
  tapCounters(): NativeCounters {
    const c = this.counters;
    const i = this.counterIndex;
    return {
      ...this.ioCounters(),
      rxPackets: c[i.rxPackets]!,
      rxBytes: c[i.rxBytes]!,
      rxBatches: c[i.rxBatches]!,
      rxCsumCompleted: c[i.rxCsumCompleted]!,
      rxGsoSegmented: c[i.rxGsoSegmented]!,
      rxGsoDropped: c[i.rxGsoDropped]!,
      rxLinkDown: c[i.rxLinkDown]!,
      rxFullPolls: c[i.rxFullPolls]!,
    };
  }

  /**
   * The native handle this port receives through (started by start()): the native fast
   * path hands its fd to its engine thread, which then delivers what it does not forward
   * itself through this handle, to the same onBatch.
   */
  nativeHandle(): Buffer {
    return this.handle;
  }

  /** Add what the native fast path sent on this port's behalf to its send counters. */
  creditNativeTx(packets: number, bytes: number, errors: number): void {
    const c = this.txCountersArray();
    const i = this.counterIndex;
    c[i.txPackets] += packets;
    c[i.txBytes] += bytes;
    c[i.txError] += errors;
  }

  /** Frames the native fast path read whole buffers of (possibly cut): dropped, as this port's reader does. */
  creditNativeRxTooLong(frames: number): void {
    this.counters[this.counterIndex.rxTooLong] += frames;
  }

  /** The counters the send side counts in (a tunnel sends through a handle of its own). */
  protected txCountersArray(): Float64Array {
    return this.counters;
  }

  /** Nanoseconds this port's receive path (reads, the data path, its sends) spent on the event loop. */
  busyNs(): number {
    return this.counters[this.counterIndex.busyNs]!;
  }

  /** Wake-ups that stopped at the drain limit with frames possibly still queued. */
  backlogPolls(): number {
    return this.counters[this.counterIndex.rxFullPolls]!;
  }

  /** Stop receiving and close the fd. Idempotent; no onStatus. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.portState = 'down';
    this.native.lime_tap_close(this.handle);
  }

  /** Down for good: stop receiving, report `reason` once (also when the port was already down for another reason). */
  protected markDown(reason: string): void {
    if (this.gone || this.closed) return;
    this.gone = true;
    this.portState = 'down';
    this.downReason = reason;
    this.native.lime_tap_stop(this.handle);
    this.onStatus?.(this, 'down', reason);
  }
}

/** Close an fd that no port owns yet (set-up failed half-way). */
export function closeFd(native: LimeTapBinding, fd: number): void {
  const { handle } = allocTapHandle();
  native.lime_tap_init(handle, fd);
  native.lime_tap_close(handle);
}
