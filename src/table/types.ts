/**
 * The flow table as the data path sees it (implemented by table/flow-table.ts). The data
 * path looks rules up by key, reads their actions, and credits counters; a change of
 * `version` invalidates anything cached from earlier lookups.
 */
import type { FlowRemovedReason, InstalledFlow } from '../flow/types.js';

export interface Rule extends InstalledFlow {
  /** Slot id, stable for the rule's life; reused after the rule is removed. */
  readonly id: number;
}

export interface FlowRemovedEvent {
  rule: Rule;
  reason: FlowRemovedReason;
  nPackets: number;
  nBytes: number;
  durationMs: number;
}

export interface TableView {
  /** Increments on every change to any table (flow added, modified, removed). */
  readonly version: number;
  /**
   * Highest-priority rule in `table` matching the key words key[keyOff … keyOff+KEY_WORDS),
   * or -1 when none does (a table miss). Allocates nothing.
   */
  lookup(table: number, key: Uint32Array, keyOff: number): number;
  /** The rule with this id (undefined if the slot is free). */
  rule(id: number): Rule | undefined;
  /** Attribute `nPackets` packets and `nBytes` bytes to rule `id`, used at `now` (ms). Allocates nothing. */
  credit(id: number, nPackets: number, nBytes: number, now: number): void;
  /**
   * credit() with the time read from clock[0]: the data path's form. A time in ms is past
   * 2^30 after 12.4 days of uptime, and such a number passed as an argument to a function
   * that is not inlined is boxed into a heap number on every call; an array never is.
   */
  creditAt(id: number, nPackets: number, nBytes: number, clock: Float64Array): void;
}
