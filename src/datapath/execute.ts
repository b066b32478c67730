/**
 * Executor — runs translated programs (xlate.ts) on frames in place, and owns everything
 * that happens between "the program says output" and "the port sends": per-port output
 * queues, the output-copy slab, rule-counter accumulation, packet-in rate limiting.
 *
 * Order of work for one batch (the pipeline calls these):
 *   1. begin(slab, now, inPort): reset the copy slab and the per-batch accumulators;
 *   2. run(prog, base, frame …) for each frame: credit every rule in the program's header
 *      (accumulated per rule, not per frame), then run the ops in order on the frame's
 *      bytes in the slab;
 *   3. end(): credit each rule once with the batch's sums (TableView.credit), then flush
 *      every port that got frames (one send per port; two when it also got copies).
 *
 * Output-copy semantics (OpenFlow): each output sends the frame as it is at that point of
 * the action list. Output only appends (offset, size) to the port's TxQueue and the send
 * happens at end(), so bytes that have been queued must not change: a rewrite that follows
 * an output first copies the frame into the COPY SLAB (with fresh headroom) and goes on
 * rewriting the copy. Copies are queued per port in `copyTx` and sent with a second flush
 * from the copy slab. When the copy slab is full the frame's remaining ops are dropped
 * (`output_copy_exhausted`). Once queued, bytes never change, so a port queue that fills
 * up can be flushed early without harm.
 *
 * Rewrites patch checksums incrementally (RFC 1624): IPv4 header checksum; TCP/UDP
 * checksums for port changes and, through the pseudo-header, for address changes; an
 * IPv4 UDP checksum of 0 (none) stays 0, and a computed 0 is sent as 0xffff (RFC 768).
 * VLAN push = `off -= 4` into the headroom and move the 12 MAC bytes (copyWithin), pop =
 * the reverse; header offsets (absolute in the slab) do not change either way.
 *
 * NORMAL: learn (VLAN, source MAC) → in-port once per frame, look the destination up,
 * unicast to the learned port or flood to every up port but the in-port, as Open vSwitch's
 * NORMAL does. A multicast source is dropped by NORMAL (`src_mac_multicast`).
 *
 * CONTROLLER: the `onPacketIn` hook is called synchronously with a view of the frame as
 * it is at that point (slab, offset, size — the bytes are valid only during the call; the
 * hook copies what it keeps), rate-limited by a token bucket (`packet_in_rate` drops).
 *
 * Cost model: per frame, a loop over the program's words; per batch, one credit per rule
 * and one flush per port. Nothing allocates (the credit columns grow by doubling when a
 * higher rule id shows up, which stops once the largest id has been seen).
 */
import { HEADROOM, TxQueue, BATCH_MAX } from '../packet/batch.js';
import { rd16, rd32, wr16, wr32 } from '../packet/bytes.js';
import { DROP_REASON_COUNT, DropReason } from '../packet/drop.js';
import { checksumUpdate16, checksumUpdate32 } from '../util/checksum.js';
import type { Mac } from '../util/addr.js';
import { ETH_HEADER_SIZE, ETH_TYPE_IPV4 } from '../packet/constants.js';
import { isVlanTpid } from '../packet/vlan.js';
import { buildFragNeeded, FRAG_NEEDED_MAX_SIZE } from '../tunnel/icmp.js';
import { FLOOD_EXCEPT_FLAG, FLOOD_TUNNEL_ID } from '../tunnel/logical.js';
import type { TableView } from '../table/types.js';
import type { MacTable } from './mac-table.js';
import type { SwitchPort } from './switch.js';
import { FIRST_WRITE_OP, L4_ICMPV6, L4_TCP, L4_UDP, OP, OP_OPERANDS, PACKET_IN_NO_MATCH, PROG_LEN, PROG_N_RULES, PROG_RULES } from './xlate.js';

export type PacketInReason = 'action' | 'no_match';

/**
 * Called for each frame a CONTROLLER action sends to the controller. `slab[offset …
 * offset+size)` is the frame as modified so far (valid only during the call); `maxLen` is
 * the action's max_len (65535 = all). `ruleId` is -1 for a packet-out's own actions.
 */
export type PacketInHook = (
  slab: Buffer,
  offset: number,
  size: number,
  inPort: number,
  reason: PacketInReason,
  table: number,
  ruleId: number,
  maxLen: number,
  /**
   * During a migration, a rule that both forwards and sends to the controller only sends
   * (LIME §4.2.2): the frame is held, and the hook forwards it once the event is out.
   */
  held?: boolean,
) => void;

export interface ExecutorOptions {
  onPacketIn?: PacketInHook;
  /** Packet-ins per second (token bucket rate). Default 1000. */
  packetInRate?: number;
  /** Token bucket depth. Default 100. */
  packetInBurst?: number;
  /** Bytes of the output-copy slab. Default: 4 copies of a 2 KiB slot per batch frame. */
  copySlabSize?: number;
  /** Source MAC of the ICMP "fragmentation needed" answers the tunnels send. */
  icmpSourceMac?: Mac;
}

/** Default source MAC of the data path's own ICMP answers: locally administered "lime". */
export const DEFAULT_ICMP_SOURCE_MAC: Mac = { hi: 0x026c, lo: 0x696d6500 };

const OFF_ABSENT = 0xffff;
const MAX_SIGNED_RULE = 0x7fffffff;

export class Executor {
  onPacketIn: PacketInHook | undefined;
  packetInRate: number;
  packetInBurst: number;
  /** Packet-in hook calls that threw (the frame is not affected). */
  nPacketInErrors = 0;
  nPacketIns = 0;
  /** Frames copied for output-copy semantics. */
  nCopies = 0;
  /** ICMP "fragmentation needed" answers sent for frames too big for a tunnel. */
  nFragNeeded = 0;
  /**
   * Per output port: the largest inner frame its tunnel carries without fragmenting (0 =
   * not a tunnel, or one that fragments), and the IPv4 source of its ICMP answers (0 = the
   * too-big packet's own destination). The switch fills both when a port is added.
   */
  readonly tunnelMax: Uint32Array;
  readonly tunnelIcmpSrc: Uint32Array;
  private readonly icmpMac: Mac;

  private readonly ports: readonly (SwitchPort | undefined)[];
  private readonly drops: Float64Array;
  private readonly maxFrame: Uint32Array;
  private readonly macTable: MacTable;
  private readonly table: TableView;
  private floodList: Int32Array = new Int32Array(0);
  private allList: Int32Array = new Int32Array(0);

  // Per batch.
  private slab: Buffer = Buffer.alloc(0);
  /** The batch's time (ms), in an array so that a large value is never boxed (see MacTable.learnFrom). */
  private readonly clock = new Float64Array(1);
  private inPort = 0;
  private dropBase = 0;
  private readonly copySlab: Buffer;
  private copyPos = 0;
  private readonly copyTx: (TxQueue | undefined)[] = [];
  private readonly dirty: Int32Array;
  private readonly dirtyMark: Uint8Array;
  private nDirty = 0;

  // Rule credits accumulated over the batch.
  private creditPackets = new Float64Array(1024);
  private creditBytes = new Float64Array(1024);
  private touched = new Int32Array(1024);
  private nTouched = 0;

  // Packet-in token bucket.
  private tokens: number;
  private lastRefill = Number.NEGATIVE_INFINITY;

  /**
   * The current frame's tun_id, [high word, low word]: the key it arrived with from a tunnel
   * (the pipeline sets it before each run), then whatever set_tunnel sets. Outputs queue
   * its low 32 bits with the frame: a `key: flow` GRE port sends that as the GRE key.
   */
  readonly tunnel = new Uint32Array(2); // [hi, lo]: typed, so a large key is never boxed
  /** The tunnel key of the frame `queue` is about to queue (typed, for the same reason). */
  private readonly outKey = new Uint32Array(1);

  /**
   * Hosts at the peer site (live migration, LIME's tunnel at egress): per port, the
   * inter-site tunnel port that output to it goes to instead (0 = the port is here), and
   * the host's tunnel id, sent as the frame's key. Kept by the switch from the location map.
   */
  readonly remoteVia: Int32Array;
  readonly remoteKey: Uint32Array;
  /** The inter-site tunnel port (0 = none): frames from it are delivered, never switched. */
  interSitePort = 0;
  /** Hosts here by tunnel id: where a frame from the peer site goes. */
  readonly hostByTunnelId = new Map<number, number>();
  /** Hosts here: where a flooded frame from the peer site goes. */
  localHosts: Int32Array = new Int32Array(0);
  /** Every host by tunnel id, here or not (stop-and-copy: whose frame the peer sent to our table). */
  readonly anyHostByTunnelId = new Map<number, number>();
  /**
   * Stop-and-copy at the new site: per host port, the inter-site port its frames go to
   * unswitched (0 = switched here), with INGRESS_TUNNEL_FLAG | its tunnel id.
   */
  readonly ingressVia: Int32Array;
  readonly ingressKey: Uint32Array;
  /** Stop-and-copy cut-over: hosts' frames and the peer's are dropped (migration_frozen). */
  frozen = false;
  /**
   * A migration is under way: a program that both outputs and sends to the controller only
   * sends to the controller, with the frame marked held (PacketInHook), so that the event
   * reaches the controller before the frame reaches anyone (LIME §4.2.2).
   */
  holdWithController = false;
  readonly isHost: Uint8Array;
  /**
   * Called (before the batch is switched) when frames arrive on the port of a host the map
   * places at the peer site: the host has moved here (live migration's detection).
   */
  onHostArrived: ((port: number) => void) | undefined;
  /**
   * While the migration planner measures: bytes each host sent to each host through this
   * site's table, [from * nHosts + to] by the hosts' indexes in `hostIndex` (-1: a port
   * that is not a host). Unicast output only: floods reach everyone and say nothing of who
   * talks to whom.
   */
  pairBytes: Float64Array | undefined;
  readonly hostIndex: Int32Array;
  nHosts = 0;

  constructor(
    ports: readonly (SwitchPort | undefined)[],
    drops: Float64Array,
    maxFrame: Uint32Array,
    macTable: MacTable,
    table: TableView,
    opts: ExecutorOptions = {},
  ) {
    this.ports = ports;
    this.drops = drops;
    this.maxFrame = maxFrame;
    this.macTable = macTable;
    this.table = table;
    this.onPacketIn = opts.onPacketIn;
    this.packetInRate = opts.packetInRate ?? 1000;
    this.packetInBurst = opts.packetInBurst ?? 100;
    this.tokens = this.packetInBurst;
    this.copySlab = Buffer.alloc(opts.copySlabSize ?? BATCH_MAX * 4 * 2048);
    this.dirty = new Int32Array(maxFrame.length);
    this.dirtyMark = new Uint8Array(maxFrame.length);
    this.tunnelMax = new Uint32Array(maxFrame.length);
    this.tunnelIcmpSrc = new Uint32Array(maxFrame.length);
    this.remoteVia = new Int32Array(maxFrame.length);
    this.remoteKey = new Uint32Array(maxFrame.length);
    this.hostIndex = new Int32Array(maxFrame.length).fill(-1);
    this.ingressVia = new Int32Array(maxFrame.length);
    this.ingressKey = new Uint32Array(maxFrame.length);
    this.isHost = new Uint8Array(maxFrame.length);
    this.icmpMac = opts.icmpSourceMac ?? DEFAULT_ICMP_SOURCE_MAC;
  }

  /** The ports NORMAL floods to (up) and ALL sends to (every port); the switch keeps them current. */
  setPortLists(flood: Int32Array, all: Int32Array): void {
    this.floodList = flood;
    this.allList = all;
    for (let j = 0; j < all.length; j++) {
      const p = all[j]!;
      if (this.copyTx[p] === undefined) this.copyTx[p] = new TxQueue(BATCH_MAX);
    }
  }

  /** Starts a batch of frames in `slab` received on `inPort` at `now` (ms). */
  begin(slab: Buffer, now: number, inPort: number): void {
    this.slab = slab;
    this.clock[0] = now;
    this.setInPort(inPort);
    this.copyPos = 0;
  }

  /**
   * Runs the program at prog[base …] on the frame slab[off … off+size) of the current
   * batch; l3Rel/l4Rel are its header offsets from the frame start (OFF_ABSENT = none).
   */
  run(prog: Uint32Array, base: number, off: number, size: number, l3Rel: number, l4Rel: number): void {
    const end = base + prog[base + PROG_LEN]!;
    const nRules = prog[base + PROG_N_RULES]!;
    let q = base + PROG_RULES;
    for (let r = 0; r < nRules; r++) this.credit(prog[q++]!, size);
    if (this.holdWithController && this.holdFor(prog, q, end, off, size)) return;

    const drops = this.drops;
    const dropBase = this.dropBase;
    let buf = this.slab;
    let copied = false; // the frame now lives in the copy slab
    let sent = false; // queued since the last copy: bytes are frozen
    let head = HEADROOM;
    let l3 = l3Rel === OFF_ABSENT ? -1 : off + l3Rel;
    let l4 = l4Rel === OFF_ABSENT ? -1 : off + l4Rel;
    let learned = false;

    while (q < end) {
      const op = prog[q]!;
      if (op >= FIRST_WRITE_OP && sent) {
        // Output-copy: the queued bytes must stay as they were when output.
        const at = this.copy(buf, off, size);
        if (at < 0) {
          drops[dropBase + DropReason.OUTPUT_COPY_EXHAUSTED]++;
          return;
        }
        if (l3 >= 0) l3 += at - off;
        if (l4 >= 0) l4 += at - off;
        off = at;
        buf = this.copySlab;
        copied = true;
        sent = false;
        head = HEADROOM;
      }
      switch (op) {
        case OP.OUTPUT:
          this.output(prog[q + 1]!, off, size, copied);
          sent = true;
          q += 2;
          break;
        case OP.NORMAL: {
          const inPort = prog[q + 1]!;
          const vlan = prog[q + 2]!;
          const srcHi = prog[q + 3]!;
          if ((srcHi & 0x100) !== 0) {
            drops[dropBase + DropReason.SRC_MAC_MULTICAST]++;
          } else {
            if (!learned && this.ports[inPort] !== undefined) {
              this.macTable.learnFrom(prog, q + 3, vlan, inPort);
              learned = true;
            }
            const dstHi = prog[q + 5]!;
            let out = -1;
            if ((dstHi & 0x100) === 0) out = this.macTable.lookupFrom(prog, q + 5, vlan);
            if (out > 0) {
              if (out === inPort) drops[dropBase + DropReason.NO_OUTPUT]++;
              else this.output(out, off, size, copied);
            } else if (this.outputList(this.floodList, inPort, off, size, copied) === 0) {
              drops[dropBase + DropReason.NO_OUTPUT]++;
            }
            sent = true;
          }
          q += 7;
          break;
        }
        case OP.FLOOD:
          if (this.outputList(this.floodList, prog[q + 1]!, off, size, copied) === 0) {
            drops[dropBase + DropReason.NO_OUTPUT]++;
          }
          sent = true;
          q += 2;
          break;
        case OP.ALL:
          if (this.outputList(this.allList, prog[q + 1]!, off, size, copied) === 0) {
            drops[dropBase + DropReason.NO_OUTPUT]++;
          }
          sent = true;
          q += 2;
          break;
        case OP.LOCAL:
          drops[dropBase + DropReason.NO_LOCAL_PORT]++;
          q += 1;
          break;
        case OP.CONTROLLER: {
          const ruleId = prog[q + 3]!;
          this.packetIn(
            buf,
            off,
            size,
            prog[q + 4] === PACKET_IN_NO_MATCH ? 'no_match' : 'action',
            prog[q + 2]!,
            ruleId > MAX_SIGNED_RULE ? -1 : ruleId,
            prog[q + 1]!,
          );
          q += 5;
          break;
        }
        case OP.DROP:
          drops[dropBase + prog[q + 1]!]++;
          q += 2;
          break;
        case OP.SET_TUNNEL:
          this.tunnel[0] = prog[q + 1]!;
          this.tunnel[1] = prog[q + 2]!;
          q += 3;
          break;
        case OP.SET_DL_SRC:
          wr16(buf, off + 6, prog[q + 1]!);
          wr32(buf, off + 8, prog[q + 2]!);
          q += 3;
          break;
        case OP.SET_DL_DST:
          wr16(buf, off, prog[q + 1]!);
          wr32(buf, off + 2, prog[q + 2]!);
          q += 3;
          break;
        case OP.SET_NW_SRC:
        case OP.SET_NW_DST: {
          if (l3 < 0) {
            q += 3;
            break;
          }
          const at = l3 + (op === OP.SET_NW_SRC ? 12 : 16);
          const oldAddr = rd32(buf, at);
          const newAddr = prog[q + 1]!;
          wr32(buf, at, newAddr);
          wr16(buf, l3 + 10, checksumUpdate32(rd16(buf, l3 + 10), oldAddr, newAddr));
          if (l4 >= 0) patchL4Checksum32(buf, l4, prog[q + 2]!, oldAddr, newAddr);
          q += 3;
          break;
        }
        case OP.SET_NW_TOS: {
          if (l3 >= 0) {
            const oldWord = rd16(buf, l3);
            buf[l3 + 1] = prog[q + 1]!;
            wr16(buf, l3 + 10, checksumUpdate16(rd16(buf, l3 + 10), oldWord, rd16(buf, l3)));
          }
          q += 2;
          break;
        }
        case OP.SET_NW_TTL: {
          if (l3 >= 0) {
            const oldWord = rd16(buf, l3 + 8);
            buf[l3 + 8] = prog[q + 1]!;
            wr16(buf, l3 + 10, checksumUpdate16(rd16(buf, l3 + 10), oldWord, rd16(buf, l3 + 8)));
          }
          q += 2;
          break;
        }
        case OP.DEC_TTL: {
          if (l3 >= 0) {
            const oldWord = rd16(buf, l3 + 8);
            buf[l3 + 8] = buf[l3 + 8]! - 1;
            wr16(buf, l3 + 10, checksumUpdate16(rd16(buf, l3 + 10), oldWord, rd16(buf, l3 + 8)));
          }
          q += 1;
          break;
        }
        case OP.SET_TP_SRC:
        case OP.SET_TP_DST: {
          if (l4 >= 0) {
            const at = l4 + (op === OP.SET_TP_SRC ? 0 : 2);
            const oldPort = rd16(buf, at);
            const newPort = prog[q + 1]!;
            wr16(buf, at, newPort);
            patchL4Checksum16(buf, l4, prog[q + 2]!, oldPort, newPort);
          }
          q += 3;
          break;
        }
        case OP.SET_IPV6_SRC:
        case OP.SET_IPV6_DST: {
          if (l3 >= 0) {
            const at = l3 + (op === OP.SET_IPV6_SRC ? 8 : 24);
            const kind = prog[q + 5]!;
            for (let w = 0; w < 4; w++) {
              const oldWord = rd32(buf, at + 4 * w);
              const newWord = prog[q + 1 + w]!;
              wr32(buf, at + 4 * w, newWord);
              if (l4 >= 0) patchL4Checksum32(buf, l4, kind, oldWord, newWord);
            }
          }
          q += 6;
          break;
        }
        case OP.SET_IPV6_TC: {
          if (l3 >= 0) {
            const tc = prog[q + 1]!;
            buf[l3] = (buf[l3]! & 0xf0) | (tc >>> 4);
            buf[l3 + 1] = ((tc & 0x0f) << 4) | (buf[l3 + 1]! & 0x0f);
          }
          q += 2;
          break;
        }
        case OP.SET_HLIM:
          if (l3 >= 0) buf[l3 + 7] = prog[q + 1]!;
          q += 2;
          break;
        case OP.DEC_HLIM:
          if (l3 >= 0) buf[l3 + 7] = buf[l3 + 7]! - 1;
          q += 1;
          break;
        case OP.SET_VLAN_VID: {
          const tci = rd16(buf, off + 14);
          wr16(buf, off + 14, (tci & 0xf000) | prog[q + 1]!);
          q += 2;
          break;
        }
        case OP.SET_VLAN_PCP: {
          const tci = rd16(buf, off + 14);
          wr16(buf, off + 14, (tci & 0x1fff) | (prog[q + 1]! << 13));
          q += 2;
          break;
        }
        case OP.PUSH_VLAN:
          if (head < 4) {
            drops[dropBase + DropReason.NO_HEADROOM]++;
            return;
          }
          buf.copyWithin(off - 4, off, off + 12);
          off -= 4;
          size += 4;
          head -= 4;
          wr16(buf, off + 12, prog[q + 1]!);
          wr16(buf, off + 14, prog[q + 2]!);
          q += 3;
          break;
        case OP.POP_VLAN:
          buf.copyWithin(off + 4, off, off + 12);
          off += 4;
          size -= 4;
          head += 4;
          q += 1;
          break;
        default:
          // Unknown opcode: a bug in the translator; never throw on the fast path.
          drops[dropBase + DropReason.ACTION_DROP]++;
          return;
      }
    }
  }

  /** Ends the batch: credit rules once each, flush every port that got frames. */
  end(): void {
    const table = this.table;
    const touched = this.touched;
    const packets = this.creditPackets;
    const bytes = this.creditBytes;
    for (let j = 0; j < this.nTouched; j++) {
      const id = touched[j]!;
      table.creditAt(id, packets[id]!, bytes[id]!, this.clock);
      packets[id] = 0;
      bytes[id] = 0;
    }
    this.nTouched = 0;
    const ports = this.ports;
    for (let j = 0; j < this.nDirty; j++) {
      const p = this.dirty[j]!;
      this.dirtyMark[p] = 0;
      const port = ports[p];
      if (port === undefined) continue;
      if (port.tx.count > 0) port.flush(this.slab);
      const q = this.copyTx[p];
      if (q !== undefined && q.count > 0) this.flushCopies(port, q);
    }
    this.nDirty = 0;
    this.copyPos = 0;
  }

  // ---- helpers ------------------------------------------------------------------------

  private credit(id: number, size: number): void {
    if (id >= this.creditPackets.length) this.growCredits(id);
    const packets = this.creditPackets;
    if (packets[id] === 0) this.touchRule(id);
    packets[id]++;
    this.creditBytes[id] += size;
  }

  private touchRule(id: number): void {
    if (this.nTouched === this.touched.length) {
      const t = new Int32Array(this.touched.length * 2);
      t.set(this.touched);
      this.touched = t;
    }
    this.touched[this.nTouched++] = id;
  }

  private growCredits(id: number): void {
    let n = this.creditPackets.length;
    while (n <= id) n *= 2;
    const p = new Float64Array(n);
    p.set(this.creditPackets);
    const b = new Float64Array(n);
    b.set(this.creditBytes);
    this.creditPackets = p;
    this.creditBytes = b;
  }

  /** Switch the following frames as received on `inPort` (a batch that mixes ports: stop-and-copy). */
  setInPort(inPort: number): void {
    this.inPort = inPort;
    this.dropBase = (inPort < this.maxFrame.length ? inPort : 0) * DROP_REASON_COUNT;
  }

  /** Queues the frame unchanged on port p with tunnel key `key` (stop-and-copy: to the old site's table). */
  sendRaw(p: number, key: number, off: number, size: number): void {
    this.outKey[0] = key;
    this.queue(p, off, size, false);
  }

  /**
   * A frame the peer site tunnelled to one of our hosts (tunnel id `tunnelId`, or
   * FLOOD_TUNNEL_ID for all of them): delivered straight to the host's port, without the
   * table, its counters or timers (LIME §4.1), and never tunnelled back. Between begin()
   * and end(), like run().
   */
  deliverFromPeer(tunnelId: number, off: number, size: number): void {
    if (tunnelId === FLOOD_TUNNEL_ID || tunnelId >= FLOOD_EXCEPT_FLAG) {
      const hosts = this.localHosts;
      const except = tunnelId === FLOOD_TUNNEL_ID ? -1 : (this.hostByTunnelId.get(tunnelId - FLOOD_EXCEPT_FLAG) ?? -1);
      if (hosts.length === 0) this.drops[this.dropBase + DropReason.TUNNEL_NO_HOST]++;
      this.outKey[0] = 0;
      for (let j = 0; j < hosts.length; j++) if (hosts[j] !== except) this.queue(hosts[j]!, off, size, false);
      return;
    }
    const p = this.hostByTunnelId.get(tunnelId);
    if (p === undefined) this.drops[this.dropBase + DropReason.TUNNEL_NO_HOST]++;
    else {
      this.outKey[0] = 0;
      this.queue(p, off, size, false);
    }
  }

  /**
   * Output to port p: queued on p, or — p is a host at the peer site — on the inter-site
   * tunnel port with the host's tunnel id.
   */
  private output(p: number, off: number, size: number, copied: boolean): void {
    if (this.pairBytes !== undefined) this.countPair(p, size);
    const via = this.remoteVia[p]!;
    if (via !== 0) {
      this.outKey[0] = this.remoteKey[p]!;
      this.queue(via, off, size, copied);
    } else {
      this.outKey[0] = this.tunnel[1]!;
      this.queue(p, off, size, copied);
    }
  }

  private countPair(p: number, size: number): void {
    const from = this.hostIndex[this.inPort]!;
    const to = this.hostIndex[p]!;
    if (from >= 0 && to >= 0) this.pairBytes![from * this.nHosts + to] += size;
  }

  /** Queues the frame on port p with tunnel key outKey[0] (from the batch slab, or the copy slab when `copied`). */
  private queue(p: number, off: number, size: number, copied: boolean): void {
    const port = this.ports[p];
    if (port === undefined) return;
    if (size > this.maxFrame[p]!) {
      this.drops[this.dropBase + DropReason.TOO_LONG]++;
      return;
    }
    const tmax = this.tunnelMax[p]!;
    if (tmax !== 0 && size > tmax) {
      this.tunnelTooBig(p, copied ? this.copySlab : this.slab, off, size, tmax);
      return;
    }
    // The queue's columns are written here rather than through TxQueue.push(): the tunnel
    // key is a full 32-bit value, boxed when passed to a function that is not inlined.
    let q: TxQueue;
    if (copied) {
      q = this.copyTx[p]!;
      if (q.count === q.start.length) this.flushCopies(port, q);
    } else {
      q = port.tx;
      // Queued bytes never change, so a full queue can go out early.
      if (q.count === q.start.length) port.flush(this.slab);
    }
    const n = q.count;
    q.start[n] = off;
    q.len[n] = size;
    q.tunKey[n] = this.outKey[0]!;
    q.count = n + 1;
    if (this.dirtyMark[p] === 0) {
      this.dirtyMark[p] = 1;
      this.dirty[this.nDirty++] = p;
    }
  }

  /**
   * A frame too big for tunnel port p once encapsulated: counted on the tunnel
   * (tunnel_path_mtu), and when it is IPv4 with DF set, answered like a router would with
   * ICMP "fragmentation needed" announcing the inner IP MTU the tunnel carries, sent back
   * out of the port the frame came in on.
   */
  private tunnelTooBig(p: number, buf: Buffer, off: number, size: number, tmax: number): void {
    this.drops[p * DROP_REASON_COUNT + DropReason.TUNNEL_PATH_MTU]++;
    const inPort = this.inPort;
    if (this.ports[inPort] === undefined) return;
    let ip = off + 12;
    let tags = 0;
    while (tags < 2 && ip + 4 <= off + size && isVlanTpid((buf[ip]! << 8) | buf[ip + 1]!)) {
      ip += 4;
      tags++;
    }
    if (ip + 2 + 20 > off + size || ((buf[ip]! << 8) | buf[ip + 1]!) !== ETH_TYPE_IPV4) return;
    ip += 2;
    if ((buf[ip + 6]! & 0x40) === 0) return; // DF clear: a router would fragment; lime drops
    const at = this.copyPos + HEADROOM;
    if (at + FRAG_NEEDED_MAX_SIZE > this.copySlab.length) {
      this.drops[this.dropBase + DropReason.OUTPUT_COPY_EXHAUSTED]++;
      return;
    }
    const src = this.tunnelIcmpSrc[p]! !== 0 ? this.tunnelIcmpSrc[p]! : ((buf[ip + 16]! << 24) | (buf[ip + 17]! << 16) | (buf[ip + 18]! << 8) | buf[ip + 19]!) >>> 0;
    const mtu = tmax - ETH_HEADER_SIZE - 4 * tags;
    const n = buildFragNeeded(this.copySlab, at, buf, off, size, mtu, src, this.icmpMac);
    if (n === 0) return;
    this.copyPos = (at + n + 7) & ~7;
    this.nFragNeeded++;
    this.output(inPort, at, n, true);
  }

  /**
   * Outputs to every port of `list` except `except`; returns how many. Hosts at the peer
   * site get one copy between them (FLOOD_TUNNEL_ID), so a flood crosses the link once.
   */
  private outputList(list: Int32Array, except: number, off: number, size: number, copied: boolean): number {
    let n = 0;
    let via = 0;
    for (let j = 0; j < list.length; j++) {
      const p = list[j]!;
      if (p !== except) {
        const v = this.remoteVia[p]!;
        if (v !== 0) via = v;
        else {
          this.outKey[0] = this.tunnel[1]!;
          this.queue(p, off, size, copied);
        }
        n++;
      }
    }
    // (A sender at the peer — stop-and-copy — is not sent its own flood back.)
    if (via !== 0) {
      const fromPeer = except > 0 && except < this.remoteVia.length && this.remoteVia[except] !== 0;
      this.outKey[0] = fromPeer ? FLOOD_EXCEPT_FLAG + this.remoteKey[except]! : FLOOD_TUNNEL_ID;
      this.queue(via, off, size, copied);
    }
    return n;
  }

  /** Sends a port's queued copies: batch-slab frames first, then the copies, in chunks. */
  private flushCopies(port: SwitchPort, q: TxQueue): void {
    const tx = port.tx;
    if (tx.count > 0) port.flush(this.slab);
    const cap = tx.start.length;
    let i = 0;
    while (i < q.count) {
      let n = 0;
      while (n < cap && i < q.count) {
        tx.start[n] = q.start[i]!;
        tx.len[n] = q.len[i]!;
        tx.tunKey[n] = q.tunKey[i]!;
        n++;
        i++;
      }
      tx.count = n;
      port.flush(this.copySlab);
    }
    q.count = 0;
  }

  /** Copies the frame into the copy slab with fresh headroom; returns its offset or -1. */
  private copy(buf: Buffer, off: number, size: number): number {
    const at = this.copyPos + HEADROOM;
    const endAt = at + size;
    if (endAt > this.copySlab.length) return -1;
    const dst = this.copySlab;
    if (buf === dst) {
      dst.copyWithin(at, off, off + size);
    } else {
      // A byte loop: Buffer#copy / subarray would allocate a view per call.
      for (let i = 0; i < size; i++) dst[at + i] = buf[off + i]!;
    }
    this.copyPos = (endAt + 7) & ~7;
    this.nCopies++;
    return at;
  }

  /**
   * During a migration: when the program both outputs and sends to the controller (for
   * an action, not a table miss), send only the packet-in, of the frame held; true when
   * it did (the program is not run). A held frame takes a packet-in token like any
   * packet-in, so held frames are bounded by packet_in.rate/burst: with the bucket empty
   * the frame is dropped with its packet-in (counted packet_in_rate); none waits longer
   * than the microtask that releases it (daemon/flows.ts release).
   */
  private holdFor(prog: Uint32Array, q: number, end: number, off: number, size: number): boolean {
    let controller = -1;
    let outputs = false;
    for (let i = q; i < end; ) {
      const op = prog[i]!;
      if (op === OP.CONTROLLER && prog[i + 4] !== PACKET_IN_NO_MATCH) controller = i;
      else if (op === OP.OUTPUT || op === OP.NORMAL || op === OP.FLOOD || op === OP.ALL) outputs = true;
      const n = OP_OPERANDS[op];
      if (n === undefined) return false;
      i += 1 + n;
    }
    if (controller < 0 || !outputs) return false;
    const ruleId = prog[controller + 3]!;
    this.packetIn(this.slab, off, size, 'action', prog[controller + 2]!, ruleId > MAX_SIGNED_RULE ? -1 : ruleId, prog[controller + 1]!, true);
    return true;
  }

  private packetIn(
    buf: Buffer,
    off: number,
    size: number,
    reason: PacketInReason,
    table: number,
    ruleId: number,
    maxLen: number,
    held = false,
  ): void {
    const hook = this.onPacketIn;
    if (hook === undefined) {
      this.drops[this.dropBase + DropReason.NO_CONTROLLER]++;
      return;
    }
    // Token bucket, refilled from the batch clock.
    const now = this.clock[0]!;
    if (now > this.lastRefill) {
      const t = this.tokens + ((now - this.lastRefill) * this.packetInRate) / 1000;
      this.tokens = t > this.packetInBurst ? this.packetInBurst : t;
      this.lastRefill = now;
    }
    if (this.tokens < 1) {
      this.drops[this.dropBase + DropReason.PACKET_IN_RATE]++;
      return;
    }
    this.tokens -= 1;
    this.nPacketIns++;
    try {
      hook(buf, off, size, this.inPort, reason, table, ruleId, maxLen, held);
    } catch {
      this.nPacketInErrors++;
    }
  }
}

/** Patches a TCP/UDP/ICMPv6 checksum for a 32-bit change in its pseudo-header. */
function patchL4Checksum32(buf: Uint8Array, l4: number, kind: number, oldValue: number, newValue: number): void {
  if (kind === L4_TCP) {
    wr16(buf, l4 + 16, checksumUpdate32(rd16(buf, l4 + 16), oldValue, newValue));
  } else if (kind === L4_UDP) {
    const c = rd16(buf, l4 + 6);
    if (c === 0) return; // no checksum (IPv4): stays 0
    const n = checksumUpdate32(c, oldValue, newValue);
    wr16(buf, l4 + 6, n === 0 ? 0xffff : n);
  } else if (kind === L4_ICMPV6) {
    wr16(buf, l4 + 2, checksumUpdate32(rd16(buf, l4 + 2), oldValue, newValue));
  }
}

/** Patches a TCP/UDP checksum for a 16-bit change of a covered word (a port). */
function patchL4Checksum16(buf: Uint8Array, l4: number, kind: number, oldWord: number, newWord: number): void {
  if (kind === L4_TCP) {
    wr16(buf, l4 + 16, checksumUpdate16(rd16(buf, l4 + 16), oldWord, newWord));
  } else if (kind === L4_UDP) {
    const c = rd16(buf, l4 + 6);
    if (c === 0) return;
    const n = checksumUpdate16(c, oldWord, newWord);
    wr16(buf, l4 + 6, n === 0 ? 0xffff : n);
  }
}
