/**
 * Run `limed` as a child process (the demo, the integration tests and the benchmarks
 * drive the real daemon, exactly as an operator would), and call `limectl` against it.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { linkExists, waitFor } from './netns.js';

/** The package root (the folder holding package.json and dist/). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LIMED = join(PACKAGE_ROOT, 'dist', 'bin', 'limed.js');
export const LIMECTL = join(PACKAGE_ROOT, 'dist', 'bin', 'limectl.js');

/** A port entry of limed's configuration (see src/daemon/config.ts); `type` defaults to tap. */
export interface LimedPortConfig {
  name: string;
  type?: 'tap' | 'system' | 'gre';
  mtu?: number;
  mac?: string;
  device?: string;
  /** gre and system settings, as in the configuration (remote_ip, key, path_mtu, offloads …). */
  [setting: string]: unknown;
}

export interface LimedOptions {
  site?: string;
  ports: LimedPortConfig[];
  macTable?: { capacity?: number; aging_seconds?: number };
  /** Run limed inside this network namespace. */
  netns?: string;
  logLevel?: string;
  /** More top-level configuration (listen, peer, tls, state_dir, table_miss …), as in limed.yaml. */
  config?: Record<string, unknown>;
}

export interface CtlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function limectl(socket: string, args: readonly string[], timeoutMs = 10_000): Promise<CtlResult> {
  return new Promise((res) => {
    execFile(process.execPath, [LIMECTL, '--socket', socket, ...args], { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      res({ code, stdout, stderr });
    });
  });
}

export class LimedProcess {
  readonly dir: string;
  readonly socket: string;
  readonly configPath: string;
  child: ChildProcess | undefined;
  stdout = '';
  stderr = '';
  private exitPromise: Promise<number | null> | undefined;

  constructor(private readonly opts: LimedOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'lime-'));
    this.socket = join(this.dir, 'limed.sock');
    this.configPath = join(this.dir, 'limed.yaml');
    const cfg = {
      site: opts.site ?? 'test',
      socket: this.socket,
      log_level: opts.logLevel ?? 'info',
      ...(opts.macTable !== undefined ? { mac_table: opts.macTable } : {}),
      ports: opts.ports.map((p) => ({ type: 'tap', ...p })),
      ...(opts.config ?? {}),
    };
    writeFileSync(this.configPath, JSON.stringify(cfg, null, 2));
  }

  /** Start limed and wait until every port's device exists and the socket answers. */
  async start(timeoutMs = 15_000): Promise<void> {
    const args = [LIMED, '--config', this.configPath];
    const child =
      this.opts.netns === undefined
        ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('ip', ['netns', 'exec', this.opts.netns, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exitPromise = new Promise((r) => child.once('exit', (code) => r(code)));
    // limed creates the TAP devices; system ports attach existing ones, gre ports have none.
    const devices = this.opts.ports.filter((p) => (p.type ?? 'tap') === 'tap').map((p) => p.device ?? p.name);
    let exited = false;
    void this.exitPromise.then(() => (exited = true));
    await waitFor(
      'limed to create its devices',
      () => {
        if (exited) throw new Error(`limed exited during start: ${this.stderr.trim() || this.stdout.trim()}`);
        return devices.every((d) => linkExists(d, this.opts.netns));
      },
      timeoutMs,
    );
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await limectl(this.socket, ['show', '--json']);
      if (r.code === 0) break;
      if (exited) throw new Error(`limed exited during start: ${this.stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`limed did not answer on ${this.socket}: ${r.stderr}`);
      await new Promise((r2) => setTimeout(r2, 50));
    }
  }

  ctl(args: readonly string[], timeoutMs?: number): Promise<CtlResult> {
    return limectl(this.socket, args, timeoutMs);
  }

  async showJson(): Promise<any> {
    const r = await this.ctl(['show', '--json']);
    if (r.code !== 0) throw new Error(`limectl show failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  /** SIGTERM and wait for exit; returns the exit code. */
  async stop(timeoutMs = 10_000): Promise<number | null> {
    const child = this.child;
    if (child === undefined || this.exitPromise === undefined) return null;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await this.exitPromise;
    clearTimeout(timer);
    return code;
  }

  /** SIGKILL (a crash at an arbitrary moment) and wait for the exit. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (child === undefined || this.exitPromise === undefined) return;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await this.exitPromise;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
