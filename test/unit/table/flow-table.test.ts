/**
 * Flow-mod semantics, one hand-written case per rule of OpenFlow 1.3.5 §6.4 (and Open
 * vSwitch where it is more specific): add / replace, modify and delete, strict and
 * non-strict, cookie and out_port filters, check_overlap, all-or-none batches, validation,
 * the table-miss rule, dump order and filters.
 */
import { describe, expect, it } from 'vitest';
import { FlowModError, FlowTable, type FlowModErrorCode } from '../../../src/table/flow-table.js';
import { K, KEY_WORDS } from '../../../src/packet/key.js';
import { OFPP, type FlowMod } from '../../../src/flow/types.js';
import { add, exact, key, match, mod, output, spec } from './helpers.js';

const T0 = 1_000_000;

function table(now = T0): FlowTable {
  return new FlowTable({ now: () => now });
}

/** A compact view of the non-miss rules, in dump order. */
function view(ft: FlowTable): string[] {
  return ft
    .dump()
    .filter((r) => !(r.priority === 0 && r.match.mask.every((m) => m === 0)))
    .map((r) => `t${r.table} p${r.priority} c${r.cookie} ${r.actions.map((a) => (a.type === 'output' ? `out${a.port}` : a.type)).join(',')}`);
}

const port = (n: number) => exact({ [K.IN_PORT]: n });
const net = (v: number, m: number) => match({ [K.NW_DST]: [v, m] });
const ip = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

function expectError(fn: () => unknown, code: FlowModErrorCode, index: number, text?: RegExp): FlowModError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FlowModError);
    const err = e as FlowModError;
    expect(err.code).toBe(code);
    expect(err.index).toBe(index);
    if (text) expect(err.message).toMatch(text);
    return err;
  }
  throw new Error('expected a FlowModError');
}

describe('table-miss', () => {
  it('default: priority=0, match all, actions=NORMAL in table 0; version starts at 1', () => {
    const ft = table();
    expect(ft.version).toBe(1);
    expect(ft.size()).toBe(1);
    const r = ft.rule(ft.lookup(0, key({ [K.IN_PORT]: 7 }), 0))!;
    expect(r.priority).toBe(0);
    expect(r.actions).toEqual([{ type: 'normal' }]);
    expect(ft.lookup(1, key(), 0)).toBe(-1); // other tables: no rule
  });

  it('tableMiss: [] installs a drop rule (counted), and del-flows removes it like any flow', () => {
    const ft = new FlowTable({ now: () => T0, tableMiss: [] });
    const id = ft.lookup(0, key(), 0);
    expect(ft.rule(id)!.actions).toEqual([]);
    ft.credit(id, 3, 180, T0);
    expect(ft.counters(id)!.nPackets).toBe(3);
    ft.apply([mod('delete')]);
    expect(ft.lookup(0, key(), 0)).toBe(-1);
  });
});

describe('add', () => {
  it('adds a rule with zero counters and bumps version once per batch', () => {
    const ft = table();
    const v = ft.version;
    const res = ft.apply([add({ match: port(1), priority: 100, cookie: 0x10n }), add({ match: port(2), priority: 100 })]);
    expect(ft.version).toBe(v + 1);
    expect(res.version).toBe(v + 1);
    expect(res.added.map((r) => r.cookie)).toEqual([0x10n, 0n]);
    const id = ft.lookup(0, key({ [K.IN_PORT]: 1 }), 0);
    expect(id).toBe(res.added[0]!.id);
    expect(ft.counters(id)).toEqual({ nPackets: 0, nBytes: 0, lastUsed: T0, durationMs: 0 });
  });

  it('same match, different priority: two rules', () => {
    const ft = table();
    ft.apply([add({ match: port(1), priority: 100 }), add({ match: port(1), priority: 200 })]);
    expect(ft.size(0)).toBe(3);
    expect(ft.rule(ft.lookup(0, key({ [K.IN_PORT]: 1 }), 0))!.priority).toBe(200);
  });

  it('identical match+priority replaces: new actions/cookie/timeouts/creation time, counters copied, same id', () => {
    let now = T0;
    const ft = new FlowTable({ now: () => now });
    const [old] = ft.apply([add({ match: port(1), priority: 100, cookie: 1n, hardTimeout: 10, actions: [output(1)] })]).added;
    ft.credit(old!.id, 5, 500, T0 + 10);
    now = T0 + 2000;
    const res = ft.apply([add({ match: port(1), priority: 100, cookie: 2n, idleTimeout: 7, actions: [output(2)] })]);
    expect(res.replaced).toEqual([old]);
    expect(res.removed).toEqual([]); // a replaced flow sends no flow-removed
    const neu = res.added[0]!;
    expect(neu.id).toBe(old!.id);
    expect(neu).toMatchObject({ cookie: 2n, idleTimeout: 7, hardTimeout: 0, createdAt: T0 + 2000, actions: [output(2)] });
    expect(ft.size(0)).toBe(2);
    expect(ft.counters(neu.id)).toEqual({ nPackets: 5, nBytes: 500, lastUsed: T0 + 2000, durationMs: 0 });
  });

  it('identical match+priority with reset_counts: counters cleared', () => {
    const ft = table();
    const [old] = ft.apply([add({ match: port(1), priority: 100 })]).added;
    ft.credit(old!.id, 5, 500, T0);
    const [neu] = ft.apply([add({ match: port(1), priority: 100, flags: { resetCounts: true } })]).added;
    expect(ft.counters(neu!.id)).toMatchObject({ nPackets: 0, nBytes: 0 });
  });

  it('rule ids are slot numbers, reused after deletion', () => {
    const ft = table();
    const [a] = ft.apply([add({ match: port(1) })]).added;
    ft.apply([mod('delete_strict', { match: port(1) })]);
    const [b] = ft.apply([add({ match: port(2) })]).added;
    expect(b!.id).toBe(a!.id);
    expect(ft.counters(b!.id)!.nPackets).toBe(0);
  });
});

describe('check_overlap (OFPFF_CHECK_OVERLAP)', () => {
  const base = (): FlowTable => {
    const ft = table();
    ft.apply([add({ match: net(ip(10, 0, 0, 0), 0xff000000), priority: 100, cookie: 0xaan })]);
    return ft;
  };

  it('rejects an overlapping rule of the same priority with OVERLAP and the mod index', () => {
    const ft = base();
    const before = ft.dump();
    const v = ft.version;
    expectError(
      () =>
        ft.apply([
          add({ match: port(9), priority: 5 }),
          add({ match: exact({ [K.IN_PORT]: 1, [K.NW_DST]: ip(10, 1, 2, 3) }), priority: 100, flags: { checkOverlap: true } }),
        ]),
      'OVERLAP',
      1,
      /flow-mod #1: match: check_overlap.*priority 100.*0xaa/,
    );
    expect(ft.version).toBe(v);
    expect(ft.dump()).toEqual(before);
  });

  it('accepts: other priority, disjoint match, or an identical rule (replaced, as Open vSwitch)', () => {
    const ft = base();
    ft.apply([
      add({ match: net(ip(10, 1, 0, 0), 0xffff0000), priority: 101, flags: { checkOverlap: true } }),
      add({ match: net(ip(11, 0, 0, 0), 0xff000000), priority: 100, flags: { checkOverlap: true } }),
      add({ match: net(ip(10, 0, 0, 0), 0xff000000), priority: 100, cookie: 0xbbn, flags: { checkOverlap: true } }),
    ]);
    expect(view(ft)).toEqual(['t0 p101 c0 out1', 't0 p100 c0 out1', 't0 p100 c187 out1']); // the replacement counts as newest
  });

  it('sees the earlier mods of the same batch (a delete clears the way; an add creates a conflict)', () => {
    const ft = base();
    ft.apply([
      mod('delete', { match: net(ip(10, 0, 0, 0), 0xff000000) }),
      add({ match: exact({ [K.NW_DST]: ip(10, 0, 0, 1) }), priority: 100, flags: { checkOverlap: true } }),
    ]);
    expect(view(ft)).toEqual(['t0 p100 c0 out1']);
    expectError(
      () =>
        ft.apply([
          add({ match: port(3), priority: 7 }),
          add({ match: exact({ [K.IN_PORT]: 3, [K.NW_DST]: 4 }), priority: 7, flags: { checkOverlap: true } }),
        ]),
      'OVERLAP',
      1,
    );
  });

  it('only the requested table counts', () => {
    const ft = base();
    ft.apply([add({ table: 1, match: net(ip(10, 0, 0, 0), 0xff000000), priority: 100, flags: { checkOverlap: true } })]);
    expect(ft.size(1)).toBe(1);
  });
});

describe('all-or-none batches', () => {
  it('a rejected batch leaves rules, ids, counters, subtables and version unchanged', () => {
    const ft = table();
    const { added } = ft.apply([
      add({ match: port(1), priority: 10, hardTimeout: 30 }),
      add({ match: port(2), priority: 10, cookie: 5n }),
      add({ match: net(ip(10, 0, 0, 0), 0xff000000), priority: 20, flags: { sendFlowRem: true } }),
    ]);
    for (const r of added) ft.credit(r.id, r.id + 1, 100 * (r.id + 1), T0 + 5);
    const snapshot = () => ({
      version: ft.version,
      size: ft.size(),
      subtables: ft.nSubtables(0),
      rules: ft.dump(),
      counters: ft.dump().map((r) => ft.counters(r.id, T0 + 9)),
      lookup: ft.lookup(0, key({ [K.IN_PORT]: 2 }), 0),
    });
    const before = snapshot();
    expectError(
      () =>
        ft.apply([
          mod('delete', { match: port(1) }), // frees a slot
          add({ match: port(4), priority: 10 }), // reuses it
          mod('modify', { match: match(), actions: [output(77)], flags: { resetCounts: true } }),
          add({ match: port(2), priority: 10, cookie: 6n }), // replaces
          mod('delete', {}), // everything, including the table-miss
          add({ match: port(8), priority: 3 }),
          add({ match: match({ [K.IN_PORT]: [8, 0xf] }), priority: 3, flags: { checkOverlap: true } }), // conflict
        ]),
      'OVERLAP',
      6,
    );
    expect(snapshot()).toEqual(before);
    // The restored table still behaves: ids and the free-id stack are consistent.
    const res = ft.apply([add({ match: port(5) }), add({ match: port(6) })]);
    const ids = new Set([...ft.dump().map((r) => r.id)]);
    expect(ids.size).toBe(ft.size());
    expect(res.added.every((r) => ft.rule(r.id) === r)).toBe(true);
  });

  it('validation errors are found before anything is applied, naming the field', () => {
    const ft = table();
    const v = ft.version;
    const bad: [FlowMod, FlowModErrorCode, RegExp][] = [
      [add({ table: 255 }), 'BAD_TABLE_ID', /table: 255 is out of range 0..254/],
      [mod('delete', { table: 256 }), 'BAD_TABLE_ID', /table/],
      [add({ priority: 65536 }), 'BAD_PRIORITY', /priority/],
      [add({ idleTimeout: -1 }), 'BAD_TIMEOUT', /idle_timeout/],
      [add({ hardTimeout: 70000 }), 'BAD_TIMEOUT', /hard_timeout/],
      [add({ cookie: 1n << 64n }), 'BAD_COOKIE', /cookie/],
      [add({ match: { value: Uint32Array.of(1, ...new Array(KEY_WORDS - 1).fill(0)), mask: new Uint32Array(KEY_WORDS) } }), 'BAD_MATCH', /match.value\[0\]: 0x1 has bits outside mask 0x0/],
      [add({ match: match({ [K.L4_OFF]: [0, 0xffff] }) }), 'BAD_MATCH', /match.mask\[33\].*offset/],
      [add({ match: { value: new Uint32Array(3), mask: new Uint32Array(3) } }), 'BAD_MATCH', /match.value/],
      [add({ table: 2, actions: [{ type: 'goto_table', table: 1 }] }), 'BAD_ACTION', /actions\[0\]: goto_table:1 must name a later table/],
      [add({ actions: [{ type: 'drop' }, output(1)] }), 'BAD_ACTION', /drop must be the only action/],
      [{ ...add(), command: 'frob' as never }, 'BAD_COMMAND', /command/],
      [{ ...mod('delete'), outPort: -3 }, 'BAD_OUT_PORT', /out_port/],
      [{ ...add(), spec: { ...spec(), flags: undefined as never } }, 'BAD_FLAGS', /flags: missing/],
    ];
    for (const [m, code, text] of bad) {
      expectError(() => ft.apply([add({ match: port(1) }), m]), code, 1, text);
    }
    expect(ft.version).toBe(v);
    expect(ft.size()).toBe(1);
  });

  it('an empty batch, or one that matches nothing, changes nothing (version too)', () => {
    const ft = table();
    const v = ft.version;
    expect(ft.apply([]).version).toBe(v);
    const res = ft.apply([mod('modify', { match: port(42) }), mod('delete_strict', { match: port(42) })]);
    expect(res).toEqual({ version: v, added: [], replaced: [], modified: [], removed: [] });
    expect(ft.version).toBe(v);
  });
});

describe('modify (non-strict)', () => {
  const setup = (): FlowTable => {
    const ft = table();
    ft.apply([
      add({ match: exact({ [K.IN_PORT]: 1, [K.NW_DST]: ip(10, 0, 0, 1) }), priority: 300, cookie: 1n, idleTimeout: 60, actions: [output(1)] }),
      add({ match: exact({ [K.IN_PORT]: 1 }), priority: 200, cookie: 2n, actions: [output(1)] }),
      add({ match: exact({ [K.IN_PORT]: 2 }), priority: 200, cookie: 3n, actions: [output(1)] }),
      add({ table: 1, match: exact({ [K.IN_PORT]: 1 }), priority: 100, cookie: 4n, actions: [output(1)] }),
    ]);
    return ft;
  };

  it('changes the actions of every flow the match covers, any priority, in the given table', () => {
    const ft = setup();
    const res = ft.apply([mod('modify', { match: port(1), priority: 1, actions: [output(9)] })]);
    expect(res.modified.map((r) => r.cookie)).toEqual([1n, 2n]);
    expect(view(ft)).toEqual(['t0 p300 c1 out9', 't0 p200 c2 out9', 't0 p200 c3 out1', 't1 p100 c4 out1']);
  });

  it('does not touch flows less specific than the match', () => {
    const ft = setup();
    ft.apply([mod('modify', { match: exact({ [K.IN_PORT]: 1, [K.NW_DST]: ip(10, 0, 0, 1) }), actions: [output(9)] })]);
    expect(view(ft)).toEqual(['t0 p300 c1 out9', 't0 p200 c2 out1', 't0 p200 c3 out1', 't1 p100 c4 out1']);
  });

  it('table 255 modifies in all tables (as ovs-ofctl mod-flows)', () => {
    const ft = setup();
    ft.apply([mod('modify', { table: 255, match: port(1), actions: [output(9)] })]);
    expect(view(ft)).toEqual(['t0 p300 c1 out9', 't0 p200 c2 out9', 't0 p200 c3 out1', 't1 p100 c4 out9']);
  });

  it('keeps counters, timeouts, flags, creation time and id; reset_counts zeroes counters', () => {
    let now = T0;
    const ft = new FlowTable({ now: () => now });
    const [r] = ft.apply([add({ match: port(1), idleTimeout: 60, hardTimeout: 90, flags: { sendFlowRem: true } })]).added;
    ft.credit(r!.id, 4, 400, T0 + 1);
    now = T0 + 5000;
    const [m] = ft.apply([mod('modify', { match: port(1), actions: [output(3)], idleTimeout: 1, hardTimeout: 1 })]).modified;
    expect(m).toMatchObject({ id: r!.id, idleTimeout: 60, hardTimeout: 90, createdAt: T0, flags: { sendFlowRem: true } });
    expect(ft.counters(r!.id)).toEqual({ nPackets: 4, nBytes: 400, lastUsed: T0 + 1, durationMs: 5000 });
    ft.apply([mod('modify', { match: port(1), actions: [output(4)], flags: { resetCounts: true } })]);
    expect(ft.counters(r!.id)).toMatchObject({ nPackets: 0, nBytes: 0 });
  });

  it('cookie/mask selects; a cookie without mask sets the cookie', () => {
    const ft = setup();
    ft.apply([mod('modify', { match: match(), cookie: 2n, cookieMask: 0xfn, actions: [output(7)] })]);
    expect(view(ft)).toEqual(['t0 p300 c1 out1', 't0 p200 c2 out7', 't0 p200 c3 out1', 't1 p100 c4 out1']);
    ft.apply([mod('modify', { match: port(2), cookie: 0x33n, actions: [output(6)] })]);
    expect(view(ft)).toEqual(['t0 p300 c1 out1', 't0 p200 c2 out7', 't0 p200 c51 out6', 't1 p100 c4 out1']);
  });

  it('matches nothing: no flow is added (OpenFlow 1.1+)', () => {
    const ft = setup();
    const v = ft.version;
    expect(ft.apply([mod('modify', { match: port(5) })]).modified).toEqual([]);
    expect(ft.size()).toBe(5);
    expect(ft.version).toBe(v);
  });

  it('out_port is ignored by modify', () => {
    const ft = setup();
    ft.apply([mod('modify', { match: port(2), actions: [output(9)] }, 42)]);
    expect(view(ft)[2]).toBe('t0 p200 c3 out9');
  });
});

describe('modify_strict', () => {
  it('only the flow with identical match and priority', () => {
    const ft = table();
    ft.apply([
      add({ match: port(1), priority: 100, cookie: 1n }),
      add({ match: port(1), priority: 200, cookie: 2n }),
      add({ match: exact({ [K.IN_PORT]: 1, [K.NW_DST]: 5 }), priority: 100, cookie: 3n }),
    ]);
    const res = ft.apply([mod('modify_strict', { match: port(1), priority: 100, actions: [output(9)] })]);
    expect(res.modified.map((r) => r.cookie)).toEqual([1n]);
    expect(view(ft)).toEqual(['t0 p200 c2 out1', 't0 p100 c1 out9', 't0 p100 c3 out1']);
    // Wrong priority: nothing.
    expect(ft.apply([mod('modify_strict', { match: port(1), priority: 150, actions: [output(8)] })]).modified).toEqual([]);
    // Cookie filter applies too.
    expect(ft.apply([mod('modify_strict', { match: port(1), priority: 200, cookie: 9n, cookieMask: 0xffn })]).modified).toEqual([]);
  });
});

describe('delete (non-strict)', () => {
  const setup = (clock: () => number = () => T0): FlowTable => {
    const ft = new FlowTable({ now: clock });
    ft.apply([
      add({ match: exact({ [K.IN_PORT]: 1, [K.NW_DST]: ip(10, 0, 0, 1) }), priority: 300, cookie: 0x11n, actions: [output(2)], flags: { sendFlowRem: true } }),
      add({ match: exact({ [K.IN_PORT]: 1 }), priority: 200, cookie: 0x12n, actions: [output(3)] }),
      add({ match: net(ip(10, 0, 0, 0), 0xff000000), priority: 200, cookie: 0x21n, actions: [{ type: 'normal' }] }),
      add({ table: 1, match: exact({ [K.IN_PORT]: 1 }), priority: 100, cookie: 0x22n, actions: [output(2)] }),
    ]);
    return ft;
  };

  it('removes every flow the match covers in the table, any priority, with events and final counters', () => {
    let now = T0;
    const ft = setup(() => now);
    const victim = ft.dump().find((r) => r.cookie === 0x11n)!;
    ft.credit(victim.id, 2, 128, T0 + 100);
    now = T0 + 3000;
    const res = ft.apply([mod('delete', { match: port(1) })]);
    expect(res.removed.map((e) => [e.rule.cookie, e.reason, e.nPackets, e.nBytes, e.durationMs])).toEqual([
      [0x11n, 'delete', 2, 128, 3000],
      [0x12n, 'delete', 0, 0, 3000],
    ]);
    expect(res.removed[0]!.rule.flags.sendFlowRem).toBe(true);
    expect(res.removed[1]!.rule.flags.sendFlowRem).toBe(false); // reported anyway; the daemon filters
    expect(view(ft)).toEqual(['t0 p200 c33 normal', 't1 p100 c34 out2']);
  });

  it('table 255: all tables; an empty match deletes everything, table-miss included', () => {
    const ft = setup();
    ft.apply([mod('delete', { table: 255, match: port(1) })]);
    expect(view(ft)).toEqual(['t0 p200 c33 normal']);
    ft.apply([mod('delete', { table: 255 })]);
    expect(ft.size()).toBe(0);
    expect(ft.nSubtables(0)).toBe(0);
  });

  it('out_port filter: only flows that output to the port (NORMAL by its reserved number)', () => {
    const ft = setup();
    ft.apply([mod('delete', { table: 255 }, 2)]);
    expect(view(ft)).toEqual(['t0 p200 c18 out3', 't0 p200 c33 normal']);
    ft.apply([mod('delete', {}, OFPP.NORMAL)]);
    expect(view(ft)).toEqual(['t0 p200 c18 out3']);
    expect(ft.size()).toBe(1); // the table-miss (actions=NORMAL) went too
  });

  it('cookie/mask filter', () => {
    const ft = setup();
    ft.apply([mod('delete', { table: 255, cookie: 0x20n, cookieMask: 0xf0n })]);
    expect(view(ft)).toEqual(['t0 p300 c17 out2', 't0 p200 c18 out3']);
  });
});

describe('delete_strict', () => {
  it('only the flow with identical match and priority (and cookie/out_port filters)', () => {
    const ft = table();
    ft.apply([
      add({ match: port(1), priority: 100, cookie: 1n, actions: [output(5)] }),
      add({ match: port(1), priority: 200, cookie: 2n }),
      add({ match: exact({ [K.IN_PORT]: 1, [K.NW_DST]: 5 }), priority: 100, cookie: 3n }),
    ]);
    expect(ft.apply([mod('delete_strict', { match: port(1), priority: 100 }, 6)]).removed).toEqual([]);
    expect(ft.apply([mod('delete_strict', { match: port(1), priority: 100, cookie: 7n, cookieMask: 7n })]).removed).toEqual([]);
    const res = ft.apply([mod('delete_strict', { match: port(1), priority: 100 }, 5)]);
    expect(res.removed.map((e) => e.rule.cookie)).toEqual([1n]);
    expect(view(ft)).toEqual(['t0 p200 c2 out1', 't0 p100 c3 out1']);
  });
});

describe('dump', () => {
  it('orders by table, then priority descending, then oldest first', () => {
    const ft = table();
    ft.apply([
      add({ table: 2, match: port(1), priority: 1, cookie: 1n }),
      add({ match: port(2), priority: 5, cookie: 2n }),
      add({ match: port(3), priority: 9, cookie: 3n }),
      add({ match: port(4), priority: 5, cookie: 4n }),
    ]);
    expect(ft.dump().map((r) => [r.table, r.priority, r.cookie])).toEqual([
      [0, 9, 3n],
      [0, 5, 2n],
      [0, 5, 4n],
      [0, 0, 0n],
      [2, 1, 1n],
    ]);
  });

  it('filters: table, match (covered), strict, cookie/mask, out_port', () => {
    const ft = table();
    ft.apply([
      add({ match: port(1), priority: 5, cookie: 0x11n, actions: [output(3)] }),
      add({ match: exact({ [K.IN_PORT]: 1, [K.TP_DST]: 22 }), priority: 6, cookie: 0x12n }),
      add({ table: 1, match: port(1), priority: 5, cookie: 0x21n }),
    ]);
    const cookies = (rs: { cookie: bigint }[]) => rs.map((r) => r.cookie);
    expect(cookies(ft.dump({ table: 1 }))).toEqual([0x21n]);
    expect(cookies(ft.dump({ match: port(1) }))).toEqual([0x12n, 0x11n, 0x21n]);
    expect(cookies(ft.dump({ match: port(1), strict: true, priority: 5 }))).toEqual([0x11n, 0x21n]);
    expect(cookies(ft.dump({ match: port(1), strict: true }))).toEqual([]); // priority 32768
    expect(cookies(ft.dump({ cookie: 0x10n, cookieMask: 0xf0n }))).toEqual([0x12n, 0x11n]);
    expect(cookies(ft.dump({ outPort: 3 }))).toEqual([0x11n]);
    expect(ft.find(0, port(1), 5)!.cookie).toBe(0x11n);
    expect(ft.find(0, port(1), 6)).toBeUndefined();
  });
});

describe('spec builder sanity', () => {
  it('spec() defaults: table 0, priority 32768, no flags', () => {
    expect(spec()).toMatchObject({ table: 0, priority: 32768, cookie: 0n, flags: { checkOverlap: false } });
  });
});

describe('rulesInAddOrder (what a snapshot installs elsewhere)', () => {
  it('lists every rule of every table in the order added, a modified rule keeping its place', () => {
    const ft = table();
    ft.apply([add({ priority: 1, actions: [output(1)] })]);
    ft.apply([add({ table: 2, priority: 9, actions: [output(2)] })]);
    ft.apply([add({ priority: 50, actions: [output(3)] })]);
    ft.apply([mod('modify_strict', { priority: 1, actions: [output(4)] })]);
    ft.apply([add({ priority: 7, actions: [output(5)] })]);
    ft.apply([mod('delete_strict', { table: 2, priority: 9 })]);
    const order = ft.rulesInAddOrder().map((r) => `${r.table}/${r.priority}/${JSON.stringify(r.actions)}`);
    expect(order).toEqual(['0/0/[{"type":"normal"}]', '0/1/[{"type":"output","port":4}]', '0/50/[{"type":"output","port":3}]', '0/7/[{"type":"output","port":5}]']);
  });
});

describe('adopt (a table built aside takes over)', () => {
  it('takes the other table\'s rules, counters and ids; the version moves past both', () => {
    const live = table();
    live.apply([add({ priority: 5, actions: [output(1)] })]);
    live.apply([add({ priority: 6, actions: [output(2)] })]);
    const aside = table();
    aside.apply([mod('delete', {})]);
    aside.apply([add({ priority: 9, actions: [output(7)] }), add({ table: 3, priority: 2, actions: [output(8)] })]);
    const before = Math.max(live.version, aside.version);
    live.adopt(aside);
    expect(live.version).toBeGreaterThan(before);
    expect(live.rulesInAddOrder().map((r) => `${r.table}/${r.priority}`)).toEqual(['0/9', '3/2']);
    expect(live.size()).toBe(2);
    expect(live.size(3)).toBe(1);
    // Lookups see the adopted rules (table 0: priority 9 wins; table 3: its one rule).
    expect(live.rule(live.lookup(0, key(), 0))?.priority).toBe(9);
    expect(live.rule(live.lookup(3, key(), 0))?.actions).toEqual([output(8)]);
    // It goes on working as a table: adds, deletes and lookups.
    live.apply([add({ priority: 1, actions: [output(3)] }), mod('delete_strict', { priority: 9 })]);
    expect(live.rulesInAddOrder().map((r) => `${r.table}/${r.priority}`)).toEqual(['3/2', '0/1']);
    expect(live.rule(live.lookup(0, key(), 0))?.priority).toBe(1);
  });
});
