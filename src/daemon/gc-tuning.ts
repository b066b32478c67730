/**
 * V8 settings for a long-running forwarder. Imported first by bin/limed.ts, so that they
 * hold before the daemon allocates anything.
 *
 * The memory reducer: some seconds after the heap last grew (8–16 s after start-up, and
 * again after a flow table is loaded), V8 decides the process is idle and runs two or
 * three full "Mark-Compact (reduce)" collections to hand memory back to the system. They
 * run on the thread that forwards frames: measured through a GRE tunnel between two
 * limeds, each held every frame for 7–17 ms, pings saw 5–23 ms, and a p99 over a few
 * thousand pings moved by a factor of ten. A router keeps its memory; it must not stall.
 * `--no-memory-reducer` only takes effect before the heap is set up (it would have to be
 * on node's command line), so the reducer is instead armed with a start delay of
 * 2·10^9 ms (23 days), which V8 reads each time it arms it; ordinary collections still
 * return memory the heap no longer needs.
 */
import { setFlagsFromString } from 'node:v8';

export const MEMORY_REDUCER_DELAY_MS = 2_000_000_000;

setFlagsFromString(`--gc-memory-reducer-start-delay-ms=${MEMORY_REDUCER_DELAY_MS}`);
