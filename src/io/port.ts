/**
 * The Port interface: every way frames enter or leave the daemon (TAP devices now; GRE,
 * system interfaces and others later) implements this one small, batch-oriented interface.
 *
 * Receive: `start()` hands the port the shared FrameBatch and a callback. Whenever frames
 * are available the port fills the batch (start/len/count, inPort = its number) and calls
 * `onBatch(port)` synchronously; the callee must be done with every frame when it returns.
 * Send: the datapath appends (offset, size) pairs into `tx` (frames in `batch.slab`) and
 * calls `flush()`, which sends them all in one native call and empties the queue. Frames
 * that cannot be sent are counted in the port's drop counters, never thrown.
 * Status: a port whose device disappears or fails reports `down` through `onStatus`,
 * stops receiving, and drops (counted) what is queued to it.
 * Tunnels: a tunnel port hands over decapsulated frames with `batch.tunneled` set and each
 * frame's key in `batch.tunKey`; every other port clears `tunneled`. It sends each queued
 * frame with the key queued beside it (`tx.tunKey`) when its key is per flow.
 */
import type { FrameBatch, TxQueue } from '../packet/batch.js';

export type PortState = 'up' | 'down';
export type PortType = 'tap' | 'system' | 'gre' | 'memory';

/** Counters a port keeps itself (native send/receive results). */
export interface PortIoCounters {
  /** Frames and bytes the port actually sent. */
  txPackets: number;
  txBytes: number;
  /** Frames the kernel refused because its queue was full (EAGAIN/ENOBUFS). */
  txQueueFull: number;
  /** Frames not sent because the device was down or gone. */
  txPortDown: number;
  /** Frames not sent for any other error. */
  txError: number;
  /** Frames larger than the slot that were truncated by the kernel read (and dropped). */
  rxTooLong: number;
}

/**
 * Receives the frames a port handles, for `limectl capture`: direction 0 = received (after
 * decapsulation, before any action changes them), 1 = sent (before encapsulation).
 * Management path: it may copy and allocate; the port calls it only while it is set.
 */
export type CaptureHook = (direction: 0 | 1, slab: Buffer, start: Uint32Array, len: Uint32Array, n: number) => void;

export interface Port {
  readonly name: string;
  /** Port number: stable for the port's life, chosen by the daemon. */
  readonly number: number;
  readonly type: PortType;
  /** The OS device name behind the port (may differ from `name`). */
  readonly device: string;
  readonly mtu: number;
  readonly state: PortState;
  readonly tx: TxQueue;
  start(batch: FrameBatch, onBatch: (port: Port) => void, onStatus: (port: Port, state: PortState, reason: string) => void): void;
  /** Send everything queued in `tx` (offsets into `slab`), then clear the queue. Returns frames sent. */
  flush(slab: Buffer): number;
  ioCounters(): PortIoCounters;
  /**
   * Nanoseconds the port's receive path (reads, the data path it runs, the sends it makes)
   * has spent on the event loop since it started; absent for ports that read nothing of
   * their own. The daemon's control policer compares it with the loop's busy time.
   */
  busyNs?(): number;
  /** Wake-ups whose reads stopped at the drain limit with frames still queued (a backlog). */
  backlogPolls?(): number;
  close(): void;
  /**
   * A tunnel port that does not fragment: the largest inner frame it carries. Larger ones
   * are dropped (tunnel_path_mtu) and IPv4 DF senders get ICMP "fragmentation needed".
   */
  readonly tunnelMaxFrame?: number;
  /** IPv4 source of those ICMP answers (the tunnel's local address); absent = the packet's destination. */
  readonly tunnelIcmpSource?: number;
  /** Drops the port counts itself on receive (e.g. GRE decapsulation), indexed by DropReason. */
  readonly rxDrops?: Float64Array;
  /** Set while `limectl capture` watches the port (see CaptureHook). */
  capture?: CaptureHook | undefined;
}
