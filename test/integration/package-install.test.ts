/**
 * The package as an operator installs it: `npm pack`, then `npm install -g` of the tarball
 * into a scratch prefix (the native addon is compiled by the install). The installed
 * `limed` and `limectl` then work from the prefix's bin directory: limed validates a
 * configuration, runs with a TAP port, and limectl talks to it. The systemd unit and the
 * protobuf schema ship in the package.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { linkExists, waitFor } from '../../src/demo/netns.js';
import { describeAsRoot } from '../helpers/root.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'lime-pkg-'));
const prefix = join(dir, 'prefix');
const bin = (name: string): string => join(prefix, 'bin', name);

function sh(cmd: string, args: string[], cwd = dir): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describeAsRoot('npm pack and npm install -g give working limed and limectl', () => {
  beforeAll(() => {
    const pack = sh('npm', ['pack', '--pack-destination', dir, '--silent'], ROOT);
    expect(pack.code, pack.out).toBe(0);
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    // The dependencies come from npm's cache when it has them (CI has just run npm ci).
    const install = sh('npm', ['install', '-g', '--prefix', prefix, join(dir, tarball!), '--allow-scripts=lime,cap,raw-socket', '--prefer-offline', '--no-audit', '--no-fund']);
    expect(install.code, install.out).toBe(0);
  }, 240_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('installs both commands, the compiled addon, the unit file and the schema', () => {
    for (const name of ['limed', 'limectl']) expect(existsSync(bin(name)), name).toBe(true);
    const pkg = join(prefix, 'lib', 'node_modules', 'lime');
    for (const f of ['native/build/Release/lime_tap.node', 'packaging/limed.service', 'packaging/grafana-dashboard.json', 'src/proto/lime.proto', 'README.md']) expect(existsSync(join(pkg, f)), f).toBe(true);
    // Nothing of the checkout's tests, benchmarks or sources beyond what runs.
    for (const f of ['test', 'bench', 'src/daemon']) expect(existsSync(join(pkg, f)), f).toBe(false);
    const help = sh(bin('limectl'), ['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('Usage: limectl');
  });

  it('the installed limed checks a configuration and runs; the installed limectl talks to it', async () => {
    const socket = join(dir, 'limed.sock');
    const config = join(dir, 'limed.yaml');
    writeFileSync(config, `site: pkg\nsocket: ${socket}\nports:\n  - { name: limepk-p1, type: tap }\n`);
    const check = sh(bin('limed'), ['--check-config', config]);
    expect(check.code, check.out).toBe(0);
    expect(check.out).toContain('configuration is valid (site pkg, 1 port(s))');

    const limed = spawn(bin('limed'), ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    limed.stdout.setEncoding('utf8').on('data', (d: string) => (log += d));
    limed.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
    const exited = new Promise<number | null>((r) => limed.once('exit', (code) => r(code)));
    try {
      await waitFor('the installed limed to create its TAP', () => linkExists('limepk-p1'), 15_000);
      await waitFor('its management socket', () => existsSync(socket), 15_000);
      const show = sh(bin('limectl'), ['--socket', socket, 'show', '--json']);
      expect(show.code, show.out + log).toBe(0);
      expect(JSON.parse(show.out)).toMatchObject({ site: 'pkg', ports: [{ name: 'limepk-p1', type: 'tap' }] });
    } finally {
      limed.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(linkExists('limepk-p1')).toBe(false);
  });
});
