/**
 * The management socket serves root only: its mode (0600) keeps other users out, and its
 * peer-credential check refuses them even when the mode has been loosened. The
 * unprivileged user is real: limectl runs as `nobody` under setpriv.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LIMECTL, LimedProcess } from '../../src/demo/limed-process.js';
import { describeAsRoot } from '../helpers/root.js';

const NOBODY = '65534';

/** limectl as the unprivileged user nobody. */
function limectlAsNobody(socket: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('setpriv', ['--reuid', NOBODY, '--regid', NOBODY, '--clear-groups', '--', process.execPath, LIMECTL, '--socket', socket, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describeAsRoot('management socket privilege (root only)', () => {
  let limed: LimedProcess;

  beforeAll(async () => {
    limed = new LimedProcess({ site: 'priv', ports: [{ name: 'limepv-p1' }] });
    await limed.start();
  });

  afterAll(async () => {
    const code = await limed?.stop();
    limed?.cleanup();
    expect(code).toBe(0);
  });

  it('the socket has mode 0600, and nobody cannot connect to it', () => {
    expect(statSync(limed.socket).mode & 0o777).toBe(0o600);
    const r = limectlAsNobody(limed.socket, ['show']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/EACCES|permission denied/i);
  });

  it('with the mode loosened, the peer credentials still refuse nobody; root is served', async () => {
    chmodSync(dirname(limed.socket), 0o755);
    chmodSync(limed.socket, 0o666);
    const r = limectlAsNobody(limed.socket, ['show']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('permission denied: user id 65534 is not root; the management socket serves root only');
    // A request that would change something is refused the same way, and nothing changed.
    const del = limectlAsNobody(limed.socket, ['del-port', 'limepv-p1']);
    expect(del.code).toBe(1);
    expect(del.stderr).toContain('permission denied');
    const show = await limed.showJson();
    expect(show.ports.map((p: { name: string }) => p.name)).toEqual(['limepv-p1']);
    expect(limed.stdout).toContain('management connection refused');
  });
});
