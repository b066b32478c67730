// ping runner and RTT parser.
import { run } from './exec.mjs';
import { percentile } from './stats.mjs';

/** Parse `ping` output: per-reply RTTs in µs, plus transmitted/received counts. */
export function parsePing(text) {
  const rtts = [];
  const re = /time[=<]([\d.]+) ?(ms|us|µs)/g;
  let m;
  while ((m = re.exec(text))) rtts.push(m[2] === 'ms' ? Number(m[1]) * 1000 : Number(m[1]));
  const st = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(text);
  const transmitted = st ? Number(st[1]) : null;
  const received = st ? Number(st[2]) : rtts.length;
  return {
    transmitted,
    received,
    rtts_us: rtts,
    p50_us: percentile(rtts, 50),
    p99_us: percentile(rtts, 99),
    loss_pct: transmitted ? (100 * (transmitted - received)) / transmitted : null,
  };
}

export async function ping({ ns, dst, count = 1000, interval = 0.002, timeoutMs }) {
  const r = await run('ping', ['-n', '-i', String(interval), '-c', String(count), '-W', '1', dst], {
    ns, allowFail: true, timeoutMs: timeoutMs ?? (count * interval * 1000 * 3 + 10_000),
  });
  const p = parsePing(r.stdout);
  if (!p.rtts_us.length) throw new Error(`ping ${dst}: no replies (${(r.stderr || r.stdout).trim().split('\n').pop()})`);
  return p;
}

/**
 * Flood ping (root): each request leaves as soon as the previous reply is back. Used to
 * warm a path up before measuring: ARP, MAC learning, and a fresh limed's JIT (V8 optimizes
 * the data path only after some thousands of batches; at 500 round trips a second a new
 * limed spends its first seconds in the interpreter at about twice the steady latency).
 */
export async function pingFlood({ ns, dst, count = 10_000 }) {
  const r = await run('ping', ['-n', '-q', '-f', '-c', String(count), '-W', '1', dst], { ns, allowFail: true, timeoutMs: 60_000 });
  const p = parsePing(r.stdout);
  if (!p.received) throw new Error(`ping -f ${dst}: no replies (${(r.stderr || r.stdout).trim().split('\n').pop()})`);
  return p;
}
