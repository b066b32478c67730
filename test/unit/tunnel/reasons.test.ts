import { describe, expect, it } from 'vitest';
import { DROP_REASON_COUNT, DROP_REASON_NAMES } from '../../../src/packet/drop.js';
import { TUNNEL_DROP_REASON_END, TUNNEL_DROP_REASON_NAMES, TunnelDropReason } from '../../../src/tunnel/reasons.js';

describe('tunnel drop reasons', () => {
  it('continue DropReason without a gap or a collision (move them into drop.ts together)', () => {
    const values = Object.values(TunnelDropReason).sort((a, b) => a - b);
    expect(values[0]).toBe(DROP_REASON_COUNT);
    expect(values).toEqual(values.map((_, i) => DROP_REASON_COUNT + i));
    expect(TUNNEL_DROP_REASON_END).toBe(DROP_REASON_COUNT + values.length);
    expect(DROP_REASON_NAMES.length).toBe(DROP_REASON_COUNT);
  });
  it('have snake_case names matching their keys', () => {
    for (const [k, v] of Object.entries(TunnelDropReason)) {
      expect(TUNNEL_DROP_REASON_NAMES[v - DROP_REASON_COUNT]).toBe(k.toLowerCase());
    }
  });
});
