// UDP sequence-number traffic for the MAC-move test.
//   node udp-seq.mjs send HOST PORT COUNT INTERVAL_MS   sends datagrams carrying 0..COUNT-1
//   node udp-seq.mjs recv PORT SECONDS                  prints the received sequence numbers as JSON
import dgram from 'node:dgram';

const [mode, ...args] = process.argv.slice(2);
if (mode === 'send') {
  const [host, port, count, interval] = [args[0], Number(args[1]), Number(args[2]), Number(args[3])];
  const sock = dgram.createSocket('udp4');
  let seq = 0;
  const t0 = Date.now();
  const tick = () => {
    // Catch up to the schedule so the rate holds even when timers fire late.
    const due = Math.min(count, Math.floor((Date.now() - t0) / interval) + 1);
    while (seq < due) {
      // A fresh buffer per datagram: send() is asynchronous and keeps a reference.
      const buf = Buffer.alloc(64);
      buf.writeUInt32BE(seq++, 0);
      sock.send(buf, port, host);
    }
    if (seq < count) setTimeout(tick, interval);
    else setTimeout(() => { sock.close(); console.log(JSON.stringify({ sent: seq })); }, 50);
  };
  tick();
} else if (mode === 'recv') {
  const [port, seconds] = [Number(args[0]), Number(args[1])];
  const sock = dgram.createSocket('udp4');
  const seqs = [];
  sock.on('message', (m) => seqs.push(m.readUInt32BE(0)));
  sock.bind(port, () => process.stderr.write('READY\n'));
  setTimeout(() => { sock.close(); console.log(JSON.stringify(seqs)); }, seconds * 1000);
} else {
  console.error('usage: udp-seq.mjs send|recv ...');
  process.exit(2);
}
