// Process CPU time from /proc/PID/stat. utime (field 14) + stime (field 15) of the thread
// group leader's stat already sum over all of the process's threads (live and exited).
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck = 0;
export function clockTicks() {
  if (!clkTck) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { clkTck = 100; }
  }
  return clkTck;
}

/** CPU seconds consumed so far by process `pid`, split into user and system (kernel) time. */
export function cpuSplit(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return { user: Number(f[11]) / clockTicks(), sys: Number(f[12]) / clockTicks() };
}

/** CPU seconds (user + system) consumed so far by process `pid`. */
export function cpuSeconds(pid) {
  const c = cpuSplit(pid);
  return c.user + c.sys;
}

export function procComm(pid) {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return null; }
}

function cpuTotals() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]; // "cpu  user nice system idle iowait irq softirq steal ..."
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] || 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { idle, total };
}

/** Busy share of all CPUs (0..1) over `ms` milliseconds: how loaded the machine is by others. */
export async function machineBusy(ms = 1000) {
  const a = cpuTotals();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTotals();
  const dt = b.total - a.total;
  return dt > 0 ? 1 - (b.idle - a.idle) / dt : 0;
}
