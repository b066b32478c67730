/**
 * GrePort: Ethernet over GRE over IPv4 to one remote site (the `gre` port type), through
 * two raw IPv4 sockets of lime's native addon: one for protocol 47 that receives (the
 * kernel hands it every GRE packet for this host, IPv4 header included, fragments already
 * reassembled) and one IPPROTO_RAW socket connected to the remote that sends the whole
 * outer packet lime builds.
 *
 * Receive (`deliver`, per batch, in place, nothing allocated): greDecap() validates each
 * packet (outer IPv4, source = remote_ip, GRE flags/version/protocol/checksum, key); a
 * good one becomes its inner Ethernet frame (start/len moved onto it, the key into
 * batch.tunKey, the batch marked `tunneled`), a bad one is dropped and counted by reason
 * in `rxDrops`. Every GRE socket of the host sees every GRE packet, so a packet that
 * belongs to another configured tunnel is skipped without a count, and one that belongs
 * to none is counted once, by the lowest-numbered GRE port (GreRegistry).
 *
 * Send (`flush`, per batch): for each queued frame, optionally clamp a SYN's TCP MSS,
 * write the outer IPv4 + GRE header into the headroom in front of it (greEncap: template,
 * per-packet key for `key: flow`, sequence number, inherited TOS/TTL), then one native
 * send for the batch. A frame whose outer packet exceeds the path MTU only reaches here
 * when the tunnel fragments (`fragment: true`, DF clear): it is split into outer IPv4
 * fragments in a scratch slab and sent in a second native call. Without fragmentation the
 * datapath has already dropped it (tunnel_path_mtu) and answered ICMP (execute.ts).
 */
import { DROP_REASON_COUNT, DropReason } from '../packet/drop.js';
import type { FrameBatch } from '../packet/batch.js';
import { ETH_TYPE_IPV4, ETH_TYPE_IPV6, IPPROTO_GRE, IPPROTO_TCP } from '../packet/constants.js';
import { isVlanTpid } from '../packet/vlan.js';
import { formatIpv4 } from '../util/addr.js';
import { fragmentIpv4 } from '../tunnel/fragment.js';
import {
  buildGreTemplate,
  greDecap,
  GreDecapResult,
  greEncap,
  innerIpTos,
  innerIpTtl,
  type GreExpect,
  type GreTemplate,
} from '../tunnel/gre.js';
import { clampTcpMss, tcpMssForMtu } from '../tunnel/mss.js';
import { closeFd, NativePort, PortError } from './native-port.js';
import { allocTapHandle, loadNative, type LimeTapBinding } from './native.js';
import type { Port, PortIoCounters } from './port.js';

/** Which GRE tunnels exist, so that each received packet is counted by exactly one port. */
export class GreRegistry {
  private readonly ports = new Set<GrePort>();

  add(p: GrePort): void {
    this.ports.add(p);
  }
  delete(p: GrePort): void {
    this.ports.delete(p);
  }

  /** True when some tunnel other than `self` accepts (src, key) — its packet, not ours to count. */
  claimedByOther(self: GrePort, src: number, hasKey: boolean, key: number): boolean {
    for (const p of this.ports) if (p !== self && p.accepts(src, hasKey, key)) return true;
    return false;
  }

  /** True when `self` is the GRE port that counts packets no tunnel accepts. */
  countsStrays(self: GrePort): boolean {
    for (const p of this.ports) if (p.number < self.number) return false;
    return true;
  }
}

export interface GrePortOptions {
  name: string;
  number: number;
  remoteIp: number;
  /** Outer source (and the socket's bound address); 0 = chosen by the kernel's route. */
  localIp?: number;
  /** A fixed key, 'flow' (each frame's tun_id), or absent (no key). */
  key?: number | 'flow';
  csum?: boolean;
  seq?: boolean;
  ttl?: number | 'inherit';
  tos?: number | 'inherit';
  /** Underlay MTU toward the remote (default 1500). */
  pathMtu?: number;
  /** Fragment outer packets over the path MTU (DF clear) instead of dropping them. */
  fragment?: boolean;
  /** Clamp the MSS of TCP SYNs entering the tunnel to what fits the path. */
  mssClamp?: boolean;
  /** Inner MTU (the largest inner IP packet accepted, before the path MTU check); default 1500. */
  mtu?: number;
  registry: GreRegistry;
  txCapacity?: number;
}

/** A tunnel as the native engine runs it (GrePort.engineSpec). */
export interface GreEngineSpec {
  txFd: number;
  /** Outer IPv4 + GRE header: TOS, TTL, addresses, flags and key filled; length, id, checksum per packet. */
  header: Uint8Array;
  remoteIp: number;
  hasKey: boolean;
  key: number;
  /** Largest inner frame the engine sends (fits the path, and the MTU). */
  maxFrame: number;
}

export class GrePort extends NativePort {
  readonly type = 'gre' as const;
  protected readonly what = 'GRE tunnel';
  readonly remoteIp: number;
  readonly localIp: number;
  readonly key: number | 'flow' | undefined;
  readonly pathMtu: number;
  readonly fragment: boolean;
  readonly mssClamp: boolean;
  readonly tunnelMaxFrame: number;
  readonly tunnelIcmpSource: number | undefined;
  readonly rxDrops = new Float64Array(DROP_REASON_COUNT);
  /** Frames sent as outer fragments, and SYNs whose MSS was clamped. */
  nFragmented = 0;
  nMssClamped = 0;

  private readonly tpl: GreTemplate;
  private readonly expect: GreExpect;
  private readonly res = new GreDecapResult();
  private readonly registry: GreRegistry;
  private readonly txHandle: Buffer;
  private readonly txCounters: Float64Array;
  private readonly txFd: number;
  private readonly outStart: Uint32Array;
  private readonly outLen: Uint32Array;
  private readonly fragSlab: Buffer;
  private readonly fragStart: Uint32Array;
  private readonly fragLen: Uint32Array;
  private readonly inheritTos: boolean;
  private readonly inheritTtl: boolean;
  private readonly mss4: number;
  private readonly mss6: number;
  private seq = 0;

  private constructor(opts: GrePortOptions, native: LimeTapBinding, rxFd: number, txFd: number) {
    const device = `gre/${formatIpv4(opts.remoteIp)}`;
    super({ name: opts.name, number: opts.number, device, mtu: opts.mtu ?? 1500, txCapacity: opts.txCapacity }, native, rxFd);
    this.remoteIp = opts.remoteIp;
    this.localIp = opts.localIp ?? 0;
    this.key = opts.key;
    this.pathMtu = opts.pathMtu ?? 1500;
    this.fragment = opts.fragment ?? false;
    this.mssClamp = opts.mssClamp ?? false;
    this.registry = opts.registry;
    this.inheritTos = opts.tos === 'inherit';
    this.inheritTtl = opts.ttl === 'inherit';
    this.tpl = buildGreTemplate({
      src: this.localIp,
      dst: this.remoteIp,
      ttl: typeof opts.ttl === 'number' ? opts.ttl : undefined,
      tos: typeof opts.tos === 'number' ? opts.tos : undefined,
      df: !this.fragment,
      key: opts.key,
      csum: opts.csum,
      seq: opts.seq,
    });
    this.expect = { remote: this.remoteIp, key: opts.key === 'flow' ? 'any' : opts.key };
    // Largest inner frame that fits the path without fragmenting; 0 = no limit (fragments).
    this.tunnelMaxFrame = this.fragment ? 0 : this.pathMtu - this.tpl.size;
    this.tunnelIcmpSource = this.localIp !== 0 ? this.localIp : undefined;
    const innerIpMtu = this.pathMtu - this.tpl.size - 14;
    this.mss4 = tcpMssForMtu(innerIpMtu, 4);
    this.mss6 = tcpMssForMtu(innerIpMtu, 6);
    const cap = this.tx.start.length;
    this.outStart = new Uint32Array(cap);
    this.outLen = new Uint32Array(cap);
    // Room for every queued frame to become two fragments of up to the path MTU (a frame
    // up to 9000 bytes over a 576-byte path needs more: fragmentIpv4 then fails, counted).
    const maxFrags = cap * 8;
    this.fragSlab = Buffer.alloc(cap * 2 * (this.pathMtu + 64) + 16 * 1024);
    this.fragStart = new Uint32Array(maxFrags);
    this.fragLen = new Uint32Array(maxFrags);
    const { handle, counters } = allocTapHandle();
    this.txHandle = handle;
    this.txCounters = counters;
    this.txFd = txFd;
    native.lime_tap_init(handle, txFd);
  }

  /**
   * Open the tunnel's sockets. Throws PortError naming the errno: EPERM without
   * CAP_NET_RAW, EADDRNOTAVAIL for a local_ip this host does not have.
   */
  static open(opts: GrePortOptions): GrePort {
    const native = loadNative();
    const what = `gre/${formatIpv4(opts.remoteIp)}`;
    let rxFd = -1;
    let txFd = -1;
    try {
      rxFd = native.lime_raw_open_rx(IPPROTO_GRE, opts.localIp ?? 0);
      txFd = native.lime_raw_open_tx(opts.remoteIp, opts.localIp ?? 0);
      const port = new GrePort(opts, native, rxFd, txFd);
      opts.registry.add(port);
      return port;
    } catch (err) {
      if (rxFd >= 0) closeFd(native, rxFd);
      if (txFd >= 0) closeFd(native, txFd);
      throw PortError.from(err, what);
    }
  }

  /** Whether this tunnel takes a packet from `src` with this key (or none). */
  accepts(src: number, hasKey: boolean, key: number): boolean {
    if (src !== this.remoteIp) return false;
    if (this.key === 'flow') return true;
    if (this.key === undefined) return !hasKey;
    return hasKey && key === this.key;
  }

  protected override deliver(batch: FrameBatch, onBatch: (port: Port) => void): void {
    const n = batch.count;
    const slab = batch.slab;
    const start = batch.start;
    const len = batch.len;
    const tunKey = batch.tunKey;
    const res = this.res;
    const expect = this.expect;
    let m = 0;
    for (let i = 0; i < n; i++) {
      const r = greDecap(slab, start[i]!, len[i]!, expect, res);
      if (r === DropReason.NONE) {
        start[m] = res.innerStart;
        len[m] = res.innerLen;
        tunKey[m] = res.key;
        m++;
      } else if (this.counts(r, slab, start[i]!, len[i]!)) {
        this.rxDrops[r]++;
      }
    }
    if (m === 0) return;
    batch.count = m;
    batch.tunneled = true;
    if (this.capture !== undefined) this.capture(0, slab, start, len, m);
    onBatch(this);
  }

  /**
   * Whether this port counts a packet greDecap refused: not when another tunnel takes it
   * (its source and key are that tunnel's), and a stranger's only once.
   */
  private counts(reason: number, buf: Buffer, s: number, len: number): boolean {
    if (len < 20) return this.registry.countsStrays(this);
    const src = ((buf[s + 12]! << 24) | (buf[s + 13]! << 16) | (buf[s + 14]! << 8) | buf[s + 15]!) >>> 0;
    if (reason === DropReason.TUNNEL_UNKNOWN_REMOTE) {
      // Another tunnel's remote, or nobody's.
      if (this.registry.claimedByOther(this, src, true, this.peekKey(buf, s, len)) || this.registry.claimedByOther(this, src, false, 0)) return false;
      return this.registry.countsStrays(this);
    }
    if (reason === DropReason.GRE_KEY_MISMATCH || reason === DropReason.GRE_KEY_MISSING) {
      const key = this.peekKey(buf, s, len);
      return !this.registry.claimedByOther(this, src, key >= 0, key >= 0 ? key : 0);
    }
    return src === this.remoteIp || this.registry.countsStrays(this);
  }

  /** The GRE key of an outer packet, or -1 when it has none (or is too short to tell). */
  private peekKey(buf: Buffer, s: number, len: number): number {
    const ihl = (buf[s]! & 0x0f) << 2;
    const g = s + ihl;
    if (g + 8 > s + len) return -1;
    const flags = buf[g]!;
    if ((flags & 0x20) === 0) return -1;
    const k = g + ((flags & 0x80) !== 0 ? 8 : 4);
    if (k + 4 > s + len) return -1;
    return ((buf[k]! << 24) | (buf[k + 1]! << 16) | (buf[k + 2]! << 8) | buf[k + 3]!) >>> 0;
  }

  override flush(slab: Buffer): number {
    const tx = this.tx;
    const n = tx.count;
    if (n === 0) return 0;
    tx.count = 0;
    if (this.portState === 'down') {
      this.txCounters[this.counterIndex.txPortDown] += n;
      return 0;
    }
    if (this.capture !== undefined) this.capture(1, slab, tx.start, tx.len, n);
    const tpl = this.tpl;
    const outStart = this.outStart;
    const outLen = this.outLen;
    const pathMtu = this.pathMtu;
    let k = 0;
    let nFrag = 0;
    let fragPos = 0;
    for (let i = 0; i < n; i++) {
      const off = tx.start[i]!;
      const size = tx.len[i]!;
      if (this.mssClamp) this.clampMss(slab, off, size);
      const tos = this.inheritTos ? innerIpTos(slab, off, size) : -1;
      const ttl = this.inheritTtl ? innerIpTtl(slab, off, size) : -1;
      const s = greEncap(slab, off, size, tpl, tx.tunKey[i]!, this.seq, tos, ttl);
      if (tpl.seqOff >= 0) this.seq = (this.seq + 1) >>> 0;
      const outSize = size + tpl.size;
      if (outSize <= pathMtu) {
        outStart[k] = s;
        outLen[k] = outSize;
        k++;
      } else {
        // Only a fragmenting tunnel gets here (see tunnelMaxFrame).
        const f = fragmentIpv4(slab, s, outSize, pathMtu, this.fragSlab, fragPos, this.fragStart, this.fragLen, nFrag, this.fragStart.length);
        if (f === 0) {
          this.rxDrops[DropReason.TUNNEL_PATH_MTU]++;
          continue;
        }
        nFrag += f;
        fragPos = this.fragStart[nFrag - 1]! + this.fragLen[nFrag - 1]!;
        this.nFragmented++;
      }
    }
    let sent = k > 0 ? this.writeBatch(this.txHandle, this.txCounters, this.txFd, slab, outStart, outLen, k) : 0;
    if (nFrag > 0) sent += this.writeBatch(this.txHandle, this.txCounters, this.txFd, this.fragSlab, this.fragStart, this.fragLen, nFrag);
    return sent;
  }

  /** Clamp the MSS of a TCP SYN (IPv4 or IPv6, after up to two VLAN tags) to what the path carries. */
  private clampMss(buf: Buffer, off: number, size: number): void {
    let p = off + 12;
    const end = off + size;
    for (let t = 0; t < 2 && p + 4 <= end && isVlanTpid((buf[p]! << 8) | buf[p + 1]!); t++) p += 4;
    if (p + 2 > end) return;
    const type = (buf[p]! << 8) | buf[p + 1]!;
    const ip = p + 2;
    let l4 = -1;
    let mss = 0;
    if (type === ETH_TYPE_IPV4 && ip + 20 <= end && buf[ip + 9] === IPPROTO_TCP && (((buf[ip + 6]! << 8) | buf[ip + 7]!) & 0x1fff) === 0) {
      l4 = ip + ((buf[ip]! & 0x0f) << 2);
      mss = this.mss4;
    } else if (type === ETH_TYPE_IPV6 && ip + 40 <= end && buf[ip + 6] === IPPROTO_TCP) {
      l4 = ip + 40;
      mss = this.mss6 - (p - (off + 12));
    }
    if (l4 < 0) return;
    if (type === ETH_TYPE_IPV4) mss -= p - (off + 12);
    if (clampTcpMss(buf, off, size, l4 - off, mss)) this.nMssClamped++;
  }

  override ioCounters(): PortIoCounters {
    return this.ioFrom(this.txCounters);
  }

  protected override txCountersArray(): Float64Array {
    return this.txCounters;
  }

  /**
   * What the native engine needs to run this tunnel itself (native/engine.h), or null when
   * its settings need per-packet work the engine does not do: a key per flow, checksums,
   * sequence numbers, inherited TOS/TTL, fragmentation, MSS clamping.
   */
  engineSpec(): GreEngineSpec | null {
    if (this.key === 'flow' || this.tpl.csumOff >= 0 || this.tpl.seqOff >= 0 || this.inheritTos || this.inheritTtl || this.fragment || this.mssClamp) return null;
    const header = Uint8Array.from(this.tpl.bytes);
    header[1] = this.tpl.tos;
    header[8] = this.tpl.ttl;
    return {
      txFd: this.txFd,
      header,
      remoteIp: this.remoteIp,
      hasKey: this.key !== undefined,
      key: typeof this.key === 'number' ? this.key : 0,
      maxFrame: Math.min(this.tunnelMaxFrame, this.mtu + 14 + 8),
    };
  }

  override close(): void {
    if (this.closed) return;
    super.close();
    this.native.lime_tap_close(this.txHandle);
    this.registry.delete(this);
  }

  /** The tunnel's settings as limectl shows them. */
  describe(): Record<string, string> {
    return {
      remote_ip: formatIpv4(this.remoteIp),
      ...(this.localIp !== 0 ? { local_ip: formatIpv4(this.localIp) } : {}),
      key: this.key === undefined ? 'none' : String(this.key),
      path_mtu: String(this.pathMtu),
      mtu_policy: this.fragment ? 'fragment' : 'drop+icmp',
      ...(this.mssClamp ? { mss_clamp: String(this.mss4) } : {}),
    };
  }
}
