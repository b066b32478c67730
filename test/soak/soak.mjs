#!/usr/bin/env node
// The soak test of issue 8's hardening pass:
//
//   node test/soak/soak.mjs [--minutes 2] [--hosts 4] [--json FILE] [--keep] …   (root)
//   npm run soak -- --minutes 30
//
// Two limed sites peered over mutual TLS, N hosts that move between them, and for
// --minutes everything at once: full-rate traffic between every pair of hosts, 100
// flow-mods/s at both sites, a host move every 10 s and a control-link cut every minute.
// Then it checks: no limed crashed (alive at the end, exit 0 on SIGTERM), each limed's RSS
// grew less than 10 % from the end of the warm-up to the end, the sites' flow tables are
// equal, every acknowledged flow-mod is in them (the last acknowledged state of every flow:
// present with its cookie and actions, or absent), both sites' location maps say where
// every host's NIC really is, every pair of hosts still reaches each other, and no frame
// reached the wrong host. Prints progress on stderr and one JSON summary on stdout (and
// in --json FILE); exits 1 when a condition failed, 2 when the run itself broke.
//
//   h1 … hN ── TAPs ── [ limesoak-a: limed site-a ] ══ WAN veth (GRE, key = tunnel id) ══ [ limesoak-b: limed site-b ] ── TAPs
//                                   192.168.249.1 ── ctl veth (the control channel, TLS) ── 192.168.249.2 …
//                                   192.168.248.1                                           192.168.248.2
//
// - Hosts: namespaces limesoak-hI, 10.91.0.I/24, MAC 02:00:00:91:00:0I, logical ports hI
//   (tunnel_id 100 + I) declared at both sites, odd hosts at site-a, even at site-b. Each
//   site has a TAP for every host (limesoakIa / limesoakIb). A move is what
//   bench/lib/migration-rig.mjs does, as a hypervisor would: the NIC leaves the old site's
//   TAP, `migrate host` (at either site, alternately), the NIC comes back on the new site's
//   TAP with the same MAC and IP. When the command cannot be done (the control link is cut:
//   "not connected") the NIC moves anyway and the new site detects the host by its frames.
// - Traffic: test/soak/soaktraffic.c (compiled into the run's directory), one process
//   holding a UDP socket and an AF_PACKET socket in every host's namespace: every host
//   sends to every other host as fast as it can, each payload carrying (source, destination
//   id, sequence, pattern); every host checks every frame its NIC receives, at L2, so a
//   frame for another host counts as misdelivered even if the IP layer would drop it.
// - Flow-mods: add / modify_strict / delete_strict of flows priority=30000..30006,
//   ip,nw_dst=10.250.X.Y (the traffic never matches them), paced at --flow-mods per second
//   (up to 16 outstanding), alternately at each site, each with a cookie of its own. A key
//   is never touched by two flow-mods at once, so the last acknowledged flow-mod of a key
//   is its expected state. A flow-mod refused because the writer is not connected was not
//   applied; one whose answer was lost ("may or may not have been applied") freezes its key
//   until the sites are connected again, then its key's state is read back after a barrier
//   at both sites; a flow-mod that timed out freezes its key for good (not checked).
// - Control-link cuts: the ctl veth goes down for dead_peer_ms + 3 s (each site must see
//   the peer disconnected), then up; the follower resumes or resyncs.
//   Both limeds run with control_share_percent 100 (policing off; --control-share to
//   change): with the default 5 % and both sites' data paths saturated, limed admits about
//   5 flow-mods/s, and the soak would not churn.
// - RSS: VmRSS of each limed, the median of 3 reads 1 s apart, at the end of the warm-up
//   (a quarter of the run, 60 s to 5 min) and at the end of the soak (traffic and churn
//   still running); a read every 5 s (and limed's V8 heap every 10 s) in the summary.
//
// Everything it creates is named limesoak* (namespaces, links, /tmp/limesoak-* directory);
// processes are stopped by the PID it started (also those of a crashed earlier run, from
// /tmp/limesoak.pids with their start times), on exit, on error and on Ctrl-C.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LIMED = join(REPO, 'dist', 'bin', 'limed.js');
const CLIENT = join(REPO, 'dist', 'cli', 'client.js');
const TRAFFIC_SRC = join(REPO, 'test', 'soak', 'soaktraffic.c');

const PREFIX = 'limesoak';
const LOCK = '/tmp/limesoak.lock';
const PIDS_FILE = '/tmp/limesoak.pids';
const SIDES = ['a', 'b'];
const SITE_NS = { a: 'limesoak-a', b: 'limesoak-b' };
const SITE_NAME = { a: 'site-a', b: 'site-b' };
const WAN_DEV = { a: 'limesoakwa', b: 'limesoakwb' };
const WAN_IP = { a: '192.168.249.1', b: '192.168.249.2' };
const CTL_DEV = { a: 'limesoakca', b: 'limesoakcb' };
const CTL_IP = { a: '192.168.248.1', b: '192.168.248.2' };
const CTL_PORT = 6640;
const TRAFFIC_PORT = 7300;
const other = (side) => (side === 'a' ? 'b' : 'a');
const hostNs = (h) => `limesoak-h${h}`;
const hostIp = (h) => `10.91.0.${h}`;
const hostMac = (h) => `02:00:00:91:00:${h.toString(16).padStart(2, '0')}`;
const tapName = (h, side) => `limesoak${h}${side}`;
const homeOf = (h) => (h % 2 === 1 ? 'a' : 'b');

// ---------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {
    minutes: 2, hosts: 4, moveEveryS: 10, cutEveryS: 60, flowModsPerS: 100, keys: 500, rate: 0,
    deadPeerMs: 3000, controlShare: 100, limedConfig: {}, warmupS: undefined, json: undefined, keep: false, inject: [], outstanding: 16,
  };
  const num = (name, v) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0) throw new Error(`${name} needs a number, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    switch (a) {
      case '--minutes': o.minutes = num(a, v); i++; break;
      case '--hosts': o.hosts = num(a, v); i++; break;
      case '--move-every': o.moveEveryS = num(a, v); i++; break;
      case '--cut-every': o.cutEveryS = num(a, v); i++; break;
      case '--flow-mods': o.flowModsPerS = num(a, v); i++; break;
      case '--keys': o.keys = num(a, v); i++; break;
      case '--outstanding': o.outstanding = Math.max(1, num(a, v)); i++; break;
      case '--rate': o.rate = num(a, v); i++; break;
      case '--dead-peer-ms': o.deadPeerMs = num(a, v); i++; break;
      case '--control-share': o.controlShare = num(a, v); i++; break;
      // More limed configuration for both sites, as JSON (e.g. '{"limits":{"journal_compact_entries":1000}}').
      case '--limed-config': o.limedConfig = JSON.parse(v); i++; break;
      case '--warmup': o.warmupS = num(a, v); i++; break;
      case '--json': o.json = resolve(v); i++; break;
      case '--keep': o.keep = true; break;
      // Self-tests of the checks (each must make the run fail): misdeliver (the generator
      // labels some of host 1's frames for another host), lost-ack (the driver records an
      // acknowledged add it never sent), rss (the driver's RSS threshold becomes 0 %).
      case '--inject': o.inject.push(v); i++; break;
      case '-h': case '--help':
        process.stdout.write('usage: soak.mjs [--minutes M] [--hosts N] [--move-every S] [--cut-every S] [--flow-mods PER_S] [--outstanding N] [--keys N] [--rate FPS] [--dead-peer-ms MS] [--control-share PERCENT] [--limed-config JSON] [--warmup S] [--json FILE] [--keep] [--inject misdeliver|lost-ack|rss]\n');
        process.exit(0);
        break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  if (o.minutes <= 0) throw new Error('--minutes must be above 0');
  if (o.hosts < 2 || o.hosts > 9 || !Number.isInteger(o.hosts)) throw new Error('--hosts must be 2..9');
  if (o.deadPeerMs < 300) throw new Error('--dead-peer-ms must be at least 300');
  o.durationS = o.minutes * 60;
  // limed's RSS climbs for its first minute or two of churn (V8's heap and the allocator
  // settling in): the measured span starts after a quarter of the run, at least 60 s (half
  // of the CI run; half of a shorter one) and at most 5 minutes.
  o.warmupS ??= Math.min(300, Math.max(Math.min(60, o.durationS / 2), o.durationS / 4));
  if (o.warmupS >= o.durationS) throw new Error('--warmup must be shorter than the soak');
  return o;
}

// ---------------------------------------------------------------------------------------
// Logging, commands, processes

const T0 = Date.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const elapsed = () => (Date.now() - T0) / 1000;
function log(msg) {
  const s = Math.round(elapsed());
  process.stderr.write(`[soak ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}] ${msg}\n`);
}

function sh(cmd, args, { allowFail = false, timeoutMs = 30_000 } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout || String(r.error ?? r.signal)).trim()}`);
  return r;
}

/** Asynchronous command (moves and cuts run beside the flow-mod stream: no blocking the loop). */
function shAsync(cmd, args, { timeoutMs = 30_000 } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim() || `exit ${code ?? sig}`}`));
    });
  });
}

function procStartTime(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
  } catch { return null; }
}
function alive(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch { return false; }
}
function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Processes this run started: pid → { pid, name, start, child, exit }. */
const procs = new Map();

function startProc(name, cmd, args, { ns, logFile, stdout = 'log' } = {}) {
  const [c, a] = ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, args];
  const fd = openSync(logFile, 'a');
  const child = spawn(c, a, { stdio: ['ignore', stdout === 'pipe' ? 'pipe' : fd, fd] });
  closeSync(fd);
  if (!child.pid) throw new Error(`cannot start ${name}`);
  // `ip netns exec` execs the command in place: the PID is the command's own.
  const p = { pid: child.pid, name, start: procStartTime(child.pid), child, exit: null };
  child.on('exit', (code, signal) => { p.exit = { code, signal }; });
  child.on('error', () => {});
  procs.set(p.pid, p);
  try { appendFileSync(PIDS_FILE, JSON.stringify({ pid: p.pid, name, start: p.start }) + '\n'); } catch { /* best effort */ }
  return p;
}

/** SIGTERM, wait up to graceMs, then SIGKILL; only the exact process we started. Synchronous. */
function stopProcSync(p, graceMs = 8000) {
  procs.delete(p.pid);
  if (!alive(p.pid) || (p.start && procStartTime(p.pid) !== p.start)) return;
  try { process.kill(p.pid, 'SIGTERM'); } catch { return; }
  const until = Date.now() + graceMs;
  while (Date.now() < until && alive(p.pid)) sleepSync(20);
  if (!alive(p.pid)) return;
  try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  const until2 = Date.now() + 3000;
  while (Date.now() < until2 && alive(p.pid)) sleepSync(20);
}

/** SIGTERM and wait for the exit (asynchronously): the exit code, or the signal's name. */
async function stopProc(p, graceMs = 15_000) {
  procs.delete(p.pid);
  if (p.exit === null) {
    try { process.kill(p.pid, 'SIGTERM'); } catch { /* gone */ }
    const until = Date.now() + graceMs;
    while (p.exit === null && Date.now() < until) await sleep(20);
    if (p.exit === null) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
      while (p.exit === null) await sleep(20);
      return { ...p.exit, killed: true };
    }
  }
  return { ...p.exit, killed: false };
}

// ---------------------------------------------------------------------------------------
// Clean-up: only limesoak* objects, processes by PID

function listNetns() {
  const r = sh('ip', ['netns', 'list'], { allowFail: true });
  return (r.stdout ?? '').split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((n) => n && n.startsWith(`${PREFIX}-`));
}
function rootLinks() {
  const r = sh('ip', ['-o', 'link', 'show'], { allowFail: true });
  const out = [];
  for (const line of (r.stdout ?? '').split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m && m[1].startsWith(PREFIX)) out.push(m[1]);
  }
  return out;
}

/** Leftovers of an earlier run that died: its processes (by PID and start time), namespaces, links. */
function removeLeftovers() {
  if (existsSync(PIDS_FILE)) {
    for (const line of readFileSync(PIDS_FILE, 'utf8').split('\n').reverse()) {
      let e;
      try { e = JSON.parse(line); } catch { continue; }
      if (e.start && procStartTime(e.pid) === e.start && alive(e.pid)) {
        log(`stopping ${e.name} (pid ${e.pid}) left over from an earlier run`);
        stopProcSync({ pid: e.pid, start: e.start, name: e.name });
      }
    }
    try { unlinkSync(PIDS_FILE); } catch { /* gone */ }
  }
  const ns = listNetns();
  for (const n of ns) {
    // Whatever still runs inside one of our namespaces was started by a soak run.
    const pids = (sh('ip', ['netns', 'pids', n], { allowFail: true }).stdout ?? '').split('\n').map(Number).filter((x) => x > 0);
    for (const pid of pids) stopProcSync({ pid, start: procStartTime(pid), name: `process in ${n}` }, 3000);
  }
  removeTopology();
  if (ns.length) log(`removed leftover namespaces: ${ns.join(' ')}`);
}

function removeTopology() {
  for (const n of listNetns()) sh('ip', ['netns', 'del', n], { allowFail: true });
  for (const l of rootLinks()) sh('ip', ['link', 'del', l], { allowFail: true });
}

function acquireLock() {
  if (existsSync(LOCK)) {
    const pid = Number(readFileSync(LOCK, 'utf8').trim());
    let cmd = '';
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { /* not running */ }
    if (pid && pid !== process.pid && cmd.includes('soak.mjs')) throw new Error(`another soak run (pid ${pid}) is active (${LOCK})`);
  }
  writeFileSync(LOCK, String(process.pid));
}
function releaseLock() {
  try { if (readFileSync(LOCK, 'utf8').trim() === String(process.pid)) unlinkSync(LOCK); } catch { /* gone */ }
}

let tmp;
let keepTmp = false;
let cleanedUp = false;
let locked = false;
/** Stop every process we started (newest first), remove the topology. Synchronous: also runs in exit handlers. */
function cleanupSync() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const p of [...procs.values()].reverse()) stopProcSync(p);
  if (locked) {
    removeTopology();
    try { unlinkSync(PIDS_FILE); } catch { /* gone */ }
    releaseLock();
  }
  if (tmp && !keepTmp) rmSync(tmp, { recursive: true, force: true });
  else if (tmp) log(`logs and state kept in ${tmp}`);
}

// ---------------------------------------------------------------------------------------
// Set-up

function openssl(args) {
  sh('openssl', args);
}

/** A CA and a certificate per site (SAN DNS:site-x, serverAuth + clientAuth). */
function makeCerts(dir) {
  mkdirSync(dir, { recursive: true });
  const ca = { key: join(dir, 'ca.key'), cert: join(dir, 'ca.crt') };
  openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', ca.key, '-out', ca.cert,
    '-days', '3', '-subj', '/CN=limesoak-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const issue = (name) => {
    const base = join(dir, name);
    writeFileSync(`${base}.ext`, `[ leaf ]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = DNS:${name}\n`);
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`]);
    openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', `${base}.crt`, '-days', '3', '-extfile', `${base}.ext`, '-extensions', 'leaf']);
    return { ca: ca.cert, cert: `${base}.crt`, key: `${base}.key` };
  };
  return { a: issue(SITE_NAME.a), b: issue(SITE_NAME.b) };
}

function addNs(name) {
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  // No IPv6 chatter (router solicitations, MLD) through the switch.
  sh('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], { allowFail: true });
}

function buildTopology(hosts) {
  for (const ns of [...Object.values(SITE_NS), ...hosts.map(hostNs)]) addNs(ns);
  for (const [dev, ip] of [[WAN_DEV, WAN_IP], [CTL_DEV, CTL_IP]]) {
    sh('ip', ['link', 'add', dev.a, 'netns', SITE_NS.a, 'type', 'veth', 'peer', 'name', dev.b, 'netns', SITE_NS.b]);
    for (const side of SIDES) {
      sh('ip', ['-n', SITE_NS[side], 'addr', 'add', `${ip[side]}/24`, 'dev', dev[side]]);
      sh('ip', ['-n', SITE_NS[side], 'link', 'set', dev[side], 'up']);
      sh('ip', ['netns', 'exec', SITE_NS[side], 'ethtool', '-K', dev[side], 'tx', 'off'], { allowFail: true });
    }
  }
}

function limedConfig(side, hosts, certs, o) {
  return {
    site: SITE_NAME[side],
    socket: join(tmp, `limed-${side}.sock`),
    log_level: 'info',
    ports: [
      ...hosts.map((h) => ({ name: `h${h}`, type: 'tap', device: tapName(h, side), mac: hostMac(h), tunnel_id: 100 + h, site: SITE_NAME[homeOf(h)] })),
      { name: 'wan', type: 'gre', remote_ip: WAN_IP[other(side)], local_ip: WAN_IP[side], key: 'flow' },
    ],
    listen: `${CTL_IP[side]}:${CTL_PORT}`,
    peer: { name: SITE_NAME[other(side)], address: `${CTL_IP[other(side)]}:${CTL_PORT}`, dead_peer_ms: o.deadPeerMs, tunnel_port: 'wan' },
    tls: certs[side],
    state_dir: join(tmp, `state-${side}`),
    control_share_percent: o.controlShare,
    ...o.limedConfig,
  };
}

function tail(file, n = 6) {
  try { return readFileSync(file, 'utf8').trim().split('\n').slice(-n).join('\n'); } catch { return '(no log)'; }
}

// ---------------------------------------------------------------------------------------
// The run

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) throw new Error('the soak needs root (network namespaces, TAP devices)');
  for (const f of [LIMED, CLIENT]) if (!existsSync(f)) throw new Error(`${f} is missing: build first (npm run build)`);
  const { request, transact } = await import(pathToFileURL(CLIENT).href);
  const rq = (side, body, timeoutMs = 30_000) => request({ path: sockets[side], timeoutMs }, body);

  acquireLock();
  locked = true;
  removeLeftovers();
  writeFileSync(PIDS_FILE, '');
  tmp = mkdtempSync('/tmp/limesoak-');
  log(`soak: ${o.minutes} min, ${o.hosts} hosts, a move every ${o.moveEveryS} s, a control-link cut every ${o.cutEveryS} s, ${o.flowModsPerS} flow-mods/s, traffic ${o.rate > 0 ? `${o.rate} frames/s` : 'as fast as it goes'}; directory ${tmp}`);

  const summary = {
    options: { minutes: o.minutes, hosts: o.hosts, move_every_s: o.moveEveryS, cut_every_s: o.cutEveryS, flow_mods_per_s: o.flowModsPerS, keys: o.keys, rate: o.rate, dead_peer_ms: o.deadPeerMs, control_share_percent: o.controlShare, limed_config: o.limedConfig, warmup_s: o.warmupS, inject: o.inject },
    started: new Date(T0).toISOString(),
    machine: { cpus: (await import('node:os')).cpus().length, loadavg_start: (await import('node:os')).loadavg() },
  };
  const hosts = Array.from({ length: o.hosts }, (_, i) => i + 1);

  // The traffic tool.
  const trafficBin = join(tmp, 'soaktraffic');
  sh('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', trafficBin, TRAFFIC_SRC]);
  const certs = makeCerts(join(tmp, 'certs'));
  buildTopology(hosts);

  // Both limeds, started together.
  const sockets = {};
  const limed = {};
  const logs = {};
  for (const side of SIDES) {
    const cfg = limedConfig(side, hosts, certs, o);
    sockets[side] = cfg.socket;
    logs[side] = join(tmp, `limed-${side}.log`);
    const file = join(tmp, `limed-${side}.json`);
    writeFileSync(file, JSON.stringify(cfg, null, 1));
    limed[side] = startProc(`limed ${SITE_NAME[side]}`, process.execPath, [LIMED, '--config', file], { ns: SITE_NS[side], logFile: logs[side] });
  }
  const checkAlive = () => {
    for (const side of SIDES) {
      if (limed[side].exit !== null || !alive(limed[side].pid)) throw new SoakCrash(`limed ${SITE_NAME[side]} exited (${JSON.stringify(limed[side].exit)}): ${tail(logs[side])}`);
    }
  };
  const waitUntil = async (what, cond, timeoutMs, stepMs = 100) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      checkAlive();
      const v = await cond();
      if (v) return v;
      if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(stepMs);
    }
  };
  const peerShow = (side) => rq(side, { body: 'peer_show', peer_show: {} }, 10_000).then((r) => r.peer_show);
  const bothConnected = async () => {
    const [a, b] = await Promise.all(SIDES.map((s) => peerShow(s).catch(() => null)));
    return a?.connected === true && b?.connected === true;
  };
  await waitUntil('both limeds to answer', async () => (await Promise.all(SIDES.map((s) => rq(s, { body: 'show', show: {} }, 5000).then(() => true, () => false)))).every(Boolean), 60_000);
  await waitUntil('the sites to peer', bothConnected, 60_000);
  for (const side of SIDES) for (const h of hosts) sh('ip', ['netns', 'exec', SITE_NS[side], 'ethtool', '-K', tapName(h, side), 'tx', 'off'], { allowFail: true });

  // Hosts: NIC in, as migration-rig.mjs does it.
  const at = {};
  const ipBatch = async (ns, lines) => {
    const file = join(tmp, `ip-${ns}.batch`);
    writeFileSync(file, lines.join('\n') + '\n');
    await shAsync('ip', ['-n', ns, '-batch', file]);
  };
  const attach = async (h, side) => {
    await shAsync('ip', ['-n', SITE_NS[side], 'link', 'set', 'dev', tapName(h, side), 'netns', hostNs(h)]);
    await ipBatch(hostNs(h), [
      `link set ${tapName(h, side)} name eth0`,
      `addr add ${hostIp(h)}/24 dev eth0`,
      'link set eth0 up',
      ...hosts.filter((x) => x !== h).map((x) => `neigh replace ${hostIp(x)} lladdr ${hostMac(x)} dev eth0 nud permanent`),
    ]);
    at[h] = side;
  };
  const detach = async (h) => {
    const side = at[h];
    at[h] = null;
    await ipBatch(hostNs(h), ['link set eth0 down', `link set eth0 name ${tapName(h, side)}`, `link set dev ${tapName(h, side)} netns ${SITE_NS[side]}`]);
    return side;
  };
  for (const h of hosts) await attach(h, homeOf(h));
  log(`set up in ${elapsed().toFixed(1)} s: limed ${SITE_NAME.a} pid ${limed.a.pid}, ${SITE_NAME.b} pid ${limed.b.pid}, peered`);

  // ---- traffic ----
  const trafficLog = join(tmp, 'soaktraffic.log');
  const traffic = { last: null, final: null, lines: 0 };
  const gen = startProc('soaktraffic', trafficBin, [
    '--port', String(TRAFFIC_PORT), '--report-ms', '1000', ...(o.rate > 0 ? ['--rate', String(o.rate)] : []),
    ...(o.inject.includes('misdeliver') ? ['--mislabel-every', '5000'] : []),
    ...hosts.map((h) => `${h}:${hostNs(h)}:${hostIp(h)}:${hostMac(h).replaceAll(':', '-')}`),
  ], { logFile: trafficLog, stdout: 'pipe' });
  {
    let buf = '';
    gen.child.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const j = JSON.parse(line);
          traffic.lines++;
          if (j.final) traffic.final = j;
          else traffic.last = j;
        } catch { /* not a report */ }
      }
    });
  }
  await waitUntil('the traffic generator', () => {
    if (gen.exit !== null) throw new Error(`soaktraffic exited: ${tail(trafficLog)}`);
    return traffic.last !== null;
  }, 15_000);

  const soakStart = Date.now();
  const soakEnd = soakStart + o.durationS * 1000;
  const tSoak = () => (Date.now() - soakStart) / 1000;
  let soakOver = false;
  const failures = [];
  let crash = null;

  // ---- RSS ----
  const rssOf = (pid) => {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  };
  const rssSeries = [];
  const rssPoint = async () => {
    const reads = { a: [], b: [] };
    for (let i = 0; i < 3; i++) {
      for (const side of SIDES) reads[side].push(rssOf(limed[side].pid));
      if (i < 2) await sleep(1000);
    }
    const med = (xs) => [...xs].sort((x, y) => x - y)[1];
    return { t_s: Math.round(tSoak()), a_kb: med(reads.a), b_kb: med(reads.b), reads };
  };
  let rssStart = null;

  // ---- flow-mod churn ----
  const churn = createChurn(o, rq, transact, sockets);

  // ---- moves ----
  const moves = { list: [], skipped: 0 };
  let moveBusy = null;
  let moveIdx = 0;
  const doMove = async () => {
    const h = hosts[moveIdx % hosts.length];
    const via = moveIdx % 2 === 0 ? 'a' : 'b';
    moveIdx++;
    const from = at[h];
    const to = other(from);
    const m = { t_s: Math.round(tSoak() * 10) / 10, host: `h${h}`, from: SITE_NAME[from], to: SITE_NAME[to], via: SITE_NAME[via], how: 'command', error: null, detached_ms: 0 };
    const t0 = performance.now();
    await detach(h);
    try {
      const r = await rq(via, { body: 'migrate', migrate: { action: 'host', host: { host: `h${h}`, site: SITE_NAME[to], cause: 'command' } } }, 30_000);
      if (r.migrate?.moved?.to !== SITE_NAME[to]) m.error = `unexpected reply ${JSON.stringify(r.migrate?.moved)}`;
    } catch (err) {
      // The hypervisor moves the VM anyway; the new site detects it by its frames.
      m.how = 'detected';
      m.error = err.message;
    }
    await attach(h, to);
    m.detached_ms = Math.round(performance.now() - t0);
    moves.list.push(m);
  };

  // ---- control-link cuts ----
  const cuts = { list: [] };
  let cutBusy = null;
  const cutDownMs = o.deadPeerMs + 3000;
  const cutTimes = [];
  for (let t = o.cutEveryS; t + cutDownMs / 1000 + 10 <= o.durationS; t += o.cutEveryS) cutTimes.push(t);
  const doCut = async () => {
    const before = await Promise.all(SIDES.map((s) => peerShow(s).catch(() => null)));
    const c = { t_s: Math.round(tSoak() * 10) / 10, down_ms: cutDownMs, seen_disconnected: { a: false, b: false }, reconnect_ms: null, resyncs_resumes_before: before.map((p) => (p ? p.resyncs + p.resumes : null)) };
    await shAsync('ip', ['-n', SITE_NS.a, 'link', 'set', CTL_DEV.a, 'down']);
    const upAt = Date.now() + cutDownMs;
    try {
      while (Date.now() < upAt) {
        const st = await Promise.all(SIDES.map((s) => peerShow(s).catch(() => null)));
        for (const [i, side] of SIDES.entries()) if (st[i] && !st[i].connected) c.seen_disconnected[side] = true;
        await sleep(Math.min(300, Math.max(0, upAt - Date.now())));
      }
    } finally {
      await shAsync('ip', ['-n', SITE_NS.a, 'link', 'set', CTL_DEV.a, 'up']);
    }
    const t1 = Date.now();
    const until = t1 + 90_000;
    while (Date.now() < until && !soakOverHard) {
      if (await bothConnected()) { c.reconnect_ms = Date.now() - t1; break; }
      await sleep(100);
    }
    const after = await Promise.all(SIDES.map((s) => peerShow(s).catch(() => null)));
    c.resyncs_resumes_after = after.map((p) => (p ? p.resyncs + p.resumes : null));
    cuts.list.push(c);
    log(`control-link cut at ${c.t_s} s: down ${cutDownMs} ms, disconnected seen at a ${c.seen_disconnected.a} b ${c.seen_disconnected.b}, reconnected ${c.reconnect_ms} ms after link up`);
  };
  let soakOverHard = false;

  // ---- the schedule ----
  const progress = () => {
    const t = traffic.last ?? {};
    const cs = churn.stats;
    const r = rssSeries.at(-1);
    log(`t=${Math.round(tSoak())} s  frames sent ${fmtN(t.sent)} recv ${fmtN(t.received)} misdelivered ${t.misdelivered ?? '?'}  | flow-mods acked ${cs.acked} (${(cs.acked / Math.max(1, tSoak())).toFixed(0)}/s) refused ${cs.refused} unanswered ${cs.unanswered} | moves ${moves.list.length} | cuts ${cuts.list.length} | rss ${r ? `a ${(r.a_kb / 1024).toFixed(1)} MB b ${(r.b_kb / 1024).toFixed(1)} MB` : '-'}`);
  };
  const churnDone = churn.run(() => soakOver, checkAlive);
  let nextMove = o.moveEveryS;
  let nextProgress = 10;
  let nextRss = 0;
  let rssStartP = null;
  try {
    while (Date.now() < soakEnd) {
      checkAlive();
      if (gen.exit !== null) throw new Error(`soaktraffic exited: ${tail(trafficLog)}`);
      if (churn.fatal) throw churn.fatal;
      const t = tSoak();
      if (t >= nextMove) {
        nextMove += o.moveEveryS;
        if (moveBusy) moves.skipped++;
        else moveBusy = doMove().catch((err) => { crash ??= err; }).finally(() => { moveBusy = null; });
      }
      if (cutTimes.length > 0 && t >= cutTimes[0]) {
        cutTimes.shift();
        if (!cutBusy) cutBusy = doCut().catch((err) => { crash ??= err; }).finally(() => { cutBusy = null; });
      }
      if (t >= nextRss) {
        nextRss += 5;
        const point = { t_s: Math.round(t), a_kb: rssOf(limed.a.pid), b_kb: rssOf(limed.b.pid) };
        rssSeries.push(point);
        // The V8 heap beside it (limed's own figure), to tell heap growth from native memory.
        if (rssSeries.length % 2 === 1) {
          Promise.all(SIDES.map((s) => rq(s, { body: 'show', show: {} }, 20_000).then((r) => r.show.process, () => null))).then(([pa, pb]) => {
            if (pa) { point.a_heap_kb = Math.round(pa.heap_used / 1024); point.a_gcs = pa.gc_count; }
            if (pb) { point.b_heap_kb = Math.round(pb.heap_used / 1024); point.b_gcs = pb.gc_count; }
          });
        }
      }
      if (rssStartP === null && t >= o.warmupS) rssStartP = rssPoint().then((p) => { rssStart = p; log(`RSS after the warm-up: a ${(p.a_kb / 1024).toFixed(1)} MB, b ${(p.b_kb / 1024).toFixed(1)} MB`); });
      if (t >= nextProgress) { nextProgress += 10; progress(); }
      if (crash) throw crash;
      await sleep(100);
    }
    // The end of the soak: the RSS under load (traffic and churn still running), then stop
    // the moves and cuts (each finishes what it started) and the churn.
    await rssStartP;
    const rssEnd = await rssPoint();
    soakOver = true;
    await Promise.all([moveBusy, cutBusy]);
    if (crash) throw crash;
    await churnDone;
    checkAlive();
    progress();
    log(`soak phase over after ${tSoak().toFixed(0)} s; settling`);
    const rssThreshold = o.inject.includes('rss') ? 0 : 0.10;
    summary.rss = {
      threshold: rssThreshold,
      ...Object.fromEntries(SIDES.map((s) => [s, { start_kb: rssStart[`${s}_kb`], end_kb: rssEnd[`${s}_kb`], growth: (rssEnd[`${s}_kb`] - rssStart[`${s}_kb`]) / rssStart[`${s}_kb`], start_reads: rssStart.reads[s], end_reads: rssEnd.reads[s], max_kb: Math.max(...rssSeries.map((x) => x[`${s}_kb`]), rssEnd[`${s}_kb`]) }])),
      series: rssSeries,
    };

    // ---- settle: peered, barrier at both, unanswered flow-mods resolved ----
    await waitUntil('the sites to be connected after the soak', bothConnected, 90_000, 200);
    await churn.settle(90_000);
    // ---- location maps: both sites agree, and with where the NICs are ----
    const expectedMap = hosts.map((h) => `h${h}@${SITE_NAME[at[h]]}`).join(' ');
    let maps = null;
    const mapsOk = await waitUntil('the location maps', async () => {
      const st = await Promise.all(SIDES.map((s) => rq(s, { body: 'migrate', migrate: { action: 'status', status: {} } }, 30_000).then((r) => r.migrate)));
      maps = Object.fromEntries(SIDES.map((s, i) => [s, st[i].hosts.map((x) => `${x.name}@${x.site}`).sort().join(' ')]));
      return maps.a === expectedMap && maps.b === expectedMap;
    }, 30_000, 500).then(() => true, () => false);
    summary.locations = { expected: expectedMap, a: maps?.a, b: maps?.b, agree: mapsOk };

    // ---- every pair still connected: each pair's count grows over 3 s ----
    const rx0 = traffic.last.rx;
    const l0 = traffic.lines;
    await waitUntil('traffic reports', () => traffic.lines >= l0 + 3, 20_000);
    const rx1 = traffic.last.rx;
    const deadPairs = [];
    for (const [i, h] of hosts.entries()) for (const [j, s] of hosts.entries()) if (i !== j && !(rx1[i][j] > rx0[i][j])) deadPairs.push(`h${s}→h${h}`);
    summary.connectivity = { pairs: hosts.length * (hosts.length - 1), dead_pairs: deadPairs, window_frames: rx1.flat().reduce((x, y) => x + y, 0) - rx0.flat().reduce((x, y) => x + y, 0) };

    // ---- traffic: stop, final counts ----
    const genExit = await stopProc(gen);
    const fin = traffic.final;
    if (!fin) throw new Error(`soaktraffic printed no final report (exit ${JSON.stringify(genExit)}): ${tail(trafficLog)}`);
    summary.traffic = {
      sent: fin.sent, received: fin.received, misdelivered: fin.misdelivered, misdelivered_my_mac: fin.misdelivered_my_mac, corrupt: fin.corrupt,
      reordered: fin.reordered, send_errors: fin.send_errors, socket_drops: fin.socket_drops, delivered_share: fin.sent > 0 ? fin.received / fin.sent : 0,
      sent_per_s: fin.sent / o.durationS, hosts: fin.hosts, rx_matrix: fin.rx,
    };

    // ---- what each limed says of itself (policing, fast path, memory) ----
    const shows = await Promise.all(SIDES.map((s) => rq(s, { body: 'show', show: {} }, 60_000).then((r) => r.show)));
    summary.daemon = Object.fromEntries(SIDES.map((s, i) => [s, { control: shows[i].control, process: shows[i].process, fast_path: shows[i].fast_path && { hits: shows[i].fast_path.hits, rx: shows[i].fast_path.rx, upcalls: shows[i].fast_path.upcalls } }]));

    // ---- flow tables ----
    summary.flow_mods = await churn.check();
    summary.tables = churn.tables;

    // ---- peer status, moves, cuts ----
    const ps = await Promise.all(SIDES.map((s) => peerShow(s)));
    summary.peer = Object.fromEntries(SIDES.map((s, i) => [s, { role: ps[i].role, connected: ps[i].connected, seq: ps[i].seq, resyncs: ps[i].resyncs, resumes: ps[i].resumes, divergent: ps[i].divergent }]));
    summary.moves = {
      done: moves.list.length, by_command: moves.list.filter((m) => m.how === 'command').length, detected: moves.list.filter((m) => m.how === 'detected').length,
      skipped: moves.skipped, max_detached_ms: Math.max(0, ...moves.list.map((m) => m.detached_ms)),
      // Moves as limed logged them (each site applies each once), by cause: more than the
      // moves made means the location map flapped (informational, not a condition).
      applied_at_a: movesLogged(logs.a), list: moves.list,
    };
    summary.cuts = { done: cuts.list.length, list: cuts.list };

    // ---- no crash: alive now, exit 0 on SIGTERM ----
    const aliveEnd = Object.fromEntries(SIDES.map((s) => [s, limed[s].exit === null && alive(limed[s].pid)]));
    const exits = {};
    for (const side of SIDES) exits[side] = await stopProc(limed[side]);
    summary.limed = Object.fromEntries(SIDES.map((s) => [s, { pid: limed[s].pid, alive_at_end: aliveEnd[s], exit_code: exits[s].code, exit_signal: exits[s].signal, killed: exits[s].killed, log_errors: logErrors(logs[s]) }]));

    // ---- the verdict ----
    const F = (cond, what) => { if (!cond) failures.push(what); };
    for (const s of SIDES) {
      F(summary.limed[s].alive_at_end, `limed ${SITE_NAME[s]} was not alive at the end`);
      F(summary.limed[s].exit_code === 0 && !summary.limed[s].killed, `limed ${SITE_NAME[s]} did not exit cleanly on SIGTERM (${JSON.stringify(exits[s])})`);
      F(summary.rss[s].growth < rssThreshold, `limed ${SITE_NAME[s]} RSS grew ${(100 * summary.rss[s].growth).toFixed(1)} % (${summary.rss[s].start_kb} → ${summary.rss[s].end_kb} kB)`);
      F(summary.peer[s].divergent === 0, `limed ${SITE_NAME[s]} counts ${summary.peer[s].divergent} divergent log entries`);
    }
    F(summary.tables.a_only.length === 0 && summary.tables.b_only.length === 0, `the sites' tables differ: ${summary.tables.a_only.length} flows only at a, ${summary.tables.b_only.length} only at b`);
    F(summary.flow_mods.acked > 0, 'no flow-mod was acknowledged');
    F(summary.flow_mods.missing.length === 0, `${summary.flow_mods.missing.length} acknowledged flow-mods are not in the table`);
    F(summary.flow_mods.reply_mismatches.length === 0, `${summary.flow_mods.reply_mismatches.length} flow-mod replies disagree with the acknowledged state`);
    F(summary.flow_mods.errors_other.length === 0, `flow-mods failed unexpectedly: ${summary.flow_mods.errors_other.slice(0, 3).join('; ')}`);
    F(summary.traffic.misdelivered === 0, `${summary.traffic.misdelivered} frames reached the wrong host`);
    F(summary.traffic.corrupt === 0, `${summary.traffic.corrupt} frames arrived corrupted`);
    F(summary.traffic.received > 0, 'no frame was received');
    F(summary.connectivity.dead_pairs.length === 0, `pairs with no traffic at the end: ${summary.connectivity.dead_pairs.join(' ')}`);
    F(summary.locations.agree, `location maps wrong: expected ${expectedMap}, a: ${maps?.a}, b: ${maps?.b}`);
    F(summary.moves.done >= Math.floor(o.durationS / o.moveEveryS) - 1, `only ${summary.moves.done} moves done`);
    F(summary.cuts.done === Math.max(0, Math.floor((o.durationS - cutDownMs / 1000 - 10) / o.cutEveryS)), `only ${summary.cuts.done} control-link cuts done`);
    for (const c of summary.cuts.list) {
      F(c.seen_disconnected.a && c.seen_disconnected.b, `the cut at ${c.t_s} s was not seen at both sites (${JSON.stringify(c.seen_disconnected)})`);
      F(c.reconnect_ms !== null, `the sites did not reconnect after the cut at ${c.t_s} s`);
    }
  } finally {
    soakOver = true;
    soakOverHard = true;
  }
  summary.failures = failures;
  summary.ok = failures.length === 0;
  summary.wall_s = Math.round(elapsed());
  summary.machine.loadavg_end = (await import('node:os')).loadavg();
  return summary;
}

class SoakCrash extends Error {}

function fmtN(n) {
  if (n === undefined || n === null) return '?';
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

/** Host moves a limed applied, by cause, from its log. */
function movesLogged(file) {
  const out = { command: 0, detected: 0, abort: 0 };
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.includes(' moved from site ')) continue;
      try { const j = JSON.parse(line); out[j.cause] = (out[j.cause] ?? 0) + 1; } catch { /* not JSON */ }
    }
  } catch { /* no log */ }
  return out;
}

/** Distinct messages of limed's log lines at level error or above (pino: 50+), with counts. */
function logErrors(file) {
  const out = {};
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      let j;
      try { j = JSON.parse(line); } catch { continue; }
      if ((j.level ?? 0) >= 50) out[j.msg] = (out[j.msg] ?? 0) + 1;
    }
  } catch { /* no log */ }
  return out;
}

// ---------------------------------------------------------------------------------------
// The flow-mod churn

const ACTIONS = ['drop', 'output:h1', 'output:h2', 'mod_nw_tos:16,output:h1', 'mod_vlan_vid:7,output:h2'];
const CHURN_MATCH = 'ip,nw_dst=10.250.0.0/16';

function createChurn(o, rq, transact, sockets) {
  const n = o.keys;
  /** The last acknowledged state of each key: null (absent) or { cookie, actions }. */
  const model = new Array(n).fill(null);
  const busy = new Set();
  /** Keys whose last flow-mod was not answered: key → { resolvable, since }. */
  const frozen = new Map();
  const lastOp = new Array(n).fill(null);
  const stats = { sent: 0, acked: 0, refused: 0, unanswered: 0, timed_out: 0, resolved_applied: 0, resolved_not_applied: 0, by_site: { a: 0, b: 0 }, by_command: { ADD: 0, MODIFY_STRICT: 0, DELETE_STRICT: 0 }, latency_ms: [] };
  const errorsOther = [];
  const mismatches = [];
  let serial = 0;
  let rnd = 12345;
  const random = () => { rnd ^= rnd << 13; rnd >>>= 0; rnd ^= rnd >>> 17; rnd ^= rnd << 5; rnd >>>= 0; return rnd / 2 ** 32; };
  const priorityOf = (k) => 30000 + (k % 7);
  const ipOf = (k) => `10.250.${k >> 8}.${k & 255}`;
  const flowText = (flows) => ({ flows, lines: flows.map((_, i) => i + 1), source: 'soak', more: false });
  const api = { stats, fatal: null, tables: null };

  const pickKey = () => {
    for (let tries = 0; tries < 50; tries++) {
      const k = Math.floor(random() * n);
      if (!busy.has(k) && !frozen.has(k)) return k;
    }
    return -1;
  };

  async function one(k, site) {
    const cookie = `0x${(0x5a000000 + ++serial).toString(16)}`;
    const cur = model[k];
    let command;
    let text;
    const actions = ACTIONS[Math.floor(random() * ACTIONS.length)];
    const r = random();
    if (cur === null || r < 0.15) command = 'ADD';
    else if (r < 0.6) command = 'MODIFY_STRICT';
    else command = 'DELETE_STRICT';
    if (command === 'DELETE_STRICT') text = `table=0,priority=${priorityOf(k)},${`ip,nw_dst=${ipOf(k)}`}`;
    else text = `table=0,priority=${priorityOf(k)},cookie=${cookie},ip,nw_dst=${ipOf(k)},actions=${actions}`;
    stats.sent++;
    stats.by_site[site]++;
    const t0 = performance.now();
    const failedAt = () => Date.now();
    try {
      const reply = await rq(site, { body: 'flow_mods', flow_mods: { command, text: flowText([text]) } }, 60_000);
      const fm = reply.flow_mods;
      stats.acked++;
      stats.by_command[command]++;
      stats.latency_ms.push(performance.now() - t0);
      // The reply must agree with the acknowledged state before it.
      const want = command === 'ADD' ? { added: 1 } : command === 'MODIFY_STRICT' ? { modified: 1 } : { removed: 1 };
      const [field, count] = Object.entries(want)[0];
      if ((fm?.[field] ?? 0) !== count) mismatches.push({ key: k, command, site, reply: fm, before: cur });
      model[k] = command === 'DELETE_STRICT' ? null : { cookie, actions, priority: priorityOf(k) };
      lastOp[k] = { command, site, cookie, serial };
    } catch (err) {
      const msg = String(err.message ?? err);
      if (/is not connected/.test(msg) && /retry when the sites are connected/.test(msg)) {
        stats.refused++; // refused before it was sent to the writer: not applied
      } else if (/may or may not have been applied/.test(msg)) {
        stats.unanswered++;
        frozen.set(k, { resolvable: true, since: failedAt(), msg });
      } else if (err.name === 'TimeoutError') {
        stats.timed_out++;
        frozen.set(k, { resolvable: false, since: failedAt(), msg });
      } else {
        errorsOther.push(`${site} ${command}: ${msg}`);
        frozen.set(k, { resolvable: false, since: failedAt(), msg });
      }
    }
  }

  /** Barrier at both sites (retrying while a site reconnects). */
  async function barrierBoth(timeoutMs) {
    const until = Date.now() + timeoutMs;
    for (const side of ['b', 'a']) {
      for (;;) {
        try {
          await rq(side, { body: 'sync_barrier', sync_barrier: {} }, 60_000);
          break;
        } catch (err) {
          if (Date.now() > until) throw new Error(`sync barrier at ${side}: ${err.message}`);
          await sleep(300);
        }
      }
    }
  }

  /** Flows of a site (this site's own table), as comparable text. */
  async function dump(side, match = '') {
    const parts = await transact({ path: sockets[side], timeoutMs: 120_000 }, [{ body: 'dump_flows', dump_flows: { match, strict: false, site: 'local' } }]);
    return parts[0].flatMap((p) => p.dump_flows.flows);
  }
  const asText = (f) => `table=${f.table},priority=${f.priority},cookie=${f.cookie},${f.match},idle=${f.idle_timeout},hard=${f.hard_timeout},actions=${f.actions}`;
  const keyOf = (f) => {
    const m = /nw_dst=10\.250\.(\d+)\.(\d+)(?:,|$)/.exec(f.match);
    return m && f.priority >= 30000 && f.priority <= 30006 ? Number(m[1]) * 256 + Number(m[2]) : -1;
  };

  /** Read back the keys whose flow-mod was not answered, once the sites are connected and in step. */
  async function resolveFrozen() {
    const cands = [...frozen.entries()].filter(([, f]) => f.resolvable && Date.now() - f.since > o.deadPeerMs);
    if (cands.length === 0) return;
    const st = await Promise.all(['a', 'b'].map((s) => rq(s, { body: 'peer_show', peer_show: {} }, 10_000).then((r) => r.peer_show.connected, () => false)));
    if (!st.every(Boolean)) return;
    const t = Date.now();
    await barrierBoth(30_000);
    const flows = await dump('a', CHURN_MATCH);
    const found = new Map();
    for (const f of flows) { const k = keyOf(f); if (k >= 0) found.set(k, f); }
    for (const [k, f] of cands) {
      if (f.since > t) continue;
      const cur = found.get(k);
      const before = model[k];
      const now = cur === undefined ? null : { cookie: cur.cookie, actions: cur.actions, priority: cur.priority };
      const same = (before === null && now === null) || (before !== null && now !== null && before.cookie === now.cookie);
      if (same) stats.resolved_not_applied++;
      else stats.resolved_applied++;
      model[k] = now;
      lastOp[k] = { command: 'read back', site: 'a' };
      frozen.delete(k);
    }
  }

  api.run = async (over, checkAlive) => {
    const rate = o.flowModsPerS;
    let tokens = 0;
    const waiting = [];
    const ticker = setInterval(() => {
      tokens = Math.min(rate, tokens + rate / 100);
      while (tokens >= 1 && waiting.length > 0) { tokens--; waiting.shift()(); }
    }, 10);
    let site = 0;
    let resolving = false;
    const resolver = setInterval(() => {
      if (resolving || over()) return;
      resolving = true;
      resolveFrozen().catch(() => undefined).finally(() => { resolving = false; });
    }, 2000);
    const worker = async () => {
      while (!over()) {
        await new Promise((r) => waiting.push(r));
        if (over()) break;
        const k = pickKey();
        if (k < 0) continue;
        busy.add(k);
        try {
          await one(k, site++ % 2 === 0 ? 'a' : 'b');
        } finally {
          busy.delete(k);
        }
      }
    };
    const stopper = setInterval(() => {
      if (over()) for (const r of waiting.splice(0)) r();
      try { checkAlive(); } catch (err) { api.fatal ??= err; }
    }, 50);
    try {
      await Promise.all(Array.from({ length: o.outstanding }, worker));
      while (resolving) await sleep(50);
    } finally {
      clearInterval(ticker);
      clearInterval(resolver);
      clearInterval(stopper);
    }
    if (o.inject.includes('lost-ack')) {
      // Self-test: an "acknowledged" add that was never sent must be found missing.
      const k = [...Array(n).keys()].find((x) => model[x] === null && !frozen.has(x));
      if (k !== undefined) { model[k] = { cookie: '0x5affffff', actions: 'drop', priority: priorityOf(k) }; lastOp[k] = { command: 'ADD (injected)', site: 'none' }; }
    }
  };

  api.settle = async (timeoutMs) => {
    await barrierBoth(timeoutMs);
    await resolveFrozen();
  };

  api.check = async () => {
    await barrierBoth(60_000);
    const [fa, fb] = await Promise.all([dump('a'), dump('b')]);
    const ta = fa.map(asText).sort();
    const tb = fb.map(asText).sort();
    const sb = new Set(tb);
    const sa = new Set(ta);
    api.tables = { a: ta.length, b: tb.length, churn_flows: fa.filter((f) => keyOf(f) >= 0).length, a_only: ta.filter((x) => !sb.has(x)).slice(0, 50), b_only: tb.filter((x) => !sa.has(x)).slice(0, 50) };
    const missing = [];
    for (const [side, flows] of [['a', fa], ['b', fb]]) {
      const found = new Map();
      for (const f of flows) { const k = keyOf(f); if (k >= 0) found.set(k, f); }
      for (let k = 0; k < n; k++) {
        if (frozen.has(k)) continue;
        const want = model[k];
        const got = found.get(k);
        if (want === null && got === undefined) continue;
        if (want !== null && got !== undefined && got.cookie === want.cookie && got.actions === want.actions && got.priority === want.priority) continue;
        missing.push({ site: side, key: k, nw_dst: ipOf(k), expected: want, found: got ? asText(got) : null, last: lastOp[k] });
      }
    }
    const lat = [...stats.latency_ms].sort((x, y) => x - y);
    const pct = (p) => (lat.length ? Math.round(lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] * 10) / 10 : null);
    return {
      sent: stats.sent, acked: stats.acked, acked_per_s: stats.acked / o.durationS, refused_not_connected: stats.refused,
      unanswered: stats.unanswered, resolved_applied: stats.resolved_applied, resolved_not_applied: stats.resolved_not_applied,
      timed_out: stats.timed_out, frozen_unchecked: frozen.size, by_site: stats.by_site, by_command: stats.by_command,
      latency_ms: { p50: pct(50), p99: pct(99), max: lat.length ? Math.round(lat.at(-1)) : null },
      expected_present: model.filter((m, k) => m !== null && !frozen.has(k)).length,
      checked_keys: n - frozen.size,
      missing: missing.slice(0, 50), missing_count: missing.length,
      reply_mismatches: mismatches.slice(0, 50), errors_other: errorsOther.slice(0, 50),
    };
  };
  return api;
}

// ---------------------------------------------------------------------------------------
// Entry

let finished = false;
function onSignal(sig) {
  if (finished) return;
  finished = true;
  log(`${sig}: cleaning up`);
  keepTmp = true;
  cleanupSync();
  process.exit(130);
}
process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGHUP', () => onSignal('SIGHUP'));
process.on('exit', () => cleanupSync());

let opts;
try { opts = parseArgs(process.argv.slice(2)); } catch (err) { process.stderr.write(`soak: ${err.message}\n`); process.exit(2); }
main().then(
  (summary) => {
    finished = true;
    keepTmp = opts.keep || !summary.ok;
    const text = JSON.stringify(summary, null, 1);
    if (opts.json) writeFileSync(opts.json, text + '\n');
    process.stdout.write(text + '\n');
    log(summary.ok ? `PASS (${summary.wall_s} s)` : `FAIL: ${summary.failures.join('; ')}`);
    cleanupSync();
    process.exit(summary.ok ? 0 : 1);
  },
  (err) => {
    finished = true;
    keepTmp = true;
    const crashed = err instanceof SoakCrash;
    log(`${crashed ? 'CRASH' : 'ERROR'}: ${err.stack ?? err}`);
    const summary = { ok: false, error: String(err.message ?? err), crash: crashed, failures: [String(err.message ?? err)], wall_s: Math.round(elapsed()) };
    if (opts.json) writeFileSync(opts.json, JSON.stringify(summary, null, 1) + '\n');
    process.stdout.write(JSON.stringify(summary) + '\n');
    cleanupSync();
    process.exit(crashed ? 1 : 2);
  },
);
