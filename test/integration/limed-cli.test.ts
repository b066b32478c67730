/**
 * The `limed` command as an operator meets it: help, bad usage and bad configuration
 * (exit 2, one line naming the field), missing privilege, socket in use and device busy
 * (exit 1), and a clean stop that removes its devices and socket (exit 0).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LIMECTL, LIMED, LimedProcess } from '../../src/demo/limed-process.js';
import { linkExists } from '../../src/demo/netns.js';
import { describeAsRoot } from '../helpers/root.js';

const dir = mkdtempSync(join(tmpdir(), 'lime-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

function limed(args: string[], opts: { prefix?: string[] } = {}): { code: number | null; stdout: string; stderr: string } {
  const cmd = opts.prefix ?? [];
  const r = spawnSync(cmd[0] ?? process.execPath, [...cmd.slice(1), ...(cmd.length ? [process.execPath] : []), LIMED, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('limed command line', () => {
  it('documents the configuration and exit codes in --help', () => {
    const r = limed(['--help']);
    expect(r.code).toBe(0);
    for (const s of ['--config', 'site:', 'socket:', 'ports:', 'mtu:', 'mac:', 'aging_seconds', 'monitor_queue_bytes', 'journal_compact_entries', 'replication_window_entries', 'Exit codes', 'SIGTERM']) expect(r.stdout).toContain(s);
  });

  it('exits 2 without --config', () => {
    const r = limed([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('limed: a configuration file is required: --config FILE\n');
    expect(limed(['--check-config']).stderr).toContain('--config FILE or --check-config FILE');
  });

  it('exits 2 on an unknown option', () => {
    const r = limed(['--config', 'x', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--bogus'");
  });

  it('exits 2 when the file cannot be read', () => {
    const r = limed(['--config', join(dir, 'missing.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`limed: ${join(dir, 'missing.yaml')}: cannot read the configuration file (ENOENT)`);
  });

  it('exits 2 naming the bad field of an invalid config, before touching any device', () => {
    const f = config('bad-mtu.yaml', 'site: a\nports:\n  - { name: limec-x, type: tap, mtu: 20 }\n');
    const r = limed(['--config', f]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`limed: ${f}: ports[0].mtu: expected an integer from 68 to 9000, got 20`);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(linkExists('limec-x')).toBe(false);
  });

  it('exits 2 on a duplicate port name', () => {
    const f = config('dup.yaml', 'site: a\nports:\n  - { name: vm1, type: tap }\n  - { name: vm1, type: tap }\n');
    const r = limed(['--config', f]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`limed: ${f}: ports[1].name: duplicate port name "vm1" (also ports[0])`);
  });

  it('limectl stays quiet when its reader goes away (limectl ... | head)', () => {
    // `true` exits at once without reading: limectl's write then meets a closed pipe.
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${LIMECTL}" --help | true; echo "status=\${PIPESTATUS[0]}" >&2`], { encoding: 'utf8' });
    expect(r.stderr).not.toContain('EPIPE');
    expect(r.stderr).toContain('status=0');
  });

  it('--check-config validates without starting', () => {
    const f = config('ok.yaml', `site: a\nsocket: ${join(dir, 'never.sock')}\nports:\n  - { name: limec-never, type: tap }\n`);
    for (const argv of [['--config', f, '--check-config'], ['--check-config', f], ['--check-config', f, '--config', f]]) {
      const r = limed(argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.stdout).toBe(`limed: ${f}: configuration is valid (site a, 1 port(s))\n`);
    }
    expect(existsSync(join(dir, 'never.sock'))).toBe(false);
    expect(linkExists('limec-never')).toBe(false);
  });

  it('--check-config FILE names the bad field and exits 2; two different files are refused', () => {
    const bad = config('check-bad.yaml', 'site: a\nports:\n  - { name: vm1, type: tap, mtu: 20 }\n');
    const r = limed(['--check-config', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`limed: ${bad}: ports[0].mtu: expected an integer from 68 to 9000, got 20`);
    const other = limed(['--check-config', bad, '--config', join(dir, 'other.yaml')]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('name different files');
  });
});

describeAsRoot('limed runtime failures and clean stop (root)', () => {
  it('exits 1 with the errno and device when it lacks CAP_NET_ADMIN', () => {
    const f = config('noperm.yaml', `site: a\nsocket: ${join(dir, 'noperm.sock')}\nports:\n  - { name: limec-np, type: tap }\n`);
    const r = limed(['--config', f], { prefix: ['setpriv', '--bounding-set=-net_admin', '--inh-caps=-net_admin', '--'] });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('limed: EPERM: cannot create TAP limec-np: need CAP_NET_ADMIN');
    expect(linkExists('limec-np')).toBe(false);
    expect(existsSync(join(dir, 'noperm.sock'))).toBe(false);
  });

  it('exits 1 when the management socket is in use, and 1 when a device is busy', async () => {
    const first = new LimedProcess({ ports: [{ name: 'limec-a' }] });
    await first.start();
    try {
      const sameSocket = config('same-socket.yaml', `site: b\nsocket: ${first.socket}\nports:\n  - { name: limec-b, type: tap }\n`);
      const r = limed(['--config', sameSocket]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`management socket ${first.socket} is already in use`);
      // The failed daemon removed what it had created; the first one is untouched.
      expect(linkExists('limec-b')).toBe(false);
      expect(linkExists('limec-a')).toBe(true);

      const sameDevice = config('same-device.yaml', `site: c\nsocket: ${join(dir, 'c.sock')}\nports:\n  - { name: limec-a, type: tap }\n`);
      const r2 = limed(['--config', sameDevice]);
      expect(r2.code).toBe(1);
      expect(r2.stderr).toMatch(/limed: EBUSY: cannot create TAP limec-a/);
      expect((await first.showJson()).site).toBe('test');
    } finally {
      expect(await first.stop()).toBe(0);
      first.cleanup();
    }
  });

  it('stops cleanly on SIGTERM and on SIGINT, removing its devices and socket', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const d = new LimedProcess({ ports: [{ name: 'limec-s1' }, { name: 'limec-s2', device: 'limec-s2dev' }] });
      await d.start();
      expect(linkExists('limec-s1')).toBe(true);
      expect(linkExists('limec-s2dev')).toBe(true);
      const exited = new Promise<number | null>((r) => d.child!.once('exit', (code) => r(code)));
      d.child!.kill(signal);
      expect(await exited).toBe(0);
      expect(linkExists('limec-s1')).toBe(false);
      expect(linkExists('limec-s2dev')).toBe(false);
      expect(existsSync(d.socket)).toBe(false);
      expect(d.stdout).toContain('stopping');
      d.cleanup();
    }
  });

  it('adds and deletes ports at run time through limectl, with clear errors', async () => {
    const d = new LimedProcess({ ports: [{ name: 'limec-r1' }] });
    await d.start();
    try {
      const add = await d.ctl(['--json', 'add-port', 'limec-r2', '--mtu', '9000', '--mac', '02:00:00:00:aa:02']);
      expect(add.code).toBe(0);
      expect(JSON.parse(add.stdout)).toMatchObject({ name: 'limec-r2', number: 2, type: 'tap', state: 'up', mtu: 9000, mac: '02:00:00:00:aa:02' });
      expect(linkExists('limec-r2')).toBe(true);
      const dup = await d.ctl(['add-port', 'limec-r2']);
      expect(dup.code).toBe(1);
      expect(dup.stderr).toContain('port limec-r2 already exists');
      const del = await d.ctl(['del-port', 'limec-r2']);
      expect(del.code).toBe(0);
      expect(linkExists('limec-r2')).toBe(false);
      const missing = await d.ctl(['del-port', 'limec-r2']);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('no port named limec-r2');
      expect((await d.showJson()).ports.map((p: { name: string }) => p.name)).toEqual(['limec-r1']);
    } finally {
      expect(await d.stop()).toBe(0);
      d.cleanup();
    }
  });

  it('marks a port down when its device is deleted under it, and keeps running', async () => {
    const d = new LimedProcess({ ports: [{ name: 'limec-g1' }, { name: 'limec-g2' }] });
    await d.start();
    try {
      execFileSync('ip', ['link', 'del', 'limec-g1']);
      const deadline = Date.now() + 5000;
      let state = 'up';
      while (state !== 'down' && Date.now() < deadline) {
        state = (await d.showJson()).ports.find((p: { name: string }) => p.name === 'limec-g1').state;
        if (state !== 'down') await new Promise((r) => setTimeout(r, 50));
      }
      expect(state).toBe('down');
      const show = await d.showJson();
      expect(show.ports.find((p: { name: string }) => p.name === 'limec-g2').state).toBe('up');
      expect(d.stdout).toContain('port limec-g1 is down');
    } finally {
      expect(await d.stop()).toBe(0);
      d.cleanup();
    }
  });
});
