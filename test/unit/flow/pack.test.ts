/**
 * Packed flows (src/flow/pack.ts): what a resync snapshot carries instead of flow text.
 * Unpacked at the other site, a flow must be the flow that parsing its text there gives —
 * ports named, not numbered — and a malformed buffer is refused with a reason, whole.
 */
import { describe, expect, it } from 'vitest';
import { FlowPackError, packedCount, packFlows, unpackFlows } from '../../../src/flow/pack.js';
import { parseFlow } from '../../../src/flow/parse.js';
import { formatFlow } from '../../../src/flow/print.js';
import { KEY_WORDS } from '../../../src/packet/key.js';
import type { InstalledFlow, PortNames } from '../../../src/flow/types.js';

const portsOf = (names: string[]): PortNames => ({
  numberOf: (n) => (names.indexOf(n) >= 0 ? names.indexOf(n) + 1 : undefined),
  nameOf: (n) => names[n - 1],
});
// The same port names, numbered differently at the two sites.
const atA = portsOf(['vm1', 'vm2', 'uplink']);
const atB = portsOf(['uplink', 'spare', 'vm2', 'vm1']);

const FLOWS = [
  'table=0,priority=100,cookie=0x2a,in_port=vm1,ip,nw_dst=10.1.0.0/16,actions=output:uplink',
  'priority=20,hard_timeout=30,idle_timeout=10,send_flow_rem,check_overlap,in_port=vm2,actions=drop',
  'table=3,priority=65535,cookie=0xffffffffffffffff,dl_vlan=42,dl_dst=02:00:00:00:00:01/ff:ff:ff:00:00:00,actions=strip_vlan,output:vm1,CONTROLLER:128',
  'priority=7,tcp6,ipv6_src=2001:db8::/32,tp_dst=443,actions=mod_vlan_vid:7,output:vm2,output:uplink',
  'priority=1,in_port=LOCAL,arp,actions=NORMAL',
  'priority=2,udp,nw_src=192.0.2.1,tp_src=53,actions=set_field:10.0.0.9->nw_dst,output:in_port',
  'table=1,priority=0,actions=drop',
];

/** Rules as the table holds them: parsed at A, created `age` ms before `now`. */
function rulesAt(texts: string[], ports: PortNames, now: number, age = 0): InstalledFlow[] {
  return texts.map((t) => ({ ...parseFlow(t, { command: 'add', ports }), createdAt: now - age }));
}

describe('packFlows / unpackFlows', () => {
  it('gives at the other site the flows that parsing their text there gives, ports named not numbered', () => {
    const packed = packFlows(rulesAt(FLOWS, atA, 50_000, 12_345), 50_000, atA);
    expect(packedCount(packed)).toBe(FLOWS.length);
    const got = unpackFlows(packed, atB);
    expect(got.map((f) => formatFlow(f.spec, { ports: atB }))).toEqual(FLOWS.map((t) => formatFlow(parseFlow(t, { command: 'add', ports: atB }), { ports: atB })));
    // The match words themselves, not only their printing: in_port is B's number for vm1 (4).
    for (let i = 0; i < FLOWS.length; i++) {
      const want = parseFlow(FLOWS[i]!, { command: 'add', ports: atB });
      expect(Array.from(got[i]!.spec.match.value)).toEqual(Array.from(want.match.value));
      expect(Array.from(got[i]!.spec.match.mask)).toEqual(Array.from(want.match.mask));
      expect(got[i]!.spec.actions).toEqual(want.actions);
      expect(got[i]!.spec.flags).toEqual(want.flags);
      expect(got[i]!.spec.cookie).toBe(want.cookie);
    }
    expect(got[0]!.spec.match.value[0]).toBe(4);
    expect(got.map((f) => f.ageMs)).toEqual(FLOWS.map(() => 12_345));
  });

  it('packs an empty table as a header alone', () => {
    const packed = packFlows([], 0);
    expect(packed.byteLength).toBe(12);
    expect(unpackFlows(packed)).toEqual([]);
  });

  it('is much smaller than the key: only the words a flow constrains travel', () => {
    const packed = packFlows(rulesAt(['priority=5,ip,nw_dst=10.0.0.1,actions=drop'], atA, 0), 0, atA);
    expect(packed.byteLength).toBeLessThan(12 + 32 + 3 * 8 + 2 + 'drop'.length + 1);
  });

  describe('refuses, with a reason, a buffer that is', () => {
    const good = packFlows(rulesAt(FLOWS.slice(0, 2), atA, 0), 0, atA);
    const edit = (f: (b: Uint8Array, v: DataView) => void): Uint8Array => {
      const b = Uint8Array.from(good);
      f(b, new DataView(b.buffer));
      return b;
    };
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['shorter than a header', good.subarray(0, 7), /truncated at byte 0/],
      ['not packed flows', edit((b) => b.set([0x7b, 0x22], 0)), /bad magic/],
      ['of another key layout', edit((_, v) => v.setUint32(4, KEY_WORDS + 1, true)), new RegExp(`${KEY_WORDS + 1} words, this build has ${KEY_WORDS}`)],
      ['truncated inside a flow', good.subarray(0, good.byteLength - 3), /truncated at byte/],
      ['counting more flows than it holds', edit((_, v) => v.setUint32(8, 3, true)), /truncated at byte/],
      ['followed by bytes', Uint8Array.from([...good, 0, 0]), /2 bytes after the last of 2 packed flows/],
      ['naming words past the key', edit((_, v) => v.setUint32(12 + 28, 0x80000000, true)), /words past the key/],
    ];
    it.each(cases)('%s', (_, bytes, why) => {
      expect(() => unpackFlows(bytes, atB)).toThrow(FlowPackError);
      expect(() => unpackFlows(bytes, atB)).toThrow(why);
    });

    it('naming a port this site does not have (in_port or an action)', () => {
      const onlyVm = portsOf(['vm1']);
      const inPort = packFlows(rulesAt(['priority=3,actions=drop', 'priority=3,in_port=vm2,actions=drop'], atA, 0), 0, atA);
      expect(() => unpackFlows(inPort, onlyVm)).toThrow(/flow 1: in_port vm2: .*unknown port "vm2"/);
      const out = packFlows(rulesAt(['priority=3,actions=output:uplink'], atA, 0), 0, atA);
      expect(() => unpackFlows(out, onlyVm)).toThrow(/flow 0: actions "output:uplink": .*unknown port/);
    });

    it('holding text that is not UTF-8', () => {
      const b = packFlows(rulesAt(['priority=3,actions=drop'], atA, 0), 0, atA);
      b[b.byteLength - 1] = 0xff;
      expect(() => unpackFlows(b)).toThrow(/not UTF-8/);
    });
  });
});
