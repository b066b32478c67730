import { describe, expect, it } from 'vitest';
import { LogLimiter, withSuppressed } from '../../../src/util/log-limiter.js';

describe('LogLimiter', () => {
  it('lets one line per key per interval through and counts the rest', () => {
    let t = 1000;
    const lim = new LogLimiter(10_000, () => t);
    expect(lim.admit('a')).toBe(0);
    for (let i = 0; i < 500; i++) expect(lim.admit('a')).toBe(-1);
    expect(lim.admit('b')).toBe(0); // another kind is not held back by the first
    t += 9_999;
    expect(lim.admit('a')).toBe(-1);
    t += 1;
    expect(lim.admit('a')).toBe(501); // the next line carries the count
    expect(lim.admit('a')).toBe(-1);
    t += 10_000;
    expect(lim.admit('a')).toBe(1);
  });

  it('remembers a bounded number of keys, forgetting the oldest', () => {
    let t = 0;
    const lim = new LogLimiter(10_000, () => t, 3);
    for (const k of ['a', 'b', 'c']) expect(lim.admit(k)).toBe(0);
    expect(lim.admit('d')).toBe(0); // evicts a
    expect(lim.admit('a')).toBe(0); // a is new again (evicts b)
    expect(lim.admit('c')).toBe(-1);
    t = 1;
    expect(lim.admit('b')).toBe(0);
  });

  it('withSuppressed adds the count only when lines were held back', () => {
    expect(withSuppressed({ x: 1 }, 0)).toEqual({ x: 1 });
    expect(withSuppressed({ x: 1 }, 7)).toEqual({ x: 1, suppressed: 7 });
  });
});
