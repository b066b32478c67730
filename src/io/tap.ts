/**
 * TapPort: a Port over a Linux TAP device, through lime's native addon (native/); the
 * batched receive/send machinery it shares with the other fd-backed ports is in
 * native-port.ts.
 *
 * virtio-net headers (later): opening with IFF_VNET_HDR + TUNSETOFFLOAD will put each
 * frame's virtio_net_hdr in an extra per-frame column of the batch (beside start/len),
 * passed to the same native calls; the slots and the start/len columns do not change.
 * `open()` keeps a `flags` argument in the binding for that.
 */
import { formatMac, macFromBytes, macToBytes, parseMac } from '../util/addr.js';
import { closeFd, NativePort, PortError } from './native-port.js';
import { loadNative, type LimeTapBinding } from './native.js';

/** Error from TAP set-up: `code` is the errno name, `device` the interface name. */
export class TapError extends PortError {
  override name = 'TapError';

  /** Wrap an error thrown by the binding (Error with code/errno/device). */
  static override from(err: unknown, device: string): TapError {
    if (err instanceof TapError) return err;
    const [message, code, errno, dev] = PortError.fields(err, device, 'TAP');
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
  /** Frames the kernel queues toward limed (txqueuelen); default DEFAULT_TAP_QUEUE_LEN. */
  txQueueLen?: number;
  /** Capacity of the send queue (default BATCH_MAX). */
  txCapacity?: number;
}

/** All native counters of a TAP port. */
export type { NativeCounters as TapCounters } from './native-port.js';

/** The MAC's 6 bytes, or a TapError naming the device. */
function macBytes(mac: string, device: string): Buffer {
  try {
    return Buffer.from(macToBytes(parseMac(mac)));
  } catch {
    throw new TapError(`EINVAL: cannot set MAC of ${device}: "${mac}" is not a MAC address like 02:00:00:00:00:01`, 'EINVAL', -22, device);
  }
}

/**
 * Default queue of a TAP port toward limed: 5000 frames (Linux's default is 1000). The
 * queue is what absorbs the moments limed does not read — a lost time slice on a busy
 * router, a garbage-collection pause of the runtime: at 200k frames/s, 1000 frames last
 * 5 ms and 5000 last 25 ms. Frames only wait in it while limed is behind.
 */
export const DEFAULT_TAP_QUEUE_LEN = 5000;

/** The clock TAP batches are stamped with: the event loop's uv_now() (ms, monotonic). */
export function loopNow(): number {
  return loadNative().lime_tap_now();
}

export class TapPort extends NativePort {
  readonly type = 'tap' as const;
  protected readonly what = 'TAP';
  private readonly macAddress: string;

  private constructor(opts: TapPortOptions, native: LimeTapBinding, fd: number, device: string, mtu: number, mac: string) {
    super({ name: opts.name, number: opts.number, device, mtu, txCapacity: opts.txCapacity }, native, fd);
    this.macAddress = mac;
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
      native.lime_tap_set_txqlen(device, opts.txQueueLen ?? DEFAULT_TAP_QUEUE_LEN);
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

  /** The device's MAC address as "xx:xx:xx:xx:xx:xx" (read when the port was opened). */
  get mac(): string {
    return this.macAddress;
  }
}
