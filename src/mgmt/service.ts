/**
 * What the management server needs from the daemon: a narrow, daemon-facing service
 * interface. The daemon implements it; the server (server.ts) decodes requests from the
 * management socket, calls these, and encodes the replies. Replies are plain data, the
 * same shape `limectl --json` prints.
 *
 * Flow-table methods take and return the wire shapes of proto/schema.ts (flows travel as
 * ovs-ofctl text; the daemon parses them with its port names). `monitor` registers a sink
 * for the event stream and returns the function that unregisters it; the sink must not
 * throw and must not block (the server queues per connection).
 */
import type {
  ControlInfo,
  FastPathInfo,
  DumpFlowsRequest,
  FlowDiffReply,
  FlowEntry,
  FlowModsReply,
  FlowModsRequest,
  MgmtEvent,
  PacketOutRequest,
  PeerShowReply,
  ReplaceFlowsRequest,
  SyncBarrierReply,
  TraceReply,
  MigrateRunRequest,
  MigrateStatus,
  MigrationPhase,
  MoveHostRequest,
  ReloadReply,
} from '../proto/schema.js';

export type {
  DumpFlowsRequest,
  FlowDiffReply,
  FlowEntry,
  FlowModsReply,
  FlowModsRequest,
  MgmtEvent,
  PacketOutRequest,
  PeerShowReply,
  ReplaceFlowsRequest,
  SyncBarrierReply,
  TraceReply,
  ReloadReply,
};

export interface PortSpec {
  name: string;
  type: 'tap' | 'system';
  /** OS device name; defaults to `name`. */
  device?: string;
  mtu?: number;
  /** "02:00:00:00:00:01" form. */
  mac?: string;
}

export interface PortInfo {
  name: string;
  number: number;
  type: string;
  device: string;
  /** "remote": a host's port at the site the host is not at (its state is the other site's). */
  state: 'up' | 'down' | 'remote';
  mtu: number;
  mac: string;
  rx_packets: number;
  rx_bytes: number;
  tx_packets: number;
  tx_bytes: number;
  /** Drop reason name → count; only reasons with a non-zero count. */
  drops: Record<string, number>;
  /** Type-specific settings (a gre port's remote_ip, key, path_mtu …); may be empty. */
  options: Record<string, string>;
}

export interface ShowReply {
  site: string;
  ports: PortInfo[];
  mac_table: { size: number; capacity: number; evictions: number; aging_seconds: number };
  /** Heap statistics of the daemon (bytes), for the allocation checks in bench/. */
  process: { pid: number; uptime_seconds: number; heap_used: number; rss: number; gc_count: number };
  /** Control-plane policing (see daemon/control-policer.ts). */
  control: ControlInfo;
  /** The native fast path (see daemon/fast-path.ts). */
  fast_path: FastPathInfo;
}


export interface FdbEntry {
  port: string;
  vlan: number;
  mac: string;
  /** Seconds since the MAC was last seen. */
  age: number;
}

/** An error the management server reports to the client with a code and a message. */
export class ManagementError extends Error {
  constructor(
    readonly code: 'BAD_REQUEST' | 'NOT_FOUND' | 'ALREADY_EXISTS' | 'FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'ManagementError';
  }
}

export interface ManagementService {
  show(): ShowReply;
  fdbShow(): FdbEntry[];
  /** Add a port at run time. Rejects with ManagementError (ALREADY_EXISTS, BAD_REQUEST, FAILED). */
  addPort(spec: PortSpec): Promise<PortInfo>;
  /** Remove a port at run time. Rejects with ManagementError (NOT_FOUND). */
  delPort(name: string): Promise<void>;

  // Flow table (issue 3). Bad input → ManagementError BAD_REQUEST whose message names the
  // source line (for files) and the column, with a caret line under the offending token.
  /**
   * add / modify / delete (strict or not), all or none. `text.more` is handled by the
   * server. Resolves once the change is durable (journal) and, when peered, applied at the
   * peer site too (src/sync/replication.ts).
   */
  flowMods(request: FlowModsRequest): FlowModsReply | Promise<FlowModsReply>;
  /** Make the table equal to the text (or, dry_run, only report the difference). Atomic; durable and replicated like flowMods. */
  replaceFlows(request: ReplaceFlowsRequest): FlowDiffReply | Promise<FlowDiffReply>;
  /** The flows; with a peer, the logical table with counters summed over both sites (see DumpFlowsRequest.site). */
  dumpFlows(request: DumpFlowsRequest): FlowEntry[] | Promise<FlowEntry[] | { flows: FlowEntry[]; localOnly: boolean }>;
  trace(packet: string): TraceReply;
  packetOut(request: PacketOutRequest): void;
  /** Start delivering events to `sink`; returns the function that stops it. */
  monitor(sink: (event: MgmtEvent) => void): () => void;
  /**
   * Start delivering every frame port `port` receives and sends to `sink` (events of kind
   * "frame", data truncated to `snaplen`); returns the function that stops it. Throws
   * ManagementError NOT_FOUND for an unknown port. The port stops copying frames when the
   * port is removed (the stream then simply goes quiet).
   */
  capture(port: string, snaplen: number, sink: (event: MgmtEvent) => void): () => void;

  // The control channel (issue 5).
  /** Replication and channel state. */
  peerShow(): PeerShowReply;
  /** Resolves when everything before it is applied at both sites (this one only without a peer). */
  syncBarrier(): Promise<SyncBarrierReply>;

  // Live migration (issue 6).
  /**
   * Move a host (a logical port) to a site; resolves once the move is durable and applied
   * at both sites, in the order that never black-holes its traffic. ManagementError
   * NOT_FOUND (unknown host or site), BAD_REQUEST (already there, no peer connected).
   */
  migrateHost(request: MoveHostRequest): Promise<MigrateStatus>;
  /** Where every host is, the migration under way, and what crossed the inter-site link. */
  migrateStatus(): MigrateStatus;
  /** Start an ensemble migration to `request.to` (clone = both tables in step). BAD_REQUEST when one runs. */
  migratePrepare(request: MigrationPhase): Promise<MigrateStatus>;
  /** End the migration once every host is at the new site. */
  migrateFinalize(): Promise<MigrateStatus>;
  /** Return every host to where it was at prepare and end the migration. */
  migrateAbort(): Promise<MigrateStatus>;
  /** Measure host-to-host traffic for a window, then plan the moves (answer in `plan`). */
  migratePlan(request: { window_ms: number; parallel: number }): Promise<MigrateStatus>;
  /** Move the hosts of a plan step by step (prepare first when no migration is under way). */
  migrateRun(request: MigrateRunRequest): Promise<MigrateStatus>;

  // Operation (issue 8).
  /**
   * Re-read the configuration file and apply what may change at run time. ManagementError
   * BAD_REQUEST (the file does not validate, or changes what only a restart can) or FAILED
   * (a port could not be opened): nothing changed, the running configuration stays.
   */
  reload(): Promise<ReloadReply>;
}
