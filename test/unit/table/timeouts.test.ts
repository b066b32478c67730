/**
 * Idle and hard timeouts with a fake clock: expire(now) is a sweep; hard counts from
 * installation and fires once; idle counts from the last credit (creation counts as use);
 * the reason and the final counters are reported.
 */
import { describe, expect, it } from 'vitest';
import { FlowTable } from '../../../src/table/flow-table.js';
import { K } from '../../../src/packet/key.js';
import { add, exact, key, mod, output } from './helpers.js';

const T0 = 50_000;

function clocked(): { ft: FlowTable; clock: { now: number } } {
  const clock = { now: T0 };
  return { ft: new FlowTable({ now: () => clock.now }), clock };
}
const port = (n: number) => exact({ [K.IN_PORT]: n });

describe('hard timeout', () => {
  it('fires once, at createdAt + hard_timeout, whatever the traffic', () => {
    const { ft } = clocked();
    const [r] = ft.apply([add({ match: port(1), hardTimeout: 10, flags: { sendFlowRem: true } })]).added;
    for (let t = T0; t < T0 + 10_000; t += 500) {
      ft.credit(r!.id, 1, 100, t);
      expect(ft.expire(t)).toEqual([]);
    }
    const v = ft.version;
    const events = ft.expire(T0 + 10_000);
    expect(events).toEqual([{ rule: r, reason: 'hard_timeout', nPackets: 20, nBytes: 2000, durationMs: 10_000 }]);
    expect(events[0]!.rule.flags.sendFlowRem).toBe(true);
    expect(ft.version).toBe(v + 1);
    expect(ft.rule(r!.id)).toBeUndefined();
    expect(ft.rule(ft.lookup(0, key({ [K.IN_PORT]: 1 }), 0))!.priority).toBe(0);
    expect(ft.expire(T0 + 20_000)).toEqual([]);
    expect(ft.version).toBe(v + 1);
  });

  it('a modify does not restart it; an add that replaces the flow does', () => {
    const { ft, clock } = clocked();
    ft.apply([add({ match: port(1), hardTimeout: 10 }), add({ match: port(2), hardTimeout: 10 })]);
    clock.now = T0 + 6000;
    ft.apply([mod('modify', { match: port(1), actions: [output(5)] }), add({ match: port(2), hardTimeout: 10 })]);
    const events = ft.expire(T0 + 10_000);
    expect(events.map((e) => [e.rule.match.value[K.IN_PORT], e.reason, e.rule.actions])).toEqual([[1, 'hard_timeout', [output(5)]]]);
    expect(ft.expire(T0 + 15_999)).toEqual([]);
    expect(ft.expire(T0 + 16_000).map((e) => e.rule.match.value[K.IN_PORT])).toEqual([2]);
  });
});

describe('idle timeout', () => {
  it('creation counts as use; each credit pushes the deadline', () => {
    const { ft } = clocked();
    const [r] = ft.apply([add({ match: port(1), idleTimeout: 5 })]).added;
    expect(ft.expire(T0 + 4999)).toEqual([]);
    ft.credit(r!.id, 2, 120, T0 + 3000);
    expect(ft.expire(T0 + 7999)).toEqual([]); // would have expired at T0+5000 without the credit
    const events = ft.expire(T0 + 8000);
    expect(events).toEqual([{ rule: r, reason: 'idle_timeout', nPackets: 2, nBytes: 120, durationMs: 8000 }]);
  });

  it('a credit stamped earlier than lastUsed does not move it back', () => {
    const { ft } = clocked();
    const [r] = ft.apply([add({ match: port(1), idleTimeout: 5 })]).added;
    ft.credit(r!.id, 1, 1, T0 + 4000);
    ft.credit(r!.id, 1, 1, T0 + 1000);
    expect(ft.counters(r!.id)!.lastUsed).toBe(T0 + 4000);
    expect(ft.expire(T0 + 8999)).toEqual([]);
  });
});

describe('both timeouts', () => {
  it('busy flow: hard fires; idle flow: idle fires first', () => {
    const { ft } = clocked();
    const [busy, idle] = ft.apply([
      add({ match: port(1), idleTimeout: 3, hardTimeout: 10 }),
      add({ match: port(2), idleTimeout: 3, hardTimeout: 10 }),
    ]).added;
    const reasons: [number, string, number][] = [];
    for (let t = T0; t <= T0 + 12_000; t += 1000) {
      ft.credit(busy!.id, 1, 64, t);
      for (const e of ft.expire(t)) reasons.push([e.rule.id, e.reason, t - T0]);
    }
    expect(reasons).toEqual([
      [idle!.id, 'idle_timeout', 3000],
      [busy!.id, 'hard_timeout', 10_000],
    ]);
  });

  it('both due in the same sweep: reported as hard_timeout', () => {
    const { ft } = clocked();
    ft.apply([add({ match: port(1), idleTimeout: 5, hardTimeout: 5 })]);
    expect(ft.expire(T0 + 60_000).map((e) => e.reason)).toEqual(['hard_timeout']);
  });
});

describe('sweep bookkeeping', () => {
  it('rules without timeouts are never swept; deleted timed rules leave the sweep list', () => {
    const { ft } = clocked();
    const mods = [];
    for (let i = 0; i < 2000; i++) mods.push(add({ match: port(i + 10) }));
    for (let i = 0; i < 5; i++) mods.push(add({ match: port(i + 1), idleTimeout: 1 + i }));
    ft.apply(mods);
    ft.apply([mod('delete_strict', { match: port(3) })]);
    expect(ft.nextExpiry()).toBe(T0 + 1000);
    const got = ft.expire(T0 + 10_000).map((e) => e.rule.match.value[K.IN_PORT]);
    expect(got.sort()).toEqual([1, 2, 4, 5]);
    expect(ft.size()).toBe(2001);
    expect(ft.nextExpiry()).toBe(Infinity);
  });

  it('a rejected batch restores timed rules to the sweep', () => {
    const { ft } = clocked();
    ft.apply([add({ match: port(1), hardTimeout: 2 }), add({ match: port(7), priority: 9 })]);
    expect(() =>
      ft.apply([mod('delete', {}), add({ match: exact({ [K.IN_PORT]: 7, [K.TP_DST]: 1 }), priority: 9, flags: { checkOverlap: true } }), add({ match: port(7), priority: 9, flags: { checkOverlap: true } })]),
    ).toThrow(/OVERLAP|check_overlap/);
    expect(ft.expire(T0 + 2000).map((e) => e.reason)).toEqual(['hard_timeout']);
  });
});
