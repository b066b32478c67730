/**
 * The one place that loads lime's native addon (native/, built by node-gyp into
 * native/build/Release/lime_tap.node).
 *
 * The addon is thin (STYLE.md principle 8): syscalls only, JS owns the memory. The
 * binding's names mirror the C names 1:1 (`lime_tap_open` in JS is `lime_tap_open` in
 * native/binding.c). Counters live in the handle Buffer that JS allocates
 * (`Buffer.alloc(sizeof_lime_tap)`), as doubles at `offsetof_lime_tap_*`; read them
 * through a Float64Array over the handle (see `tapCounterIndex`) without a native call.
 *
 * The addon is loaded lazily on first use, so modules that merely import io/ (the CLI,
 * unit tests of pure code) work without a native build.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The raw binding. Every function throws only for bad arguments or (open/link control) OS errors. */
export interface LimeTapBinding {
  /** Bytes to allocate for a handle (a multiple of 8). */
  readonly sizeof_lime_tap: number;
  readonly offsetof_lime_tap_rx_packets: number;
  readonly offsetof_lime_tap_rx_bytes: number;
  readonly offsetof_lime_tap_rx_batches: number;
  readonly offsetof_lime_tap_rx_too_long: number;
  readonly offsetof_lime_tap_tx_packets: number;
  readonly offsetof_lime_tap_tx_bytes: number;
  readonly offsetof_lime_tap_tx_queue_full: number;
  readonly offsetof_lime_tap_tx_port_down: number;
  readonly offsetof_lime_tap_tx_error: number;
  readonly offsetof_lime_tap_last_errno: number;
  readonly offsetof_lime_tap_loop_time: number;
  /** Reserved flag for virtio-net headers (not implemented: open rejects it with EINVAL). */
  readonly LIME_TAP_F_VNET_HDR: number;

  /**
   * Create or attach TAP `name` (IFF_TAP|IFF_NO_PI; '' = kernel picks `lime%d`; a `%d`
   * pattern is allowed). Non-blocking, close-on-exec fd. `flags` must be 0 for now.
   * Throws Error with `code` (errno name), `errno` (negative), `device`.
   */
  lime_tap_open(name: string, flags: number): { fd: number; name: string };
  /** Bind a fresh zeroed handle (Buffer.alloc(sizeof_lime_tap)) to an open fd. */
  lime_tap_init(handle: Buffer, fd: number): void;
  lime_tap_set_mtu(name: string, mtu: number): void;
  lime_tap_set_mac(name: string, mac: Buffer): void;
  lime_tap_get_mac(name: string): Buffer;
  lime_tap_set_up(name: string, up: boolean): void;
  /** errno name for an errno value (sign ignored), e.g. 77 → 'EBADFD'. */
  lime_tap_errname(errno: number): string;
  /** The event loop's clock (uv_now, ms, monotonic): the clock batches are stamped with. */
  lime_tap_now(): number;
  /**
   * Poll the fd; per wake-up, read up to `maxBatch` frames into `slab` at
   * `i * slotSize + headroom`, fill start[i]/len[i] and call `onBatch(n)` once per
   * drain. `onBatch(-errno)` once when the device fails (polling has then stopped).
   */
  lime_tap_start(
    handle: Buffer,
    fd: number,
    slab: Buffer,
    start: Uint32Array,
    len: Uint32Array,
    slotSize: number,
    headroom: number,
    maxBatch: number,
    onBatch: (n: number) => void,
  ): void;
  /** Stop polling; safe to call twice and from inside onBatch. */
  lime_tap_stop(handle: Buffer): void;
  /** Stop polling and close the fd; idempotent. */
  lime_tap_close(handle: Buffer): void;
  /** Write frames `start[i], len[i]` (i < n) of `slab`, one write(2) each; returns frames sent. Never throws per frame. */
  lime_tap_write_batch(handle: Buffer, fd: number, slab: Buffer, start: Uint32Array, len: Uint32Array, n: number): number;
}

/** Indexes (in Float64 units) of the counters in a Float64Array over a handle. */
export interface TapCounterIndex {
  readonly rxPackets: number;
  readonly rxBytes: number;
  readonly rxBatches: number;
  readonly rxTooLong: number;
  readonly txPackets: number;
  readonly txBytes: number;
  readonly txQueueFull: number;
  readonly txPortDown: number;
  readonly txError: number;
  readonly lastErrno: number;
  /** uv_now() when the last batch was read (ms). */
  readonly loopTime: number;
}

const ADDON_PATH = join('native', 'build', 'Release', 'lime_tap.node');

/** The package root: the nearest directory above this module holding package.json (works from src/ and dist/). */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find package.json above ${from}`);
    dir = parent;
  }
}

let binding: LimeTapBinding | undefined;
let counterIndex: TapCounterIndex | undefined;

/** Load (once) and return the addon. Throws a clear error when it was not built. */
export function loadNative(): LimeTapBinding {
  if (binding !== undefined) return binding;
  const root = packageRoot();
  const file = join(root, ADDON_PATH);
  if (!existsSync(file)) {
    throw new Error(`lime native addon not built: ${file} is missing (run \`npm run build\` or \`node-gyp rebuild --directory native\`)`);
  }
  const require = createRequire(import.meta.url);
  binding = require(file) as LimeTapBinding;
  return binding;
}

/** Counter indexes for a Float64Array view over a handle, from the exported offsets. */
export function tapCounterIndex(): TapCounterIndex {
  if (counterIndex !== undefined) return counterIndex;
  const b = loadNative();
  counterIndex = Object.freeze({
    rxPackets: b.offsetof_lime_tap_rx_packets / 8,
    rxBytes: b.offsetof_lime_tap_rx_bytes / 8,
    rxBatches: b.offsetof_lime_tap_rx_batches / 8,
    rxTooLong: b.offsetof_lime_tap_rx_too_long / 8,
    txPackets: b.offsetof_lime_tap_tx_packets / 8,
    txBytes: b.offsetof_lime_tap_tx_bytes / 8,
    txQueueFull: b.offsetof_lime_tap_tx_queue_full / 8,
    txPortDown: b.offsetof_lime_tap_tx_port_down / 8,
    txError: b.offsetof_lime_tap_tx_error / 8,
    lastErrno: b.offsetof_lime_tap_last_errno / 8,
    loopTime: b.offsetof_lime_tap_loop_time / 8,
  });
  return counterIndex;
}

/** A zeroed handle Buffer and a Float64Array view of its counters. */
export function allocTapHandle(): { handle: Buffer; counters: Float64Array } {
  const b = loadNative();
  const handle = Buffer.alloc(b.sizeof_lime_tap);
  if (handle.byteOffset % 8 !== 0) throw new Error('lime_tap handle is not 8-byte aligned');
  const counters = new Float64Array(handle.buffer, handle.byteOffset, b.sizeof_lime_tap / 8);
  return { handle, counters };
}
