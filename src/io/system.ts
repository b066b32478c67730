/**
 * SystemPort: an interface that already exists — a NIC on the access router, or a veth
 * end — attached through an AF_PACKET socket of lime's native addon (the `system` port
 * type).
 *
 * The socket is bound to the interface, promiscuous, and set to ignore outgoing frames
 * (PACKET_IGNORE_OUTGOING): the frames limed injects are never read back, so nothing it
 * sends can loop into its own input.
 *
 * Offloads: a NIC or veth hands user space GRO/LRO super-frames, VLAN tags stripped into
 * metadata and, from a veth peer whose TX offloads are on (the Linux default), frames with
 * unfinished checksums and TSO/GSO super-frames of up to 64 KiB. A user-space switch that
 * forwards those as they are breaks TCP. lime does both things the kernel lets it do:
 *   1. on attach (`offloads: off`, the default) it turns GRO, LRO, TSO, GSO, TX checksum
 *      and RX/TX VLAN offload off on the interface itself;
 *   2. the socket runs with virtio-net headers (PACKET_VNET_HDR), so what a peer still
 *      sends unfinished is finished in the addon's reader: partial checksums completed,
 *      TCP (v4/v6) and UDP GSO super-frames segmented into MTU-sized frames, anything else
 *      counted as rx_offload_unsupported.
 *
 * Link state: the port's state is the interface's. An uplink that goes down and comes
 * back (`ip link set DEV down` / `up`, a NIC reset) is a flap to ride out, not a failure:
 *   - down: the kernel unhooks the socket and reports ENETDOWN once; the addon counts it
 *     (rx_link_down), keeps polling the same socket and calls us with -ENETDOWN. The port
 *     reports `down` through onStatus (the switch stops flooding to it and forgets the MACs
 *     learned on it); frames sent to it meanwhile are counted as tx_port_down, never
 *     written, never thrown.
 *   - while down, the port looks at the interface every LINK_POLL_MS (lime_if_info: one
 *     ioctl socket, no netlink listener; nothing runs while the link is up);
 *   - up again (IFF_UP): the port reports `up`; the socket, hooked back by the kernel,
 *     receives as before;
 *   - gone: deleting the interface (or moving it to another namespace) also starts with
 *     ENETDOWN, then the name is missing (ENODEV) or names another interface (a new
 *     ifindex): the port goes down for good with that reason, and stops polling. A write
 *     after the deletion (ENXIO) does the same.
 * Carrier (IFF_RUNNING) is not the port's state: the socket keeps working without it
 * (the frames it sends are dropped by the driver, as on any interface without carrier).
 */
import { DROP_REASON_COUNT, DropReason } from '../packet/drop.js';
import { formatMac, macFromBytes } from '../util/addr.js';
import { closeFd, NativePort, PortError } from './native-port.js';
import { loadNative, LIME_PACKET_F_VNET_HDR, LIME_TAP_MODE_VNET, type LimeTapBinding } from './native.js';

/** How often a port whose link is down looks at its interface (ms). */
export const LINK_POLL_MS = 200;

export interface SystemPortOptions {
  name: string;
  number: number;
  /** The interface; defaults to `name`. */
  device?: string;
  /** Turn the interface's offloads off on attach (default true). */
  offloadsOff?: boolean;
  txCapacity?: number;
}

export class SystemPort extends NativePort {
  readonly type = 'system' as const;
  protected readonly what = 'interface';
  readonly mac: string;
  /** What turning each offload off returned ("ok" or the errno name); empty when kept. */
  readonly offloads: Readonly<Record<string, string>>;
  /** The interface's index when attached: the socket is bound to it, not to the name. */
  readonly ifindex: number;
  /** Set while the link is down: looks at the interface every LINK_POLL_MS. */
  private linkWatch: NodeJS.Timeout | undefined;
  private readonly drops = new Float64Array(DROP_REASON_COUNT);

  private constructor(opts: SystemPortOptions, native: LimeTapBinding, fd: number, device: string, mtu: number, mac: string, offloads: Record<string, string>, ifindex: number) {
    super({ name: opts.name, number: opts.number, device, mtu, txCapacity: opts.txCapacity }, native, fd, LIME_TAP_MODE_VNET);
    this.mac = mac;
    this.offloads = offloads;
    this.ifindex = ifindex;
  }

  /**
   * Receive drops the reader counts itself: datagrams with an offload request it cannot
   * honour (a GSO type it does not segment, say) as rx_offload_unsupported. Read on the
   * management path only (Switch.dropCounts).
   */
  get rxDrops(): Float64Array {
    this.drops[DropReason.RX_OFFLOAD_UNSUPPORTED] = this.counters[this.counterIndex.rxGsoDropped]!;
    return this.drops;
  }

  /** -ENETDOWN: the link went down (polling goes on); anything else: down for good. */
  protected override deviceError(errno: number): void {
    const code = this.native.lime_tap_errname(errno);
    if (code !== 'ENETDOWN') {
      super.deviceError(errno);
      return;
    }
    if (this.gone || this.closed) return;
    // Deleted outright (the kernel takes an interface down before it unregisters it)?
    if (this.checkLink() !== 'down') return;
    if (this.portState === 'up') {
      this.portState = 'down';
      this.downReason = `link down: ${this.device} is down (${code})`;
      this.onStatus?.(this, 'down', this.downReason);
    }
    if (this.linkWatch === undefined) {
      this.linkWatch = setInterval(() => this.checkLink(), LINK_POLL_MS);
      this.linkWatch.unref();
    }
  }

  /**
   * Looks at the interface: gone (down for good, reported), up again (reported when the
   * port was down), or still down. Stops the watch unless it is still down.
   */
  private checkLink(): 'gone' | 'up' | 'down' {
    if (this.gone || this.closed) {
      this.stopWatch();
      return 'gone';
    }
    let info: { ifindex: number; up: boolean };
    try {
      info = this.native.lime_if_info(this.device);
    } catch (err) {
      const e = PortError.from(err, this.device);
      if (e.code !== 'ENODEV') return 'down'; // cannot tell now (out of fds, say): look again
      this.markDown(`device ${this.device} gone: ENODEV`);
      return 'gone';
    }
    if (info.ifindex !== this.ifindex) {
      this.markDown(`device ${this.device} gone: replaced by another interface (ifindex ${this.ifindex}, now ${info.ifindex})`);
      return 'gone';
    }
    if (!info.up) return 'down';
    this.stopWatch();
    if (this.portState === 'down') {
      this.portState = 'up';
      this.downReason = '';
      this.onStatus?.(this, 'up', `link up: ${this.device} is up again`);
    }
    return 'up';
  }

  private stopWatch(): void {
    if (this.linkWatch !== undefined) clearInterval(this.linkWatch);
    this.linkWatch = undefined;
  }

  protected override markDown(reason: string): void {
    this.stopWatch();
    super.markDown(reason);
  }

  override close(): void {
    this.stopWatch();
    super.close();
  }

  /**
   * Attach to the interface. Throws PortError naming the device and errno: ENODEV when it
   * does not exist, EPERM without CAP_NET_RAW / CAP_NET_ADMIN.
   */
  static open(opts: SystemPortOptions): SystemPort {
    const native = loadNative();
    const device = opts.device ?? opts.name;
    let info: { ifindex: number; mtu: number; mac: Buffer };
    let offloads: Record<string, string> = {};
    try {
      info = native.lime_if_info(device);
      if (opts.offloadsOff !== false) offloads = native.lime_if_set_offloads(device, true);
    } catch (err) {
      throw PortError.from(err, device);
    }
    let fd: number;
    try {
      fd = native.lime_packet_open(device, LIME_PACKET_F_VNET_HDR);
    } catch (err) {
      throw PortError.from(err, device);
    }
    try {
      const { hi, lo } = macFromBytes(info.mac);
      return new SystemPort(opts, native, fd, device, info.mtu, formatMac(hi, lo), offloads, info.ifindex);
    } catch (err) {
      closeFd(native, fd);
      throw PortError.from(err, device);
    }
  }
}
