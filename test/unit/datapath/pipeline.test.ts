import { describe, expect, it } from 'vitest';
import { OFPP, type Action } from '../../../src/flow/types.js';
import { DropReason } from '../../../src/packet/drop.js';
import { K } from '../../../src/packet/key.js';
import { parseIpv6 } from '../../../src/util/addr.js';
import { exact, masked } from '../../helpers/linear-table.js';
import { IP, MAC, checksumsValid, ip4, ip6, keyOf, rig } from './pipeline-rig.js';

const out = (port: number): Action => ({ type: 'output', port });
const UDP = { [K.DL_TYPE]: 0x0800, [K.NW_PROTO]: 17 };
const TCP_SPEC = { proto: 'tcp' as const, srcPort: 40000, dstPort: 22, seq: 1000, ack: 2000, flags: 0x18 };

function ipv6Words(text: string): Uint32Array {
  const b = parseIpv6(text);
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = ((b[4 * i]! << 24) | (b[4 * i + 1]! << 16) | (b[4 * i + 2]! << 8) | b[4 * i + 3]!) >>> 0;
  return w;
}

describe('pipeline: forwarding by the flow table', () => {
  it('outputs by rule and credits the rule exactly, on the miss and on cache hits', () => {
    const r = rig();
    const id = r.table.add({ priority: 100, match: exact({ [K.IN_PORT]: 1 }), actions: [out(3)] });
    const f = ip4();
    r.inject(1, [f]);
    r.inject(1, [f, f, f]);
    expect(r.sent(3)).toEqual([f, f, f, f]);
    expect(r.sent(2)).toHaveLength(0);
    expect(r.table.nPackets[id]).toBe(4);
    expect(r.table.nBytes[id]).toBe(4 * f.length);
    expect(r.table.lastUsed[id]).toBe(r.clock.now);
    const emc = r.sw.pipeline!.emc;
    expect(emc.nMisses).toBe(1);
    expect(emc.nHits).toBe(3);
    expect(r.sw.rxPackets[1]).toBe(4);
  });

  it('a flow-mod (version bump) takes effect for the very next packet', () => {
    const r = rig();
    const id = r.table.add({ priority: 100, match: exact({ [K.IN_PORT]: 1 }), actions: [out(2)] });
    const f = ip4();
    r.inject(1, [f, f]);
    r.table.setActions(id, [out(3)]);
    r.inject(1, [f]);
    expect(r.sent(2)).toHaveLength(2);
    expect(r.sent(3)).toHaveLength(1);
    r.table.remove(id);
    r.clearSent();
    r.inject(1, [f]); // back to the table-miss rule: NORMAL floods
    expect(r.sent(2)).toHaveLength(1);
    expect(r.sent(3)).toHaveLength(1);
  });

  it('NORMAL as the default table-miss action is the learning switch', () => {
    const r = rig();
    r.inject(2, [ip4({ src: MAC.b, dst: MAC.bcast })]); // learn b on p2
    expect(r.sent(1)).toHaveLength(1);
    expect(r.sent(3)).toHaveLength(1);
    r.clearSent();
    const f = ip4({ src: MAC.a, dst: MAC.b });
    r.inject(1, [f]);
    expect(r.sent(2)).toEqual([f]);
    expect(r.sent(3)).toHaveLength(0);
    // Multicast source: NORMAL drops it, counted as before.
    r.inject(1, [ip4({ src: { hi: 0x0100, lo: 0x5e000001 } })]);
    expect(r.drops(1, DropReason.SRC_MAC_MULTICAST)).toBe(1);
  });

  it('NORMAL after a rewrite uses the rewritten destination', () => {
    const r = rig();
    r.inject(3, [ip4({ src: MAC.c, dst: MAC.bcast })]); // c on p3
    r.clearSent();
    r.table.add({ priority: 10, match: exact({ [K.IN_PORT]: 1 }), actions: [{ type: 'mod_dl_dst', ...MAC.c }, { type: 'normal' }] });
    r.inject(1, [ip4({ dst: MAC.b })]);
    expect(r.sent(3)).toEqual([ip4({ dst: MAC.c })]);
    expect(r.sent(2)).toHaveLength(0);
  });

  it('FLOOD, ALL, IN_PORT; output to the in-port is skipped; LOCAL counts as a drop', () => {
    const r = rig();
    const f = ip4();
    const id = r.table.add({ priority: 10, actions: [{ type: 'flood' }] });
    r.inject(1, [f]);
    expect([r.sent(1).length, r.sent(2).length, r.sent(3).length]).toEqual([0, 1, 1]);
    r.clearSent();
    r.ports[2]!.setState('down', 'test');
    r.inject(1, [f]);
    expect([r.sent(2).length, r.sent(3).length]).toEqual([1, 0]);
    r.table.setActions(id, [{ type: 'all' }]);
    r.clearSent();
    r.inject(1, [f]);
    expect(r.sent(2)).toHaveLength(1);
    expect(r.ports[2]!.ioCounters().txPortDown).toBe(1); // ALL includes ports that are down
    r.table.setActions(id, [out(1), out(2)]);
    r.clearSent();
    r.inject(1, [f]);
    expect([r.sent(1).length, r.sent(2).length]).toEqual([0, 1]);
    r.table.setActions(id, [{ type: 'in_port' }]);
    r.clearSent();
    r.inject(1, [f]);
    expect(r.sent(1)).toEqual([f]);
    r.table.setActions(id, [{ type: 'local' }]);
    r.inject(1, [f]);
    expect(r.drops(1, DropReason.NO_LOCAL_PORT)).toBe(1);
  });

  it('counts actions=drop as action_drop and a miss with no table-miss rule as table_miss', () => {
    const r = rig({ tableMiss: false });
    r.inject(1, [ip4()]);
    expect(r.drops(1, DropReason.TABLE_MISS)).toBe(1);
    r.table.add({ priority: 1, actions: [{ type: 'drop' }] });
    r.inject(1, [ip4(), ip4()]);
    expect(r.drops(1, DropReason.ACTION_DROP)).toBe(2);
    expect(r.sent(2)).toHaveLength(0);
  });

  it('drops a frame too large for the output port', () => {
    const r = rig();
    r.table.add({ priority: 10, actions: [out(2), out(3)] });
    r.inject(1, [ip4({ payload: 1600 - 42 })]);
    expect(r.sent(2)).toHaveLength(0);
    expect(r.drops(1, DropReason.TOO_LONG)).toBe(2);
  });
});

describe('pipeline: actions rewrite the bytes, checksums stay valid', () => {
  interface Case {
    name: string;
    actions: Action[];
    input: Buffer;
    expected: Buffer;
  }
  const cases: Case[] = [
    { name: 'mod_dl_src', actions: [{ type: 'mod_dl_src', ...MAC.x }], input: ip4(), expected: ip4({ src: MAC.x }) },
    { name: 'mod_dl_dst', actions: [{ type: 'mod_dl_dst', ...MAC.x }], input: ip4(), expected: ip4({ dst: MAC.x }) },
    { name: 'mod_nw_src (UDP)', actions: [{ type: 'mod_nw_src', addr: IP.far }], input: ip4(), expected: ip4({ ipSrc: IP.far }) },
    { name: 'mod_nw_dst (UDP)', actions: [{ type: 'mod_nw_dst', addr: IP.far }], input: ip4(), expected: ip4({ ipDst: IP.far }) },
    {
      name: 'mod_nw_src + mod_nw_dst (TCP)',
      actions: [{ type: 'mod_nw_src', addr: IP.far }, { type: 'mod_nw_dst', addr: IP.c }],
      input: ip4({ l4: TCP_SPEC }),
      expected: ip4({ l4: TCP_SPEC, ipSrc: IP.far, ipDst: IP.c }),
    },
    {
      name: 'mod_tp_src + mod_tp_dst (TCP)',
      actions: [{ type: 'mod_tp_src', port: 1 }, { type: 'mod_tp_dst', port: 65535 }],
      input: ip4({ l4: TCP_SPEC }),
      expected: ip4({ l4: { ...TCP_SPEC, srcPort: 1, dstPort: 65535 } }),
    },
    {
      name: 'mod_tp_dst (UDP)',
      actions: [{ type: 'mod_tp_dst', port: 5353 }],
      input: ip4(),
      expected: ip4({ l4: { proto: 'udp', srcPort: 5000, dstPort: 5353 } }),
    },
    { name: 'mod_nw_tos (keeps ECN)', actions: [{ type: 'mod_nw_tos', tos: 0xb8 }], input: ip4({ tos: 0x01 }), expected: ip4({ tos: 0xb9 }) },
    { name: 'dec_ttl', actions: [{ type: 'dec_ttl' }], input: ip4({ ttl: 64 }), expected: ip4({ ttl: 63 }) },
    {
      name: 'set_field nw_ttl, tp_src, nw_dst',
      actions: [
        { type: 'set_field', field: 'nw_ttl', value: Uint32Array.of(7) },
        { type: 'set_field', field: 'tp_src', value: Uint32Array.of(999) },
        { type: 'set_field', field: 'nw_dst', value: Uint32Array.of(IP.c) },
      ],
      input: ip4({ l4: TCP_SPEC }),
      expected: ip4({ ttl: 7, ipDst: IP.c, l4: { ...TCP_SPEC, srcPort: 999 } }),
    },
    {
      name: 'set_field ip_dscp',
      actions: [{ type: 'set_field', field: 'ip_dscp', value: Uint32Array.of(46 << 2) }],
      input: ip4({ tos: 2 }),
      expected: ip4({ tos: (46 << 2) | 2 }),
    },
    {
      name: 'load into nw_src[0..7] and move tp_src → tp_dst',
      actions: [
        { type: 'load', field: 'nw_src', value: 0x63n, ofs: 0, nBits: 8 },
        { type: 'move', src: 'tp_src', srcOfs: 0, dst: 'tp_dst', dstOfs: 0, nBits: 16 },
      ],
      input: ip4({ l4: TCP_SPEC }),
      expected: ip4({ ipSrc: (IP.a & ~0xff) | 0x63, l4: { ...TCP_SPEC, dstPort: TCP_SPEC.srcPort } }),
    },
    {
      name: 'mod_vlan_vid on a tagged frame',
      actions: [{ type: 'mod_vlan_vid', vid: 99 }],
      input: ip4({ vlans: [{ vid: 10, pcp: 5 }] }),
      expected: ip4({ vlans: [{ vid: 99, pcp: 5 }] }),
    },
    {
      name: 'mod_vlan_pcp on a tagged frame (keeps DEI)',
      actions: [{ type: 'mod_vlan_pcp', pcp: 3 }],
      input: ip4({ vlans: [{ vid: 10, pcp: 5, dei: true }] }),
      expected: ip4({ vlans: [{ vid: 10, pcp: 3, dei: true }] }),
    },
    {
      name: 'mod_vlan_vid on an untagged frame pushes a tag',
      actions: [{ type: 'mod_vlan_vid', vid: 42 }],
      input: ip4(),
      expected: ip4({ vlans: [{ vid: 42 }] }),
    },
    {
      name: 'push_vlan then set_field dl_vlan on a tagged frame (QinQ)',
      actions: [
        { type: 'push_vlan', tpid: 0x88a8 },
        { type: 'set_field', field: 'dl_vlan', value: Uint32Array.of(0x1000 | 300) },
      ],
      input: ip4({ vlans: [{ vid: 10 }] }),
      expected: ip4({ vlans: [{ vid: 300, tpid: 0x88a8 }, { vid: 10, tpid: 0x8100 }] }),
    },
    { name: 'strip_vlan', actions: [{ type: 'strip_vlan' }], input: ip4({ vlans: [{ vid: 10 }] }), expected: ip4() },
    { name: 'strip_vlan on an untagged frame: no-op', actions: [{ type: 'strip_vlan' }], input: ip4(), expected: ip4() },
    {
      name: 'set_field vlan_tci with CFI clear strips the tag',
      actions: [{ type: 'set_field', field: 'vlan_tci', value: Uint32Array.of(0) }],
      input: ip4({ vlans: [{ vid: 10 }] }),
      expected: ip4(),
    },
    {
      name: 'mod_nw_src on TCP after pop + rewrite of a tagged frame',
      actions: [{ type: 'strip_vlan' }, { type: 'mod_nw_src', addr: IP.far }, { type: 'mod_vlan_vid', vid: 7 }],
      input: ip4({ vlans: [{ vid: 10 }], l4: TCP_SPEC }),
      expected: ip4({ vlans: [{ vid: 7 }], ipSrc: IP.far, l4: TCP_SPEC }),
    },
    {
      name: 'set_field ipv6_src (TCP checksum via pseudo-header), dec_ttl on IPv6',
      actions: [{ type: 'set_field', field: 'ipv6_src', value: ipv6Words('2001:db8::abcd') }, { type: 'dec_ttl' }],
      input: ip6(),
      expected: ip6({ src: '2001:db8::abcd', hopLimit: 63 }),
    },
    {
      name: 'set_field ipv6_dst (ICMPv6 checksum), mod_nw_tos on IPv6',
      actions: [{ type: 'set_field', field: 'ipv6_dst', value: ipv6Words('fd00::99') }, { type: 'mod_nw_tos', tos: 0x20 }],
      input: ip6({ l4: { proto: 'icmp', type: 128, code: 0, rest: 0x00010001 } }),
      expected: ip6({ dst: 'fd00::99', tc: 0x20, l4: { proto: 'icmp', type: 128, code: 0, rest: 0x00010001 } }),
    },
    {
      name: 'mod_nw_src on ARP: no prerequisite, no change',
      actions: [{ type: 'mod_nw_src', addr: IP.far }, { type: 'mod_tp_src', port: 1 }],
      input: Buffer.from(
        'ffffffffffff' + '020000000001' + '0806' + '0001080006040001' + '020000000001' + '0a000001' + '000000000000' + '0a000002',
        'hex',
      ),
      expected: Buffer.from(
        'ffffffffffff' + '020000000001' + '0806' + '0001080006040001' + '020000000001' + '0a000001' + '000000000000' + '0a000002',
        'hex',
      ),
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      expect(checksumsValid(c.input)).toBe(true);
      const r = rig();
      r.table.add({ priority: 10, match: exact({ [K.IN_PORT]: 1 }), actions: [...c.actions, out(2)] });
      r.inject(1, [c.input, c.input]); // a miss, then a cache hit
      expect(r.sent(2)).toHaveLength(2);
      for (const got of r.sent(2)) {
        expect(got.toString('hex')).toBe(c.expected.toString('hex'));
        expect(checksumsValid(got)).toBe(true);
      }
    });
  }

  it('a UDP checksum of 0 (none) stays 0 across address and port rewrites', () => {
    const f = ip4();
    f.writeUInt16BE(0, 14 + 20 + 6);
    const r = rig();
    r.table.add({ priority: 10, actions: [{ type: 'mod_nw_dst', addr: IP.far }, { type: 'mod_tp_src', port: 7 }, out(2)] });
    r.inject(1, [f]);
    const got = r.sent(2)[0]!;
    expect(got.readUInt16BE(14 + 20 + 6)).toBe(0);
    expect(got.readUInt32BE(14 + 16)).toBe(IP.far);
    expect(checksumsValid(got)).toBe(true);
  });

  it('property: random rewrites of TCP/UDP frames always leave valid checksums', async () => {
    const fc = await import('fast-check');
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(
          fc.oneof(
            fc.record({ type: fc.constant('mod_nw_src' as const), addr: fc.nat().map((n) => n >>> 0) }),
            fc.record({ type: fc.constant('mod_nw_dst' as const), addr: fc.nat().map((n) => n >>> 0) }),
            fc.record({ type: fc.constant('mod_tp_src' as const), port: fc.integer({ min: 0, max: 65535 }) }),
            fc.record({ type: fc.constant('mod_tp_dst' as const), port: fc.integer({ min: 0, max: 65535 }) }),
            fc.record({ type: fc.constant('mod_nw_tos' as const), tos: fc.integer({ min: 0, max: 255 }) }),
            fc.constant({ type: 'dec_ttl' as const }),
            fc.record({ type: fc.constant('mod_vlan_vid' as const), vid: fc.integer({ min: 0, max: 4095 }) }),
            fc.constant({ type: 'strip_vlan' as const }),
          ),
          { maxLength: 8 },
        ),
        fc.integer({ min: 0, max: 300 }),
        (tcp, actions, payload) => {
          const r = rig();
          r.table.add({ priority: 10, actions: [...(actions as Action[]), out(2)] });
          const f = ip4({ l4: tcp ? TCP_SPEC : { proto: 'udp', srcPort: 1, dstPort: 2 }, payload });
          r.inject(1, [f]);
          for (const got of r.sent(2)) expect(checksumsValid(got)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('pipeline: OpenFlow output-copy semantics', () => {
  it('output:2,mod_dl_dst,output:3 sends the original to 2 and the modified frame to 3', () => {
    const r = rig();
    r.table.add({ priority: 10, actions: [out(2), { type: 'mod_dl_dst', ...MAC.x }, out(3)] });
    const f = ip4();
    r.inject(1, [f, f]);
    expect(r.sent(2)).toEqual([f, f]);
    expect(r.sent(3)).toEqual([ip4({ dst: MAC.x }), ip4({ dst: MAC.x })]);
  });

  it('every output sees the frame as it was at that point (three versions, VLAN push in a copy)', () => {
    const r = rig({ nPorts: 4 });
    r.table.add({
      priority: 10,
      actions: [
        { type: 'mod_nw_dst', addr: IP.c },
        out(2),
        { type: 'mod_vlan_vid', vid: 5 },
        out(3),
        { type: 'strip_vlan' },
        { type: 'mod_tp_dst', port: 9 },
        out(4),
        out(2),
      ],
    });
    r.inject(1, [ip4()]);
    const v1 = ip4({ ipDst: IP.c });
    const v2 = ip4({ ipDst: IP.c, vlans: [{ vid: 5 }] });
    const v3 = ip4({ ipDst: IP.c, l4: { proto: 'udp', srcPort: 5000, dstPort: 9 } });
    expect(r.sent(2)).toEqual([v1, v3]);
    expect(r.sent(3)).toEqual([v2]);
    expect(r.sent(4)).toEqual([v3]);
    expect(r.sw.pipeline!.exec.nCopies).toBe(2);
  });

  it('counts output_copy_exhausted when the copy slab is full, and keeps earlier outputs', () => {
    // Room for two copies of these ~1.5 KiB frames (each copy takes HEADROOM + size bytes).
    const r = rig({ sw: { copySlabSize: 2 * (128 + 1500) } });
    r.table.add({ priority: 10, actions: [out(2), { type: 'mod_tp_dst', port: 1 }, out(3)] });
    const frames = Array.from({ length: 5 }, () => ip4({ payload: 1400 }));
    r.inject(1, frames);
    expect(r.sent(2)).toHaveLength(5);
    expect(r.sent(3)).toHaveLength(2);
    expect(r.drops(1, DropReason.OUTPUT_COPY_EXHAUSTED)).toBe(3);
    // The slab is reset per batch.
    r.inject(1, frames.slice(0, 2));
    expect(r.sent(3)).toHaveLength(4);
  });

  it('a full default copy slab is never reached by two copies per frame of a full batch', () => {
    const r = rig();
    r.table.add({ priority: 10, actions: [out(2), { type: 'mod_tp_dst', port: 1 }, out(3), { type: 'mod_tp_dst', port: 2 }, out(3)] });
    const frames = Array.from({ length: 64 }, () => ip4({ payload: 1400 }));
    r.inject(1, frames);
    expect(r.sent(2)).toHaveLength(64);
    expect(r.sent(3)).toHaveLength(128); // more than one TxQueue's worth: flushed in chunks
    expect(r.drops(1, DropReason.OUTPUT_COPY_EXHAUSTED)).toBe(0);
  });
});

describe('pipeline: VLAN push on one port, pop on another', () => {
  it('tags frames from p1 towards p2 and untags frames from p2 towards p1', () => {
    const r = rig();
    r.table.add({ priority: 10, match: exact({ [K.IN_PORT]: 1 }), actions: [{ type: 'mod_vlan_vid', vid: 10 }, out(2)] });
    r.table.add({
      priority: 10,
      match: masked({ [K.IN_PORT]: [2, 0xffffffff], [K.VLAN_TCI]: [0x1000 | 10, 0x1fff] }),
      actions: [{ type: 'strip_vlan' }, out(1)],
    });
    const plain = ip4({ l4: TCP_SPEC });
    const tagged = ip4({ l4: TCP_SPEC, vlans: [{ vid: 10 }] });
    r.inject(1, [plain]);
    expect(r.sent(2)).toEqual([tagged]);
    r.inject(2, [tagged]);
    expect(r.sent(1)).toEqual([plain]);
    // Round trip through both ports in one go, checksums intact.
    r.inject(2, [r.sent(2)[0]!]);
    expect(r.sent(1)[1]).toEqual(plain);
    expect(checksumsValid(r.sent(1)[1]!)).toBe(true);
  });
});

describe('pipeline: resubmit and goto_table', () => {
  it('a modified key chooses a different rule in the next table', () => {
    const r = rig();
    const t0 = r.table.add({ priority: 10, match: exact({ [K.IN_PORT]: 1 }), actions: [{ type: 'mod_nw_dst', addr: IP.c }, { type: 'goto_table', table: 1 }] });
    const t1a = r.table.add({ table: 1, priority: 10, match: exact({ [K.NW_DST]: IP.b }), actions: [out(2)] });
    const t1b = r.table.add({ table: 1, priority: 10, match: exact({ [K.NW_DST]: IP.c }), actions: [out(3)] });
    r.inject(1, [ip4(), ip4()]);
    expect(r.sent(3)).toEqual([ip4({ ipDst: IP.c }), ip4({ ipDst: IP.c })]);
    expect(r.sent(2)).toHaveLength(0);
    expect([r.table.nPackets[t0], r.table.nPackets[t1a], r.table.nPackets[t1b]]).toEqual([2, 0, 2]);
  });

  it('resubmit(port,table) uses the port for the lookup only, then continues the caller’s actions', () => {
    const r = rig();
    r.table.add({ priority: 10, match: exact({ [K.IN_PORT]: 1 }), actions: [{ type: 'resubmit', port: 3, table: 1 }, out(2)] });
    r.table.add({ table: 1, priority: 10, match: exact({ [K.IN_PORT]: 3 }), actions: [{ type: 'mod_dl_dst', ...MAC.x }, { type: 'in_port' }] });
    r.inject(1, [ip4()]);
    // IN_PORT inside the resubmitted rule is the real in-port (1), as in OVS.
    expect(r.sent(1)).toEqual([ip4({ dst: MAC.x })]);
    expect(r.sent(2)).toEqual([ip4({ dst: MAC.x })]);
  });

  it('a miss in a later table runs nothing; a resubmit loop is cut off and counted', () => {
    const r = rig();
    r.table.add({ priority: 10, match: exact({ [K.IN_PORT]: 1 }), actions: [{ type: 'resubmit', port: OFPP.IN_PORT, table: 7 }] });
    r.inject(1, [ip4()]);
    expect(r.drops(1, DropReason.TABLE_MISS)).toBe(1);
    const loop = r.table.add({ table: 5, priority: 1, actions: [{ type: 'resubmit', port: OFPP.IN_PORT, table: 5 }, out(2)] });
    r.table.add({ priority: 10, match: exact({ [K.IN_PORT]: 2 }), actions: [out(3), { type: 'goto_table', table: 5 }] });
    r.inject(2, [ip4()]);
    expect(r.drops(2, DropReason.RESUBMIT_LIMIT)).toBe(1);
    expect(r.sent(3)).toHaveLength(0); // the whole translation is abandoned, as OVS does
    expect(r.table.nPackets[loop]).toBe(63);
  });

  it('a long program (more than an EMC entry holds) runs uncached, correctly', () => {
    const r = rig({ nPorts: 3 });
    const many: Action[] = [];
    for (let i = 0; i < 40; i++) many.push({ type: 'mod_tp_dst', port: i });
    r.table.add({ priority: 10, actions: [...many, out(2)] });
    r.inject(1, [ip4(), ip4()]);
    expect(r.sent(2)).toEqual([ip4({ l4: { proto: 'udp', srcPort: 5000, dstPort: 39 } }), ip4({ l4: { proto: 'udp', srcPort: 5000, dstPort: 39 } })]);
    expect(r.sw.pipeline!.nUncached).toBe(2);
  });
});

describe('pipeline: counters are exact over hits and misses', () => {
  it('credits every traversed rule once per frame, mixed flows over several batches', () => {
    const r = rig();
    const a = r.table.add({ priority: 20, match: exact({ ...UDP, [K.TP_DST]: 53 }), actions: [{ type: 'resubmit', port: OFPP.IN_PORT, table: 1 }] });
    const b = r.table.add({ priority: 10, match: exact(UDP), actions: [out(2)] });
    const c = r.table.add({ table: 1, priority: 1, actions: [out(3)] });
    let nA = 0;
    let nB = 0;
    let bytesA = 0;
    for (let round = 0; round < 5; round++) {
      const frames = Array.from({ length: 1 + round * 7 }, (_, i) => {
        const dns = (i + round) % 3 === 0;
        const f = ip4({ l4: { proto: 'udp', srcPort: 1000 + (i % 5), dstPort: dns ? 53 : 80 }, payload: i });
        if (dns) {
          nA++;
          bytesA += f.length;
        } else {
          nB++;
        }
        return f;
      });
      r.inject(1, frames);
    }
    expect(r.table.nPackets[a]).toBe(nA);
    expect(r.table.nBytes[a]).toBe(bytesA);
    expect(r.table.nPackets[c]).toBe(nA);
    expect(r.table.nBytes[c]).toBe(bytesA);
    expect(r.table.nPackets[b]).toBe(nB);
    expect(r.sent(3)).toHaveLength(nA);
    expect(r.sent(2)).toHaveLength(nB);
    expect(r.sw.pipeline!.emc.nHits).toBeGreaterThan(0);
  });
});

describe('pipeline: dec_ttl expiry', () => {
  it('drops at TTL 1 and counts ttl_expired; outputs before dec_ttl still happen', () => {
    const r = rig();
    r.table.add({ priority: 10, actions: [out(3), { type: 'dec_ttl' }, out(2)] });
    r.inject(1, [ip4({ ttl: 1 }), ip4({ ttl: 0 }), ip4({ ttl: 2 })]);
    expect(r.sent(2)).toEqual([ip4({ ttl: 1 })]);
    expect(r.sent(3)).toEqual([ip4({ ttl: 1 }), ip4({ ttl: 0 }), ip4({ ttl: 2 })]);
    expect(r.drops(1, DropReason.TTL_EXPIRED)).toBe(2);
  });
});

describe('pipeline: packet-in', () => {
  it('calls the hook with the frame as modified so far, in-port, reason, table, rule and max_len', () => {
    const r = rig();
    r.table.add({ priority: 10, match: exact({ [K.IN_PORT]: 1 }), actions: [{ type: 'goto_table', table: 2 }] });
    const id = r.table.add({ table: 2, priority: 5, actions: [{ type: 'mod_nw_dst', addr: IP.c }, { type: 'controller', maxLen: 40 }, out(2)] });
    r.inject(1, [ip4()]);
    expect(r.packetIns).toHaveLength(1);
    const p = r.packetIns[0]!;
    expect(p).toMatchObject({ inPort: 1, reason: 'action', table: 2, ruleId: id, maxLen: 40 });
    expect(p.frame).toEqual(ip4({ ipDst: IP.c }).subarray(0, 40));
    expect(r.sent(2)).toEqual([ip4({ ipDst: IP.c })]);
  });

  it('reports no_match for the table-miss rule', () => {
    const r = rig({ tableMiss: false });
    const miss = r.table.add({ priority: 0, actions: [{ type: 'output', port: OFPP.CONTROLLER }] });
    r.inject(1, [ip4()]);
    expect(r.packetIns[0]).toMatchObject({ reason: 'no_match', table: 0, ruleId: miss, maxLen: 0xffff });
  });

  it('rate-limits packet-ins with a token bucket and counts the rest as packet_in_rate', () => {
    const r = rig({ sw: { packetInRate: 10, packetInBurst: 3 } });
    r.table.add({ priority: 10, actions: [{ type: 'controller', maxLen: 65535 }] });
    r.inject(1, Array.from({ length: 10 }, () => ip4()));
    expect(r.packetIns).toHaveLength(3);
    expect(r.drops(1, DropReason.PACKET_IN_RATE)).toBe(7);
    r.clock.now += 200; // 10/s → 2 tokens
    r.inject(1, Array.from({ length: 10 }, () => ip4()));
    expect(r.packetIns).toHaveLength(5);
    r.clock.now += 60_000; // refill caps at the burst
    r.inject(1, Array.from({ length: 10 }, () => ip4()));
    expect(r.packetIns).toHaveLength(8);
  });

  it('without a hook, counts no_controller', () => {
    const r = rig({ sw: { onPacketIn: undefined } });
    r.table.add({ priority: 10, actions: [{ type: 'controller', maxLen: 128 }] });
    r.inject(1, [ip4()]);
    expect(r.drops(1, DropReason.NO_CONTROLLER)).toBe(1);
  });
});

describe('pipeline: packet-out', () => {
  it('executes an operator-given action list on an operator-given frame', () => {
    const r = rig();
    const f = ip4({ l4: TCP_SPEC });
    r.sw.packetOut(f, OFPP.CONTROLLER, [out(2), { type: 'mod_nw_dst', addr: IP.far }, out(3)]);
    expect(r.sent(2)).toEqual([f]);
    expect(r.sent(3)).toEqual([ip4({ l4: TCP_SPEC, ipDst: IP.far })]);
    expect(checksumsValid(r.sent(3)[0]!)).toBe(true);
  });

  it('resubmit from a packet-out goes through the table and credits the rule', () => {
    const r = rig();
    const id = r.table.add({ table: 3, priority: 1, actions: [out(1)] });
    r.sw.packetOut(ip4(), 2, [{ type: 'resubmit', port: OFPP.IN_PORT, table: 3 }]);
    expect(r.sent(1)).toHaveLength(1);
    expect(r.table.nPackets[id]).toBe(1);
  });

  it('rejects a frame that does not parse', () => {
    const r = rig();
    expect(() => r.sw.packetOut(Buffer.alloc(5), OFPP.CONTROLLER, [out(1)])).toThrow(/runt/);
  });
});

describe('pipeline: trace', () => {
  it('lists each lookup with its rule, actions and the key after, and the resolved outputs', () => {
    const r = rig();
    r.inject(2, [ip4({ src: MAC.b, dst: MAC.bcast })]); // b learned on p2
    const t0 = r.table.add({ priority: 10, match: exact({ [K.IN_PORT]: 1 }), actions: [{ type: 'mod_nw_dst', addr: IP.c }, { type: 'resubmit', port: OFPP.IN_PORT, table: 1 }, out(3)] });
    const t1 = r.table.add({ table: 1, priority: 7, cookie: 0xabn, match: exact({ [K.NW_DST]: IP.c }), actions: [{ type: 'normal' }] });
    const trace = r.sw.trace(keyOf(ip4({ dst: MAC.b }), 1));
    expect(trace.steps.map((s) => [s.depth, s.table, s.ruleId, s.priority])).toEqual([
      [0, 0, t0, 10],
      [1, 1, t1, 7],
    ]);
    expect(trace.steps[1]!.cookie).toBe(0xabn);
    expect(trace.steps[0]!.key[K.NW_DST]).toBe(IP.c);
    expect(trace.steps[0]!.actions).toHaveLength(3);
    expect(trace.actions).toEqual(['mod_nw_dst:10.0.0.9', 'NORMAL → port p2 (learned)', 'output:p3']);
    expect(trace.rules).toEqual([t0, t1]);
    // Tracing does not learn or count.
    expect(r.table.nPackets[t0]).toBe(0);
    const miss = r.sw.trace(keyOf(ip4({ dst: MAC.x }), 3));
    expect(miss.steps.map((s) => s.ruleId)).toEqual([0]);
    expect(miss.actions).toEqual(['NORMAL → flood']);
  });

  it('shows a miss and the drop reason', () => {
    const r = rig({ tableMiss: false });
    const t = r.sw.trace(keyOf(ip4(), 1));
    expect(t.steps).toMatchObject([{ table: 0, ruleId: -1, priority: -1 }]);
    expect(t.actions).toEqual(['drop (table_miss)']);
  });
});
