import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import {
  MessageDecodeError,
  MgmtReplyType,
  MgmtRequestType,
  PROTOCOL_VERSION,
  PROTO_PATH,
  type MgmtReply,
  type MgmtRequest,
  type PortInfo,
  decodeMgmtReply,
  decodeMgmtRequest,
  encodeMgmtReply,
  encodeMgmtRequest,
} from '../../../src/proto/schema.js';

const port: PortInfo = {
  name: 'vm1',
  number: 1,
  type: 'tap',
  device: 'vm1',
  state: 'up',
  mtu: 1500,
  mac: '02:00:00:00:00:01',
  rx_packets: 12,
  rx_bytes: 2 ** 40 + 7, // > 32 bits: uint64 must survive
  tx_packets: 10,
  tx_bytes: 840,
  drops: { runt: 3, too_long: 1 },
  options: { remote_ip: '192.0.2.2', key: '4242' },
};

const requests: MgmtRequest[] = [
  { version: 1, id: 1, body: 'show', show: {} },
  { version: 1, id: 2, body: 'fdb_show', fdb_show: {} },
  { version: 1, id: 3, body: 'add_port', add_port: { name: 'vm3', type: 'tap' } },
  {
    version: 1,
    id: 2 ** 33,
    body: 'add_port',
    add_port: { name: 'vm4', type: 'tap', device: 'tap-vm4', mtu: 9000, mac: '02:00:00:00:00:04' },
  },
  { version: 1, id: 5, body: 'del_port', del_port: { name: 'vm3' } },
];

const replies: MgmtReply[] = [
  { version: 1, id: 1, body: 'error', error: { code: 'NOT_FOUND', message: 'no port named vm9' } },
  {
    version: 1,
    id: 2,
    body: 'show',
    show: {
      site: 'paris',
      ports: [port, { ...port, name: 'vm2', number: 2, state: 'down', drops: {} }],
      mac_table: { size: 2, capacity: 8192, evictions: 5, aging_seconds: 300 },
      process: { pid: 4242, uptime_seconds: 12.5, heap_used: 5_000_000, rss: 40_000_000, gc_count: 3 },
      control: { share_percent: 10, saturated: true, deferred: 3, waiting: 1, cost_ms: 0.75, saturated_windows: 9, monitors_dropped: 2 },
      fast_path: { enabled: true, ports: ['vm1', 'to-b'], cache_used: 4, cache_slots: 8192, rx: 1000, hits: 990, upcalls: 10, upcall_drops: 1, installs: 4, cache_full: 0, invalidations: 2 },
    },
  },
  {
    version: 1,
    id: 3,
    body: 'fdb_show',
    fdb_show: {
      entries: [
        { port: 'vm1', vlan: 0, mac: '02:00:00:00:00:01', age: 5 },
        { port: 'vm2', vlan: 100, mac: '02:00:00:00:00:02', age: 0 },
      ],
    },
  },
  { version: 1, id: 4, body: 'port', port },
  { version: 1, id: 5, body: 'ok', ok: {} },
];

/** Append an unknown varint field and an unknown length-delimited field to an encoding. */
function withUnknownFields(bytes: Uint8Array): Uint8Array {
  const extra = protobuf.Writer.create()
    .uint32((99 << 3) | 0).uint64(123456789)
    .uint32((100 << 3) | 2).bytes(Uint8Array.of(1, 2, 3, 4))
    .uint32((101 << 3) | 5).fixed32(7)
    .finish();
  return Buffer.concat([bytes, extra]);
}

describe('lime.proto loading', () => {
  it('finds the .proto under the package root', () => {
    expect(PROTO_PATH).toMatch(/src\/proto\/lime\.proto$/);
    expect(existsSync(PROTO_PATH)).toBe(true);
    expect(MgmtRequestType.fullName).toBe('.lime.v1.MgmtRequest');
    expect(PROTOCOL_VERSION).toBe(1);
  });

  it('keeps snake_case field names and the envelope version field', () => {
    expect(Object.keys(MgmtReplyType.lookupType('lime.v1.PortInfo').fields)).toContain('rx_packets');
    expect(MgmtRequestType.fields['version']?.id).toBe(1);
    expect(MgmtReplyType.fields['version']?.id).toBe(1);
  });
});

describe('MgmtRequest', () => {
  it.each(requests.map((r) => [r.body, r] as const))('round-trips %s', (_name, request) => {
    expect(decodeMgmtRequest(encodeMgmtRequest(request))).toEqual(request);
  });

  it('leaves unset optional add_port fields absent (not zero)', () => {
    const decoded = decodeMgmtRequest(encodeMgmtRequest(requests[2]!));
    expect(decoded.body).toBe('add_port');
    if (decoded.body !== 'add_port') return;
    expect('mtu' in decoded.add_port).toBe(false);
    expect('mac' in decoded.add_port).toBe(false);
    expect('device' in decoded.add_port).toBe(false);
  });

  it('tolerates unknown fields', () => {
    for (const request of requests) {
      expect(decodeMgmtRequest(withUnknownFields(encodeMgmtRequest(request)))).toEqual(request);
    }
  });

  it('decodes a body from a newer peer as body undefined', () => {
    const bytes = protobuf.Writer.create()
      .uint32((1 << 3) | 0).uint32(1)
      .uint32((2 << 3) | 0).uint32(77)
      .uint32((40 << 3) | 2).bytes(Uint8Array.of(0x0a, 0x01, 0x78)) // field 40: unknown request
      .finish();
    expect(decodeMgmtRequest(bytes)).toEqual({ version: 1, id: 77, body: undefined });
  });

  it('throws MessageDecodeError on garbage', () => {
    // field 1 declared length-delimited with a length past the end
    expect(() => decodeMgmtRequest(Uint8Array.of(0x52, 0x7f, 0x01))).toThrow(MessageDecodeError);
    expect(() => decodeMgmtRequest(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff))).toThrow(/cannot decode MgmtRequest/);
  });
});

describe('MgmtReply', () => {
  it.each(replies.map((r) => [r.body, r] as const))('round-trips %s', (_name, reply) => {
    expect(decodeMgmtReply(encodeMgmtReply(reply))).toEqual(reply);
  });

  it('tolerates unknown fields, also inside nested messages', () => {
    // A PortInfo carrying an unknown field, wrapped as MgmtReply.port by hand.
    const PortInfoType = MgmtReplyType.lookupType('lime.v1.PortInfo');
    const portBytes = withUnknownFields(PortInfoType.encode(PortInfoType.fromObject(port)).finish());
    const bytes = withUnknownFields(
      Buffer.concat([
        protobuf.Writer.create().uint32(8).uint32(1).uint32(16).uint32(9).finish(),
        protobuf.Writer.create().uint32((13 << 3) | 2).bytes(portBytes).finish(),
      ]),
    );
    expect(decodeMgmtReply(bytes)).toEqual({ version: 1, id: 9, body: 'port', port });
  });

  it('fills defaults: every scalar present, missing sub-messages as defaults', () => {
    const bytes = encodeMgmtReply({ version: 1, id: 6, body: 'show', show: { site: 'x', ports: [] } } as unknown as MgmtReply);
    const decoded = decodeMgmtReply(bytes);
    expect(decoded).toEqual({
      version: 1,
      id: 6,
      body: 'show',
      show: {
        site: 'x',
        ports: [],
        mac_table: { size: 0, capacity: 0, evictions: 0, aging_seconds: 0 },
        process: { pid: 0, uptime_seconds: 0, heap_used: 0, rss: 0, gc_count: 0 },
        control: { share_percent: 0, saturated: false, deferred: 0, waiting: 0, cost_ms: 0, saturated_windows: 0, monitors_dropped: 0 },
        fast_path: { enabled: false, ports: [], cache_used: 0, cache_slots: 0, rx: 0, hits: 0, upcalls: 0, upcall_drops: 0, installs: 0, cache_full: 0, invalidations: 0 },
      },
    });
  });

  it('keeps the .proto field order in decoded objects (what --json prints)', () => {
    const decoded = decodeMgmtReply(encodeMgmtReply(replies[3]!));
    if (decoded.body !== 'port') throw new Error('expected port');
    expect(Object.keys(decoded.port)).toEqual(Object.keys(port));
  });

  it('maps an unknown error code to CODE_UNSPECIFIED but keeps the message', () => {
    const ErrorType = MgmtReplyType.lookupType('lime.v1.Error');
    const err = protobuf.Writer.create().uint32(8).uint32(42).uint32(18).string('boom').finish();
    expect(ErrorType.decode(err)).toBeTruthy();
    const bytes = protobuf.Writer.create().uint32(8).uint32(1).uint32(16).uint32(3).uint32((10 << 3) | 2).bytes(err).finish();
    expect(decodeMgmtReply(bytes)).toEqual({
      version: 1,
      id: 3,
      body: 'error',
      error: { code: 'CODE_UNSPECIFIED', message: 'boom' },
    });
  });
});
