/**
 * Fuzz target "flow-syntax": the ovs-ofctl flow parser (src/flow/parse.ts) as limectl
 * add-flow/mod-flows/del-flows, trace and packet-out use it, on arbitrary strings, token
 * soups from the grammar and edits of flows ovs-ofctl accepts (arbitraries/flows.ts).
 *
 * For every text and every command: parseFlow either returns a flow or throws a
 * FlowSyntaxError whose column lies inside the text (+1 for "at the end") and whose
 * message names no `undefined`/`NaN` the text did not contain — never a TypeError,
 * RangeError or any other error. Every flow it returns prints (print.ts) to a text that
 * parses back to the same flow and prints the same again: parse(print(parse(x))) =
 * parse(x). parsePacket and parseActions likewise.
 *
 * Findings are saved in test/fixtures/fuzz-regression/flow-syntax/*.json
 * ({ "comment", "text", "rejected"?: true when no command may accept it }) and replayed
 * here.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowSyntaxError, parseActions, parseFlow, parsePacket } from '../../src/flow/parse.js';
import { formatActions, formatFlow, formatFlowHead } from '../../src/flow/print.js';
import type { Action, FlowSpec, PortNames } from '../../src/flow/types.js';
import { GOLDEN_FLOWS, PORT_NAMES, actionsText, grammarFlow, mutatedText } from './arbitraries/flows.js';
import { fuzzCheck, testTimeout, type Budget } from './budget.js';
import { jsonRegressions, replay } from './regressions.js';

const ports: PortNames = {
  numberOf: (name) => (Object.hasOwn(PORT_NAMES, name) ? PORT_NAMES[name] : undefined),
  nameOf: (num) => Object.keys(PORT_NAMES).find((n) => PORT_NAMES[n] === num),
};

const COMMANDS = ['add', 'modify', 'delete'] as const;

/** `err` must be the parser's own error, pointing inside `text`. */
function expectSyntaxError(err: unknown, text: string): void {
  if (!(err instanceof FlowSyntaxError)) throw new Error(`not a FlowSyntaxError: ${String(err)}`, { cause: err });
  expect(err.message).toMatch(/^flow syntax error at column \d+: ./s);
  expect(err.column).toBeGreaterThanOrEqual(1);
  expect(err.column).toBeLessThanOrEqual(text.length + 1);
  expect(err.caret.split('\n').length).toBeGreaterThanOrEqual(2);
  for (const word of ['undefined', 'NaN']) if (!text.includes(word)) expect(err.detail).not.toContain(word);
}

/** A FlowSpec with its typed arrays as plain arrays, for deep comparison. */
function plain(spec: FlowSpec): unknown {
  return { ...spec, match: { value: [...spec.match.value], mask: [...spec.match.mask] }, actions: spec.actions.map(plainAction) };
}
function plainAction(a: Action): unknown {
  return a.type === 'set_field' ? { ...a, value: [...a.value] } : a;
}

/** print(spec) parses back to spec, and prints the same text again. */
function expectRoundTrip(spec: FlowSpec, command: (typeof COMMANDS)[number]): void {
  const print = (s: FlowSpec): string => (command === 'delete' ? formatFlowHead(s, { ports, command }) : formatFlow(s, { ports, command }));
  const printed = print(spec);
  let again: FlowSpec;
  try {
    again = parseFlow(printed, { command, ports });
  } catch (err) {
    throw new Error(`printed flow "${printed}" does not parse (${command}): ${(err as Error).message}`, { cause: err });
  }
  expect(plain(again), `round trip of "${printed}"`).toEqual(plain(spec));
  expect(print(again)).toBe(printed);
}

/** Every entry point on `text`; returns how many commands accepted it. */
function checkText(text: string): number {
  let accepted = 0;
  for (const command of COMMANDS) {
    let spec: FlowSpec;
    try {
      spec = parseFlow(text, { command, ports });
    } catch (err) {
      expectSyntaxError(err, text);
      continue;
    }
    accepted++;
    expectRoundTrip(spec, command);
  }
  try {
    parsePacket(text, ports);
  } catch (err) {
    expectSyntaxError(err, text);
  }
  checkActions(text);
  return accepted;
}

/** parseActions on `text`: an error of its own, or actions that print and parse back. */
function checkActions(text: string): void {
  let actions: Action[];
  try {
    actions = parseActions(text, ports);
  } catch (err) {
    expectSyntaxError(err, text);
    return;
  }
  const printed = formatActions(actions, ports);
  expect(parseActions(printed, ports).map(plainAction), `round trip of actions "${printed}"`).toEqual(actions.map(plainAction));
}

const BUDGET = {
  arbitrary: { share: 0.2, cost: 2 },
  grammar: { share: 0.35, cost: 2 },
  golden: { share: 0.3, cost: 2 },
  actions: { share: 0.15, cost: 1 },
} satisfies Record<string, Budget>;

describe('fuzz: flow-syntax parser', () => {
  it('gives a flow or its own error on arbitrary strings', () => {
    const text = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: fc.constantFrom(...'a=,/:()[]-> 0x19.'), maxLength: 60 }));
    fuzzCheck('flow-syntax/arbitrary', fc.property(text, (t) => void checkText(t)), BUDGET.arbitrary);
  }, testTimeout(BUDGET.arbitrary));

  it('gives a flow that round-trips, or its own error, on grammar token soups and their edits', () => {
    let accepted = 0;
    const text = fc.oneof({ weight: 2, arbitrary: grammarFlow }, { weight: 1, arbitrary: mutatedText(grammarFlow) });
    fuzzCheck('flow-syntax/grammar', fc.property(text, (t) => void (accepted += checkText(t))), BUDGET.grammar);
    // The soup must also reach the accepting paths (and so the round trip), not only errors.
    expect(accepted).toBeGreaterThan(0);
  }, testTimeout(BUDGET.grammar));

  it('gives a flow that round-trips, or its own error, on edited golden flows', () => {
    const golden = fc.constantFrom(...GOLDEN_FLOWS);
    fuzzCheck('flow-syntax/golden', fc.property(mutatedText(golden, 4), (t) => void checkText(t)), BUDGET.golden);
  }, testTimeout(BUDGET.golden));

  it('gives actions that round-trip, or its own error, on action lists', () => {
    fuzzCheck('flow-syntax/actions', fc.property(fc.oneof(actionsText, mutatedText(actionsText)), (t) => checkActions(t)), BUDGET.actions);
  }, testTimeout(BUDGET.actions));

  it('accepts every golden flow and round-trips it', () => {
    for (const text of GOLDEN_FLOWS) expect(checkText(text), text).toBeGreaterThan(0);
  });

  it('replays the saved findings (test/fixtures/fuzz-regression/flow-syntax)', () => {
    const ran = replay(jsonRegressions<{ text: string; rejected?: boolean }>('flow-syntax'), ({ text, rejected }) => {
      expect(typeof text).toBe('string');
      const accepted = checkText(text);
      if (rejected === true) expect(accepted, 'commands that accepted it').toBe(0);
    });
    expect(ran).toBeGreaterThan(0);
  });
});
