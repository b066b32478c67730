/**
 * parse(print(f)) = f over random valid FlowSpecs: every field (with and without masks, in
 * every protocol context that allows it) and every action, for add, modify and delete,
 * with and without port names.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIELDS, FIELD_NAMES, type FieldName } from '../../../src/flow/fields.js';
import { newMatch, setField } from '../../../src/flow/match.js';
import { MAX_PORT, parseActions, parseFlow } from '../../../src/flow/parse.js';
import { prereqOk } from '../../../src/flow/prereq.js';
import { PRINT_NAME, formatActions, formatFlow, formatFlowHead, formatMatch } from '../../../src/flow/print.js';
import { OFPP, type Action, type FlowSpec, type Match, type PortNames, type WritableField } from '../../../src/flow/types.js';

const ports: PortNames = {
  numberOf: (n) => ({ vm1: 1, vm2: 2, uplink: 100, 'tap-x.y': 4000 })[n],
  nameOf: (p) => ({ 1: 'vm1', 2: 'vm2', 100: 'uplink', 4000: 'tap-x.y' })[p],
};

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const port = fc.oneof(fc.constantFrom(1, 2, 100, 4000), fc.integer({ min: 0, max: MAX_PORT }));

/** Protocol contexts: dl_type and nw_proto (undefined = not matched). */
const context = fc.oneof(
  fc.constant({ dl: undefined as number | undefined, proto: undefined as number | undefined }),
  fc.record({ dl: fc.constant(0x0800), proto: fc.constantFrom(undefined, 1, 6, 17, 132, 47) }),
  fc.record({ dl: fc.constant(0x86dd), proto: fc.constantFrom(undefined, 58, 6, 17, 132, 0) }),
  fc.record({ dl: fc.constantFrom(0x0806, 0x8035), proto: fc.constant(undefined) }),
  fc.record({ dl: fc.constantFrom(0x88cc, 0x6558, 0x05ff, 0x8847), proto: fc.constant(undefined) }),
);

const FRAGS: [number, number][] = [
  [0, 1],
  [1, 1],
  [1, 3],
  [3, 3],
  [0, 2],
];

/** Random value/mask words for one field (mask undefined = exact). */
function fieldWords(f: FieldName): fc.Arbitrary<{ value: number[]; mask: number[] | undefined }> {
  const spec = FIELDS[f];
  const n = spec.words.length;
  switch (spec.format) {
    case 'port':
      return fc.oneof(port, fc.constant(OFPP.LOCAL)).map((p) => ({ value: [p], mask: undefined }));
    case 'vlan_vid':
      return fc.integer({ min: 0, max: 4095 }).map((v) => ({ value: [0x1000 | v], mask: undefined }));
    case 'vlan_pcp':
      return fc.integer({ min: 0, max: 7 }).map((v) => ({ value: [(v << 13) | 0x1000], mask: undefined }));
    case 'frag':
      return fc.constantFrom(...FRAGS).map(([v, m]) => ({ value: [v], mask: [m] }));
    default: {
      const value = fc.array(u32, { minLength: n, maxLength: n }).map((ws) => ws.map((w, i) => (w & spec.wordMask[i]!) >>> 0));
      if (!spec.maskable) return value.map((v) => ({ value: v, mask: undefined }));
      const mask = fc
        .array(u32, { minLength: n, maxLength: n })
        .map((ws) => ws.map((w, i) => (w & spec.wordMask[i]!) >>> 0))
        .filter((ws) => ws.some((w) => w !== 0));
      // CIDR-style masks are what operators type; arbitrary ones must work too.
      const prefix = fc.integer({ min: 1, max: 32 * n }).map((len) =>
        spec.wordMask.map((fm, i) => {
          const bits = Math.max(0, Math.min(32, len - 32 * i));
          return ((bits === 0 ? 0 : bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0) & fm) >>> 0;
        }),
      ).filter((ws) => ws.some((w) => w !== 0));
      return fc.record({ value, mask: fc.oneof(fc.constant(undefined), mask, prefix) });
    }
  }
}

const CONTEXT_FIELDS = new Set<FieldName>(['dl_type', 'nw_proto']);

const matchArb: fc.Arbitrary<Match> = context.chain((ctx) => {
  const base = newMatch();
  if (ctx.dl !== undefined) setField(base, 'dl_type', [ctx.dl]);
  if (ctx.proto !== undefined) setField(base, 'nw_proto', [ctx.proto]);
  const allowed = FIELD_NAMES.filter((f) => !CONTEXT_FIELDS.has(f) && prereqOk(FIELDS[f].prereq, base));
  return fc
    .tuple(...allowed.map((f) => fc.option(fieldWords(f), { freq: 2 })), fc.boolean())
    .map((parts) => {
      const m = { value: base.value.slice(), mask: base.mask.slice() };
      const untagged = parts[parts.length - 1] as boolean;
      allowed.forEach((f, i) => {
        const w = parts[i] as { value: number[]; mask: number[] | undefined } | null;
        if (w !== null) setField(m, f, w.value, w.mask);
      });
      if (untagged && m.mask[6] === 0) setField(m, 'vlan_tci', [0], [0xffff]); // dl_vlan=0xffff
      return m;
    });
});

const WRITABLE: WritableField[] = ['dl_src', 'dl_dst', 'dl_vlan', 'dl_vlan_pcp', 'vlan_tci', 'nw_src', 'nw_dst', 'nw_tos', 'ip_dscp', 'nw_ttl', 'tp_src', 'tp_dst', 'ipv6_src', 'ipv6_dst', 'tun_id', 'metadata'];

function bigOf(nBits: number): fc.Arbitrary<bigint> {
  return fc.bigInt({ min: 0n, max: (1n << BigInt(nBits)) - 1n });
}

function actionArb(match: Match): fc.Arbitrary<Action> {
  const writable = WRITABLE.filter((f) => prereqOk(FIELDS[f].prereq, match));
  const v4 = prereqOk('ipv4', match);
  const ipAny = prereqOk('ip_any', match);
  const transport = prereqOk('transport', match);
  const arbs: fc.Arbitrary<Action>[] = [
    port.map((p) => ({ type: 'output', port: p })),
    fc.constantFrom<Action>({ type: 'normal' }, { type: 'flood' }, { type: 'all' }, { type: 'in_port' }, { type: 'local' }, { type: 'strip_vlan' }, { type: 'dec_ttl' }),
    fc.integer({ min: 0, max: 65535 }).map((n) => ({ type: 'controller', maxLen: n })),
    fc.integer({ min: 0, max: 4095 }).map((n) => ({ type: 'mod_vlan_vid', vid: n })),
    fc.integer({ min: 0, max: 7 }).map((n) => ({ type: 'mod_vlan_pcp', pcp: n })),
    fc.constantFrom(0x8100, 0x88a8).map((t) => ({ type: 'push_vlan', tpid: t })),
    fc.tuple(fc.constantFrom<'mod_dl_src' | 'mod_dl_dst'>('mod_dl_src', 'mod_dl_dst'), fc.integer({ min: 0, max: 0xffff }), u32).map(([t, hi, lo]) => ({ type: t, hi, lo })),
    bigOf(64).map((b) => ({ type: 'set_tunnel', tunId: b })),
    fc.integer({ min: 0, max: 254 }).map((t) => ({ type: 'goto_table', table: t })),
    fc
      .tuple(fc.oneof(port, fc.constantFrom(OFPP.IN_PORT, OFPP.LOCAL)), fc.oneof(fc.integer({ min: 0, max: 254 }), fc.constant(255)))
      .filter(([p, t]) => !(p === OFPP.IN_PORT && t === 255))
      .map(([p, t]) => ({ type: 'resubmit', port: p, table: t })),
  ];
  if (v4) arbs.push(fc.tuple(fc.constantFrom<'mod_nw_src' | 'mod_nw_dst'>('mod_nw_src', 'mod_nw_dst'), u32).map(([t, a]) => ({ type: t, addr: a })));
  if (ipAny) arbs.push(fc.integer({ min: 0, max: 63 }).map((d) => ({ type: 'mod_nw_tos', tos: d << 2 })));
  if (transport) arbs.push(fc.tuple(fc.constantFrom<'mod_tp_src' | 'mod_tp_dst'>('mod_tp_src', 'mod_tp_dst'), fc.integer({ min: 0, max: 65535 })).map(([t, p]) => ({ type: t, port: p })));
  if (writable.length > 0) {
    const fieldArb = fc.constantFrom(...writable);
    arbs.push(
      fieldArb.chain((f) =>
        fieldWords(f).map((w): Action => ({ type: 'set_field', field: f, value: Uint32Array.from(w.value) })),
      ),
      fieldArb.chain((f) =>
        fc
          .integer({ min: 1, max: FIELDS[f].nBits })
          .chain((nBits) => fc.tuple(fc.integer({ min: 0, max: FIELDS[f].nBits - nBits }), bigOf(nBits)).map(([ofs, value]): Action => ({ type: 'load', field: f, value, ofs, nBits }))),
      ),
      fc.tuple(fieldArb, fieldArb).chain(([src, dst]) =>
        fc
          .integer({ min: 1, max: Math.min(FIELDS[src].nBits, FIELDS[dst].nBits) })
          .chain((nBits) =>
            fc
              .tuple(fc.integer({ min: 0, max: FIELDS[src].nBits - nBits }), fc.integer({ min: 0, max: FIELDS[dst].nBits - nBits }))
              .map(([srcOfs, dstOfs]): Action => ({ type: 'move', src, srcOfs, dst, dstOfs, nBits })),
          ),
      ),
    );
  }
  return fc.oneof(...arbs);
}

type Command = 'add' | 'modify' | 'delete';

const flowArb: fc.Arbitrary<{ command: Command; spec: FlowSpec; named: boolean }> = fc
  .tuple(fc.constantFrom<Command>('add', 'add', 'modify', 'delete'), matchArb, fc.boolean())
  .chain(([command, match, named]) =>
    fc
      .record({
        table: command === 'add' ? fc.integer({ min: 0, max: 254 }) : fc.integer({ min: 0, max: 255 }),
        priority: fc.oneof(fc.constant(32768), fc.integer({ min: 0, max: 65535 })),
        cookie: command === 'delete' ? fc.constant(0n) : bigOf(64),
        cookieMask: command === 'add' ? fc.constant(0n) : fc.oneof(fc.constant(0n), bigOf(64)),
        idleTimeout: command === 'delete' ? fc.constant(0) : fc.integer({ min: 0, max: 65535 }),
        hardTimeout: command === 'delete' ? fc.constant(0) : fc.integer({ min: 0, max: 65535 }),
        flags:
          command === 'delete'
            ? fc.constant({ sendFlowRem: false, checkOverlap: false, resetCounts: false, noPacketCounts: false, noByteCounts: false })
            : fc.record({ sendFlowRem: fc.boolean(), checkOverlap: fc.boolean(), resetCounts: fc.boolean(), noPacketCounts: fc.boolean(), noByteCounts: fc.boolean() }),
        actions:
          command === 'delete'
            ? fc.constant<Action[]>([])
            : fc.oneof({ weight: 1, arbitrary: fc.constant<Action[]>([{ type: 'drop' }]) }, { weight: 6, arbitrary: fc.array(actionArb(match), { minLength: 1, maxLength: 6 }) }),
      })
      .map((r) => {
        // A delete's cookie mask selects: give it a value too.
        const cookie = command === 'delete' && r.cookieMask !== 0n ? r.cookieMask & 0x5a5a5a5a5a5a5a5an : r.cookie;
        return { command, named, spec: { ...r, cookie, match } };
      }),
  );

describe('parse(print(f)) = f', () => {
  it('for random valid flows: every field, mask and action (property, 4000 cases)', () => {
    fc.assert(
      fc.property(flowArb, ({ command, spec, named }) => {
        const p = named ? ports : undefined;
        const text = command === 'delete' ? formatFlowHead(spec, { ports: p, command }) : formatFlow(spec, { ports: p, command });
        const back = parseFlow(text, { command, ports: p });
        expect(back, text).toEqual(spec);
      }),
      { numRuns: 4000 },
    );
  });

  it('for dump-flows lines with counters', () => {
    fc.assert(
      fc.property(flowArb.filter((f) => f.command === 'add'), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 10_000_000 }), ({ spec }, nPackets, nBytes, ms) => {
        const text = formatFlow(spec, { counters: { nPackets, nBytes, durationS: ms / 1000 } });
        expect(text.startsWith(' cookie=0x')).toBe(true);
        expect(parseFlow(text, { command: 'add' }), text).toEqual(spec);
      }),
      { numRuns: 500 },
    );
  });

  it('for action lists alone', () => {
    fc.assert(
      fc.property(matchArb.chain((m) => fc.array(actionArb(m), { minLength: 1, maxLength: 8 })), (actions) => {
        expect(parseActions(formatActions(actions))).toEqual(actions);
      }),
      { numRuns: 1000 },
    );
  });

  it('covers every field of the registry in some context', () => {
    // Each FIELDS entry has a context (dl_type/nw_proto) where its prerequisite holds, so
    // the generator above can produce it.
    const contexts: [number | undefined, number | undefined][] = [[undefined, undefined], [0x0800, 1], [0x0800, 6], [0x86dd, 58], [0x86dd, 6], [0x0806, undefined]];
    for (const f of FIELD_NAMES) {
      const ok = contexts.some(([dl, proto]) => {
        const m = newMatch();
        if (dl !== undefined) setField(m, 'dl_type', [dl]);
        if (proto !== undefined) setField(m, 'nw_proto', [proto]);
        return prereqOk(FIELDS[f].prereq, m);
      });
      expect(ok, f).toBe(true);
    }
  });
});

describe('every registry field prints under its ovs-ofctl name', () => {
  it.each(FIELD_NAMES)('%s', (f) => {
    // A context where the prerequisite holds, then the field with a non-zero exact value.
    const contexts: [number | undefined, number | undefined][] = [[undefined, undefined], [0x0800, 6], [0x0800, 1], [0x86dd, 58], [0x86dd, 6], [0x0806, undefined]];
    const m = newMatch();
    const ctx = contexts.find(([dl, proto]) => {
      const t = newMatch();
      if (dl !== undefined) setField(t, 'dl_type', [dl]);
      if (proto !== undefined) setField(t, 'nw_proto', [proto]);
      return prereqOk(FIELDS[f].prereq, t);
    })!;
    if (ctx[0] !== undefined) setField(m, 'dl_type', [ctx[0]]);
    if (ctx[1] !== undefined) setField(m, 'nw_proto', [ctx[1]]);
    const spec = FIELDS[f];
    const tagged = spec.format === 'vlan_vid' || spec.format === 'vlan_pcp' ? 0x1000 : 0; // dl_vlan*: a tag is present
    setField(m, f, spec.wordMask.map((w) => (w & 0x1234567) | tagged), undefined);
    if (f === 'dl_type') setField(m, 'dl_type', [0x88cc]);
    if (f === 'nw_proto') setField(m, 'nw_proto', [47]);
    const text = formatMatch(m);
    expect(text.split(',').some((item) => item.startsWith(`${PRINT_NAME[f]}=`)), text).toBe(true);
  });
});
