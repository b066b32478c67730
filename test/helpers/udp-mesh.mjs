// UDP probes between every pair of hosts, for the migration tests.
//   node udp-mesh.mjs ID PORT ROUNDS INTERVAL_MS START_AT ID@IP …
// Binds PORT; from START_AT (Unix ms: every prober starts together, once all are bound)
// every INTERVAL_MS sends one datagram [sender ID: u8][round: u32] to each
// ID@IP (catching up when timers fire late, so the rate holds); after the last round and a
// grace period prints {"sent":ROUNDS,"received":{"ID":[rounds…]}} and exits.
import dgram from 'node:dgram';

const [id, port, rounds, interval, startAt, ...peers] = process.argv.slice(2);
const me = Number(id);
const n = Number(rounds);
const every = Number(interval);
const dests = peers.map((p) => {
  const [pid, ip] = p.split('@');
  return { id: Number(pid), ip };
});
const received = {};
for (const d of dests) received[d.id] = [];
const sock = dgram.createSocket('udp4');
sock.on('message', (m) => {
  if (m.length >= 5 && received[m[0]] !== undefined) received[m[0]].push(m.readUInt32BE(1));
});
sock.bind(Number(port), () => {
  process.stderr.write('READY\n');
  let round = 0;
  const t0 = Number(startAt);
  const tick = () => {
    const due = Math.min(n, Math.floor((Date.now() - t0) / every) + 1);
    while (round < due) {
      for (const d of dests) {
        const b = Buffer.alloc(16); // a fresh buffer: send() keeps a reference until sent
        b[0] = me;
        b.writeUInt32BE(round, 1);
        sock.send(b, Number(port), d.ip);
      }
      round++;
    }
    if (round < n) setTimeout(tick, every);
    else setTimeout(() => { sock.close(); console.log(JSON.stringify({ sent: n, received })); }, 1500);
  };
  setTimeout(tick, Math.max(0, t0 - Date.now()));
});
