/**
 * The datapath's side of tunnels, with memory ports standing in for GRE ports: the key a
 * frame arrives with is its tun_id (matchable, and what it leaves a `key: flow` tunnel
 * with unless set_tunnel changes it), and a frame too big for a non-fragmenting tunnel is
 * dropped on the tunnel as tunnel_path_mtu and answered with ICMP "fragmentation needed".
 */
import { describe, expect, it } from 'vitest';
import type { Action } from '../../../src/flow/types.js';
import { MemoryPort } from '../../../src/io/memory.js';
import { buildFrame } from '../../../src/packet/build.js';
import { DropReason } from '../../../src/packet/drop.js';
import { K } from '../../../src/packet/key.js';
import { internetChecksum } from '../../../src/util/checksum.js';
import { DEFAULT_ICMP_SOURCE_MAC } from '../../../src/datapath/execute.js';
import { exact } from '../../helpers/linear-table.js';
import { IP, MAC, ip4, rig, type Rig } from './pipeline-rig.js';

const out = (port: number): Action => ({ type: 'output', port });

/** A memory port that behaves like a GRE port that does not fragment. */
class TunnelMemoryPort extends MemoryPort {
  constructor(
    name: string,
    n: number,
    readonly tunnelMaxFrame: number,
    readonly tunnelIcmpSource?: number,
  ) {
    super(name, n, 1500);
  }
}

function withTunnel(r: Rig, maxFrame: number, icmpSource?: number): TunnelMemoryPort {
  const t = new TunnelMemoryPort('gre1', 4, maxFrame, icmpSource);
  r.sw.addPort(t);
  t.start(r.batch, () => r.sw.process(r.batch), () => r.sw.portStateChanged(4));
  return t;
}

/** An IPv4 UDP frame of `size` bytes with DF as given. */
function sized(size: number, df: boolean, vlan = false): Buffer {
  const buf = Buffer.alloc(2048);
  const hdr = 14 + (vlan ? 4 : 0) + 20 + 8;
  const n = buildFrame(buf, 0, {
    dst: MAC.b,
    src: MAC.a,
    vlans: vlan ? [{ vid: 10 }] : undefined,
    ip: { version: 4, src: IP.a, dst: IP.b, df, id: 7 },
    l4: { proto: 'udp', srcPort: 1000, dstPort: 2000 },
    payload: Buffer.alloc(size - hdr, 0x11),
  });
  expect(n).toBe(size);
  return Buffer.from(buf.subarray(0, n));
}

describe('tunnel keys in the pipeline', () => {
  it('a frame from a tunnel matches tun_id = its key; others do not', () => {
    const r = rig();
    r.table.add({ priority: 100, match: exact({ [K.TUN_ID]: 42 }), actions: [out(3)] });
    r.table.add({ priority: 50, match: exact({ [K.IN_PORT]: 1 }), actions: [out(2)] });
    const f = ip4();
    r.ports[0]!.inject([f, f], [42, 7]);
    expect(r.sent(3)).toEqual([f]);
    expect(r.sent(2)).toEqual([f]);
    r.clearSent();
    r.inject(1, [f]); // not from a tunnel: tun_id 0
    expect(r.sent(3)).toHaveLength(0);
    expect(r.sent(2)).toEqual([f]);
  });

  it('outputs carry the frame\'s tun_id: the key it came with, or what set_tunnel set', () => {
    const r = rig();
    r.table.add({ priority: 100, match: exact({ [K.IN_PORT]: 1 }), actions: [out(2)] });
    r.table.add({ priority: 100, match: exact({ [K.IN_PORT]: 3 }), actions: [{ type: 'set_tunnel', tunId: 0x99n }, out(2)] });
    const f = ip4();
    r.ports[0]!.inject([f, f], [42, 43]);
    r.inject(1, [f]);
    r.ports[2]!.inject([f], [5]);
    expect(r.ports[1]!.sentTunKeys).toEqual([42, 43, 0, 0x99]);
  });

  it('a cached program does not leak one frame\'s tun_id into the next', () => {
    const r = rig();
    r.table.add({ priority: 100, match: exact({ [K.IN_PORT]: 1 }), actions: [out(2)] });
    const f = ip4();
    r.ports[0]!.inject([f], [11]); // tun_id is part of the EMC key: two entries
    r.inject(1, [f]);
    r.ports[0]!.inject([f], [11]);
    expect(r.ports[1]!.sentTunKeys).toEqual([11, 0, 11]);
  });
});

describe('frames too big for a tunnel', () => {
  it('IPv4 DF: dropped on the tunnel, ICMP fragmentation-needed back out of the in-port', () => {
    const r = rig();
    const t = withTunnel(r, 1472, IP.far); // e.g. path MTU 1500 − 28 bytes of IPv4 + GRE with key
    r.table.add({ priority: 100, match: exact({ [K.IN_PORT]: 1 }), actions: [out(4)] });
    const fits = sized(1472, true);
    const big = sized(1473, true);
    r.inject(1, [fits, big]);
    expect(t.sent).toEqual([fits]);
    expect(r.drops(4, DropReason.TUNNEL_PATH_MTU)).toBe(1);
    const icmp = r.sent(1);
    expect(icmp).toHaveLength(1);
    const a = icmp[0]!;
    // Ethernet back to the sender from lime's ICMP MAC.
    expect(a.subarray(0, 6)).toEqual(big.subarray(6, 12));
    expect(((a[6]! << 8) | a[7]!) >>> 0).toBe(DEFAULT_ICMP_SOURCE_MAC.hi);
    expect(a.readUInt16BE(12)).toBe(0x0800);
    // IPv4 from the tunnel's ICMP source to the sender; ICMP 3/4 with MTU 1472 − 14.
    expect(a.readUInt32BE(14 + 12)).toBe(IP.far);
    expect(a.readUInt32BE(14 + 16)).toBe(IP.a);
    expect(a[14 + 9]).toBe(1);
    expect(internetChecksum(a, 14, 20)).toBe(0);
    expect(a[34]).toBe(3);
    expect(a[35]).toBe(4);
    expect(a.readUInt16BE(34 + 6)).toBe(1458);
    expect(internetChecksum(a, 34, a.length - 34)).toBe(0);
    // The quoted header is the original's.
    expect(a.subarray(42, 62)).toEqual(big.subarray(14, 34));
  });

  it('without a tunnel ICMP source the answer comes from the packet\'s destination; a VLAN tag lowers the MTU by 4', () => {
    const r = rig();
    withTunnel(r, 1472);
    r.table.add({ priority: 100, match: exact({ [K.IN_PORT]: 1 }), actions: [out(4)] });
    r.inject(1, [sized(1500, true, true)]);
    const a = r.sent(1)[0]!;
    expect(a.readUInt16BE(12)).toBe(0x8100); // returns on the same VLAN
    expect(a.readUInt32BE(18 + 12)).toBe(IP.b);
    expect(a.readUInt16BE(18 + 20 + 6)).toBe(1472 - 14 - 4);
  });

  it('IPv4 without DF, and non-IP frames: dropped and counted, no ICMP', () => {
    const r = rig();
    withTunnel(r, 200);
    r.table.add({ priority: 100, match: exact({ [K.IN_PORT]: 1 }), actions: [out(4)] });
    r.inject(1, [sized(300, false)]);
    const arpish = Buffer.alloc(400, 0);
    arpish.writeUInt16BE(0x88b5, 12); // local experimental ethertype
    arpish[0] = 0x02;
    arpish[6] = 0x02;
    r.inject(1, [arpish]);
    expect(r.drops(4, DropReason.TUNNEL_PATH_MTU)).toBe(2);
    expect(r.sent(1)).toHaveLength(0);
  });

  it('flooding to a tunnel that cannot carry the frame still reaches the other ports', () => {
    const r = rig();
    const t = withTunnel(r, 200);
    const big = sized(400, true);
    r.inject(1, [big]); // table-miss NORMAL floods: p2, p3, and the tunnel
    expect(r.sent(2)).toEqual([big]);
    expect(r.sent(3)).toEqual([big]);
    expect(t.sent).toHaveLength(0);
    expect(r.drops(4, DropReason.TUNNEL_PATH_MTU)).toBe(1);
    expect(r.sent(1)).toHaveLength(1); // the ICMP answer
  });
});
