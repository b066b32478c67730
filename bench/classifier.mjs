// The flow table's slow path alone: tuple-space classifier lookups/s at 1k, 10k and 100k
// rules spread over 10 distinct masks (hit keys and miss keys), subtable probes per lookup,
// and the time to apply 100,000 add flow-mods in one batch (goal < 2 s).
//   npm run build && node bench/classifier.mjs [MILLION_LOOKUPS]
//
// Priorities are random in 1..1000 for every mask, so every subtable's max priority is
// close to 1000 and early exit rarely helps: this is the worst case for tuple-space search
// (a hit probes ~all masks; a miss probes exactly all of them). The table-miss rule is
// deleted so misses are real misses (it would otherwise be an 11th, match-all mask).
import { FlowTable } from '../dist/table/flow-table.js';
import { K, KEY_WORDS } from '../dist/packet/key.js';

const MILLION = Number(process.argv[2] ?? 2);
const FULL = 0xffffffff;

// Ten mask shapes an operator would write: port, MAC, L3 prefixes, 5-tuples, ACL-ish.
const SHAPES = [
  { [K.IN_PORT]: FULL },
  { [K.DL_DST_HI]: 0xffff, [K.DL_DST_LO]: FULL },
  { [K.DL_TYPE]: 0xffff, [K.NW_DST]: 0xffffff00 },
  { [K.DL_TYPE]: 0xffff, [K.NW_DST]: FULL },
  { [K.DL_TYPE]: 0xffff, [K.NW_SRC]: 0xffff0000, [K.NW_DST]: 0xffff0000 },
  { [K.DL_TYPE]: 0xffff, [K.NW_PROTO]: 0xff, [K.TP_DST]: 0xffff },
  { [K.IN_PORT]: FULL, [K.DL_TYPE]: 0xffff, [K.NW_SRC]: FULL },
  { [K.DL_TYPE]: 0xffff, [K.NW_SRC]: FULL, [K.NW_DST]: FULL, [K.NW_PROTO]: 0xff, [K.TP_SRC]: 0xffff, [K.TP_DST]: 0xffff },
  { [K.VLAN_TCI]: 0x1fff, [K.DL_DST_HI]: 0xffff, [K.DL_DST_LO]: FULL },
  { [K.TUN_ID]: FULL, [K.DL_TYPE]: 0xffff, [K.NW_DST]: 0xfffffff0 },
];

// Deterministic PRNG (xorshift32) so runs are comparable.
let seed = 0x2545f491;
const rand = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
};

function flowMods(n) {
  const mods = [];
  for (let i = 0; i < n; i++) {
    const shape = SHAPES[i % SHAPES.length];
    const value = new Uint32Array(KEY_WORDS);
    const mask = new Uint32Array(KEY_WORDS);
    for (const [w, m] of Object.entries(shape)) {
      mask[w] = m;
      value[w] = (w == K.DL_TYPE ? 0x0800 : rand()) & m;
    }
    mods.push({
      command: 'add',
      spec: {
        table: 0,
        priority: 1 + (rand() % 1000),
        cookie: BigInt(i),
        cookieMask: 0n,
        idleTimeout: 0,
        hardTimeout: 0,
        flags: { sendFlowRem: false, checkOverlap: false, resetCounts: false, noPacketCounts: false, noByteCounts: false },
        match: { value, mask },
        actions: [{ type: 'output', port: 1 + (i % 4) }],
      },
      outPort: 0xffff,
    });
  }
  return mods;
}

/** A FlowTable without its table-miss rule (del-flows with an empty match). */
function newTable() {
  const ft = new FlowTable({ now: () => 0 });
  const [any] = flowMods(1);
  any.command = 'delete';
  any.spec.table = 255;
  any.spec.match = { value: new Uint32Array(KEY_WORDS), mask: new Uint32Array(KEY_WORDS) };
  ft.apply([any]);
  return ft;
}

const NKEYS = 4096;
function keysFor(mods, hit) {
  const keys = new Uint32Array(NKEYS * KEY_WORDS);
  for (let k = 0; k < NKEYS; k++) {
    const base = k * KEY_WORDS;
    for (let w = 0; w < KEY_WORDS; w++) keys[base + w] = rand();
    keys[base + K.L3_OFF] = 14;
    if (hit) {
      const { value, mask } = mods[rand() % mods.length].spec.match;
      for (let w = 0; w < KEY_WORDS; w++) keys[base + w] = ((keys[base + w] & ~mask[w]) | value[w]) >>> 0;
    }
  }
  return keys;
}

function measure(ft, keys, total) {
  let sink = 0;
  const run = (n) => {
    for (let i = 0; i < n; i++) sink = (sink + ft.lookup(0, keys, (i & (NKEYS - 1)) * KEY_WORDS)) | 0;
  };
  run(200_000); // warm-up
  const l0 = ft.nLookups;
  const p0 = ft.nSubtableProbes;
  const t0 = process.hrtime.bigint();
  run(total);
  const ns = Number(process.hrtime.bigint() - t0);
  let nHits = 0;
  for (let k = 0; k < NKEYS; k++) if (ft.lookup(0, keys, k * KEY_WORDS) >= 0) nHits++;
  return {
    perSecond: (total / ns) * 1e9,
    nsPerLookup: ns / total,
    probes: (ft.nSubtableProbes - p0) / (ft.nLookups - l0),
    hitRate: nHits / NKEYS,
    sink,
  };
}

const rows = [];
for (const n of [1_000, 10_000, 100_000]) {
  const mods = flowMods(n);
  const ft = newTable();
  ft.apply(mods);
  const hit = measure(ft, keysFor(mods, true), MILLION * 1e6);
  const miss = measure(ft, keysFor(mods, false), MILLION * 1e6);
  rows.push({ n, masks: ft.nSubtables(0), hit, miss });
}

// 100,000 adds in one batch (the FlowMods are built beforehand: this times the table only).
const batch = flowMods(100_000);
const ftBatch = newTable();
const tb0 = process.hrtime.bigint();
ftBatch.apply(batch);
const applyMs = Number(process.hrtime.bigint() - tb0) / 1e6;
// ... and the same batch again: every add replaces an identical flow.
const tb1 = process.hrtime.bigint();
ftBatch.apply(batch);
const replaceMs = Number(process.hrtime.bigint() - tb1) / 1e6;

const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(0)} k`);
console.log(`classifier lookups (${MILLION} M lookups per cell, 4096 distinct keys, table 0)\n`);
console.log('| rules   | masks | hit lookups/s | ns/hit | probes/hit | miss lookups/s | ns/miss | probes/miss |');
console.log('|--------:|------:|--------------:|-------:|-----------:|---------------:|--------:|------------:|');
for (const r of rows) {
  console.log(
    `| ${String(r.n).padStart(7)} | ${String(r.masks).padStart(5)} | ${fmt(r.hit.perSecond).padStart(13)} | ${r.hit.nsPerLookup.toFixed(0).padStart(6)} | ${r.hit.probes.toFixed(2).padStart(10)} | ${fmt(r.miss.perSecond).padStart(14)} | ${r.miss.nsPerLookup.toFixed(0).padStart(7)} | ${r.miss.probes.toFixed(2).padStart(11)} |`,
  );
}
const ratio = rows[2].miss.perSecond / rows[0].miss.perSecond;
console.log(`\nmiss rate at 100k vs 1k rules: ${(ratio * 100).toFixed(0)} %  (hit keys found a rule: ${rows.map((r) => `${(r.hit.hitRate * 100).toFixed(0)} %`).join(', ')})`);
console.log(`apply 100,000 adds in one batch: ${applyMs.toFixed(0)} ms (goal < 2000 ms); same batch again (all replace): ${replaceMs.toFixed(0)} ms`);
if (applyMs >= 2000) process.exitCode = 1;
