/**
 * The VM demo's TCP client, run inside the client's network namespace:
 *
 *   node dist/demo/vm/tcp-client.js HOST PORT INTERVAL_MS
 *
 * Opens ONE TCP connection to the guest's echo server and sends a numbered line every
 * INTERVAL_MS, checking that every echo comes back, in order and unchanged. Prints one JSON
 * line `{"ready":…}` once connected, and, when told `stop` on standard input (or when
 * standard input closes), waits up to 5 s for the outstanding echoes and prints the result
 * as one JSON line: lines sent and echoed, mismatches, whether the connection was closed or
 * reset, the longest time without an echo (the stall) and the longest round trip.
 */
import { connect } from 'node:net';

interface Result {
  local: string;
  remote: string;
  sent: number;
  echoed: number;
  mismatches: number;
  /** The connection ended (FIN or RST) or failed before we stopped. */
  broken: boolean;
  error: string | null;
  /** Longest time between two consecutive echoes (ms), and when it began (epoch ms). */
  max_gap_ms: number;
  max_gap_from: number;
  max_rtt_ms: number;
  first_echo_at: number;
  last_echo_at: number;
}

const [host, portText, intervalText] = process.argv.slice(2);
if (host === undefined || portText === undefined) {
  process.stderr.write('usage: tcp-client.js HOST PORT [INTERVAL_MS]\n');
  process.exit(2);
}
const interval = Number(intervalText ?? '50');
const sentAt: number[] = [];
const res: Result = {
  local: '',
  remote: `${host}:${portText}`,
  sent: 0,
  echoed: 0,
  mismatches: 0,
  broken: false,
  error: null,
  max_gap_ms: 0,
  max_gap_from: 0,
  max_rtt_ms: 0,
  first_echo_at: 0,
  last_echo_at: 0,
};
let stopping = false;
let buf = '';
let timer: NodeJS.Timeout | undefined;

const sock = connect({ host, port: Number(portText), noDelay: true });
sock.setEncoding('utf8');
sock.on('connect', () => {
  res.local = `${sock.localAddress}:${sock.localPort}`;
  process.stdout.write(`${JSON.stringify({ ready: true, local: res.local })}\n`);
  timer = setInterval(() => {
    if (stopping) return;
    const n = res.sent++;
    sentAt[n] = Date.now();
    sock.write(`lime ${n}\n`);
  }, interval);
});
sock.on('data', (d: string) => {
  buf += d;
  let nl: number;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    const now = Date.now();
    const n = res.echoed;
    if (line !== `lime ${n}`) res.mismatches++;
    const t0 = sentAt[n];
    if (t0 !== undefined) res.max_rtt_ms = Math.max(res.max_rtt_ms, now - t0);
    if (res.last_echo_at !== 0 && now - res.last_echo_at > res.max_gap_ms) {
      res.max_gap_ms = now - res.last_echo_at;
      res.max_gap_from = res.last_echo_at;
    }
    if (res.first_echo_at === 0) res.first_echo_at = now;
    res.last_echo_at = now;
    res.echoed++;
  }
  if (stopping && res.echoed >= res.sent) finish();
});
sock.on('error', (err) => {
  res.error = err.message;
  res.broken = true;
  if (!stopping) process.stdout.write(`${JSON.stringify({ event: 'error', error: err.message, at: Date.now() })}\n`);
});
sock.on('close', () => {
  if (!stopping) {
    res.broken = true;
    process.stdout.write(`${JSON.stringify({ event: 'closed', at: Date.now() })}\n`);
  }
  finish();
});

let stdinBuf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  stdinBuf += d;
  if (stdinBuf.includes('stop')) stop();
});
process.stdin.on('end', stop);

function stop(): void {
  if (stopping) return;
  stopping = true;
  if (timer !== undefined) clearInterval(timer);
  if (res.echoed >= res.sent) finish();
  else setTimeout(finish, 5000).unref();
}

let finished = false;
function finish(): void {
  if (finished) return;
  finished = true;
  if (timer !== undefined) clearInterval(timer);
  process.stdout.write(`${JSON.stringify({ result: res })}\n`);
  sock.destroy();
  process.exit(0);
}
