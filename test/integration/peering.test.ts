/**
 * Two limed sites peered over the control channel (mutual TLS across the WAN link), each
 * with a host behind a TAP port and a GRE tunnel to the other for the data: the logical
 * flow table is one table at both sites, changes are acknowledged only when applied at
 * both, and `kill -9` of either site loses nothing that was acknowledged.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { LimedProcess } from '../../src/demo/limed-process.js';
import { describeWhen, ROOT } from '../helpers/root.js';
import { haveOpenssl, makeTestCerts, type TestCerts } from '../helpers/certs.js';
import { baseSites, HOST_A, HOST_B, startLimed, WAN_A, WAN_B, type Sites } from '../helpers/sites.js';

const dir = mkdtempSync(join(tmpdir(), 'lime-peering-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let certs: TestCerts;
let sites: Sites | undefined;

/** Both limeds: host TAP + GRE to the other site; peered over TLS on the WAN addresses. */
async function peeredSites(prefix: string): Promise<Sites> {
  const s = baseSites(prefix);
  sites = s;
  const files = (side: 'a' | 'b') => {
    const id = side === 'a' ? certs.siteA : certs.siteB;
    const base = join(dir, `${prefix}-${side}`);
    writeFileSync(`${base}.ca.pem`, certs.ca);
    writeFileSync(`${base}.pem`, id.cert);
    writeFileSync(`${base}.key`, id.key, { mode: 0o600 });
    return { ca: `${base}.ca.pem`, cert: `${base}.pem`, key: `${base}.key` };
  };
  const gre = (remote: string) => ({ name: 'wan', type: 'gre' as const, remote_ip: remote, key: 77 });
  await startLimed(s, 'a', [gre(WAN_B)], {
    config: { listen: `${WAN_A}:6640`, peer: { name: 'site-b', address: `${WAN_B}:6640`, dead_peer_ms: 1000 }, tls: files('a'), state_dir: join(dir, `${prefix}-state-a`) },
  });
  await startLimed(s, 'b', [gre(WAN_A)], {
    config: { listen: `${WAN_B}:6640`, peer: { name: 'site-a', address: `${WAN_A}:6640`, dead_peer_ms: 1000 }, tls: files('b'), state_dir: join(dir, `${prefix}-state-b`) },
  });
  await waitPeered(s.limedA!);
  await waitPeered(s.limedB!);
  return s;
}

async function peerStatus(l: LimedProcess): Promise<{ connected: boolean; role: string; seq: number; tls_identity: string }> {
  const r = await l.ctl(['peer', 'status', '--json']);
  if (r.code !== 0) throw new Error(`limectl peer status: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function waitPeered(l: LimedProcess, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await peerStatus(l).catch(() => undefined))?.connected) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the sites did not peer');
}

/** The flows of a site as comparable text (no counters, no durations). */
async function flowsOf(l: LimedProcess): Promise<string[]> {
  const r = await l.ctl(['dump-flows', '--json']);
  if (r.code !== 0) throw new Error(`dump-flows: ${r.stderr}`);
  const flows = JSON.parse(r.stdout) as Array<{ table: number; priority: number; cookie: string; match: string; actions: string; idle_timeout: number; hard_timeout: number }>;
  return flows.map((f) => `table=${f.table},priority=${f.priority},cookie=${f.cookie},${f.match},idle=${f.idle_timeout},hard=${f.hard_timeout},actions=${f.actions}`).sort();
}

function pingOk(s: Sites, from: 'a' | 'b', count = 1): boolean {
  const ns = from === 'a' ? s.hostA : s.hostB;
  const dst = from === 'a' ? HOST_B : HOST_A;
  return s.net.tryExec(ns, 'ping', ['-c', String(count), '-W', '1', '-i', '0.2', dst]);
}

describeWhen(ROOT && haveOpenssl(), 'root and openssl', 'peered sites', () => {
  beforeAll(() => {
    certs = makeTestCerts();
  });
  afterEach(async () => {
    await sites?.destroy();
    sites = undefined;
  });

  it('one logical table: a flow added at A is enforced at B for the next packet after limectl returns, and the reverse', async () => {
    const s = await peeredSites('limepa');
    expect(await peerStatus(s.limedA!)).toMatchObject({ role: 'writer', connected: true, tls_identity: expect.stringContaining('site-b') });
    expect(await peerStatus(s.limedB!)).toMatchObject({ role: 'follower', connected: true, tls_identity: expect.stringContaining('site-a') });
    expect(pingOk(s, 'b', 3)).toBe(true);
    // Added at A (the writer); it drops what B's host sends, at B's ingress.
    const add = await s.limedA!.ctl(['add-flow', 'priority=300,in_port=host,dl_type=0x0800,nw_src=10.61.0.2,actions=drop']);
    expect(add.code, add.stderr).toBe(0);
    expect(pingOk(s, 'b')).toBe(false);
    // Removed at B (the follower: forwarded to the writer), effective at once.
    const del = await s.limedB!.ctl(['del-flows', '--strict', 'priority=300,in_port=host,dl_type=0x0800,nw_src=10.61.0.2']);
    expect(del.code, del.stderr).toBe(0);
    expect(pingOk(s, 'b')).toBe(true);
    // Changes made at both sites end in the same table at both.
    const adds = [];
    for (let i = 0; i < 20; i++) {
      const at = i % 2 === 0 ? s.limedA! : s.limedB!;
      adds.push(at.ctl(['add-flow', `priority=${1000 + i},dl_type=0x0800,nw_dst=10.99.${i}.0/24,actions=drop`]));
    }
    for (const r of await Promise.all(adds)) expect(r.code, r.stderr).toBe(0);
    const [fa, fb] = [await flowsOf(s.limedA!), await flowsOf(s.limedB!)];
    expect(fa).toEqual(fb);
    expect(fa.filter((f) => f.includes('10.99.'))).toHaveLength(20);
  });

  it('a site without a peer but with state_dir keeps its acknowledged flows across kill -9', async () => {
    const s = baseSites('limeps');
    sites = s;
    const limed = await startLimed(s, 'a', [], { config: { state_dir: join(dir, 'limeps-state') } });
    for (let i = 0; i < 30; i++) {
      const r = await limed.ctl(['add-flow', `priority=${500 + i},dl_type=0x0800,nw_dst=10.55.${i}.0/24,actions=drop`]);
      expect(r.code, r.stderr).toBe(0);
    }
    const del = await limed.ctl(['del-flows', '--strict', 'priority=500,dl_type=0x0800,nw_dst=10.55.0.0/24']);
    expect(del.code, del.stderr).toBe(0);
    const before = await flowsOf(limed);
    await limed.kill9();
    await limed.start();
    expect(await flowsOf(limed)).toEqual(before);
    expect(before.filter((f) => f.includes('10.55.'))).toHaveLength(29);
    expect(await peerStatus(limed)).toMatchObject({ role: 'writer', connected: false, seq: 31 });
  });

  it('kill -9 of either site during a stream of flow-mods loses no acknowledged flow-mod; the sites converge', async () => {
    const s = await peeredSites('limepk');
    for (const [victim, writerSide] of [['b', true], ['a', false]] as const) {
      const acked: string[] = [];
      const target = victim === 'b' ? s.limedB! : s.limedA!;
      const issuer = writerSide ? s.limedA! : s.limedB!;
      let stop = false;
      const stream = (async () => {
        for (let i = 0; !stop && i < 400; i++) {
          const flow = `priority=${2000 + i},dl_type=0x0800,nw_dst=10.${victim === 'b' ? 98 : 97}.${i % 250}.${Math.floor(i / 250)},actions=drop`;
          const r = await issuer.ctl(['add-flow', flow]);
          if (r.code === 0) acked.push(`priority=${2000 + i}`);
        }
      })();
      await new Promise((r) => setTimeout(r, 1500));
      await target.kill9();
      stop = victim === 'a'; // the writer's stream stops with the writer (its limectl fails)
      await new Promise((r) => setTimeout(r, 500));
      await target.start();
      stop = true;
      await stream;
      await waitPeered(s.limedA!);
      await waitPeered(s.limedB!);
      const b = await s.limedB!.ctl(['sync', 'barrier']);
      expect(b.code, b.stderr).toBe(0);
      const [fa, fb] = [await flowsOf(s.limedA!), await flowsOf(s.limedB!)];
      expect(fb).toEqual(fa);
      expect(acked.length).toBeGreaterThan(5);
      for (const p of acked) expect(fa.some((f) => f.includes(`${p},`)), `acknowledged ${p}`).toBe(true);
    }
  });
});
