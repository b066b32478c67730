/**
 * What the management server needs from the daemon: a narrow, daemon-facing service
 * interface. The daemon implements it; the server (server.ts) decodes requests from the
 * management socket, calls these, and encodes the replies. Replies are plain data, the
 * same shape `limectl --json` prints.
 */

export interface PortSpec {
  name: string;
  type: 'tap';
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
  state: 'up' | 'down';
  mtu: number;
  mac: string;
  rx_packets: number;
  rx_bytes: number;
  tx_packets: number;
  tx_bytes: number;
  /** Drop reason name → count; only reasons with a non-zero count. */
  drops: Record<string, number>;
}

export interface ShowReply {
  site: string;
  ports: PortInfo[];
  mac_table: { size: number; capacity: number; evictions: number; aging_seconds: number };
  /** Heap statistics of the daemon (bytes), for the allocation checks in bench/. */
  process: { pid: number; uptime_seconds: number; heap_used: number; rss: number; gc_count: number };
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
}
