/**
 * Flow texts for fuzzing the ovs-ofctl flow-syntax parser (src/flow/parse.ts): token soups
 * drawn from the grammar (every field name, alias, shorthand, flag and action, with values
 * of every format, mostly of the right one, plus the near misses an operator types), the
 * golden corpus of flows ovs-ofctl itself accepts, and character-level mutations of both.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { FIELD_ALIASES, FIELD_NAMES, FIELDS, SHORTHANDS, TCP_FLAG_NAMES, type FieldFormat } from '../../../src/flow/fields.js';
import { NXM_NAMES } from '../../../src/flow/parse.js';

/** The input column of test/fixtures/flow/ovs-ofctl-golden.tsv: flows ovs-ofctl accepts. */
export const GOLDEN_FLOWS: readonly string[] = readFileSync(new URL('../../fixtures/flow/ovs-ofctl-golden.tsv', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l !== '' && !l.startsWith('#'))
  .map((l) => l.split('\t')[1]!);

/** Names a plain object answers from its prototype: a lookup table must not take them. */
const PROTOTYPE_KEYS = ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf'];
const prototypeKey = fc.constantFrom(...PROTOTYPE_KEYS);

/** Port names the fuzz tests' PortNames knows (one with characters other than letters). */
export const PORT_NAMES: Readonly<Record<string, number>> = { vm1: 1, vm2: 2, uplink: 100, 'tap-x.y': 4000 };

const numberText = fc.oneof(
  fc.nat({ max: 70000 }).map(String),
  fc.bigInt({ min: 0n, max: (1n << 70n) - 1n }).map((n) => `0x${n.toString(16)}`),
  fc.constantFrom('0', '00', '0x', '0x0', '-1', '1e3', '4095', '4096', '65535', '65536', '0xffff', '0x10000', '18446744073709551615', '18446744073709551616', '1.5', ' 1', 'NaN', ''),
);
const byteHex = fc.integer({ min: 0, max: 255 }).map((b) => b.toString(16).padStart(2, '0'));
const macText = fc.oneof(
  fc.array(byteHex, { minLength: 6, maxLength: 6 }).map((b) => b.join(':')),
  fc.array(byteHex, { minLength: 1, maxLength: 8 }).map((b) => b.join(':')),
  fc.constantFrom('ff:ff:ff:ff:ff:ff', '01:00:00:00:00:00', 'aa:bb:cc:dd:ee', 'aa-bb-cc-dd-ee-ff', 'gg:00:00:00:00:00', ':::::'),
);
const ipv4Text = fc.oneof(
  fc.array(fc.nat({ max: 300 }), { minLength: 4, maxLength: 4 }).map((o) => o.join('.')),
  fc.constantFrom('1.2.3', '1.2.3.4.5', '01.2.3.4', '0x1.2.3.4', '1..3.4', '255.255.255.255', '0.0.0.0'),
);
const ipv6Text = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 0x1ffff }).map((g) => g.toString(16)), { minLength: 1, maxLength: 9 }).map((g) => g.join(':')),
  fc.constantFrom('::', '::1', '2001:db8::1', '::ffff:1.2.3.4', '1::2::3', ':::', 'fe80::1%eth0', '2001:db8:0:0:0:0:0:1', '1:2:3:4:5:6:7:8:9'),
);
const portText = fc.oneof(fc.constantFrom(...Object.keys(PORT_NAMES), 'LOCAL', 'local', 'NORMAL', 'IN_PORT', 'CONTROLLER', 'NONE', 'ANY', 'vm9', 'TABLE'), numberText, prototypeKey);
const tcpFlagName = fc.constantFrom(...TCP_FLAG_NAMES, 'syn', 'SYN', 'bogus', '[100]', '[');
const tcpFlagsText = fc.oneof(
  fc.array(fc.tuple(fc.constantFrom('+', '-'), tcpFlagName), { minLength: 1, maxLength: 4 }).map((fs) => fs.map(([s, n]) => s + n).join('')),
  fc.array(tcpFlagName, { minLength: 1, maxLength: 3 }).map((fs) => fs.join('|')),
  fc.tuple(numberText, fc.option(numberText, { nil: undefined })).map(([v, m]) => (m === undefined ? v : `${v}/${m}`)),
);

function valueOf(format: FieldFormat): fc.Arbitrary<string> {
  switch (format) {
    case 'mac':
      return macText;
    case 'ipv4':
      return ipv4Text;
    case 'ipv6':
      return ipv6Text;
    case 'port':
      return portText;
    case 'frag':
      return fc.oneof(fc.constantFrom('no', 'yes', 'first', 'later', 'not_later', 'maybe'), prototypeKey);
    case 'tcp_flags':
      return tcpFlagsText;
    default:
      return numberText;
  }
}

/** Any value, of the right format for `format` most of the time, with a mask sometimes. */
function fieldValue(format: FieldFormat): fc.Arbitrary<string> {
  const value = fc.oneof({ weight: 4, arbitrary: valueOf(format) }, { weight: 1, arbitrary: fc.oneof(numberText, macText, ipv4Text, ipv6Text, portText) });
  const mask = fc.oneof(valueOf(format), fc.nat({ max: 130 }).map(String), fc.constant(''));
  return fc.tuple(value, fc.option(mask, { freq: 3, nil: undefined })).map(([v, m]) => (m === undefined ? v : `${v}/${m}`));
}

const fieldName = fc.constantFrom(...FIELD_NAMES, ...Object.keys(FIELD_ALIASES));
const fieldFormat = (name: string): FieldFormat => FIELDS[Object.hasOwn(FIELD_ALIASES, name) ? FIELD_ALIASES[name]! : (name as keyof typeof FIELDS)].format;
const matchItem: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fieldName.chain((f) => fieldValue(fieldFormat(f)).map((v) => `${f}=${v}`)) },
  { weight: 3, arbitrary: fc.constantFrom(...Object.keys(SHORTHANDS)) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('table', 'priority', 'idle_timeout', 'hard_timeout', 'out_port', 'duration', 'n_packets'), numberText).map(([k, v]) => `${k}=${v}`) },
  { weight: 1, arbitrary: fc.tuple(numberText, fc.option(numberText, { nil: undefined })).map(([v, m]) => `cookie=${v}${m === undefined ? '' : `/${m}`}`) },
  { weight: 1, arbitrary: fc.constantFrom('send_flow_rem', 'check_overlap', 'reset_counts', 'no_packet_counts', 'no_byte_counts') },
  { weight: 1, arbitrary: fc.constantFrom('nw_dstt=1', 'in_port', 'in_port=', '=5', 'priority=', 'tcp=1', 'actions', '(', 'ip,') },
  { weight: 1, arbitrary: fc.tuple(prototypeKey, fc.option(numberText, { nil: undefined })).map(([k, v]) => (v === undefined ? k : `${k}=${v}`)) },
);

const writableName = fc.constantFrom('dl_src', 'dl_dst', 'dl_vlan', 'vlan_tci', 'nw_src', 'nw_dst', 'nw_tos', 'ip_dscp', 'nw_ttl', 'tp_src', 'tp_dst', 'ipv6_src', 'ipv6_dst', 'tun_id', 'metadata', ...Object.values(NXM_NAMES), 'OXM_OF_TCP_DST', 'nw_proto', 'bogus', ...PROTOTYPE_KEYS);
const bitRange = fc.oneof(
  fc.constant('[]'),
  fc.nat({ max: 140 }).map((a) => `[${a}]`),
  fc.tuple(fc.nat({ max: 140 }), fc.nat({ max: 140 })).map(([a, b]) => `[${a}..${b}]`),
  fc.constantFrom('[', '[1..]', '[..2]', ''),
);
const subfield = fc.tuple(writableName, bitRange).map(([f, r]) => f + r);

const action: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('drop', 'NORMAL', 'normal', 'flood', 'ALL', 'in_port', 'local', 'strip_vlan', 'pop_vlan', 'dec_ttl', 'controller', 'CONTROLLER', 'frob', 'output', 'output:', 'resubmit(,)', 'controller()', 'normal:1'),
  portText.map((p) => `output:${p}`),
  portText,
  numberText.map((n) => `controller:${n}`),
  numberText.map((n) => `controller(max_len=${n})`),
  fc.tuple(fc.constantFrom('mod_vlan_vid', 'mod_vlan_pcp', 'push_vlan', 'mod_nw_tos', 'mod_tp_src', 'mod_tp_dst', 'set_tunnel', 'set_tunnel64', 'goto_table', 'resubmit'), numberText).map(([a, n]) => `${a}:${n}`),
  fc.tuple(fc.option(portText, { nil: '' }), fc.option(numberText, { nil: '' })).map(([p, t]) => `resubmit(${p},${t})`),
  fc.tuple(fc.constantFrom('mod_dl_src', 'mod_dl_dst'), macText).map(([a, m]) => `${a}:${m}`),
  fc.tuple(fc.constantFrom('mod_nw_src', 'mod_nw_dst'), ipv4Text).map(([a, m]) => `${a}:${m}`),
  fc.tuple(fc.oneof(numberText, macText, ipv4Text, ipv6Text), writableName).map(([v, f]) => `set_field:${v}->${f}`),
  fc.tuple(numberText, subfield).map(([v, s]) => `load:${v}->${s}`),
  fc.tuple(subfield, subfield).map(([a, b]) => `move:${a}->${b}`),
);

const delimiter = fc.constantFrom(',', ',', ' ', ', ', '\t', ',,', '\n');

/** An action list as text (what follows "actions="). */
export const actionsText: fc.Arbitrary<string> = fc
  .tuple(fc.array(action, { maxLength: 5 }), fc.constantFrom(',', ' ', ', '))
  .map(([as, d]) => as.join(d));

/** A flow text from the grammar's tokens: match items, then (mostly) actions. */
export const grammarFlow: fc.Arbitrary<string> = fc
  .tuple(fc.array(fc.tuple(matchItem, delimiter), { maxLength: 7 }), fc.option(fc.tuple(fc.constantFrom('actions=', 'action=', 'actions=', ' actions='), actionsText), { freq: 5, nil: undefined }))
  .map(([items, acts]) => items.map(([it, d]) => it + d).join('') + (acts === undefined ? '' : acts[0] + acts[1]));

/** Characters that matter to the scanner, and a few that should never matter. */
const SPECIAL = [',', ' ', '=', '/', ':', '(', ')', '[', ']', '-', '>', '.', '+', '|', '\t', '\n', '\r', '\0', 'x', '0', '9', 'é', '💥', '\u2028'];
const charEdit = fc.oneof(fc.constantFrom(...SPECIAL), fc.string({ minLength: 1, maxLength: 1 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));

type Edit = { op: 'insert' | 'replace'; at: number; text: string } | { op: 'delete' | 'repeat'; at: number; count: number } | { op: 'case'; at: number; count: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constantFrom('insert' as const, 'replace' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), text: fc.oneof(charEdit, matchItem, action) }),
  fc.record({ op: fc.constantFrom('delete' as const, 'repeat' as const, 'case' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), count: fc.integer({ min: 1, max: 12 }) }),
);

function applyEdit(s: string, e: Edit): string {
  const i = Math.min(Math.floor(e.at * (s.length + 1)), s.length);
  switch (e.op) {
    case 'insert':
      return s.slice(0, i) + e.text + s.slice(i);
    case 'replace':
      return s.slice(0, i) + e.text + s.slice(i + e.text.length);
    case 'delete':
      return s.slice(0, i) + s.slice(i + e.count);
    case 'repeat':
      return s.slice(0, i + e.count) + s.slice(i);
    case 'case': {
      const part = s.slice(i, i + e.count);
      return s.slice(0, i) + (part === part.toUpperCase() ? part.toLowerCase() : part.toUpperCase()) + s.slice(i + e.count);
    }
  }
}

/** `valid` texts with 1–maxEdits character-level edits. */
export function mutatedText(valid: fc.Arbitrary<string>, maxEdits = 3): fc.Arbitrary<string> {
  return fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: maxEdits })).map(([v, es]) => es.reduce(applyEdit, v));
}
