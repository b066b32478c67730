/** The flow-table messages of lime.proto (issue 3): round trips, numbers, unknown fields. */
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  MgmtReplyType,
  MgmtRequestType,
  decodeMgmtReply,
  decodeMgmtRequest,
  encodeMgmtReply,
  encodeMgmtRequest,
  type FlowEntry,
  type MgmtReply,
  type MgmtRequest,
} from '../../../src/proto/schema.js';

const flow: FlowEntry = {
  table: 1,
  priority: 100,
  cookie: '0xffffffffffffffff',
  match: 'tcp,in_port=vm1,tp_dst=22',
  actions: 'output:vm2',
  n_packets: 2 ** 40 + 1,
  n_bytes: 2 ** 45,
  duration_s: 12.345,
  idle_timeout: 10,
  hard_timeout: 0,
  flags: ['send_flow_rem'],
};
const text = { flows: ['priority=1,actions=drop', 'ip,actions=NORMAL'], lines: [3, 5], source: 'a.flows', more: true };

const requests: MgmtRequest[] = [
  { version: 1, id: 1, body: 'flow_mods', flow_mods: { command: 'ADD', text } },
  { version: 1, id: 2, body: 'flow_mods', flow_mods: { command: 'DELETE_STRICT', text: { flows: [], lines: [], source: '', more: false } } },
  { version: 1, id: 3, body: 'replace_flows', replace_flows: { text, dry_run: true } },
  { version: 1, id: 4, body: 'dump_flows', dump_flows: { match: 'tcp', strict: true, site: 'peer' } },
  { version: 1, id: 5, body: 'trace', trace: { packet: 'in_port=vm1,tcp' } },
  { version: 1, id: 6, body: 'monitor', monitor: {} },
  { version: 1, id: 7, body: 'packet_out', packet_out: { in_port: 'vm1', actions: 'output:vm2', packet: Buffer.from('ffffffffffff0200000000018100', 'hex') } },
];

const replies: MgmtReply[] = [
  { version: 1, id: 1, body: 'flow_mods', flow_mods: { added: 2, modified: 1, removed: 0 } },
  { version: 1, id: 2, body: 'flow_diff', flow_diff: { lines: ['-a actions=drop', '+a actions=NORMAL'], more: false, n_added: 0, n_modified: 1, n_removed: 0 } },
  { version: 1, id: 3, body: 'dump_flows', dump_flows: { flows: [flow], more: true, local_only: true } },
  {
    version: 1,
    id: 4,
    body: 'trace',
    trace: {
      flow: 'in_port=vm1,tcp',
      steps: [{ depth: 0, table: 0, in_port: 'vm1', miss: false, priority: 100, cookie: '0x0', match: 'tcp', actions: 'output:vm2' }],
      actions: ['output:vm2'],
    },
  },
  {
    version: 1,
    id: 5,
    body: 'event',
    event: {
      kind: 'packet_in',
      time: 1_700_000_000.5,
      flow: { table: 0, priority: 0, cookie: '', match: '', actions: '', n_packets: 0, n_bytes: 0, duration_s: 0, idle_timeout: 0, hard_timeout: 0, flags: [] },
      reason: 'action',
      packet_in: { table: 0, cookie: '0x5', in_port: 'vm1', in_port_number: 1, total_len: 98, data: Buffer.from('0102', 'hex'), buffer_id: 0xffffffff, match: 'udp' },
      dropped: 0,
    },
  },
];

describe('flow-table messages', () => {
  it('use the field numbers lime.proto allocated', () => {
    const req = MgmtRequestType.fields;
    expect([req['flow_mods']!.id, req['replace_flows']!.id, req['dump_flows']!.id, req['trace']!.id, req['monitor']!.id, req['packet_out']!.id]).toEqual([14, 15, 16, 17, 18, 22]);
    const rep = MgmtReplyType.fields;
    expect([rep['dump_flows']!.id, rep['trace']!.id, rep['event']!.id, rep['flow_mods']!.id, rep['flow_diff']!.id]).toEqual([15, 16, 17, 20, 21]);
  });

  it.each(requests.map((r) => [r.body, r] as const))('request %s round-trips', (_n, r) => {
    expect(decodeMgmtRequest(encodeMgmtRequest(r))).toEqual(r);
  });

  it.each(replies.map((r) => [r.body, r] as const))('reply %s round-trips (uint64 counters, bytes)', (_n, r) => {
    expect(decodeMgmtReply(encodeMgmtReply(r))).toEqual(r);
  });

  it('tolerates unknown fields inside a FlowEntry', () => {
    const FlowEntryType = MgmtReplyType.lookupType('lime.v1.FlowEntry');
    const DumpType = MgmtReplyType.lookupType('lime.v1.DumpFlowsReply');
    const entry = Buffer.concat([FlowEntryType.encode(FlowEntryType.fromObject(flow)).finish(), protobuf.Writer.create().uint32((77 << 3) | 2).string('new').finish()]);
    const dump = protobuf.Writer.create().uint32((1 << 3) | 2).bytes(entry).finish();
    const bytes = protobuf.Writer.create().uint32(8).uint32(1).uint32(16).uint32(9).uint32((15 << 3) | 2).bytes(dump).finish();
    expect(decodeMgmtReply(bytes)).toEqual({ version: 1, id: 9, body: 'dump_flows', dump_flows: { flows: [flow], more: false, local_only: false } });
    expect(DumpType.name).toBe('DumpFlowsReply');
  });
});
