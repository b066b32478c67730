/**
 * A small rig for building test topologies out of network namespaces: create namespaces,
 * move devices into them, run commands inside, and tear everything down. Used by the demo
 * and the integration tests. Everything it creates carries the caller's `lime…` prefix
 * and is removed by `destroy()`, which is safe to call more than once.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';

export function run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: opts.timeoutMs ?? 30_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
}

/** Run and return success instead of throwing. */
export function tryRun(cmd: string, args: readonly string[]): boolean {
  try {
    run(cmd, args);
    return true;
  } catch {
    return false;
  }
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function linkExists(dev: string, ns?: string): boolean {
  const args = ns === undefined ? ['link', 'show', 'dev', dev] : ['-n', ns, 'link', 'show', 'dev', dev];
  return tryRun('ip', args);
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000, stepMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export class Netns {
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];

  constructor(readonly prefix: string) {
    if (!prefix.startsWith('lime')) throw new Error(`namespace prefix must start with "lime", got ${prefix}`);
  }

  /** Remove namespaces left over from an earlier run that died with this prefix. */
  static cleanupStale(prefix: string): void {
    let list = '';
    try {
      list = run('ip', ['netns', 'list']);
    } catch {
      return;
    }
    for (const line of list.split('\n')) {
      const name = line.split(' ')[0];
      if (name !== undefined && name.startsWith(prefix)) tryRun('ip', ['netns', 'del', name]);
    }
  }

  /** Create namespace `${prefix}${suffix}` with loopback up; returns its name. */
  add(suffix: string): string {
    const ns = `${this.prefix}${suffix}`;
    if (existsSync(`/run/netns/${ns}`)) tryRun('ip', ['netns', 'del', ns]);
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Move `dev` (in the current namespace) into `ns`, optionally rename, address and bring up. */
  attach(dev: string, ns: string, opts: { addr?: string; rename?: string } = {}): string {
    run('ip', ['link', 'set', 'dev', dev, 'netns', ns]);
    let name = dev;
    if (opts.rename !== undefined) {
      run('ip', ['-n', ns, 'link', 'set', 'dev', dev, 'name', opts.rename]);
      name = opts.rename;
    }
    if (opts.addr !== undefined) run('ip', ['-n', ns, 'addr', 'add', opts.addr, 'dev', name]);
    run('ip', ['-n', ns, 'link', 'set', 'dev', name, 'up']);
    // Checksum offload off: frames then leave the host complete, as on a real wire.
    tryRun('ip', ['netns', 'exec', ns, 'ethtool', '-K', name, 'tx', 'off']);
    return name;
  }

  exec(ns: string, cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  tryExec(ns: string, cmd: string, args: readonly string[]): boolean {
    return tryRun('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** Start a long-running process inside `ns`; it is killed (by PID) by destroy(). */
  spawn(ns: string | undefined, cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    const child =
      ns === undefined ? spawn(cmd, [...args], { stdio: 'pipe', ...opts }) : spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'pipe', ...opts });
    this.children.push(child);
    return child;
  }

  destroy(): void {
    for (const c of this.children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    for (const ns of this.namespaces.splice(0)) tryRun('ip', ['netns', 'del', ns]);
  }
}
