// iperf3 runners (client with --json) and server management.
import { run, startBg, stopSync, sleep, alive } from './exec.mjs';

export const PORT = 5201;

/** Start `iperf3 -s` in ns and wait until it listens. Returns the tracked entry. */
export async function startServer(ns, bind) {
  const e = startBg(`iperf3 server (${ns})`, 'iperf3', ['-s', '-B', bind, '-p', String(PORT)], { ns });
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    const r = await run('ss', ['-Hltn', `sport = :${PORT}`], { ns, allowFail: true });
    if (r.stdout.trim()) return e;
    if (!alive(e.pid)) break;
    await sleep(50);
  }
  stopSync(e);
  throw new Error(`iperf3 server in ${ns} did not start`);
}

function parseJson(stdout) {
  const j = JSON.parse(stdout);
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  return j;
}

/**
 * UDP test. rate = frames/s to offer (0 = unpaced blast). Payload `len` bytes (64 → 106-byte
 * Ethernet frames). A 2 MB socket buffer (-w) keeps the receiving socket from being the
 * bottleneck. Returns counts from both ends.
 */
export async function udp({ ns, dst, rate, seconds, len = 64, window = '2M', pacingUs = 200 }) {
  const args = ['-c', dst, '-p', String(PORT), '-u', '-l', String(len), '-w', window,
    '-b', String(rate * len * 8), '-t', String(seconds), '--connect-timeout', '3000', '-J'];
  if (rate > 0) args.push('--pacing-timer', String(pacingUs));
  const r = await run('iperf3', args, { ns, allowFail: true, timeoutMs: (seconds + 20) * 1000 });
  if (r.code !== 0 && !r.stdout.trim().startsWith('{')) {
    throw new Error(`iperf3 udp: exit ${r.code}${r.timedOut ? ' (timeout)' : ''}: ${(r.stderr || r.stdout).trim().slice(-200)}`);
  }
  const j = parseJson(r.stdout);
  const sent = j.end.sum_sent ?? j.end.sum;
  const recv = j.end.sum_received ?? j.end.sum;
  const seconds_ = recv.seconds || sent.seconds || seconds;
  const received = recv.packets - recv.lost_packets;
  return {
    offered_pps: rate,
    seconds: seconds_,
    sent: sent.packets,
    received,
    sent_pps: sent.packets / (sent.seconds || seconds),
    rx_pps: received / seconds_,
    loss_pct: sent.packets ? Math.max(0, (100 * (sent.packets - received)) / sent.packets) : 100,
    iperf_loss_pct: recv.lost_percent,
    sender_cpu_pct: j.end.cpu_utilization_percent?.host_total ?? null,
    receiver_cpu_pct: j.end.cpu_utilization_percent?.remote_total ?? null,
  };
}

export async function tcp({ ns, dst, seconds }) {
  const r = await run('iperf3', ['-c', dst, '-p', String(PORT), '-t', String(seconds), '--connect-timeout', '3000', '-J'],
    { ns, allowFail: true, timeoutMs: (seconds + 20) * 1000 });
  if (r.code !== 0 && !r.stdout.trim().startsWith('{')) {
    throw new Error(`iperf3 tcp: exit ${r.code}${r.timedOut ? ' (timeout)' : ''}: ${(r.stderr || r.stdout).trim().slice(-200)}`);
  }
  const j = parseJson(r.stdout);
  return {
    gbps: j.end.sum_received.bits_per_second / 1e9,
    sent_gbps: j.end.sum_sent.bits_per_second / 1e9,
    retransmits: j.end.sum_sent.retransmits ?? null,
    seconds: j.end.sum_received.seconds,
  };
}
