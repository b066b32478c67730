/**
 * limectl's flow commands against a real ManagementServer whose service is the fake of
 * test/helpers/fake-mgmt.ts — with the real FlowService (parser, flow table) behind it, on a
 * fake clock and the fake's ports vm1 (1) and vm2 (2).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../../src/cli/limectl.js';
import { chunkFlows } from '../../../src/cli/flows.js';
import { ManagementServer } from '../../../src/mgmt/server.js';
import { KEY_WORDS } from '../../../src/packet/key.js';
import { FakeManagementService, tempDir } from '../../helpers/fake-mgmt.js';

let tmp: ReturnType<typeof tempDir>;
let server: ManagementServer;
let service: FakeManagementService;
let socket: string;

beforeEach(async () => {
  tmp = tempDir();
  service = new FakeManagementService();
  socket = join(tmp.dir, 'limed.sock');
  server = new ManagementServer({ path: socket, service });
  await server.start();
  vi.stubEnv('LIME_SOCKET', undefined);
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await server.stop();
  tmp.cleanup();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function ctl(...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main(['--socket', socket, ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  });
  return { code, stdout, stderr };
}

function file(name: string, text: string): string {
  const path = join(tmp.dir, name);
  writeFileSync(path, text);
  return path;
}

async function dumpJson(match?: string): Promise<Array<Record<string, unknown>>> {
  const r = await ctl('dump-flows', ...(match === undefined ? [] : [match]), '--json');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
}

async function dumpText(): Promise<string> {
  return (await ctl('dump-flows')).stdout;
}

describe('add-flow / dump-flows', () => {
  it('adds a flow with named ports and dumps it in the ovs-ofctl layout, sorted by priority', async () => {
    expect(await ctl('add-flow', 'priority=100,in_port=vm1,tcp,tp_dst=22,actions=output:vm2')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect((await ctl('add-flow', 'cookie=0x1f,idle_timeout=10,send_flow_rem,ip,nw_dst=10.1.0.0/16,actions=drop')).code).toBe(0);
    service.clock += 1234;
    expect(await dumpText()).toBe(
      [
        ' cookie=0x1f, duration=1.234s, table=0, n_packets=0, n_bytes=0, idle_timeout=10, send_flow_rem ip,nw_dst=10.1.0.0/16 actions=drop',
        ' cookie=0x0, duration=1.234s, table=0, n_packets=0, n_bytes=0, priority=100,tcp,in_port=vm1,tp_dst=22 actions=output:vm2',
        ' cookie=0x0, duration=1.234s, table=0, n_packets=0, n_bytes=0, priority=0 actions=NORMAL',
        '',
      ].join('\n'),
    );
  });

  it('--json prints an array with the contract fields', async () => {
    await ctl('add-flow', 'table=1,priority=7,cookie=0xabc,hard_timeout=30,udp,actions=mod_tp_dst:53,output:2');
    service.clock += 500;
    const flows = await dumpJson('table=1');
    expect(flows).toEqual([
      {
        table: 1,
        priority: 7,
        cookie: '0xabc',
        match: 'udp',
        actions: 'mod_tp_dst:53,output:vm2',
        n_packets: 0,
        n_bytes: 0,
        duration_s: 0.5,
        idle_timeout: 0,
        hard_timeout: 30,
        flags: [],
      },
    ]);
  });

  it('dump-flows MATCH selects non-strictly, --strict exactly', async () => {
    await ctl('add-flow', 'priority=10,tcp,actions=drop');
    await ctl('add-flow', 'priority=20,tcp,tp_dst=80,actions=drop');
    expect((await dumpJson('tcp')).map((f) => f['priority'])).toEqual([20, 10]);
    const r = await ctl('dump-flows', '--strict', 'priority=10,tcp', '--json');
    expect(JSON.parse(r.stdout).map((f: { priority: number }) => f.priority)).toEqual([10]);
  });

  it('reports counters credited by the data path', async () => {
    await ctl('add-flow', 'priority=5,udp,actions=drop');
    const rule = service.flows.table.dump().find((r) => r.priority === 5)!;
    service.flows.table.credit(rule.id, 25, 2500, service.clock);
    expect((await dumpJson('udp'))[0]).toMatchObject({ n_packets: 25, n_bytes: 2500 });
  });
});

describe('bad flow text', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['malformed', 'priority=10,in_port,actions=drop', /column 13: field in_port missing value/],
    ['unknown field', 'priority=10,nw_dstt=1.2.3.4,actions=drop', /column 13: unknown field "nw_dstt"/],
    ['bad mask', 'ip,nw_src=10.0.0.0/33,actions=drop', /bad mask/],
    ['prerequisite', 'tp_dst=22,actions=drop', /tp_dst requires/],
    ['out of range', 'priority=65536,actions=drop', /priority 65536 out of range/],
    ['bad value', 'ip,nw_src=1.2.3,actions=drop', /invalid IPv4 address/],
    ['unknown action', 'actions=frob:1', /unknown action "frob"/],
  ];
  it.each(cases)('%s: exit 2 with the column and a caret, nothing sent', async (_name, flow, message) => {
    const r = await ctl('add-flow', flow);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^limectl: flow syntax error at column \d+: /);
    expect(r.stderr).toMatch(message);
    const [, text, caret] = r.stderr.split('\n');
    expect(text).toBe(`  ${flow}`);
    expect(caret).toMatch(/^ +\^+$/);
    expect(service.calls.some(([m]) => m === 'flowMods')).toBe(false);
  });

  it('a bare word in actions may be a port name (as in ovs-ofctl), so limed decides: exit 1', async () => {
    const r = await ctl('add-flow', 'actions=frob');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/column 9: unknown action "frob"/);
  });

  it('unknown port: limed resolves names, so the error comes from limed (exit 1) with the same caret', async () => {
    const r = await ctl('add-flow', 'in_port=vm9,actions=output:vm1');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('limectl: flow syntax error at column 9: unknown port "vm9"\n  in_port=vm9,actions=output:vm1\n          ^^^\n');
    const r2 = await ctl('add-flow', 'in_port=vm1,actions=output:nope');
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/column 28: unknown port "nope"/);
  });

  it('mod-flows and del-flows check their text too', async () => {
    expect((await ctl('mod-flows', 'tp_src=1,actions=drop')).code).toBe(2);
    expect((await ctl('del-flows', 'nw_src=1.2.3.4')).stderr).toMatch(/nw_src requires/);
    expect((await ctl('del-flows', 'ip,actions=drop')).stderr).toMatch(/a delete takes no actions/);
  });
});

describe('add-flows FILE', () => {
  it('adds every flow, skipping comments and blank lines', async () => {
    const f = file('ok.flows', '# ACL\n\npriority=100,in_port=vm1,tcp,tp_dst=22,actions=output:vm2  # ssh\n   \npriority=90,icmp,actions=NORMAL\n');
    const r = await ctl('add-flows', f, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ added: 2, modified: 0, removed: 0 });
    expect((await dumpJson()).map((x) => x['priority'])).toEqual([100, 90, 0]);
  });

  it('a line that does not parse: exit 2 naming the line and column; nothing changes', async () => {
    const before = await dumpText();
    const f = file('bad.flows', 'priority=1,ip,actions=drop\n# comment\npriority=2,ip,nw_dst=10.0.0.0/40,actions=drop\n');
    const r = await ctl('add-flows', f);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^limectl: ${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} line 3: flow syntax error at column 31: bad mask "40" for nw_dst`));
    expect(await dumpText()).toBe(before);
  });

  it('an unknown port on a later line: limed rejects the whole file (exit 1) and the table is unchanged', async () => {
    await ctl('add-flow', 'priority=50,udp,actions=drop');
    service.clock += 1000;
    const before = await dumpText();
    const f = file('port.flows', 'priority=1,ip,actions=drop\npriority=2,in_port=vm7,actions=drop\n');
    const r = await ctl('add-flows', f);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${f} line 2: flow syntax error at column 20: unknown port "vm7"`);
    expect(await dumpText()).toBe(before);
  });

  it('a flow the table rejects (check_overlap): exit 1 naming the line, table unchanged', async () => {
    await ctl('add-flow', 'priority=10,tcp,actions=drop');
    const before = await dumpText();
    const f = file('overlap.flows', 'priority=3,ip,actions=drop\npriority=10,check_overlap,tcp,tp_dst=80,actions=drop\n');
    const r = await ctl('add-flows', f);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/line 2: flow rejected \(OVERLAP\)/);
    expect(await dumpText()).toBe(before);
  });

  it('a missing file is a runtime failure (exit 1)', async () => {
    const r = await ctl('add-flows', join(tmp.dir, 'nope.flows'));
    expect(r).toMatchObject({ code: 1, stderr: `limectl: cannot read flow file ${join(tmp.dir, 'nope.flows')}: no such file\n` });
  });

  it('a file larger than one message goes in chunks and is applied all at once', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 30_000; i++) lines.push(`priority=${1000 + (i % 50)},tcp,nw_src=10.${(i >> 8) & 255}.${i & 255}.1,tp_dst=${i % 60000},actions=output:vm2`);
    const f = file('big.flows', lines.join('\n'));
    const r = await ctl('add-flows', f, '--json');
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ added: 30_000, modified: 0, removed: 0 });
    expect(service.flows.table.size()).toBe(30_001);
    const requests = service.calls.filter(([m]) => m === 'flowMods');
    expect(requests).toHaveLength(1); // the server staged the chunks
    const d = await ctl('dump-flows', '--json');
    expect(JSON.parse(d.stdout)).toHaveLength(30_001); // a multipart reply
    // and a bad last line rejects all of them
    await ctl('del-flows');
    const bad = file('bigbad.flows', lines.join('\n') + '\npriority=1,in_port=zz,actions=drop\n');
    const r2 = await ctl('add-flows', bad);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('line 30001');
    expect(service.flows.table.size()).toBe(0);
  });

  it('chunkFlows keeps every chunk under the byte budget, more on all but the last', () => {
    const flows = Array.from({ length: 100 }, (_, i) => `priority=${i},actions=drop`);
    const chunks = chunkFlows({ source: 'f', flows, lines: flows.map((_, i) => i + 1) }, 200);
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks.flatMap((c) => c.flows)).toEqual(flows);
    expect(chunks.map((c) => c.more)).toEqual([...chunks.slice(1).map(() => true), false]);
  });
});

describe('mod-flows / del-flows', () => {
  beforeEach(async () => {
    await ctl('add-flow', 'priority=100,tcp,tp_dst=22,actions=output:vm2');
    await ctl('add-flow', 'priority=200,tcp,tp_dst=22,actions=output:vm2');
    await ctl('add-flow', 'priority=100,udp,actions=output:vm2');
  });

  it('mod-flows changes the actions of every covered flow, keeping counters', async () => {
    const id = service.flows.table.dump().find((r) => r.priority === 200)!.id;
    service.flows.table.credit(id, 3, 300, service.clock);
    expect((await ctl('mod-flows', 'tcp,actions=drop', '--json')).stdout).toMatch(/"modified": 2/);
    const flows = await dumpJson('tcp');
    expect(flows.map((f) => [f['priority'], f['actions'], f['n_packets']])).toEqual([
      [200, 'drop', 3],
      [100, 'drop', 0],
    ]);
  });

  it('mod-flows --strict changes only the identical flow', async () => {
    await ctl('mod-flows', '--strict', 'priority=100,tcp,tp_dst=22,actions=output:vm1');
    expect((await dumpJson('tcp')).map((f) => f['actions'])).toEqual(['output:vm2', 'output:vm1']);
  });

  it('del-flows MATCH / --strict / everything', async () => {
    await ctl('del-flows', '--strict', 'priority=200,tcp,tp_dst=22');
    expect((await dumpJson()).map((f) => f['priority'])).toEqual([100, 100, 0]);
    await ctl('del-flows', 'tcp');
    expect((await dumpJson()).map((f) => f['match'])).toEqual(['udp', '']);
    expect((await ctl('del-flows', '--json')).stdout).toMatch(/"removed": 2/);
    expect(await dumpJson()).toEqual([]);
  });
});

describe('replace-flows / diff-flows', () => {
  beforeEach(async () => {
    await ctl('del-flows');
    await ctl('add-flow', 'priority=100,tcp,tp_dst=22,actions=output:vm2'); // kept
    await ctl('add-flow', 'priority=100,tcp,tp_dst=80,actions=output:vm2'); // actions change
    await ctl('add-flow', 'priority=100,udp,actions=output:vm2'); // removed
    const t = service.flows.table;
    for (const r of t.dump()) t.credit(r.id, 5, 500, service.clock);
  });

  const wanted = 'priority=100,tcp,tp_dst=22,actions=output:vm2\npriority=100,tcp,tp_dst=80,actions=drop\npriority=50,icmp,actions=NORMAL\n';

  it('diff-flows prints -/+ lines like ovs-ofctl and exits 2 when they differ, 0 when not', async () => {
    const f = file('want.flows', wanted);
    const r = await ctl('diff-flows', f);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe(
      [
        '-priority=100,tcp,tp_dst=80 actions=output:vm2',
        '+priority=100,tcp,tp_dst=80 actions=drop',
        '+priority=50,icmp actions=NORMAL',
        '-priority=100,udp actions=output:vm2',
        '',
      ].join('\n'),
    );
    expect((await dumpJson()).length).toBe(3); // nothing changed
    await ctl('replace-flows', f);
    expect(await ctl('diff-flows', f)).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('replace-flows touches only what differs: unchanged and modified flows keep their counters', async () => {
    const f = file('want.flows', wanted);
    const r = await ctl('replace-flows', f, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ added: 1, modified: 1, removed: 1 });
    expect((await dumpJson()).map((x) => [x['match'], x['actions'], x['n_packets']])).toEqual([
      ['tcp,tp_dst=22', 'output:vm2', 5],
      ['tcp,tp_dst=80', 'drop', 5],
      ['icmp', 'NORMAL', 0],
    ]);
  });

  it('a bad line leaves the table unchanged', async () => {
    const before = await dumpText();
    const f = file('bad.flows', wanted + 'priority=1,in_port=nosuch,actions=drop\n');
    const r = await ctl('replace-flows', f);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bad.flows line 4: flow syntax error at column 20: unknown port "nosuch"');
    expect(await dumpText()).toBe(before);
  });
});

describe('dump-ports', () => {
  it('prints rx/tx packets, bytes and drops per port like ovs-ofctl dump-ports', async () => {
    const r = await ctl('dump-ports');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'OFPST_PORT reply: 2 ports',
        '  port  vm1: rx pkts=12, bytes=1008, drop=4, errs=0, frame=0, over=0, crc=0',
        '             tx pkts=10, bytes=840, drop=0, errs=0, coll=0',
        '  port  vm2: rx pkts=0, bytes=0, drop=0, errs=0, frame=0, over=0, crc=0',
        '             tx pkts=0, bytes=0, drop=0, errs=0, coll=0',
        '',
      ].join('\n'),
    );
    const j = await ctl('dump-ports', 'vm1', '--json');
    expect(JSON.parse(j.stdout)).toEqual([
      { port: 1, name: 'vm1', rx_packets: 12, rx_bytes: 1008, rx_dropped: 4, tx_packets: 10, tx_bytes: 840, tx_dropped: 0, drops: { runt: 3, too_long: 1 } },
    ]);
    expect(await ctl('dump-ports', '7')).toMatchObject({ code: 1, stderr: 'limectl: no port named or numbered 7\n' });
  });
});

describe('trace', () => {
  it('prints each table step and the datapath actions, ofproto/trace style', async () => {
    await ctl('add-flow', 'priority=100,cookie=0x5,in_port=vm1,tcp,actions=resubmit(,1)');
    await ctl('add-flow', 'table=1,priority=10,tcp,actions=output:vm2');
    const r0 = service.flows.table.dump().find((r) => r.priority === 100)!;
    const r1 = service.flows.table.dump().find((r) => r.table === 1)!;
    let traced: Uint32Array | undefined;
    service.traceResult = (key) => {
      traced = key;
      return {
        steps: [
          { depth: 0, table: 0, inPort: 1, ruleId: r0.id, priority: 100, cookie: 5n, actions: r0.actions, key },
          { depth: 1, table: 1, inPort: 1, ruleId: r1.id, priority: 10, cookie: 0n, actions: r1.actions, key },
          { depth: 1, table: 2, inPort: 1, ruleId: -1, priority: -1, cookie: 0n, actions: [], key },
        ],
        actions: ['output:vm2'],
        rules: [r0.id, r1.id],
        finalKey: key,
      };
    };
    const r = await ctl('trace', 'in_port=vm1,tcp,nw_dst=10.0.0.2,tp_dst=22');
    expect(r.code).toBe(0);
    expect(traced?.length).toBe(KEY_WORDS);
    expect(r.stdout).toBe(
      [
        'Flow: in_port=vm1,tcp,nw_dst=10.0.0.2,tp_dst=22',
        '',
        'bridge("lime")',
        '--------------',
        ' 0. tcp,in_port=vm1, priority 100, cookie 0x5',
        '    resubmit(,1)',
        '     1. tcp, priority 10',
        '        output:vm2',
        '     2. No match.',
        '        drop',
        '',
        'Datapath actions: output:vm2',
        '',
      ].join('\n'),
    );
    const j = JSON.parse((await ctl('trace', 'in_port=vm1,tcp', '--json')).stdout);
    expect(j.steps[0]).toEqual({ depth: 0, table: 0, in_port: 'vm1', miss: false, priority: 100, cookie: '0x5', match: 'tcp,in_port=vm1', actions: 'resubmit(,1)' });
  });

  it('bad packet text: exit 2 locally; unknown port: exit 1 from limed', async () => {
    expect((await ctl('trace', 'in_port=vm1,tp_dst=22')).code).toBe(2);
    expect((await ctl('trace', 'in_port=vm1,nw_src=10.0.0.0/8,ip')).stderr).toMatch(/a packet field takes no mask/);
    const r = await ctl('trace', 'in_port=vm5,ip');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/trace: flow syntax error at column 9: unknown port "vm5"/);
  });
});

describe('packet-out', () => {
  const frame = 'ffffffffffff020000000001' + '88b5' + '00'.repeat(50);

  it("accepts ovs-ofctl's 'in_port=…,packet=…,actions=…' and the positional form", async () => {
    expect((await ctl('packet-out', `in_port=vm1,packet=${frame},actions=output:vm2`)).code).toBe(0);
    expect((await ctl('packet-out', 'none', 'mod_vlan_vid:5,output:2', frame)).code).toBe(0);
    expect(service.packetOuts.map((p) => [p.inPort, p.actions, Buffer.from(p.frame).toString('hex')])).toEqual([
      [1, [{ type: 'output', port: 2 }], frame],
      [0xffff, [{ type: 'mod_vlan_vid', vid: 5 }, { type: 'output', port: 2 }], frame],
    ]);
  });

  it('rejects bad input', async () => {
    expect((await ctl('packet-out', `in_port=vm1,packet=abc,actions=output:vm2`)).stderr).toMatch(/not an even number of hex digits/);
    expect((await ctl('packet-out', `in_port=vm1,packet=0011,actions=output:vm2`)).stderr).toMatch(/at least 14 bytes/);
    expect((await ctl('packet-out', `in_port=vm1,packet=${frame},actions=frob:1`)).code).toBe(2);
    expect((await ctl('packet-out', `in_port=vm1,packet=${frame}`)).code).toBe(2);
    const r = await ctl('packet-out', `in_port=vm9,packet=${frame},actions=output:vm2`);
    expect(r).toMatchObject({ code: 1, stderr: 'limectl: packet-out: unknown in_port "vm9"\n' });
    const r2 = await ctl('packet-out', `in_port=vm1,packet=${frame},actions=output:vm9`);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/unknown port "vm9"/);
    expect(service.packetOuts).toHaveLength(0);
  });
});

describe('monitor', () => {
  async function runMonitor(json: boolean, during: () => Promise<void>): Promise<Run> {
    let stdout = '';
    let stderr = '';
    const ac = new AbortController();
    const done = main(['--socket', socket, 'monitor', ...(json ? ['--json'] : [])], {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      signal: ac.signal,
    });
    await vi.waitFor(() => expect(service.flows.monitorCount).toBe(1));
    await during();
    await vi.waitFor(() => expect(stdout).not.toBe(''));
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    return { code: await done, stdout, stderr };
  }

  it('streams added/modified/deleted/flow_removed events, one JSON object per line, until aborted', async () => {
    const r = await runMonitor(true, async () => {
      await ctl('add-flow', 'priority=9,idle_timeout=5,send_flow_rem,udp,actions=output:vm2');
      await ctl('mod-flows', 'udp,actions=drop');
      service.clock += 6000;
      service.flows.sweep();
    });
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(events.map((e) => e.event)).toEqual(['added', 'modified', 'deleted', 'flow_removed']);
    expect(events[3]).toMatchObject({ reason: 'idle_timeout', flow: { priority: 9, match: 'udp', actions: 'drop', duration_s: 6 } });
    await vi.waitFor(() => expect(service.flows.monitorCount).toBe(0)); // the server saw the close
  });

  it('prints ovs-ofctl-like lines without --json', async () => {
    const r = await runMonitor(false, async () => {
      await ctl('add-flow', 'priority=9,send_flow_rem,udp,actions=output:vm2');
      await ctl('del-flows', 'udp');
    });
    expect(r.stdout.split('\n')).toEqual([
      'event=ADDED table=0 cookie=0x0 send_flow_rem priority=9,udp actions=output:vm2',
      'event=DELETED reason=delete table=0 cookie=0x0 send_flow_rem priority=9,udp actions=output:vm2 n_packets=0 n_bytes=0',
      'OFPT_FLOW_REMOVED: priority=9,udp reason=delete table_id=0 cookie=0x0 duration=0s pkts=0 bytes=0',
      '',
    ]);
  });

  it('shows packet-ins with the frame truncated to max_len', async () => {
    await ctl('add-flow', 'priority=9,udp,actions=CONTROLLER:16');
    const rule = service.flows.table.dump().find((x) => x.priority === 9)!;
    const slab = Buffer.alloc(200);
    for (let i = 0; i < 200; i++) slab[i] = i;
    const r = await runMonitor(true, async () => {
      service.flows.onPacketIn(slab, 100, 60, 1, 'action', 0, rule.id, 16);
    });
    const e = JSON.parse(r.stdout.trim()) as Record<string, any>;
    expect(e).toMatchObject({
      event: 'packet_in',
      reason: 'action',
      packet_in: { table: 0, cookie: '0x0', in_port: 'vm1', in_port_number: 1, total_len: 60, data_len: 16, match: 'priority=9,udp' },
    });
    expect(e.packet_in.data).toBe(slab.subarray(100, 116).toString('hex'));
  });

  it('fails with exit 1 when limed is not there', async () => {
    let stderr = '';
    const code = await main(['--socket', join(tmp.dir, 'none.sock'), 'monitor'], { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) } });
    expect(code).toBe(1);
    expect(stderr).toMatch(/no such socket/);
  });
});
