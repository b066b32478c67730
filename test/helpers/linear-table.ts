/**
 * LinearTable: a brute-force TableView for data-path tests — a linear scan over every rule,
 * highest priority wins, ties go to the rule added first. Not for production: lookups cost
 * O(rules). Counters are plain arrays by rule id.
 */
import type { Action, FlowFlags, Match } from '../../src/flow/types.js';
import { KEY_WORDS } from '../../src/packet/key.js';
import type { Rule, TableView } from '../../src/table/types.js';

const FLAGS: FlowFlags = { sendFlowRem: false, checkOverlap: false, resetCounts: false, noPacketCounts: false, noByteCounts: false };

/** Exact match on the given key words (word index → value), wildcard elsewhere. */
export function exact(fields: Readonly<Record<number, number>> = {}): Match {
  const value = new Uint32Array(KEY_WORDS);
  const mask = new Uint32Array(KEY_WORDS);
  for (const [w, v] of Object.entries(fields)) {
    value[Number(w)] = v >>> 0;
    mask[Number(w)] = 0xffffffff;
  }
  return { value, mask };
}

/** Masked match: word index → [value, mask]. */
export function masked(fields: Readonly<Record<number, readonly [number, number]>>): Match {
  const value = new Uint32Array(KEY_WORDS);
  const mask = new Uint32Array(KEY_WORDS);
  for (const [w, [v, m]] of Object.entries(fields)) {
    value[Number(w)] = (v & m) >>> 0;
    mask[Number(w)] = m >>> 0;
  }
  return { value, mask };
}

export interface AddRule {
  table?: number;
  priority?: number;
  cookie?: bigint;
  match?: Match;
  actions: Action[];
}

export class LinearTable implements TableView {
  version = 1;
  readonly rules: (Rule | undefined)[] = [];
  readonly nPackets: number[] = [];
  readonly nBytes: number[] = [];
  readonly lastUsed: number[] = [];
  nLookups = 0;

  /** With `tableMiss` (default true) table 0 gets priority=0,actions=NORMAL, as FlowTable. */
  constructor(opts: { tableMiss?: boolean } = {}) {
    if (opts.tableMiss ?? true) this.add({ priority: 0, actions: [{ type: 'normal' }] });
  }

  add(r: AddRule): number {
    let id = this.rules.indexOf(undefined);
    if (id < 0) id = this.rules.length;
    this.rules[id] = {
      id,
      table: r.table ?? 0,
      priority: r.priority ?? 32768,
      cookie: r.cookie ?? 0n,
      idleTimeout: 0,
      hardTimeout: 0,
      flags: FLAGS,
      match: r.match ?? exact(),
      actions: r.actions,
      createdAt: 0,
    };
    this.nPackets[id] = 0;
    this.nBytes[id] = 0;
    this.lastUsed[id] = 0;
    this.version++;
    return id;
  }

  remove(id: number): void {
    this.rules[id] = undefined;
    this.version++;
  }

  setActions(id: number, actions: Action[]): void {
    const r = this.rules[id]!;
    this.rules[id] = { ...r, actions };
    this.version++;
  }

  lookup(table: number, key: Uint32Array, keyOff: number): number {
    this.nLookups++;
    let best = -1;
    let bestPri = -1;
    const rules = this.rules;
    for (let id = 0; id < rules.length; id++) {
      const r = rules[id];
      if (r === undefined || r.table !== table || r.priority <= bestPri) continue;
      const v = r.match.value;
      const m = r.match.mask;
      let ok = true;
      for (let w = 0; w < KEY_WORDS; w++) {
        if (((key[keyOff + w]! & m[w]!) >>> 0) !== v[w]) {
          ok = false;
          break;
        }
      }
      if (ok) {
        best = id;
        bestPri = r.priority;
      }
    }
    return best;
  }

  rule(id: number): Rule | undefined {
    return this.rules[id];
  }

  credit(id: number, nPackets: number, nBytes: number, now: number): void {
    this.nPackets[id]! += nPackets;
    this.nBytes[id]! += nBytes;
    this.lastUsed[id] = now;
  }

  creditAt(id: number, nPackets: number, nBytes: number, clock: Float64Array): void {
    this.credit(id, nPackets, nBytes, clock[0]!);
  }
}
