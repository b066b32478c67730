/**
 * The lime schema at run time: loads src/proto/lime.proto (shipped with the package, found
 * by walking up from this module to the package root) with protobufjs, and exposes typed
 * encode/decode helpers for the envelopes. lime.proto is the one definition of the wire
 * format; the TypeScript interfaces below mirror it field for field (snake_case, as loaded
 * with `keepCase`), and are also the objects `limectl --json` prints.
 *
 * Decoding conventions (protobufjs `toObject` with longs as Number, enums as String,
 * defaults, oneofs): every scalar field is present (defaults filled), a oneof's chosen
 * member is named by its `body` discriminator, proto3 `optional` fields are present only
 * when set, a missing sub-message is filled with its defaults, keys come in .proto
 * declaration order, and unknown fields are ignored (a newer peer may send more). A body
 * this build does not know decodes as `body: undefined`; callers answer that with an
 * error, they do not crash. 64-bit counters become Numbers (exact up to 2^53).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** Version carried in every envelope (lime.proto rules: bump only for incompatible changes). */
export const PROTOCOL_VERSION = 1;

/** Where limed listens and limectl connects unless told otherwise (LIME_SOCKET, --socket, config). */
export const DEFAULT_MGMT_SOCKET = '/run/lime/limed.sock';

// ---------------------------------------------------------------------------------------
// Wire shapes (mirror lime.proto)

export type ErrorCode = 'CODE_UNSPECIFIED' | 'BAD_REQUEST' | 'NOT_FOUND' | 'ALREADY_EXISTS' | 'FAILED';

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

export type Empty = Record<string, never>;

export interface PortInfo {
  name: string;
  number: number;
  type: string;
  device: string;
  state: string;
  mtu: number;
  mac: string;
  rx_packets: number;
  rx_bytes: number;
  tx_packets: number;
  tx_bytes: number;
  drops: Record<string, number>;
  /** Type-specific settings (a gre port's remote_ip, key, path_mtu …); may be empty. */
  options: Record<string, string>;
}

export interface MacTableInfo {
  size: number;
  capacity: number;
  evictions: number;
  aging_seconds: number;
}

export interface ProcessInfo {
  pid: number;
  uptime_seconds: number;
  heap_used: number;
  rss: number;
  gc_count: number;
}

export interface ControlInfo {
  share_percent: number;
  saturated: boolean;
  deferred: number;
  waiting: number;
  cost_ms: number;
  saturated_windows: number;
  monitors_dropped: number;
}

export interface FastPathInfo {
  enabled: boolean;
  ports: string[];
  cache_used: number;
  cache_slots: number;
  rx: number;
  hits: number;
  upcalls: number;
  upcall_drops: number;
  installs: number;
  cache_full: number;
  invalidations: number;
}

export interface ShowReply {
  site: string;
  ports: PortInfo[];
  mac_table: MacTableInfo;
  process: ProcessInfo;
  control: ControlInfo;
  fast_path: FastPathInfo;
}

export interface FdbEntry {
  port: string;
  vlan: number;
  mac: string;
  age: number;
}

export interface FdbShowReply {
  entries: FdbEntry[];
}

export interface AddPortRequest {
  name: string;
  type: string;
  device?: string;
  mtu?: number;
  mac?: string;
}

export interface DelPortRequest {
  name: string;
}

export interface FlowText {
  flows: string[];
  lines: number[];
  source: string;
  more: boolean;
}

export type FlowModCommandName = 'ADD' | 'MODIFY' | 'MODIFY_STRICT' | 'DELETE' | 'DELETE_STRICT';

export interface FlowModsRequest {
  command: FlowModCommandName;
  text: FlowText;
}

export interface FlowModsReply {
  added: number;
  modified: number;
  removed: number;
}

export interface ReplaceFlowsRequest {
  text: FlowText;
  dry_run: boolean;
}

export interface FlowDiffReply {
  lines: string[];
  more: boolean;
  n_added: number;
  n_modified: number;
  n_removed: number;
}

export interface DumpFlowsRequest {
  match: string;
  strict: boolean;
  /** "" / "both" (the logical table), "local", "peer"; absent = "". */
  site?: string;
}

export interface FlowEntry {
  table: number;
  priority: number;
  cookie: string;
  match: string;
  actions: string;
  n_packets: number;
  n_bytes: number;
  duration_s: number;
  idle_timeout: number;
  hard_timeout: number;
  flags: string[];
}

export interface DumpFlowsReply {
  flows: FlowEntry[];
  more: boolean;
  local_only?: boolean;
}

export interface TraceRequest {
  packet: string;
}

export interface TraceStep {
  depth: number;
  table: number;
  in_port: string;
  miss: boolean;
  priority: number;
  cookie: string;
  match: string;
  actions: string;
}

export interface TraceReply {
  flow: string;
  steps: TraceStep[];
  actions: string[];
}

export interface PacketOutRequest {
  in_port: string;
  actions: string;
  packet: Uint8Array;
}

export interface PacketIn {
  table: number;
  cookie: string;
  in_port: string;
  in_port_number: number;
  total_len: number;
  data: Uint8Array;
  buffer_id: number;
  match: string;
}

export type MgmtEventKind = 'added' | 'modified' | 'deleted' | 'flow_removed' | 'packet_in' | 'dropped' | 'frame' | 'host_moved';

export interface CaptureRequest {
  port: string;
  snaplen: number;
}

export interface CapturedFrame {
  port: string;
  direction: string;
  len: number;
  data: Uint8Array;
}

/** A monitor event. Flow events carry `flow`; packet_in carries `packet_in`. */
export interface MgmtEvent {
  kind: MgmtEventKind;
  time: number;
  flow?: FlowEntry;
  reason: string;
  packet_in?: PacketIn;
  dropped: number;
  frame?: CapturedFrame;
  /** kind "host_moved": where a host went (live migration). */
  host_moved?: HostMoved;
}

export interface HostMoved {
  host: string;
  mac: string;
  from: string;
  to: string;
  cause: string;
}

interface Envelope {
  version: number;
  id: number;
}

export type MgmtRequestBody =
  | { body: 'show'; show: Empty }
  | { body: 'fdb_show'; fdb_show: Empty }
  | { body: 'add_port'; add_port: AddPortRequest }
  | { body: 'del_port'; del_port: DelPortRequest }
  | { body: 'flow_mods'; flow_mods: FlowModsRequest }
  | { body: 'replace_flows'; replace_flows: ReplaceFlowsRequest }
  | { body: 'dump_flows'; dump_flows: DumpFlowsRequest }
  | { body: 'trace'; trace: TraceRequest }
  | { body: 'monitor'; monitor: Empty }
  | { body: 'capture'; capture: CaptureRequest }
  | { body: 'packet_out'; packet_out: PacketOutRequest }
  | { body: 'peer_show'; peer_show: Empty }
  | { body: 'sync_barrier'; sync_barrier: Empty }
  | { body: 'migrate'; migrate: MigrateRequest }
  | { body: 'reload'; reload: Empty };

export type MgmtReplyBody =
  | { body: 'error'; error: ErrorBody }
  | { body: 'show'; show: ShowReply }
  | { body: 'fdb_show'; fdb_show: FdbShowReply }
  | { body: 'port'; port: PortInfo }
  | { body: 'ok'; ok: Empty }
  | { body: 'dump_flows'; dump_flows: DumpFlowsReply }
  | { body: 'trace'; trace: TraceReply }
  | { body: 'event'; event: MgmtEvent }
  | { body: 'flow_mods'; flow_mods: FlowModsReply }
  | { body: 'flow_diff'; flow_diff: FlowDiffReply }
  | { body: 'peer_show'; peer_show: PeerShowReply }
  | { body: 'sync_barrier'; sync_barrier: SyncBarrierReply }
  | { body: 'migrate'; migrate: MigrateStatus }
  | { body: 'reload'; reload: ReloadReply };

// Live migration (issue 6).

export interface MoveHostRequest {
  host: string;
  site: string;
  /** "command" (limectl) or "detected" (the host's MAC appeared at that site). */
  cause: string;
}

export interface MoveHostReply {
  host: string;
  from: string;
  to: string;
  seq: number;
}

export interface HostLocation {
  name: string;
  site: string;
  tunnel_id: number;
  mac: string;
}

export type MigrateRequest =
  | { action: 'host'; host: MoveHostRequest }
  | { action: 'status'; status: Empty }
  | { action: 'prepare'; prepare: MigrationPhase }
  | { action: 'finalize'; finalize: Empty }
  | { action: 'abort'; abort: Empty }
  | { action: 'plan'; plan: { window_ms: number; parallel: number } }
  | { action: 'run'; run: MigrateRunRequest };

export interface PlanStep {
  hosts: string[];
}

export interface MigrateRunRequest {
  steps: PlanStep[];
  to: string;
  strategy: string;
}

export interface MigratePlan {
  parallel: number;
  steps: PlanStep[];
  predicted_bytes: number;
  random_order_bytes: number;
  window_ms: number;
  traffic: Array<{ from: string; to: string; bytes: number }>;
}

export interface MigrationPhase {
  /** "moving" or "idle". */
  phase: string;
  from: string;
  to: string;
  strategy: string;
  /** The map at prepare (what abort returns the hosts to). */
  before: HostLocation[];
  /** With "idle": "finalized" or "aborted" ("" before any migration). */
  ended: string;
}

export interface MigrateStatus {
  site: string;
  peer: string;
  peer_connected: boolean;
  tunnel_port: string;
  hosts: HostLocation[];
  inter_site_tx_bytes: number;
  inter_site_rx_bytes: number;
  inter_site_tx_packets: number;
  inter_site_rx_packets: number;
  /** The move a `migrate host` made (defaults when the reply answers `status`). */
  moved: MoveHostReply;
  migration: MigrationPhase;
  flows: number;
  seq: number;
  plan: MigratePlan;
  archived_flows: number;
}

export interface PeerShowReply {
  configured: boolean;
  role: string;
  site: string;
  peer: string;
  connected: boolean;
  tls_identity: string;
  remote_address: string;
  rtt_ms?: number;
  seq: number;
  durable_seq: number;
  lag_entries?: number;
  lag_ms?: number;
  resyncs: number;
  last_resync_at?: number;
  log_id: string;
  state_dir: string;
  divergent: number;
  resumes: number;
  journal_bytes: number;
  compactions: number;
  window_cutoffs: number;
}

/** limectl reload: what the re-read configuration changed. */
export interface ReloadReply {
  config: string;
  ports_added: string[];
  ports_removed: string[];
  ports_changed: string[];
  /** "FIELD: OLD -> NEW" */
  settings_changed: string[];
}

export interface SyncBarrierReply {
  seq: number;
  peered: boolean;
}

export type MgmtRequest = Envelope & MgmtRequestBody;
export type MgmtReply = Envelope & MgmtReplyBody;

/** A decoded envelope whose body is absent or unknown to this build (a newer peer's). */
export type UnknownBody = Envelope & { body: undefined };

// ---------------------------------------------------------------------------------------
// Loading

/** The package root: the nearest directory above this module holding package.json. */
function findPackageRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) {
      throw new Error(`lime: no package.json above ${start}; cannot locate src/proto/lime.proto`);
    }
  }
}

/** Absolute path of lime.proto (it ships with the package; dist/ does not copy it). */
export const PROTO_PATH = join(findPackageRoot(), 'src', 'proto', 'lime.proto');

function loadRoot(): protobuf.Root {
  if (!existsSync(PROTO_PATH)) {
    throw new Error(`lime: schema ${PROTO_PATH} is missing (is the package installed completely?)`);
  }
  const root = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
  root.resolveAll();
  return root;
}

export const root: protobuf.Root = loadRoot();

export const MgmtRequestType: protobuf.Type = root.lookupType('lime.v1.MgmtRequest');
export const MgmtReplyType: protobuf.Type = root.lookupType('lime.v1.MgmtReply');

/** Conversion used by every decode helper. */
export const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

// ---------------------------------------------------------------------------------------
// Encode / decode

/** Bytes that are not a valid encoding of the expected message. */
export class MessageDecodeError extends Error {
  constructor(
    readonly messageType: string,
    message: string,
  ) {
    super(message);
    this.name = 'MessageDecodeError';
  }
}

/** Encode a plain object (enum values by name) as `type`. */
export function encodeMessage(type: protobuf.Type, value: object): Uint8Array {
  return type.encode(type.fromObject(value as Record<string, unknown>)).finish();
}

/** Decode `bytes` as `type` into a plain object (see the conventions at the top). */
export function decodeMessage(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  let message: protobuf.Message;
  try {
    message = type.decode(bytes);
  } catch (err) {
    throw new MessageDecodeError(type.name, `cannot decode ${type.name}: ${(err as Error).message}`);
  }
  return normalize(type, type.toObject(message, TO_OBJECT_OPTIONS));
}

/**
 * Rebuild a toObject result in declaration order, filling absent sub-messages with their
 * defaults and replacing unknown enum numbers by the enum's zero value name.
 */
function normalize(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const value = obj[field.name];
    if (value === undefined) continue; // unset oneof member or proto3 optional
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) {
      if (field.map) {
        const m: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) m[k] = normalize(rt, v as Record<string, unknown>);
        out[field.name] = m;
      } else if (field.repeated) {
        out[field.name] = (value as Record<string, unknown>[]).map((v) => normalize(rt, v));
      } else {
        const v = value === null ? rt.toObject(rt.create(), TO_OBJECT_OPTIONS) : (value as Record<string, unknown>);
        out[field.name] = normalize(rt, v);
      }
    } else if (rt instanceof protobuf.Enum) {
      const zero = rt.valuesById[0] ?? '';
      const fix = (v: unknown): unknown => (typeof v === 'number' ? (rt.valuesById[v] ?? zero) : v);
      out[field.name] = field.repeated ? (value as unknown[]).map(fix) : fix(value);
    } else {
      out[field.name] = value;
    }
  }
  for (const oneof of type.oneofsArray) {
    if (oneof.name.startsWith('_')) continue; // synthetic oneof of a proto3 `optional`
    if (obj[oneof.name] !== undefined) out[oneof.name] = obj[oneof.name];
  }
  return out;
}

function knownBody<T extends { body: string }>(decoded: Record<string, unknown>, type: protobuf.Type): T | UnknownBody {
  const body = decoded['body'];
  if (typeof body === 'string' && type.oneofs?.['body']?.oneof.includes(body)) return decoded as unknown as T;
  return { ...(decoded as unknown as Envelope), body: undefined };
}

export function encodeMgmtRequest(request: MgmtRequest): Uint8Array {
  return encodeMessage(MgmtRequestType, request);
}

export function decodeMgmtRequest(bytes: Uint8Array): MgmtRequest | UnknownBody {
  return knownBody<MgmtRequest>(decodeMessage(MgmtRequestType, bytes), MgmtRequestType);
}

export function encodeMgmtReply(reply: MgmtReply): Uint8Array {
  return encodeMessage(MgmtReplyType, reply);
}

export function decodeMgmtReply(bytes: Uint8Array): MgmtReply | UnknownBody {
  return knownBody<MgmtReply>(decodeMessage(MgmtReplyType, bytes), MgmtReplyType);
}

// ---------------------------------------------------------------------------------------
// Site-to-site channel (PeerMessage, lime.proto)

export const PeerMessageType: protobuf.Type = root.lookupType('lime.v1.PeerMessage');

export interface PeerHello {
  protocol_version: number;
  site: string;
  capabilities: string[];
  dead_peer_ms: number;
  log_id: string;
  applied_seq: number;
}

export interface PeerHelloReply {
  accepted: boolean;
  reason: string;
  protocol_version: number;
  site: string;
  capabilities: string[];
  dead_peer_ms: number;
  log_id: string;
  applied_seq: number;
}

export interface Heartbeat {
  sent_at: number;
  reply: boolean;
}

export interface PeerGoodbye {
  code: ErrorCode;
  reason: string;
}

/** One operation of the logical table (lime.proto ReplEntry's `op`). */
export type ReplOp =
  | { op: 'flow_mods'; flow_mods: FlowModsRequest }
  | { op: 'replace_flows'; replace_flows: ReplaceFlowsRequest }
  | { op: 'move_host'; move_host: MoveHostRequest }
  | { op: 'migration'; migration: MigrationPhase }
  | { op: 'archive'; archive: CounterArchive };

export interface CounterArchive {
  from: string;
  flows: Array<{ flow: string; n_packets: number; n_bytes: number }>;
}

export type ReplEntry = { seq: number; time: number } & ReplOp;

export interface ReplSnapshot {
  log_id: string;
  seq: number;
  time: number;
  flows: FlowEntry[];
  /** Flows packed in binary (flow/pack.ts), one element per chunk; decodes as [] when absent. */
  packed?: Uint8Array[];
  more: boolean;
  /** The location map at `seq` (first chunk only; decodes as [] when absent). */
  hosts?: HostLocation[];
  migration?: MigrationPhase;
}

export type ForwardResult =
  | { result: 'error'; error: ErrorBody }
  | { result: 'flow_mods'; flow_mods: FlowModsReply }
  | { result: 'flow_diff'; flow_diff: FlowDiffReply }
  | { result: 'move_host'; move_host: MoveHostReply }
  | { result: 'migration'; migration: MigrationPhase }
  | { result: 'archive'; archive: { applied: number } };

export type ForwardReply = { id: number; seq: number } & ForwardResult;

export type PeerBody =
  | { body: 'hello'; hello: PeerHello }
  | { body: 'hello_reply'; hello_reply: PeerHelloReply }
  | { body: 'heartbeat'; heartbeat: Heartbeat }
  | { body: 'entries'; entries: { entries: Uint8Array[] } }
  | { body: 'entry_part'; entry_part: { seq: number; total: number; data: Uint8Array } }
  | { body: 'ack'; ack: { applied_seq: number; durable_seq: number } }
  | { body: 'snapshot'; snapshot: ReplSnapshot }
  | { body: 'forward'; forward: { id: number; request: ReplEntry } }
  | { body: 'forward_reply'; forward_reply: ForwardReply }
  | { body: 'barrier'; barrier: { id: number } }
  | { body: 'barrier_reply'; barrier_reply: { id: number; seq: number } }
  | { body: 'goodbye'; goodbye: PeerGoodbye }
  | { body: 'flow_stats'; flow_stats: { id: number; request: DumpFlowsRequest } }
  | { body: 'flow_stats_reply'; flow_stats_reply: { id: number; flows: FlowEntry[]; more: boolean; error: string } }
  | { body: 'event'; event: MgmtEvent }
  | { body: 'idle_usage'; idle_usage: { flows: Array<{ flow: string; ago_ms: number }> } };

export type PeerMessage = { version: number } & PeerBody;

export function encodePeerMessage(message: PeerMessage): Uint8Array {
  return encodeMessage(PeerMessageType, message);
}

export const ReplEntryType: protobuf.Type = root.lookupType('lime.v1.ReplEntry');
export const ReplSnapshotType: protobuf.Type = root.lookupType('lime.v1.ReplSnapshot');

/** A journal record: one entry (the journal stores them as bytes). */
export function encodeReplEntry(entry: ReplEntry): Uint8Array {
  return encodeMessage(ReplEntryType, entry);
}

/** Throws MessageDecodeError; an entry whose op this build does not know has `op: undefined`. */
export function decodeReplEntry(bytes: Uint8Array): ReplEntry | ({ seq: number; time: number } & { op: undefined }) {
  const d = decodeMessage(ReplEntryType, bytes);
  const op = d['op'];
  if (op === 'flow_mods' || op === 'replace_flows' || op === 'move_host' || op === 'migration' || op === 'archive') return d as unknown as ReplEntry;
  return { seq: d['seq'] as number, time: d['time'] as number, op: undefined };
}

export function encodeReplSnapshot(snapshot: ReplSnapshot): Uint8Array {
  return encodeMessage(ReplSnapshotType, snapshot);
}

export function decodeReplSnapshot(bytes: Uint8Array): ReplSnapshot {
  return decodeMessage(ReplSnapshotType, bytes) as unknown as ReplSnapshot;
}

/** Throws MessageDecodeError for bytes that are not a PeerMessage; an unknown body decodes as `body: undefined`. */
export function decodePeerMessage(bytes: Uint8Array): PeerMessage | UnknownBody {
  return knownBody<PeerMessage>(decodeMessage(PeerMessageType, bytes), PeerMessageType);
}
