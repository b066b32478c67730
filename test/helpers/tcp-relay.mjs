// A TCP relay the fault tests kill: node tcp-relay.mjs LISTEN_HOST LISTEN_PORT TO_HOST TO_PORT.
// Prints "ready" once listening; every accepted connection is piped to TO_HOST:TO_PORT.
// Killing the process cuts every relayed connection at once, as a failed link would.
import net from 'node:net';

const [listenHost, listenPort, toHost, toPort] = process.argv.slice(2);
net
  .createServer((client) => {
    const upstream = net.connect(Number(toPort), toHost);
    client.pipe(upstream);
    upstream.pipe(client);
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
