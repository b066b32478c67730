/**
 * The self-contained demo (`npm run demo`): three hosts in network namespaces, each
 * attached to a TAP port of one `limed`, ping each other through it; then the operator's
 * view (`limectl show`, `limectl fdb/show`, `limectl dump-flows`) is printed. Everything is torn down at the end,
 * also on Ctrl-C.
 */
import { LimedProcess, limectl } from './limed-process.js';
import { Netns, isRoot } from './netns.js';

const PREFIX = 'limedemo-';
const HOSTS = [
  { name: 'h1', port: 'vm1', device: 'limedemo-vm1', ip: '10.99.0.1', mac: '02:00:00:99:00:01' },
  { name: 'h2', port: 'vm2', device: 'limedemo-vm2', ip: '10.99.0.2', mac: '02:00:00:99:00:02' },
  { name: 'h3', port: 'vm3', device: 'limedemo-vm3', ip: '10.99.0.3', mac: '02:00:00:99:00:03' },
];

function say(s: string): void {
  process.stdout.write(`${s}\n`);
}

export async function runDemo(): Promise<number> {
  if (!isRoot()) {
    process.stderr.write('lime-demo: needs root (it creates network namespaces and TAP devices)\n');
    return 1;
  }
  Netns.cleanupStale(PREFIX);
  const net = new Netns(PREFIX);
  const limed = new LimedProcess({
    site: 'demo',
    ports: HOSTS.map((h) => ({ name: h.port, device: h.device, mtu: 1500, mac: h.mac })),
  });
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let failures = 0;
  try {
    say('== lime demo: three hosts in network namespaces, switched by limed over TAP ports ==');
    say(`starting limed (config ${limed.configPath})`);
    await limed.start();
    for (const h of HOSTS) {
      const ns = net.add(h.name);
      // The host owns the other side of its TAP port, as a VM owns its NIC.
      net.attach(h.device, ns, { addr: `${h.ip}/24`, rename: 'eth0' });
      say(`host ${h.name}: namespace ${ns}, eth0 = ${h.ip} (${h.mac}) on limed port ${h.port}`);
    }
    say('');
    for (const a of HOSTS) {
      for (const b of HOSTS) {
        if (a === b || interrupted) continue;
        let ok = false;
        let summary = '';
        try {
          const out = net.exec(`${PREFIX}${a.name}`, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', b.ip]);
          summary = out.trim().split('\n').slice(-2).join(' | ');
          ok = /[1-9]\d* received/.test(out) && !/ 100% packet loss/.test(out);
        } catch (err) {
          summary = String((err as { stdout?: string }).stdout ?? err).trim().split('\n').slice(-2).join(' | ');
        }
        if (!ok) failures++;
        say(`${ok ? 'OK  ' : 'FAIL'} ping ${a.name} -> ${b.name} (${b.ip}): ${summary}`);
      }
    }
    say('\n$ limectl show');
    say((await limectl(limed.socket, ['show'])).stdout.trimEnd());
    say('\n$ limectl fdb/show');
    say((await limectl(limed.socket, ['fdb/show'])).stdout.trimEnd());
    say('\n$ limectl dump-flows        # the default table-miss rule made limed a learning switch');
    say((await limectl(limed.socket, ['dump-flows'])).stdout.trimEnd());
  } catch (err) {
    process.stderr.write(`lime-demo: ${(err as Error).message}\n`);
    failures++;
  } finally {
    const code = await limed.stop();
    net.destroy();
    limed.cleanup();
    say(`\nlimed stopped (exit code ${code}); namespaces and devices removed`);
  }
  say(failures === 0 ? '\ndemo: all hosts reached each other through limed' : `\ndemo: ${failures} check(s) failed`);
  return failures === 0 ? 0 : 1;
}
