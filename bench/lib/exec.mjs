// Process helpers for the benchmark harness: run a command with a timeout, start tracked
// background processes, and stop them again — only ever by the PID we started, never by name.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, appendFileSync, existsSync, unlinkSync, openSync, closeSync } from 'node:fs';

const t0 = Date.now();
export function log(...parts) {
  const s = Math.round((Date.now() - t0) / 1000);
  const stamp = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  process.stderr.write(`[bench ${stamp}] ${parts.join(' ')}\n`);
}
export const elapsedSeconds = () => (Date.now() - t0) / 1000;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Prefix a command with `ip netns exec NS` when ns is given. */
export function inNs(ns, cmd, args) {
  return ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, args];
}

const LONG = new Set(['iperf3', 'ping', 'ovs-vsctl', 'env']);

/**
 * Run a command to completion. Resolves { code, stdout, stderr, timedOut }.
 * Rejects (unless allowFail) on a non-zero exit or timeout, with the stderr tail in the message.
 */
export function run(cmd, args = [], { ns, timeoutMs = 30_000, allowFail = false, env } = {}) {
  const [c, a] = inNs(ns, cmd, args);
  return new Promise((resolve, reject) => {
    const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
    // Long-lived one-shot commands (iperf3, ping) are tracked too, so that an interrupted or
    // crashed run stops them; quick ones (ip, ethtool, sysctl) are not worth the bookkeeping.
    const entry = child.pid && LONG.has(cmd) ? track(child.pid, `${cmd} (one-shot)`) : null;
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      if (entry) tracked.delete(entry.pid);
      if (allowFail) resolve({ code: -1, stdout, stderr: String(err), timedOut });
      else reject(new Error(`${c} ${a.join(' ')}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (entry) tracked.delete(entry.pid);
      const res = { code: code ?? -1, signal, stdout, stderr, timedOut };
      if (code === 0 || allowFail) return resolve(res);
      const why = timedOut ? `timed out after ${timeoutMs} ms` : `exit ${code ?? signal}`;
      reject(new Error(`${c} ${a.join(' ')}: ${why}: ${(stderr || stdout).trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/** Synchronous variant for set-up/teardown paths that must also work inside exit handlers. */
export function runSync(cmd, args = [], { ns, timeoutMs = 15_000 } = {}) {
  const [c, a] = inNs(ns, cmd, args);
  const r = spawnSync(c, a, { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

// ---------------------------------------------------------------------------------------
// Tracked processes. Every PID we start is recorded in memory and in PIDS_FILE together with
// its kernel start time, so a later run can stop leftovers of a crashed run — and only those
// exact processes (a reused PID has another start time and is left alone).

export const PIDS_FILE = '/tmp/limeb.pids';
const tracked = new Map(); // pid -> { pid, name, start, child? }

export function procStartTime(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
  } catch { return null; }
}
export function alive(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch { return false; }
}

/** Register a PID we started (a spawned child, or a daemon that wrote a pidfile). */
export function track(pid, name, child) {
  const start = procStartTime(pid);
  tracked.set(pid, { pid, name, start, child });
  try { appendFileSync(PIDS_FILE, JSON.stringify({ pid, name, start }) + '\n'); } catch { /* best effort */ }
  return tracked.get(pid);
}

/**
 * Start a background process (optionally inside a namespace). `ip netns exec` execs the
 * command in place, so the PID is the command's own. stdout/stderr go to `logFile` if given.
 */
export function startBg(name, cmd, args, { ns, logFile, env } = {}) {
  const [c, a] = inNs(ns, cmd, args);
  let fd = 'ignore';
  if (logFile) fd = openSync(logFile, 'a');
  const child = spawn(c, a, { stdio: ['ignore', fd, fd], env: env ? { ...process.env, ...env } : process.env });
  if (logFile) closeSync(fd);
  if (!child.pid) throw new Error(`cannot start ${name}: ${c}`);
  child.exitInfo = null;
  child.on('exit', (code, signal) => { child.exitInfo = { code, signal }; });
  child.on('error', () => {});
  return track(child.pid, name, child);
}

/** Stop one tracked process: SIGTERM, wait up to graceMs, then SIGKILL. Synchronous. */
export function stopSync(entry, graceMs = 4000) {
  const { pid, start } = entry;
  tracked.delete(pid);
  if (!alive(pid) || (start && procStartTime(pid) !== start)) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    if (!alive(pid)) return;
    sleepSync(20);
  }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  const until2 = Date.now() + 2000;
  while (Date.now() < until2 && alive(pid)) sleepSync(20);
}

export function stopAllSync() {
  // Newest first: forwarders before the servers they depend on.
  for (const e of [...tracked.values()].reverse()) stopSync(e);
}

/** Stop processes recorded by an earlier (crashed) run, then forget the file. */
export function stopLeftoversSync() {
  if (!existsSync(PIDS_FILE)) return 0;
  let n = 0;
  // Newest first: clients and forwarders before the servers and daemons they depend on.
  for (const line of readFileSync(PIDS_FILE, 'utf8').split('\n').reverse()) {
    if (!line.trim()) continue;
    let e;
    try { e = JSON.parse(line); } catch { continue; }
    if (tracked.has(e.pid)) continue;
    if (e.start && procStartTime(e.pid) === e.start && alive(e.pid)) {
      log(`stopping leftover ${e.name} (pid ${e.pid}) from an earlier run`);
      stopSync(e);
      n++;
    }
  }
  try { unlinkSync(PIDS_FILE); } catch { /* gone */ }
  return n;
}

export function resetPidsFile() {
  try { writeFileSync(PIDS_FILE, ''); } catch { /* best effort */ }
}
