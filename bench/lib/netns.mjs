// Namespaces, links and guaranteed teardown. Everything the harness creates is named with
// the `limeb` prefix (namespaces limeb-h1, limeb-h2, limeb-sw; links limeb-*; temp dirs
// /tmp/limeb-*), and teardown only ever removes things with that prefix.
import { readdirSync, rmSync, existsSync, readFileSync, writeFileSync, unlinkSync, mkdtempSync } from 'node:fs';
import { run, runSync, sleep, stopAllSync, stopLeftoversSync, log, PIDS_FILE } from './exec.mjs';

export const PREFIX = 'limeb';
export const H1 = 'limeb-h1';
export const H2 = 'limeb-h2';
export const SW = 'limeb-sw';
export const IP1 = '10.77.0.1';
export const IP2 = '10.77.0.2';
const LOCK = '/tmp/limeb.lock';

function assertPrefixed(name) {
  if (!name.startsWith(PREFIX)) throw new Error(`refusing to touch ${name}: not a ${PREFIX} object`);
}

export function listNetns() {
  const r = runSync('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
}

/** Root-namespace links with our prefix (e.g. TAPs pushed back to the root on netns exit). */
export function listRootLinks() {
  const r = runSync('ip', ['-o', 'link', 'show']);
  const names = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m && m[1].startsWith(PREFIX)) names.push(m[1]);
  }
  return names;
}

/** Remove every limeb namespace, root-namespace limeb link and /tmp/limeb-* dir. Synchronous. */
export function removeTopologySync() {
  for (const ns of listNetns()) {
    if (!ns.startsWith(`${PREFIX}-`)) continue;
    runSync('ip', ['netns', 'del', ns]);
  }
  for (const l of listRootLinks()) runSync('ip', ['link', 'del', l]);
}

export function removeTmpDirsSync() {
  for (const d of readdirSync('/tmp')) {
    if (d.startsWith(`${PREFIX}-`)) rmSync(`/tmp/${d}`, { recursive: true, force: true });
  }
}

/** Full teardown: our processes first (so their TAPs vanish with their fds), then topology. */
export function teardownSync() {
  stopAllSync();
  removeTopologySync();
}

// ---------------------------------------------------------------------------------------
// One harness at a time: two concurrent runs would tear down each other's namespaces.

export function acquireLock() {
  if (existsSync(LOCK)) {
    const pid = Number(readFileSync(LOCK, 'utf8').trim());
    let cmd = '';
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { /* not running */ }
    if (pid && pid !== process.pid && cmd.includes('run.mjs')) {
      throw new Error(`another bench run (pid ${pid}) is active; ${LOCK} holds it`);
    }
  }
  writeFileSync(LOCK, String(process.pid));
}
export function releaseLock() {
  try { if (readFileSync(LOCK, 'utf8').trim() === String(process.pid)) unlinkSync(LOCK); } catch { /* gone */ }
}

/** Clean up the remains of an earlier crashed run before starting. */
export function cleanupLeftovers() {
  const n = stopLeftoversSync();
  const ns = listNetns().filter((x) => x.startsWith(`${PREFIX}-`));
  const links = listRootLinks();
  if (ns.length || links.length) log(`removing leftovers: ${[...ns, ...links].join(' ')}`);
  removeTopologySync();
  removeTmpDirsSync();
  return n + ns.length + links.length;
}

export function finalCleanupSync() {
  teardownSync();
  removeTmpDirsSync();
  try { unlinkSync(PIDS_FILE); } catch { /* gone */ }
  releaseLock();
}

export function makeTmpDir() {
  return mkdtempSync('/tmp/limeb-');
}

// ---------------------------------------------------------------------------------------
// Building blocks

export async function addNs(name) {
  assertPrefixed(name);
  await run('ip', ['netns', 'add', name]);
  await run('ip', ['link', 'set', 'lo', 'up'], { ns: name });
  // No IPv6 chatter (router solicitations, MLD) through the switch under test.
  await run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1'], { ns: name, allowFail: true });
  await run('sysctl', ['-qw', 'net.ipv6.conf.default.disable_ipv6=1'], { ns: name, allowFail: true });
}

export async function addHosts() {
  await addNs(H1);
  await addNs(H2);
}

/** veth pair with each end created directly in its namespace. */
export async function addVeth(a, nsA, b, nsB) {
  assertPrefixed(a); assertPrefixed(b);
  await run('ip', ['link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB]);
}

/** Host-side interface set-up: TX checksum offload off, address, up. */
export async function configureHost(ns, ifname, ip) {
  await run('ethtool', ['-K', ifname, 'tx', 'off'], { ns, allowFail: true });
  await run('ip', ['addr', 'add', `${ip}/24`, 'dev', ifname], { ns });
  await run('ip', ['link', 'set', ifname, 'up'], { ns });
}

export async function linkExists(ns, name) {
  const r = await run('ip', ['link', 'show', 'dev', name], { ns, allowFail: true });
  return r.code === 0;
}

/** Wait until a link exists in ns; `check()` may throw to abort early (e.g. process died). */
export async function waitForLink(ns, name, { timeoutMs = 15_000, check } = {}) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (check) check();
    if (await linkExists(ns, name)) return;
    await sleep(50);
  }
  throw new Error(`${name} did not appear in ${ns ?? 'the root namespace'} within ${timeoutMs} ms`);
}

/** Move a link (e.g. a TAP created by a forwarder in limeb-sw) into a host namespace. */
export async function moveLink(fromNs, name, toNs) {
  assertPrefixed(name);
  await run('ip', ['link', 'set', 'dev', name, 'netns', toNs], { ns: fromNs });
}
