/**
 * The switch: ports, per-port counters and the MAC table around the flow pipeline.
 *
 * Order of work for one received batch (`process`), all synchronous, nothing allocated:
 *   1. take the batch's time stamp (set by the port when it read the batch) as the clock
 *      for this batch; count the batch's frames and bytes as received on the port;
 *   2. the flow pipeline (pipeline.ts): parse each frame into its key row (a malformed
 *      frame is dropped and counted by reason), exact-match cache → translation through
 *      the flow tables on a miss → execution; outputs append (offset, size) to the output
 *      port's TxQueue, so flooding copies nothing;
 *   3. flush every port that got frames: one native send call per port per batch.
 *
 * Without a flow table (option `table`) the switch gets a table holding only the
 * table-miss rule priority=0,actions=NORMAL: a VLAN-aware learning bridge, which is what
 * limed is by default too.
 *
 * Ports are numbered from 1; `ports[n]` is port n or undefined. Counters are columns in
 * Float64Arrays indexed by port number (drops: port * DROP_REASON_COUNT + reason).
 */
import { DROP_REASON_COUNT, DropReason } from '../packet/drop.js';
import type { FrameBatch, TxQueue } from '../packet/batch.js';
import type { Action } from '../flow/types.js';
import type { TableView } from '../table/types.js';
import { FlowTable } from '../table/flow-table.js';
import { MacTable } from './mac-table.js';
import type { Mac } from '../util/addr.js';
import type { PacketInHook } from './execute.js';
import { Pipeline, type TraceResult } from './pipeline.js';
import { INGRESS_TUNNEL_FLAG } from '../tunnel/logical.js';

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
  /**
   * A tunnel port that does not fragment: the largest inner frame it carries. Larger ones
   * are dropped (tunnel_path_mtu) and IPv4 DF senders get ICMP "fragmentation needed".
   */
  readonly tunnelMaxFrame?: number;
  /** IPv4 source of those ICMP answers (the tunnel's local address); absent = the packet's destination. */
  readonly tunnelIcmpSource?: number;
  /** Drops the port counted itself on receive (e.g. GRE decapsulation), by DropReason. */
  readonly rxDrops?: Float64Array;
}

export const MAX_PORTS = 1024;

export interface SwitchOptions {
  macTableCapacity?: number;
  macAgingSeconds?: number;
  /** Milliseconds clock for housekeeping (tick); batches carry their own time stamp. */
  now?: () => number;
  /** The flow table; default: one holding only the table-miss rule priority=0,actions=NORMAL. */
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
  /** Source MAC of the ICMP answers tunnels send (see execute.ts). */
  icmpSourceMac?: Mac;
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
  /** The flow pipeline. */
  readonly pipeline: Pipeline;
  private readonly now: () => number;

  /** Hosts' MACs and ports (live migration), learned at both sites. */
  private hostMacs: { mac: Mac; port: number }[] = [];

  /** Current time (ms), shared with the MAC table: the batch's stamp, or now() in tick(). */
  readonly clock = new Float64Array(1);

  constructor(opts: SwitchOptions = {}) {
    this.macTable = new MacTable(opts.macTableCapacity ?? 8192, opts.macAgingSeconds ?? 300, this.clock);
    this.now = opts.now ?? Date.now;
    const table = opts.table ?? new FlowTable({ now: this.now });
    this.pipeline = new Pipeline(table, this.ports, this.drops, this.maxFrame, this.macTable, {
      onPacketIn: opts.onPacketIn,
      packetInRate: opts.packetInRate,
      packetInBurst: opts.packetInBurst,
      emcEntries: opts.emcEntries,
      copySlabSize: opts.copySlabSize,
      icmpSourceMac: opts.icmpSourceMac,
    });
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
    this.pipeline.exec.tunnelMax[n] = port.tunnelMaxFrame ?? 0;
    this.pipeline.exec.tunnelIcmpSrc[n] = port.tunnelIcmpSource ?? 0;
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
    const interSite = this.pipeline.exec.interSitePort;
    for (let n = 1; n < this.ports.length; n++) {
      const port = this.ports[n];
      if (port === undefined || n === interSite) continue;
      all.push(n);
      // A host at the peer site is reachable whatever its port here is doing.
      if (port.state === 'up' || this.pipeline.exec.remoteVia[n] !== 0) up.push(n);
    }
    this.pipeline.exec.setPortLists(Int32Array.from(up), Int32Array.from(all));
  }

  /**
   * Live migration: `interSitePort` is the tunnel to the peer site (0 = none; frames from
   * it are delivered to hosts, never switched, and floods do not go to it); `hosts` are the
   * logical ports with their tunnel ids and whether the host is here. Output to a host
   * that is not here goes to the inter-site port with the host's tunnel id. `switchAtPeer`
   * (stop-and-copy, at the new site): the host's frames go unswitched to the peer's table.
   */
  setLocations(interSitePort: number, hosts: readonly { port: number; tunnelId: number; here: boolean; switchAtPeer?: boolean; mac?: Mac }[]): void {
    const exec = this.pipeline.exec;
    // Hosts' MACs are known at both sites: unicast to a host at the other site goes to it
    // (through the tunnel, with its tunnel id) instead of being flooded there, although
    // its frames never enter this site's table to be learned. Kept learned by tick().
    this.hostMacs = hosts.filter((h) => h.mac !== undefined).map((h) => ({ mac: h.mac!, port: h.port }));
    this.learnHostMacs(this.now());
    exec.interSitePort = interSitePort;
    exec.remoteVia.fill(0);
    exec.remoteKey.fill(0);
    exec.ingressVia.fill(0);
    exec.ingressKey.fill(0);
    exec.isHost.fill(0);
    exec.hostByTunnelId.clear();
    exec.anyHostByTunnelId.clear();
    const local: number[] = [];
    for (const h of hosts) {
      exec.isHost[h.port] = 1;
      exec.anyHostByTunnelId.set(h.tunnelId, h.port);
      if (h.switchAtPeer === true && interSitePort !== 0) {
        exec.ingressVia[h.port] = interSitePort;
        exec.ingressKey[h.port] = INGRESS_TUNNEL_FLAG + h.tunnelId;
      }
      if (h.here || interSitePort === 0) {
        exec.hostByTunnelId.set(h.tunnelId, h.port);
        local.push(h.port);
      } else {
        exec.remoteVia[h.port] = interSitePort;
        exec.remoteKey[h.port] = h.tunnelId;
      }
    }
    exec.localHosts = Int32Array.from(local);
    this.refreshFloodList();
  }

  /**
   * Start counting the bytes each of `hostPorts` sends to each other through this site's
   * table (the migration planner's traffic matrix); `stopMeasuring` returns them,
   * [from * n + to] in the order of `hostPorts`.
   */
  startMeasuring(hostPorts: readonly number[]): void {
    const exec = this.pipeline.exec;
    exec.hostIndex.fill(-1);
    hostPorts.forEach((port, i) => (exec.hostIndex[port] = i));
    exec.nHosts = hostPorts.length;
    exec.pairBytes = new Float64Array(hostPorts.length * hostPorts.length);
  }

  stopMeasuring(): Float64Array {
    const exec = this.pipeline.exec;
    const out = exec.pairBytes ?? new Float64Array(0);
    exec.pairBytes = undefined;
    return out;
  }

  /** A migration is under way: forward-and-controller rules send to the controller first (Executor.holdWithController). */
  setHoldWithController(hold: boolean): void {
    this.pipeline.exec.holdWithController = hold;
  }

  /** Stop-and-copy cut-over: drop every host's frames (and the peer's) while true. */
  setFrozen(frozen: boolean): void {
    this.pipeline.exec.frozen = frozen;
  }

  /** Sets (or removes) the consumer of packet-ins. */
  setPacketInHook(hook: PacketInHook | undefined): void {
    this.pipeline.exec.onPacketIn = hook;
  }

  /**
   * Packet-out: runs `actions` on `frame` as if received on `inPort` (a port number, or
   * OFPP.CONTROLLER / OFPP.NONE). Management path.
   */
  packetOut(frame: Uint8Array, inPort: number, actions: Action[]): void {
    const now = this.now();
    this.clock[0] = now; // NORMAL learns and looks up at the MAC table's clock
    this.pipeline.packetOut(frame, inPort, actions, now);
  }

  /** ofproto/trace: the lookups a frame with this key makes and what it would undergo. */
  trace(key: Uint32Array): TraceResult {
    return this.pipeline.trace(key, this.now());
  }

  /** Forward one received batch (see the order of work at the top of the file). */
  process(batch: FrameBatch): void {
    this.clock[0] = batch.time[0]!;
    const bytes = this.pipeline.process(batch);
    this.rxPackets[batch.inPort] += batch.count;
    this.rxBytes[batch.inPort] += bytes;
  }

  /** Periodic housekeeping (MAC aging); the daemon calls it about once a second. */
  tick(): void {
    this.clock[0] = this.now();
    this.learnHostMacs(this.clock[0]);
    this.macTable.expire();
  }

  private learnHostMacs(now: number): void {
    for (const h of this.hostMacs) this.macTable.learn(h.mac.hi, h.mac.lo, 0, h.port, now);
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
      const rx = port.rxDrops;
      if (rx !== undefined) for (let r = 1; r < DROP_REASON_COUNT && r < rx.length; r++) out[r] += rx[r]!;
    }
    return out;
  }
}
