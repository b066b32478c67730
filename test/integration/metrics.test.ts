/**
 * The Prometheus endpoint of a real limed (config `metrics: { listen }`), scraped with the
 * real `curl` (node:http when curl is missing) while two hosts in network namespaces ping
 * each other through two TAP ports: the port counters move by at least the pings, the
 * names and labels are there, other paths are 404, the endpoint is gone after limed stops,
 * and an address already taken stops limed at start with a message naming it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LIMED, LimedProcess } from '../../src/demo/limed-process.js';
import { Netns } from '../../src/demo/netns.js';
import { describeAsRoot } from '../helpers/root.js';
import { runInNs } from '../helpers/proc.js';

const PREFIX = 'limepm-';
const hosts = [1, 2].map((i) => ({ suffix: `h${i}`, ns: `${PREFIX}h${i}`, port: `m${i}`, device: `${PREFIX}p${i}`, mac: `02:00:00:89:00:0${i}`, ip: `10.89.0.${i}` }));
const [h1, h2] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
const HAVE_CURL = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;

/** A free TCP port on loopback (bound, read, released). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

interface Answer { status: number; body: string; error?: string }

/** GET http://127.0.0.1:port/path, as an operator would: curl, or node:http without it. */
function scrape(port: number, path = '/metrics'): Promise<Answer> {
  const url = `http://127.0.0.1:${port}${path}`;
  if (HAVE_CURL) {
    return new Promise((resolve) => {
      const c = spawn('curl', ['-sS', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}', url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      c.on('close', (code) => {
        const nl = out.lastIndexOf('\n');
        const status = Number(out.slice(nl + 1));
        resolve({ status, body: out.slice(0, nl), ...(code !== 0 ? { error: `curl exit ${code}: ${err.trim()}` } : {}) });
      });
    });
  }
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (e) => resolve({ status: 0, body: '', error: e.message }));
    req.end();
  });
}

/** `name{labels} value` lines → Map of "name{labels}" → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

describeAsRoot('limed Prometheus endpoint (netns, real traffic, curl)', () => {
  const net = new Netns(PREFIX);
  let limed: LimedProcess;
  let port: number;

  beforeAll(async () => {
    Netns.cleanupStale(PREFIX);
    port = await freePort();
    limed = new LimedProcess({
      site: 'mtest',
      ports: hosts.map((h) => ({ name: h.port, device: h.device, mtu: 1500 })),
      config: { metrics: { listen: `127.0.0.1:${port}` } },
    });
    await limed.start();
    for (const h of hosts) {
      const ns = net.add(h.suffix);
      net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
      net.attach(h.device, ns, { rename: 'eth0' });
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'down']);
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'address', h.mac]);
      net.exec(ns, 'ip', ['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'up']);
    }
  });

  afterAll(async () => {
    const code = await limed?.stop();
    net.destroy();
    limed?.cleanup();
    expect(code).toBe(0);
  });

  it('the port counters move with the traffic; names and labels are there; 404 elsewhere', async () => {
    const before = await scrape(port);
    expect(before.error).toBeUndefined();
    expect(before.status).toBe(200);
    const b = samples(before.body);
    const out = await runInNs(h1.ns, 'ping', ['-c', '5', '-i', '0.2', '-W', '2', h2.ip]);
    expect(out).toMatch(/5 packets transmitted, 5 received/);
    const after = await scrape(port);
    expect(after.status).toBe(200);
    const a = samples(after.body);
    // Five echo requests in on m1 and out on m2, five replies the other way (plus ARP).
    for (const [name, p] of [['rx', 'm1'], ['tx', 'm2'], ['rx', 'm2'], ['tx', 'm1']] as const) {
      const key = `lime_port_${name}_packets_total{port="${p}"}`;
      expect(a.get(key), key).toBeGreaterThanOrEqual((b.get(key) ?? 0) + 5);
      const bytes = `lime_port_${name}_bytes_total{port="${p}"}`;
      expect(a.get(bytes), bytes).toBeGreaterThanOrEqual((b.get(bytes) ?? 0) + 5 * 98);
    }
    // The other families, with their labels (values as this standalone site has them).
    expect(a.get('lime_info{site="mtest"}')).toBe(1);
    expect(a.get('lime_port_up{port="m1"}')).toBe(1);
    expect(a.get(`lime_port_info{port="m2",type="tap",device="${h2.device}"}`)).toBe(1);
    expect(a.get('lime_flow_table_flows{table="0"}')).toBe(1); // the table-miss rule
    expect(a.get('lime_mac_table_entries')).toBeGreaterThanOrEqual(2);
    expect(a.get('lime_mac_table_capacity')).toBe(8192);
    expect(a.get('lime_mac_table_evictions_total')).toBe(0);
    expect(a.get('lime_packet_in_total')).toBe(0);
    expect(a.get('lime_packet_in_drops_total{reason="packet_in_rate"}')).toBe(0);
    expect(a.get('lime_migration_phase{phase="idle"}')).toBe(1);
    expect(a.get('lime_control_saturated')).toBe(0);
    const lookups = (s: Map<string, number>, c: string): number => (s.get(`lime_flow_cache_hits_total{cache="${c}"}`) ?? 0) + (s.get(`lime_flow_cache_misses_total{cache="${c}"}`) ?? 0);
    // Every frame is looked up in the native cache (fast_path: native, the default) or the EMC.
    expect(lookups(a, 'fast_path') + lookups(a, 'emc')).toBeGreaterThan(lookups(b, 'fast_path') + lookups(b, 'emc'));
    expect(a.get('lime_fast_path_cache_slots')).toBeGreaterThan(0);
    expect(a.has('lime_event_loop_delay_seconds{quantile="0.99"}')).toBe(true);
    expect(a.get('lime_event_loop_delay_seconds_count')).toBeGreaterThan(0);
    expect(a.has('process_cpu_seconds_total')).toBe(true);
    expect(after.body).toMatch(/^# TYPE lime_port_drops_total counter$/m);
    // No peer here: no peer series (HELP and TYPE only).
    expect([...a.keys()].filter((k) => k.startsWith('lime_peer_') || k.startsWith('lime_replication_'))).toEqual([]);

    for (const p of ['/', '/metric', '/stats']) {
      const r = await scrape(port, p);
      expect(r.status, p).toBe(404);
    }
    // limectl show agrees with the scrape (the same counters).
    const show = await limed.showJson();
    const m1 = show.ports.find((p: { name: string }) => p.name === 'm1');
    expect(m1.rx_packets).toBeGreaterThanOrEqual(a.get('lime_port_rx_packets_total{port="m1"}')!);
  });

  it('is gone once limed stops', async () => {
    expect(await limed.stop()).toBe(0);
    const r = await scrape(port);
    expect(r.status).not.toBe(200);
    expect(r.error).toMatch(HAVE_CURL ? /curl exit 7/ : /ECONNREFUSED/);
  });

  it('an address already in use stops limed at start, naming it (exit 1)', async () => {
    const taken: Server = createServer();
    const busy = await freePort();
    await new Promise<void>((r) => taken.listen(busy, '127.0.0.1', () => r()));
    const other = new LimedProcess({ site: 'mbusy', ports: [], config: { metrics: { listen: `127.0.0.1:${busy}` } } });
    try {
      const r = spawnSync(process.execPath, [LIMED, '--config', other.configPath], { encoding: 'utf8', timeout: 15_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`limed: metrics: cannot listen on 127.0.0.1:${busy}: the address is already in use (EADDRINUSE)`);
    } finally {
      await new Promise<void>((res) => taken.close(() => res()));
      other.cleanup();
    }
  });
});
