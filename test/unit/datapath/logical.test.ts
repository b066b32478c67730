/**
 * LIME's tunnel at egress in the switch: output to a host at the peer site goes to the
 * inter-site port with the host's tunnel id; a frame from that port is delivered to the
 * host its tunnel id names, without the table; a flood crosses once.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { Switch } from '../../../src/datapath/switch.js';
import { MemoryPort } from '../../../src/io/memory.js';
import { FrameBatch } from '../../../src/packet/batch.js';
import { DropReason } from '../../../src/packet/drop.js';
import { FLOOD_TUNNEL_ID } from '../../../src/tunnel/logical.js';

const mac = (n: number): string => `02000000000${n}`;
function frame(dst: string, src: string, size = 60): Buffer {
  const f = Buffer.alloc(size, 0x5a);
  Buffer.from(dst + src + '88b5', 'hex').copy(f);
  return f;
}

describe('Switch with hosts at two sites', () => {
  const clock = 1_000_000;
  let sw: Switch;
  let batch: FrameBatch;
  // Ports 1–3 are hosts vm1 (here), vm2 (here), vm3 (at the peer); port 4 the inter-site tunnel.
  let vm1: MemoryPort, vm2: MemoryPort, vm3: MemoryPort, wan: MemoryPort;

  beforeEach(() => {
    sw = new Switch({ now: () => clock });
    batch = new FrameBatch();
    [vm1, vm2, vm3, wan] = ['vm1', 'vm2', 'vm3', 'wan'].map((n, i) => new MemoryPort(n, i + 1, 1500, { clock: () => clock })) as [MemoryPort, MemoryPort, MemoryPort, MemoryPort];
    for (const p of [vm1, vm2, vm3, wan]) {
      sw.addPort(p);
      p.start(batch, () => sw.process(batch), () => sw.portStateChanged(p.number));
    }
    sw.setLocations(4, [
      { port: 1, tunnelId: 101, here: true },
      { port: 2, tunnelId: 102, here: true },
      { port: 3, tunnelId: 103, here: false },
    ]);
  });

  it('sends a frame for a host at the peer to the tunnel with its tunnel id, and nowhere else', () => {
    vm3.state = 'down'; // its port here is not attached: the host is at the peer
    sw.portStateChanged(3);
    wan.inject([frame(mac(1), mac(3))], [101]); // from the peer: delivered to vm1, nothing learned
    vm1.sent.length = 0;
    const f = frame(mac(3), mac(1));
    vm1.inject([f]); // unknown destination: flooded — vm2 here, one copy to the peer
    expect(vm2.sent).toEqual([f]);
    expect(vm3.sent).toHaveLength(0);
    expect(wan.sent).toEqual([f]);
    expect(wan.sentTunKeys).toEqual([FLOOD_TUNNEL_ID]);
    // Once vm3's MAC is on port 3 (learned there before it moved), unicast goes to the tunnel keyed 103.
    sw.macTable.learn(0x0200, 3, 0, 3, clock);
    wan.sent.length = 0;
    wan.sentTunKeys.length = 0;
    vm2.sent.length = 0;
    vm1.inject([f]);
    expect(wan.sent).toEqual([f]);
    expect(wan.sentTunKeys).toEqual([103]);
    expect(vm2.sent).toHaveLength(0);
  });

  it('delivers a frame from the peer to the host its tunnel id names, without learning or counting a flow', () => {
    const f = frame(mac(1), mac(3));
    wan.inject([f], [101]);
    expect(vm1.sent).toEqual([f]);
    expect(vm2.sent).toHaveLength(0);
    expect(wan.sent).toHaveLength(0); // never back
    expect(sw.macTable.lookup(0x0200, 3, 0, clock)).toBe(-1); // the peer's host was not learned
    expect(sw.rxPackets[4]).toBe(1);
  });

  it('delivers a flood copy from the peer to every host here, once each', () => {
    const f = frame('ffffffffffff', mac(3));
    wan.inject([f], [FLOOD_TUNNEL_ID]);
    expect(vm1.sent).toEqual([f]);
    expect(vm2.sent).toEqual([f]);
    expect(vm3.sent).toHaveLength(0);
    expect(wan.sent).toHaveLength(0);
  });

  it('drops and counts a frame from the peer whose tunnel id names no host here', () => {
    wan.inject([frame(mac(1), mac(3)), frame(mac(3), mac(1))], [999, 103]);
    expect(vm1.sent).toHaveLength(0);
    expect(vm3.sent).toHaveLength(0);
    expect(wan.sent).toHaveLength(0);
    expect(sw.dropCounts(4)[DropReason.TUNNEL_NO_HOST]).toBe(2);
  });

  it('a moved host is delivered locally again, and the tunnel stops carrying its frames', () => {
    sw.setLocations(4, [
      { port: 1, tunnelId: 101, here: true },
      { port: 2, tunnelId: 102, here: true },
      { port: 3, tunnelId: 103, here: true },
    ]);
    sw.macTable.learn(0x0200, 3, 0, 3, clock);
    const f = frame(mac(3), mac(1));
    vm1.inject([f]);
    expect(vm3.sent).toEqual([f]);
    expect(wan.sent).toHaveLength(0);
    const back = frame(mac(3), mac(2));
    wan.inject([back], [103]);
    expect(vm3.sent.at(-1)).toEqual(back);
  });

  it('never floods to the inter-site port as a port of its own', () => {
    sw.setLocations(4, [{ port: 1, tunnelId: 101, here: true }, { port: 2, tunnelId: 102, here: true }, { port: 3, tunnelId: 103, here: true }]);
    vm1.inject([frame('ffffffffffff', mac(1))]);
    expect(wan.sent).toHaveLength(0);
    expect(vm2.sent).toHaveLength(1);
    expect(vm3.sent).toHaveLength(1);
  });

  it('tells the hook when a host placed at the peer sends here, before its frames are switched', () => {
    const seen: number[] = [];
    sw.pipeline.exec.onHostArrived = (port) => {
      seen.push(port);
      // What the daemon does: the host is here now.
      sw.setLocations(4, [{ port: 1, tunnelId: 101, here: true }, { port: 2, tunnelId: 102, here: true }, { port: 3, tunnelId: 103, here: true }]);
    };
    vm1.inject([frame(mac(2), mac(1))]); // a host that is here: no call
    expect(seen).toEqual([]);
    const f = frame(mac(1), mac(3));
    vm3.inject([f]);
    expect(seen).toEqual([3]);
    expect(vm1.sent.at(-1)).toEqual(f); // switched at once, learned on port 3
    expect(sw.macTable.lookup(0x0200, 3, 0, clock)).toBe(3);
    vm3.inject([f]);
    expect(seen).toEqual([3]); // once: the host is local now
  });
});
