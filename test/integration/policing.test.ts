/**
 * Control-plane policing with real traffic: limed between two host namespaces, saturated
 * by udpgen (bench/c/udpgen.c, every frame a new 5-tuple so each one is a classifier
 * lookup), while a client keeps flow-mods outstanding. Under saturation the flow-mods are
 * deferred (counted in `limectl show`), none is lost, and once the traffic stops requests
 * are served at once again.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LimedProcess } from '../../src/demo/limed-process.js';
import { Netns } from '../../src/demo/netns.js';
import { request } from '../../src/cli/client.js';
import { describeAsRoot } from '../helpers/root.js';
import { runInNs } from '../helpers/proc.js';

const PREFIX = 'limep-';
const hosts = ['a', 'b'].map((x, i) => ({
  ns: `${PREFIX}h${x}`,
  port: `p${x}`,
  device: `limep-p${x}`,
  mac: `02:00:00:88:00:0${i + 1}`,
  ip: `10.88.0.${i + 1}`,
}));
const [A, B] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
const UDPGEN_SRC = fileURLToPath(new URL('../../bench/c/udpgen.c', import.meta.url));

interface ControlInfo {
  share_percent: number;
  saturated: boolean;
  deferred: number;
  waiting: number;
  saturated_windows: number;
}

describeAsRoot('control-plane policing under a saturated data path (netns, real traffic)', () => {
  const net = new Netns(PREFIX);
  let limed: LimedProcess;
  let tmp: string;
  let udpgen: string;

  const control = async (): Promise<ControlInfo> => {
    const r = await limed.ctl(['show', '--json']);
    expect(r.code).toBe(0);
    return (JSON.parse(r.stdout) as { control: ControlInfo }).control;
  };

  beforeAll(async () => {
    Netns.cleanupStale(PREFIX);
    tmp = mkdtempSync(join(tmpdir(), 'limep-'));
    udpgen = join(tmp, 'udpgen');
    const cc = spawnSync('cc', ['-O2', '-o', udpgen, UDPGEN_SRC], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`cc udpgen.c failed: ${cc.stderr}`);
    limed = new LimedProcess({
      site: 'policing',
      ports: hosts.map((h) => ({ name: h.port, device: h.device, mtu: 1500 })),
      // The JavaScript data path is what policing protects: the native fast path would forward
      // this one flow on its own thread, and the event loop would never be saturated.
      config: { control_share_percent: 2, fast_path: 'off' },
    });
    await limed.start();
    for (const h of hosts) {
      const ns = net.add(h.ns.slice(PREFIX.length));
      net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      net.attach(h.device, ns, { rename: 'eth0' });
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'address', h.mac]);
      net.exec(ns, 'ip', ['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'up']);
      net.tryExec(ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
      for (const o of hosts) if (o !== h) net.exec(ns, 'ip', ['neigh', 'replace', o.ip, 'lladdr', o.mac, 'dev', 'eth0', 'nud', 'permanent']);
    }
  });

  afterAll(async () => {
    const code = await limed?.stop();
    net.destroy();
    limed?.cleanup();
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  it('reports its share and nothing deferred while idle', async () => {
    const out = await runInNs(A.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', B.ip]);
    expect(out).toMatch(/2 packets transmitted, 2 received/);
    expect(await control()).toMatchObject({ share_percent: 2, saturated: false, deferred: 0, waiting: 0 });
    const show = await limed.ctl(['show']);
    expect(show.stdout).toMatch(/^control plane: 2 % of the event loop while the data path is saturated \(not saturated now\); 0 requests deferred, 0 waiting$/m);
  });

  it('defers flow-mods while the data path is saturated, loses none, and serves at once when traffic stops', async () => {
    const traffic = runInNs(A.ns, udpgen, ['--src', A.ip, '--dst', B.ip, '--rate', '1000000', '--seconds', '4', '--vary'], undefined, 30_000);
    await new Promise((r) => setTimeout(r, 700));
    // Eight flow-mods outstanding at a time, as a controller would keep them, for as long as the traffic runs.
    let sent = 0;
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        const i = sent++;
        await request({ path: limed.socket, timeoutMs: 30_000 }, {
          body: 'flow_mods',
          flow_mods: { command: 'ADD', text: { flows: [`priority=500,ip,nw_dst=10.77.${i >> 8}.${i & 255},actions=drop`], lines: [1], source: 'test', more: false } },
        });
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    const result = JSON.parse(await traffic) as { sent: number };
    running = false;
    await Promise.all(workers);
    expect(result.sent).toBeGreaterThan(100_000);

    const c = await control();
    expect(c.saturated_windows).toBeGreaterThan(0);
    expect(c.deferred).toBeGreaterThan(0);
    expect(c.waiting).toBe(0);
    // Every flow-mod answered is in the table.
    const dump = await limed.ctl(['dump-flows', '--json']);
    expect(dump.code).toBe(0);
    expect(sent).toBeGreaterThan(0);
    expect((JSON.parse(dump.stdout) as Array<{ priority: number }>).filter((f) => f.priority === 500)).toHaveLength(sent);

    // Traffic over: a request goes straight through (nothing more deferred).
    await new Promise((r) => setTimeout(r, 200));
    const before = (await control()).deferred;
    const add = await limed.ctl(['add-flow', 'priority=501,ip,nw_dst=10.78.0.1,actions=drop']);
    expect(add.code).toBe(0);
    const after = await control();
    expect(after.saturated).toBe(false);
    expect(after.deferred).toBe(before);
  });
});
