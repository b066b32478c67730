/**
 * Builders for flow-table tests: Match objects straight from (word, value, mask) triples,
 * FlowSpecs with defaults, and FlowMods — no dependency on the flow-text parser.
 */
import { DEFAULT_PRIORITY, OFPP, type Action, type FlowFlags, type FlowMod, type FlowModCommand, type FlowSpec, type Match } from '../../../src/flow/types.js';
import { KEY_WORDS } from '../../../src/packet/key.js';

/** match({ [K.NW_DST]: [0x0a000000, 0xff000000] }) — value is normalised to the mask. */
export function match(fields: Record<number, readonly [number, number]> = {}): Match {
  const value = new Uint32Array(KEY_WORDS);
  const mask = new Uint32Array(KEY_WORDS);
  for (const [w, [v, m]] of Object.entries(fields)) {
    mask[Number(w)] = m;
    value[Number(w)] = v & m;
  }
  return { value, mask };
}

/** match with exact values: exact({ [K.IN_PORT]: 1 }). */
export function exact(fields: Record<number, number> = {}): Match {
  const f: Record<number, readonly [number, number]> = {};
  for (const [w, v] of Object.entries(fields)) f[Number(w)] = [v, 0xffffffff];
  return match(f);
}

export function key(fields: Record<number, number> = {}): Uint32Array {
  const k = new Uint32Array(KEY_WORDS);
  for (const [w, v] of Object.entries(fields)) k[Number(w)] = v;
  return k;
}

export const output = (port: number): Action => ({ type: 'output', port });

export interface SpecInit extends Partial<Omit<FlowSpec, 'flags'>> {
  flags?: Partial<FlowFlags>;
}

export function spec(init: SpecInit = {}): FlowSpec {
  return {
    table: init.table ?? 0,
    priority: init.priority ?? DEFAULT_PRIORITY,
    cookie: init.cookie ?? 0n,
    cookieMask: init.cookieMask ?? 0n,
    idleTimeout: init.idleTimeout ?? 0,
    hardTimeout: init.hardTimeout ?? 0,
    flags: {
      sendFlowRem: false,
      checkOverlap: false,
      resetCounts: false,
      noPacketCounts: false,
      noByteCounts: false,
      ...init.flags,
    },
    match: init.match ?? match(),
    actions: init.actions ?? [output(1)],
  };
}

export function mod(command: FlowModCommand, init: SpecInit = {}, outPort: number = OFPP.NONE): FlowMod {
  return { command, spec: spec(init), outPort };
}

export const add = (init: SpecInit = {}): FlowMod => mod('add', init);
