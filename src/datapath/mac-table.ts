/**
 * MacTable: the VLAN-aware MAC learning table behind the NORMAL action.
 *
 * What it does: maps (VLAN, MAC) to the port the MAC was last seen on. `learn()` records a
 * source address, `lookup()` finds where to send a destination address, `expire()` ages
 * out entries not seen for `agingMs`.
 *
 * Invariants:
 * - At most `capacity` entries, ever. Learning a new address into a full table evicts the
 *   entry seen least recently and counts it in `nEvictions`; the table never grows.
 * - A MAC seen on a different port moves there at once (a migrated VM's gratuitous ARP or
 *   RARP must redirect traffic from the next frame on) and counts in `nMoves`.
 * - An entry older than `agingMs` is never returned by `lookup()`, even before the next
 *   `expire()` sweep removes it.
 *
 * Layout: struct-of-arrays over entry slots [0, capacity). Slots are chained in a doubly
 * linked list ordered by last-seen time (head = oldest, tail = newest), so eviction and
 * aging pop from the head in O(1). An open-addressing hash index (linear probing,
 * backward-shift deletion, load ≤ 1/2) maps (VLAN, MAC) to a slot.
 *
 * Cost model: `learn` and `lookup` are one hash probe sequence each (expected ~1.5 probes)
 * plus a few typed-array writes; nothing allocates. Time is injected: `clock[0]` holds the
 * current time in milliseconds (a shared one-element array, so the hot path passes no boxed
 * doubles around); every time-taking method also accepts an explicit `now`.
 */

const EMPTY = -1;

export interface MacEntry {
  macHi: number;
  macLo: number;
  vlan: number;
  port: number;
  lastSeen: number;
}

export class MacTable {
  readonly capacity: number;
  agingMs: number;
  nEvictions = 0;
  nMoves = 0;
  nLearned = 0;
  /**
   * Moves on every change of what lookups answer — an entry added, moved or removed (not
   * a refreshed age): what a cache of NORMAL's outcomes (the native fast path) watches.
   */
  changes = 0;
  private nEntries = 0;

  // Entry slots.
  private readonly macHi: Uint16Array;
  private readonly macLo: Uint32Array;
  private readonly vlanOf: Uint16Array;
  private readonly portOf: Int32Array;
  private readonly lastSeen: Float64Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  /** Index of the slot's position in `index`, kept so removal needs no second probe. */
  private readonly indexPos: Int32Array;
  private head = EMPTY;
  private tail = EMPTY;
  /** Free slots, as a stack. */
  private readonly free: Int32Array;
  private nFree: number;

  // Hash index: slot number or EMPTY.
  private readonly index: Int32Array;
  private readonly indexMask: number;

  /** Current time in ms, set by the owner (the switch stamps it once per batch). */
  readonly clock: Float64Array;
  /** The `now` argument of learn()/lookup(), handed on in an array (see the note on numbers). */
  private readonly argTime = new Float64Array(1);

  constructor(capacity = 8192, agingSeconds = 300, clock = new Float64Array(1)) {
    this.clock = clock;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`MAC table capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.agingMs = agingSeconds * 1000;
    this.macHi = new Uint16Array(capacity);
    this.macLo = new Uint32Array(capacity);
    this.vlanOf = new Uint16Array(capacity);
    this.portOf = new Int32Array(capacity);
    this.lastSeen = new Float64Array(capacity);
    this.prev = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
    this.indexPos = new Int32Array(capacity);
    this.free = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.free[i] = capacity - 1 - i;
    this.nFree = capacity;
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.index = new Int32Array(size).fill(EMPTY);
    this.indexMask = size - 1;
  }

  get size(): number {
    return this.nEntries;
  }

  /*
   * Numbers across calls. A MAC's low four bytes are a full 32-bit value and a time in ms
   * passes 2^30 after 12.4 days of uptime; V8 keeps only 31-bit integers unboxed in tagged
   * slots, so such a number passed to a function the optimiser did not inline becomes a
   * heap number on every call — an allocation per frame. The internal functions therefore
   * take the low word as two 16-bit halves (loHi, loLo) and the time from a Float64Array.
   */

  private hash(hi: number, loHi: number, loLo: number, vlan: number): number {
    let h = Math.imul(((loHi << 16) | loLo) ^ (hi << 16) ^ vlan, 0x9e3779b1);
    h ^= h >>> 15;
    h = Math.imul(h ^ hi, 0x85ebca6b);
    h ^= h >>> 13;
    return h & this.indexMask;
  }

  /** Position in `index` holding the slot for (hi, loHi:loLo, vlan), or -1 if absent. */
  private find(hi: number, loHi: number, loLo: number, vlan: number): number {
    const index = this.index;
    const mask = this.indexMask;
    const lo = ((loHi << 16) | loLo) >>> 0;
    let pos = this.hash(hi, loHi, loLo, vlan);
    for (;;) {
      const slot = index[pos]!;
      if (slot === EMPTY) return -1;
      if (this.macLo[slot] === lo && this.macHi[slot] === hi && this.vlanOf[slot] === vlan) return pos;
      pos = (pos + 1) & mask;
    }
  }

  /**
   * Record that (vlan, MAC hi:lo) was seen on `port` at `now`. Returns true when the MAC is
   * new or moved to another port. (Management and tests; the data path uses learnFrom.)
   */
  learn(hi: number, lo: number, vlan: number, port: number, now = this.clock[0]!): boolean {
    this.argTime[0] = now;
    return this.learnSplit(hi, lo >>> 16, lo & 0xffff, vlan, port, this.argTime);
  }

  /**
   * learn() with the MAC read from words[at] (hi) and words[at + 1] (lo), as the data path
   * holds it, at the shared clock's time (clock[0], which the switch sets from each batch's
   * stamp): nothing but small integers and arrays crosses a call (see the note above).
   */
  learnFrom(words: Uint32Array, at: number, vlan: number, port: number): boolean {
    const lo = words[at + 1]!;
    return this.learnSplit(words[at]!, lo >>> 16, lo & 0xffff, vlan, port, this.clock);
  }

  private learnSplit(hi: number, loHi: number, loLo: number, vlan: number, port: number, time: Float64Array): boolean {
    const now = time[0]!;
    const pos = this.find(hi, loHi, loLo, vlan);
    if (pos >= 0) {
      const slot = this.index[pos]!;
      this.lastSeen[slot] = now;
      if (slot !== this.tail) {
        this.unlink(slot);
        this.append(slot);
      }
      if (this.portOf[slot] !== port) {
        this.portOf[slot] = port;
        this.nMoves++;
        this.changes++;
        return true;
      }
      return false;
    }
    if (this.nFree === 0) {
      this.removeSlot(this.head);
      this.nEvictions++;
    }
    const slot = this.free[--this.nFree]!;
    this.macHi[slot] = hi;
    this.macLo[slot] = ((loHi << 16) | loLo) >>> 0;
    this.vlanOf[slot] = vlan;
    this.portOf[slot] = port;
    this.lastSeen[slot] = now;
    this.append(slot);
    let p = this.hash(hi, loHi, loLo, vlan);
    while (this.index[p] !== EMPTY) p = (p + 1) & this.indexMask;
    this.index[p] = slot;
    this.indexPos[slot] = p;
    this.nEntries++;
    this.nLearned++;
    this.changes++;
    return true;
  }

  /**
   * Refresh the age of (vlan, MAC hi:lo) if it is learned on `port` — nothing else: a MAC
   * that was removed or moved meanwhile stays so. For traffic forwarded without the table
   * seeing it (the native fast path's harvest). Returns whether it was refreshed.
   */
  touch(hi: number, lo: number, vlan: number, port: number, now = this.clock[0]!): boolean {
    const pos = this.find(hi, lo >>> 16, lo & 0xffff, vlan);
    if (pos < 0) return false;
    const slot = this.index[pos]!;
    if (this.portOf[slot] !== port) return false;
    if (now > this.lastSeen[slot]!) this.lastSeen[slot] = now;
    if (slot !== this.tail) {
      this.unlink(slot);
      this.append(slot);
    }
    return true;
  }

  /** Port (vlan, MAC hi:lo) was learned on, or -1 if unknown or aged out. (Management and tests.) */
  lookup(hi: number, lo: number, vlan: number, now = this.clock[0]!): number {
    this.argTime[0] = now;
    return this.lookupSplit(hi, lo >>> 16, lo & 0xffff, vlan, this.argTime);
  }

  /** lookup() with the MAC read from words[at] and words[at + 1], at the shared clock's time (see learnFrom). */
  lookupFrom(words: Uint32Array, at: number, vlan: number): number {
    const lo = words[at + 1]!;
    return this.lookupSplit(words[at]!, lo >>> 16, lo & 0xffff, vlan, this.clock);
  }

  private lookupSplit(hi: number, loHi: number, loLo: number, vlan: number, time: Float64Array): number {
    const pos = this.find(hi, loHi, loLo, vlan);
    if (pos < 0) return -1;
    const slot = this.index[pos]!;
    if (time[0]! - this.lastSeen[slot]! > this.agingMs) return -1;
    return this.portOf[slot]!;
  }

  /** Remove entries not seen for longer than the aging time. Returns how many. */
  expire(now = this.clock[0]!): number {
    let n = 0;
    while (this.head !== EMPTY && now - this.lastSeen[this.head]! > this.agingMs) {
      this.removeSlot(this.head);
      n++;
    }
    return n;
  }

  /** Forget every MAC learned on `port` (the port was removed or went down). */
  flushPort(port: number): number {
    let n = 0;
    let slot = this.head;
    while (slot !== EMPTY) {
      const nextSlot = this.next[slot]!;
      if (this.portOf[slot] === port) {
        this.removeSlot(slot);
        n++;
      }
      slot = nextSlot;
    }
    return n;
  }

  /** Entries from oldest to newest (management path: allocates). */
  entries(): MacEntry[] {
    const out: MacEntry[] = [];
    for (let slot = this.head; slot !== EMPTY; slot = this.next[slot]!) {
      out.push({
        macHi: this.macHi[slot]!,
        macLo: this.macLo[slot]!,
        vlan: this.vlanOf[slot]!,
        port: this.portOf[slot]!,
        lastSeen: this.lastSeen[slot]!,
      });
    }
    return out;
  }

  private append(slot: number): void {
    this.prev[slot] = this.tail;
    this.next[slot] = EMPTY;
    if (this.tail !== EMPTY) this.next[this.tail] = slot;
    else this.head = slot;
    this.tail = slot;
  }

  private unlink(slot: number): void {
    const p = this.prev[slot]!;
    const n = this.next[slot]!;
    if (p !== EMPTY) this.next[p] = n;
    else this.head = n;
    if (n !== EMPTY) this.prev[n] = p;
    else this.tail = p;
  }

  private removeSlot(slot: number): void {
    this.changes++;
    this.unlink(slot);
    // Backward-shift deletion keeps every probe sequence unbroken without tombstones.
    const index = this.index;
    const mask = this.indexMask;
    let hole = this.indexPos[slot]!;
    index[hole] = EMPTY;
    let pos = (hole + 1) & mask;
    for (;;) {
      const s = index[pos]!;
      if (s === EMPTY) break;
      const lo = this.macLo[s]!;
      const home = this.hash(this.macHi[s]!, lo >>> 16, lo & 0xffff, this.vlanOf[s]!);
      // Move s into the hole if its home position is not cyclically within (hole, pos].
      const distHome = (pos - home) & mask;
      const distHole = (pos - hole) & mask;
      if (distHome >= distHole) {
        index[hole] = s;
        this.indexPos[s] = hole;
        index[pos] = EMPTY;
        hole = pos;
      }
      pos = (pos + 1) & mask;
    }
    this.free[this.nFree++] = slot;
    this.nEntries--;
  }
}
