/**
 * FrameBatch: a batch of received frames as slots in one pooled slab.
 *
 * A frame is a slot in a batch, not an object. The native TAP reader (and every other
 * port) writes frame `i` into `slab` at `start[i]` (which leaves at least `HEADROOM`
 * bytes in front of it, so that encapsulation later is a pointer move plus one copy) and
 * its size into `len[i]`; `count` frames are valid. Parsing (extract.ts) then fills the
 * per-frame flow-key words in `key` and the drop reason in `drop`.
 *
 * Ownership: the daemon allocates one FrameBatch and shares it by all ports. Ports fill
 * it one at a time and the datapath finishes with every frame (including sending it)
 * before the next port may fill it again, so no frame outlives its batch.
 *
 * Cost model: allocation happens once, here; nothing on the per-frame path allocates.
 */
import { KEY_WORDS } from './key.js';

/** Bytes reserved in front of each frame for headers pushed later (VLAN, GRE, IPv4). */
export const HEADROOM = 128;
/** Frames per batch: one native read call drains at most this many frames. */
export const BATCH_MAX = 64;
/** Default slot size: headroom + the largest frame (MTU 1500 + 14 Ethernet + 8 two tags). */
export const DEFAULT_SLOT_SIZE = 2048;

export class FrameBatch {
  readonly slab: Buffer;
  readonly slotSize: number;
  readonly capacity: number;
  /** Offset of frame i's first byte (destination MAC) in `slab`. */
  readonly start: Uint32Array;
  /** Size in bytes of frame i. */
  readonly len: Uint32Array;
  /** KEY_WORDS words per frame: frame i's flow key is key[i*KEY_WORDS … +KEY_WORDS). */
  readonly key: Uint32Array;
  /** Drop reason of frame i (DropReason; 0 = none). */
  readonly drop: Uint8Array;
  /** Number of valid frames. */
  count = 0;
  /** Port number the frames arrived on. */
  inPort = 0;
  /**
   * Tunnel key (GRE key) each frame arrived with, valid when `tunneled` is true: a tunnel
   * port fills it while decapsulating and the pipeline copies it into the key's tun_id.
   * Every port sets `tunneled` when it hands over a batch.
   */
  readonly tunKey: Uint32Array;
  tunneled = false;
  /**
   * When the batch was read, in ms on the event loop's monotonic clock (a one-element
   * array so that stamping and reading the time allocates nothing).
   */
  readonly time = new Float64Array(1);

  constructor(capacity = BATCH_MAX, slotSize = DEFAULT_SLOT_SIZE) {
    if (slotSize < HEADROOM + 64) throw new RangeError(`slot size ${slotSize} too small`);
    this.capacity = capacity;
    this.slotSize = slotSize;
    this.slab = Buffer.alloc(capacity * slotSize);
    this.start = new Uint32Array(capacity);
    this.len = new Uint32Array(capacity);
    this.key = new Uint32Array(capacity * KEY_WORDS);
    this.drop = new Uint8Array(capacity);
    this.tunKey = new Uint32Array(capacity);
    for (let i = 0; i < capacity; i++) this.start[i] = i * slotSize + HEADROOM;
  }

  /** Largest frame a slot can hold at its default start. */
  get maxFrameSize(): number {
    return this.slotSize - HEADROOM;
  }
}

/**
 * A port's queue of frames to send: offsets and sizes of frames in some slab (normally the
 * shared FrameBatch's). A frame goes to a given port at most once per batch, so a queue of
 * the batch's capacity never overflows.
 */
export class TxQueue {
  readonly start: Uint32Array;
  readonly len: Uint32Array;
  /** Tunnel key of each queued frame (its tun_id when output): what a `key: flow` tunnel sends. */
  readonly tunKey: Uint32Array;
  count = 0;
  constructor(capacity = BATCH_MAX) {
    this.start = new Uint32Array(capacity);
    this.len = new Uint32Array(capacity);
    this.tunKey = new Uint32Array(capacity);
  }
  push(start: number, len: number, tunKey = 0): void {
    const n = this.count;
    this.start[n] = start;
    this.len[n] = len;
    this.tunKey[n] = tunKey;
    this.count = n + 1;
  }
}
