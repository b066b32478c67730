// The migration experiments' topology (the papers' figures 4 and 10–13): two limed sites
// peered over mutual TLS, joined by a WAN whose one-way delay the harness sets with its own
// user-space delay element (bench/c/delayline.c: the kernel here has no netem), and N hosts
// that start at site A.
//
//   limeb-m1 … limeb-mN ── TAPs ── [ limeb-ma: limed A ] ── limeb-wa ─┐          ┌─ limeb-wb ── [ limeb-mb: limed B ] ── TAPs
//   10.78.0.i/24                      192.168.252.1                    [ limeb-mw: delayline D ms ]    192.168.252.2
//
// Every host is a logical port at both sites (`tunnel_id` 100 + i); each site has a TAP for
// every host, and moving a host is what a hypervisor does: its NIC leaves site A's TAP and
// comes back on site B's with the same MAC and IP (detach, `migrate host`, attach), or, for
// a whole ensemble, `migrate prepare` / the moves / `migrate finalize`. Both the data
// (GRE, key = tunnel id) and the control channel cross the delayed WAN.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { log, run, sleep, startBg, stopSync, alive } from './exec.mjs';
import { addNs } from './netns.mjs';
import { loadClient, makeCerts, waitPeered } from './sync.mjs';
import { waitForFile } from './scenarios.mjs';

export const SITE_NS = { a: 'limeb-ma', b: 'limeb-mb' };
export const WAN_NS = 'limeb-mw';
const WAN_IP = { a: '192.168.252.1', b: '192.168.252.2' };
const SITE_NAME = { a: 'site-a', b: 'site-b' };
const WAN_MTU = 1600;
export const PROBE_PORT = 7100;

export const hostNs = (h) => `limeb-m${h}`;
export const hostIp = (h) => `10.78.0.${h}`;
export const hostMac = (h) => `02:00:00:78:00:${h.toString(16).padStart(2, '0')}`;
const tapName = (h, side) => `limeb-${side}${h}`;


/**
 * Build the rig: namespaces, the delayed WAN, both limeds (peered), every host attached at
 * its home site (default A). Returns the rig; `destroy()` stops what it started (the
 * harness's teardown removes the namespaces).
 */
export async function buildMigrationRig(ctx, { hosts: n, delayMs = 0, home = () => 'a', tag = 'mig' }) {
  const request = await loadClient(ctx);
  const hosts = Array.from({ length: n }, (_, i) => i + 1);
  for (const ns of [SITE_NS.a, SITE_NS.b, WAN_NS, ...hosts.map(hostNs)]) await addNs(ns);
  // The WAN: site A ── delay element ── site B.
  await run('ip', ['link', 'add', 'limeb-wa', 'netns', SITE_NS.a, 'type', 'veth', 'peer', 'name', 'limeb-wda', 'netns', WAN_NS]);
  await run('ip', ['link', 'add', 'limeb-wb', 'netns', SITE_NS.b, 'type', 'veth', 'peer', 'name', 'limeb-wdb', 'netns', WAN_NS]);
  for (const [ns, dev, ip] of [[SITE_NS.a, 'limeb-wa', WAN_IP.a], [SITE_NS.b, 'limeb-wb', WAN_IP.b], [WAN_NS, 'limeb-wda'], [WAN_NS, 'limeb-wdb']]) {
    await run('ip', ['link', 'set', dev, 'mtu', String(WAN_MTU)], { ns });
    await run('ethtool', ['-K', dev, 'tx', 'off'], { ns, allowFail: true });
    if (ip) await run('ip', ['addr', 'add', `${ip}/24`, 'dev', dev], { ns });
    await run('ip', ['link', 'set', dev, 'up'], { ns });
  }
  const delayLog = join(ctx.tmp, `${tag}-delayline.log`);
  writeFileSync(delayLog, '');
  const delay = startBg('delayline', ctx.delaylineBin, ['--a', 'limeb-wda', '--b', 'limeb-wdb', '--delay-ms', String(delayMs)], { ns: WAN_NS, logFile: delayLog });
  await waitForLine(delayLog, /READY/, 5000, () => alive(delay.pid), 'delayline');

  // One CA and site certificates for every rig of the run.
  const certs = (ctx.migrationCerts ??= makeCerts(join(ctx.tmp, 'migration-certs')));
  const sites = {};
  for (const side of ['a', 'b']) {
    const other = side === 'a' ? 'b' : 'a';
    const sock = join(ctx.tmp, `${tag}-${side}.sock`);
    const cfgFile = join(ctx.tmp, `${tag}-${side}.json`);
    const stateDir = join(ctx.tmp, `${tag}-state-${side}`);
    const cfg = {
      site: SITE_NAME[side],
      socket: sock,
      ports: [
        ...hosts.map((h) => ({ name: `h${h}`, type: 'tap', device: tapName(h, side), mac: hostMac(h), tunnel_id: 100 + h, site: SITE_NAME[home(h)] })),
        { name: 'wan', type: 'gre', remote_ip: WAN_IP[other], local_ip: WAN_IP[side], key: 'flow', path_mtu: WAN_MTU },
      ],
      listen: `${WAN_IP[side]}:6650`,
      peer: { name: SITE_NAME[other], address: `${WAN_IP[other]}:6650`, tunnel_port: 'wan' },
      tls: side === 'a' ? certs.a : certs.b,
      state_dir: stateDir,
    };
    writeFileSync(cfgFile, JSON.stringify(cfg, null, 1));
    const logFile = join(ctx.tmp, `${tag}-${side}.log`);
    const proc = startBg(`limed-${tag}-${side}`, process.execPath, [ctx.limedJs, '--config', cfgFile], { ns: SITE_NS[side], logFile });
    sites[side] = { sock, proc, logFile };
  }
  for (const side of ['a', 'b']) {
    const s = sites[side];
    if (!(await waitForFile(s.sock, 15_000))) throw new Error(`limed site ${side.toUpperCase()} did not open its socket: ${tail(s.logFile)}`);
  }
  for (const site of [sites.a, sites.b]) {
    await waitPeered(request, site.sock, 30_000, () => {
      if (!alive(site.proc.pid)) throw new Error(`limed exited: ${tail(site.logFile)}`);
    });
  }

  const rig = {
    hosts, delayMs, sites, request,
    at: {},
    /**
     * Put host h's NIC (site `side`'s TAP for it) into its namespace: renamed eth0,
     * addressed, up, with static neighbours (no ARP floods: what crosses the WAN is the
     * hosts' own traffic). Two `ip` processes, so a move is short, as a hypervisor's
     * switch-over is.
     */
    async attach(h, side) {
      const ns = hostNs(h);
      const dev = tapName(h, side);
      await run('ip', ['-n', SITE_NS[side], 'link', 'set', 'dev', dev, 'netns', ns]);
      await ipBatch(ns, [
        `link set ${dev} name eth0`,
        `addr add ${hostIp(h)}/24 dev eth0`,
        'link set eth0 up',
        ...hosts.filter((o) => o !== h).map((o) => `neigh replace ${hostIp(o)} lladdr ${hostMac(o)} dev eth0 nud permanent`),
      ]);
      rig.at[h] = side;
    },
    /** Take host h's NIC back to the site it came from (the VM stops there). */
    async detach(h) {
      const side = rig.at[h];
      await ipBatch(hostNs(h), ['link set eth0 down', `link set eth0 name ${tapName(h, side)}`, `link set dev ${tapName(h, side)} netns ${SITE_NS[side]}`]);
    },
    async migrate(side, body, timeoutMs = 60_000) {
      const r = await request(sites[side].sock, { body: 'migrate', migrate: body }, timeoutMs);
      return r.migrate;
    },
    /** Several hosts moved at once: every NIC out, one `migrate host` each, every NIC in. */
    async moveGroup(group, to, via = 'a') {
      const t0 = performance.now();
      await Promise.all(group.map((h) => rig.detach(h)));
      const t1 = performance.now();
      for (const h of group) await rig.migrate(via, { action: 'host', host: { host: `h${h}`, site: SITE_NAME[to], cause: 'command' } });
      const t2 = performance.now();
      await Promise.all(group.map((h) => rig.attach(h, to)));
      return { hosts: group, detached_ms: performance.now() - t0, command_ms: t2 - t1 };
    },
    prepare(strategy, to = 'b') {
      return rig.migrate('a', { action: 'prepare', prepare: { phase: 'moving', from: '', to: SITE_NAME[to], strategy, before: [], ended: '' } });
    },
    finalize(via = 'b') {
      return rig.migrate(via, { action: 'finalize', finalize: {} });
    },
    status(side) {
      return rig.migrate(side, { action: 'status', status: {} });
    },
    /** Bytes both sites sent on the inter-site tunnel so far. */
    async interSiteBytes() {
      const [a, b] = await Promise.all([rig.status('a'), rig.status('b')]);
      return { a_tx: a.inter_site_tx_bytes, b_tx: b.inter_site_tx_bytes, total: a.inter_site_tx_bytes + b.inter_site_tx_bytes, packets: a.inter_site_tx_packets + b.inter_site_tx_packets };
    },
    /**
     * Start one prober per host that sends (bench/c/probe.c): every prober binds PROBE_PORT
     * and sends `rate` probes/s to each of its destinations for `seconds`, all starting
     * together. `dests(h)` lists host h's destinations. Returns { done(): results by host }.
     */
    async startProbes({ rate, seconds, dests, trace = false, binMs = 1000 }) {
      const startAt = Date.now() + 600;
      const procs = [];
      for (const h of hosts) {
        const to = dests(h);
        const logFile = join(ctx.tmp, `${tag}-probe-${h}.out`);
        writeFileSync(logFile, '');
        const args = ['--id', String(h), '--bind', hostIp(h), '--port', String(PROBE_PORT), '--rate', String(rate), '--seconds', String(seconds),
          // 0.6 s of grace after the last send: more than a probe's way (≤ 50 ms delay, a queue).
          '--start-at', String(startAt), '--bin-ms', String(binMs), '--grace-ms', '600', ...(trace ? ['--trace'] : []), ...to.flatMap((d) => ['--to', `${d}@${hostIp(d)}`])];
        procs.push({ h, logFile, entry: startBg(`probe-${h}`, ctx.probeBin, args, { ns: hostNs(h), logFile }) });
      }
      for (const p of procs) await waitForLine(p.logFile, /READY/, 5000, () => alive(p.entry.pid), `probe ${p.h}`);
      return {
        startAt,
        async done() {
          const until = startAt + seconds * 1000 + 10_000;
          for (const p of procs) {
            while (alive(p.entry.pid) && Date.now() < until) await sleep(50);
            if (alive(p.entry.pid)) stopSync(p.entry, 2000);
          }
          const out = {};
          for (const p of procs) {
            const line = readFileSync(p.logFile, 'utf8').split('\n').reverse().find((l) => l.startsWith('{'));
            if (!line) throw new Error(`probe ${p.h} printed no result: ${tail(p.logFile)}`);
            out[p.h] = JSON.parse(line);
          }
          return out;
        },
      };
    },
    /** Stop both limeds and the delay element; returns the delay element's counters. */
    stop() {
      for (const side of ['a', 'b']) stopSync(sites[side].proc);
      stopSync(delay);
      const line = readFileSync(delayLog, 'utf8').split('\n').reverse().find((l) => l.startsWith('{'));
      return line ? JSON.parse(line) : null;
    },
  };
  for (const h of hosts) await rig.attach(h, home(h));
  return rig;

  /** Several `ip` commands in one process (`ip -batch`). */
  async function ipBatch(ns, lines) {
    const file = join(ctx.tmp, `${tag}-ip-${ns}.batch`);
    writeFileSync(file, lines.join('\n') + '\n');
    await run('ip', ['-n', ns, '-batch', file]);
  }
}

function tail(file, n = 4) {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-n).join(' | ') : '(no log)';
}

async function waitForLine(file, re, timeoutMs, stillAlive, what) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (existsSync(file) && re.test(readFileSync(file, 'utf8'))) return;
    if (!stillAlive()) throw new Error(`${what} exited: ${tail(file)}`);
    await sleep(20);
  }
  throw new Error(`${what} not ready within ${timeoutMs} ms: ${tail(file)}`);
}

/** k-random traffic (LIME §5): each host talks to k others chosen at random (seeded). */
export function kRandomPairs(n, k, seed = 1) {
  let s = seed >>> 0 || 1;
  const rnd = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
  const dests = {};
  for (let h = 1; h <= n; h++) {
    const others = Array.from({ length: n }, (_, i) => i + 1).filter((o) => o !== h);
    for (let i = others.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [others[i], others[j]] = [others[j], others[i]]; }
    dests[h] = others.slice(0, k).sort((x, y) => x - y);
  }
  return dests;
}

export { SITE_NAME };
