/**
 * What the native engine (native/engine.h) may run of a translated program: the program
 * to install in the native flow cache for a flow, or null when the flow must stay on the
 * JavaScript path. Part of the native fast path (see the README's Limits on tunnel
 * latency); the daemon does not install programs yet.
 *
 * The engine runs OUTPUT to ports it owns, and nothing else yet. So a program qualifies
 * when every op is
 *   - OUTPUT to a port the engine owns, or
 *   - NORMAL whose outcome is a single OUTPUT right now: the source MAC is unicast and
 *     already learned on the in-port (so learning would change nothing but its age: the
 *     daemon refreshes ages from the cache's counters), and the destination is unicast,
 *     learned on another port the engine owns. It becomes LEARN (the engine's no-op that
 *     tells the harvest which MAC entry the flow's packets keep alive: in-port, VLAN,
 *     source) and that OUTPUT; the cache entry is only valid until the MAC table changes,
 *     which invalidates the cache.
 * Everything else — FLOOD, a NORMAL that floods, CONTROLLER, DROP (its reason must be
 * counted), SET_TUNNEL, header rewrites, VLAN ops — keeps the flow in JavaScript, as does a
 * program longer than the cache holds. The rule ids of the program's header are kept, so
 * the cache's counters can be credited to the same rules.
 *
 * Pure: reads the program and the MAC table, allocates the result (once per install, on
 * the slow path).
 */
import { OP, OP_OPERANDS } from './xlate.js';
import type { MacTable } from './mac-table.js';

/** Longest program the native flow cache holds (native/flowcache.h LIME_FC_PROG_MAX). */
export const NATIVE_PROGRAM_MAX = 64;

/** The engine's own op (native/engine.h LIME_OP_LEARN): inPort vlan srcHi srcLo; forwards nothing. */
export const OP_LEARN = 15;
export const OP_LEARN_OPERANDS = 4;

export interface NativeProgramContext {
  /** The engine owns this port (reads and writes its frames itself) and it is up. */
  enginePort(port: number): boolean;
  readonly macTable: MacTable;
}

/** The engine's version of the program at prog[base…], or null (see the top). Allocates: tests and tools. */
export function nativeProgram(prog: Uint32Array, base: number, ctx: NativeProgramContext): Uint32Array | null {
  const out = new Uint32Array(NATIVE_PROGRAM_MAX);
  const n = nativeProgramInto(prog, base, ctx, out);
  return n === 0 ? null : out.slice(0, n);
}

/**
 * nativeProgram() written into `out` (at least NATIVE_PROGRAM_MAX words); returns its
 * length, or 0 when the flow stays on the JavaScript path. Allocates nothing (the daemon
 * calls it for every frame the engine hands over).
 */
export function nativeProgramInto(prog: Uint32Array, base: number, ctx: NativeProgramContext, out: Uint32Array): number {
  const len = prog[base];
  const nRules = prog[base + 1];
  if (len === undefined || nRules === undefined || len < 2 || base + len > prog.length || 2 + nRules > len) return 0;
  if (2 + nRules > NATIVE_PROGRAM_MAX) return 0;
  out[1] = nRules;
  let w = 2;
  for (let i = 0; i < nRules; i++) out[w++] = prog[base + 2 + i]!;
  let q = base + 2 + nRules;
  const end = base + len;
  while (q < end) {
    const op = prog[q]!;
    const operands = OP_OPERANDS[op];
    if (operands === undefined || q + 1 + operands > end) return 0;
    if (op === OP.OUTPUT) {
      const port = prog[q + 1]!;
      if (!ctx.enginePort(port) || w + 2 > NATIVE_PROGRAM_MAX) return 0;
      out[w++] = OP.OUTPUT;
      out[w++] = port;
    } else if (op === OP.NORMAL) {
      const port = normalOutput(prog, q, ctx);
      if (port < 0 || w + 7 > NATIVE_PROGRAM_MAX) return 0;
      // Operands: inPort vlan srcHi srcLo dstHi dstLo (xlate.ts).
      out[w++] = OP_LEARN;
      out[w++] = prog[q + 1]!;
      out[w++] = prog[q + 2]!;
      out[w++] = prog[q + 3]!;
      out[w++] = prog[q + 4]!;
      out[w++] = OP.OUTPUT;
      out[w++] = port;
    } else {
      return 0;
    }
    q += 1 + operands;
  }
  out[0] = w;
  return w;
}

/**
 * The one port NORMAL at prog[q] sends to now, or -1 if it would learn, flood or drop.
 * Operands: inPort vlan srcHi srcLo dstHi dstLo (xlate.ts).
 */
function normalOutput(prog: Uint32Array, q: number, ctx: NativeProgramContext): number {
  const inPort = prog[q + 1]!;
  const vlan = prog[q + 2]!;
  const srcHi = prog[q + 3]!;
  const dstHi = prog[q + 5]!;
  if ((srcHi & 0x100) !== 0 || (dstHi & 0x100) !== 0) return -1; // multicast source (dropped) or destination (flooded)
  if (ctx.macTable.lookupFrom(prog, q + 3, vlan) !== inPort) return -1; // learning would add or move it
  const out = ctx.macTable.lookupFrom(prog, q + 5, vlan);
  if (out <= 0 || out === inPort || !ctx.enginePort(out)) return -1;
  return out;
}
