// The topologies under test. Each scenario builds two host namespaces (limeb-h1 10.77.0.1/24,
// limeb-h2 10.77.0.2/24) joined by the system under test, and returns the PID of the
// forwarding process (for CPU accounting), or null where the kernel forwards.
import { existsSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run, runSync, startBg, track, sleep, alive, log } from './exec.mjs';
import { procComm } from './proc.mjs';
import {
  H1, H2, SW, IP1, IP2, addNs, addHosts, addVeth, configureHost, waitForLink, moveLink,
} from './netns.mjs';

export function diedCheck(entry, what, logFile) {
  return () => {
    if (!alive(entry.pid)) {
      let tail = '';
      if (logFile && existsSync(logFile)) tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join(' | ');
      throw new Error(`${what} exited during set-up${tail ? `: ${tail}` : ''}`);
    }
  };
}

/** Move the two TAPs a forwarder created in limeb-sw into the hosts and configure them. */
export async function attachTaps(t1, t2, check) {
  await waitForLink(SW, t1, { check });
  await waitForLink(SW, t2, { check });
  await moveLink(SW, t1, H1);
  await moveLink(SW, t2, H2);
  await configureHost(H1, t1, IP1);
  await configureHost(H2, t2, IP2);
}

export const scenarios = {
  veth: {
    title: 'direct veth pair h1–h2 (floor)',
    async setup() {
      await addHosts();
      await addVeth('limeb-v1', H1, 'limeb-v2', H2);
      await configureHost(H1, 'limeb-v1', IP1);
      await configureHost(H2, 'limeb-v2', IP2);
      return { pid: null };
    },
  },

  bridge: {
    title: 'Linux bridge in limeb-sw, two veth pairs',
    async setup() {
      await addHosts();
      await addNs(SW);
      await run('ip', ['link', 'add', 'limeb-br', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0'], { ns: SW });
      await addVeth('limeb-v1', H1, 'limeb-s1', SW);
      await addVeth('limeb-v2', H2, 'limeb-s2', SW);
      for (const p of ['limeb-s1', 'limeb-s2']) {
        await run('ip', ['link', 'set', p, 'master', 'limeb-br'], { ns: SW });
        await run('ip', ['link', 'set', p, 'up'], { ns: SW });
      }
      await run('ip', ['link', 'set', 'limeb-br', 'up'], { ns: SW });
      await configureHost(H1, 'limeb-v1', IP1);
      await configureHost(H2, 'limeb-v2', IP2);
      return { pid: null };
    },
  },

  tapfwd: {
    title: 'minimal C TAP-to-TAP forwarder (one frame per read/write syscall)',
    available(ctx) {
      return existsSync(ctx.tapfwdBin) ? null : `tapfwd not built (${ctx.tapfwdBin})`;
    },
    async setup(ctx) {
      await addHosts();
      await addNs(SW);
      const e = startBg('tapfwd', ctx.tapfwdBin, ['limeb-t1', 'limeb-t2'], { ns: SW, logFile: join(ctx.tmp, 'tapfwd.log') });
      await attachTaps('limeb-t1', 'limeb-t2', diedCheck(e, 'tapfwd', join(ctx.tmp, 'tapfwd.log')));
      return { pid: e.pid, comm: procComm(e.pid) };
    },
  },

  ovs: {
    title: 'Open vSwitch userspace datapath (netdev), two tap ports',
    available() {
      for (const b of ['ovs-vswitchd', 'ovsdb-server', 'ovsdb-tool', 'ovs-vsctl']) {
        if (runSync('sh', ['-c', `command -v ${b}`]).code !== 0) return `${b} not installed`;
      }
      if (!existsSync('/usr/share/openvswitch/vswitch.ovsschema')) return 'vswitch.ovsschema not found';
      return null;
    },
    async setup(ctx) {
      await addHosts();
      await addNs(SW);
      const dir = join(ctx.tmp, `ovs-${Date.now()}`);
      mkdirSync(dir, { recursive: true });
      const env = { OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
      const db = `unix:${dir}/db.sock`;
      const vsctl = (args) => run('ovs-vsctl', [`--db=${db}`, '--timeout=10', ...args], { env, timeoutMs: 15_000 });
      await run('ovsdb-tool', ['create', `${dir}/conf.db`, '/usr/share/openvswitch/vswitch.ovsschema'], { env });
      await run('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'ovsdb-server', `${dir}/conf.db`,
        `--remote=punix:${dir}/db.sock`, `--pidfile=${dir}/ovsdb-server.pid`, `--unixctl=${dir}/ovsdb-server.ctl`,
        `--log-file=${dir}/ovsdb-server.log`, '--detach'], { ns: SW });
      track(Number(readFileSync(`${dir}/ovsdb-server.pid`, 'utf8').trim()), 'ovsdb-server');
      await vsctl(['--no-wait', 'init']);
      // Read only at ovs-vswitchd start-up: set before starting it.
      await vsctl(['--no-wait', 'set', 'Open_vSwitch', '.', 'other_config:userspace-tso-enable=false']);
      await run('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'ovs-vswitchd', db,
        `--pidfile=${dir}/ovs-vswitchd.pid`, `--unixctl=${dir}/ovs-vswitchd.ctl`,
        `--log-file=${dir}/ovs-vswitchd.log`, '--detach'], { ns: SW, timeoutMs: 20_000 });
      const pid = Number(readFileSync(`${dir}/ovs-vswitchd.pid`, 'utf8').trim());
      track(pid, 'ovs-vswitchd');
      await vsctl(['add-br', 'limeb-br', '--', 'set', 'bridge', 'limeb-br', 'datapath_type=netdev']);
      await vsctl(['add-port', 'limeb-br', 'limeb-o1', '--', 'set', 'interface', 'limeb-o1', 'type=tap']);
      await vsctl(['add-port', 'limeb-br', 'limeb-o2', '--', 'set', 'interface', 'limeb-o2', 'type=tap']);
      await run('ip', ['link', 'set', 'limeb-br', 'up'], { ns: SW, allowFail: true });
      const dead = () => { if (!alive(pid)) throw new Error(`ovs-vswitchd exited; see ${dir}/ovs-vswitchd.log`); };
      await attachTaps('limeb-o1', 'limeb-o2', dead);
      return { pid, comm: procComm(pid), dir };
    },
  },

  limed: {
    title: 'limed (this project), two tap ports',
    available(ctx) {
      return existsSync(ctx.limedJs) ? null : 'limed not built';
    },
    async setup(ctx) {
      await addHosts();
      await addNs(SW);
      const sock = join(ctx.tmp, 'limed.sock');
      const cfg = join(ctx.tmp, 'limed.yaml');
      const logFile = join(ctx.tmp, `limed-${Date.now()}.log`);
      // The Prometheus endpoint, on limeb-sw's loopback: scraped before and after the load
      // (a build from before it, --limed-root, has none).
      const metrics = existsSync(join(dirname(ctx.limedJs), '..', 'daemon', 'metrics.js'));
      writeFileSync(cfg, [
        'site: bench',
        `socket: ${sock}`,
        ...(metrics ? [`metrics: { listen: "${LIMED_METRICS_LISTEN}" }`] : []),
        'ports:',
        '  - { name: limeb-t1, type: tap, mtu: 1500 }',
        '  - { name: limeb-t2, type: tap, mtu: 1500 }',
        // LIMEB_LIMED_YAML: more top-level settings (e.g. "fast_path: off"), for A/B runs by hand.
        ...(process.env.LIMEB_LIMED_YAML ? [process.env.LIMEB_LIMED_YAML] : []),
        '',
      ].join('\n'));
      const e = startBg('limed', process.execPath, [ctx.limedJs, '--config', cfg], { ns: SW, logFile });
      await attachTaps('limeb-t1', 'limeb-t2', diedCheck(e, 'limed', logFile));
      // The management socket must answer; its process.pid tells whose CPU time to count.
      let pid = e.pid;
      if (await waitForFile(sock, 10_000)) {
        const show = await limectlShow(ctx, sock);
        const reported = show?.process?.pid;
        if (typeof reported === 'number' && reported !== e.pid) {
          log(`  limed reports pid ${reported}, the harness started ${e.pid}: counting CPU of ${reported}`);
          pid = reported;
        }
      } else log(`  warning: limed's management socket ${sock} did not appear`);
      return { pid, comm: procComm(pid), sock, logFile, ...(metrics ? { metricsUrl: `http://${LIMED_METRICS_LISTEN}/metrics` } : {}) };
    },
  },
};

/** Where the `limed` system's Prometheus endpoint listens (in limeb-sw). */
export const LIMED_METRICS_LISTEN = '127.0.0.1:9469';

/**
 * `curl` the Prometheus endpoint at `url` (from limeb-sw, where limed runs) and read the
 * port packet counters: { rx_packets: { port: n }, tx_packets: { port: n } }.
 */
export async function scrapePortCounters(url) {
  const r = await run('curl', ['-sS', '--max-time', '5', '--fail', url], { ns: SW, timeoutMs: 10_000 });
  const out = { rx_packets: {}, tx_packets: {} };
  for (const m of r.stdout.matchAll(/^lime_port_(rx|tx)_packets_total\{port="([^"]+)"\} (\S+)$/gm)) out[`${m[1]}_packets`][m[2]] = Number(m[3]);
  if (!Object.keys(out.rx_packets).length) throw new Error(`${url}: no lime_port_rx_packets_total in the answer`);
  return out;
}

export const ORDER = ['veth', 'bridge', 'tapfwd', 'ovs', 'limed'];

/** `limectl show --json` against a running limed (null on failure). */
export async function limectlShow(ctx, sock) {
  const r = await run(process.execPath, [ctx.limectlJs, '--socket', sock, 'show', '--json'], { ns: SW, allowFail: true, timeoutMs: 10_000 });
  if (r.code !== 0) {
    log(`limectl show failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
    return null;
  }
  try { return JSON.parse(r.stdout); } catch { log('limectl show: output is not JSON'); return null; }
}

export async function waitForFile(path, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (existsSync(path)) return true;
    await sleep(50);
  }
  return false;
}
