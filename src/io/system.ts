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
 */
import { formatMac, macFromBytes } from '../util/addr.js';
import { closeFd, NativePort, PortError } from './native-port.js';
import { loadNative, LIME_PACKET_F_VNET_HDR, LIME_TAP_MODE_VNET, type LimeTapBinding } from './native.js';

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

  private constructor(opts: SystemPortOptions, native: LimeTapBinding, fd: number, device: string, mtu: number, mac: string, offloads: Record<string, string>) {
    super({ name: opts.name, number: opts.number, device, mtu, txCapacity: opts.txCapacity }, native, fd, LIME_TAP_MODE_VNET);
    this.mac = mac;
    this.offloads = offloads;
  }

  /**
   * Attach to the interface. Throws PortError naming the device and errno: ENODEV when it
   * does not exist, EPERM without CAP_NET_RAW / CAP_NET_ADMIN.
   */
  static open(opts: SystemPortOptions): SystemPort {
    const native = loadNative();
    const device = opts.device ?? opts.name;
    let info: { mtu: number; mac: Buffer };
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
      return new SystemPort(opts, native, fd, device, info.mtu, formatMac(hi, lo), offloads);
    } catch (err) {
      closeFd(native, fd);
      throw PortError.from(err, device);
    }
  }
}
