/** `limectl peer status` of a running limed, and waiting until it is peered (integration tests). */
import type { LimedProcess } from '../../src/demo/limed-process.js';

export interface PeerStatus {
  connected: boolean;
  role: string;
  seq: number;
  tls_identity: string;
  resyncs: number;
  resumes: number;
}

export async function peerStatus(l: LimedProcess): Promise<PeerStatus> {
  const r = await l.ctl(['peer', 'status', '--json']);
  if (r.code !== 0) throw new Error(`limectl peer status: ${r.stderr}`);
  return JSON.parse(r.stdout) as PeerStatus;
}

export async function waitPeered(l: LimedProcess, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await peerStatus(l).catch(() => undefined))?.connected) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the sites did not peer');
}

/**
 * `limectl sync barrier` at `l` once the sites are peered. A connection that drops again
 * between the two (a loaded machine: a slow peer declared dead and reconnecting) makes the
 * barrier refuse with "not connected", which is the documented answer: wait and ask again.
 * Returns the last result (code 0 on success).
 */
export async function barrierWhenPeered(l: LimedProcess, timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    await waitPeered(l, Math.max(1000, until - Date.now()));
    const r = await l.ctl(['--timeout', String(timeoutMs), 'sync', 'barrier'], timeoutMs + 30_000);
    if (r.code === 0 || !r.stderr.includes('not connected') || Date.now() > until) return r;
    await new Promise((res) => setTimeout(res, 200));
  }
}
