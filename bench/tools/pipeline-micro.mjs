// In-process cost per frame of the flow pipeline (extract → EMC → translate on a miss →
// execute → credit → queue → a no-op send) over memory ports. Plain ESM against dist/ (build first: npx tsc -p tsconfig.json).
//   node bench/tools/pipeline-micro.mjs [MILLION_FRAMES] [--json]
//
// Scenarios (64-frame batches of 106-byte UDP frames):
//   normal-only     Switch without a table of its own: only the table-miss NORMAL rule
//   1-flow          FlowTable with one rule (in_port=1,udp → output:2); 64 flows per batch, cache hits
//   100k-flows      FlowTable with 100,000 rules over 10 masks; 64 distinct flows per batch, cache hits
//   100k-flows-4k   as above, traffic spread over 4,096 distinct flows (the EMC holds them all)
//   all-miss-1      1-flow table, every frame a new 5-tuple: EMC miss + translation every frame
//   all-miss-100k   100k-flow table, every frame a new 5-tuple
import { Switch } from '../../dist/datapath/switch.js';
import { MemoryPort } from '../../dist/io/memory.js';
import { FrameBatch } from '../../dist/packet/batch.js';
import { FlowTable } from '../../dist/table/flow-table.js';
import { K, KEY_WORDS } from '../../dist/packet/key.js';

const millions = Number(process.argv[2] ?? 2);
const json = process.argv.includes('--json');
const NOW = 1000;

const mac = (i) => Buffer.from(`02000000000${i}`, 'hex');
// Ethernet + IPv4 (20 B) + UDP (8 B) + 64 B payload = 106 bytes.
const frame = (src, dst) =>
  Buffer.concat([mac(dst), mac(src), Buffer.from('0800' + '4500005c00004000401100000a0000010a000002' + '13885a780048' + '0000', 'hex'), Buffer.alloc(64)]);

function spec(table, priority, fields, actions) {
  const value = new Uint32Array(KEY_WORDS);
  const mask = new Uint32Array(KEY_WORDS);
  for (const [w, v, m = 0xffffffff] of fields) {
    value[w] = (v & m) >>> 0;
    mask[w] = m >>> 0;
  }
  return {
    table,
    priority,
    cookie: 0n,
    cookieMask: 0n,
    idleTimeout: 0,
    hardTimeout: 0,
    flags: { sendFlowRem: false, checkOverlap: false, resetCounts: false, noPacketCounts: false, noByteCounts: false },
    match: { value, mask },
    actions,
  };
}
const add = (s) => ({ command: 'add', spec: s, outPort: 0xffff });

/** 100,000 rules over 10 masks: mask m = nw_src exact 11.0.0.m + nw_dst/(32-m). */
function bigTable() {
  const t = new FlowTable({ now: () => NOW });
  const mods = [];
  for (let m = 0; m < 10; m++) {
    const dstMask = (0xffffffff << m) >>> 0;
    for (let j = 0; j < 10_000; j++) {
      mods.push(
        add(
          spec(0, 100 + m, [[K.DL_TYPE, 0x0800], [K.NW_SRC, 0x0b000000 | m], [K.NW_DST, (0x0a000000 | (j << 9)) >>> 0, dstMask]], [
            { type: 'output', port: 2 },
          ]),
        ),
      );
    }
  }
  const t0 = performance.now();
  t.apply(mods, NOW);
  const ms = performance.now() - t0;
  return { t, ms };
}

function oneFlowTable() {
  const t = new FlowTable({ now: () => NOW });
  t.apply([add(spec(0, 100, [[K.IN_PORT, 1], [K.DL_TYPE, 0x0800], [K.NW_PROTO, 17]], [{ type: 'output', port: 2 }]))], NOW);
  return t;
}

function setUp(table) {
  const sw = new Switch({ now: () => NOW, table });
  const batch = new FrameBatch();
  const ports = [1, 2].map((n) => new MemoryPort(`p${n}`, n, 1500, { record: false, clock: () => NOW }));
  for (const p of ports) {
    sw.addPort(p);
    p.start(batch, () => sw.process(batch), () => {});
  }
  ports[1].inject([frame(2, 1)]); // learn h2 on p2 (for NORMAL)
  return { sw, batch, ports };
}

/**
 * Runs `batches` batches of 64 frames: `first` (64 frames) is injected once, then before
 * every batch `mutate(slab, start, b)` rewrites the frames in place (the same bytes for the
 * cached scenarios, new ones for the others) and the batch is re-delivered in place — so
 * every scenario pays the same per-batch set-up cost.
 */
function run({ sw, batch, ports }, first, mutate) {
  const batches = Math.round((millions * 1e6) / 64);
  ports[0].inject(first);
  const step = (b) => {
    mutate(batch.slab, batch.start, b);
    ports[0].injectInPlace(64);
  };
  for (let i = 0; i < 2000; i++) step(i);
  const emc = sw.pipeline?.emc;
  const hits0 = emc?.nHits ?? 0;
  const misses0 = emc?.nMisses ?? 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < batches; i++) step(2000 + i);
  const ns = Number(process.hrtime.bigint() - t0);
  return {
    nsPerFrame: ns / (batches * 64),
    frames: batches * 64,
    emcHitRate: emc === undefined ? null : (emc.nHits - hits0) / (emc.nHits - hits0 + emc.nMisses - misses0),
  };
}

/** Writes flow f's addresses and ports (big-table numbering) into frame i of the slab. */
function writeFlow(slab, off, f, sport = 5000, dport = 23160) {
  slab.writeUInt32BE((0x0b000000 | f % 10) >>> 0, off + 26);
  slab.writeUInt32BE((0x0a000000 | (Math.floor(f / 10) << 9)) >>> 0, off + 30);
  slab.writeUInt16BE(sport, off + 34);
  slab.writeUInt16BE(dport, off + 36);
}
/** The same 64 flows every batch. */
const sameFlows = (slab, start) => {
  for (let i = 0; i < 64; i++) writeFlow(slab, start[i], (i * 1543) % 100_000);
};
/** 4,096 distinct flows, 64 per batch, cycled. */
const flows4k = (slab, start, b) => {
  for (let i = 0; i < 64; i++) writeFlow(slab, start[i], (((b & 63) * 64 + i) * 24_421) % 100_000);
};
// Every frame a new 5-tuple: a 32-bit counter in the UDP ports (checksums are not verified).
let counter = 0;
const freshTuples = (slab, start) => {
  for (let i = 0; i < 64; i++) {
    counter++;
    writeFlow(slab, start[i], (i * 1543) % 100_000, counter & 0xffff, counter >>> 16);
  }
};
const frames64 = () => Array.from({ length: 64 }, () => frame(1, 2));

const results = {};
const note = [];
results['normal-only'] = run(setUp(undefined), frames64(), sameFlows);
results['1-flow'] = run(setUp(oneFlowTable()), frames64(), sameFlows);
const { t: big, ms: buildMs } = bigTable();
note.push(`100k-flow table built with FlowTable.apply in ${buildMs.toFixed(0)} ms (${big.nSubtables(0)} subtables in table 0)`);
results['100k-flows'] = run(setUp(big), frames64(), sameFlows);
results['100k-flows-4k'] = run(setUp(big), frames64(), flows4k);
results['all-miss-1'] = run(setUp(oneFlowTable()), frames64(), freshTuples);
results['all-miss-100k'] = run(setUp(big), frames64(), freshTuples);

const base1 = results['1-flow'].nsPerFrame;
const ratios = {
  '100k-flows / 1-flow rate': base1 / results['100k-flows'].nsPerFrame,
  '100k-flows-4k / 1-flow rate': base1 / results['100k-flows-4k'].nsPerFrame,
  'all-miss-1 / 1-flow rate': base1 / results['all-miss-1'].nsPerFrame,
  'all-miss-100k / 100k-flows rate': results['100k-flows'].nsPerFrame / results['all-miss-100k'].nsPerFrame,
};
if (json) {
  console.log(JSON.stringify({ results, ratios, note }, null, 2));
} else {
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `${name.padEnd(15)} ${r.nsPerFrame.toFixed(1).padStart(8)} ns/frame  ${(1e3 / r.nsPerFrame).toFixed(2).padStart(6)} Mframes/s  ${r.emcHitRate === null ? '' : `EMC hit rate ${(r.emcHitRate * 100).toFixed(1)} %`}`,
    );
  }
  for (const [name, v] of Object.entries(ratios)) console.log(`${name.padEnd(34)} ${(v * 100).toFixed(0)} %`);
  for (const n of note) console.log(n);
}
