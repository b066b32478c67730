/**
 * A fake ManagementService (plain data, call log, injectable failures) and a raw framed
 * client for the management server and limectl tests. No root, no devices.
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ManagementError,
  type FdbEntry,
  type ManagementService,
  type PeerShowReply,
  type PortInfo,
  type PortSpec,
  type ShowReply,
  type SyncBarrierReply,
  type ReloadReply,
} from '../../src/mgmt/service.js';
import { FrameDecoder, encodeFrame } from '../../src/proto/framing.js';
import { FlowService, type FlowDatapath } from '../../src/daemon/flows.js';
import type { Action } from '../../src/flow/types.js';
import type { TraceResult } from '../../src/datapath/pipeline.js';
import type {
  DumpFlowsRequest,
  FlowDiffReply,
  FlowEntry,
  FlowModsReply,
  FlowModsRequest,
  MgmtEvent,
  MigrateRunRequest,
  MigrateStatus,
  MigrationPhase,
  MoveHostRequest,
  PacketOutRequest,
  ReplaceFlowsRequest,
  TraceReply,
} from '../../src/proto/schema.js';
import { type MgmtReply, type MgmtRequest, type UnknownBody, decodeMgmtReply, encodeMgmtRequest } from '../../src/proto/schema.js';

export function portInfo(name: string, number: number, extra: Partial<PortInfo> = {}): PortInfo {
  return {
    name,
    number,
    type: 'tap',
    device: name,
    state: 'up',
    mtu: 1500,
    mac: `02:00:00:00:00:${number.toString(16).padStart(2, '0')}`,
    rx_packets: 0,
    rx_bytes: 0,
    tx_packets: 0,
    tx_bytes: 0,
    drops: {},
    options: {},
    ...extra,
  };
}

export class FakeManagementService implements ManagementService {
  site = 'paris';
  ports: PortInfo[] = [
    portInfo('vm1', 1, { rx_packets: 12, rx_bytes: 1008, tx_packets: 10, tx_bytes: 840, drops: { runt: 3, too_long: 1 } }),
    portInfo('vm2', 2, { state: 'down', mtu: 9000 }),
  ];
  fdb: FdbEntry[] = [
    { port: 'vm1', vlan: 0, mac: '02:00:00:00:00:01', age: 5 },
    { port: 'vm2', vlan: 100, mac: '52:54:00:12:34:56', age: 123 },
  ];
  /** Every call, in order: method name and argument. */
  calls: Array<[string, unknown?]> = [];
  /** If set, show() throws it. */
  showError: unknown;
  /** Data-path clock of the flow table (ms); tests move it. */
  clock = 1_000_000;
  /** packet-outs the fake data path received. */
  packetOuts: Array<{ frame: Uint8Array; inPort: number; actions: Action[] }> = [];
  /** What the fake data path's trace returns (rule ids are looked up in the real table). */
  traceResult: ((key: Uint32Array) => TraceResult) | undefined;
  readonly datapath: FlowDatapath = {
    packetOut: (frame, inPort, actions) => {
      this.packetOuts.push({ frame: Uint8Array.from(frame), inPort, actions });
    },
    trace: (key) => {
      if (this.traceResult === undefined) throw new Error('no trace result set');
      return this.traceResult(key);
    },
  };
  /** The real flow service (real parser and table), on the fake clock and the fake ports. */
  readonly flows = new FlowService({
    now: () => this.clock,
    wallNow: () => 1_700_000_000_000,
    ports: {
      numberOf: (name) => this.ports.find((p) => p.name === name)?.number,
      nameOf: (n) => this.ports.find((p) => p.number === n)?.name,
    },
    datapath: () => this.datapath,
  });

  show(): ShowReply {
    this.calls.push(['show']);
    if (this.showError !== undefined) throw this.showError;
    return {
      site: this.site,
      ports: this.ports.map((p) => ({ ...p })),
      mac_table: { size: this.fdb.length, capacity: 8192, evictions: 7, aging_seconds: 300 },
      process: { pid: 4242, uptime_seconds: 61.5, heap_used: 5_000_000, rss: 40_000_000, gc_count: 3 },
      control: { share_percent: 10, saturated: false, deferred: 12, waiting: 0, cost_ms: 0.8, saturated_windows: 40, monitors_dropped: this.monitorsDropped },
      fast_path: { enabled: true, ports: ['vm1'], cache_used: 3, cache_slots: 8192, rx: 120, hits: 100, upcalls: 20, upcall_drops: 0, installs: 3, cache_full: 0, invalidations: 2 },
    };
  }

  /** show()'s control.monitors_dropped (tests set it). */
  monitorsDropped = 0;

  /** What peerShow() answers (tests set it). */
  peer: PeerShowReply = {
    configured: true, role: 'follower', site: 'paris', peer: 'berlin', connected: true, tls_identity: 'CN=berlin, DNS:berlin',
    remote_address: '192.0.2.2:6640', rtt_ms: 1.25, seq: 42, durable_seq: 42, resyncs: 1, last_resync_at: 1_700_000_000,
    log_id: 'log-x', state_dir: '/var/lib/lime', divergent: 0, resumes: 2, journal_bytes: 2048, compactions: 3, window_cutoffs: 0,
  };

  peerShow(): PeerShowReply {
    this.calls.push(['peerShow']);
    return { ...this.peer };
  }

  /** If set, reload() throws it (a rejected configuration). */
  reloadError: unknown;

  async reload(): Promise<ReloadReply> {
    this.calls.push(['reload']);
    if (this.reloadError !== undefined) throw this.reloadError;
    return { config: '/etc/lime/limed.yaml', ports_added: ['vm3'], ports_removed: ['vm2'], ports_changed: [], settings_changed: ['log_level: info -> debug'] };
  }

  async syncBarrier(): Promise<SyncBarrierReply> {
    this.calls.push(['syncBarrier']);
    return { seq: this.peer.seq, peered: this.peer.connected };
  }

  /** What migrateStatus() answers (tests set it). */
  migration: MigrateStatus = {
    site: 'paris', peer: 'berlin', peer_connected: true, tunnel_port: 'to-berlin',
    hosts: [{ name: 'vm1', site: 'paris', tunnel_id: 101, mac: '02:00:00:00:00:01' }, { name: 'vm2', site: 'berlin', tunnel_id: 102, mac: '' }],
    inter_site_tx_bytes: 1500, inter_site_rx_bytes: 3000, inter_site_tx_packets: 10, inter_site_rx_packets: 20,
    moved: { host: '', from: '', to: '', seq: 0 },
    migration: { phase: 'idle', from: '', to: '', strategy: '', before: [], ended: '' },
    flows: 12,
    seq: 0,
    plan: { parallel: 0, steps: [], predicted_bytes: 0, random_order_bytes: 0, window_ms: 0, traffic: [] },
    archived_flows: 0,
  };

  async migrateHost(request: MoveHostRequest): Promise<MigrateStatus> {
    this.calls.push(['migrateHost', request]);
    const h = this.migration.hosts.find((x) => x.name === request.host);
    if (h === undefined) throw new ManagementError('NOT_FOUND', `migrate host: no host named ${request.host}`);
    const from = h.site;
    h.site = request.site;
    return { ...this.migration, moved: { host: request.host, from, to: request.site, seq: 43 } };
  }

  async migratePrepare(request: MigrationPhase): Promise<MigrateStatus> {
    this.calls.push(['migratePrepare', request]);
    if (this.migration.migration.phase !== 'idle') throw new ManagementError('BAD_REQUEST', 'migrate prepare: a migration from site paris to site berlin is already under way; finalize or abort it first');
    this.migration.migration = { phase: 'moving', from: 'paris', to: request.to, strategy: request.strategy, before: [], ended: '' };
    return { ...this.migration, seq: 44 };
  }

  async migrateFinalize(): Promise<MigrateStatus> {
    this.calls.push(['migrateFinalize']);
    this.migration.migration = { ...this.migration.migration, phase: 'idle', ended: 'finalized' };
    return { ...this.migration, seq: 45, archived_flows: 3 };
  }

  async migrateAbort(): Promise<MigrateStatus> {
    this.calls.push(['migrateAbort']);
    this.migration.migration = { ...this.migration.migration, phase: 'idle', ended: 'aborted' };
    return { ...this.migration, seq: 46 };
  }

  async migratePlan(request: { window_ms: number; parallel: number }): Promise<MigrateStatus> {
    this.calls.push(['migratePlan', request]);
    const plan = {
      parallel: request.parallel || 1, steps: [{ hosts: ['vm1'] }], predicted_bytes: 0, random_order_bytes: 0,
      window_ms: request.window_ms || 5000, traffic: [{ from: 'vm1', to: 'vm2', bytes: 1000 }],
    };
    return { ...this.migration, plan };
  }

  async migrateRun(request: MigrateRunRequest): Promise<MigrateStatus> {
    this.calls.push(['migrateRun', request]);
    this.migration.migration = { phase: 'moving', from: 'paris', to: request.to || 'berlin', strategy: request.strategy, before: [], ended: '' };
    return { ...this.migration };
  }

  migrateStatus(): MigrateStatus {
    this.calls.push(['migrateStatus']);
    return { ...this.migration, hosts: this.migration.hosts.map((h) => ({ ...h })) };
  }

  fdbShow(): FdbEntry[] {
    this.calls.push(['fdbShow']);
    return this.fdb.map((e) => ({ ...e }));
  }

  async addPort(spec: PortSpec): Promise<PortInfo> {
    this.calls.push(['addPort', spec]);
    await new Promise((r) => setTimeout(r, 5)); // really asynchronous, like opening a TAP
    if (this.ports.some((p) => p.name === spec.name)) {
      throw new ManagementError('ALREADY_EXISTS', `port ${spec.name} already exists`);
    }
    const number = Math.max(0, ...this.ports.map((p) => p.number)) + 1;
    const info = portInfo(spec.name, number, {
      device: spec.device ?? spec.name,
      ...(spec.mtu !== undefined ? { mtu: spec.mtu } : {}),
      ...(spec.mac !== undefined ? { mac: spec.mac } : {}),
    });
    this.ports.push(info);
    return { ...info };
  }

  async delPort(name: string): Promise<void> {
    this.calls.push(['delPort', name]);
    const i = this.ports.findIndex((p) => p.name === name);
    if (i < 0) throw new ManagementError('NOT_FOUND', `no port named ${name}`);
    this.ports.splice(i, 1);
  }

  flowMods(request: FlowModsRequest): FlowModsReply {
    this.calls.push(['flowMods', request]);
    return this.flows.flowMods(request);
  }

  replaceFlows(request: ReplaceFlowsRequest): FlowDiffReply {
    this.calls.push(['replaceFlows', request]);
    return this.flows.replaceFlows(request);
  }

  dumpFlows(request: DumpFlowsRequest): FlowEntry[] {
    this.calls.push(['dumpFlows', request]);
    return this.flows.dumpFlows(request);
  }

  trace(packet: string): TraceReply {
    this.calls.push(['trace', packet]);
    return this.flows.trace(packet);
  }

  packetOut(request: PacketOutRequest): void {
    this.calls.push(['packetOut', request]);
    this.flows.packetOut(request);
  }

  monitor(sink: (event: MgmtEvent) => void): () => void {
    this.calls.push(['monitor']);
    return this.flows.monitor(sink);
  }

  /** Active captures: sink and snaplen per port name. */
  readonly captures = new Map<string, { sink: (event: MgmtEvent) => void; snaplen: number }>();

  capture(port: string, snaplen: number, sink: (event: MgmtEvent) => void): () => void {
    this.calls.push(['capture', { port, snaplen }]);
    if (!this.ports.some((p) => p.name === port)) throw new ManagementError('NOT_FOUND', `no port named ${port}`);
    this.captures.set(port, { sink, snaplen });
    return () => this.captures.delete(port);
  }

  /** As the data path would: one captured frame (data truncated to the capture's snaplen). */
  emitFrame(port: string, direction: 'rx' | 'tx', frame: Uint8Array, time = 1_700_000_000.5): void {
    const c = this.captures.get(port);
    if (c === undefined) throw new Error(`no capture on ${port}`);
    c.sink({ kind: 'frame', time, reason: '', dropped: 0, frame: { port, direction, len: frame.length, data: frame.subarray(0, c.snaplen) } });
  }

  /** As the server does for a slow reader: frames it had to skip. */
  emitDropped(port: string, dropped: number): void {
    this.captures.get(port)!.sink({ kind: 'dropped', time: 1_700_000_001, reason: '', dropped });
  }
}

/** A fresh temporary directory (short path: unix socket paths are limited to 107 bytes). */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'lime-mgmt-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A raw connection speaking frames, for poking the server with good and bad bytes. */
export class RawClient {
  readonly replies: Array<MgmtReply | UnknownBody> = [];
  closed = false;
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const b of this.decoder.push(chunk)) this.replies.push(decodeMgmtReply(b));
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path);
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(request: MgmtRequest | Omit<MgmtRequest, 'body'>): void {
    this.socket.write(encodeFrame(encodeMgmtRequest(request as MgmtRequest)));
  }

  writeRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Resolve when `n` replies have arrived (or reject on close/timeout). */
  async waitReplies(n: number, timeoutMs = 2000): Promise<Array<MgmtReply | UnknownBody>> {
    await this.until(() => this.replies.length >= n, timeoutMs, `${n} replies`);
    return this.replies;
  }

  async waitClosed(timeoutMs = 2000): Promise<void> {
    await this.until(() => this.closed, timeoutMs, 'close');
  }

  close(): void {
    this.socket.destroy();
  }

  private until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (cond()) {
          clearTimeout(timer);
          resolve();
        } else if (this.closed) {
          clearTimeout(timer);
          reject(new Error(`connection closed while waiting for ${what}`));
        } else {
          this.waiters.push(check);
        }
      };
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      check();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
