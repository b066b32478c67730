/**
 * TapPort: a Port over a Linux TAP device, through lime's native addon (native/).
 *
 * Receive: the addon polls the TAP fd on the event loop and, per wake-up, reads up to
 * `batch.capacity` frames straight into the shared FrameBatch's slab (slot i at
 * `i * slotSize + HEADROOM`), then calls us once with the count; we set `count`/`inPort`
 * and hand the batch to the datapath synchronously. Send: `flush()` writes every queued
 * frame in one native call. No per-frame allocation on either path.
 *
 * Failure: when the device disappears (deleted, or its fd fails) the port goes `down`
 * once, reports it through `onStatus` with the errno name, stops receiving, and counts
 * whatever is queued to it as `tx_port_down`. Nothing on these paths throws.
 *
 * virtio-net headers (later): opening with IFF_VNET_HDR + TUNSETOFFLOAD will put each
 * frame's virtio_net_hdr in an extra per-frame column of the batch (beside start/len),
 * passed to the same native calls; the slots and the start/len columns do not change.
 * `open()` keeps a `flags` argument in the binding for that.
 */
import { HEADROOM, TxQueue, type FrameBatch } from '../packet/batch.js';
import { formatMac, macFromBytes, macToBytes, parseMac } from '../util/addr.js';
import type { Port, PortIoCounters, PortState } from './port.js';
import { allocTapHandle, loadNative, tapCounterIndex, type LimeTapBinding, type TapCounterIndex } from './native.js';

/** Error from TAP set-up: `code` is the errno name, `device` the interface name. */
export class TapError extends Error {
  override readonly name = 'TapError';
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

  /** Wrap an error thrown by the binding (Error with code/errno/device). */
  static from(err: unknown, device: string): TapError {
    if (err instanceof TapError) return err;
    const e = err as { message?: string; code?: unknown; errno?: unknown; device?: unknown };
    const code = typeof e.code === 'string' ? e.code : 'EINVAL';
    const errno = typeof e.errno === 'number' ? e.errno : 0;
    const dev = typeof e.device === 'string' && e.device !== '' ? e.device : device;
    const message = typeof e.message === 'string' ? e.message : `${code}: TAP ${dev} failed`;
    return new TapError(message, code, errno, dev, { cause: err });
  }
}

export interface TapPortOptions {
  /** Port name (as in the config and limectl). */
  name: string;
  /** Port number, chosen by the daemon. */
  number: number;
  /** TAP device name; defaults to `name`. A `%d` pattern lets the kernel pick; '' = `lime%d`. */
  device?: string;
  /** Default 1500. */
  mtu?: number;
  /** "02:00:00:00:00:01"; default: keep the kernel's random MAC. */
  mac?: string;
  /** Capacity of the send queue (default BATCH_MAX). */
  txCapacity?: number;
}

/** All native counters of a TAP port. */
export interface TapCounters extends PortIoCounters {
  rxPackets: number;
  rxBytes: number;
  /** Native drains that delivered at least one frame (rxPackets / rxBatches = mean batch size). */
  rxBatches: number;
}

/** Write errors after which the device will never work again (it was deleted). */
const DEVICE_GONE: ReadonlySet<string> = new Set(['EBADFD', 'EBADF', 'ENODEV', 'ENXIO']);

/** The MAC's 6 bytes, or a TapError naming the device. */
function macBytes(mac: string, device: string): Buffer {
  try {
    return Buffer.from(macToBytes(parseMac(mac)));
  } catch {
    throw new TapError(`EINVAL: cannot set MAC of ${device}: "${mac}" is not a MAC address like 02:00:00:00:00:01`, 'EINVAL', -22, device);
  }
}

/** The clock TAP batches are stamped with: the event loop's uv_now() (ms, monotonic). */
export function loopNow(): number {
  return loadNative().lime_tap_now();
}

export class TapPort implements Port {
  readonly name: string;
  readonly number: number;
  readonly type = 'tap' as const;
  readonly device: string;
  readonly mtu: number;
  readonly tx: TxQueue;
  /** Native counters, read without a call: counters[index.rxPackets] etc. (see native.ts). */
  readonly counters: Float64Array;
  readonly counterIndex: TapCounterIndex;

  private readonly native: LimeTapBinding;
  private readonly handle: Buffer;
  private readonly fd: number;
  private readonly macAddress: string;
  private portState: PortState = 'up';
  private closed = false;
  private started = false;
  private onStatus: ((port: Port, state: PortState, reason: string) => void) | undefined;

  private constructor(opts: TapPortOptions, native: LimeTapBinding, fd: number, device: string, mtu: number, mac: string) {
    this.name = opts.name;
    this.number = opts.number;
    this.device = device;
    this.mtu = mtu;
    this.tx = new TxQueue(opts.txCapacity);
    this.native = native;
    this.fd = fd;
    this.macAddress = mac;
    const { handle, counters } = allocTapHandle();
    this.handle = handle;
    this.counters = counters;
    this.counterIndex = tapCounterIndex();
    native.lime_tap_init(handle, fd);
  }

  /**
   * Create (or attach to) the TAP device, set its MTU and MAC, and bring it up.
   * Throws TapError naming the device and the errno (EPERM without CAP_NET_ADMIN, EBUSY
   * when another process holds the device, EINVAL for a bad name or MTU …).
   */
  static open(opts: TapPortOptions): TapPort {
    const native = loadNative();
    const requested = opts.device ?? opts.name;
    const mtu = opts.mtu ?? 1500;
    const mac = opts.mac === undefined ? undefined : macBytes(opts.mac, requested);
    let opened: { fd: number; name: string };
    try {
      opened = native.lime_tap_open(requested, 0);
    } catch (err) {
      throw TapError.from(err, requested);
    }
    const device = opened.name;
    let port: TapPort | undefined;
    try {
      native.lime_tap_set_mtu(device, mtu);
      if (mac !== undefined) native.lime_tap_set_mac(device, mac);
      const { hi, lo } = macFromBytes(native.lime_tap_get_mac(device));
      const actualMac = formatMac(hi, lo);
      port = new TapPort(opts, native, opened.fd, device, mtu, actualMac);
      native.lime_tap_set_up(device, true);
      return port;
    } catch (err) {
      // The device is not persistent: closing our fd removes it.
      if (port !== undefined) port.close();
      else closeFd(native, opened.fd);
      throw TapError.from(err, device);
    }
  }

  get state(): PortState {
    return this.portState;
  }

  /** The device's MAC address as "xx:xx:xx:xx:xx:xx" (read when the port was opened). */
  get mac(): string {
    return this.macAddress;
  }

  start(batch: FrameBatch, onBatch: (port: Port) => void, onStatus: (port: Port, state: PortState, reason: string) => void): void {
    if (this.closed) throw new TapError(`EBADF: cannot start TAP ${this.device}: port is closed`, 'EBADF', -9, this.device);
    if (this.started) throw new TapError(`EALREADY: cannot start TAP ${this.device}: already started`, 'EALREADY', -114, this.device);
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
        // The reader stamped the batch with the loop's clock; copying it between typed
        // arrays keeps it an unboxed double (Date.now() would allocate on every batch).
        time[0] = counters[loopTime]!;
        onBatch(this);
      } else {
        this.markDown(`device ${this.device} gone: ${this.native.lime_tap_errname(n)}`);
      }
    };
    this.native.lime_tap_start(
      this.handle,
      this.fd,
      batch.slab,
      batch.start,
      batch.len,
      batch.slotSize,
      HEADROOM,
      batch.capacity,
      onNative,
    );
  }

  flush(slab: Buffer): number {
    const n = this.tx.count;
    if (n === 0) return 0;
    this.tx.count = 0;
    const c = this.counters;
    const i = this.counterIndex;
    if (this.portState === 'down') {
      c[i.txPortDown] += n;
      return 0;
    }
    const downBefore = c[i.txPortDown];
    const sent = this.native.lime_tap_write_batch(this.handle, this.fd, slab, this.tx.start, this.tx.len, n);
    if (c[i.txPortDown] !== downBefore) {
      // EIO means administratively down (the rest of the batch is dropped and counted, and
      // the port recovers when the device is up again); the others mean it is gone.
      const code = this.native.lime_tap_errname(c[i.lastErrno]);
      if (DEVICE_GONE.has(code)) this.markDown(`device ${this.device} gone: ${code}`);
    }
    return sent;
  }

  ioCounters(): PortIoCounters {
    const c = this.counters;
    const i = this.counterIndex;
    return {
      txPackets: c[i.txPackets],
      txBytes: c[i.txBytes],
      txQueueFull: c[i.txQueueFull],
      txPortDown: c[i.txPortDown],
      txError: c[i.txError],
      rxTooLong: c[i.rxTooLong],
    };
  }

  /** Every native counter (for limectl show / tests). */
  tapCounters(): TapCounters {
    const c = this.counters;
    const i = this.counterIndex;
    return {
      ...this.ioCounters(),
      rxPackets: c[i.rxPackets],
      rxBytes: c[i.rxBytes],
      rxBatches: c[i.rxBatches],
    };
  }

  /** Stop receiving, close the fd (a non-persistent TAP then disappears). Idempotent; no onStatus. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.portState = 'down';
    this.native.lime_tap_close(this.handle);
  }

  private markDown(reason: string): void {
    if (this.portState === 'down') return;
    this.portState = 'down';
    this.native.lime_tap_stop(this.handle);
    this.onStatus?.(this, 'down', reason);
  }
}

function closeFd(native: LimeTapBinding, fd: number): void {
  const { handle } = allocTapHandle();
  native.lime_tap_init(handle, fd);
  native.lime_tap_close(handle);
}
