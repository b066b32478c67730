/**
 * The Prometheus endpoint (config `metrics: { listen: "127.0.0.1:9469" }`): an HTTP server
 * answering `GET /metrics` in the Prometheus text format (prom-client), 404 elsewhere.
 *
 * Nothing here runs per frame. Every value is read at scrape time from the counters the
 * daemon keeps anyway, through the same replies `limectl show`, `peer status` and
 * `migrate status` print (`daemonMetricsSource`): one snapshot per scrape, which the
 * prom-client metrics' collect() callbacks turn into samples. The native fast path's
 * counts are harvested by that `show()` first, as for limectl, so they are exact.
 *
 * Names follow the Prometheus conventions: `lime_` prefix, `_total` for counters, base
 * units (`_bytes`, `_seconds`), labels `port`, `table`, `reason`, `cache`, `peer`, `phase`.
 * A series appears once it has something to say: a drop reason with its first drop, peer
 * and replication metrics only with a peer configured, inter-site counters only with a
 * tunnel port. Plus prom-client's default process metrics (`process_*`, `nodejs_*`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Registry, Summary, collectDefaultMetrics } from 'prom-client';
import { MAX_TABLES } from '../flow/types.js';
import type { Switch } from '../datapath/switch.js';
import type { FlowTable } from '../table/flow-table.js';
import { parseHostPort } from '../util/addr.js';
import type { MigrateStatus, PeerShowReply } from '../proto/schema.js';
import type { ShowReply } from '../mgmt/service.js';

/** The migration phases (src/daemon/migration.ts): each is a series of lime_migration_phase. */
export const MIGRATION_PHASES = ['idle', 'moving', 'cutover'] as const;

/** What one scrape reports: plain data, read from the daemon once per scrape. */
export interface MetricsSnapshot {
  site: string;
  ports: ReadonlyArray<{
    name: string;
    type: string;
    device: string;
    /** "remote": a host's port at the site the host is not at. */
    state: string;
    rx_packets: number;
    rx_bytes: number;
    tx_packets: number;
    tx_bytes: number;
    /** Drop reason → count (reasons with a count only). */
    drops: Readonly<Record<string, number>>;
  }>;
  /** Rules per flow table (tables holding at least one; others are reported as 0 once seen). */
  flowTables: ReadonlyArray<{ table: number; flows: number }>;
  /** Exact-match caches in front of the classifier: lookups that hit and that missed. */
  caches: ReadonlyArray<{ cache: string; hits: number; misses: number }>;
  /** The native fast path's flow cache (undefined: fast_path off). */
  fastPath?: { entries: number; slots: number; upcallDrops: number };
  macTable: { size: number; capacity: number; evictions: number };
  /** Packet-ins sent to the controller (limectl monitor, the peer), and those dropped, by reason. */
  packetIn: { sent: number; drops: Readonly<Record<string, number>> };
  /** Control-plane policing (src/daemon/control-policer.ts). */
  control: { saturated: boolean; deferred: number };
  /** The peer site (undefined: no peer configured). */
  peer?: {
    name: string;
    up: boolean;
    rttSeconds?: number;
    /** The replicated log: last sequence number, and the last one on disk here. */
    seq: number;
    durableSeq: number;
    /** At the writer, while it knows its follower: entries not yet acknowledged, and the oldest one's age. */
    lagEntries?: number;
    lagSeconds?: number;
    resyncs: number;
    resumes: number;
  };
  migration: {
    phase: string;
    /** The inter-site tunnel port's counters (undefined: no tunnel port). */
    interSite?: { txBytes: number; rxBytes: number; txPackets: number; rxPackets: number };
  };
  /** The resource bounds of config `limits` (README "Resource bounds"): what hit them. */
  bounds?: {
    /** Monitor connections dropped for leaving more than limits.monitor_queue_bytes unread. */
    monitorsDropped: number;
    /** The journal (undefined: no state directory): its size now, and compactions since start. */
    journal?: { bytes: number; compactions: number };
    /** At the writer with a peer: follower connections cut loose for falling behind the window. */
    windowCutoffs?: { peer: string; count: number };
  };
}

/** What `daemonMetricsSource` reads: the daemon's management replies and a few data-path counters. */
export interface DaemonView {
  readonly config: { readonly site: string };
  readonly switch: Switch;
  readonly flows: { readonly table: FlowTable };
  show(): ShowReply;
  peerShow(): PeerShowReply;
  migrateStatus(): MigrateStatus;
}

/** A snapshot of the daemon, from the replies limectl shows (show, peer status, migrate status). */
export function daemonMetricsSource(d: DaemonView): () => MetricsSnapshot {
  return () => {
    const show = d.show(); // harvests the native fast path's counts first
    const sw = d.switch;
    const table = d.flows.table;
    const flowTables: { table: number; flows: number }[] = [];
    for (let t = 0; t < MAX_TABLES; t++) {
      const n = table.size(t);
      if (n > 0) flowTables.push({ table: t, flows: n });
    }
    const emc = sw.pipeline.emc;
    const caches = [{ cache: 'emc', hits: emc.nHits, misses: emc.nMisses }];
    const fp = show.fast_path;
    if (fp.enabled) caches.push({ cache: 'fast_path', hits: fp.hits, misses: fp.upcalls });
    let rateDrops = 0;
    for (const p of show.ports) rateDrops += p.drops['packet_in_rate'] ?? 0;
    const peer = d.peerShow();
    const mig = d.migrateStatus();
    return {
      site: d.config.site,
      ports: show.ports,
      flowTables,
      caches,
      ...(fp.enabled ? { fastPath: { entries: fp.cache_used, slots: fp.cache_slots, upcallDrops: fp.upcall_drops } } : {}),
      macTable: { size: show.mac_table.size, capacity: show.mac_table.capacity, evictions: show.mac_table.evictions },
      packetIn: { sent: sw.pipeline.exec.nPacketIns, drops: { packet_in_rate: rateDrops } },
      control: { saturated: show.control.saturated, deferred: show.control.deferred },
      ...(peer.configured && peer.peer !== ''
        ? {
            peer: {
              name: peer.peer,
              up: peer.connected,
              ...(peer.rtt_ms !== undefined ? { rttSeconds: peer.rtt_ms / 1000 } : {}),
              seq: peer.seq,
              durableSeq: peer.durable_seq,
              ...(peer.lag_entries !== undefined ? { lagEntries: peer.lag_entries } : {}),
              ...(peer.lag_ms !== undefined ? { lagSeconds: peer.lag_ms / 1000 } : {}),
              resyncs: peer.resyncs,
              resumes: peer.resumes,
            },
          }
        : {}),
      migration: {
        phase: mig.migration.phase,
        ...(mig.tunnel_port !== ''
          ? { interSite: { txBytes: mig.inter_site_tx_bytes, rxBytes: mig.inter_site_rx_bytes, txPackets: mig.inter_site_tx_packets, rxPackets: mig.inter_site_rx_packets } }
          : {}),
      },
      bounds: {
        monitorsDropped: show.control.monitors_dropped,
        ...(peer.configured ? { journal: { bytes: peer.journal_bytes, compactions: peer.compactions } } : {}),
        ...(peer.configured && peer.peer !== '' && peer.role === 'writer' ? { windowCutoffs: { peer: peer.peer, count: peer.window_cutoffs } } : {}),
      },
    };
  };
}

export interface MetricsRegistryOptions {
  /** prom-client's default process metrics (process_*, nodejs_*); default true. */
  defaultMetrics?: boolean;
}

/** The event-loop delay is sampled every 10 ms. */
const RESOLUTION_NS = 10e6;

/**
 * `lime_event_loop_delay_seconds`: a summary of the event loop's delay (perf_hooks
 * monitorEventLoopDelay, sampled every 10 ms: how much later than due its timer ran); the
 * quantiles cover the time since the previous scrape, _sum and _count everything since start.
 */
class EventLoopDelaySummary extends Summary<'quantile'> {
  private readonly histogram: IntervalHistogram;
  private readonly quantiles = [0.5, 0.9, 0.99] as const;
  private last = [0, 0, 0];
  private sumSeconds = 0;
  private count = 0;

  constructor(registry: Registry) {
    super({ name: 'lime_event_loop_delay_seconds', help: 'Delay of the event loop (the data path and management run on it), sampled every 10 ms; quantiles since the previous scrape.', percentiles: [0.5, 0.9, 0.99], registers: [registry] });
    this.histogram = monitorEventLoopDelay({ resolution: RESOLUTION_NS / 1e6 });
    this.histogram.enable();
  }

  override async get(): ReturnType<Summary<'quantile'>['get']> {
    const base = await super.get();
    const h = this.histogram;
    if (h.count > 0) {
      // The histogram records the time between its timer's runs: the delay is what exceeds the interval.
      this.last = this.quantiles.map((q) => Math.max(0, h.percentile(q * 100) - RESOLUTION_NS) / 1e9);
      this.sumSeconds += (Math.max(0, h.mean - RESOLUTION_NS) * h.count) / 1e9;
      this.count += h.count;
      h.reset();
    }
    return {
      ...base,
      values: [
        ...this.quantiles.map((q, i) => ({ labels: { quantile: q }, value: this.last[i]! })),
        { metricName: `${base.name}_sum`, labels: {}, value: this.sumSeconds },
        { metricName: `${base.name}_count`, labels: {}, value: this.count },
      ],
    };
  }

  close(): void {
    this.histogram.disable();
  }
}

/**
 * The registry: lime's metrics, read from `source` once per scrape, plus prom-client's
 * default process metrics. `metrics()` is the exposition text.
 */
export class MetricsRegistry {
  readonly registry = new Registry();
  private snap: MetricsSnapshot | undefined;
  /** Tables that held rules once: reported (as 0) after they empty. */
  private readonly tablesSeen = new Set<number>([0]);
  private readonly eventLoop: EventLoopDelaySummary;

  constructor(
    private readonly source: () => MetricsSnapshot,
    opts: MetricsRegistryOptions = {},
  ) {
    const reg = this.registry;
    const snap = (): MetricsSnapshot => (this.snap ??= this.source());
    /** A gauge set from the snapshot at scrape time. */
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (set: (labels: Partial<Record<L, string>>, v: number) => void, s: MetricsSnapshot) => void): void => {
      new Gauge<L>({
        name, help, labelNames, registers: [reg],
        collect() {
          this.reset();
          if (labelNames.length === 0) this.remove({}); // absent unless fill sets it
          fill((labels, v) => this.set(labels, v), snap());
        },
      });
    };
    /** A counter whose value is the daemon's own count, read at scrape time. */
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (set: (labels: Partial<Record<L, string>>, v: number) => void, s: MetricsSnapshot) => void): void => {
      new Counter<L>({
        name, help, labelNames, registers: [reg],
        collect() {
          this.reset();
          if (labelNames.length === 0) this.remove({}); // absent unless fill sets it
          fill((labels, v) => this.inc(labels, v), snap());
        },
      });
    };

    gauge('lime_info', 'This limed: its site name (value 1).', ['site'], (set, s) => set({ site: s.site }, 1));

    // Ports (a gre port's counters are its tunnel's: rx after decapsulation, tx before encapsulation).
    gauge('lime_port_info', 'A port: its type (tap, system, gre) and device (value 1).', ['port', 'type', 'device'], (set, s) => {
      for (const p of s.ports) set({ port: p.name, type: p.type, device: p.device }, 1);
    });
    gauge('lime_port_up', 'Whether the port is up here (1) or not (0: down, or a host at the other site).', ['port'], (set, s) => {
      for (const p of s.ports) set({ port: p.name }, p.state === 'up' ? 1 : 0);
    });
    const portCounter = (name: string, help: string, key: 'rx_packets' | 'rx_bytes' | 'tx_packets' | 'tx_bytes'): void =>
      counter(name, help, ['port'], (set, s) => {
        for (const p of s.ports) set({ port: p.name }, p[key]);
      });
    portCounter('lime_port_rx_packets_total', 'Frames received on the port.', 'rx_packets');
    portCounter('lime_port_rx_bytes_total', 'Bytes of the frames received on the port.', 'rx_bytes');
    portCounter('lime_port_tx_packets_total', 'Frames sent on the port.', 'tx_packets');
    portCounter('lime_port_tx_bytes_total', 'Bytes of the frames sent on the port.', 'tx_bytes');
    counter('lime_port_drops_total', 'Frames dropped, by port and reason (the reasons of limectl show).', ['port', 'reason'], (set, s) => {
      for (const p of s.ports) for (const [reason, n] of Object.entries(p.drops)) set({ port: p.name, reason }, n);
    });

    // The flow tables and the caches in front of the classifier.
    gauge('lime_flow_table_flows', 'Rules in the flow table.', ['table'], (set, s) => {
      for (const t of s.flowTables) this.tablesSeen.add(t.table);
      const n = new Map(s.flowTables.map((t) => [t.table, t.flows]));
      for (const t of [...this.tablesSeen].sort((a, b) => a - b)) set({ table: String(t) }, n.get(t) ?? 0);
    });
    counter('lime_flow_cache_hits_total', 'Frames whose flow was found in an exact-match cache (emc: the JavaScript data path\'s; fast_path: the native engine\'s).', ['cache'], (set, s) => {
      for (const c of s.caches) set({ cache: c.cache }, c.hits);
    });
    counter('lime_flow_cache_misses_total', 'Frames not found in the cache (emc: translated through the flow tables; fast_path: handed to JavaScript).', ['cache'], (set, s) => {
      for (const c of s.caches) set({ cache: c.cache }, c.misses);
    });
    gauge('lime_fast_path_cache_entries', 'Flows in the native fast path\'s cache.', [], (set, s) => {
      if (s.fastPath !== undefined) set({}, s.fastPath.entries);
    });
    gauge('lime_fast_path_cache_slots', 'Slots of the native fast path\'s cache.', [], (set, s) => {
      if (s.fastPath !== undefined) set({}, s.fastPath.slots);
    });
    counter('lime_fast_path_upcall_drops_total', 'Frames the native fast path dropped because JavaScript had not taken the previous ones yet.', [], (set, s) => {
      if (s.fastPath !== undefined) set({}, s.fastPath.upcallDrops);
    });

    // The MAC table (NORMAL).
    gauge('lime_mac_table_entries', 'Learned MACs.', [], (set, s) => set({}, s.macTable.size));
    gauge('lime_mac_table_capacity', 'Learned MACs kept at most (config mac_table.capacity).', [], (set, s) => set({}, s.macTable.capacity));
    counter('lime_mac_table_evictions_total', 'Learned MACs evicted because the table was full.', [], (set, s) => set({}, s.macTable.evictions));

    // Packet-ins and control-plane policing.
    counter('lime_packet_in_total', 'Packet-ins sent to the controller (CONTROLLER actions: limectl monitor, the peer site).', [], (set, s) => set({}, s.packetIn.sent));
    counter('lime_packet_in_drops_total', 'Packet-ins dropped, by reason (packet_in_rate: over the configured rate).', ['reason'], (set, s) => {
      for (const [reason, n] of Object.entries(s.packetIn.drops)) set({ reason }, n);
    });
    gauge('lime_control_saturated', 'Whether the data path is saturated, so management requests are policed (1) or not (0).', [], (set, s) => set({}, s.control.saturated ? 1 : 0));
    counter('lime_control_deferred_total', 'Management requests that waited for their share of the event loop (control-plane policing).', [], (set, s) => set({}, s.control.deferred));

    // The peer site and the replicated log.
    const peerGauge = (name: string, help: string, value: (p: NonNullable<MetricsSnapshot['peer']>) => number | undefined): void =>
      gauge(name, help, ['peer'], (set, s) => {
        const v = s.peer !== undefined ? value(s.peer) : undefined;
        if (v !== undefined) set({ peer: s.peer!.name }, v);
      });
    const peerCounter = (name: string, help: string, value: (p: NonNullable<MetricsSnapshot['peer']>) => number): void =>
      counter(name, help, ['peer'], (set, s) => {
        if (s.peer !== undefined) set({ peer: s.peer.name }, value(s.peer));
      });
    peerGauge('lime_peer_up', 'Whether the control channel to the peer site is connected (1) or not (0).', (p) => (p.up ? 1 : 0));
    peerGauge('lime_peer_rtt_seconds', 'Round trip of the control channel to the peer site (heartbeats).', (p) => p.rttSeconds);
    peerGauge('lime_replication_seq', 'Sequence number of the last entry of the replicated log here.', (p) => p.seq);
    peerGauge('lime_replication_durable_seq', 'Sequence number of the last entry of the log on disk here.', (p) => p.durableSeq);
    peerGauge('lime_replication_lag_entries', 'At the writer: log entries the follower has not acknowledged yet.', (p) => p.lagEntries);
    peerGauge('lime_replication_lag_seconds', 'At the writer: age of the oldest log entry the follower has not acknowledged (0: none).', (p) => p.lagSeconds);
    peerCounter('lime_replication_resyncs_total', 'Resyncs: the whole table sent to (at the writer) or received by (at the follower) a follower that could not resume.', (p) => p.resyncs);
    peerCounter('lime_replication_resumes_total', 'Resumes: a follower that caught up from its last journaled entry (counted at the writer).', (p) => p.resumes);

    // Live migration.
    gauge('lime_migration_phase', 'The ensemble migration\'s phase: 1 for the current one (idle, moving, cutover), 0 for the others.', ['phase'], (set, s) => {
      for (const ph of MIGRATION_PHASES) set({ phase: ph }, s.migration.phase === ph ? 1 : 0);
    });
    const interSite = (name: string, help: string, key: 'txBytes' | 'rxBytes' | 'txPackets' | 'rxPackets'): void =>
      counter(name, help, [], (set, s) => {
        if (s.migration.interSite !== undefined) set({}, s.migration.interSite[key]);
      });
    interSite('lime_inter_site_tx_bytes_total', 'Bytes sent to the peer site over the inter-site tunnel port (peer.tunnel_port).', 'txBytes');
    interSite('lime_inter_site_rx_bytes_total', 'Bytes received from the peer site over the inter-site tunnel port.', 'rxBytes');
    interSite('lime_inter_site_tx_packets_total', 'Frames sent to the peer site over the inter-site tunnel port.', 'txPackets');
    interSite('lime_inter_site_rx_packets_total', 'Frames received from the peer site over the inter-site tunnel port.', 'rxPackets');

    // Resource bounds (config limits; README "Resource bounds").
    counter('lime_monitor_drops_total', 'Monitor connections (limectl monitor) dropped for leaving more than limits.monitor_queue_bytes of events unread.', [], (set, s) => {
      if (s.bounds !== undefined) set({}, s.bounds.monitorsDropped);
    });
    gauge('lime_journal_bytes', 'Size of the flow-table journal now (compaction restarts it).', [], (set, s) => {
      if (s.bounds?.journal !== undefined) set({}, s.bounds.journal.bytes);
    });
    counter('lime_journal_compactions_total', 'Journal compactions (every limits.journal_compact_entries records).', [], (set, s) => {
      if (s.bounds?.journal !== undefined) set({}, s.bounds.journal.compactions);
    });
    counter('lime_replication_window_cutoffs_total', 'At the writer: follower connections cut loose for falling more than limits.replication_window_entries behind (each resyncs).', ['peer'], (set, s) => {
      const w = s.bounds?.windowCutoffs;
      if (w !== undefined) set({ peer: w.peer }, w.count);
    });

    this.eventLoop = new EventLoopDelaySummary(reg);
    // Their nodejs_eventloop_lag_* sample every 100 ms (a second 10 ms timer would double the wake-ups of lime_event_loop_delay_seconds).
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: reg, eventLoopMonitoringPrecision: 100 });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text: one snapshot of the daemon, read once. */
  async metrics(): Promise<string> {
    this.snap = undefined;
    try {
      return await this.registry.metrics();
    } finally {
      this.snap = undefined;
    }
  }

  close(): void {
    this.eventLoop.close();
  }
}

/** The endpoint could not listen (the message names the address and why). */
export class MetricsListenError extends Error {
  override readonly name = 'MetricsListenError';
}

/** The HTTP server: GET /metrics, 404 for any other path. */
export class MetricsServer {
  private server: Server | undefined;
  private readonly registry: MetricsRegistry;
  private readonly host: string;
  private readonly port: number;

  constructor(
    readonly listen: string,
    source: () => MetricsSnapshot,
    private readonly log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void = () => {},
    opts: MetricsRegistryOptions = {},
  ) {
    const hp = parseHostPort(listen);
    if (hp === undefined) throw new MetricsListenError(`metrics.listen: expected "HOST:PORT", got ${JSON.stringify(listen)}`);
    this.host = hp.host;
    this.port = hp.port;
    this.registry = new MetricsRegistry(source, opts);
  }

  /** The port listened on (after start). */
  get address(): { host: string; port: number } {
    const a = this.server?.address();
    return a !== null && a !== undefined && typeof a === 'object' ? { host: a.address, port: a.port } : { host: this.host, port: this.port };
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'the address is already in use' : err.code === 'EADDRNOTAVAIL' ? 'no local interface has that address' : err.code === 'EACCES' ? 'permission denied' : err.message;
        reject(new MetricsListenError(`metrics: cannot listen on ${this.listen}: ${why}${err.code !== undefined ? ` (${err.code})` : ''}`));
      });
      server.listen({ host: this.host, port: this.port }, () => resolve());
    });
    server.on('error', (err) => this.log('warn', `metrics endpoint: ${err.message}`));
    this.server = server;
    this.log('info', `metrics endpoint listening on http://${this.listen}/metrics`, { listen: this.listen });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' });
      res.end('method not allowed: GET /metrics\n');
      return;
    }
    let body: string;
    try {
      body = await this.registry.metrics();
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      this.log('warn', `metrics endpoint: collecting failed: ${msg}`);
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`collecting the metrics failed: ${msg}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': this.registry.contentType });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  async stop(): Promise<void> {
    this.registry.close();
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // A scraper's kept-alive connection must not hold up shutdown.
      server.closeAllConnections();
    });
  }
}
