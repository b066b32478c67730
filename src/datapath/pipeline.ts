/**
 * Pipeline — the flow-table data path: fast path (exact-match cache) in front of the slow
 * path (translation through the flow table), both feeding one executor.
 *
 * Order of work for one received batch (`process`), all synchronous, nothing allocated:
 *   1. read the table version once: every program used in this batch is from it;
 *   2. for each frame: parse headers into the batch's key row (extract; a malformed frame
 *      is dropped and counted by reason);
 *   3. hash the key's match words and look them up in the EMC; on a miss translate
 *      (xlate.ts) and insert the program (a program longer than an EMC entry is run from
 *      a scratch arena, uncached);
 *   4. run the program on the frame in place (execute.ts): credit the rules it traversed,
 *      rewrite, queue outputs, NORMAL, packet-in;
 *   5. end of batch: credit each rule once with the batch's packet and byte sums, then one
 *      send per output port.
 * A batch from the inter-site tunnel port (live migration) skips all of that: each frame is
 * delivered to the host its tunnel id names (Executor.deliverFromPeer).
 *
 * Management path (allocation allowed): `packetOut` runs an operator-given action list on
 * an operator-given frame through a one-frame scratch batch; `trace` translates a key with
 * tracing on and resolves the program into readable outputs, like `ovs-appctl
 * ofproto/trace`.
 */
import type { Action } from '../flow/types.js';
import { FrameBatch } from '../packet/batch.js';
import { DROP_REASON_COUNT, DROP_REASON_NAMES, DropReason } from '../packet/drop.js';
import { extract } from '../packet/extract.js';
import { K, KEY_WORDS } from '../packet/key.js';
import { INGRESS_TUNNEL_FLAG } from '../tunnel/logical.js';
import type { TableView } from '../table/types.js';
import { formatIpv4, formatMac } from '../util/addr.js';
import { DEFAULT_EMC_ENTRIES, DEFAULT_EMC_PROGRAM_WORDS, ExactMatchCache } from './emc.js';
import { Executor, type ExecutorOptions } from './execute.js';
import type { MacTable } from './mac-table.js';
import type { SwitchPort } from './switch.js';
import {
  DEFAULT_OPS_CAPACITY,
  MAX_LOOKUPS,
  OP,
  OP_OPERANDS,
  PACKET_IN_NO_MATCH,
  PROG_LEN,
  PROG_N_RULES,
  PROG_RULES,
  Translator,
  type TraceStep,
} from './xlate.js';

export interface PipelineOptions extends ExecutorOptions {
  /** EMC entries (a power of two). Default 8192. */
  emcEntries?: number;
  /** Program words per EMC entry. Default 64. */
  emcProgramWords?: number;
}

/** What `trace` returns: the lookups made, and what the frame would undergo. */
export interface TraceResult {
  steps: TraceStep[];
  /** Resolved ops in order, e.g. "output:2", "mod_dl_dst:…", "NORMAL → port 3 (learned)". */
  actions: string[];
  /** The rule ids credited, in order. */
  rules: number[];
  /** The key after every action ran. */
  finalKey: Uint32Array;
}

/** The frame handed to packetOut cannot be parsed; names the reason. */
export class PacketOutError extends Error {
  override readonly name = 'PacketOutError';
}

export class Pipeline {
  readonly emc: ExactMatchCache;
  readonly xlate: Translator;
  readonly exec: Executor;
  /** Frames whose program was too long for an EMC entry (run uncached). */
  nUncached = 0;
  /**
   * Called after each frame's cached program ran (the native fast path installs what its
   * engine may run: src/daemon/fast-path.ts): the frame's key row, and the program at
   * prog[base…]. Undefined unless the daemon runs the native fast path.
   */
  afterRun: ((key: Uint32Array, k: number, prog: Uint32Array, base: number, inPort: number) => void) | undefined = undefined;
  private readonly table: TableView;
  private readonly macTable: MacTable;
  private readonly ports: readonly (SwitchPort | undefined)[];
  private readonly drops: Float64Array;
  /** Programs too long for an EMC entry are written and run from here. */
  private readonly longProgram: Uint32Array;
  private outBatch: FrameBatch | undefined;

  constructor(
    table: TableView,
    ports: readonly (SwitchPort | undefined)[],
    drops: Float64Array,
    maxFrame: Uint32Array,
    macTable: MacTable,
    opts: PipelineOptions = {},
  ) {
    this.table = table;
    this.macTable = macTable;
    this.ports = ports;
    this.drops = drops;
    this.emc = new ExactMatchCache(opts.emcEntries ?? DEFAULT_EMC_ENTRIES, opts.emcProgramWords ?? DEFAULT_EMC_PROGRAM_WORDS);
    this.xlate = new Translator(table, DEFAULT_OPS_CAPACITY);
    this.exec = new Executor(ports, drops, maxFrame, macTable, table, opts);
    this.longProgram = new Uint32Array(PROG_RULES + MAX_LOOKUPS + 1 + DEFAULT_OPS_CAPACITY);
  }

  /** Forwards one received batch (see the order of work at the top of the file); returns its bytes. */
  process(batch: FrameBatch): number {
    const now = batch.time[0]!;
    const inPort = batch.inPort;
    const count = batch.count;
    const slab = batch.slab;
    const start = batch.start;
    const len = batch.len;
    const key = batch.key;
    const drop = batch.drop;
    const drops = this.drops;
    const exec = this.exec;
    const version = this.table.version;
    const tunneled = batch.tunneled;
    const tunKey = batch.tunKey;
    let rxBytes = 0;
    // A host the map places at the peer site sends here: it moved (its hypervisor's
    // gratuitous ARP, say). The hook makes it local before these frames are switched.
    if (exec.remoteVia[inPort] !== 0 && exec.onHostArrived !== undefined) exec.onHostArrived(inPort);
    if (exec.frozen && (exec.isHost[inPort] !== 0 || inPort === exec.interSitePort)) {
      // Stop-and-copy cut-over: nothing moves until the new site's table takes over.
      for (let i = 0; i < count; i++) rxBytes += len[i]!;
      drops[inPort * DROP_REASON_COUNT + DropReason.MIGRATION_FROZEN] += count;
      return rxBytes;
    }
    exec.begin(slab, now, inPort);
    const ingressVia = exec.ingressVia[inPort]!;
    if (ingressVia !== 0) {
      // Stop-and-copy at the new site: the old site's table switches this host's frames.
      const ingressKey = exec.ingressKey[inPort]!;
      for (let i = 0; i < count; i++) {
        rxBytes += len[i]!;
        exec.sendRaw(ingressVia, ingressKey, start[i]!, len[i]!);
      }
      exec.end();
      return rxBytes;
    }
    if (inPort === exec.interSitePort) {
      // From the peer site: a frame for one of our hosts, delivered as it is — or (stop-and-
      // copy) one a moved host sent there, switched here as if the host had sent it here.
      for (let i = 0; i < count; i++) {
        const size = len[i]!;
        rxBytes += size;
        const id = tunneled ? tunKey[i]! : -1;
        if ((id & INGRESS_TUNNEL_FLAG) === 0) {
          exec.deliverFromPeer(id, start[i]!, size);
          continue;
        }
        const host = exec.anyHostByTunnelId.get(id - INGRESS_TUNNEL_FLAG);
        if (host === undefined) {
          drops[inPort * DROP_REASON_COUNT + DropReason.TUNNEL_NO_HOST]++;
          continue;
        }
        exec.setInPort(host);
        const reason = this.forward(slab, start[i]!, size, key, i * KEY_WORDS, host, null, i, version);
        if (reason !== DropReason.NONE) drops[host * DROP_REASON_COUNT + reason]++;
        exec.setInPort(inPort);
      }
      exec.end();
      return rxBytes;
    }
    const reasonBase = inPort * DROP_REASON_COUNT;
    for (let i = 0; i < count; i++) {
      const off = start[i]!;
      const size = len[i]!;
      rxBytes += size;
      const reason = this.forward(slab, off, size, key, i * KEY_WORDS, inPort, tunneled ? tunKey : null, i, version);
      drop[i] = reason;
      if (reason !== DropReason.NONE) drops[reasonBase + reason]++;
    }
    exec.end();
    return rxBytes;
  }

  /**
   * One frame through the table: parse it into key row k, look it up in the EMC (translate
   * on a miss), run its program. `tunKeys[i]` is the key it came from a tunnel with (null:
   * not from a tunnel); passed as the column, not the value: a key of 2^30 or more would
   * be boxed into a heap number on every call. Returns the parse drop reason (NONE when
   * it was switched).
   */
  private forward(slab: Buffer, off: number, size: number, key: Uint32Array, k: number, inPort: number, tunKeys: Uint32Array | null, i: number, version: number): DropReason {
    const reason = extract(slab, off, size, key, k, inPort);
    if (reason !== DropReason.NONE) return reason;
    const emc = this.emc;
    const exec = this.exec;
    const progWords = emc.progWords;
    // A frame from a tunnel carries its key as tun_id (matchable, and what a `key: flow`
    // tunnel sends it with unless set_tunnel changes it).
    if (tunKeys !== null) key[k + K.TUN_ID] = tunKeys[i]!;
    exec.tunnel[0] = key[k + K.TUN_ID_HI]!;
    exec.tunnel[1] = key[k + K.TUN_ID]!;
    const h = emc.hash(key, k);
    let e = emc.lookup(key, k, version, h);
    if (e < 0) {
      const xlate = this.xlate;
      const progLen = xlate.translate(key, k);
      if (progLen > progWords) {
        xlate.writeProgram(this.longProgram, 0);
        this.nUncached++;
        exec.run(this.longProgram, 0, off, size, key[k + K.L3_OFF]!, key[k + K.L4_OFF]!);
        return DropReason.NONE;
      }
      e = emc.insert(key, k, version, h);
      xlate.writeProgram(emc.progs, e * progWords);
    }
    exec.run(emc.progs, e * progWords, off, size, key[k + K.L3_OFF]!, key[k + K.L4_OFF]!);
    if (this.afterRun !== undefined) this.afterRun(key, k, emc.progs, e * progWords, inPort);
    return DropReason.NONE;
  }

  /**
   * Runs `actions` on a copy of `frame` as if it had arrived on `inPort` (OFPP.CONTROLLER
   * or OFPP.NONE for none); management path. Throws PacketOutError for a frame that does
   * not parse or does not fit a slot.
   */
  packetOut(frame: Uint8Array, inPort: number, actions: readonly Action[], now: number): void {
    const b = (this.outBatch ??= new FrameBatch(1));
    if (frame.length > b.maxFrameSize) throw new PacketOutError(`packet-out frame of ${frame.length} bytes exceeds ${b.maxFrameSize}`);
    const off = b.start[0]!;
    b.slab.set(frame, off);
    b.len[0] = frame.length;
    b.count = 1;
    b.inPort = inPort;
    b.time[0] = now;
    const reason = extract(b.slab, off, frame.length, b.key, 0, inPort);
    if (reason !== DropReason.NONE) throw new PacketOutError(`packet-out frame does not parse: ${DROP_REASON_NAMES[reason]}`);
    this.xlate.translateActions(actions, b.key, 0);
    this.xlate.writeProgram(this.longProgram, 0);
    this.exec.begin(b.slab, now, inPort);
    this.exec.tunnel.fill(0);
    this.exec.run(this.longProgram, 0, off, frame.length, b.key[K.L3_OFF]!, b.key[K.L4_OFF]!);
    this.exec.end();
  }

  /**
   * Translates `key` (KEY_WORDS words, e.g. built from a packet description) with tracing
   * on; NORMAL is resolved against the MAC table as it is now (without learning).
   */
  trace(key: Uint32Array, now: number): TraceResult {
    if (key.length < KEY_WORDS) throw new RangeError(`trace key needs ${KEY_WORDS} words, got ${key.length}`);
    const steps: TraceStep[] = [];
    const xlate = this.xlate;
    xlate.traceSteps = steps;
    try {
      xlate.translate(key, 0);
    } finally {
      xlate.traceSteps = null;
    }
    const prog = new Uint32Array(xlate.length);
    xlate.writeProgram(prog, 0);
    const rules: number[] = [];
    for (let r = 0; r < prog[PROG_N_RULES]!; r++) rules.push(prog[PROG_RULES + r]!);
    return { steps, actions: this.describe(prog, now), rules, finalKey: xlate.finalKey() };
  }

  /** Readable form of a program's ops (management path). */
  describe(prog: Uint32Array, now: number): string[] {
    const out: string[] = [];
    const end = prog[PROG_LEN]!;
    let q = PROG_RULES + prog[PROG_N_RULES]!;
    while (q < end) {
      const op = prog[q]!;
      const a = (i: number): number => prog[q + i]!;
      switch (op) {
        case OP.OUTPUT:
          out.push(`output:${this.portName(a(1))}`);
          break;
        case OP.NORMAL: {
          const inPort = a(1);
          const vlan = a(2);
          if ((a(3) & 0x100) !== 0) {
            out.push('NORMAL → drop (multicast source)');
            break;
          }
          const dstHi = a(5);
          const learned = (dstHi & 0x100) === 0 ? this.macTable.lookup(dstHi, a(6), vlan, now) : -1;
          if (learned > 0) {
            out.push(
              learned === inPort
                ? `NORMAL → drop (${formatMac(dstHi, a(6))} learned on the in-port)`
                : `NORMAL → port ${this.portName(learned)} (learned)`,
            );
          } else {
            out.push(`NORMAL → flood${vlan !== 0 ? ` (vlan ${vlan})` : ''}`);
          }
          break;
        }
        case OP.FLOOD:
          out.push('FLOOD');
          break;
        case OP.ALL:
          out.push('ALL');
          break;
        case OP.LOCAL:
          out.push('LOCAL → drop (no local port)');
          break;
        case OP.CONTROLLER:
          out.push(
            `CONTROLLER:${a(1)} (reason ${a(4) === PACKET_IN_NO_MATCH ? 'no_match' : 'action'}, table ${a(2)})`,
          );
          break;
        case OP.DROP:
          out.push(`drop (${DROP_REASON_NAMES[a(1)] ?? a(1)})`);
          break;
        case OP.SET_TUNNEL:
          out.push(`set_tunnel:0x${((BigInt(a(1)) << 32n) | BigInt(a(2))).toString(16)}`);
          break;
        case OP.SET_DL_SRC:
          out.push(`mod_dl_src:${formatMac(a(1), a(2))}`);
          break;
        case OP.SET_DL_DST:
          out.push(`mod_dl_dst:${formatMac(a(1), a(2))}`);
          break;
        case OP.SET_NW_SRC:
          out.push(`mod_nw_src:${formatIpv4(a(1))}`);
          break;
        case OP.SET_NW_DST:
          out.push(`mod_nw_dst:${formatIpv4(a(1))}`);
          break;
        case OP.SET_NW_TOS:
          out.push(`mod_nw_tos:${a(1) & 0xfc}`);
          break;
        case OP.SET_NW_TTL:
          out.push(`set_field:${a(1)}->nw_ttl`);
          break;
        case OP.DEC_TTL:
        case OP.DEC_HLIM:
          out.push('dec_ttl');
          break;
        case OP.SET_TP_SRC:
          out.push(`mod_tp_src:${a(1)}`);
          break;
        case OP.SET_TP_DST:
          out.push(`mod_tp_dst:${a(1)}`);
          break;
        case OP.SET_IPV6_SRC:
        case OP.SET_IPV6_DST: {
          const words = [a(1), a(2), a(3), a(4)].map((w) => w.toString(16).padStart(8, '0')).join('');
          out.push(`set_field:${words.replace(/(.{4})(?!$)/g, '$1:')}->${op === OP.SET_IPV6_SRC ? 'ipv6_src' : 'ipv6_dst'}`);
          break;
        }
        case OP.SET_IPV6_TC:
          out.push(`mod_nw_tos:${a(1) & 0xfc}`);
          break;
        case OP.SET_HLIM:
          out.push(`set_field:${a(1)}->nw_ttl`);
          break;
        case OP.SET_VLAN_VID:
          out.push(`mod_vlan_vid:${a(1)}`);
          break;
        case OP.SET_VLAN_PCP:
          out.push(`mod_vlan_pcp:${a(1)}`);
          break;
        case OP.PUSH_VLAN:
          out.push(`push_vlan:0x${a(1).toString(16)},tci=0x${a(2).toString(16).padStart(4, '0')}`);
          break;
        case OP.POP_VLAN:
          out.push('pop_vlan');
          break;
        default:
          out.push(`op ${op}?`);
      }
      q += 1 + OP_OPERANDS[op]!;
      if (OP_OPERANDS[op] === undefined) break;
    }
    return out;
  }

  private portName(n: number): string {
    return this.ports[n]?.name ?? String(n);
  }
}
