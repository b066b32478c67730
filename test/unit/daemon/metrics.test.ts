/**
 * The Prometheus exposition (src/daemon/metrics.ts), from a fake snapshot of the daemon:
 * exactly the metric names, types and label names the issue and the README promise
 * (written here by hand, not copied from the output), the values where they come from,
 * the conventions (lime_ prefix, _total counters, base units, HELP on each), and the HTTP
 * endpoint's answers (200 on /metrics, 404 elsewhere, 405 for other methods, a clear
 * error when the address is taken).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { MetricsListenError, MetricsRegistry, MetricsServer, daemonMetricsSource, type DaemonView, type MetricsSnapshot } from '../../../src/daemon/metrics.js';
import { Switch } from '../../../src/datapath/switch.js';
import { FlowTable } from '../../../src/table/flow-table.js';
import type { MigrateStatus, PeerShowReply } from '../../../src/proto/schema.js';
import type { ShowReply } from '../../../src/mgmt/service.js';

/** Every lime_ metric: its type and label names (sorted), from the spec. */
const EXPECTED: Record<string, { type: 'counter' | 'gauge' | 'summary'; labels: string[] }> = {
  lime_info: { type: 'gauge', labels: ['site'] },
  lime_port_info: { type: 'gauge', labels: ['device', 'port', 'type'] },
  lime_port_up: { type: 'gauge', labels: ['port'] },
  lime_port_rx_packets_total: { type: 'counter', labels: ['port'] },
  lime_port_rx_bytes_total: { type: 'counter', labels: ['port'] },
  lime_port_tx_packets_total: { type: 'counter', labels: ['port'] },
  lime_port_tx_bytes_total: { type: 'counter', labels: ['port'] },
  lime_port_drops_total: { type: 'counter', labels: ['port', 'reason'] },
  lime_flow_table_flows: { type: 'gauge', labels: ['table'] },
  lime_flow_cache_hits_total: { type: 'counter', labels: ['cache'] },
  lime_flow_cache_misses_total: { type: 'counter', labels: ['cache'] },
  lime_fast_path_cache_entries: { type: 'gauge', labels: [] },
  lime_fast_path_cache_slots: { type: 'gauge', labels: [] },
  lime_fast_path_upcall_drops_total: { type: 'counter', labels: [] },
  lime_mac_table_entries: { type: 'gauge', labels: [] },
  lime_mac_table_capacity: { type: 'gauge', labels: [] },
  lime_mac_table_evictions_total: { type: 'counter', labels: [] },
  lime_packet_in_total: { type: 'counter', labels: [] },
  lime_packet_in_drops_total: { type: 'counter', labels: ['reason'] },
  lime_control_saturated: { type: 'gauge', labels: [] },
  lime_control_deferred_total: { type: 'counter', labels: [] },
  lime_peer_up: { type: 'gauge', labels: ['peer'] },
  lime_peer_rtt_seconds: { type: 'gauge', labels: ['peer'] },
  lime_replication_seq: { type: 'gauge', labels: ['peer'] },
  lime_replication_durable_seq: { type: 'gauge', labels: ['peer'] },
  lime_replication_lag_entries: { type: 'gauge', labels: ['peer'] },
  lime_replication_lag_seconds: { type: 'gauge', labels: ['peer'] },
  lime_replication_resyncs_total: { type: 'counter', labels: ['peer'] },
  lime_replication_resumes_total: { type: 'counter', labels: ['peer'] },
  lime_migration_phase: { type: 'gauge', labels: ['phase'] },
  lime_inter_site_tx_bytes_total: { type: 'counter', labels: [] },
  lime_inter_site_rx_bytes_total: { type: 'counter', labels: [] },
  lime_inter_site_tx_packets_total: { type: 'counter', labels: [] },
  lime_inter_site_rx_packets_total: { type: 'counter', labels: [] },
  lime_event_loop_delay_seconds: { type: 'summary', labels: ['quantile'] },
  lime_monitor_drops_total: { type: 'counter', labels: [] },
  lime_journal_bytes: { type: 'gauge', labels: [] },
  lime_journal_compactions_total: { type: 'counter', labels: [] },
  lime_replication_window_cutoffs_total: { type: 'counter', labels: ['peer'] },
};

/** A site with everything: two ports (a TAP and a tunnel), two tables, the fast path, a peer, a migration under way. */
function fullSnapshot(): MetricsSnapshot {
  return {
    site: 'a',
    ports: [
      { name: 'vm1', type: 'tap', device: 'lime-vm1', state: 'up', rx_packets: 10, rx_bytes: 1000, tx_packets: 20, tx_bytes: 2000, drops: { runt: 2, packet_in_rate: 3 } },
      { name: 'to-b', type: 'gre', device: '', state: 'down', rx_packets: 5, rx_bytes: 500, tx_packets: 6, tx_bytes: 600, drops: { gre_key_mismatch: 1 } },
    ],
    flowTables: [{ table: 0, flows: 3 }, { table: 1, flows: 1 }],
    caches: [{ cache: 'emc', hits: 90, misses: 10 }, { cache: 'fast_path', hits: 900, misses: 100 }],
    fastPath: { entries: 4, slots: 8192, upcallDrops: 7 },
    macTable: { size: 2, capacity: 8192, evictions: 1 },
    packetIn: { sent: 12, drops: { packet_in_rate: 3 } },
    control: { saturated: true, deferred: 4 },
    peer: { name: 'b', up: true, rttSeconds: 0.002, seq: 42, durableSeq: 41, lagEntries: 1, lagSeconds: 0.005, resyncs: 1, resumes: 2 },
    migration: { phase: 'moving', interSite: { txBytes: 300, rxBytes: 400, txPackets: 3, rxPackets: 4 } },
    bounds: { monitorsDropped: 5, journal: { bytes: 4096, compactions: 6 }, windowCutoffs: { peer: 'b', count: 1 } },
  };
}

/** A standalone site: no peer, no fast path, no tunnel port. */
function plainSnapshot(): MetricsSnapshot {
  return {
    site: 'solo',
    ports: [{ name: 'vm1', type: 'tap', device: 'vm1', state: 'up', rx_packets: 1, rx_bytes: 60, tx_packets: 0, tx_bytes: 0, drops: {} }],
    flowTables: [{ table: 0, flows: 1 }],
    caches: [{ cache: 'emc', hits: 0, misses: 1 }],
    macTable: { size: 1, capacity: 16, evictions: 0 },
    packetIn: { sent: 0, drops: { packet_in_rate: 0 } },
    control: { saturated: false, deferred: 0 },
    migration: { phase: 'idle' },
    bounds: { monitorsDropped: 0 },
  };
}

interface Family { help: string; type: string; samples: { name: string; labels: Record<string, string>; value: number }[] }

/** Parse the Prometheus text format (what a scraper reads). */
function parse(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  const fam = (name: string): Family => {
    let f = out.get(name);
    if (f === undefined) out.set(name, (f = { help: '', type: '', samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m !== null) { fam(m[1]!).help = m[2]!; continue; }
    m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m !== null) { fam(m[1]!).type = m[2]!; continue; }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const name = m[1]!;
    const base = out.has(name) ? name : name.replace(/_(sum|count|bucket)$/, '');
    fam(base).samples.push({ name, labels, value: Number(m[3]) });
  }
  return out;
}

function value(fams: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const base = fams.has(name) ? name : name.replace(/_(sum|count)$/, '');
  return fams.get(base)?.samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()))?.value;
}

const registries: MetricsRegistry[] = [];
function registry(source: () => MetricsSnapshot, defaultMetrics = false): MetricsRegistry {
  const r = new MetricsRegistry(source, { defaultMetrics });
  registries.push(r);
  return r;
}
afterEach(() => {
  for (const r of registries.splice(0)) r.close();
});

describe('Prometheus exposition', () => {
  it('has exactly the promised lime_ metrics, with their types and label names', async () => {
    const fams = parse(await registry(fullSnapshot).metrics());
    const lime = [...fams.keys()].filter((n) => n.startsWith('lime_')).sort();
    expect(lime).toEqual(Object.keys(EXPECTED).sort());
    for (const [name, want] of Object.entries(EXPECTED)) {
      const f = fams.get(name)!;
      expect(f.type, name).toBe(want.type);
      expect(f.samples.length, `${name} has samples`).toBeGreaterThan(0);
      for (const s of f.samples) {
        const isSummaryTotal = want.type === 'summary' && s.name !== name;
        expect(Object.keys(s.labels).sort(), `${s.name} labels`).toEqual(isSummaryTotal ? [] : want.labels);
      }
    }
  });

  it('follows the naming conventions: lime_ prefix, _total for counters only, base units, a HELP each', async () => {
    const fams = parse(await registry(fullSnapshot).metrics());
    for (const [name, f] of fams) {
      if (!name.startsWith('lime_')) continue;
      expect(name).toMatch(/^lime_[a-z][a-z0-9_]*$/);
      expect(f.help.length, `${name} has a HELP text`).toBeGreaterThan(10);
      expect(name.endsWith('_total'), `${name}: _total if and only if a counter`).toBe(f.type === 'counter');
      expect(name, 'no non-base units').not.toMatch(/_(ms|milliseconds|kb|kilobytes|percent)(_|$)/);
    }
  });

  it('reports each value where the daemon counts it', async () => {
    const f = parse(await registry(fullSnapshot).metrics());
    expect(value(f, 'lime_info', { site: 'a' })).toBe(1);
    expect(value(f, 'lime_port_info', { port: 'vm1', type: 'tap', device: 'lime-vm1' })).toBe(1);
    expect(value(f, 'lime_port_info', { port: 'to-b', type: 'gre', device: '' })).toBe(1);
    expect(value(f, 'lime_port_up', { port: 'vm1' })).toBe(1);
    expect(value(f, 'lime_port_up', { port: 'to-b' })).toBe(0);
    expect(value(f, 'lime_port_rx_packets_total', { port: 'vm1' })).toBe(10);
    expect(value(f, 'lime_port_rx_bytes_total', { port: 'vm1' })).toBe(1000);
    expect(value(f, 'lime_port_tx_packets_total', { port: 'vm1' })).toBe(20);
    expect(value(f, 'lime_port_tx_bytes_total', { port: 'to-b' })).toBe(600);
    expect(value(f, 'lime_port_drops_total', { port: 'vm1', reason: 'runt' })).toBe(2);
    expect(value(f, 'lime_port_drops_total', { port: 'to-b', reason: 'gre_key_mismatch' })).toBe(1);
    expect(f.get('lime_port_drops_total')!.samples).toHaveLength(3);
    expect(value(f, 'lime_flow_table_flows', { table: '0' })).toBe(3);
    expect(value(f, 'lime_flow_table_flows', { table: '1' })).toBe(1);
    expect(value(f, 'lime_flow_cache_hits_total', { cache: 'emc' })).toBe(90);
    expect(value(f, 'lime_flow_cache_misses_total', { cache: 'fast_path' })).toBe(100);
    expect(value(f, 'lime_fast_path_cache_entries')).toBe(4);
    expect(value(f, 'lime_fast_path_cache_slots')).toBe(8192);
    expect(value(f, 'lime_fast_path_upcall_drops_total')).toBe(7);
    expect(value(f, 'lime_mac_table_entries')).toBe(2);
    expect(value(f, 'lime_mac_table_capacity')).toBe(8192);
    expect(value(f, 'lime_mac_table_evictions_total')).toBe(1);
    expect(value(f, 'lime_packet_in_total')).toBe(12);
    expect(value(f, 'lime_packet_in_drops_total', { reason: 'packet_in_rate' })).toBe(3);
    expect(value(f, 'lime_control_saturated')).toBe(1);
    expect(value(f, 'lime_control_deferred_total')).toBe(4);
    expect(value(f, 'lime_peer_up', { peer: 'b' })).toBe(1);
    expect(value(f, 'lime_peer_rtt_seconds', { peer: 'b' })).toBe(0.002);
    expect(value(f, 'lime_replication_seq', { peer: 'b' })).toBe(42);
    expect(value(f, 'lime_replication_durable_seq', { peer: 'b' })).toBe(41);
    expect(value(f, 'lime_replication_lag_entries', { peer: 'b' })).toBe(1);
    expect(value(f, 'lime_replication_lag_seconds', { peer: 'b' })).toBe(0.005);
    expect(value(f, 'lime_replication_resyncs_total', { peer: 'b' })).toBe(1);
    expect(value(f, 'lime_replication_resumes_total', { peer: 'b' })).toBe(2);
    expect(value(f, 'lime_migration_phase', { phase: 'idle' })).toBe(0);
    expect(value(f, 'lime_migration_phase', { phase: 'moving' })).toBe(1);
    expect(value(f, 'lime_migration_phase', { phase: 'cutover' })).toBe(0);
    expect(value(f, 'lime_inter_site_tx_bytes_total')).toBe(300);
    expect(value(f, 'lime_inter_site_rx_bytes_total')).toBe(400);
    expect(value(f, 'lime_inter_site_tx_packets_total')).toBe(3);
    expect(value(f, 'lime_inter_site_rx_packets_total')).toBe(4);
    expect(value(f, 'lime_monitor_drops_total')).toBe(5);
    expect(value(f, 'lime_journal_bytes')).toBe(4096);
    expect(value(f, 'lime_journal_compactions_total')).toBe(6);
    expect(value(f, 'lime_replication_window_cutoffs_total', { peer: 'b' })).toBe(1);
    for (const q of ['0.5', '0.9', '0.99']) expect(value(f, 'lime_event_loop_delay_seconds', { quantile: q })).toBeGreaterThanOrEqual(0);
    expect(value(f, 'lime_event_loop_delay_seconds_sum')).toBeGreaterThanOrEqual(0);
    expect(value(f, 'lime_event_loop_delay_seconds_count')).toBeGreaterThanOrEqual(0);
  });

  it('a standalone site has no peer, replication, fast-path or inter-site samples', async () => {
    const f = parse(await registry(plainSnapshot).metrics());
    const empty = [
      'lime_peer_up', 'lime_peer_rtt_seconds', 'lime_replication_seq', 'lime_replication_durable_seq', 'lime_replication_lag_entries',
      'lime_replication_lag_seconds', 'lime_replication_resyncs_total', 'lime_replication_resumes_total',
      'lime_fast_path_cache_entries', 'lime_fast_path_cache_slots', 'lime_fast_path_upcall_drops_total',
      'lime_inter_site_tx_bytes_total', 'lime_inter_site_rx_bytes_total', 'lime_inter_site_tx_packets_total', 'lime_inter_site_rx_packets_total',
      'lime_journal_bytes', 'lime_journal_compactions_total', 'lime_replication_window_cutoffs_total',
      'lime_port_drops_total',
    ];
    for (const n of empty) expect(f.get(n)?.samples ?? [], n).toEqual([]);
    expect(value(f, 'lime_migration_phase', { phase: 'idle' })).toBe(1);
    expect(value(f, 'lime_packet_in_drops_total', { reason: 'packet_in_rate' })).toBe(0);
    expect(value(f, 'lime_monitor_drops_total')).toBe(0);
    expect(f.get('lime_flow_cache_hits_total')!.samples.map((s) => s.labels['cache'])).toEqual(['emc']);
  });

  it('reads the source once per scrape, and follows it: counters move, a table that empties reads 0, a removed port goes', async () => {
    let calls = 0;
    let snap = fullSnapshot();
    const r = registry(() => (calls++, snap));
    await r.metrics();
    expect(calls).toBe(1);
    snap = { ...snap, ports: [{ ...snap.ports[0]!, rx_packets: 15 }], flowTables: [{ table: 0, flows: 2 }] };
    const f = parse(await r.metrics());
    expect(calls).toBe(2);
    expect(value(f, 'lime_port_rx_packets_total', { port: 'vm1' })).toBe(15);
    expect(value(f, 'lime_port_rx_packets_total', { port: 'to-b' })).toBeUndefined();
    expect(value(f, 'lime_flow_table_flows', { table: '1' })).toBe(0);
    expect(value(f, 'lime_flow_table_flows', { table: '0' })).toBe(2);
  });

  it('adds prom-client\'s default process metrics', async () => {
    const f = parse(await registry(plainSnapshot, true).metrics());
    for (const n of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(f.has(n), n).toBe(true);
    }
  });
});

describe('the sample Grafana dashboard (packaging/grafana-dashboard.json)', () => {
  const dash = JSON.parse(readFileSync(fileURLToPath(new URL('../../../packaging/grafana-dashboard.json', import.meta.url)), 'utf8')) as {
    title: string;
    panels: { type: string; title: string; targets?: { expr: string }[] }[];
  };
  const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  it('queries only metrics limed exports', () => {
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\blime_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(sum|count)$/, ''))));
    expect(used.size).toBeGreaterThan(15);
    for (const n of used) expect(Object.keys(EXPECTED), `${n} in the dashboard`).toContain(n);
  });

  it('shows what the issue asks for', () => {
    const text = exprs.join('\n');
    for (const n of ['lime_port_rx_packets_total', 'lime_port_drops_total', 'lime_flow_table_flows', 'lime_flow_cache_hits_total', 'lime_peer_up', 'lime_replication_lag_seconds', 'lime_event_loop_delay_seconds']) {
      expect(text).toContain(n);
    }
  });
});

describe('daemonMetricsSource', () => {
  it('reads the replies limectl shows and the data path\'s counters', () => {
    const table = new FlowTable({ now: () => 0 });
    const sw = new Switch({ table });
    sw.pipeline.emc.nHits = 5;
    sw.pipeline.emc.nMisses = 2;
    sw.pipeline.exec.nPacketIns = 9;
    const show: ShowReply = {
      site: 'a',
      ports: [
        { name: 'p1', number: 1, type: 'tap', device: 'p1', state: 'up', mtu: 1500, mac: '', rx_packets: 1, rx_bytes: 2, tx_packets: 3, tx_bytes: 4, drops: { packet_in_rate: 2 }, options: {} },
        { name: 'p2', number: 2, type: 'tap', device: 'p2', state: 'up', mtu: 1500, mac: '', rx_packets: 0, rx_bytes: 0, tx_packets: 0, tx_bytes: 0, drops: { packet_in_rate: 1, runt: 4 }, options: {} },
      ],
      mac_table: { size: 3, capacity: 16, evictions: 1, aging_seconds: 300 },
      process: { pid: 1, uptime_seconds: 1, heap_used: 1, rss: 1, gc_count: 0 },
      control: { share_percent: 5, saturated: false, deferred: 6, waiting: 0, cost_ms: 0, saturated_windows: 0, monitors_dropped: 2 },
      fast_path: { enabled: true, ports: ['p1'], cache_used: 1, cache_slots: 64, rx: 10, hits: 8, upcalls: 2, upcall_drops: 0, installs: 1, cache_full: 0, invalidations: 0 },
    };
    const peer: PeerShowReply = {
      configured: true, role: 'writer', site: 'a', peer: 'b', connected: false, tls_identity: '', remote_address: '',
      seq: 7, durable_seq: 7, resyncs: 3, resumes: 0, log_id: 'x', state_dir: '/tmp', divergent: 0, rtt_ms: 4, lag_entries: 2, lag_ms: 250,
      journal_bytes: 1234, compactions: 2, window_cutoffs: 1,
    };
    const mig = { tunnel_port: 'wan', inter_site_tx_bytes: 1, inter_site_rx_bytes: 2, inter_site_tx_packets: 3, inter_site_rx_packets: 4, migration: { phase: 'cutover' } } as unknown as MigrateStatus;
    const view: DaemonView = { config: { site: 'a' }, switch: sw, flows: { table }, show: () => show, peerShow: () => peer, migrateStatus: () => mig };
    const s = daemonMetricsSource(view)();
    expect(s.site).toBe('a');
    expect(s.ports.map((p) => p.name)).toEqual(['p1', 'p2']);
    expect(s.flowTables).toEqual([{ table: 0, flows: 1 }]); // the table-miss rule
    expect(s.caches).toEqual([{ cache: 'emc', hits: 5, misses: 2 }, { cache: 'fast_path', hits: 8, misses: 2 }]);
    expect(s.fastPath).toEqual({ entries: 1, slots: 64, upcallDrops: 0 });
    expect(s.macTable).toEqual({ size: 3, capacity: 16, evictions: 1 });
    expect(s.packetIn).toEqual({ sent: 9, drops: { packet_in_rate: 3 } });
    expect(s.control).toEqual({ saturated: false, deferred: 6 });
    expect(s.peer).toEqual({ name: 'b', up: false, rttSeconds: 0.004, seq: 7, durableSeq: 7, lagEntries: 2, lagSeconds: 0.25, resyncs: 3, resumes: 0 });
    expect(s.migration).toEqual({ phase: 'cutover', interSite: { txBytes: 1, rxBytes: 2, txPackets: 3, rxPackets: 4 } });
    expect(s.bounds).toEqual({ monitorsDropped: 2, journal: { bytes: 1234, compactions: 2 }, windowCutoffs: { peer: 'b', count: 1 } });
    // No peer configured (a state directory alone), fast path off, no tunnel port: none of those.
    const alone = daemonMetricsSource({
      ...view,
      show: () => ({ ...show, fast_path: { ...show.fast_path, enabled: false } }),
      peerShow: () => ({ ...peer, peer: '' }),
      migrateStatus: () => ({ ...mig, tunnel_port: '' }),
    })();
    expect(alone.peer).toBeUndefined();
    expect(alone.fastPath).toBeUndefined();
    expect(alone.caches.map((c) => c.cache)).toEqual(['emc']);
    expect(alone.migration).toEqual({ phase: 'cutover' });
    expect(alone.bounds).toEqual({ monitorsDropped: 2, journal: { bytes: 1234, compactions: 2 } }); // journal: a state directory alone
  });
});

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the HTTP endpoint', () => {
  it('serves GET /metrics in the text format, 404 elsewhere, 405 for other methods; gone after stop', async () => {
    const port = await freePort();
    const server = new MetricsServer(`127.0.0.1:${port}`, fullSnapshot, undefined, { defaultMetrics: false });
    await server.start();
    try {
      const ok = await get(port, '/metrics');
      expect(ok.status).toBe(200);
      expect(ok.type).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(ok.body).toContain('lime_port_rx_packets_total{port="vm1"} 10');
      expect((await get(port, '/metrics?x=1')).status).toBe(200);
      for (const p of ['/', '/metric', '/metrics/x', '/favicon.ico']) expect((await get(port, p)).status, p).toBe(404);
      expect((await get(port, '/metrics', 'POST')).status).toBe(405);
    } finally {
      await server.stop();
    }
    await expect(get(port, '/metrics')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('names the address when it cannot listen', async () => {
    const port = await freePort();
    const first = new MetricsServer(`127.0.0.1:${port}`, plainSnapshot, undefined, { defaultMetrics: false });
    await first.start();
    const second = new MetricsServer(`127.0.0.1:${port}`, plainSnapshot, undefined, { defaultMetrics: false });
    try {
      const err = await second.start().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(MetricsListenError);
      expect((err as Error).message).toBe(`metrics: cannot listen on 127.0.0.1:${port}: the address is already in use (EADDRINUSE)`);
    } finally {
      await second.stop();
      await first.stop();
    }
  });

  it('answers 500 with the reason when collecting fails, and keeps serving', async () => {
    const port = await freePort();
    let fail = true;
    const server = new MetricsServer(`127.0.0.1:${port}`, () => {
      if (fail) throw new Error('boom');
      return plainSnapshot();
    }, undefined, { defaultMetrics: false });
    await server.start();
    try {
      const r = await get(port, '/metrics');
      expect(r.status).toBe(500);
      expect(r.body).toContain('boom');
      fail = false;
      expect((await get(port, '/metrics')).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});
