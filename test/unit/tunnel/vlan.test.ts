import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { makeVlanTag, popVlan, pushVlan, pushVlanTag } from '../../../src/tunnel/vlan.js';
import * as fx from '../../fixtures/packet/frames.js';
import { hex } from '../../fixtures/packet/frames.js';

describe('pushVlan / popVlan', () => {
  it('push writes the tag after the MACs, in the headroom', () => {
    const buf = new Uint8Array(8 + 60).fill(0xa5);
    buf.set(fx.arpRequest, 8);
    const s = pushVlan(buf, 8, 60, 0x8100, 0x2064); // PCP 1, VID 100
    expect(s).toBe(4);
    expect(Array.from(buf.subarray(s, s + 18))).toEqual(
      Array.from(hex('ffff ffff ffff 5254 0012 3456 8100 2064 0806')),
    );
    expect(Array.from(buf.subarray(s + 16, s + 64))).toEqual(Array.from(fx.arpRequest.subarray(12)));
  });

  it('pop of the single-tag fixture gives the untagged frame', () => {
    const buf = Uint8Array.from(fx.vlanSingle);
    const s = popVlan(buf, 0, buf.length);
    expect(s).toBe(4);
    expect(Array.from(buf.subarray(s, s + 12))).toEqual(Array.from(fx.vlanSingle.subarray(0, 12)));
    expect(Array.from(buf.subarray(s + 12))).toEqual(Array.from(fx.vlanSingle.subarray(16)));
  });

  it('round trip over random frames, TPIDs and TCIs (twice: QinQ)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 14, maxLength: 200 }),
        fc.constantFrom(0x8100, 0x88a8, 0x9100),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        (frame, tpid, tci1, tci2) => {
          const buf = new Uint8Array(16 + frame.length);
          buf.set(frame, 16);
          let s = pushVlan(buf, 16, frame.length, 0x8100, tci1);
          s = pushVlanTag(buf, s, frame.length + 4, makeVlanTag(tpid, tci2));
          expect(s).toBe(8);
          expect((buf[s + 12]! << 8) | buf[s + 13]!).toBe(tpid);
          expect((buf[s + 14]! << 8) | buf[s + 15]!).toBe(tci2);
          s = popVlan(buf, s, frame.length + 8);
          s = popVlan(buf, s, frame.length + 4);
          expect(s).toBe(16);
          expect(Array.from(buf.subarray(16))).toEqual(Array.from(frame));
        },
      ),
    );
  });

  it('refuses without headroom, short frames, or no tag (returns -1, buffer unchanged)', () => {
    const buf = Uint8Array.from(fx.arpRequest);
    expect(pushVlan(buf, 3, 57, 0x8100, 1)).toBe(-1);
    expect(pushVlan(buf, 4, 13, 0x8100, 1)).toBe(-1);
    expect(popVlan(buf, 0, 60)).toBe(-1); // ARP: no tag
    expect(popVlan(fx.vlanSingle, 0, 17)).toBe(-1);
    expect(Array.from(buf)).toEqual(Array.from(fx.arpRequest));
  });
});
