/**
 * The one place that loads lime's native addon (native/, built by node-gyp into
 * native/build/Release/lime_tap.node).
 *
 * One handle and one set of batched calls (`lime_tap_init`, `lime_tap_start`,
 * `lime_tap_write_batch`, `lime_tap_close`) serve every kind of fd the addon opens: a TAP
 * device (`lime_tap_open`), a raw IPv4 socket (`lime_raw_open_rx` / `lime_raw_open_tx`:
 * one IPv4 packet per slot, header included) and an AF_PACKET socket on an existing
 * interface (`lime_packet_open`: one Ethernet frame per slot). An AF_PACKET socket opened
 * with `LIME_PACKET_F_VNET_HDR` is detected by `lime_tap_init` (counter `vnet_hdr` = 1):
 * its drain completes offloaded checksums and cuts GSO super-frames into MTU-sized frames
 * in C, and its writes get an all-zero virtio-net header, so JS still sees and sends plain
 * frames through the same slab + start + len columns.
 *
 * The addon is thin (STYLE.md principle 8): syscalls only, JS owns the memory. The
 * binding's names mirror the C names 1:1 (`lime_tap_open` in JS is `lime_tap_open` in
 * native/binding.c). Counters live in the handle Buffer that JS allocates
 * (`Buffer.alloc(sizeof_lime_tap)`), as doubles at `offsetof_lime_tap_*`; read them
 * through a Float64Array over the handle (see `tapCounterIndex`) without a native call.
 *
 * The addon is loaded lazily on first use, so modules that merely import io/ (the CLI,
 * unit tests of pure code) work without a native build.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A native flow cache (an N-API external; see LimeTapBinding.lime_fc_new). */
export type NativeFlowCache = { readonly __brand: 'NativeFlowCache' };
/** A native forwarding engine (see LimeTapBinding.lime_engine_new). */
export type NativeEngine = { readonly __brand: 'NativeEngine' };

/** The raw binding. Every function throws only for bad arguments or (open/link control) OS errors. */
export interface LimeTapBinding {
  /** Bytes to allocate for a handle (a multiple of 8). */
  readonly sizeof_lime_tap: number;
  readonly offsetof_lime_tap_rx_packets: number;
  readonly offsetof_lime_tap_rx_bytes: number;
  readonly offsetof_lime_tap_rx_batches: number;
  readonly offsetof_lime_tap_rx_too_long: number;
  readonly offsetof_lime_tap_tx_packets: number;
  readonly offsetof_lime_tap_tx_bytes: number;
  readonly offsetof_lime_tap_tx_queue_full: number;
  readonly offsetof_lime_tap_tx_port_down: number;
  readonly offsetof_lime_tap_tx_error: number;
  readonly offsetof_lime_tap_last_errno: number;
  readonly offsetof_lime_tap_loop_time: number;
  /** virtio-net handles: frames whose offloaded checksum (NEEDS_CSUM) the drain completed. */
  readonly offsetof_lime_tap_rx_csum_completed: number;
  /** virtio-net handles: GSO super-frames cut into frames (the frames count in rx_packets). */
  readonly offsetof_lime_tap_rx_gso_segmented: number;
  /**
   * virtio-net handles: datagrams dropped because their offload request could not be
   * honoured: a GSO type not segmented (UFO), headers that do not parse, checksum offsets
   * outside the frame. (A super-frame whose segments would not fit a slot: rx_too_long.)
   */
  readonly offsetof_lime_tap_rx_gso_dropped: number;
  /** 1 when lime_tap_init found PACKET_VNET_HDR on the fd (virtio-net handle), else 0. */
  readonly offsetof_lime_tap_vnet_hdr: number;
  /** AF_PACKET handles: ENETDOWN reports (the interface went down); polling went on after each. */
  readonly offsetof_lime_tap_rx_link_down: number;
  /** Nanoseconds spent in the handle's poll callbacks (reads, onBatch and the sends it makes). */
  readonly offsetof_lime_tap_busy_ns: number;
  /** Poll callbacks that read their most batches and stopped with frames possibly still queued. */
  readonly offsetof_lime_tap_rx_full_polls: number;
  /** Words of the C flow key (native/extract.h); equals packet/key.ts KEY_WORDS. */
  readonly LIME_KEY_WORDS: number;
  /**
   * The C flow key of one frame (native/extract.c, the same as packet/extract.ts) into
   * `key` (at least LIME_KEY_WORDS words); returns the drop reason (0 = none). The first
   * part of a native fast path; used by its tests only so far.
   */
  lime_extract_key(frame: Buffer, key: Uint32Array, inPort: number): number;
  /** Longest program the native flow cache holds (words). */
  readonly LIME_FC_PROG_MAX: number;
  /**
   * The native flow cache (native/flowcache.h): key → program, one writer (this thread),
   * readers on native threads. Exposed for its tests so far; `entries` is rounded up to a
   * power of two. The value is opaque and freed with the cache's last reference.
   */
  lime_fc_new(entries: number): NativeFlowCache;
  /**
   * Install a program for a key in the current epoch, into a free slot: 1 installed, 0 the
   * key already has one (kept), -1 empty or too long, -2 both of its slots are taken.
   * `length`: the program is program[0 … length) (default: all of it).
   */
  lime_fc_insert(cache: NativeFlowCache, key: Uint32Array, program: Uint32Array, length?: number): number;
  /** The key's program (and one packet of `bytes` counted), or null on a miss. */
  lime_fc_lookup(cache: NativeFlowCache, key: Uint32Array, bytes: number): Uint32Array | null;
  /** Every entry so far becomes a miss (its slot is freed by the next harvest). */
  lime_fc_invalidate(cache: NativeFlowCache): void;
  /** [packets, bytes] of the key's entry in the current epoch, or null. */
  lime_fc_counters(cache: NativeFlowCache, key: Uint32Array): [number, number] | null;
  /**
   * What the entries counted since the last harvest, as records [packets, bytes, progLen,
   * prog…] in `out` (see native/flowcache.h). `state` = [cursor, quiesced]: start with
   * cursor 0 (flags act then), call again while the cursor is below the slot count.
   */
  lime_fc_harvest(cache: NativeFlowCache, out: Float64Array, flags: number, state: Uint32Array): number;
  /** [slots in use, slots]. */
  lime_fc_usage(cache: NativeFlowCache): [number, number];
  readonly LIME_FC_RETIRE_ALL: number;
  readonly LIME_FC_RETIRE_IDLE: number;
  /** Test support: a reader thread looking `keys` (n × KEY_WORDS) up until stopped. */
  lime_fc_stress_start(cache: NativeFlowCache, keys: Uint32Array): void;
  /** Stop the reader: [lookups, hits, torn copies, bytes it counted]. */
  lime_fc_stress_stop(): [number, number, number, number];
  /** Test support: the program (version, words from key and version) the stress reader checks. */
  lime_fc_stress_program(key: Uint32Array, version: number): Uint32Array;
  /**
   * The native forwarding engine (native/engine.h): a thread that reads its ports, runs
   * flow-cache hits (OUTPUT, LEARN) itself and hands every other frame over — through the
   * port's handle when the port was attached with one (into its batch, to its onBatch),
   * else to `onMiss` on this thread.
   */
  lime_engine_new(cache: NativeFlowCache, onMiss: ((port: number, frame: Buffer) => void) | null): NativeEngine;
  /** While stopped: a frame fd (made non-blocking) as port `port` (1 .. 63). */
  lime_engine_add_port(engine: NativeEngine, port: number, fd: number): void;
  /** While stopped: the engine reads a started TAP handle's fd (its own poll stops) and writes frames up to maxFrame bytes to it. */
  lime_engine_attach_tap(engine: NativeEngine, port: number, handle: Buffer, maxFrame: number): void;
  /** While stopped: a GRE tunnel; reads the started raw-socket handle, sends inner frames up to maxFrame bytes on txFd with `header` (outer IPv4 + GRE). */
  lime_engine_attach_gre(
    engine: NativeEngine,
    port: number,
    rxHandle: Buffer,
    txFd: number,
    header: Uint8Array,
    remote: number,
    hasKey: number,
    key: number,
    maxFrame: number,
  ): void;
  /** While stopped: the engine lets go of the port; its handle polls its fd itself again. */
  lime_engine_detach(engine: NativeEngine, port: number): void;
  lime_engine_start(engine: NativeEngine): void;
  /** Stop and join the thread (what waits is handed over); idempotent. */
  lime_engine_stop(engine: NativeEngine): void;
  /** Every frame from the port goes to JavaScript, and the engine sends nothing to it. */
  lime_engine_set_slow(engine: NativeEngine, port: number, slow: boolean): void;
  /** out = [rxPackets, rxBytes, txPackets, txBytes, txErrors, upcalls, rxTooLong] of the port's native traffic; false if no such port. */
  lime_engine_port_stats(engine: NativeEngine, port: number, out: Float64Array): boolean;
  /** The user id of the peer of a connected Unix socket (SO_PEERCRED), or -errno. */
  lime_peer_uid(fd: number): number;
  /** out = [CPU time of the engine's thread (ns), reads that filled a whole batch], cumulative over its runs. */
  lime_engine_load(engine: NativeEngine, out: Float64Array): void;
  /** Stop the thread, hand over what is waiting, give the ports back to their handles, free; idempotent. */
  lime_engine_close(engine: NativeEngine): void;
  lime_engine_stats(engine: NativeEngine): { rx: number; hits: number; upcalls: number; upcallDrops: number; tx: number; txErrors: number; foreign: number };
  readonly LIME_ENGINE_MAX_PORTS: number;
  readonly LIME_OP_LEARN: number;
  /** Test support: an AF_UNIX datagram socket pair (frame boundaries kept), non-blocking. */
  lime_test_socketpair(): [number, number];
  lime_test_fd_write(fd: number, frame: Buffer): number;
  lime_test_fd_read(fd: number): Buffer | null;
  lime_test_fd_close(fd: number): void;
  /** Reserved flag for virtio-net headers (not implemented: open rejects it with EINVAL). */
  readonly LIME_TAP_F_VNET_HDR: number;
  /** `lime_packet_open` flag: PACKET_VNET_HDR (see lime_packet_open). */
  readonly LIME_PACKET_F_VNET_HDR: number;
  /** lime_tap_init_mode modes (the values of the constants of the same names below). */
  readonly LIME_TAP_MODE_PLAIN: number;
  readonly LIME_TAP_MODE_VNET: number;

  /**
   * Create or attach TAP `name` (IFF_TAP|IFF_NO_PI; '' = kernel picks `lime%d`; a `%d`
   * pattern is allowed). Non-blocking, close-on-exec fd. `flags` must be 0 for now.
   * Throws Error with `code` (errno name), `errno` (negative), `device`.
   */
  lime_tap_open(name: string, flags: number): { fd: number; name: string };
  /**
   * Bind a fresh zeroed handle (Buffer.alloc(sizeof_lime_tap)) to an open fd: a TAP, a
   * raw IPv4 socket or an AF_PACKET socket. The reader's mode is detected from the fd: an
   * AF_PACKET socket with PACKET_VNET_HDR (opened with LIME_PACKET_F_VNET_HDR) makes it a
   * virtio-net handle (`vnet_hdr` = 1), anything else a plain one.
   */
  lime_tap_init(handle: Buffer, fd: number): void;
  /**
   * lime_tap_init with the mode stated (LIME_TAP_MODE_PLAIN or LIME_TAP_MODE_VNET);
   * throws EINVAL (`EINVAL: cannot use fd 12 in virtio-net mode: it does not carry
   * virtio-net headers (PACKET_VNET_HDR)`) when the fd disagrees.
   */
  lime_tap_init_mode(handle: Buffer, fd: number, mode: number): void;
  /** The device's txqueuelen: for a TAP, how many frames the kernel queues toward limed. */
  lime_tap_set_txqlen(name: string, qlen: number): void;
  lime_tap_set_mtu(name: string, mtu: number): void;
  lime_tap_set_mac(name: string, mac: Buffer): void;
  lime_tap_get_mac(name: string): Buffer;
  lime_tap_set_up(name: string, up: boolean): void;
  /** errno name for an errno value (sign ignored), e.g. 77 → 'EBADFD'. */
  lime_tap_errname(errno: number): string;
  /** The event loop's clock (uv_now, ms, monotonic): the clock batches are stamped with. */
  lime_tap_now(): number;
  /**
   * Poll the fd; per wake-up, read up to `maxBatch` frames into `slab` at
   * `i * slotSize + headroom`, fill start[i]/len[i] and call `onBatch(n)` once per
   * drain. `onBatch(-errno)` once when the device fails (polling has then stopped).
   * Except on an AF_PACKET socket, `onBatch(-ENETDOWN)` (counted in rx_link_down): its
   * interface went down, and polling goes on, so the same socket receives again once the
   * interface is up. Deleting the interface reports the same ENETDOWN (it goes down first)
   * and then nothing: the caller tells the two apart (lime_if_info) and stops the handle.
   *
   * virtio-net handles: a frame with a pending checksum is completed in its slot
   * (rx_csum_completed); a TCPv4/TCPv6/UDP (USO) super-frame is cut into frames of the
   * sender's segment size, each in its own slot with its own IP length/id/checksum and
   * TCP sequence number/flags/checksum or UDP length/checksum (rx_gso_segmented); when
   * the batch fills in the middle of a super-frame, onBatch is called and the rest goes
   * into a fresh batch. Other GSO types are dropped (rx_gso_dropped).
   */
  lime_tap_start(
    handle: Buffer,
    fd: number,
    slab: Buffer,
    start: Uint32Array,
    len: Uint32Array,
    slotSize: number,
    headroom: number,
    maxBatch: number,
    onBatch: (n: number) => void,
  ): void;
  /** Stop polling; safe to call twice and from inside onBatch. */
  lime_tap_stop(handle: Buffer): void;
  /** Stop polling and close the fd; idempotent. */
  lime_tap_close(handle: Buffer): void;
  /**
   * Write frames `start[i], len[i]` (i < n) of `slab`, one write(2) each (a virtio-net
   * handle: writev(2) behind an all-zero header); returns frames sent. Never throws per
   * frame: EAGAIN/ENOBUFS count tx_queue_full; a device gone or down (EBADFD, EBADF, EIO,
   * ENODEV, ENXIO, ENETDOWN) counts the rest of the batch tx_port_down and sets last_errno;
   * anything else, EMSGSIZE (longer than the MTU) included, counts tx_error.
   */
  lime_tap_write_batch(handle: Buffer, fd: number, slab: Buffer, start: Uint32Array, len: Uint32Array, n: number): number;

  /**
   * A raw IPv4 socket receiving IP protocol `proto` (1..255; lime: 47 = GRE), bound to
   * `localIp` (IPv4 address as an unsigned 32-bit number in host order, e.g. 0x0a000001
   * for 10.0.0.1; 0 = any) — only packets to that address are read. Non-blocking,
   * close-on-exec, receive buffer raised to 4 MiB where allowed. Each read (each slot of
   * a batch) is one IPv4 packet, IPv4 header included; fragments are reassembled by the
   * kernel first. Returns the fd (use it with lime_tap_init / lime_tap_start).
   * Throws Error with `code` (errno name), `errno` (negative), `device` (''):
   * `EPERM: cannot open raw IPv4 socket (protocol 47): need CAP_NET_RAW`,
   * `EADDRNOTAVAIL: cannot bind raw IPv4 socket (protocol 47) to 10.0.0.9: not an address of this host …`.
   */
  lime_raw_open_rx(proto: number, localIp: number): number;
  /**
   * A raw IPv4 socket for sending whole IPv4 packets (IPPROTO_RAW: the caller writes the
   * IPv4 header; the kernel fills in the header checksum, and the source address and
   * identification when they are 0), bound to `localIp` unless 0 and connected to
   * `remoteIp` (host-order numbers as above), so lime_tap_write_batch on it sends each
   * slot as one packet routed towards remoteIp. Send buffer raised to 4 MiB where
   * allowed. Never receives: do not lime_tap_start it. A packet longer than the route's
   * MTU is refused (EMSGSIZE) and counted as tx_error.
   * Throws like lime_raw_open_rx (`… (IPPROTO_RAW) …`; ENETUNREACH when there is no
   * route to remoteIp).
   */
  lime_raw_open_tx(remoteIp: number, localIp: number): number;
  /**
   * An AF_PACKET socket on the existing interface `ifname` (a NIC, a veth end: a "system"
   * port), in this process's network namespace. Non-blocking, close-on-exec, buffers
   * raised to 4 MiB where allowed; bound to the interface for every protocol (ETH_P_ALL);
   * the interface is made promiscuous while the socket is open; PACKET_IGNORE_OUTGOING is
   * set, so frames sent on the interface — the ones written through this socket included —
   * are never read back. Each read is one Ethernet frame received on the interface, VLAN
   * tags included (the kernel takes a received frame's outer tag out of the data before
   * packet sockets see it, whatever the offloads; the reader gets it back through
   * PACKET_AUXDATA and puts it back after the MAC addresses); each write transmits one
   * frame, as it is, on the interface. Without virtio-net headers a frame longer than
   * the slot (a GRO/LRO or TSO/GSO super-frame) is dropped as rx_too_long and a frame with
   * an offloaded checksum is delivered with it unfinished: switch the interface's own
   * offloads off (lime_if_set_offloads) and open with `LIME_PACKET_F_VNET_HDR`, which
   * finishes what a peer (the other end of a veth) still sends unfinished. With that flag
   * the fd carries virtio-net headers, which lime_tap_init detects (see lime_tap_start).
   * Throws Error with `code`, `errno`, `device`: `ENODEV: cannot attach eth9: no such
   * interface`, `EPERM: cannot attach eth1: need CAP_NET_RAW`, `EINVAL` for unknown flags.
   */
  lime_packet_open(ifname: string, flags: number): number;
  /**
   * Index, MTU, MAC, administrative state (`up`: IFF_UP) and carrier (`running`:
   * IFF_RUNNING) of `ifname` in this network namespace. Throws `ENODEV: cannot read
   * interface eth9: no such interface`.
   */
  lime_if_info(ifname: string): { ifindex: number; mtu: number; mac: Buffer; up: boolean; running: boolean };
  /**
   * Switch GRO, LRO, TSO, GSO, TX checksumming, RX and TX VLAN offload off (`off` true)
   * or back on (false) on `ifname`, one legacy ethtool ioctl each. Each entry is "ok"
   * (the offload is now as asked, including when it already was), an errno name
   * ("EOPNOTSUPP": the device cannot change it, normal for some), or "unchanged" (the
   * kernel accepted the request but a dependency keeps the offload as it was). Throws only
   * for the whole call: `ENODEV: cannot set offloads of eth9: no such interface`,
   * `EPERM: cannot set offloads of eth1: need CAP_NET_ADMIN`.
   */
  lime_if_set_offloads(ifname: string, off: boolean): LimeOffloadResult;
}

/** Result of lime_if_set_offloads: per offload, "ok", an errno name, or "unchanged". */
export type LimeOffloadResult = {
  gro: string;
  lro: string;
  tso: string;
  gso: string;
  txcsum: string;
  rxvlan: string;
  txvlan: string;
};

/** lime_packet_open flag: the socket carries virtio-net headers (PACKET_VNET_HDR). */
export const LIME_PACKET_F_VNET_HDR = 0x1;
/** lime_tap_init_mode: one frame (or IPv4 packet) per read/write: TAP, raw IPv4, plain AF_PACKET. */
export const LIME_TAP_MODE_PLAIN = 0;
/** lime_tap_init_mode: an AF_PACKET socket opened with LIME_PACKET_F_VNET_HDR. */
export const LIME_TAP_MODE_VNET = 1;

/** Indexes (in Float64 units) of the counters in a Float64Array over a handle. */
export interface TapCounterIndex {
  readonly rxPackets: number;
  readonly rxBytes: number;
  readonly rxBatches: number;
  readonly rxTooLong: number;
  readonly txPackets: number;
  readonly txBytes: number;
  readonly txQueueFull: number;
  readonly txPortDown: number;
  readonly txError: number;
  readonly lastErrno: number;
  /** uv_now() when the last batch was read (ms). */
  readonly loopTime: number;
  /** virtio-net handles (see LimeTapBinding.offsetof_lime_tap_rx_csum_completed etc.). */
  readonly rxCsumCompleted: number;
  readonly rxGsoSegmented: number;
  readonly rxGsoDropped: number;
  /** 1 for a virtio-net handle, else 0. */
  readonly vnetHdr: number;
  /** AF_PACKET handles: ENETDOWN reports (see LimeTapBinding.offsetof_lime_tap_rx_link_down). */
  readonly rxLinkDown: number;
  /** Nanoseconds in poll callbacks: the data path's time on the event loop. */
  readonly busyNs: number;
  /** Poll callbacks that stopped at their drain limit with frames possibly still queued. */
  readonly rxFullPolls: number;
}

const ADDON_PATH = join('native', 'build', 'Release', 'lime_tap.node');

/** The package root: the nearest directory above this module holding package.json (works from src/ and dist/). */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find package.json above ${from}`);
    dir = parent;
  }
}

let binding: LimeTapBinding | undefined;
let counterIndex: TapCounterIndex | undefined;

/** Load (once) and return the addon. Throws a clear error when it was not built. */
export function loadNative(): LimeTapBinding {
  if (binding !== undefined) return binding;
  const root = packageRoot();
  const file = join(root, ADDON_PATH);
  if (!existsSync(file)) {
    throw new Error(`lime native addon not built: ${file} is missing (run \`npm run build\` or \`node-gyp rebuild --directory native\`)`);
  }
  const require = createRequire(import.meta.url);
  const loaded = require(file) as LimeTapBinding;
  if (
    loaded.LIME_PACKET_F_VNET_HDR !== LIME_PACKET_F_VNET_HDR ||
    loaded.LIME_TAP_MODE_PLAIN !== LIME_TAP_MODE_PLAIN ||
    loaded.LIME_TAP_MODE_VNET !== LIME_TAP_MODE_VNET ||
    typeof loaded.offsetof_lime_tap_rx_link_down !== 'number' ||
    typeof loaded.offsetof_lime_tap_rx_full_polls !== 'number'
  ) {
    throw new Error(`lime native addon ${file} is out of date or does not match src/io/native.ts (rebuild it: \`npm run build\`)`);
  }
  binding = loaded;
  return binding;
}

/** Counter indexes for a Float64Array view over a handle, from the exported offsets. */
export function tapCounterIndex(): TapCounterIndex {
  if (counterIndex !== undefined) return counterIndex;
  const b = loadNative();
  counterIndex = Object.freeze({
    rxPackets: b.offsetof_lime_tap_rx_packets / 8,
    rxBytes: b.offsetof_lime_tap_rx_bytes / 8,
    rxBatches: b.offsetof_lime_tap_rx_batches / 8,
    rxTooLong: b.offsetof_lime_tap_rx_too_long / 8,
    txPackets: b.offsetof_lime_tap_tx_packets / 8,
    txBytes: b.offsetof_lime_tap_tx_bytes / 8,
    txQueueFull: b.offsetof_lime_tap_tx_queue_full / 8,
    txPortDown: b.offsetof_lime_tap_tx_port_down / 8,
    txError: b.offsetof_lime_tap_tx_error / 8,
    lastErrno: b.offsetof_lime_tap_last_errno / 8,
    loopTime: b.offsetof_lime_tap_loop_time / 8,
    rxCsumCompleted: b.offsetof_lime_tap_rx_csum_completed / 8,
    rxGsoSegmented: b.offsetof_lime_tap_rx_gso_segmented / 8,
    rxGsoDropped: b.offsetof_lime_tap_rx_gso_dropped / 8,
    vnetHdr: b.offsetof_lime_tap_vnet_hdr / 8,
    rxLinkDown: b.offsetof_lime_tap_rx_link_down / 8,
    busyNs: b.offsetof_lime_tap_busy_ns / 8,
    rxFullPolls: b.offsetof_lime_tap_rx_full_polls / 8,
  });
  return counterIndex;
}

/** A zeroed handle Buffer and a Float64Array view of its counters. */
export function allocTapHandle(): { handle: Buffer; counters: Float64Array } {
  const b = loadNative();
  const handle = Buffer.alloc(b.sizeof_lime_tap);
  if (handle.byteOffset % 8 !== 0) throw new Error('lime_tap handle is not 8-byte aligned');
  const counters = new Float64Array(handle.buffer, handle.byteOffset, b.sizeof_lime_tap / 8);
  return { handle, counters };
}
