/**
 * Every error class of the flow-syntax parser: exact message and the column of the
 * offending token (1-based, computed here from the text itself).
 */
import { describe, expect, it } from 'vitest';
import { FlowSyntaxError, parseActions, parseFlow, parsePacket } from '../../../src/flow/parse.js';
import type { PortNames } from '../../../src/flow/types.js';

const ports: PortNames = {
  numberOf: (n) => ({ vm1: 1, uplink: 2 })[n],
  nameOf: (p) => ({ 1: 'vm1', 2: 'uplink' })[p],
};

type Cmd = 'add' | 'modify' | 'delete';

/** The error parseFlow throws; fails the test when it does not throw a FlowSyntaxError. */
function errorOf(text: string, command: Cmd = 'add'): FlowSyntaxError {
  try {
    parseFlow(text, { command, ports });
  } catch (e) {
    expect(e).toBeInstanceOf(FlowSyntaxError);
    return e as FlowSyntaxError;
  }
  throw new Error(`no error for ${text}`);
}

/** Column (1-based) of the n-th occurrence of `token` in `text`. */
function col(text: string, token: string, nth = 0): number {
  let i = -1;
  for (let k = 0; k <= nth; k++) i = text.indexOf(token, i + 1);
  if (i < 0) throw new Error(`"${token}" not in "${text}"`);
  return i + 1;
}

function expectError(text: string, token: string, detail: string, command: Cmd = 'add', nth = 0): void {
  const e = errorOf(text, command);
  const c = col(text, token, nth);
  expect(e.message).toBe(`flow syntax error at column ${c}: ${detail}`);
  expect(e.column).toBe(c);
  expect(e.token).toBe(token);
  expect(e.name).toBe('FlowSyntaxError');
}

describe('FlowSyntaxError', () => {
  it('has the brief\'s example message and a two-line caret', () => {
    const text = 'ip,in_port=1,tcp,nw_dstt=10.0.0.1,actions=drop';
    const e = errorOf(text);
    expect(e.message).toBe('flow syntax error at column 18: unknown field "nw_dstt"');
    expect(e.caret).toBe(`${text}\n${' '.repeat(17)}^^^^^^^`);
    expect(e).toBeInstanceOf(Error);
  });
});

describe('malformed text', () => {
  it('a field without a value', () => expectError('ip,nw_ttl=,actions=drop', 'nw_ttl=', 'field nw_ttl missing value'));
  it('a bare "=value"', () => expectError('ip,=5,actions=drop', '=5', 'expected "name=value", got "=5"'));
  it('no actions on an add', () => {
    const e = errorOf('ip,in_port=1');
    expect(e.message).toBe('flow syntax error at column 13: must specify actions ("actions=…" at the end)');
  });
  it('actions on a delete', () => expectError('ip,actions=drop', 'actions', 'a delete takes no actions', 'delete'));
  it('unbalanced parentheses', () => expectError('actions=resubmit(,3', 'resubmit(,3', 'unbalanced parentheses'));
  it('drop with other actions', () => expectError('actions=output:1,drop', 'drop', '"drop" must not be accompanied by any other action'));
  it('a cookie mask on an add', () => expectError('cookie=0x1/0xff,actions=drop', '/0xff', 'flow additions cannot use a cookie mask'));
  it('timeouts on a delete', () => expectError('idle_timeout=5', 'idle_timeout', 'idle_timeout is not allowed in a delete', 'delete'));
});

describe('unknown field / action / port', () => {
  it('unknown field', () => expectError('tcp,tp_dstt=22,actions=drop', 'tp_dstt', 'unknown field "tp_dstt"'));
  it('unknown action', () => expectError('actions=output:1,frob', 'frob', 'unknown action "frob"'));
  it('unknown action with an argument', () => expectError('actions=frob:3', 'frob', 'unknown action "frob"'));
  it('unknown port in a match', () => expectError('in_port=vm9,actions=drop', 'vm9', 'unknown port "vm9"'));
  it('unknown port in output', () => expectError('in_port=vm1,actions=output:vm9', 'vm9', 'unknown port "vm9"'));
  it('unknown field in set_field', () => expectError('actions=set_field:1->nw_dstt', 'nw_dstt', 'unknown field "nw_dstt" in set_field'));
});

describe('bad values and masks', () => {
  it('bad IPv4 address', () => expectError('ip,nw_src=1.2.3,actions=drop', '1.2.3', 'bad value "1.2.3" for nw_src: invalid IPv4 address "1.2.3"'));
  it('bad MAC', () => expectError('dl_src=00:11:22:33:44,actions=drop', '00:11:22:33:44', 'bad value "00:11:22:33:44" for dl_src: invalid MAC address "00:11:22:33:44"'));
  it('not a number', () => expectError('ip,nw_ttl=ten,actions=drop', 'ten', 'bad value "ten" for nw_ttl: "ten" is not a number'));
  it('bad ip_frag keyword', () => expectError('ip,ip_frag=maybe,actions=drop', 'maybe', 'bad value "maybe" for ip_frag: expected no, yes, first, later or not_later'));
  it('bad mod_nw_tos (ECN bits set)', () => expectError('ip,actions=mod_nw_tos:3', '3', 'bad value "3" for mod_nw_tos: not a valid TOS (the low 2 bits, ECN, must be 0)'));
  it('bad mask: prefix too long', () => expectError('ip,nw_src=10.0.0.0/33,actions=drop', '33', 'bad mask "33" for nw_src: prefix length must be 0..32'));
  it('bad mask: not an address', () => expectError('ip,nw_dst=10.0.0.0/255.x,actions=drop', '255.x', 'bad mask "255.x" for nw_dst: invalid IPv4 address "255.x"'));
  it('mask on a field that does not accept one', () => expectError('ip,nw_proto=6/0xff,actions=drop', '/0xff', 'nw_proto does not accept a mask'));
  it('mask on in_port', () => expectError('in_port=1/1,actions=drop', '/1', 'in_port does not accept a mask'));
});

describe('prerequisites', () => {
  it('tp_dst without a transport protocol', () =>
    expectError('ip,tp_dst=22,actions=drop', 'tp_dst', 'tp_dst requires a transport protocol: add "tcp" or "udp" (or nw_proto=6/17 with ip/ipv6)'));
  it('nw_src without ip', () => expectError('nw_src=10.0.0.1,actions=drop', 'nw_src', 'nw_src requires IPv4: add "ip" (or dl_type=0x0800)'));
  it('arp_op without arp', () => expectError('ip,arp_op=1,actions=drop', 'arp_op', 'arp_op requires ARP: add "arp" or "rarp" (or dl_type=0x0806/0x8035)'));
  it('icmp_type with tcp', () =>
    expectError('tcp,icmp_type=8,actions=drop', 'icmp_type', 'icmp_type requires ICMP: add "icmp" or "icmp6" (or nw_proto=1 with ip, nw_proto=58 with ipv6)'));
  it('tcp_flags with udp', () => expectError('udp,tcp_flags=+syn,actions=drop', 'tcp_flags', 'tcp_flags requires TCP: add "tcp" or "tcp6" (or nw_proto=6 with ip/ipv6)'));
  it('ipv6_src with ip', () => expectError('ip,ipv6_src=::1,actions=drop', 'ipv6_src', 'ipv6_src requires IPv6: add "ipv6" (or dl_type=0x86dd)'));
  it('order does not matter: tp_dst before tcp is fine', () => {
    expect(() => parseFlow('tp_dst=22,tcp,actions=drop', { command: 'add' })).not.toThrow();
  });
  it('mod_tp_dst needs a transport protocol in the match', () =>
    expectError('ip,actions=mod_tp_dst:80', 'mod_tp_dst:80', 'mod_tp_dst requires, in the match, a transport protocol: add "tcp" or "udp" (or nw_proto=6/17 with ip/ipv6)'));
  it('mod_nw_src needs IPv4 in the match', () =>
    expectError('arp,actions=mod_nw_src:1.2.3.4', 'mod_nw_src:1.2.3.4', 'mod_nw_src requires, in the match, IPv4: add "ip" (or dl_type=0x0800)'));
  it('set_field to nw_dst needs IPv4', () =>
    expectError('actions=set_field:1.2.3.4->nw_dst', 'set_field:1.2.3.4->nw_dst', 'set_field to nw_dst requires, in the match, IPv4: add "ip" (or dl_type=0x0800)'));
  it('load into tp_src needs a transport protocol', () =>
    expectError('ip,actions=load:1->tp_src[]', 'tp_src[]', 'load to tp_src requires a transport protocol: add "tcp" or "udp" (or nw_proto=6/17 with ip/ipv6)'));
  it('parseActions alone does not check prerequisites', () => {
    expect(parseActions('mod_tp_dst:80')).toEqual([{ type: 'mod_tp_dst', port: 80 }]);
  });
});

describe('out-of-range values', () => {
  it('priority', () => expectError('priority=65536,actions=drop', '65536', 'priority 65536 out of range (0..65535)'));
  it('table (add)', () => expectError('table=255,actions=drop', '255', 'table 255 out of range (0..254)'));
  it('dl_vlan', () => expectError('dl_vlan=4096,actions=drop', '4096', 'dl_vlan 4096 out of range (0..4095, or 0xffff for no tag)'));
  it('dl_vlan_pcp', () => expectError('dl_vlan_pcp=8,actions=drop', '8', 'dl_vlan_pcp 8 out of range (0..7)'));
  it('idle_timeout', () => expectError('idle_timeout=70000,actions=drop', '70000', 'idle_timeout 70000 out of range (0..65535)'));
  it('hard_timeout', () => expectError('hard_timeout=65536,actions=drop', '65536', 'hard_timeout 65536 out of range (0..65535)'));
  it('cookie over 64 bits', () => expectError('cookie=0x10000000000000000,actions=drop', '0x10000000000000000', 'cookie 0x10000000000000000 out of range (64 bits)'));
  it('nw_ttl', () => expectError('ip,nw_ttl=256,actions=drop', '256', 'nw_ttl 256 out of range (0..255)'));
  it('tp_dst', () => expectError('tcp,tp_dst=65536,actions=drop', '65536', 'tp_dst 65536 out of range (0..65535)'));
  it('mod_vlan_vid', () => expectError('actions=mod_vlan_vid:4096', '4096', 'mod_vlan_vid 4096 out of range (0..4095)'));
  it('mod_vlan_pcp', () => expectError('actions=mod_vlan_pcp:8', '8', 'mod_vlan_pcp 8 out of range (0..7)'));
  it('controller max_len', () => expectError('actions=CONTROLLER:65536', '65536', 'max_len 65536 out of range (0..65535)'));
  it('goto_table', () => expectError('actions=goto_table:255', '255', 'goto_table 255 out of range (0..254)'));
  it('load value wider than the field', () => expectError('ip,actions=load:0x100->NXM_NX_IP_TTL[]', '0x100', 'load value 0x100 does not fit into 8 bits'));
  it('set_tunnel over 32 bits', () => expectError('actions=set_tunnel:0x100000000', '0x100000000', 'set_tunnel 0x100000000 out of range (32 bits; use set_tunnel64)'));
});

describe('parsePacket errors', () => {
  it('rejects masks', () => {
    expect(() => parsePacket('ip,nw_src=10.0.0.0/8')).toThrow(`flow syntax error at column ${col('ip,nw_src=10.0.0.0/8', '/8')}: a packet field takes no mask`);
  });
  it('rejects unknown fields and prerequisite violations', () => {
    expect(() => parsePacket('ip,foo=1')).toThrow('flow syntax error at column 4: unknown field "foo"');
    expect(() => parsePacket('ip,tp_dst=22')).toThrow('flow syntax error at column 4: tp_dst requires a transport protocol');
  });
});
