/**
 * The `limits` of the replicated flow table reach the components that enforce them
 * (daemon/peering.ts): journal_compact_entries sets when the journal is compacted (counted,
 * its size reported), replication_window_entries sets the writer's window, so a follower
 * that was away for more entries than that resyncs instead of resuming. Real journals in a
 * temporary directory, real control channels on loopback; no root needed.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig, type Config } from '../../../src/daemon/config.js';
import { FlowService } from '../../../src/daemon/flows.js';
import { Peering, replicaOptions } from '../../../src/daemon/peering.js';
import type { ReplOp } from '../../../src/proto/schema.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
const open: Peering[] = [];

afterEach(async () => {
  for (const p of open.splice(0)) await p.stop().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'lime-limits-'));
  dirs.push(d);
  return d;
}

function flowService(): FlowService {
  return new FlowService({ now: () => Date.now(), ports: { numberOf: () => undefined, nameOf: () => undefined } });
}

async function openPeering(config: Config, flows = flowService()): Promise<{ peering: Peering; flows: FlowService }> {
  const peering = await Peering.open(config, flows, () => Date.now(), log);
  open.push(peering);
  await peering.start(log);
  return { peering, flows };
}

/** One flow-mod per entry; every flow's text has the same length, so every record the same size. */
const addFlow = (i: number): ReplOp => ({
  op: 'flow_mods',
  flow_mods: { command: 'ADD', text: { flows: [`priority=100,udp,tp_dst=${10_000 + i},actions=drop`], lines: [1], source: '', more: false } },
});

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('limits reach the replicated table', () => {
  it('replicaOptions: the writer\'s window is limits.replication_window_entries (default 20000)', () => {
    expect(replicaOptions(parseConfig('site: a\n'))).toEqual({ windowEntries: 20_000 });
    expect(replicaOptions(parseConfig('site: a\nlimits: { replication_window_entries: 1000 }\n'))).toEqual({ windowEntries: 1000 });
  });

  it('journal_compact_entries: the journal is compacted every that many records, counted, and stays bounded', async () => {
    const dir = tmp();
    const config = parseConfig(`site: a\nstate_dir: ${dir}\nlimits: { journal_compact_entries: 100 }\n`);
    const { peering } = await openPeering(config);
    for (let i = 0; i < 50; i++) await peering.submit(addFlow(i));
    const s50 = peering.status();
    expect(s50.compactions).toBe(0);
    expect(s50.journal_bytes).toBeGreaterThan(0);
    const record = s50.journal_bytes / 50;
    expect(Number.isInteger(record)).toBe(true);
    for (let i = 50; i < 350; i++) await peering.submit(addFlow(i));
    await vi.waitFor(() => expect(peering.status().compactions).toBeGreaterThanOrEqual(3));
    const s = peering.status();
    // Without compaction the journal would hold all 350 records.
    expect(s.journal_bytes).toBeLessThan(200 * record);
    await peering.stop();
    open.length = 0;
    expect(statSync(join(dir, 'journal')).size).toBe(s.journal_bytes);
    // Nothing was lost to compaction: the snapshot plus the journal restore every flow.
    const flows = flowService();
    await openPeering(config, flows);
    expect(flows.dumpFlows({ match: 'udp', strict: false })).toHaveLength(350);
  });

  it('replication_window_entries: a follower away for fewer entries resumes, for more it resyncs', async () => {
    const port = await freePort();
    const dirA = tmp();
    const dirB = tmp();
    const writerConfig = parseConfig(
      `site: a\nlisten: "127.0.0.1:${port}"\npeer: { name: b, address: "127.0.0.1:${port}" }\ninsecure: true\nstate_dir: ${dirA}\nlimits: { replication_window_entries: 1000 }\n`,
    );
    const followerConfig = parseConfig(
      `site: b\npeer: { name: a, address: "127.0.0.1:${port}" }\ninsecure: true\nstate_dir: ${dirB}\nlimits: { journal_compact_entries: 100 }\n`,
    );
    const { peering: a } = await openPeering(writerConfig);
    let b = (await openPeering(followerConfig)).peering;
    await vi.waitFor(() => expect(a.status().connected && b.status().connected).toBe(true), { timeout: 10_000 });
    await a.syncBarrier();
    const first = a.status();
    expect(first).toMatchObject({ role: 'writer', resyncs: 1, resumes: 0 }); // the follower started empty

    let next = 0;
    const awayFor = async (entries: number): Promise<void> => {
      await b.stop();
      open.splice(open.indexOf(b), 1);
      await vi.waitFor(() => expect(a.status().connected).toBe(false), { timeout: 10_000 });
      await Promise.all(Array.from({ length: entries }, () => a.submit(addFlow(next++))));
      b = (await openPeering(followerConfig)).peering;
      await vi.waitFor(() => expect(a.status().connected && b.status().connected).toBe(true), { timeout: 10_000 });
      await a.syncBarrier();
    };

    await awayFor(900); // within the window of 1000
    expect(a.status()).toMatchObject({ resyncs: 1, resumes: 1 });
    // The follower's journal is bounded too: it grew by the writer's 900 entries.
    await vi.waitFor(() => expect(b.status().compactions).toBeGreaterThanOrEqual(1));
    expect(b.status().journal_bytes).toBeLessThan(statSync(join(dirA, 'journal')).size);
    await awayFor(1100); // beyond it (the default window, 20000, would resume)
    expect(a.status()).toMatchObject({ resyncs: 2, resumes: 1 });
    await vi.waitFor(() => expect(b.status().seq).toBe(a.status().seq));
  }, 60_000);
});
