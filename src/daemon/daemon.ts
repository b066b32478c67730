/**
 * The daemon's composition root: ports ↔ switch ↔ flow table ↔ management server, timers
 * and shutdown.
 *
 * The switch forwards by the flow table owned by FlowService (daemon/flows.ts): the
 * default table-miss rule is `priority=0,actions=NORMAL` (config `table_miss: drop`
 * replaces it with drop), packet-ins go to FlowService, rate-limited by the switch per
 * config `packet_in`.
 *
 * One FrameBatch is shared by all ports: a port's native reader fills it and calls
 * `onBatch`, which runs the whole data path for that batch (parse, decide, send) before
 * returning, so the next port can reuse the batch. Everything else (management requests,
 * the once-a-second MAC aging tick) runs between batches on the same event loop.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { FrameBatch, HEADROOM, DEFAULT_SLOT_SIZE } from '../packet/batch.js';
import { DROP_REASON_NAMES } from '../packet/drop.js';
import { formatMac, parseIpv4, parseMac } from '../util/addr.js';
import { buildRarp } from '../packet/build.js';
import type { Action } from '../flow/types.js';
import { Switch } from '../datapath/switch.js';
import type { Port, PortState } from '../io/port.js';
import { TapPort, loopNow } from '../io/tap.js';
import { SystemPort } from '../io/system.js';
import { GrePort, GreRegistry } from '../io/gre.js';
import { ManagementServer } from '../mgmt/server.js';
import { rootOrOwnUserOnly } from '../mgmt/peer-cred.js';
import { loadNative } from '../io/native.js';
import {
  ManagementError,
  type FdbEntry,
  type ManagementService,
  type PortInfo,
  type PortSpec,
  type ShowReply,
} from '../mgmt/service.js';
import { ConfigError, loadConfig, portSchema, type Config, type PortConfig } from './config.js';
import { ReloadRefused, describeSetting, planReload } from './reload.js';
import type { Logger } from './log.js';
import type { MetricsServer } from './metrics.js';
import { FlowService, sumFlowCounters } from './flows.js';
import { Peering, stateDirOf } from './peering.js';
import { Migration } from './migration.js';
import { ControlPolicing } from './control-policing.js';
import { NativeFastPath } from './fast-path.js';
import { LocationError } from '../migrate/location.js';
import { makePlan, trafficMatrix } from '../migrate/planner.js';
import { ReplicationError } from '../sync/replication.js';
import type {
  DumpFlowsRequest,
  FlowDiffReply,
  FlowEntry,
  FlowModsReply,
  FlowModsRequest,
  MgmtEvent,
  MigrateStatus,
  MigrateRunRequest,
  MigrationPhase,
  MoveHostRequest,
  ReplOp,
  PacketOutRequest,
  PeerShowReply,
  ReloadReply,
  ReplaceFlowsRequest,
  SyncBarrierReply,
  TraceReply,
} from '../proto/schema.js';

/** A failure to start, with the exit code limed should use. */
export class StartupError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'StartupError';
  }
}

const TICK_MS = 1000;
/** How long `migrate plan` measures traffic by default. */
const DEFAULT_PLAN_WINDOW_MS = 5000;

interface PortRecord {
  port: Port;
  config: PortConfig;
  mac: string;
}

/** Slot size that fits the largest configured MTU plus headers, rounded to 64 bytes. */
function slotSizeFor(maxMtu: number): number {
  const need = HEADROOM + maxMtu + 14 + 8 + 64;
  return Math.max(DEFAULT_SLOT_SIZE, Math.ceil(need / 64) * 64);
}

export class Daemon implements ManagementService {
  readonly switch: Switch;
  readonly flows: FlowService;
  private readonly batch: FrameBatch;
  private readonly records = new Map<string, PortRecord>();
  private readonly greRegistry = new GreRegistry();
  /** Active `limectl capture` sinks per port, with their snaplen. */
  private readonly captures = new Map<Port, Map<(event: MgmtEvent) => void, number>>();
  private mgmt: ManagementServer | undefined;
  /** The journal and the peer site (undefined: no state directory and no peer). */
  private peering: Peering | undefined;
  /** Hosts (logical ports) and where they are (live migration). */
  readonly migration: Migration;
  /** A `migrate plan` is measuring traffic. */
  private measuring = false;
  /** Management requests get a bounded share of the loop while the data path is saturated. */
  private readonly policing: ControlPolicing;
  private tick: NodeJS.Timeout | undefined;
  /** The native fast path (config fast_path: native), from start() on. */
  private fastPath: NativeFastPath | undefined;
  private gcObserver: PerformanceObserver | undefined;
  /** The Prometheus endpoint (config metrics), from start() on. */
  private metrics: MetricsServer | undefined;
  private gcCount = 0;
  private readonly startedAt = Date.now();
  private readonly onBatch = (_port: Port): void => {
    this.switch.process(this.batch);
    this.fastPath?.afterBatch();
  };
  private readonly onStatus = (port: Port, state: PortState, reason: string): void => {
    this.log.warn({ port: port.name, state, reason }, `port ${port.name} is ${state}`);
    this.switch.portStateChanged(port.number);
    this.fastPath?.portState(port.number, state === 'up');
  };

  /** A reload is being applied (one at a time: SIGHUP and limectl reload may race). */
  private reloading = false;

  /**
   * @param configPath the file `config` was read from: what a reload reads again
   *   (undefined: started from a configuration in memory, reload is refused).
   */
  constructor(
    public config: Config,
    private readonly log: Logger,
    private readonly configPath?: string,
  ) {
    this.flows = new FlowService(
      {
        now: loopNow,
        ports: {
          numberOf: (name) => this.records.get(name)?.port.number,
          nameOf: (n) => this.switch.ports[n]?.name,
        },
        datapath: () => this.switch,
        log: (level, msg, fields) => this.log[level](fields ?? {}, msg),
        syncCounters: () => this.fastPath?.sync(),
      },
      { tableMiss: config.table_miss },
    );
    this.switch = new Switch({
      macTableCapacity: config.mac_table.capacity,
      macAgingSeconds: config.mac_table.aging_seconds,
      now: loopNow,
      table: this.flows.table,
      onPacketIn: this.flows.onPacketIn,
      packetInRate: config.packet_in.rate,
      packetInBurst: config.packet_in.burst,
    });
    // Slots sized for jumbo frames up to the largest MTU allowed at run time (9000).
    this.batch = new FrameBatch(undefined, slotSizeFor(9000));
    this.migration = new Migration(config, {
      switch: this.switch,
      portNumber: (name) => this.records.get(name)?.port.number,
      tunnelCounters: () => {
        const rec = this.config.peer?.tunnel_port !== undefined ? this.records.get(this.config.peer.tunnel_port) : undefined;
        if (rec === undefined) return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0 };
        const io = rec.port.ioCounters();
        const n = rec.port.number;
        return { rxPackets: this.switch.rxPackets[n]!, rxBytes: this.switch.rxBytes[n]!, txPackets: io.txPackets, txBytes: io.txBytes };
      },
      submitMove: async (request) => {
        const peering = this.peering;
        if (peering === undefined) throw new Error('no peer configured');
        return peering.submitSequenced({ op: 'move_host', move_host: request });
      },
      publish: (event) => this.flows.publish(event),
      announce: (host, mac) => this.announce(host, mac),
      log,
    });
    this.policing = new ControlPolicing(config.control_share_percent, {
      dataPathNs: () => {
        let ns = 0;
        for (const r of this.records.values()) ns += r.port.busyNs?.() ?? 0;
        return ns;
      },
      backlogPolls: () => {
        let n = 0;
        for (const r of this.records.values()) n += r.port.backlogPolls?.() ?? 0;
        // Frames the fast path could not hand over: JavaScript is behind on its share too.
        return n + (this.fastPath?.handOverDrops() ?? 0);
      },
      engineBacklogs: () => this.fastPath?.fullDrains() ?? 0,
      log: (msg, fields) => this.log.info(fields, msg),
    });
  }

  async start(): Promise<void> {
    try {
      if (this.config.fast_path === 'native') this.fastPath = new NativeFastPath(this.switch, this.flows.table, loopNow);
      for (const pc of this.config.ports) this.openPort(pc);
      this.migration.refresh();
      // After the ports (flows name them), before the management socket (operators only
      // ever see the restored table).
      if (stateDirOf(this.config) !== undefined) {
        this.peering = await Peering.open(this.config, this.flows, loopNow, this.log, this.migration.hasHosts ? this.migration : undefined);
        await this.peering.start(this.log);
      }
      this.mgmt = new ManagementServer({
        path: this.config.socket,
        service: this,
        log: (level, msg, fields) => this.log[level](fields ?? {}, msg),
        monitorQueueBytes: this.config.limits.monitor_queue_bytes,
        admit: () => this.policing.policer.admit(),
        checkPeer: rootOrOwnUserOnly((fd) => loadNative().lime_peer_uid(fd), process.getuid?.() ?? 0),
      });
      await this.mgmt.start();
      if (this.config.metrics !== undefined) {
        // Loaded only when configured (prom-client); reads the counters at scrape time only.
        const { MetricsServer, daemonMetricsSource } = await import('./metrics.js');
        this.metrics = new MetricsServer(this.config.metrics.listen, daemonMetricsSource(this), (level, msg, fields) => this.log[level](fields ?? {}, msg));
        await this.metrics.start();
      }
    } catch (err) {
      await this.stop();
      throw this.asStartupError(err);
    }
    this.flows.start();
    this.policing.start();
    this.tick = setInterval(() => {
      this.switch.tick();
      this.fastPath?.tick();
    }, TICK_MS);
    this.tick.unref();
    this.gcObserver = new PerformanceObserver((list) => {
      this.gcCount += list.getEntries().length;
    });
    this.gcObserver.observe({ entryTypes: ['gc'] });
    this.log.info(
      { socket: this.config.socket, ports: this.config.ports.map((p) => p.name) },
      `limed site ${this.config.site} running with ${this.records.size} port(s)`,
    );
  }

  private asStartupError(err: unknown): StartupError {
    if (err instanceof StartupError) return err;
    const e = err as Error & { code?: string };
    if (e.name === 'SocketInUseError') return new StartupError(e.message, 1);
    return new StartupError(e.message ?? String(err), 1);
  }

  async stop(): Promise<void> {
    const metrics = this.metrics;
    this.metrics = undefined;
    await metrics?.stop();
    if (this.tick !== undefined) clearInterval(this.tick);
    this.tick = undefined;
    this.flows.stop();
    this.migration.stop();
    if (this.peering !== undefined) {
      const p = this.peering;
      this.peering = undefined;
      await p.stop();
    }
    this.gcObserver?.disconnect();
    this.gcObserver = undefined;
    // The engine lets go of the ports' fds before they close.
    this.fastPath?.close();
    this.fastPath = undefined;
    for (const name of [...this.records.keys()]) this.closePort(name);
    if (this.mgmt !== undefined) {
      const m = this.mgmt;
      this.mgmt = undefined;
      await m.stop();
    }
    // After the management server: requests still waiting for admission find their
    // connection closed and are dropped, not run during shutdown.
    this.policing.stop();
  }

  /** Open a port; `fixedNumber` reopens a port under its old number (reload), so flows naming it still do. */
  private openPort(pc: PortConfig, fixedNumber?: number): PortRecord {
    if (this.records.has(pc.name)) throw new ManagementError('ALREADY_EXISTS', `port ${pc.name} already exists`);
    const device = pc.type === 'gre' ? undefined : (pc.device ?? pc.name);
    for (const r of this.records.values()) {
      if (device !== undefined && r.port.device === device) throw new ManagementError('ALREADY_EXISTS', `device ${device} is already used by port ${r.port.name}`);
      const rc = r.config;
      if (pc.type === 'gre' && rc.type === 'gre' && rc.remote_ip === pc.remote_ip && (rc.key === pc.key || rc.key === 'flow' || pc.key === 'flow')) {
        throw new ManagementError('ALREADY_EXISTS', `port ${r.port.name} is already a GRE tunnel to ${pc.remote_ip} taking ${rc.key === 'flow' || pc.key === 'flow' ? 'every key' : `key ${String(pc.key ?? 'none')}`}`);
      }
    }
    const number = fixedNumber ?? this.switch.allocatePortNumber();
    let port: TapPort | SystemPort | GrePort;
    let mac = '';
    if (pc.type === 'tap') {
      const tap = TapPort.open({
        name: pc.name,
        number,
        device: device!,
        mtu: pc.mtu,
        ...(pc.mac !== undefined ? { mac: pc.mac } : {}),
        ...(pc.tx_queue_len !== undefined ? { txQueueLen: pc.tx_queue_len } : {}),
      });
      mac = tap.mac;
      port = tap;
    } else if (pc.type === 'system') {
      const sys = SystemPort.open({ name: pc.name, number, device: device!, offloadsOff: pc.offloads === 'off' });
      mac = sys.mac;
      port = sys;
      if (pc.offloads === 'off') {
        const failed = Object.entries(sys.offloads).filter(([, r]) => r !== 'ok' && r !== 'EOPNOTSUPP');
        if (failed.length > 0) this.log.warn({ port: pc.name, offloads: sys.offloads }, `port ${pc.name}: could not turn every offload off on ${sys.device}; partial checksums and GSO frames are still completed and segmented`);
      }
    } else {
      port = GrePort.open({
        name: pc.name,
        number,
        remoteIp: parseIpv4(pc.remote_ip),
        ...(pc.local_ip !== undefined ? { localIp: parseIpv4(pc.local_ip) } : {}),
        ...(pc.key !== undefined ? { key: pc.key } : {}),
        csum: pc.csum,
        seq: pc.seq,
        ttl: pc.ttl,
        tos: pc.tos,
        pathMtu: pc.path_mtu,
        fragment: pc.fragment,
        mssClamp: pc.mss_clamp,
        mtu: pc.mtu,
        registry: this.greRegistry,
      });
    }
    const rec: PortRecord = { port, config: pc, mac };
    this.records.set(pc.name, rec);
    this.switch.addPort(port);
    port.start(this.batch, this.onBatch, this.onStatus);
    if (this.fastPath !== undefined && this.engineMayRun(pc) && NativeFastPath.canRun(port)) this.fastPath.attach(port);
    this.log.info(
      { port: pc.name, number, type: pc.type, device: port.device, mtu: port.mtu, ...(mac !== '' ? { mac } : {}), ...(port instanceof GrePort ? port.describe() : {}) },
      `port ${pc.name} added`,
    );
    return rec;
  }

  private closePort(name: string): void {
    const rec = this.records.get(name);
    if (rec === undefined) return;
    this.records.delete(name);
    this.captures.delete(rec.port);
    rec.port.capture = undefined;
    this.fastPath?.detach(rec.port);
    this.switch.removePort(rec.port.number);
    rec.port.close();
    this.log.info({ port: name }, `port ${name} removed`);
  }

  /**
   * Ports the native fast path may take: not a host of a live migration (frames from and
   * to it have per-frame work: a host at the peer site, freezing, measuring) and not the
   * inter-site tunnel (frames from it are delivered by tunnel id, not switched).
   */
  private engineMayRun(pc: PortConfig): boolean {
    if (pc.type === 'tap' && pc.tunnel_id !== undefined) return false;
    return pc.name !== this.config.peer?.tunnel_port;
  }

  private portInfo(rec: PortRecord): PortInfo {
    const n = rec.port.number;
    const io = rec.port.ioCounters();
    const dropCounts = this.switch.dropCounts(n);
    const drops: Record<string, number> = {};
    for (let r = 1; r < dropCounts.length; r++) if (dropCounts[r]! > 0) drops[DROP_REASON_NAMES[r]!] = dropCounts[r]!;
    // A host's port is up only where the host is: at the other site it is "remote".
    const hostSite = this.migration.map.siteOf(rec.port.name);
    const options = this.portOptions(rec);
    if (hostSite !== undefined) options['host_site'] = hostSite;
    return {
      name: rec.port.name,
      number: n,
      type: rec.port.type,
      device: rec.port.device,
      state: hostSite !== undefined && hostSite !== this.config.site ? 'remote' : rec.port.state,
      mtu: rec.port.mtu,
      mac: rec.mac,
      rx_packets: this.switch.rxPackets[n]!,
      rx_bytes: this.switch.rxBytes[n]!,
      tx_packets: io.txPackets,
      tx_bytes: io.txBytes,
      drops,
      options,
    };
  }

  private portOptions(rec: PortRecord): Record<string, string> {
    const port = rec.port;
    if (port instanceof GrePort) return port.describe();
    if (port instanceof SystemPort) {
      const off = Object.entries(port.offloads);
      // The reader's offload work (what a peer sent unfinished) and the link's history.
      const c = port.tapCounters();
      return {
        offloads: off.length === 0 ? 'kept' : off.map(([k, v]) => (v === 'ok' ? `${k} off` : `${k} ${v}`)).join(', '),
        rx_csum_completed: String(c.rxCsumCompleted),
        rx_gso_segmented: String(c.rxGsoSegmented),
        rx_gso_dropped: String(c.rxGsoDropped),
        rx_link_down: String(c.rxLinkDown),
        ...(port.stateReason !== '' ? { down_reason: port.stateReason } : {}),
      };
    }
    return {};
  }

  // ManagementService ---------------------------------------------------------------

  show(): ShowReply {
    this.fastPath?.sync();
    const mem = process.memoryUsage();
    const mt = this.switch.macTable;
    return {
      site: this.config.site,
      ports: [...this.records.values()].sort((a, b) => a.port.number - b.port.number).map((r) => this.portInfo(r)),
      mac_table: { size: mt.size, capacity: mt.capacity, evictions: mt.nEvictions, aging_seconds: mt.agingMs / 1000 },
      process: {
        pid: process.pid,
        uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
        heap_used: mem.heapUsed,
        rss: mem.rss,
        gc_count: this.gcCount,
      },
      control: this.controlInfo(),
      fast_path: this.fastPathInfo(),
    };
  }

  private fastPathInfo(): ShowReply['fast_path'] {
    const f = this.fastPath;
    if (f === undefined) {
      return { enabled: false, ports: [], cache_used: 0, cache_slots: 0, rx: 0, hits: 0, upcalls: 0, upcall_drops: 0, installs: 0, cache_full: 0, invalidations: 0 };
    }
    const s = f.status();
    return {
      enabled: true,
      ports: s.ports,
      cache_used: s.cacheUsed,
      cache_slots: s.cacheSlots,
      rx: s.rx,
      hits: s.hits,
      upcalls: s.upcalls,
      upcall_drops: s.upcallDrops,
      installs: s.installs,
      cache_full: s.cacheFull,
      invalidations: s.invalidations,
    };
  }

  private controlInfo(): ShowReply['control'] {
    const s = this.policing.policer.status();
    return {
      share_percent: s.share * 100,
      saturated: s.saturated,
      deferred: s.deferred,
      waiting: s.waiting,
      cost_ms: s.costMs,
      saturated_windows: s.saturatedWindows,
      monitors_dropped: this.mgmt?.monitorsDropped ?? 0,
    };
  }

  fdbShow(): FdbEntry[] {
    const now = this.switch.currentTime();
    const mt = this.switch.macTable;
    const out: FdbEntry[] = [];
    for (const e of mt.entries()) {
      const age = (now - e.lastSeen) / 1000;
      if (age * 1000 > mt.agingMs) continue;
      out.push({ port: this.switch.ports[e.port]?.name ?? String(e.port), vlan: e.vlan, mac: formatMac(e.macHi, e.macLo), age: Math.floor(age) });
    }
    return out.reverse();
  }

  async addPort(spec: PortSpec): Promise<PortInfo> {
    // Fields the request left unset arrive as undefined: the schema's defaults apply.
    const given = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined && v !== null));
    const r = portSchema.safeParse(given);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new ManagementError('BAD_REQUEST', `${issue.path.join('.') || 'port'}: ${issue.message}`);
    }
    let rec: PortRecord;
    try {
      rec = this.openPort(r.data);
    } catch (err) {
      if (err instanceof ManagementError) throw err;
      throw new ManagementError('FAILED', (err as Error).message);
    }
    return this.portInfo(rec);
  }

  capture(name: string, snaplen: number, sink: (event: MgmtEvent) => void): () => void {
    const rec = this.records.get(name);
    if (rec === undefined) throw new ManagementError('NOT_FOUND', `no port named ${name}`);
    const port = rec.port;
    let sinks = this.captures.get(port);
    if (sinks === undefined) {
      const set = new Map<(event: MgmtEvent) => void, number>();
      sinks = set;
      this.captures.set(port, set);
      // Capture sees frames on the JavaScript path: all of this port's go there meanwhile.
      this.fastPath?.setSlow(port.number, true);
      port.capture = (direction, slab, start, len, n) => {
        const time = Date.now() / 1000;
        for (let i = 0; i < n; i++) {
          const at = start[i]!;
          const size = len[i]!;
          for (const [s, snap] of set) {
            const data = Buffer.from(slab.subarray(at, at + Math.min(size, snap)));
            s({ kind: 'frame', time, reason: '', dropped: 0, frame: { port: name, direction: direction === 0 ? 'rx' : 'tx', len: size, data } });
          }
        }
      };
    }
    sinks.set(sink, snaplen);
    this.log.info({ port: name, snaplen }, `capture on port ${name} started`);
    return () => {
      const set = this.captures.get(port);
      if (set === undefined || !set.delete(sink)) return;
      if (set.size === 0) {
        this.captures.delete(port);
        port.capture = undefined;
        this.fastPath?.setSlow(port.number, false);
      }
      this.log.info({ port: name }, `capture on port ${name} stopped`);
    };
  }

  async delPort(name: string): Promise<void> {
    if (!this.records.has(name)) throw new ManagementError('NOT_FOUND', `no port named ${name}`);
    this.closePort(name);
  }

  // Live reload (SIGHUP, limectl reload) --------------------------------------------------

  /**
   * Re-read the configuration file and apply it (src/daemon/reload.ts says what may
   * change). Ports are removed, reopened and added one by one; if one fails to open, what
   * was done is undone, so the running configuration stays as it was. The flow table, the
   * peer session and the other ports are not touched.
   */
  async reload(): Promise<ReloadReply> {
    const path = this.configPath;
    const early = path === undefined ? 'limed was not started from a configuration file' : this.reloading ? 'a reload is already being applied' : '';
    if (early !== '' || path === undefined) {
      this.log.warn(`reload refused: ${early}`);
      throw new ManagementError('BAD_REQUEST', `reload refused: ${early}`);
    }
    const keep = 'the running configuration stays in force';
    let plan;
    let next: Config;
    try {
      next = loadConfig(path);
      plan = planReload(this.config, next);
    } catch (err) {
      if (err instanceof ConfigError || err instanceof ReloadRefused) {
        this.log.warn({ config: path, reason: err.message }, `reload refused: ${err.message}; ${keep}`);
        throw new ManagementError('BAD_REQUEST', `reload refused: ${err.message}; ${keep}`);
      }
      throw err;
    }
    this.reloading = true;
    const undo: Array<() => void> = [];
    try {
      for (const name of plan.remove) {
        const rec = this.records.get(name)!;
        const number = rec.port.number;
        this.closePort(name);
        undo.push(() => this.openPort(rec.config, number));
      }
      for (const { from, to } of plan.change) {
        const number = this.records.get(from.name)!.port.number;
        this.closePort(from.name);
        undo.push(() => this.openPort(from, number));
        this.openPort(to, number);
        undo.push(() => this.closePort(to.name));
      }
      for (const pc of plan.add) {
        this.openPort(pc);
        undo.push(() => this.closePort(pc.name));
      }
    } catch (err) {
      for (const step of undo.reverse()) {
        try {
          step();
        } catch (e) {
          this.log.error({ err: (e as Error).message }, 'reload: could not undo a step');
        }
      }
      const why = (err as Error).message;
      this.log.warn({ config: path, reason: why }, `reload failed: ${why}; ${keep}`);
      throw new ManagementError('FAILED', `reload failed: ${why}; ${keep}`);
    } finally {
      this.reloading = false;
    }
    for (const s of plan.settings) {
      if (s.field === 'log_level') this.log.level = next.log_level;
      else if (s.field === 'mac_table.aging_seconds') this.switch.macTable.agingMs = next.mac_table.aging_seconds * 1000;
      else if (s.field === 'packet_in.rate') this.switch.pipeline.exec.packetInRate = next.packet_in.rate;
      else this.switch.pipeline.exec.packetInBurst = next.packet_in.burst;
    }
    this.config = next;
    this.migration.refresh();
    const reply: ReloadReply = {
      config: path,
      ports_added: plan.add.map((p) => p.name),
      ports_removed: plan.remove,
      ports_changed: plan.change.map((c) => c.to.name),
      settings_changed: plan.settings.map(describeSetting),
    };
    this.log.info(reply, 'configuration reloaded');
    return reply;
  }

  // Flow table: FlowService does the work -------------------------------------------

  async flowMods(request: FlowModsRequest): Promise<FlowModsReply> {
    if (this.peering === undefined) return this.flows.flowMods(request);
    const r = await this.replicated(this.peering, { op: 'flow_mods', flow_mods: request });
    if (r.op !== 'flow_mods') throw new ManagementError('FAILED', 'replication answered a flow-mod with another kind of result');
    return r.flow_mods;
  }

  async replaceFlows(request: ReplaceFlowsRequest): Promise<FlowDiffReply> {
    // diff-flows changes nothing: answered from the local table.
    if (this.peering === undefined || request.dry_run) return this.flows.replaceFlows(request);
    const r = await this.replicated(this.peering, { op: 'replace_flows', replace_flows: request });
    if (r.op !== 'replace_flows') throw new ManagementError('FAILED', 'replication answered replace-flows with another kind of result');
    return r.flow_diff;
  }

  /** Submit through replication; its refusals become management errors with the same code. */
  private async replicated(peering: Peering, op: Parameters<Peering['submit']>[0]): ReturnType<Peering['submit']> {
    try {
      return await peering.submit(op);
    } catch (err) {
      if (err instanceof ReplicationError) throw new ManagementError(err.code === 'CODE_UNSPECIFIED' ? 'FAILED' : err.code, err.message);
      throw err;
    }
  }

  // Live migration ----------------------------------------------------------------------

  /** RARP for a host that arrived here, out of every port that is not a host's or the tunnel. */
  private announce(host: string, mac: string): void {
    const from = this.records.get(host)?.port.number;
    if (from === undefined) return;
    const hosts = new Set(this.migration.map.list().map((h) => h.name));
    const outputs: Action[] = [];
    for (const rec of this.records.values()) {
      if (hosts.has(rec.port.name) || rec.port.name === this.migration.tunnelPort) continue;
      outputs.push({ type: 'output', port: rec.port.number });
    }
    if (outputs.length === 0) return;
    const frame = Buffer.alloc(60);
    buildRarp(frame, 0, { mac: parseMac(mac) });
    try {
      this.switch.packetOut(frame, from, outputs);
      this.log.info({ host, mac, ports: outputs.length }, `announced host ${host} (RARP) on ${outputs.length} port(s)`);
    } catch (err) {
      this.log.warn({ host, err: (err as Error).message }, `could not announce host ${host}`);
    }
  }

  async migrateHost(request: MoveHostRequest): Promise<MigrateStatus> {
    const peering = this.migrationPeering('migrate host');
    try {
      this.migration.check(request);
    } catch (err) {
      if (err instanceof LocationError) throw new ManagementError(err.code, `migrate host: ${err.message}`);
      throw err;
    }
    const done = await this.submitMigration(peering, 'migrate host', { op: 'move_host', move_host: { host: request.host, site: request.site, cause: request.cause || 'command' } });
    if (done.result.op !== 'move_host') throw new ManagementError('FAILED', 'replication answered a host move with another kind of result');
    const status = this.migrateStatus();
    status.moved = { ...done.result.move_host, seq: done.seq };
    status.seq = done.seq;
    return status;
  }

  /**
   * Start an ensemble migration to `to`. The logical table is replicated all along, so the
   * clone is a barrier: once both sites have applied everything, the new site holds the
   * whole table. Records where every host is (what abort returns them to).
   */
  async migratePrepare(request: MigrationPhase): Promise<MigrateStatus> {
    const m = this.migration;
    const peering = this.migrationPeering('migrate prepare');
    if (request.to !== m.site && request.to !== m.peer) throw new ManagementError('NOT_FOUND', `migrate prepare: no site named ${request.to} (sites: ${m.site}, ${m.peer})`);
    const strategy = request.strategy === '' ? 'lime' : request.strategy;
    if (strategy !== 'lime' && strategy !== 'stop-and-copy') {
      throw new ManagementError('BAD_REQUEST', `migrate prepare: unknown strategy ${request.strategy} (expected lime or stop-and-copy)`);
    }
    this.noMigrationUnderWay('migrate prepare');
    const from = request.to === m.site ? m.peer : m.site;
    try {
      await peering.syncBarrier();
    } catch (err) {
      if (err instanceof ReplicationError) throw new ManagementError('FAILED', `migrate prepare: ${err.message}`);
      throw err;
    }
    this.noMigrationUnderWay('migrate prepare'); // (checked again: the barrier let others in)
    const phase: MigrationPhase = { phase: 'moving', from, to: request.to, strategy, before: m.map.list(), ended: '' };
    const done = await this.submitMigration(peering, 'migrate prepare', { op: 'migration', migration: phase });
    const status = this.migrateStatus();
    status.seq = done.seq;
    return status;
  }

  /** End the migration once every host is at the new site: from now on the old site carries nothing. */
  async migrateFinalize(): Promise<MigrateStatus> {
    const peering = this.migrationPeering('migrate finalize');
    const cur = this.underWay('migrate finalize');
    const left = this.migration.map.list().filter((h) => h.site !== cur.to);
    if (left.length > 0) {
      throw new ManagementError('BAD_REQUEST', `migrate finalize: host${left.length > 1 ? 's' : ''} ${left.map((h) => h.name).join(', ')} still at site ${cur.from}; move ${left.length > 1 ? 'them' : 'it'} first (migrate host … --to ${cur.to}), or abort`);
    }
    const stopAndCopy = cur.strategy === 'stop-and-copy';
    // The strawman's cut-over: both sites freeze while the state is copied.
    if (stopAndCopy && cur.phase === 'moving') await this.submitMigration(peering, 'migrate finalize', { op: 'migration', migration: { ...cur, phase: 'cutover' } });
    let archived: number;
    try {
      // The old site's counters move to the new site (through the log: both apply it).
      const old = cur.from === this.migration.site ? this.flows.dumpFlows({ match: '', strict: false }) : await peering.peerFlows({ match: '', strict: false });
      const flows = old
        .filter((f) => f.n_packets > 0 || f.n_bytes > 0)
        .map((f) => ({ flow: `table=${f.table},priority=${f.priority}${f.match !== '' ? `,${f.match}` : ''}`, n_packets: f.n_packets, n_bytes: f.n_bytes }));
      await this.submitMigration(peering, 'migrate finalize', { op: 'archive', archive: { from: cur.from, flows } });
      archived = flows.length;
      if (stopAndCopy) await peering.syncBarrier();
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new ManagementError('FAILED', `migrate finalize: ${why}${stopAndCopy ? ' (forwarding stays frozen: finalize again or abort)' : ' (finalize again)'}`);
    }
    const done = await this.submitMigration(peering, 'migrate finalize', { op: 'migration', migration: { ...cur, phase: 'idle', before: [], ended: 'finalized' } });
    const status = this.migrateStatus();
    status.seq = done.seq;
    status.archived_flows = archived;
    return status;
  }

  /** Return every host to where it was at prepare (each move in the safe order), then end the migration. */
  async migrateAbort(): Promise<MigrateStatus> {
    const peering = this.migrationPeering('migrate abort');
    const cur = this.underWay('migrate abort');
    for (const h of cur.before) {
      if (this.migration.map.siteOf(h.name) === undefined || this.migration.map.siteOf(h.name) === h.site) continue;
      await this.submitMigration(peering, 'migrate abort', { op: 'move_host', move_host: { host: h.name, site: h.site, cause: 'abort' } });
    }
    const done = await this.submitMigration(peering, 'migrate abort', { op: 'migration', migration: { ...cur, phase: 'idle', before: [], ended: 'aborted' } });
    const status = this.migrateStatus();
    status.seq = done.seq;
    return status;
  }

  /**
   * Measure who talks to whom through this site's table for a window, then plan the order
   * of moves of the hosts that are here (src/migrate/planner.ts).
   */
  async migratePlan(request: { window_ms: number; parallel: number }): Promise<MigrateStatus> {
    const m = this.migration;
    if (!m.hasHosts) throw new ManagementError('BAD_REQUEST', 'migrate plan: this site declares no hosts (ports with a tunnel_id)');
    const windowMs = request.window_ms === 0 ? DEFAULT_PLAN_WINDOW_MS : request.window_ms;
    if (windowMs < 100 || windowMs > 600_000) throw new ManagementError('BAD_REQUEST', `migrate plan: the window must be 0.1 to 600 seconds, got ${windowMs / 1000}`);
    const here = m.map.list().filter((h) => h.site === m.site && this.records.has(h.name));
    if (here.length === 0) throw new ManagementError('BAD_REQUEST', `migrate plan: no hosts at site ${m.site} to plan (plan at the site the hosts leave)`);
    const parallel = request.parallel === 0 ? 1 : request.parallel;
    if (!Number.isInteger(parallel) || parallel < 1) throw new ManagementError('BAD_REQUEST', `migrate plan: --parallel must be a positive integer, got ${parallel}`);
    if (this.measuring) throw new ManagementError('BAD_REQUEST', 'migrate plan: a measurement is already running');
    this.measuring = true;
    let bytes: Float64Array;
    try {
      this.switch.startMeasuring(here.map((h) => this.records.get(h.name)!.port.number));
      await new Promise((resolve) => setTimeout(resolve, windowMs));
    } finally {
      bytes = this.switch.stopMeasuring();
      this.measuring = false;
    }
    const names = here.map((h) => h.name);
    const traffic: Array<{ from: string; to: string; bytes: number }> = [];
    names.forEach((from, i) => names.forEach((to, j) => {
      const b = bytes[i * names.length + j] ?? 0;
      if (b > 0) traffic.push({ from, to, bytes: b });
    }));
    const plan = makePlan(trafficMatrix(names, traffic), { parallel, random: Math.random });
    const status = this.migrateStatus();
    status.plan = {
      parallel,
      steps: plan.steps.map((hosts) => ({ hosts })),
      predicted_bytes: plan.predictedBytes ?? 0,
      random_order_bytes: plan.randomOrderBytes ?? 0,
      window_ms: windowMs,
      traffic,
    };
    return status;
  }

  /**
   * Move the hosts of a plan to `to`, step by step (a step's hosts at once), starting the
   * migration when none is under way. Everything is checked before the first move.
   */
  async migrateRun(request: MigrateRunRequest): Promise<MigrateStatus> {
    const m = this.migration;
    const peering = this.migrationPeering('migrate run');
    const cur = m.current;
    const to = request.to !== '' ? request.to : cur.to;
    if (to === '') throw new ManagementError('BAD_REQUEST', 'migrate run: no migration is under way: give the site to move to (--to SITE)');
    if (to !== m.site && to !== m.peer) throw new ManagementError('NOT_FOUND', `migrate run: no site named ${to} (sites: ${m.site}, ${m.peer})`);
    if (cur.phase === 'moving' && cur.to !== to) throw new ManagementError('BAD_REQUEST', `migrate run: the migration under way goes to site ${cur.to}, not ${to}`);
    if (request.steps.length === 0) throw new ManagementError('BAD_REQUEST', 'migrate run: the plan has no steps');
    const seen = new Set<string>();
    for (const [i, step] of request.steps.entries()) {
      if (step.hosts.length === 0) throw new ManagementError('BAD_REQUEST', `migrate run: step ${i + 1} moves no host`);
      for (const h of step.hosts) {
        if (!m.map.has(h)) throw new ManagementError('NOT_FOUND', `migrate run: step ${i + 1}: no host named ${h}`);
        if (seen.has(h)) throw new ManagementError('BAD_REQUEST', `migrate run: step ${i + 1}: host ${h} is in the plan twice`);
        seen.add(h);
      }
    }
    if (cur.phase === 'idle') await this.migratePrepare({ phase: 'moving', from: '', to, strategy: request.strategy, before: [], ended: '' });
    for (const step of request.steps) {
      const moving = step.hosts.filter((h) => m.map.siteOf(h) !== to);
      await Promise.all(moving.map((h) => this.submitMigration(peering, 'migrate run', { op: 'move_host', move_host: { host: h, site: to, cause: 'command' } })));
    }
    return this.migrateStatus();
  }

  migrateStatus(): MigrateStatus {
    return this.migration.status(this.peering?.peerConnected ?? false, this.flows.table.size());
  }

  /** Migration needs hosts and a connected peer (both sites apply every step). */
  private migrationPeering(what: string): Peering {
    if (!this.migration.hasHosts) throw new ManagementError('BAD_REQUEST', `${what}: this site declares no hosts (ports with a tunnel_id)`);
    const peering = this.peering;
    if (peering === undefined || !peering.peerConnected) {
      throw new ManagementError('FAILED', `${what}: the peer site ${this.migration.peer} is not connected; migration needs both sites`);
    }
    return peering;
  }

  private noMigrationUnderWay(what: string): void {
    const cur = this.migration.current;
    if (cur.phase !== 'idle') throw new ManagementError('BAD_REQUEST', `${what}: a migration from site ${cur.from} to site ${cur.to} is already under way; finalize or abort it first`);
  }

  private underWay(what: string): MigrationPhase {
    const cur = this.migration.current; // "moving", or "cutover" (a stop-and-copy finalize that did not finish)
    if (cur.phase === 'idle') throw new ManagementError('BAD_REQUEST', `${what}: no migration is under way (start one with migrate prepare --to SITE)`);
    return cur;
  }

  private async submitMigration(peering: Peering, what: string, op: ReplOp): ReturnType<Peering['submitSequenced']> {
    try {
      return await peering.submitSequenced(op);
    } catch (err) {
      if (err instanceof ReplicationError || err instanceof LocationError) throw new ManagementError(err.code === 'CODE_UNSPECIFIED' ? 'FAILED' : err.code, `${what}: ${err.message}`);
      throw err;
    }
  }

  peerShow(): PeerShowReply {
    if (this.peering !== undefined) return this.peering.status();
    return {
      configured: false, role: 'writer', site: this.config.site, peer: '', connected: false, tls_identity: '', remote_address: '',
      seq: 0, durable_seq: 0, resyncs: 0, resumes: 0, log_id: '', state_dir: '', divergent: 0, journal_bytes: 0, compactions: 0, window_cutoffs: 0,
    };
  }

  async syncBarrier(): Promise<SyncBarrierReply> {
    if (this.peering === undefined) return { seq: 0, peered: false };
    try {
      return await this.peering.syncBarrier();
    } catch (err) {
      if (err instanceof ReplicationError) throw new ManagementError('FAILED', err.message);
      throw err;
    }
  }

  /**
   * dump-flows. With a peer the default is the logical table: each flow once, its counters
   * the sum of both sites' (when the peer is not connected, this site's only, flagged).
   * `site: local` / `peer` show one site's physical table.
   */
  async dumpFlows(request: DumpFlowsRequest): Promise<FlowEntry[] | { flows: FlowEntry[]; localOnly: boolean }> {
    const site = request.site ?? '';
    if (site !== '' && site !== 'both' && site !== 'local' && site !== 'peer') {
      throw new ManagementError('BAD_REQUEST', `dump-flows: unknown site "${site}" (expected local, peer or both)`);
    }
    const local = this.flows.dumpFlows(request);
    const peering = this.peering;
    if (site === 'local' || peering === undefined || !peering.hasPeer) {
      if (site === 'peer') throw new ManagementError('BAD_REQUEST', 'dump-flows --site peer: this site has no peer');
      return local;
    }
    if (site !== 'peer' && !peering.peerConnected) return { flows: local, localOnly: true };
    let remote: FlowEntry[];
    try {
      remote = await peering.peerFlows(request);
    } catch (err) {
      if (err instanceof ReplicationError) throw new ManagementError(err.code === 'CODE_UNSPECIFIED' ? 'FAILED' : err.code, err.message);
      throw err;
    }
    return site === 'peer' ? remote : sumFlowCounters(local, remote);
  }

  trace(packet: string): TraceReply {
    return this.flows.trace(packet);
  }

  packetOut(request: PacketOutRequest): void {
    this.flows.packetOut(request);
  }

  monitor(sink: (event: MgmtEvent) => void): () => void {
    return this.flows.monitor(sink);
  }
}

