import { describe, expect, it } from 'vitest';
import { nativeProgram, NATIVE_PROGRAM_MAX, OP_LEARN, type NativeProgramContext } from '../../../src/datapath/native-program.js';
import { MacTable } from '../../../src/datapath/mac-table.js';
import { OP } from '../../../src/datapath/xlate.js';
import { loadNative } from '../../../src/io/native.js';

// MACs as the key holds them: a 16-bit high part and a 32-bit low part.
const A = { hi: 0x0200, lo: 0x0000000a }; // on port 1
const B = { hi: 0x0200, lo: 0x0000000b }; // on port 2
const C = { hi: 0x0200, lo: 0x0000000c }; // on port 7 (not the engine's)
const UNKNOWN = { hi: 0x0200, lo: 0x000000ff };
const BROADCAST = { hi: 0xffff, lo: 0xffffffff };
const MULTI = { hi: 0x0100, lo: 0x5e000001 };

function context(enginePorts = [1, 2, 3]): NativeProgramContext {
  const macTable = new MacTable(64, 300, Float64Array.of(1000));
  macTable.learn(A.hi, A.lo, 0, 1);
  macTable.learn(B.hi, B.lo, 0, 2);
  macTable.learn(C.hi, C.lo, 0, 7);
  return { macTable, enginePort: (p) => enginePorts.includes(p) };
}

/** xlate.ts layout: [length, nRules, rule ids…, ops…], at `base` inside a larger array. */
function prog(rules: number[], ops: number[], base = 3): Uint32Array {
  const words = [2 + rules.length + ops.length, rules.length, ...rules, ...ops];
  const a = new Uint32Array(base + words.length + 2).fill(0xdead);
  a.set(words, base);
  return a;
}

const normal = (inPort: number, src: { hi: number; lo: number }, dst: { hi: number; lo: number }, vlan = 0): number[] => [OP.NORMAL, inPort, vlan, src.hi, src.lo, dst.hi, dst.lo];

describe('nativeProgram: what the native engine may run', () => {
  it('keeps OUTPUTs to engine ports, and the rule ids to credit', () => {
    const p = nativeProgram(prog([4, 9], [OP.OUTPUT, 2, OP.OUTPUT, 3]), 3, context());
    expect(p && [...p]).toEqual([8, 2, 4, 9, OP.OUTPUT, 2, OP.OUTPUT, 3]);
  });

  it('turns a NORMAL between learned hosts into LEARN (the source kept alive) and an OUTPUT', () => {
    const p = nativeProgram(prog([0], normal(1, A, B)), 3, context());
    expect(p && [...p]).toEqual([10, 1, 0, OP_LEARN, 1, 0, A.hi, A.lo, OP.OUTPUT, 2]);
    const back = nativeProgram(prog([0], normal(2, B, A)), 3, context());
    expect(back && [...back]).toEqual([10, 1, 0, OP_LEARN, 2, 0, B.hi, B.lo, OP.OUTPUT, 1]);
  });

  it('uses the op number the engine knows as LEARN', () => {
    expect(OP_LEARN).toBe(loadNative().LIME_OP_LEARN);
  });

  it.each([
    ['a source not learned yet (learning to do)', normal(1, UNKNOWN, B)],
    ['a source learned on another port (a move to learn)', normal(3, A, B)],
    ['a source learned on another VLAN', normal(1, A, B, 5)],
    ['a multicast source (dropped and counted)', normal(1, MULTI, B)],
    ['an unknown destination (flooded)', normal(1, A, UNKNOWN)],
    ['a broadcast destination (flooded)', normal(1, A, BROADCAST)],
    ['a multicast destination (flooded)', normal(1, A, MULTI)],
    ['a destination on the in-port (dropped and counted)', normal(2, B, B)],
    ['a destination on a port the engine does not own', normal(1, A, C)],
    ['an OUTPUT to a port the engine does not own', [OP.OUTPUT, 7]],
    ['FLOOD', [OP.FLOOD, 1]],
    ['CONTROLLER', [OP.CONTROLLER, 128, 0, 4, 0]],
    ['DROP (its reason is counted in JavaScript)', [OP.DROP, 30]],
    ['SET_TUNNEL before an OUTPUT', [OP.SET_TUNNEL, 0, 42, OP.OUTPUT, 2]],
    ['a rewrite', [OP.SET_DL_SRC, 0x0200, 0x1, OP.OUTPUT, 2]],
    ['POP_VLAN', [OP.POP_VLAN, OP.OUTPUT, 2]],
    ['an unknown opcode', [63, OP.OUTPUT, 2]],
  ])('leaves to JavaScript: %s', (_what, ops) => {
    expect(nativeProgram(prog([1], ops), 3, context())).toBeNull();
  });

  it('refuses malformed programs and ones longer than the native cache holds', () => {
    const ctx = context();
    expect(nativeProgram(Uint32Array.of(), 0, ctx)).toBeNull();
    expect(nativeProgram(Uint32Array.of(9, 0, OP.OUTPUT, 2), 0, ctx)).toBeNull(); // length past the end
    expect(nativeProgram(Uint32Array.of(4, 5, OP.OUTPUT, 2), 0, ctx)).toBeNull(); // more rules than words
    expect(nativeProgram(Uint32Array.of(3, 0, OP.OUTPUT), 0, ctx)).toBeNull(); // operand missing
    const many = Array.from({ length: 31 }, () => [OP.OUTPUT, 2]).flat();
    expect(nativeProgram(prog([], many), 3, ctx)?.length).toBe(64);
    expect(nativeProgram(prog([1], many), 3, ctx)).toBeNull();
  });

  it('holds as many words as the native flow cache', () => {
    expect(NATIVE_PROGRAM_MAX).toBe(loadNative().LIME_FC_PROG_MAX);
  });
});
