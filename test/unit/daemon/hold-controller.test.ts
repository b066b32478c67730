/**
 * During a migration a rule that both forwards and sends to the controller only sends to
 * the controller, and the frame is forwarded by the site that held it once the packet-in
 * event is out (LIME §4.2.2): the monitor gets the event before any port gets the frame.
 */
import { describe, expect, it } from 'vitest';
import { FlowService } from '../../../src/daemon/flows.js';
import { Switch } from '../../../src/datapath/switch.js';
import { MemoryPort } from '../../../src/io/memory.js';
import { FrameBatch } from '../../../src/packet/batch.js';

function rig(): { sw: Switch; flows: FlowService; p1: MemoryPort; p2: MemoryPort; order: string[] } {
  const clock = 1_000_000;
  const names = ['p1', 'p2'];
  let sw: Switch | undefined;
  const flows = new FlowService({
    now: () => clock,
    ports: { numberOf: (n) => (names.indexOf(n) >= 0 ? names.indexOf(n) + 1 : undefined), nameOf: (n) => names[n - 1] },
    datapath: () => sw,
  });
  sw = new Switch({ now: () => clock, table: flows.table, onPacketIn: flows.onPacketIn });
  const batch = new FrameBatch();
  const order: string[] = [];
  const ports = names.map((n, i) => new MemoryPort(n, i + 1, 1500, { clock: () => clock }));
  for (const p of ports) {
    sw.addPort(p);
    p.start(batch, () => sw!.process(batch), () => undefined);
    const flush = p.flush.bind(p);
    p.flush = (slab: Buffer) => {
      if (p.tx.count > 0) order.push(`frame on ${p.name}`);
      return flush(slab);
    };
  }
  flows.monitor((e) => e.kind === 'packet_in' && order.push('event packet_in'));
  flows.flowMods({ command: 'ADD', text: { flows: ['priority=10,in_port=p1,actions=controller,output:p2'], lines: [1], source: '', more: false } });
  return { sw, flows, p1: ports[0]!, p2: ports[1]!, order };
}

const frame = (): Buffer => {
  const f = Buffer.alloc(60, 0x11);
  Buffer.from('020000000002' + '020000000001' + '88b5', 'hex').copy(f);
  return f;
};

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 10));

describe('forward-and-controller rules during a migration', () => {
  it('normally forward and send to the controller in the same pass', async () => {
    const r = rig();
    r.p1.inject([frame()]);
    await settle();
    expect(r.p2.sent).toHaveLength(1);
    expect(r.order).toEqual(['frame on p2', 'event packet_in']); // the frame left before the event
  });

  it('during a migration send the event first, then the held frame, once', async () => {
    const r = rig();
    r.sw.setHoldWithController(true);
    const f = frame();
    r.p1.inject([f]);
    expect(r.p2.sent).toHaveLength(0); // held
    await settle();
    expect(r.p2.sent).toEqual([f]);
    expect(r.order).toEqual(['event packet_in', 'frame on p2']);
  });

  it('leave rules that only forward, or only send to the controller, alone', async () => {
    const r = rig();
    r.flows.flowMods({ command: 'ADD', text: { flows: ['priority=20,in_port=p1,dl_type=0x88b5,actions=output:p2', 'priority=20,in_port=p2,actions=controller'], lines: [1, 2], source: '', more: false } });
    r.sw.setHoldWithController(true);
    r.p1.inject([frame()]);
    expect(r.p2.sent).toHaveLength(1); // not held
    r.p2.inject([frame()]);
    await settle();
    expect(r.order.filter((x) => x === 'event packet_in')).toHaveLength(1);
    expect(r.p1.sent).toHaveLength(0);
  });
});
