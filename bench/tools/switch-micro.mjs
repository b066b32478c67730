// In-process cost of the switching data path per frame (parse + learn + look up + queue +
// a no-op send), over memory ports: what limed's JavaScript adds on top of the syscalls.
//   node bench/tools/switch-micro.mjs [MILLION_FRAMES]
import { Switch } from '../../dist/datapath/switch.js';
import { MemoryPort } from '../../dist/io/memory.js';
import { FrameBatch } from '../../dist/packet/batch.js';

const millions = Number(process.argv[2] ?? 2);
const sw = new Switch({ now: () => 1000 });
const batch = new FrameBatch();
const ports = [1, 2].map((n) => new MemoryPort(`p${n}`, n, 1500, { record: false, clock: () => 1000 }));
for (const p of ports) { sw.addPort(p); p.start(batch, () => sw.process(batch), () => {}); }
const mac = (i) => Buffer.from(`02000000000${i}`, 'hex');
// Learn both hosts, then a batch of 64 UDP frames h1 -> h2.
// Ethernet + IPv4 (20 B) + UDP (8 B) + 64 B payload = 106 bytes, as iperf3 -l 64 sends.
const frame = (src, dst) =>
  Buffer.concat([mac(dst), mac(src), Buffer.from('0800' + '4500005c00004000401100000a0000010a000002' + '13885a780048' + '0000', 'hex'), Buffer.alloc(64)]);
ports[1].inject([frame(2, 1)]);
ports[0].inject(Array.from({ length: 64 }, () => frame(1, 2)));
const batches = Math.round((millions * 1e6) / 64);
for (let i = 0; i < 2000; i++) ports[0].injectInPlace(64);
const t0 = process.hrtime.bigint();
for (let i = 0; i < batches; i++) ports[0].injectInPlace(64);
const ns = Number(process.hrtime.bigint() - t0);
console.log(`${(ns / (batches * 64)).toFixed(1)} ns/frame over ${batches * 64} frames (64-frame batches, learned unicast UDP)`);
