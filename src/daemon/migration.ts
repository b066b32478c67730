/**
 * Live migration at one site: the location map (src/migrate/location.ts) wired to the
 * switch's per-port redirection (LIME's tunnel at egress), and the order a move is applied
 * in so that a host's traffic is never black-holed by the sites disagreeing.
 *
 * Which site delivers to a host: the one the map says it is at — with one exception. A
 * move is an entry of the replicated log, applied by each site as the entry reaches it.
 * If the old site stopped delivering locally and started tunnelling before the new site
 * had applied the entry, the new site would still tunnel the frames back … to the old
 * site, which no longer delivers. So the new site switches first, and the old site keeps
 * delivering locally until the new site has applied the move:
 *   - the writer moving a host away: it keeps the host local ("leaving") until the
 *     follower has acknowledged the entry (the replica's barrier), then tunnels;
 *   - the follower moving a host away: the writer (the new site) applied it first, by the
 *     order of the log.
 * A frame that arrives from the peer for a host is delivered to the host's port here
 * whatever this site's map says (Executor.deliverFromPeer): it is never sent back.
 */
import type { Switch } from '../datapath/switch.js';
import { parseMac } from '../util/addr.js';
import { LocationError, LocationMap, type HostSpec } from '../migrate/location.js';
import type { MgmtEvent, MigrateStatus, MigrationPhase, MoveHostReply, MoveHostRequest } from '../proto/schema.js';
import type { Locations } from '../sync/replication.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';

/** What Migration needs of the rest of the daemon. */
export interface MigrationDeps {
  switch: Switch;
  /** A port's number by name (undefined: no such port). */
  portNumber(name: string): number | undefined;
  /** Counters of the inter-site tunnel port. */
  tunnelCounters(): { rxPackets: number; rxBytes: number; txPackets: number; txBytes: number };
  /** Put a detected move into the replicated log (rejects when it cannot be sequenced now). */
  submitMove(request: MoveHostRequest): Promise<unknown>;
  /** Hand an event to this site's monitors (mobility events). */
  publish(event: MgmtEvent): void;
  /**
   * Announce a host that just arrived (RARP from its MAC, as a hypervisor does after a
   * live migration) on this site's ports other than hosts', so that L2 switches behind
   * them re-learn where it is.
   */
  announce(host: string, mac: string): void;
  log: Logger;
}

/** After a host moved away from here, frames on its port for this long are its old ones, not an arrival. */
const DETECT_GRACE_MS = 1000;

/** How often a detected move that could not be logged (peer unreachable) is tried again. */
const DETECT_RETRY_MS = 1000;

/** The hosts a config declares (ports with a tunnel_id). */
function hostSpecs(config: Config): HostSpec[] {
  const out: HostSpec[] = [];
  for (const p of config.ports) {
    if (p.type === 'gre' || p.tunnel_id === undefined) continue;
    out.push({ name: p.name, tunnelId: p.tunnel_id, site: p.site ?? config.site, mac: p.mac ?? '' });
  }
  return out;
}

export class Migration {
  readonly map: LocationMap;
  readonly site: string;
  readonly peer: string;
  readonly tunnelPort: string;
  /** Hosts this site moved away whose frames it still delivers until the peer has switched. */
  private readonly leaving = new Map<string, number>();
  private leaveSeq = 0;
  /** Hosts detected here (frames on their port) whose move is not yet in the log: local meanwhile. */
  private readonly arriving = new Set<string>();
  /** When each host last moved away from this site (Date.now()): see onHostArrived. */
  private readonly leftAt = new Map<string, number>();
  private retryTimer: NodeJS.Timeout | undefined;
  /** Host name by port number, as of the last refresh (the detection hook's lookup). */
  private hostByPort = new Map<number, string>();
  private phase: MigrationPhase = idlePhase();

  constructor(
    config: Config,
    private readonly deps: MigrationDeps,
  ) {
    this.site = config.site;
    this.peer = config.peer?.name ?? '';
    this.tunnelPort = config.peer?.tunnel_port ?? '';
    this.map = new LocationMap(this.peer === '' ? [this.site] : [this.site, this.peer], hostSpecs(config));
  }

  get hasHosts(): boolean {
    return this.map.size > 0;
  }

  /** Rebuild the switch's redirection from the map (after a move, or once the ports are open). */
  refresh(): void {
    const sw = this.deps.switch;
    const tunnel = this.tunnelPort === '' ? 0 : (this.deps.portNumber(this.tunnelPort) ?? 0);
    // Stop-and-copy: while hosts move, the old site's table switches everything: the new
    // site sends its hosts' frames there unswitched; the cut-over freezes both sites.
    const p = this.phase;
    const switchAtPeer = p.strategy === 'stop-and-copy' && p.phase === 'moving' && this.site === p.to;
    sw.setFrozen(p.phase === 'cutover');
    sw.setHoldWithController(p.phase !== 'idle');
    const hosts: { port: number; tunnelId: number; here: boolean; switchAtPeer: boolean }[] = [];
    this.hostByPort = new Map();
    for (const h of this.map.list()) {
      const port = this.deps.portNumber(h.name);
      if (port === undefined) continue;
      this.hostByPort.set(port, h.name);
      const here = h.site === this.site || this.leaving.has(h.name) || this.arriving.has(h.name);
      hosts.push({ port, tunnelId: h.tunnel_id, here, switchAtPeer: switchAtPeer && here, ...(h.mac !== '' ? { mac: parseMac(h.mac) } : {}) });
    }
    sw.setLocations(tunnel, hosts);
    sw.pipeline.exec.onHostArrived = this.onHostArrived;
  }

  /**
   * The data path saw frames on the port of a host the map places at the peer: the host
   * is here now. From this frame on this site delivers to it locally (the new site
   * switches first), and the move goes into the log so the old site starts tunnelling.
   */
  private readonly onHostArrived = (port: number): void => {
    const name = this.hostByPort.get(port);
    const from = name === undefined ? undefined : this.map.siteOf(name);
    if (name === undefined || from === this.site || this.arriving.has(name)) return;
    // Frames the host sent before it left may still be queued on its port here when the
    // move away is applied: they are not the host arriving (the soak saw moves flap back
    // and forth at full rate). A host really coming back is detected by its next frames.
    const left = this.leftAt.get(name);
    if (left !== undefined && Date.now() - left < DETECT_GRACE_MS) return;
    this.arriving.add(name);
    this.refresh();
    this.deps.log.info({ host: name, from, to: this.site }, `host ${name} detected at this site (frames on its port); moving it here`);
    this.logDetected(name);
  };

  private logDetected(name: string): void {
    if (!this.arriving.has(name)) return;
    this.deps.submitMove({ host: name, site: this.site, cause: 'detected' }).catch((err: Error) => {
      if (!this.arriving.has(name)) return;
      this.deps.log.warn({ host: name, err: err.message }, `could not log the detected move of host ${name}; trying again`);
      this.retryTimer = setTimeout(() => this.logDetected(name), DETECT_RETRY_MS);
      this.retryTimer.unref();
    });
  }

  stop(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.arriving.clear();
  }

  /**
   * Check a move before it is submitted to the log: LocationError NOT_FOUND / BAD_REQUEST.
   */
  check(request: MoveHostRequest): { from: string; to: string } {
    return this.map.check(request.host, request.site);
  }

  /**
   * Apply a move from the log. `afterPeerApplied`, given at the writer while a follower
   * is connected, resolves once the follower has applied everything up to this entry:
   * a host moving away from here stays local until then.
   */
  apply(request: MoveHostRequest, afterPeerApplied?: () => Promise<unknown>): MoveHostReply {
    const { from, to, changed } = this.map.move(request.host, request.site);
    this.arriving.delete(request.host); // the log has spoken: the map says where it is
    if (!changed) return { host: request.host, from, to, seq: 0 };
    if (from === this.site) this.leftAt.set(request.host, Date.now());
    // A move the new site detected needs no wait: that site has delivered to the host
    // itself since it saw the host's frames (its `arriving`), so it never tunnels them
    // back here; waiting would only keep sending frames to the port the host has left.
    if (from === this.site && afterPeerApplied !== undefined && request.cause !== 'detected') {
      const mark = ++this.leaveSeq;
      this.leaving.set(request.host, mark);
      afterPeerApplied()
        .catch(() => undefined) // the peer went away: it resyncs, and tunnelling is what the map says
        .finally(() => {
          if (this.leaving.get(request.host) !== mark) return;
          this.leaving.delete(request.host);
          this.refresh();
        });
    } else {
      this.leaving.delete(request.host);
    }
    this.refresh();
    const cause = request.cause || 'command';
    this.deps.log.info({ host: request.host, from, to, cause }, `host ${request.host} moved from site ${from} to site ${to}`);
    // Each site applies each move once, so each site's monitors hear of it once.
    const mac = this.map.list().find((h) => h.name === request.host)?.mac ?? '';
    // A host that moved here by command has not necessarily spoken yet (detected: it has).
    if (to === this.site && cause !== 'detected' && mac !== '') this.deps.announce(request.host, mac);
    this.deps.publish({ kind: 'host_moved', time: Date.now() / 1000, reason: cause, dropped: 0, host_moved: { host: request.host, mac, from, to, cause } });
    return { host: request.host, from, to, seq: 0 };
  }

  /** The ensemble migration under way ("idle" when none). */
  get current(): MigrationPhase {
    return { ...this.phase, before: this.phase.before.map((h) => ({ ...h })) };
  }

  /** Apply a migration phase from the log (prepare: "moving"; finalize, abort: "idle"). */
  applyPhase(p: MigrationPhase): MigrationPhase {
    // Two prepares racing from the two sites: the writer orders them, the second is refused.
    if (p.phase === 'moving' && this.phase.phase === 'moving') {
      throw new LocationError('BAD_REQUEST', `a migration from site ${this.phase.from} to site ${this.phase.to} is already under way; finalize or abort it first`);
    }
    if (p.phase === 'cutover' && this.phase.phase !== 'moving' && this.phase.phase !== 'cutover') {
      throw new LocationError('BAD_REQUEST', 'no migration is under way to cut over');
    }
    this.phase = { ...p, before: p.before.map((h) => ({ ...h })) };
    this.refresh();
    const what =
      p.phase === 'moving' ? `migration from site ${p.from} to site ${p.to} under way (${p.strategy})` :
      p.phase === 'cutover' ? `migration from site ${p.from} to site ${p.to}: cutting over, forwarding frozen` :
      `migration from site ${p.from} to site ${p.to} ${p.ended || 'ended'}`;
    this.deps.log.info({ phase: p.phase, from: p.from, to: p.to, ended: p.ended }, what);
    return this.current;
  }

  /** The map and the migration under way, for a snapshot. */
  snapshotLocations(): Locations {
    return this.phase.phase !== 'idle' ? { hosts: this.map.list(), migration: this.current } : { hosts: this.map.list() };
  }

  /** Take a snapshot's map and migration (resync, or restore from the journal). */
  restoreLocations(locations: Locations): void {
    const unknown = this.map.restore(locations.hosts ?? []);
    if (unknown.length > 0) this.deps.log.warn({ hosts: unknown }, 'the replicated location map names hosts this site does not declare; ignored');
    this.phase = locations.migration !== undefined ? { ...locations.migration } : idlePhase();
    this.leaving.clear();
    this.arriving.clear();
    this.refresh();
  }

  status(peerConnected: boolean, flows: number): MigrateStatus {
    const c = this.deps.tunnelCounters();
    return {
      site: this.site,
      peer: this.peer,
      peer_connected: peerConnected,
      tunnel_port: this.tunnelPort,
      hosts: this.map.list(),
      inter_site_tx_bytes: c.txBytes,
      inter_site_rx_bytes: c.rxBytes,
      inter_site_tx_packets: c.txPackets,
      inter_site_rx_packets: c.rxPackets,
      moved: { host: '', from: '', to: '', seq: 0 },
      migration: this.current,
      flows,
      seq: 0,
      plan: { parallel: 0, steps: [], predicted_bytes: 0, random_order_bytes: 0, window_ms: 0, traffic: [] },
      archived_flows: 0,
    };
  }
}

/** No ensemble migration under way. */
function idlePhase(): MigrationPhase {
  return { phase: 'idle', from: '', to: '', strategy: '', before: [], ended: '' };
}
