/** parseFlow semantics beyond printing: defaults per command, FlowMod, aliases, actions. */
import { describe, expect, it } from 'vitest';
import { K } from '../../../src/packet/key.js';
import { parseActions, parseFlow, parseFlowMod } from '../../../src/flow/parse.js';
import { OFPP, type PortNames } from '../../../src/flow/types.js';

const ports: PortNames = { numberOf: (n) => ({ vm1: 1, uplink: 2 })[n], nameOf: (p) => ({ 1: 'vm1', 2: 'uplink' })[p] };

describe('parseFlow', () => {
  it('defaults: table 0 and priority 32768 for add; all tables (255) for modify/delete', () => {
    const add = parseFlow('actions=drop', { command: 'add' });
    expect([add.table, add.priority, add.cookie, add.cookieMask]).toEqual([0, 32768, 0n, 0n]);
    expect(parseFlow('actions=drop', { command: 'modify' }).table).toBe(255);
    expect(parseFlow('ip', { command: 'delete' }).table).toBe(255);
    expect(parseFlow('table=0,ip', { command: 'delete' }).table).toBe(0);
  });
  it('cookie/mask selects flows on modify and delete', () => {
    const d = parseFlow('cookie=0x10/0xf0,ip', { command: 'delete' });
    expect([d.cookie, d.cookieMask]).toEqual([0x10n, 0xf0n]);
  });
  it('parseFlowMod carries out_port and strictness', () => {
    const fm = parseFlowMod('ip,out_port=uplink', { command: 'delete', strict: true, ports });
    expect(fm.command).toBe('delete_strict');
    expect(fm.outPort).toBe(2);
    expect(parseFlowMod('ip', { command: 'delete' }).outPort).toBe(OFPP.NONE);
  });
  it('accepts the OXM/transport aliases and white space as separators', () => {
    const a = parseFlow('udp udp_dst=53 ip_src=10.0.0.1 actions=output:1', { command: 'add' });
    expect(a.match.value[K.TP_DST]).toBe(53);
    expect(a.match.value[K.NW_SRC]).toBe(0x0a000001);
  });
  it('flags', () => {
    const f = parseFlow('send_flow_rem,reset_counts,no_byte_counts,actions=drop', { command: 'add' });
    expect(f.flags).toEqual({ sendFlowRem: true, checkOverlap: false, resetCounts: true, noPacketCounts: false, noByteCounts: true });
  });
  it('dl_vlan=0xffff matches untagged frames only (the whole TCI is 0)', () => {
    const f = parseFlow('dl_vlan=0xffff,actions=drop', { command: 'add' });
    expect([f.match.value[K.VLAN_TCI], f.match.mask[K.VLAN_TCI]]).toEqual([0, 0xffff]);
  });
});

describe('parseActions', () => {
  it('reserved ports, bare port numbers and names, controller forms', () => {
    expect(parseActions('output:NORMAL,flood,ALL,in_port,output:LOCAL,3,vm1,controller,CONTROLLER:100,controller(max_len=50),output:65534', ports)).toEqual([
      { type: 'normal' },
      { type: 'flood' },
      { type: 'all' },
      { type: 'in_port' },
      { type: 'local' },
      { type: 'output', port: 3 },
      { type: 'output', port: 1 },
      { type: 'controller', maxLen: 65535 },
      { type: 'controller', maxLen: 100 },
      { type: 'controller', maxLen: 50 },
      { type: 'local' },
    ]);
  });
  it('drop and the empty list are both [{ type: "drop" }]', () => {
    expect(parseActions('drop')).toEqual([{ type: 'drop' }]);
    expect(parseActions('')).toEqual([{ type: 'drop' }]);
  });
  it('resubmit forms', () => {
    expect(parseActions('resubmit:3,resubmit(,4),resubmit(5,6),resubmit(vm1)', ports)).toEqual([
      { type: 'resubmit', port: 3, table: 255 },
      { type: 'resubmit', port: OFPP.IN_PORT, table: 4 },
      { type: 'resubmit', port: 5, table: 6 },
      { type: 'resubmit', port: 1, table: 255 },
    ]);
  });
  it('load/move bit ranges and NXM names', () => {
    expect(parseActions('load:0x5->NXM_NX_TUN_ID[0..15],move:metadata[32..63]->tun_id[0..31],load:1->OXM_OF_METADATA[7]')).toEqual([
      { type: 'load', field: 'tun_id', value: 5n, ofs: 0, nBits: 16 },
      { type: 'move', src: 'metadata', srcOfs: 32, dst: 'tun_id', dstOfs: 0, nBits: 32 },
      { type: 'load', field: 'metadata', value: 1n, ofs: 7, nBits: 1 },
    ]);
  });
  it('set_field values are key words', () => {
    expect(parseActions('set_field:5->ip_dscp,set_field:7->dl_vlan,set_field:00:00:00:00:00:01->eth_src')).toEqual([
      { type: 'set_field', field: 'ip_dscp', value: Uint32Array.of(20) },
      { type: 'set_field', field: 'dl_vlan', value: Uint32Array.of(0x1007) },
      { type: 'set_field', field: 'dl_src', value: Uint32Array.of(0, 1) },
    ]);
  });
});
