// A TCP stream with known contents, for tests that must see bytes arrive intact.
//   node tcp-pattern.mjs recv PORT                     prints {"bytes":N,"sha256":"…"} when the sender closes
//   node tcp-pattern.mjs send HOST PORT BYTES KBPS     sends BYTES pattern bytes at about KBPS KiB/s, prints the same
// The pattern is a pure function of the offset, so the two ends agree without sharing state.
import { createHash } from 'node:crypto';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const pattern = (offset, size) => {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) {
    const x = offset + i;
    b[i] = (x * 2654435761 + (x >>> 11)) & 0xff;
  }
  return b;
};
if (mode === 'recv') {
  const server = net.createServer((sock) => {
    const h = createHash('sha256');
    let bytes = 0;
    sock.on('data', (d) => { h.update(d); bytes += d.length; });
    sock.on('end', () => { console.log(JSON.stringify({ bytes, sha256: h.digest('hex') })); server.close(); });
    sock.on('error', (e) => { console.log(JSON.stringify({ bytes, error: e.message })); server.close(); });
  });
  server.listen(Number(args[0]), () => process.stderr.write('READY\n'));
} else if (mode === 'send') {
  const [host, port, total, kbps] = [args[0], Number(args[1]), Number(args[2]), Number(args[3])];
  const h = createHash('sha256');
  const sock = net.connect(port, host, () => {
    let sent = 0;
    const chunk = Math.max(1024, Math.round((kbps * 1024) / 100)); // 100 chunks a second
    const timer = setInterval(() => {
      const n = Math.min(chunk, total - sent);
      const b = pattern(sent, n);
      h.update(b);
      sock.write(b);
      sent += n;
      if (sent >= total) {
        clearInterval(timer);
        sock.end(() => console.log(JSON.stringify({ bytes: sent, sha256: h.digest('hex') })));
      }
    }, 10);
  });
  sock.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
} else {
  console.error('usage: tcp-pattern.mjs recv PORT | send HOST PORT BYTES KBPS');
  process.exit(2);
}
