/**
 * limed's configuration: loaded from YAML (JSON is valid YAML), validated by a zod schema,
 * with every error naming the field path and what was expected.
 *
 *   site: a                       # this site's name
 *   socket: /run/lime/limed.sock  # management socket (default shown)
 *   log_level: info               # trace|debug|info|warn|error
 *   mac_table: { capacity: 8192, aging_seconds: 300 }
 *   table_miss: normal            # default table-miss rule: normal | drop
 *   packet_in: { rate: 1000, burst: 100 }  # packet-ins per second / bucket depth (per daemon)
 *   control_share_percent: 5      # share of the event loop management requests get while
 *                                 # the data path is saturated (100: no policing)
 *   fast_path: native             # native: a native thread forwards established flows of
 *                                 # TAP ports and plain GRE tunnels (src/daemon/fast-path.ts);
 *                                 # off: every frame through the JavaScript data path
 *   ports:
 *     - { name: vm1, type: tap, mtu: 1500, mac: "02:00:00:00:00:01", device: lime-vm1 }
 *     - { name: uplink, type: system, device: eth1 }          # an existing interface
 *     - { name: to-b, type: gre, remote_ip: 192.0.2.2, key: 4242 }  # see grePortSchema
 *   # The site-to-site control channel (src/sync/): both sites name each other.
 *   listen: "192.0.2.1:6640"       # where this site accepts its peer
 *   peer: { name: b, address: "192.0.2.2:6640", dead_peer_ms: 3000 }
 *   tls: { ca: /etc/lime/ca.pem, cert: /etc/lime/a.pem, key: /etc/lime/a.key }
 *   # insecure: true                # plain TCP instead of tls: loopback addresses only
 *   state_dir: /var/lib/lime       # the journal of the flow table (default shown when a peer
 *                                  # is set; without peer and state_dir flows are not kept)
 *   # Live migration: hosts are ports with a tunnel_id, declared at both sites, each with the
 *   # site where it starts; peer.tunnel_port (a gre port with key: flow) carries their frames.
 *   #   - { name: vm1, type: tap, mac: "02:00:00:00:00:01", tunnel_id: 101, site: a }
 *   #   peer: { name: b, address: "192.0.2.2:6640", tunnel_port: to-b }
 *   # The Prometheus endpoint (src/daemon/metrics.ts): absent, none; present, GET /metrics
 *   # at listen (default 127.0.0.1:9469). A non-loopback address is allowed: the operator's
 *   # choice (the endpoint has no authentication; it reads, it changes nothing).
 *   metrics: { listen: "127.0.0.1:9469" }
 *   # Resource bounds (defaults shown; README "Resource bounds"). Each is counted when hit.
 *   limits:
 *     monitor_queue_bytes: 4194304     # event bytes a limectl monitor connection may leave
 *                                      # unread before it is dropped (65536..1073741824)
 *     journal_compact_entries: 50000   # journal records before the table is snapshotted and
 *                                      # the journal restarts (100..10000000)
 *     replication_window_entries: 20000  # log entries the writer keeps for a follower; one
 *                                      # further behind is cut loose and resyncs (1000..10000000)
 */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { isLoopbackHost, parseHostPort } from '../util/addr.js';
import { MAX_TUNNEL_ID } from '../tunnel/logical.js';

export const DEFAULT_SOCKET = '/run/lime/limed.sock';
export const DEFAULT_STATE_DIR = '/var/lib/lime';
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9469';
/** Defaults of the `limits` section. */
export const DEFAULT_LIMITS = { monitor_queue_bytes: 4 * 1024 * 1024, journal_compact_entries: 50_000, replication_window_entries: 20_000 } as const;

/** A configuration error: the message names the file and the field. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Linux interface names: 1–15 bytes, no '/', ':' or white space. */
const ifname = z
  .string()
  .min(1, 'expected a device name of 1 to 15 characters')
  .max(15, 'expected a device name of at most 15 characters (Linux IFNAMSIZ)')
  .regex(NAME_RE, 'expected letters, digits, "_", "." or "-", starting with a letter or digit');

const mac = z
  .string()
  .regex(MAC_RE, 'expected a MAC address like "02:00:00:00:00:01"')
  .refine((s) => (parseInt(s.slice(0, 2), 16) & 1) === 0, 'expected a unicast MAC address (first octet even)');

const mtuField = z
  .number({ error: 'expected an integer from 68 to 9000' })
  .int('expected an integer from 68 to 9000')
  .min(68, 'expected an integer from 68 to 9000')
  .max(9000, 'expected an integer from 68 to 9000');

/** An integer in min..max, the error naming the range and what it counts. */
const intIn = (min: number, max: number, what: string) => {
  const msg = `expected an integer from ${min} to ${max} (${what})`;
  return z.number({ error: msg }).int(msg).min(min, msg).max(max, msg);
};

const IPV4_TEXT_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const ipv4Text = z
  .string({ error: 'expected an IPv4 address like "192.0.2.1"' })
  .regex(IPV4_TEXT_RE, 'expected an IPv4 address like "192.0.2.1"');
const unicastIpv4 = ipv4Text.refine((s) => {
  const first = Number(s.split('.')[0]);
  return s !== '0.0.0.0' && s !== '255.255.255.255' && first < 224 && first !== 127;
}, 'expected a unicast IPv4 address (not 0.0.0.0, loopback, multicast or broadcast)');

const byteOrInherit = (what: string, min: number) => {
  const msg = `expected ${what}: an integer from ${min} to 255, or "inherit"`;
  return z.union([z.number().int(msg).min(min, msg).max(255, msg), z.literal('inherit')], { error: msg });
};
const GRE_KEY_MSG = 'expected a key from 0 to 4294967295, or "flow" (the key is the packet\'s tun_id)';

const TUNNEL_ID_MSG = `expected an integer from 1 to ${MAX_TUNNEL_ID} (the host's tunnel id: GRE key between the sites)`;

/** A port that is a host (logical port) for live migration: declared at both sites (src/migrate/). */
const hostFields = {
  tunnel_id: z.number({ error: TUNNEL_ID_MSG }).int(TUNNEL_ID_MSG).min(1, TUNNEL_ID_MSG).max(MAX_TUNNEL_ID, TUNNEL_ID_MSG).optional(),
  site: z.string({ error: 'expected the name of the site where the host starts (this site or its peer)' }).optional(),
};

/** A TAP device the daemon creates (a VM's or a host namespace's NIC). */
export const tapPortSchema = z.strictObject({
  name: ifname,
  type: z.literal('tap'),
  device: ifname.optional(),
  mtu: mtuField.default(1500),
  mac: mac.optional(),
  tx_queue_len: z
    .number({ error: 'expected an integer from 64 to 100000 (frames the kernel queues toward limed)' })
    .int('expected an integer from 64 to 100000 (frames the kernel queues toward limed)')
    .min(64, 'expected an integer from 64 to 100000 (frames the kernel queues toward limed)')
    .max(100_000, 'expected an integer from 64 to 100000 (frames the kernel queues toward limed)')
    .optional(),
  ...hostFields,
});

/**
 * An interface that already exists (a NIC on the access router, a veth end), attached
 * through an AF_PACKET socket. `offloads: off` (the default) turns GRO, LRO, TSO, GSO, TX
 * checksum and VLAN offloads off on attach; frames a peer still hands over unfinished
 * (partial checksums, TSO/GSO super-frames from a veth peer) are completed and segmented.
 */
export const systemPortSchema = z.strictObject({
  name: ifname,
  type: z.literal('system'),
  device: ifname.optional(),
  offloads: z.enum(['off', 'keep'], { error: 'expected off (turn the device\'s offloads off on attach) or keep' }).default('off'),
  // A host behind the interface (a VM whose hypervisor owns the TAP, with tunnel_id): its
  // MAC, which is not the device's — in mobility events, and announced after a commanded move.
  mac: mac.optional(),
  ...hostFields,
});

/**
 * Ethernet over GRE over IPv4 to a peer site (Linux gretap / Open vSwitch type=gre wire
 * format). The MTU policy: `path_mtu` is the underlay MTU toward remote_ip; a frame that
 * does not fit after encapsulation is dropped and counted (tunnel_path_mtu) and, for IPv4
 * with DF set, answered with ICMP "fragmentation needed" carrying the usable MTU
 * (`fragment: false`, the default, outer DF set) — or the outer packet is fragmented
 * (`fragment: true`, outer DF clear). `mss_clamp` rewrites the MSS option of TCP SYNs
 * entering the tunnel so TCP never needs either.
 */
export const grePortSchema = z.strictObject({
  name: ifname,
  type: z.literal('gre'),
  remote_ip: unicastIpv4,
  local_ip: unicastIpv4.optional(),
  key: z.union([z.number().int(GRE_KEY_MSG).min(0, GRE_KEY_MSG).max(0xffffffff, GRE_KEY_MSG), z.literal('flow')], { error: GRE_KEY_MSG }).optional(),
  csum: z.boolean({ error: 'expected true or false' }).default(false),
  seq: z.boolean({ error: 'expected true or false' }).default(false),
  ttl: byteOrInherit('a TTL', 1).default(64),
  tos: byteOrInherit('a TOS byte', 0).default(0),
  path_mtu: z
    .number({ error: 'expected an integer from 576 to 9000 (the underlay MTU toward remote_ip)' })
    .int('expected an integer from 576 to 9000 (the underlay MTU toward remote_ip)')
    .min(576, 'expected an integer from 576 to 9000 (the underlay MTU toward remote_ip)')
    .max(9000, 'expected an integer from 576 to 9000 (the underlay MTU toward remote_ip)')
    .default(1500),
  fragment: z.boolean({ error: 'expected true (fragment the outer packet, DF clear) or false (drop and answer ICMP, DF set)' }).default(false),
  mss_clamp: z.boolean({ error: 'expected true or false' }).default(false),
  mtu: mtuField.default(1500),
});

const HOST_PORT_MSG = 'expected "HOST:PORT", e.g. "192.0.2.1:6640" or "[2001:db8::1]:6640"';
const hostPort = z.string({ error: HOST_PORT_MSG }).refine((s) => parseHostPort(s) !== undefined, HOST_PORT_MSG);
const pemPath = z.string({ error: 'expected the path of a PEM file' }).min(1, 'expected the path of a PEM file');

export const portSchema = z.discriminatedUnion('type', [tapPortSchema, systemPortSchema, grePortSchema], {
  error: (iss) =>
    iss.code === 'invalid_union' || iss.code === 'invalid_type' || iss.code === 'invalid_value'
      ? 'expected a port with type tap, system or gre'
      : undefined,
});

export const configSchema = z.strictObject({
  site: z
    .string({ error: 'expected the site name, a string' })
    .min(1, 'expected a non-empty site name')
    .max(64, 'expected a site name of at most 64 characters')
    .regex(NAME_RE, 'expected letters, digits, "_", "." or "-"'),
  socket: z.string({ error: 'expected a path' }).min(1, 'expected a path').default(DEFAULT_SOCKET),
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error'], { error: 'expected one of trace, debug, info, warn, error' }).default('info'),
  mac_table: z
    .strictObject({
      capacity: z.number().int('expected an integer').min(16, 'expected at least 16').max(1_000_000, 'expected at most 1000000').default(8192),
      aging_seconds: z.number().int('expected an integer').min(1, 'expected at least 1').max(86_400, 'expected at most 86400').default(300),
    })
    .default({ capacity: 8192, aging_seconds: 300 }),
  table_miss: z.enum(['normal', 'drop'], { error: 'expected normal or drop' }).default('normal'),
  packet_in: z
    .strictObject({
      rate: z
        .number({ error: 'expected an integer from 1 to 1000000 (packet-ins per second)' })
        .int('expected an integer from 1 to 1000000 (packet-ins per second)')
        .min(1, 'expected an integer from 1 to 1000000 (packet-ins per second)')
        .max(1_000_000, 'expected an integer from 1 to 1000000 (packet-ins per second)')
        .default(1000),
      burst: z
        .number({ error: 'expected an integer from 1 to 1000000 (packet-ins)' })
        .int('expected an integer from 1 to 1000000 (packet-ins)')
        .min(1, 'expected an integer from 1 to 1000000 (packet-ins)')
        .max(1_000_000, 'expected an integer from 1 to 1000000 (packet-ins)')
        .default(100),
    }, { error: 'expected a mapping like { rate: 1000, burst: 100 }' })
    .default({ rate: 1000, burst: 100 }),
  control_share_percent: z
    .number({ error: 'expected a number from 1 to 100 (percent of the event loop)' })
    .min(1, 'expected a number from 1 to 100 (percent of the event loop)')
    .max(100, 'expected a number from 1 to 100 (percent of the event loop)')
    .default(5),
  fast_path: z.enum(['native', 'off'], { error: 'expected native (a native thread forwards established flows) or off' }).default('native'),
  ports: z.array(portSchema, { error: 'expected a list of ports' }).default([]),
  listen: hostPort.optional(),
  peer: z
    .strictObject(
      {
        name: z
          .string({ error: 'expected the peer site\'s name, a string' })
          .min(1, 'expected a non-empty site name')
          .max(64, 'expected a site name of at most 64 characters')
          .regex(NAME_RE, 'expected letters, digits, "_", "." or "-"'),
        address: hostPort,
        dead_peer_ms: z
          .number({ error: 'expected an integer from 300 to 60000 (ms without a word from the peer before it is taken for dead)' })
          .int('expected an integer from 300 to 60000 (ms without a word from the peer before it is taken for dead)')
          .min(300, 'expected an integer from 300 to 60000 (ms without a word from the peer before it is taken for dead)')
          .max(60_000, 'expected an integer from 300 to 60000 (ms without a word from the peer before it is taken for dead)')
          .default(3000),
        // Live migration: the port that carries hosts' frames to the peer site.
        tunnel_port: ifname.optional(),
      },
      { error: 'expected a mapping like { name: b, address: "192.0.2.2:6640" }' },
    )
    .optional(),
  tls: z
    .strictObject({ ca: pemPath, cert: pemPath, key: pemPath }, { error: 'expected a mapping like { ca: PATH, cert: PATH, key: PATH }' })
    .optional(),
  insecure: z.boolean({ error: 'expected true or false' }).default(false),
  state_dir: z
    .string({ error: 'expected an absolute path' })
    .refine((s) => isAbsolute(s), 'expected an absolute path')
    .optional(),
  metrics: z
    .strictObject({ listen: hostPort.default(DEFAULT_METRICS_LISTEN) }, { error: `expected a mapping like { listen: "${DEFAULT_METRICS_LISTEN}" }` })
    .optional(),
  limits: z
    .strictObject(
      {
        monitor_queue_bytes: intIn(65_536, 1_073_741_824, 'bytes of events a monitor connection may leave unread').default(DEFAULT_LIMITS.monitor_queue_bytes),
        journal_compact_entries: intIn(100, 10_000_000, 'journal records between snapshots').default(DEFAULT_LIMITS.journal_compact_entries),
        replication_window_entries: intIn(1000, 10_000_000, 'log entries the writer keeps for its follower').default(DEFAULT_LIMITS.replication_window_entries),
      },
      { error: 'expected a mapping like { monitor_queue_bytes: 4194304, journal_compact_entries: 50000, replication_window_entries: 20000 }' },
    )
    .default({ ...DEFAULT_LIMITS }),
});

export type Config = z.infer<typeof configSchema>;
export type PortConfig = z.infer<typeof portSchema>;
export type TapPortConfig = z.infer<typeof tapPortSchema>;
export type SystemPortConfig = z.infer<typeof systemPortSchema>;
export type GrePortConfig = z.infer<typeof grePortSchema>;

function pathText(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s === '' ? String(p) : `.${String(p)}`;
  }
  return s === '' ? '(top level)' : s;
}

function describeValue(doc: unknown, path: readonly PropertyKey[]): string {
  let v: unknown = doc;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return '';
    v = (v as Record<PropertyKey, unknown>)[p as string];
  }
  if (v === undefined) return ', but it is missing';
  const text = JSON.stringify(v);
  return `, got ${text === undefined ? String(v) : text.length > 40 ? text.slice(0, 37) + '...' : text}`;
}

/** Validate a parsed document; throws ConfigError naming the first bad field. */
export function validateConfig(doc: unknown, source = 'config'): Config {
  const r = configSchema.safeParse(doc);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length ? `${pathText(issue.path)}: ` : '';
      throw new ConfigError(`${source}: ${where}unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`);
    }
    throw new ConfigError(`${source}: ${pathText(issue.path)}: ${issue.message}${describeValue(doc, issue.path)}`);
  }
  const cfg = r.data;
  const names = new Map<string, number>();
  const devices = new Map<string, number>();
  const tunnels = new Map<string, number>();
  cfg.ports.forEach((p, i) => {
    const prev = names.get(p.name);
    if (prev !== undefined) throw new ConfigError(`${source}: ports[${i}].name: duplicate port name "${p.name}" (also ports[${prev}])`);
    names.set(p.name, i);
    if (p.type === 'gre') {
      // Two tunnels to one remote must differ in key: a received packet names its tunnel by
      // (outer source, key).
      const id = `${p.remote_ip}/${p.key ?? 'none'}`;
      const prevTun = tunnels.get(id);
      if (prevTun !== undefined) throw new ConfigError(`${source}: ports[${i}].key: ports[${prevTun}] is already a GRE tunnel to ${p.remote_ip} with ${p.key === undefined ? 'no key' : `key ${p.key}`}`);
      const flowTun = tunnels.get(`${p.remote_ip}/flow`);
      if (flowTun !== undefined || (p.key === 'flow' && [...tunnels.keys()].some((k) => k.startsWith(`${p.remote_ip}/`)))) {
        throw new ConfigError(`${source}: ports[${i}].key: a GRE tunnel with key "flow" takes every key from ${p.remote_ip}: it must be the only tunnel to that remote`);
      }
      tunnels.set(id, i);
      return;
    }
    if (p.type === 'system' && p.mac !== undefined && p.tunnel_id === undefined) {
      throw new ConfigError(`${source}: ports[${i}].mac: on a system port, mac is the MAC of the host behind it and needs tunnel_id (limed does not change an existing device's MAC)`);
    }
    const dev = p.device ?? p.name;
    const prevDev = devices.get(dev);
    if (prevDev !== undefined) throw new ConfigError(`${source}: ports[${i}].device: device "${dev}" is already used by ports[${prevDev}]`);
    devices.set(dev, i);
  });
  checkPeering(cfg, source);
  checkHosts(cfg, source);
  return cfg;
}

/**
 * Hosts (ports with a tunnel_id) need a peer and its tunnel port: a GRE port with key
 * "flow" (a host's frames cross with its tunnel id as the key). Tunnel ids are unique, and
 * each host starts at one of the two sites.
 */
function checkHosts(cfg: Config, source: string): void {
  const ids = new Map<number, number>();
  let hosts = 0;
  cfg.ports.forEach((p, i) => {
    if (p.type === 'gre') return;
    if (p.tunnel_id === undefined) {
      if (p.site !== undefined) throw new ConfigError(`${source}: ports[${i}].site: only a host (a port with tunnel_id) has a starting site`);
      return;
    }
    hosts++;
    const prev = ids.get(p.tunnel_id);
    if (prev !== undefined) throw new ConfigError(`${source}: ports[${i}].tunnel_id: tunnel id ${p.tunnel_id} is already the id of ports[${prev}]`);
    ids.set(p.tunnel_id, i);
    if (cfg.peer === undefined) throw new ConfigError(`${source}: ports[${i}].tunnel_id: a host moves between two sites: set peer: { name, address, tunnel_port }`);
    const sites = [cfg.site, cfg.peer.name];
    if (p.site === undefined) throw new ConfigError(`${source}: ports[${i}].site: a host needs the site where it starts (${sites.join(' or ')})`);
    if (!sites.includes(p.site)) throw new ConfigError(`${source}: ports[${i}].site: expected ${sites.join(' or ')}, got ${JSON.stringify(p.site)}`);
  });
  const tp = cfg.peer?.tunnel_port;
  if (tp === undefined) {
    if (hosts > 0) throw new ConfigError(`${source}: peer.tunnel_port: hosts (ports with tunnel_id) need the port that carries their frames to the peer site`);
    return;
  }
  const port = cfg.ports.find((p) => p.name === tp);
  if (port === undefined) throw new ConfigError(`${source}: peer.tunnel_port: no port named "${tp}"`);
  if (port.type !== 'gre' || port.key !== 'flow') {
    throw new ConfigError(`${source}: peer.tunnel_port: port "${tp}" must be a gre port with key: flow (each host's frames cross with its tunnel id as the key)`);
  }
}

/**
 * The control channel's rules that span fields. The site whose name sorts first is the
 * writer of the logical table and accepts the connection; the other dials it (src/sync/).
 */
function checkPeering(cfg: Config, source: string): void {
  const { peer, listen, tls, insecure } = cfg;
  if (peer === undefined) {
    if (listen !== undefined) throw new ConfigError(`${source}: listen: there is no peer to listen for (set peer: { name, address })`);
    if (tls !== undefined) throw new ConfigError(`${source}: tls: there is no peer (set peer: { name, address })`);
    if (insecure) throw new ConfigError(`${source}: insecure: there is no peer (set peer: { name, address })`);
    return;
  }
  if (peer.name === cfg.site) throw new ConfigError(`${source}: peer.name: the peer must be another site than "${cfg.site}"`);
  if (cfg.site < peer.name && listen === undefined) {
    throw new ConfigError(
      `${source}: listen: this site ("${cfg.site}") sorts before its peer ("${peer.name}"), so it is the writer and accepts the peer's connection: set listen: "ADDR:PORT"`,
    );
  }
  if (tls !== undefined && insecure) throw new ConfigError(`${source}: insecure: set either tls or insecure: true, not both`);
  if (tls === undefined && !insecure) {
    throw new ConfigError(`${source}: tls: the control channel needs tls: { ca, cert, key } (mutual certificate authentication), or insecure: true on loopback`);
  }
  if (insecure) {
    for (const [field, text] of [['listen', listen], ['peer.address', peer.address]] as const) {
      if (text === undefined) continue;
      const host = parseHostPort(text)!.host;
      if (!isLoopbackHost(host)) {
        throw new ConfigError(`${source}: ${field}: insecure: true (plain TCP, no authentication) is allowed only on loopback, but ${field} is ${JSON.stringify(text)}; use tls: { ca, cert, key }`);
      }
    }
  }
}

/** Parse YAML/JSON text into a validated Config. */
export function parseConfig(text: string, source = 'config'): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = lineCounter.linePos(e.pos[0]);
    const where = line ? ` (line ${line.line}, column ${line.col})` : '';
    throw new ConfigError(`${source}: not valid YAML or JSON${where}: ${e.message.split('\n')[0]}`);
  }
  const value: unknown = doc.toJS();
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${source}: expected a mapping with at least "site" and "ports"`);
  }
  return validateConfig(value, source);
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`${file}: cannot read the configuration file (${code})`);
  }
  return parseConfig(text, file);
}
