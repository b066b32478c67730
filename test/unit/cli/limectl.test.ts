import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { connectMessage } from '../../../src/cli/client.js';
import { main } from '../../../src/cli/limectl.js';
import { ManagementServer } from '../../../src/mgmt/server.js';
import { ManagementError } from '../../../src/mgmt/service.js';
import { FakeManagementService, tempDir } from '../../helpers/fake-mgmt.js';

let tmp: ReturnType<typeof tempDir>;
let server: ManagementServer;
let service: FakeManagementService;
let socket: string;

beforeEach(async () => {
  tmp = tempDir();
  service = new FakeManagementService();
  socket = join(tmp.dir, 'limed.sock');
  server = new ManagementServer({ path: socket, service });
  await server.start();
  vi.stubEnv('LIME_SOCKET', undefined); // a developer's own LIME_SOCKET must not leak in
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await server.stop();
  tmp.cleanup();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], env?: Record<string, string | undefined>): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    ...(env ? { env } : {}),
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** argv with --socket pointing at the test server. */
function ctl(...args: string[]): Promise<Run> {
  return run(['--socket', socket, ...args]);
}

function expectOneLine(text: string): void {
  expect(text.endsWith('\n')).toBe(true);
  expect(text.trimEnd().split('\n').length).toBe(1);
  expect(text).not.toMatch(/\n\s+at /); // no stack trace
}

describe('limectl show', () => {
  it('prints the site, a port table with drops, and the MAC table', async () => {
    const r = await ctl('show');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('site: paris');
    expect(lines[1]).toMatch(/^PORT\s+NAME\s+TYPE\s+DEVICE\s+STATE\s+MTU\s+MAC\s+RX_PACKETS\s+RX_BYTES\s+TX_PACKETS\s+TX_BYTES\s+DROPS$/);
    expect(lines[2]).toMatch(/^\s*1\s+vm1\s+tap\s+vm1\s+up\s+1500\s+02:00:00:00:00:01\s+12\s+1008\s+10\s+840\s+runt=3,too_long=1$/);
    expect(lines[3]).toMatch(/^\s*2\s+vm2\s+tap\s+vm2\s+down\s+9000\s+02:00:00:00:00:02\s+0\s+0\s+0\s+0\s+-$/);
    expect(lines[4]).toBe('mac table: 2 of 8192 entries, 7 evictions, aging 300 s');
    expect(lines[5]).toBe('control plane: 10 % of the event loop while the data path is saturated (not saturated now); 12 requests deferred, 0 waiting');
    // columns line up: every row's MAC starts where the header's MAC does
    const col = lines[1]!.indexOf('MAC');
    expect(lines[2]!.indexOf('02:00')).toBe(col);
    expect(lines[3]!.indexOf('02:00')).toBe(col);
  });

  it('prints the monitor connections dropped for a full queue, once there are any', async () => {
    expect((await ctl('show')).stdout).not.toContain('monitors dropped');
    service.monitorsDropped = 3;
    const r = await ctl('show');
    expect(r.stdout).toContain('\nmonitors dropped: 3 (left more than limits.monitor_queue_bytes of events unread)\n');
    expect(JSON.parse((await ctl('show', '--json')).stdout).control).toMatchObject({ monitors_dropped: 3 });
  });

  it('--json prints exactly one JSON object with the contract fields', async () => {
    for (const argv of [['--json', 'show'], ['show', '--json']]) {
      const r = await ctl(...argv);
      expect(r.code).toBe(0);
      const obj = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(obj['site']).toBe('paris');
      const ports = obj['ports'] as Array<Record<string, unknown>>;
      expect(ports).toHaveLength(2);
      expect(ports[0]).toEqual({
        name: 'vm1',
        number: 1,
        type: 'tap',
        device: 'vm1',
        state: 'up',
        mtu: 1500,
        mac: '02:00:00:00:00:01',
        rx_packets: 12,
        rx_bytes: 1008,
        tx_packets: 10,
        tx_bytes: 840,
        drops: { runt: 3, too_long: 1 },
        options: {},
      });
      expect(ports[1]!['drops']).toEqual({});
      expect(obj['mac_table']).toEqual({ size: 2, capacity: 8192, evictions: 7, aging_seconds: 300 });
      expect((obj['process'] as Record<string, unknown>)['pid']).toBe(4242);
    }
  });
});

describe('limectl fdb/show', () => {
  it('prints like ovs-appctl fdb/show, also as fdb-show', async () => {
    for (const cmd of ['fdb/show', 'fdb-show']) {
      const r = await ctl(cmd);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(
        ' port  VLAN  MAC                Age\n' +
          '  vm1     0  02:00:00:00:00:01    5\n' +
          '  vm2   100  52:54:00:12:34:56  123\n',
      );
    }
  });

  it('--json prints { entries: [...] }', async () => {
    const r = await ctl('--json', 'fdb/show');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ entries: service.fdb });
  });
});

describe('limectl add-port / del-port', () => {
  it('adds a port, shows it, deletes it', async () => {
    const add = await ctl('add-port', 'vm3', '--mtu', '9000', '--mac', '02:AA:00:00:00:03', '--device', 'tap-vm3');
    expect(add.code).toBe(0);
    expect(add.stdout).toBe('added port vm3: number 3, type tap, device tap-vm3, state up, mtu 9000, mac 02:aa:00:00:00:03\n');
    // what reached the service: MAC normalised to lower case, MTU a number
    expect(service.calls.at(-1)).toEqual([
      'addPort',
      { name: 'vm3', type: 'tap', device: 'tap-vm3', mtu: 9000, mac: '02:aa:00:00:00:03' },
    ]);
    const shown = JSON.parse((await ctl('--json', 'show')).stdout) as { ports: Array<{ name: string }> };
    expect(shown.ports.map((p) => p.name)).toEqual(['vm1', 'vm2', 'vm3']);

    const del = await ctl('del-port', 'vm3');
    expect(del).toEqual({ code: 0, stdout: 'deleted port vm3\n', stderr: '' });
    expect(service.ports.map((p) => p.name)).toEqual(['vm1', 'vm2']);
  });

  it('--json prints the PortInfo for add-port and { deleted } for del-port', async () => {
    const add = await ctl('--json', 'add-port', 'vm4');
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ name: 'vm4', number: 3, type: 'tap', device: 'vm4', mtu: 1500, state: 'up' });
    expect(service.calls.at(-1)).toEqual(['addPort', { name: 'vm4', type: 'tap' }]);
    const del = await ctl('--json', 'del-port', 'vm4');
    expect(del.code).toBe(0);
    expect(JSON.parse(del.stdout)).toEqual({ deleted: 'vm4' });
  });

  it('reports a daemon error reply with exit 1 and its message', async () => {
    const del = await ctl('del-port', 'nosuch');
    expect(del.code).toBe(1);
    expect(del.stdout).toBe('');
    expect(del.stderr).toBe('limectl: no port named nosuch\n');
    const add = await ctl('--json', 'add-port', 'vm1');
    expect(add.code).toBe(1);
    expect(add.stdout).toBe('');
    expect(add.stderr).toBe('limectl: port vm1 already exists\n');
  });

  it('reports an internal daemon failure with exit 1', async () => {
    service.showError = new Error('datapath exploded');
    const r = await ctl('show');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('limectl: datapath exploded\n');
  });
});

describe('limectl usage errors (exit 2, one line, nothing sent)', () => {
  it.each([
    [['--mtu', 'abc'], "invalid --mtu 'abc': must be an integer from 68 to 65535"],
    [['--mtu', '67'], "invalid --mtu '67'"],
    [['--mtu', '65536'], "invalid --mtu '65536'"],
    [['--mtu', '1500.5'], "invalid --mtu '1500.5'"],
    [['--mac', '02:00:00:00:00'], "invalid --mac '02:00:00:00:00': expected six hex octets"],
    [['--mac', 'zz:00:00:00:00:01'], "invalid --mac 'zz:00:00:00:00:01'"],
    [['--mac', '01:00:5e:00:00:01'], "invalid --mac '01:00:5e:00:00:01': a port MAC must be unicast"],
    [['--mac', '00:00:00:00:00:00'], "invalid --mac '00:00:00:00:00:00'"],
    [['--type', 'gre'], "invalid --type 'gre': 'tap' (a TAP device limed creates) or 'system' (an existing interface); gre tunnels come from the configuration"],
    [['--type', 'system', '--mtu', '9000'], '--mtu and --mac apply to tap ports only: a system port keeps its interface\'s MTU and MAC'],
    [['--device', 'a-very-long-device-name'], "invalid --device 'a-very-long-device-name'"],
  ])('add-port %j', async (opts, message) => {
    const r = await ctl('add-port', 'vm5', ...opts);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.startsWith(`limectl: ${message}`)).toBe(true);
    expect(r.stderr).toContain("(see 'limectl add-port --help')");
    expectOneLine(r.stderr);
    expect(service.calls).toEqual([]);
  });

  it('rejects an unknown command', async () => {
    const r = await ctl('bogus');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("limectl: unknown command 'bogus' (see 'limectl --help')\n");
  });

  it('suggests a near command on one line', async () => {
    const r = await ctl('shw');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'shw'");
    expect(r.stderr).toContain('show');
    expectOneLine(r.stderr);
  });

  it('rejects an unknown option, a missing argument, a missing option value, extra arguments', async () => {
    for (const [argv, text] of [
      [['show', '--bogus'], "unknown option '--bogus'"],
      [['add-port'], "missing required argument 'name'"],
      [['del-port'], "missing required argument 'name'"],
      [['add-port', 'vm5', '--mtu'], "option '--mtu <n>' argument missing"],
      [['show', 'extra'], 'too many arguments'],
    ] as const) {
      const r = await ctl(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toContain(`limectl: ${text}`);
      expect(r.stderr).toContain('--help');
      expectOneLine(r.stderr);
    }
    expect(service.calls).toEqual([]);
  });

  it('rejects a missing command and a bad --timeout', async () => {
    const none = await ctl();
    expect(none).toEqual({ code: 2, stdout: '', stderr: "limectl: missing command (see 'limectl --help')\n" });
    const t = await ctl('--timeout', 'soon', 'show');
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/^limectl: invalid --timeout 'soon'/);
  });

  it('--help documents the socket default and LIME_SOCKET, exit 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('/run/lime/limed.sock');
    expect(r.stdout).toContain('LIME_SOCKET');
    expect(r.stdout).toMatch(/fdb\/show\|fdb-show/);
    expect(r.stdout).toContain('Exit codes');
  });
});

describe('limectl runtime failures (exit 1)', () => {
  it('daemon not running: no such socket', async () => {
    const path = join(tmp.dir, 'nope.sock');
    const r = await run(['--socket', path, 'show']);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `limectl: cannot connect to limed at ${path}: no such socket (is limed running? use --socket or LIME_SOCKET)\n`,
    });
  });

  it('daemon not running: stale socket, connection refused', async () => {
    const path = join(tmp.dir, 'stale.sock');
    const script = `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
    spawnSync(process.execPath, ['-e', script]);
    const r = await run(['--socket', path, '--json', 'fdb/show']);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `limectl: cannot connect to limed at ${path}: connection refused (is limed running? use --socket or LIME_SOCKET)\n`,
    });
  });

  it('explains permission denied (EACCES) without errno soup', () => {
    const err = Object.assign(new Error('connect EACCES /run/lime/limed.sock'), { code: 'EACCES' });
    expect(connectMessage('/run/lime/limed.sock', err)).toBe(
      'cannot connect to limed at /run/lime/limed.sock: permission denied (the socket is mode 0600: run limectl as the user limed runs as, usually root)',
    );
  });

  it('times out when limed does not answer', async () => {
    const path = join(tmp.dir, 'mute.sock');
    const held = new Set<net.Socket>();
    const mute = net.createServer((s) => held.add(s)); // accepts, never reads or replies
    await new Promise<void>((resolve) => mute.listen(path, resolve));
    try {
      const started = Date.now();
      const r = await run(['--socket', path, '--timeout', '150', 'show']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^limectl: no reply from limed at .*mute\.sock within 150 ms/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      for (const s of held) s.destroy(); // never read, so it never saw limectl's close
      await new Promise<void>((resolve) => mute.close(() => resolve()));
    }
  });

  it('reports a connection closed without a reply', async () => {
    const path = join(tmp.dir, 'rude.sock');
    const rude = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => rude.listen(path, resolve));
    try {
      const r = await run(['--socket', path, 'show']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/closed the connection without replying/);
    } finally {
      await new Promise<void>((resolve) => rude.close(() => resolve()));
    }
  });
});

describe('limectl socket selection', () => {
  it('honours LIME_SOCKET from the environment', async () => {
    vi.stubEnv('LIME_SOCKET', socket);
    const r = await run(['show']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^site: paris/);
  });

  it('honours LIME_SOCKET passed in io.env', async () => {
    const r = await run(['--json', 'show'], { LIME_SOCKET: socket });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).site).toBe('paris');
  });

  it('--socket wins over LIME_SOCKET', async () => {
    const wrong = join(tmp.dir, 'wrong.sock');
    const r = await run(['--socket', socket, 'show'], { LIME_SOCKET: wrong });
    expect(r.code).toBe(0);
    const r2 = await run(['--socket', wrong, 'show'], { LIME_SOCKET: socket });
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain(wrong);
  });

  it('defaults to /run/lime/limed.sock without either', async () => {
    const r = await run(['show'], {});
    // whatever the machine has there, the message (or success) names the default path
    expect(r.code === 0 ? 'connected' : r.stderr).toMatch(/^(connected|limectl: cannot connect to limed at \/run\/lime\/limed\.sock: )/);
  });
});

describe('limectl peer status / sync barrier', () => {
  it('prints the role, connection, log position, lag and resyncs', async () => {
    service.peer = { ...service.peer, role: 'writer', lag_entries: 3, lag_ms: 12.4 };
    const r = await ctl('peer', 'status');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      [
        'site paris: writer, peer berlin',
        '  connected to 192.0.2.2:6640 (CN=berlin, DNS:berlin), round trip 1.25 ms',
        '  log log-x: applied up to entry 42, durable up to 42',
        '  replication lag: 3 entries, 12 ms',
        '  resyncs: 1, last at 2023-11-14T22:13:20.000Z; resumes: 2',
        '  state directory: /var/lib/lime',
        '  journal: 2048 bytes, 3 compactions since start',
        '',
      ].join('\n'),
    );
  });

  it('says so when not connected, when the tables may differ, and without any peer', async () => {
    service.peer = { ...service.peer, connected: false, divergent: 2 };
    const r = await ctl('peer', 'status');
    expect(r.stdout).toContain('  not connected\n');
    expect(r.stdout).toContain('WARNING: 2 replicated entries did not apply here');
    service.peer = { ...service.peer, configured: false };
    expect((await ctl('peer', 'status')).stdout).toBe('site paris: no peer and no state directory configured (flows are kept in memory only)\n');
  });

  it('--json prints the reply as one object', async () => {
    const r = await ctl('peer', 'status', '--json');
    expect(JSON.parse(r.stdout)).toMatchObject({ role: 'follower', peer: 'berlin', connected: true, seq: 42, rtt_ms: 1.25, journal_bytes: 2048, compactions: 3, window_cutoffs: 0 });
  });

  it('says how often the follower was cut loose for falling behind the replication window', async () => {
    service.peer = { ...service.peer, role: 'writer', window_cutoffs: 2 };
    const r = await ctl('peer', 'status');
    expect(r.stdout).toContain('\n  follower cut loose 2 time(s) for falling behind the replication window (limits.replication_window_entries)\n');
  });

  it('sync barrier waits for the daemon and reports the position', async () => {
    let r = await ctl('sync', 'barrier');
    expect([r.code, r.stdout]).toEqual([0, 'applied at both sites up to entry 42\n']);
    service.peer = { ...service.peer, connected: false, seq: 7 };
    r = await ctl('sync', 'barrier', '--json');
    expect(JSON.parse(r.stdout)).toEqual({ seq: 7, peered: false });
    expect(service.calls.filter(([m]) => m === 'syncBarrier')).toHaveLength(2);
  });

  it('an unknown sub-command is a usage error (exit 2)', async () => {
    const r = await ctl('peer', 'statuss');
    expect(r.code).toBe(2);
  });
});

describe('limectl reload', () => {
  it('prints what the daemon changed, or one JSON object', async () => {
    let r = await ctl('reload');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('reloaded /etc/lime/limed.yaml:\n  ports added: vm3\n  ports removed: vm2\n  log_level: info -> debug\n');
    r = await ctl('reload', '--json');
    expect(JSON.parse(r.stdout)).toEqual({
      config: '/etc/lime/limed.yaml', ports_added: ['vm3'], ports_removed: ['vm2'], ports_changed: [], settings_changed: ['log_level: info -> debug'],
    });
    expect(service.calls.filter(([m]) => m === 'reload')).toHaveLength(2);
  });

  it('a refused reload is an error with the reason on one line, exit 1', async () => {
    service.reloadError = new ManagementError('BAD_REQUEST', 'reload refused: ports.0.mtu: expected an integer from 68 to 9000; the running configuration stays in force');
    const r = await ctl('reload');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('ports.0.mtu: expected an integer from 68 to 9000');
    expectOneLine(r.stderr);
  });
});

describe('limectl dump-flows --site', () => {
  it('refuses an unknown site as a usage error, before asking limed', async () => {
    const r = await ctl('dump-flows', '--site', 'mars');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid --site 'mars': expected local, peer or both/);
    expect(service.calls.some(([m]) => m === 'dumpFlows')).toBe(false);
  });
});

describe('limectl migrate host / status', () => {
  it('moves a host and says from where to where', async () => {
    const r = await ctl('migrate', 'host', 'vm1', '--to', 'berlin');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('host vm1 moved from site paris to site berlin (log entry 43)\n');
    expect(service.calls.at(-1)).toEqual(['migrateHost', { host: 'vm1', site: 'berlin', cause: 'command' }]);
  });

  it('prints each host\'s site and the inter-site counters; --json has the hosts list', async () => {
    const r = await ctl('migrate', 'status');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      [
        'site paris, peer berlin (connected), tunnel port to-berlin',
        '  no migration under way',
        '  host  site    tunnel_id  mac',
        '  vm1   paris         101  02:00:00:00:00:01',
        '  vm2   berlin        102  -',
        '  inter-site link: sent 10 frames (1500 bytes), received 20 frames (3000 bytes)',
        '',
      ].join('\n'),
    );
    const j = await ctl('migrate', 'status', '--json');
    expect(JSON.parse(j.stdout).hosts).toEqual([
      { name: 'vm1', site: 'paris', tunnel_id: 101, mac: '02:00:00:00:00:01' },
      { name: 'vm2', site: 'berlin', tunnel_id: 102, mac: '' },
    ]);
    expect(JSON.parse(j.stdout)).not.toHaveProperty('moved');
  });

  it('reports the daemon\'s refusal and needs --to', async () => {
    const r = await ctl('migrate', 'host', 'vm9', '--to', 'berlin');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no host named vm9');
    const u = await ctl('migrate', 'host', 'vm1');
    expect(u.code).not.toBe(0);
    expect(u.stderr).toMatch(/--to/);
    expect(service.calls.filter((c) => c[0] === 'migrateHost')).toHaveLength(1);
  });
});

describe('limectl migrate prepare / finalize / abort', () => {
  it('starts a migration, says how many flows are at both sites, and refuses a second one', async () => {
    const r = await ctl('migrate', 'prepare', '--to', 'berlin');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('migration from site paris to site berlin under way: 12 flows at both sites (log entry 44); move the hosts, then finalize\n');
    expect(service.calls.at(-1)).toEqual(['migratePrepare', { phase: 'moving', from: '', to: 'berlin', strategy: 'lime', before: [], ended: '' }]);
    const s = await ctl('migrate', 'status');
    expect(s.stdout).toContain('  migration from site paris to site berlin under way (lime)\n');
    const again = await ctl('migrate', 'prepare', '--to', 'berlin');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already under way');
    const f = await ctl('migrate', 'finalize');
    expect(f.stdout).toBe('migration from site paris to site berlin finalized: the counters of 3 flows moved to site berlin (log entry 45)\n');
    expect((await ctl('migrate', 'status')).stdout).toContain('  no migration under way (the last, from site paris to site berlin, was finalized)\n');
  });

  it('aborts, and needs --to for prepare', async () => {
    await ctl('migrate', 'prepare', '--to', 'berlin');
    const a = await ctl('migrate', 'abort', '--json');
    expect(JSON.parse(a.stdout).migration).toMatchObject({ phase: 'idle', ended: 'aborted' });
    const u = await ctl('migrate', 'prepare');
    expect(u.code).not.toBe(0);
    expect(u.stderr).toMatch(/--to/);
  });
});

describe('limectl migrate plan / run', () => {
  it('prints the plan and writes the plan file that migrate run reads', async () => {
    const file = join(tmp.dir, 'plan.json');
    const r = await ctl('migrate', 'plan', '--window', '2', '--parallel', '2', '-o', file);
    expect(r.code, r.stderr).toBe(0);
    expect(service.calls.at(-1)).toEqual(['migratePlan', { window_ms: 2000, parallel: 2 }]);
    expect(r.stdout).toBe(['plan from 2 s of traffic at site paris, at most 2 host(s) at once:', '  step 1: vm1', 'predicted inter-site bytes: 0 (a random order: 0)', `plan written to ${file}`, ''].join('\n'));
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ version: 1, parallel: 2, steps: [['vm1']] });
    const run = await ctl('migrate', 'run', '--plan', file, '--to', 'berlin');
    expect(run.code, run.stderr).toBe(0);
    expect(service.calls.at(-1)).toEqual(['migrateRun', { steps: [{ hosts: ['vm1'] }], to: 'berlin', strategy: 'lime' }]);
  });

  it('regroups the plan\'s order with --parallel', async () => {
    const file = join(tmp.dir, 'plan3.json');
    writeFileSync(file, JSON.stringify({ version: 1, parallel: 1, steps: [['vm1'], ['vm2'], ['vm3']] }));
    const r = await ctl('migrate', 'run', '--plan', file, '--parallel', '2');
    expect(r.code, r.stderr).toBe(0);
    expect(service.calls.at(-1)).toEqual(['migrateRun', { steps: [{ hosts: ['vm1', 'vm2'] }, { hosts: ['vm3'] }], to: '', strategy: 'lime' }]);
  });

  it.each([
    ['not json', 'not { json'],
    ['another version', JSON.stringify({ version: 9, parallel: 1, steps: [['vm1']] })],
    ['a host twice', JSON.stringify({ version: 1, parallel: 1, steps: [['vm1'], ['vm1']] })],
    ['an empty step', JSON.stringify({ version: 1, parallel: 1, steps: [[]] })],
  ])('refuses a plan file with %s before sending anything', async (_what, text) => {
    const file = join(tmp.dir, 'bad-plan.json');
    writeFileSync(file, text);
    const before = service.calls.length;
    const r = await ctl('migrate', 'run', '--plan', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^limectl: invalid plan: /);
    expect(service.calls.length).toBe(before);
  });

  it('says which plan file it cannot read, and checks --window', async () => {
    const r = await ctl('migrate', 'run', '--plan', join(tmp.dir, 'nosuch.json'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot read plan file');
    const w = await ctl('migrate', 'plan', '--window', 'soon');
    expect(w.code).toBe(2);
    expect(w.stderr).toContain("invalid --window 'soon'");
  });
});
