/**
 * Live reload of a running limed (SIGHUP and `limectl reload`) with real TAP ports and
 * traffic: ports added, changed and removed and live settings applied without touching
 * the flow table or the other ports (a ping across the reloads loses nothing); an invalid
 * file, or one changing what needs a restart, is refused with the reason and the running
 * configuration stays.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LimedProcess } from '../../src/demo/limed-process.js';
import { Netns, linkExists, waitFor } from '../../src/demo/netns.js';
import { describeAsRoot } from '../helpers/root.js';
import { runInNs } from '../helpers/proc.js';

const PREFIX = 'limer-';
const hosts = [1, 2].map((i) => ({ ns: `${PREFIX}h${i}`, port: `p${i}`, device: `limer-p${i}`, ip: `10.89.0.${i}` }));
const [h1, h2] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];

describeAsRoot('limed live reload (SIGHUP, limectl reload)', () => {
  const net = new Netns(PREFIX);
  let limed: LimedProcess;
  let base: Record<string, unknown>;

  /** Write the configuration file limed reads on reload: the base one with `change` over it. */
  function writeConfig(change: Record<string, unknown>): void {
    writeFileSync(limed.configPath, JSON.stringify({ ...base, ...change }, null, 2));
  }

  beforeAll(async () => {
    Netns.cleanupStale(PREFIX);
    limed = new LimedProcess({ site: 'reload', ports: hosts.map((h) => ({ name: h.port, device: h.device })) });
    await limed.start();
    base = { site: 'reload', socket: limed.socket, log_level: 'info', ports: hosts.map((h) => ({ name: h.port, type: 'tap', device: h.device })) };
    for (const h of hosts) {
      const ns = net.add(h.ns.slice(PREFIX.length));
      net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      net.attach(h.device, ns, { rename: 'eth0' });
      net.exec(ns, 'ip', ['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'up']);
    }
    const added = await limed.ctl(['add-flow', 'priority=100,ip,actions=NORMAL']);
    expect(added.code, added.stderr).toBe(0);
  });

  afterAll(async () => {
    const code = await limed?.stop();
    net.destroy();
    limed?.cleanup();
    expect(code).toBe(0);
  });

  it('applies added, changed and removed ports and live settings while a ping runs, losing nothing', async () => {
    const ping = runInNs(h1.ns, 'ping', ['-c', '150', '-i', '0.02', '-W', '2', h2.ip]);
    await new Promise((r) => setTimeout(r, 400));
    const before = await limed.showJson();

    // SIGHUP: a port and settings added.
    writeConfig({
      log_level: 'debug',
      mac_table: { aging_seconds: 60 },
      ports: [...(base['ports'] as object[]), { name: 'p3', type: 'tap', device: 'limer-p3' }],
    });
    process.kill(limed.child!.pid!, 'SIGHUP');
    await waitFor('limed to add port p3', () => linkExists('limer-p3'), 10_000);
    await waitFor('the reload to be logged', () => limed.stdout.includes('configuration reloaded'), 10_000);
    const show1 = await limed.showJson();
    const p3 = show1.ports.find((p: { name: string }) => p.name === 'p3');
    expect(p3).toMatchObject({ type: 'tap', device: 'limer-p3', mtu: 1500 });
    expect(show1.mac_table.aging_seconds).toBe(60);

    // limectl reload: p3 changed (reopened under the same number).
    writeConfig({ log_level: 'debug', mac_table: { aging_seconds: 60 }, ports: [...(base['ports'] as object[]), { name: 'p3', type: 'tap', device: 'limer-p3', mtu: 1400 }] });
    let r = await limed.ctl(['reload', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ config: limed.configPath, ports_added: [], ports_removed: [], ports_changed: ['p3'], settings_changed: [] });
    const show2 = await limed.showJson();
    expect(show2.ports.find((p: { name: string }) => p.name === 'p3')).toMatchObject({ number: p3.number, mtu: 1400 });

    // limectl reload back to the base file: p3 removed, settings restored.
    writeConfig({});
    r = await limed.ctl(['reload']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`reloaded ${limed.configPath}:\n  ports removed: p3\n  log_level: debug -> info\n  mac_table.aging_seconds: 60 -> 300\n`);
    expect(linkExists('limer-p3')).toBe(false);

    const out = await ping;
    expect(out).toMatch(/150 packets transmitted, 150 received/);
    // The other ports kept their numbers and counters; the flow table was not touched.
    const after = await limed.showJson();
    for (const name of ['p1', 'p2']) {
      const b = before.ports.find((p: { name: string }) => p.name === name);
      const a = after.ports.find((p: { name: string }) => p.name === name);
      expect(a.number).toBe(b.number);
      expect(a.rx_packets).toBeGreaterThan(b.rx_packets);
    }
    const flows = JSON.parse((await limed.ctl(['dump-flows', '--json'])).stdout);
    const ours = flows.filter((f: { priority: number }) => f.priority === 100);
    expect(ours).toHaveLength(1);
    expect(ours[0].n_packets).toBeGreaterThanOrEqual(300);
  });

  it('refuses an invalid file, naming the field, and keeps the running configuration', async () => {
    writeConfig({ ports: [{ name: 'p1', type: 'tap', device: 'limer-p1', mtu: 20 }, { name: 'p9', type: 'tap', device: 'limer-p9' }] });
    const r = await limed.ctl(['reload']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${limed.configPath}: ports[0].mtu: expected an integer from 68 to 9000, got 20`);
    expect(r.stderr).toContain('the running configuration stays in force');
    expect(linkExists('limer-p9')).toBe(false);
    const show = await limed.showJson();
    expect(show.ports.map((p: { name: string }) => p.name)).toEqual(['p1', 'p2']);
    // SIGHUP with the same file: refused in the log, limed keeps running.
    process.kill(limed.child!.pid!, 'SIGHUP');
    await waitFor('the refusal to be logged', () => limed.stdout.includes('reload refused'), 10_000);
    expect(limed.child!.exitCode).toBe(null);
    expect(await runInNs(h1.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', h2.ip])).toMatch(/2 received/);
  });

  it('refuses a change only a restart can make, and a port that cannot open, changing nothing', async () => {
    writeConfig({ site: 'elsewhere', ports: [...(base['ports'] as object[]), { name: 'p8', type: 'tap', device: 'limer-p8' }] });
    let r = await limed.ctl(['reload']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('site changed: this setting changes only by restarting limed');
    expect(linkExists('limer-p8')).toBe(false);

    // A system port on a device that does not exist: the port added before it is closed again.
    writeConfig({ ports: [...(base['ports'] as object[]), { name: 'p8', type: 'tap', device: 'limer-p8' }, { name: 'p7', type: 'system', device: 'limer-nodev' }] });
    r = await limed.ctl(['reload']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/reload failed: .*limer-nodev/);
    expect(linkExists('limer-p8')).toBe(false);
    const show = await limed.showJson();
    expect(show.site).toBe('reload');
    expect(show.ports.map((p: { name: string }) => p.name)).toEqual(['p1', 'p2']);
  });
});
