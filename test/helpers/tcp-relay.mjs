// A TCP relay the fault tests kill: node tcp-relay.mjs LISTEN_HOST LISTEN_PORT TO_HOST TO_PORT [CUT_AFTER].
// Prints "ready" once listening; every accepted connection is piped to TO_HOST:TO_PORT.
// Killing the process cuts every relayed connection at once, as a failed link would. With
// CUT_AFTER, the relay does that itself once it has passed CUT_AFTER bytes from TO_HOST
// back to the client (a link that fails in the middle of a transfer, at a known point).
import net from 'node:net';

const [listenHost, listenPort, toHost, toPort, cutAfter] = process.argv.slice(2);
const limit = cutAfter === undefined ? Infinity : Number(cutAfter);
let passed = 0;
net
  .createServer((client) => {
    const upstream = net.connect(Number(toPort), toHost);
    client.pipe(upstream);
    client.on('drain', () => upstream.resume());
    upstream.on('data', (chunk) => {
      passed += chunk.length;
      if (passed < limit) {
        if (!client.write(chunk)) upstream.pause();
        return;
      }
      client.write(chunk.subarray(0, chunk.length - (passed - limit)), () => process.exit(0));
      upstream.pause();
    });
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', cut);
    upstream.on('error', cut);
    client.on('close', cut);
    upstream.on('close', cut);
  })
  .listen(Number(listenPort), listenHost, () => process.stdout.write('ready\n'));
