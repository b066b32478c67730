/**
 * The native fast path (`fast_path: native`): the engine thread of native/engine.h reads
 * the daemon's TAP ports and plain GRE tunnels and forwards, on its own, every frame whose
 * flow the JavaScript data path has already translated into a program it can run (only
 * outputs to its own ports: native-program.ts); everything else reaches the JavaScript
 * data path through the port's own handle, as before. This module keeps the two in step.
 *
 * Installing: after the JavaScript data path ran a frame from an engine port
 * (Pipeline.afterRun), the program it used, if the engine may run it, goes into the native
 * flow cache under the frame's key. The next frames of the flow never leave the engine.
 *
 * Invalidating — the cache must never run a program the JavaScript path would not:
 *   - before any flow-table change (FlowTable.beforeChange: flow-mods, expiry, a snapshot
 *     taken over), with the rules and their ids still the old ones;
 *   - when the MAC table changed (learned, moved, aged out, flushed: MacTable.changes),
 *     checked before each install and after each housekeeping tick;
 *   - when a port is attached, detached, goes down, or is captured (`limectl capture`
 *     makes a port slow: all its frames go through JavaScript, where capture sees them).
 * Each invalidation retires every entry and harvests its final counts (below).
 *
 * Counting: the cache counts packets and bytes per entry; `harvest()` credits them to the
 * rules of the entry's program (packets, bytes, last use: so idle timeouts see native
 * traffic), refreshes the MAC entries its LEARN ops name (so hosts talking only through
 * the engine do not age out), and adds the engine's per-port counts to the ports'
 * receive and send counters. It runs before every management read of counters
 * (`sync()`), on every invalidation, and once a second (every 10 s also retiring entries
 * idle since, so the cache makes room for new flows; every second while it is full). Counts are exact; they lag by up to a second only for
 * a reader that does not call sync().
 *
 * What stays on the JavaScript path always: system ports (AF_PACKET), hosts of a live
 * migration (their ports have per-frame work: remote hosts, freezing, measuring), the
 * inter-site tunnel, GRE tunnels with per-packet work (GrePort.engineSpec), and every flow
 * whose program floods, rewrites, tags, sends to the controller or drops.
 */
import { KEY_WORDS } from '../packet/key.js';
import { nativeProgramInto, NATIVE_PROGRAM_MAX, OP_LEARN, OP_LEARN_OPERANDS, type NativeProgramContext } from '../datapath/native-program.js';
import { OP_OPERANDS } from '../datapath/xlate.js';
import type { Switch } from '../datapath/switch.js';
import { MAX_PORTS } from '../datapath/switch.js';
import type { FlowTable } from '../table/flow-table.js';
import { GrePort } from '../io/gre.js';
import { loadNative, type LimeTapBinding, type NativeEngine, type NativeFlowCache } from '../io/native.js';
import type { NativePort } from '../io/native-port.js';

/** Default flow-cache slots. */
export const DEFAULT_FAST_PATH_ENTRIES = 8192;
/** Ticks (seconds) between harvests that retire idle entries, unless the cache is full. */
const IDLE_TICKS = 10;

export interface FastPathStatus {
  ports: string[];
  cacheUsed: number;
  cacheSlots: number;
  /** Frames the engine read, forwarded itself, and handed to JavaScript. */
  rx: number;
  hits: number;
  upcalls: number;
  /** Frames dropped because JavaScript had not taken the previous ones yet. */
  upcallDrops: number;
  installs: number;
  /** Programs not installed: both of the flow's slots were taken. */
  cacheFull: number;
  invalidations: number;
  /** Harvests that could not confirm the engine was outside a lookup (retired entries freed later). */
  unconfirmed: number;
}

interface Attached {
  port: NativePort;
  /** Engine counts at the last harvest: rxPackets, rxBytes, txPackets, txBytes, txErrors, upcalls, rxTooLong. */
  last: Float64Array;
  /** Outer header bytes the engine adds per sent frame (GRE), for the send byte counter. */
  overhead: number;
}

export class NativeFastPath {
  private readonly native: LimeTapBinding;
  private readonly cache: NativeFlowCache;
  private readonly engine: NativeEngine;
  private readonly attached = new Map<number, Attached>();
  /** 1 for a port the engine reads (frames from it are installed), by number. */
  private readonly inEngine = new Uint8Array(MAX_PORTS);
  /** 1 for a port the engine may send to (attached and not slow). */
  private readonly outEngine = new Uint8Array(MAX_PORTS);
  private readonly slow = new Uint8Array(MAX_PORTS);
  private readonly down = new Uint8Array(MAX_PORTS);
  private seenMacChanges: number;
  private readonly keyScratch = new Uint32Array(KEY_WORDS);
  private readonly progScratch = new Uint32Array(NATIVE_PROGRAM_MAX);
  private readonly harvestOut = new Float64Array(4096);
  private readonly harvestState = new Uint32Array(2);
  private readonly stats = new Float64Array(7);
  private readonly loadScratch = new Float64Array(2);
  private readonly ctx: NativeProgramContext;
  /** The cache's slot count: a harvest is complete when its cursor reaches it. */
  private readonly slots: number;
  private closed = false;
  private nInstalls = 0;
  private nCacheFull = 0;
  private nInvalidations = 0;
  private nUnconfirmed = 0;
  private ticks = 0;
  private cacheFullAtTick = 0;

  constructor(
    private readonly sw: Switch,
    private readonly table: FlowTable,
    private readonly now: () => number,
    entries = DEFAULT_FAST_PATH_ENTRIES,
  ) {
    this.native = loadNative();
    this.cache = this.native.lime_fc_new(entries);
    this.engine = this.native.lime_engine_new(this.cache, null);
    this.slots = this.native.lime_fc_usage(this.cache)[1];
    this.seenMacChanges = sw.macTable.changes;
    const outEngine = this.outEngine;
    this.ctx = { enginePort: (p: number): boolean => outEngine[p] === 1, macTable: sw.macTable };
    sw.pipeline.afterRun = this.afterRun;
    table.beforeChange = this.invalidate;
    table.beforeExpire = this.syncForExpiry;
    this.native.lime_engine_start(this.engine);
  }

  /** Whether the engine can take this port (see the top); a GRE tunnel only without per-packet work. */
  static canRun(port: NativePort): boolean {
    if (port.type === 'tap') return true;
    return port instanceof GrePort && port.engineSpec() !== null;
  }

  /** Hand a started port to the engine. */
  attach(port: NativePort): void {
    const n = port.number;
    if (this.closed || this.attached.has(n)) return;
    if (n >= this.native.LIME_ENGINE_MAX_PORTS) return; // beyond the engine's table: stays on the JavaScript path
    this.withEngineStopped(() => {
      let overhead = 0;
      if (port instanceof GrePort) {
        const spec = port.engineSpec();
        if (spec === null) return;
        this.native.lime_engine_attach_gre(this.engine, n, port.nativeHandle(), spec.txFd, spec.header, spec.remoteIp, spec.hasKey ? 1 : 0, spec.key, spec.maxFrame);
        overhead = spec.header.length;
      } else {
        this.native.lime_engine_attach_tap(this.engine, n, port.nativeHandle(), port.mtu + 14 + 8);
      }
      this.attached.set(n, { port, last: new Float64Array(7), overhead });
      this.inEngine[n] = 1;
      this.down[n] = port.state === 'up' ? 0 : 1;
      this.refreshOut(n);
      if (this.slow[n] === 1) this.native.lime_engine_set_slow(this.engine, n, true);
    });
  }

  /** Take a port back from the engine (before it is closed); its counts are credited first. */
  detach(port: { readonly number: number }): void {
    const n = port.number;
    if (this.closed || !this.attached.has(n)) return;
    this.invalidate();
    this.withEngineStopped(() => {
      this.creditPorts();
      this.native.lime_engine_detach(this.engine, n);
      this.attached.delete(n);
      this.inEngine[n] = 0;
      this.outEngine[n] = 0;
    });
  }

  isAttached(port: number): boolean {
    return this.inEngine[port] === 1;
  }

  /** While `slow`, every frame from and to the port goes through JavaScript (`limectl capture`). */
  setSlow(port: number, slow: boolean): void {
    this.slow[port] = slow ? 1 : 0;
    if (this.closed || !this.attached.has(port)) return;
    this.native.lime_engine_set_slow(this.engine, port, slow);
    this.refreshOut(port);
    this.invalidate();
  }

  /** A port went down or up: the engine sends to it only while it is up (JavaScript counts drops to a port that is down). */
  portState(port: number, up: boolean): void {
    this.down[port] = up ? 0 : 1;
    if (this.closed) return;
    this.refreshOut(port);
    this.invalidate();
  }

  private refreshOut(port: number): void {
    this.outEngine[port] = this.inEngine[port] === 1 && this.slow[port] === 0 && this.down[port] === 0 ? 1 : 0;
  }

  /** A port went up or down, or anything else the programs depend on changed. */
  readonly invalidate = (): void => {
    if (this.closed) return;
    this.nInvalidations++;
    this.harvest(this.native.LIME_FC_RETIRE_ALL);
    this.seenMacChanges = this.sw.macTable.changes;
  };

  /**
   * After each batch the JavaScript data path switched: a MAC it learned or moved there
   * invalidates the cache (once per batch, not per frame: a flood of new source MACs
   * would otherwise invalidate per frame).
   */
  afterBatch(): void {
    if (!this.closed) this.checkMacTable();
  }

  /** Bring every counter up to date (before management reads them). */
  sync(): void {
    if (this.closed) return;
    this.checkMacTable();
    this.harvest(0);
  }

  /** FlowTable.beforeExpire: idle timeouts must see the native traffic's last use. */
  private readonly syncForExpiry = (): void => this.sync();

  /**
   * Once a second: MAC aging may have changed the table; entries idle since the last
   * retiring harvest make room — every IDLE_TICKS ticks (an entry then idles out after
   * 10 to 20 s, as Open vSwitch's datapath flows after 10 s), or at every tick while
   * flows find their slots taken. Retiring sooner would send the first frame of every
   * flow that pauses for a second through JavaScript again.
   */
  tick(): void {
    if (this.closed) return;
    this.checkMacTable();
    const pressed = this.nCacheFull !== this.cacheFullAtTick;
    this.cacheFullAtTick = this.nCacheFull;
    this.ticks++;
    this.harvest(pressed || this.ticks % IDLE_TICKS === 0 ? this.native.LIME_FC_RETIRE_IDLE : 0);
  }

  /** Frames the engine dropped because JavaScript had not taken the previous ones (a backlog signal). */
  handOverDrops(): number {
    return this.closed ? 0 : this.native.lime_engine_stats(this.engine).upcallDrops;
  }

  /**
   * The engine's reads that filled a whole batch so far (frames were left waiting: the
   * engine is behind), for control-plane policing: the data path can be saturated in the
   * engine's thread while the event loop is idle.
   */
  fullDrains(): number {
    if (this.closed) return 0;
    this.native.lime_engine_load(this.engine, this.loadScratch);
    return this.loadScratch[1]!;
  }

  status(): FastPathStatus {
    const [used, slots] = this.closed ? [0, 0] : this.native.lime_fc_usage(this.cache);
    const s = this.closed ? { rx: 0, hits: 0, upcalls: 0, upcallDrops: 0 } : this.native.lime_engine_stats(this.engine);
    return {
      ports: [...this.attached.values()].map((a) => a.port.name),
      cacheUsed: used,
      cacheSlots: slots,
      rx: s.rx,
      hits: s.hits,
      upcalls: s.upcalls,
      upcallDrops: s.upcallDrops,
      installs: this.nInstalls,
      cacheFull: this.nCacheFull,
      invalidations: this.nInvalidations,
      unconfirmed: this.nUnconfirmed,
    };
  }

  /** Stop the engine and give every port back to its own poll (counts credited). Before the ports close. */
  close(): void {
    if (this.closed) return;
    this.native.lime_engine_stop(this.engine);
    this.harvest(this.native.LIME_FC_RETIRE_ALL);
    this.creditPorts();
    this.closed = true;
    this.native.lime_engine_close(this.engine);
    if (this.sw.pipeline.afterRun === this.afterRun) this.sw.pipeline.afterRun = undefined;
    if (this.table.beforeChange === this.invalidate) this.table.beforeChange = undefined;
    if (this.table.beforeExpire === this.syncForExpiry) this.table.beforeExpire = undefined;
    this.attached.clear();
    this.inEngine.fill(0);
    this.outEngine.fill(0);
  }

  // ---- internals ---------------------------------------------------------------------

  /** Pipeline.afterRun: install what the engine may run of the program a frame from one of its ports just used. */
  private readonly afterRun = (key: Uint32Array, k: number, prog: Uint32Array, base: number, inPort: number): void => {
    if (this.inEngine[inPort] === 0) return;
    const n = nativeProgramInto(prog, base, this.ctx, this.progScratch);
    if (n === 0) return;
    // The program was made with the MAC table as it is now; the cache must not hold
    // entries made before a change (the frame may just have taught it something).
    this.checkMacTable();
    const ks = this.keyScratch;
    for (let w = 0; w < KEY_WORDS; w++) ks[w] = key[k + w]!;
    const r = this.native.lime_fc_insert(this.cache, ks, this.progScratch, n);
    if (r === 1) this.nInstalls++;
    else if (r === -2) this.nCacheFull++;
  };

  private checkMacTable(): void {
    if (this.sw.macTable.changes !== this.seenMacChanges) this.invalidate();
  }

  private withEngineStopped(fn: () => void): void {
    this.native.lime_engine_stop(this.engine);
    try {
      fn();
    } finally {
      this.invalidate();
      this.native.lime_engine_start(this.engine);
    }
  }

  /** Credit what the cache counted (see the top); `flags`: LIME_FC_RETIRE_*. */
  private harvest(flags: number): void {
    const out = this.harvestOut;
    const state = this.harvestState;
    const now = this.now();
    state[0] = 0;
    const slots = this.slots;
    let first = true;
    do {
      const words = this.native.lime_fc_harvest(this.cache, out, first ? flags : 0, state);
      if (first && state[1] === 0) this.nUnconfirmed++;
      first = false;
      this.credit(out, words, now);
    } while (state[0] < slots);
    this.creditPorts();
  }

  /** Records [packets, bytes, progLen, prog…] → rules and MAC entries. */
  private credit(out: Float64Array, words: number, now: number): void {
    const table = this.table;
    const mac = this.sw.macTable;
    let r = 0;
    while (r < words) {
      const packets = out[r]!;
      const bytes = out[r + 1]!;
      const len = out[r + 2]!;
      const p = r + 3;
      const nRules = out[p + 1]!;
      for (let i = 0; i < nRules; i++) table.credit(out[p + 2 + i]!, packets, bytes, now);
      let q = p + 2 + nRules;
      while (q < p + len) {
        const op = out[q]!;
        if (op === OP_LEARN) {
          // Refresh the source's age where NORMAL learned it; one removed meanwhile (its
          // port went down, say) stays removed.
          mac.touch(out[q + 3]!, out[q + 4]!, out[q + 2]!, out[q + 1]!, now);
          q += 1 + OP_LEARN_OPERANDS;
        } else {
          q += 1 + (OP_OPERANDS[op] ?? 0);
        }
      }
      r = p + len;
    }
  }

  /** The engine's per-port counts since the last time → the switch's receive and the ports' send counters. */
  private creditPorts(): void {
    const s = this.stats;
    for (const [n, a] of this.attached) {
      if (!this.native.lime_engine_port_stats(this.engine, n, s)) continue;
      const last = a.last;
      this.sw.rxPackets[n] += s[0]! - last[0]!;
      this.sw.rxBytes[n] += s[1]! - last[1]!;
      const txPackets = s[2]! - last[2]!;
      a.port.creditNativeTx(txPackets, s[3]! - last[3]! + txPackets * a.overhead, s[4]! - last[4]!);
      a.port.creditNativeRxTooLong(s[6]! - last[6]!);
      last.set(s);
    }
  }
}

