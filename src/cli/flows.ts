/**
 * limectl's flow-table helpers: reading flow files, validating flow text locally (syntax
 * only: port names are accepted as they come — limed resolves them with its own ports and
 * answers an unknown one with the same column-pointing error), splitting large inputs into
 * chunks that fit a message, and the human printers (ovs-ofctl layouts) for dump-flows,
 * diff-flows, dump-ports, monitor and trace.
 */
import { readFileSync } from 'node:fs';
import { FlowSyntaxError, parseActions, parseFlowMod, parsePacket } from '../flow/parse.js';
import { formatDuration } from '../flow/print.js';
import type { PortNames } from '../flow/types.js';
import type { FlowEntry, FlowText, MgmtEvent, PortInfo, TraceReply } from '../proto/schema.js';

/** Flow text that does not parse locally, or a bad flow file line: exit 2 (bad usage). */
export class FlowInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlowInputError';
  }
}

/** A flow file that cannot be read: exit 1 (runtime failure, like cat or ovs-ofctl). */
export class FlowFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlowFileError';
  }
}

/** Accepts any port name (limed checks names against its ports). */
export const PERMISSIVE_PORTS: PortNames = {
  numberOf: () => 1,
  nameOf: () => undefined,
};

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function syntaxError(where: string, err: FlowSyntaxError): FlowInputError {
  return new FlowInputError(`${where === '' ? '' : `${where}: `}${err.message}\n${indent(err.caret)}`);
}

/** Check one flow's syntax locally; throws FlowInputError with the caret. */
export function checkFlow(text: string, command: 'add' | 'modify' | 'delete', where = ''): void {
  try {
    parseFlowMod(text, { command, ports: PERMISSIVE_PORTS });
  } catch (err) {
    if (err instanceof FlowSyntaxError) throw syntaxError(where, err);
    throw err;
  }
}

export function checkPacket(text: string): void {
  try {
    parsePacket(text, PERMISSIVE_PORTS);
  } catch (err) {
    if (err instanceof FlowSyntaxError) throw syntaxError('', err);
    throw err;
  }
}

export function checkActions(text: string, where: string): void {
  try {
    parseActions(text, PERMISSIVE_PORTS);
  } catch (err) {
    if (err instanceof FlowSyntaxError) throw syntaxError(where, err);
    throw err;
  }
}

export interface FlowFile {
  source: string;
  flows: string[];
  lines: number[];
}

/**
 * Read a flow file: one flow per line; `#` starts a comment (to the end of the line, as
 * ovs-ofctl reads it); blank lines are skipped. Every flow is checked locally, so a bad line
 * fails with its line number and column before anything is sent.
 */
export function readFlowFile(path: string, command: 'add' | 'modify' | 'delete' = 'add'): FlowFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new FlowFileError(`cannot read flow file ${path}: ${why}`);
  }
  const flows: string[] = [];
  const lines: number[] = [];
  const all = text.split('\n');
  for (let i = 0; i < all.length; i++) {
    let line = all[i]!;
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.replace(/\s+$/, '');
    if (line.trim() === '') continue;
    checkFlow(line, command, `${path} line ${i + 1}`);
    flows.push(line);
    lines.push(i + 1);
  }
  return { source: path, flows, lines };
}

/** Bytes of flow text per chunk: well under MAX_MESSAGE_BYTES (1 MiB) with the framing. */
export const CHUNK_BYTES = 768 * 1024;

/** Split flows into FlowText chunks of at most CHUNK_BYTES, `more` set on all but the last. */
export function chunkFlows(file: FlowFile, chunkBytes = CHUNK_BYTES): FlowText[] {
  const out: FlowText[] = [];
  let cur: FlowText = { flows: [], lines: [], source: file.source, more: true };
  let bytes = 0;
  for (let i = 0; i < file.flows.length; i++) {
    const flow = file.flows[i]!;
    const n = Buffer.byteLength(flow) + 8;
    if (cur.flows.length > 0 && bytes + n > chunkBytes) {
      out.push(cur);
      cur = { flows: [], lines: [], source: file.source, more: true };
      bytes = 0;
    }
    cur.flows.push(flow);
    cur.lines.push(file.lines[i]!);
    bytes += n;
  }
  cur.more = false;
  out.push(cur);
  return out;
}

// ---------------------------------------------------------------------------------------
// Printers

const DEFAULT_PRIORITY = 32768;

/** priority and match as ovs-ofctl joins them ("priority=100,ip", "" for a default catch-all). */
function priorityMatch(f: { priority: number; match: string }): string {
  const parts: string[] = [];
  if (f.priority !== DEFAULT_PRIORITY) parts.push(`priority=${f.priority}`);
  if (f.match !== '') parts.push(f.match);
  return parts.join(',');
}

/** One dump-flows line, in ovs-ofctl's layout (flow/print.ts formatFlow with counters). */
export function formatDumpLine(f: FlowEntry): string {
  let s = ` cookie=${f.cookie}, duration=${formatDuration(f.duration_s)}, table=${f.table}, n_packets=${f.n_packets}, n_bytes=${f.n_bytes}, `;
  if (f.idle_timeout !== 0) s += `idle_timeout=${f.idle_timeout}, `;
  if (f.hard_timeout !== 0) s += `hard_timeout=${f.hard_timeout}, `;
  for (const flag of f.flags) s += `${flag} `;
  const pm = priorityMatch(f);
  s += pm;
  return `${s}${pm === '' ? '' : ' '}actions=${f.actions}`;
}

/** dump-flows --json: the contract fields, in the contract order. */
export function flowJson(f: FlowEntry): Record<string, unknown> {
  return {
    table: f.table,
    priority: f.priority,
    cookie: f.cookie,
    match: f.match,
    actions: f.actions,
    n_packets: f.n_packets,
    n_bytes: f.n_bytes,
    duration_s: f.duration_s,
    idle_timeout: f.idle_timeout,
    hard_timeout: f.hard_timeout,
    flags: f.flags,
  };
}

/** The non-counter part of a flow as monitor prints it. */
function monitorFlow(f: FlowEntry, withActions: boolean): string {
  let s = `table=${f.table} cookie=${f.cookie}`;
  if (f.idle_timeout !== 0) s += ` idle_timeout=${f.idle_timeout}`;
  if (f.hard_timeout !== 0) s += ` hard_timeout=${f.hard_timeout}`;
  for (const flag of f.flags) s += ` ${flag}`;
  const pm = priorityMatch(f);
  if (pm !== '') s += ` ${pm}`;
  if (withActions) s += ` actions=${f.actions}`;
  return s;
}

const SHORT_REASON: Record<string, string> = { idle_timeout: 'idle', hard_timeout: 'hard', delete: 'delete' };

function hexOf(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
}

/** One monitor line (like ovs-ofctl monitor: NXST_FLOW_MONITOR updates, flow-removed, packet-in). */
export function formatEvent(e: MgmtEvent): string {
  const f = e.flow;
  switch (e.kind) {
    case 'added':
      return `event=ADDED ${monitorFlow(f!, true)}`;
    case 'modified':
      return `event=MODIFIED ${monitorFlow(f!, true)}`;
    case 'deleted':
      return `event=DELETED reason=${SHORT_REASON[e.reason] ?? e.reason} ${monitorFlow(f!, true)} n_packets=${f!.n_packets} n_bytes=${f!.n_bytes}`;
    case 'flow_removed': {
      const pm = priorityMatch(f!);
      let s = `OFPT_FLOW_REMOVED: ${pm === '' ? '' : `${pm} `}reason=${SHORT_REASON[e.reason] ?? e.reason} table_id=${f!.table} cookie=${f!.cookie} duration=${formatDuration(f!.duration_s)}`;
      if (f!.idle_timeout !== 0) s += ` idle_timeout=${f!.idle_timeout}`;
      if (f!.hard_timeout !== 0) s += ` hard_timeout=${f!.hard_timeout}`;
      return `${s} pkts=${f!.n_packets} bytes=${f!.n_bytes}`;
    }
    case 'packet_in': {
      const p = e.packet_in!;
      return (
        `NXT_PACKET_IN2: table_id=${p.table} cookie=${p.cookie} total_len=${p.total_len} in_port=${p.in_port} ` +
        `(via ${e.reason}) data_len=${p.data.length} (unbuffered) data=${hexOf(p.data)}`
      );
    }
    case 'dropped':
      return `event=DROPPED n=${e.dropped}`;
    case 'host_moved': {
      const m = e.host_moved!;
      return `event=HOST_MOVED host=${m.host}${m.mac !== '' ? ` mac=${m.mac}` : ''} from=${m.from} to=${m.to} cause=${m.cause}`;
    }
    default:
      return `event=${String(e.kind).toUpperCase()}`;
  }
}

/** monitor --json: one object per event, shaped by its kind. */
export function eventJson(e: MgmtEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { event: e.kind, time: e.time };
  if (e.kind === 'deleted' || e.kind === 'flow_removed') out['reason'] = e.reason;
  if (e.kind === 'added' || e.kind === 'modified' || e.kind === 'deleted' || e.kind === 'flow_removed') out['flow'] = flowJson(e.flow!);
  if (e.kind === 'packet_in') {
    const p = e.packet_in!;
    out['reason'] = e.reason;
    out['packet_in'] = {
      table: p.table,
      cookie: p.cookie,
      in_port: p.in_port,
      in_port_number: p.in_port_number,
      total_len: p.total_len,
      data_len: p.data.length,
      buffer_id: p.buffer_id,
      match: p.match,
      data: hexOf(p.data),
    };
  }
  if (e.kind === 'dropped') out['dropped'] = e.dropped;
  if (e.kind === 'host_moved') out['host_moved'] = e.host_moved;
  return out;
}

/** ovs-appctl ofproto/trace layout. */
export function formatTrace(t: TraceReply): string {
  let out = `Flow: ${t.flow}\n\nbridge("lime")\n--------------\n`;
  for (const s of t.steps) {
    const pad = ' '.repeat(4 * s.depth);
    if (s.miss) {
      out += `${pad}${String(s.table).padStart(2)}. No match.\n${pad}    drop\n`;
      continue;
    }
    const m = priorityMatch({ priority: DEFAULT_PRIORITY, match: s.match });
    out += `${pad}${String(s.table).padStart(2)}. ${m === '' ? '' : `${m}, `}priority ${s.priority}${s.cookie !== '0x0' ? `, cookie ${s.cookie}` : ''}\n`;
    out += `${pad}    ${s.actions}\n`;
  }
  out += `\nDatapath actions: ${t.actions.length === 0 ? 'drop' : t.actions.join(', ')}\n`;
  return out;
}

/** Drop reasons counted on the transmit side (the rest are receive-side drops). */
const TX_DROP_REASONS = new Set(['tx_queue_full', 'port_down', 'tx_error']);

export interface PortStats {
  port: number;
  name: string;
  rx_packets: number;
  rx_bytes: number;
  rx_dropped: number;
  tx_packets: number;
  tx_bytes: number;
  tx_dropped: number;
  drops: Record<string, number>;
}

export function portStats(p: PortInfo): PortStats {
  let rx = 0;
  let tx = 0;
  for (const [reason, n] of Object.entries(p.drops)) {
    if (TX_DROP_REASONS.has(reason)) tx += n;
    else rx += n;
  }
  return {
    port: p.number,
    name: p.name,
    rx_packets: p.rx_packets,
    rx_bytes: p.rx_bytes,
    rx_dropped: rx,
    tx_packets: p.tx_packets,
    tx_bytes: p.tx_bytes,
    tx_dropped: tx,
    drops: p.drops,
  };
}

/** ovs-ofctl dump-ports layout. */
export function formatPortStats(stats: PortStats[]): string {
  let out = `OFPST_PORT reply: ${stats.length} port${stats.length === 1 ? '' : 's'}\n`;
  for (const s of stats) {
    const label = `  port  ${s.name}: `;
    out += `${label}rx pkts=${s.rx_packets}, bytes=${s.rx_bytes}, drop=${s.rx_dropped}, errs=0, frame=0, over=0, crc=0\n`;
    out += `${' '.repeat(label.length)}tx pkts=${s.tx_packets}, bytes=${s.tx_bytes}, drop=${s.tx_dropped}, errs=0, coll=0\n`;
  }
  return out;
}

/** A frame given as hex (spaces, colons and a 0x prefix allowed); undefined when not hex. */
export function parseFrameHex(text: string): Uint8Array | undefined {
  const h = text.replace(/^0x/i, '').replace(/[\s:.]/g, '');
  if (h.length === 0 || h.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(h)) return undefined;
  return Uint8Array.from(Buffer.from(h, 'hex'));
}
