/**
 * The data path of the foundation: ports → batch parse → NORMAL decision → batch out.
 *
 * Order of work for one received batch (`process`), all synchronous, nothing allocated:
 *   1. take the batch's time stamp (set by the port when it read the batch) as the clock
 *      for this batch; count the batch's frames and bytes as received on the port;
 *   2. for each frame: parse headers into the batch's key row (extract); a malformed frame
 *      is dropped and counted by reason; a multicast source MAC is invalid and dropped;
 *   3. NORMAL: learn (VLAN, source MAC) → in-port; look up the destination; unicast to
 *      the learned port, or flood (broadcast, multicast, unknown unicast) to every other
 *      port that is up — never back out of the in-port;
 *   4. output = append (offset, size) of the frame to the output port's TxQueue — the
 *      frame stays where it is in the slab, so flooding copies nothing;
 *   5. flush every port that got frames: one native send call per port per batch.
 *
 * Ports are numbered from 1; `ports[n]` is port n or undefined. Counters are columns in
 * Float64Arrays indexed by port number (drops: port * DROP_REASON_COUNT + reason).
 *
 * With a flow table (option `table`), steps 3–5 are the flow pipeline instead
 * (pipeline.ts: exact-match cache → translation on a miss → execution, NORMAL being one
 * action among others); without one, the switch is the NORMAL-only bridge above.
 */
import { DROP_REASON_COUNT, DropReason } from '../packet/drop.js';
import { extract } from '../packet/extract.js';
import { K, KEY_WORDS } from '../packet/key.js';
import type { FrameBatch, TxQueue } from '../packet/batch.js';
import type { Action } from '../flow/types.js';
import type { TableView } from '../table/types.js';
import { MacTable } from './mac-table.js';
import type { PacketInHook } from './execute.js';
import { Pipeline, type TraceResult } from './pipeline.js';

/**
 * What the switch needs of a port: its queue of frames to send, a way to send them, and
 * its state. io/port.ts's Port satisfies it; the data path does no I/O of its own.
 */
export interface SwitchPort {
  readonly number: number;
  readonly name: string;
  readonly mtu: number;
  readonly state: 'up' | 'down';
  readonly tx: TxQueue;
  flush(slab: Buffer): number;
  ioCounters(): { txQueueFull: number; txPortDown: number; txError: number; rxTooLong: number };
}

export const MAX_PORTS = 1024;

export interface SwitchOptions {
  macTableCapacity?: number;
  macAgingSeconds?: number;
  /** Milliseconds clock for housekeeping (tick); batches carry their own time stamp. */
  now?: () => number;
  /** The flow table: when given, frames go through the flow pipeline instead of NORMAL only. */
  table?: TableView;
  /** Consumer of packet-ins (CONTROLLER actions); without one they count as `no_controller`. */
  onPacketIn?: PacketInHook;
  /** Packet-in rate limit: tokens per second and bucket depth (defaults 1000 and 100). */
  packetInRate?: number;
  packetInBurst?: number;
  /** Exact-match cache entries (power of two, default 8192). */
  emcEntries?: number;
  /** Bytes of the output-copy slab (see execute.ts). */
  copySlabSize?: number;
}

export class Switch {
  readonly macTable: MacTable;
  /** Port by number (1-based); holes are undefined. */
  readonly ports: (SwitchPort | undefined)[] = [];
  readonly rxPackets = new Float64Array(MAX_PORTS);
  readonly rxBytes = new Float64Array(MAX_PORTS);
  /** Drops counted by the data path, by port and reason: [port * DROP_REASON_COUNT + reason]. */
  readonly drops = new Float64Array(MAX_PORTS * DROP_REASON_COUNT);
  /** Largest frame each output port accepts (MTU + Ethernet header + VLAN tags). */
  private readonly maxFrame = new Uint32Array(MAX_PORTS);
  /** Ports that are up, as a dense list for flooding. */
  private floodList = new Int32Array(0);
  /** The flow pipeline, when the switch has a flow table. */
  readonly pipeline: Pipeline | undefined;
  /** Ports with frames queued in this batch. */
  private readonly dirty = new Int32Array(MAX_PORTS);
  private nDirty = 0;
  private readonly now: () => number;

  /** Current time (ms), shared with the MAC table: the batch's stamp, or now() in tick(). */
  readonly clock = new Float64Array(1);

  constructor(opts: SwitchOptions = {}) {
    this.macTable = new MacTable(opts.macTableCapacity ?? 8192, opts.macAgingSeconds ?? 300, this.clock);
    this.now = opts.now ?? Date.now;
    if (opts.table !== undefined) {
      this.pipeline = new Pipeline(opts.table, this.ports, this.drops, this.maxFrame, this.macTable, {
        onPacketIn: opts.onPacketIn,
        packetInRate: opts.packetInRate,
        packetInBurst: opts.packetInBurst,
        emcEntries: opts.emcEntries,
        copySlabSize: opts.copySlabSize,
      });
    }
  }

  /** Lowest free port number. */
  allocatePortNumber(): number {
    for (let n = 1; n < MAX_PORTS; n++) if (this.ports[n] === undefined) return n;
    throw new RangeError(`too many ports (at most ${MAX_PORTS - 1})`);
  }

  addPort(port: SwitchPort): void {
    const n = port.number;
    if (n < 1 || n >= MAX_PORTS || this.ports[n] !== undefined) throw new RangeError(`port number ${n} is not free`);
    this.ports[n] = port;
    this.rxPackets[n] = 0;
    this.rxBytes[n] = 0;
    this.drops.fill(0, n * DROP_REASON_COUNT, (n + 1) * DROP_REASON_COUNT);
    // Payload up to the MTU, plus the Ethernet header and room for two VLAN tags.
    this.maxFrame[n] = port.mtu + 14 + 8;
    this.refreshFloodList();
  }

  removePort(n: number): void {
    if (this.ports[n] === undefined) return;
    this.ports[n] = undefined;
    this.macTable.flushPort(n);
    this.refreshFloodList();
  }

  /** Call when a port's state changed (up/down). */
  portStateChanged(n: number): void {
    const port = this.ports[n];
    if (port !== undefined && port.state === 'down') this.macTable.flushPort(n);
    this.refreshFloodList();
  }

  private refreshFloodList(): void {
    const up: number[] = [];
    const all: number[] = [];
    for (let n = 1; n < this.ports.length; n++) {
      const port = this.ports[n];
      if (port === undefined) continue;
      all.push(n);
      if (port.state === 'up') up.push(n);
    }
    this.floodList = Int32Array.from(up);
    this.pipeline?.exec.setPortLists(this.floodList, Int32Array.from(all));
  }

  /** Sets (or removes) the consumer of packet-ins. */
  setPacketInHook(hook: PacketInHook | undefined): void {
    if (this.pipeline !== undefined) this.pipeline.exec.onPacketIn = hook;
  }

  /**
   * Packet-out: runs `actions` on `frame` as if received on `inPort` (a port number, or
   * OFPP.CONTROLLER / OFPP.NONE). Management path; needs a flow table.
   */
  packetOut(frame: Uint8Array, inPort: number, actions: Action[]): void {
    if (this.pipeline === undefined) throw new Error('packet-out needs a flow table');
    this.pipeline.packetOut(frame, inPort, actions, this.now());
  }

  /** ofproto/trace: the lookups a frame with this key makes and what it would undergo. */
  trace(key: Uint32Array): TraceResult {
    if (this.pipeline === undefined) throw new Error('trace needs a flow table');
    return this.pipeline.trace(key, this.now());
  }

  /** Forward one received batch (see the order of work at the top of the file). */
  process(batch: FrameBatch): void {
    this.clock[0] = batch.time[0]!;
    const inPort = batch.inPort;
    if (this.pipeline !== undefined) {
      const bytes = this.pipeline.process(batch);
      this.rxPackets[inPort] += batch.count;
      this.rxBytes[inPort] += bytes;
      return;
    }
    const count = batch.count;
    const slab = batch.slab;
    const start = batch.start;
    const len = batch.len;
    const key = batch.key;
    const drop = batch.drop;
    const dropBase = inPort * DROP_REASON_COUNT;
    const macTable = this.macTable;
    const floodList = this.floodList;
    let rxBytes = 0;

    for (let i = 0; i < count; i++) {
      const off = start[i]!;
      const size = len[i]!;
      rxBytes += size;
      const k = i * KEY_WORDS;
      const reason = extract(slab, off, size, key, k, inPort);
      if (reason !== DropReason.NONE) {
        drop[i] = reason;
        this.drops[dropBase + reason]++;
        continue;
      }
      const srcHi = key[k + K.DL_SRC_HI]!;
      if ((srcHi & 0x100) !== 0) {
        drop[i] = DropReason.SRC_MAC_MULTICAST;
        this.drops[dropBase + DropReason.SRC_MAC_MULTICAST]++;
        continue;
      }
      drop[i] = DropReason.NONE;
      const vlan = key[k + K.VLAN_TCI]! & 0xfff;
      macTable.learn(srcHi, key[k + K.DL_SRC_LO]!, vlan, inPort);

      const dstHi = key[k + K.DL_DST_HI]!;
      let out = -1;
      if ((dstHi & 0x100) === 0) out = macTable.lookup(dstHi, key[k + K.DL_DST_LO]!, vlan);
      if (out > 0) {
        if (out === inPort) {
          this.drops[dropBase + DropReason.NO_OUTPUT]++;
        } else {
          this.output(out, off, size, dropBase);
        }
        continue;
      }
      // Flood: every port that is up, except the one the frame came in on.
      let sent = false;
      for (let j = 0; j < floodList.length; j++) {
        const p = floodList[j]!;
        if (p !== inPort) {
          this.output(p, off, size, dropBase);
          sent = true;
        }
      }
      if (!sent) this.drops[dropBase + DropReason.NO_OUTPUT]++;
    }
    this.rxPackets[inPort] += count;
    this.rxBytes[inPort] += rxBytes;
    this.flush(slab);
  }

  private output(p: number, off: number, size: number, dropBase: number): void {
    const port = this.ports[p];
    if (port === undefined) return;
    if (size > this.maxFrame[p]!) {
      // Counted at the input port, where the oversized frame came from.
      this.drops[dropBase + DropReason.TOO_LONG]++;
      return;
    }
    const tx = port.tx;
    if (tx.count === 0) this.dirty[this.nDirty++] = p;
    tx.push(off, size);
  }

  private flush(slab: Buffer): void {
    for (let j = 0; j < this.nDirty; j++) {
      const port = this.ports[this.dirty[j]!];
      if (port !== undefined) port.flush(slab);
    }
    this.nDirty = 0;
  }

  /** Periodic housekeeping (MAC aging); the daemon calls it about once a second. */
  tick(): void {
    this.clock[0] = this.now();
    this.macTable.expire();
  }

  /** The housekeeping clock (ms), the same clock batches are stamped with. */
  currentTime(): number {
    return this.now();
  }

  /** Drops by reason for one port: the data path's plus the port's own I/O drops. */
  dropCounts(n: number): Float64Array {
    const out = this.drops.slice(n * DROP_REASON_COUNT, (n + 1) * DROP_REASON_COUNT);
    const port = this.ports[n];
    if (port !== undefined) {
      const io = port.ioCounters();
      out[DropReason.TX_QUEUE_FULL] += io.txQueueFull;
      out[DropReason.PORT_DOWN] += io.txPortDown;
      out[DropReason.TX_ERROR] += io.txError;
      out[DropReason.RX_TOO_LONG] += io.rxTooLong;
    }
    return out;
  }
}
