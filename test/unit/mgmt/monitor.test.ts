/**
 * The management server's flow paths: the monitor event stream (bounded per connection),
 * flow text staged across `more` chunks, and multipart replies.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManagementServer, type LogLevel } from '../../../src/mgmt/server.js';
import type { MgmtEvent, MgmtReply, UnknownBody } from '../../../src/proto/schema.js';
import { FakeManagementService, RawClient, tempDir } from '../../helpers/fake-mgmt.js';

let tmp: ReturnType<typeof tempDir>;
let server: ManagementServer;
let service: FakeManagementService;
let clients: RawClient[];
let logs: Array<{ level: LogLevel; msg: string; fields?: Record<string, unknown> }>;

async function start(monitorQueueBytes?: number): Promise<string> {
  const path = join(tmp.dir, 'limed.sock');
  server = new ManagementServer({
    path,
    service,
    log: (level, msg, fields) => logs.push({ level, msg, ...(fields ? { fields } : {}) }),
    ...(monitorQueueBytes !== undefined ? { monitorQueueBytes } : {}),
  });
  await server.start();
  return path;
}

async function connect(path: string): Promise<RawClient> {
  const c = await RawClient.connect(path);
  clients.push(c);
  return c;
}

beforeEach(() => {
  tmp = tempDir();
  service = new FakeManagementService();
  clients = [];
  logs = [];
});

afterEach(async () => {
  for (const c of clients) c.close();
  await server?.stop();
  tmp.cleanup();
});

const text = (flows: string[], more = false) => ({ flows, lines: flows.map((_, i) => i + 1), source: 'f', more });

function events(replies: Array<MgmtReply | UnknownBody>): MgmtEvent[] {
  return replies.flatMap((r) => (r.body === 'event' ? [r.event] : []));
}

describe('monitor', () => {
  it('answers ok, then streams events with the request id; unsubscribes on close', async () => {
    const path = await start();
    const mon = await connect(path);
    mon.send({ version: 1, id: 7, body: 'monitor', monitor: {} });
    await mon.waitReplies(1);
    expect(mon.replies[0]).toEqual({ version: 1, id: 7, body: 'ok', ok: {} });
    const ctl = await connect(path);
    ctl.send({ version: 1, id: 1, body: 'flow_mods', flow_mods: { command: 'ADD', text: text(['priority=5,udp,actions=drop']) } });
    await ctl.waitReplies(1);
    expect(ctl.replies[0]).toMatchObject({ body: 'flow_mods', flow_mods: { added: 1, modified: 0, removed: 0 } });
    await mon.waitReplies(2);
    expect(mon.replies[1]).toMatchObject({ id: 7, body: 'event', event: { kind: 'added', flow: { priority: 5, match: 'udp', actions: 'drop' } } });
    expect(service.flows.monitorCount).toBe(1);
    mon.close();
    await vi.waitFor(() => expect(service.flows.monitorCount).toBe(0));
  });

  it('drops a monitor client that does not read, with a logged reason, without blocking others', async () => {
    const path = await start(64 * 1024);
    expect(server.monitorsDropped).toBe(0);
    const slow = await connect(path);
    slow.send({ version: 1, id: 1, body: 'monitor', monitor: {} });
    await slow.waitReplies(1);
    slow.socket.pause(); // stop reading: the kernel buffers fill, then the server's queue
    const ctl = await connect(path);
    for (let round = 0; round < 40 && !slow.closed; round++) {
      const flows = Array.from({ length: 500 }, (_, i) => `priority=${i + 1},udp,tp_dst=${round * 500 + i},actions=drop`);
      ctl.send({ version: 1, id: round, body: 'flow_mods', flow_mods: { command: 'ADD', text: text(flows) } });
      await ctl.waitReplies(round + 1);
      await new Promise((r) => setTimeout(r, 5));
      if (logs.some((l) => /too slow/.test(String(l.fields?.['reason'])))) break;
    }
    const line = logs.find((l) => l.msg === 'closing management connection' && /monitor client too slow/.test(String(l.fields?.['reason'])));
    expect(line?.level).toBe('warn');
    expect(server.monitorsDropped).toBe(1); // counted (limectl show: control.monitors_dropped)
    await vi.waitFor(() => expect(service.flows.monitorCount).toBe(0));
    // the daemon still answers
    ctl.send({ version: 1, id: 999, body: 'show', show: {} });
    await ctl.waitReplies(ctl.replies.length + 1);
    expect(ctl.replies.at(-1)!.body).toBe('show');
  });

  it('a request on a monitor connection closes it', async () => {
    const path = await start();
    const mon = await connect(path);
    mon.send({ version: 1, id: 1, body: 'monitor', monitor: {} });
    await mon.waitReplies(1);
    mon.send({ version: 1, id: 2, body: 'show', show: {} });
    await mon.waitClosed();
    expect(logs.some((l) => /request 'show' on a monitor connection/.test(String(l.fields?.['reason'])))).toBe(true);
  });

  it('a flow-removed follows the deleted event only for send_flow_rem flows', async () => {
    const path = await start();
    const mon = await connect(path);
    mon.send({ version: 1, id: 1, body: 'monitor', monitor: {} });
    await mon.waitReplies(1);
    service.flows.flowMods({ command: 'ADD', text: text(['priority=5,hard_timeout=2,send_flow_rem,udp,actions=drop', 'priority=6,hard_timeout=2,tcp,actions=drop']) });
    service.clock += 2000;
    service.flows.sweep();
    await mon.waitReplies(6);
    expect(events(mon.replies).map((e) => [e.kind, e.flow?.priority, e.reason])).toEqual([
      ['added', 5, ''],
      ['added', 6, ''],
      ['deleted', 5, 'hard_timeout'],
      ['flow_removed', 5, 'hard_timeout'],
      ['deleted', 6, 'hard_timeout'],
    ]);
    expect(events(mon.replies)[3]!.flow).toMatchObject({ n_packets: 0, duration_s: 2, hard_timeout: 2, flags: ['send_flow_rem'] });
  });
});

describe('staged flow text and multipart replies', () => {
  it('stages `more` chunks (ok each) and applies them together at the last one', async () => {
    const path = await start();
    const c = await connect(path);
    c.send({ version: 1, id: 1, body: 'flow_mods', flow_mods: { command: 'ADD', text: text(['priority=1,udp,actions=drop'], true) } });
    c.send({ version: 1, id: 2, body: 'flow_mods', flow_mods: { command: 'ADD', text: text(['priority=2,udp,actions=drop'], true) } });
    await c.waitReplies(2);
    expect(c.replies.map((r) => r.body)).toEqual(['ok', 'ok']);
    expect(service.flows.table.size()).toBe(1); // only the table-miss rule so far
    c.send({ version: 1, id: 3, body: 'flow_mods', flow_mods: { command: 'ADD', text: text(['priority=3,udp,actions=drop']) } });
    await c.waitReplies(3);
    expect(c.replies[2]).toMatchObject({ id: 3, body: 'flow_mods', flow_mods: { added: 3 } });
  });

  it('a chunk of another command discards what was staged', async () => {
    const path = await start();
    const c = await connect(path);
    c.send({ version: 1, id: 1, body: 'flow_mods', flow_mods: { command: 'ADD', text: text(['priority=1,udp,actions=drop'], true) } });
    c.send({ version: 1, id: 2, body: 'flow_mods', flow_mods: { command: 'DELETE', text: text([]) } });
    await c.waitReplies(2);
    expect(c.replies[1]).toMatchObject({ body: 'error', error: { code: 'BAD_REQUEST', message: expect.stringMatching(/another request/) } });
    expect(service.flows.table.size()).toBe(1);
  });

  it('staged flows die with the connection', async () => {
    const path = await start();
    const c = await connect(path);
    c.send({ version: 1, id: 1, body: 'flow_mods', flow_mods: { command: 'ADD', text: text(['priority=1,udp,actions=drop'], true) } });
    await c.waitReplies(1);
    c.close();
    const d = await connect(path);
    d.send({ version: 1, id: 2, body: 'flow_mods', flow_mods: { command: 'ADD', text: text(['priority=2,udp,actions=drop']) } });
    await d.waitReplies(1);
    expect(d.replies[0]).toMatchObject({ flow_mods: { added: 1 } });
  });

  it('splits a large dump into parts with the same id, more on all but the last', async () => {
    const path = await start();
    const flows = Array.from({ length: 12_000 }, (_, i) => `priority=${(i % 100) + 1},tcp,nw_src=10.0.${i >> 8}.${i & 255},actions=output:vm2`);
    service.flows.flowMods({ command: 'ADD', text: text(flows) });
    const c = await connect(path);
    c.send({ version: 1, id: 42, body: 'dump_flows', dump_flows: { match: '', strict: false } });
    await vi.waitFor(() => {
      const last = c.replies.at(-1);
      expect(last?.body === 'dump_flows' && !last.dump_flows.more).toBe(true);
    });
    expect(c.replies.length).toBeGreaterThan(1);
    expect(c.replies.every((r) => r.id === 42 && r.body === 'dump_flows')).toBe(true);
    const total = c.replies.reduce((n, r) => n + (r.body === 'dump_flows' ? r.dump_flows.flows.length : 0), 0);
    expect(total).toBe(12_001);
  });

  it('maps flow errors to BAD_REQUEST and service failures to FAILED', async () => {
    const path = await start();
    const c = await connect(path);
    c.send({ version: 1, id: 1, body: 'dump_flows', dump_flows: { match: 'tp_dst=1', strict: false } });
    c.send({ version: 1, id: 2, body: 'trace', trace: { packet: '' } });
    c.send({ version: 1, id: 3, body: 'trace', trace: { packet: 'in_port=vm1,ip' } });
    await c.waitReplies(3);
    expect(c.replies[0]).toMatchObject({ body: 'error', error: { code: 'BAD_REQUEST', message: expect.stringMatching(/tp_dst requires/) } });
    expect(c.replies[1]).toMatchObject({ body: 'error', error: { code: 'BAD_REQUEST', message: 'trace: a packet description is required' } });
    expect(c.replies[2]).toMatchObject({ body: 'error', error: { code: 'FAILED', message: 'no trace result set' } });
  });
});
