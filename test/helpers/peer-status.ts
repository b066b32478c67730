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
