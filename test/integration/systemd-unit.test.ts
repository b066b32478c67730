/**
 * The systemd unit shipped in the package (packaging/limed.service): `systemd-analyze
 * verify` accepts it, it runs limed with exactly the two capabilities it needs, restarts
 * on failure, and has limed's default directories (configuration, state, runtime). A
 * broken copy is refused, so the check is a real one.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { describeWhen } from '../helpers/root.js';

const UNIT = fileURLToPath(new URL('../../packaging/limed.service', import.meta.url));
const HAVE = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;

/** key → values of the [Service] section (a key may repeat). */
function serviceSection(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^\[(.+)\]$/.exec(line);
    if (m) { section = m[1]!; continue; }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    const k = line.slice(0, eq);
    out.set(k, [...(out.get(k) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

function verify(path: string): { status: number | null; out: string } {
  const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describeWhen(HAVE, 'systemd-analyze', 'packaging/limed.service', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lime-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes systemd-analyze verify', () => {
    const r = verify(UNIT);
    expect(r.status, r.out).toBe(0);
    expect(r.out).not.toMatch(/limed\.service/);
  });

  it('runs limed with CAP_NET_ADMIN and CAP_NET_RAW only, restarts on failure, and has limed\'s directories', () => {
    const s = serviceSection(readFileSync(UNIT, 'utf8'));
    expect(s.get('CapabilityBoundingSet')).toEqual(['CAP_NET_ADMIN CAP_NET_RAW']);
    expect(s.get('AmbientCapabilities')).toEqual(['CAP_NET_ADMIN CAP_NET_RAW']);
    expect(s.get('Restart')).toEqual(['on-failure']);
    expect(s.get('NoNewPrivileges')).toEqual(['yes']);
    // limed's defaults: /etc/lime, /var/lib/lime (state_dir), /run/lime/limed.sock.
    expect(s.get('ConfigurationDirectory')).toEqual(['lime']);
    expect(s.get('StateDirectory')).toEqual(['lime']);
    expect(s.get('RuntimeDirectory')).toEqual(['lime']);
    expect(s.get('ExecStartPre')?.[0]).toMatch(/limed --check-config \/etc\/lime\/limed\.yaml$/);
    expect(s.get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(s.get('ExecStart')?.[0]).toMatch(/limed --config \/etc\/lime\/limed\.yaml$/);
  });

  it('a broken copy is refused (the check is a real one)', () => {
    const broken = join(dir, 'limed.service');
    writeFileSync(broken, readFileSync(UNIT, 'utf8').replace(/^ExecStart=\/usr\/bin\/env /m, 'ExecStart=relative/'));
    const r = verify(broken);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/Neither a valid executable name nor an absolute path|bad unit file setting/);
  });
});
