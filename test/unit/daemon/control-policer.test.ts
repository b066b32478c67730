import { describe, expect, it } from 'vitest';
import { ControlPolicer, type PolicerSample } from '../../../src/daemon/control-policer.js';

/** A 10 ms window with the loop busy and frames left waiting: `controlMs` of it went to control work. */
const saturated = (controlMs: number): PolicerSample => ({ wallMs: 10, loopBusyMs: 10, dataPathMs: 10 - controlMs, backlogged: true });
/** A 10 ms window with the loop mostly idle. */
const idle: PolicerSample = { wallMs: 10, loopBusyMs: 2, dataPathMs: 1, backlogged: false };

/** Ask for `n` admissions; returns how many ran at once and a list that fills as waiters are let in. */
function ask(p: ControlPolicer, n: number): { now: number; later: number[] } {
  const out = { now: 0, later: [] as number[] };
  for (let i = 0; i < n; i++) {
    const w = p.admit();
    if (w === undefined) out.now++;
    else void w.then(() => out.later.push(i));
  }
  return out;
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ControlPolicer', () => {
  it('admits everything at once while the data path is not saturated', () => {
    const p = new ControlPolicer({ share: 0.05 });
    expect(ask(p, 100).now).toBe(100);
    p.account(idle);
    expect(ask(p, 100).now).toBe(100);
    // a loop busy without frames left waiting is not saturation either
    p.account({ wallMs: 10, loopBusyMs: 10, dataPathMs: 6, backlogged: false });
    expect(p.status().saturated).toBe(false);
    // nor is a backlog while the loop still had time to spare
    p.account({ wallMs: 10, loopBusyMs: 8, dataPathMs: 6, backlogged: true });
    expect(p.status().saturated).toBe(false);
    expect(ask(p, 10).now).toBe(10);
    expect(p.status().deferred).toBe(0);
  });

  it('while saturated, admits only what the credit covers at the measured cost, the rest in later windows, in order', async () => {
    const p = new ControlPolicer({ share: 0.1, initialCostMs: 0.5 });
    p.account(idle); // credit refilled: 2 windows × 10 % × 10 ms = 2 ms
    p.account(saturated(0)); // saturated now; credit stays at the cap (2 ms) → 4 requests at 0.5 ms
    expect(p.status()).toMatchObject({ saturated: true, creditMs: 2 });
    const r = ask(p, 10);
    expect(r.now).toBe(4);
    expect(p.status()).toMatchObject({ waiting: 6, deferred: 6 });
    // the 4 used 2 ms: credit 2 + 1 - 2 = 1 ms, cost learned 0.5 → 2 more this window
    p.account(saturated(2));
    await flush();
    expect(r.later).toEqual([4, 5]);
    // they used 4 ms (2 ms each, more than thought): credit 1 + 1 - 4 = -2 → nobody for a while
    p.account(saturated(4));
    await flush();
    expect(r.later).toEqual([4, 5]);
    expect(p.status().creditMs).toBeCloseTo(-2);
    expect(p.status().costMs).toBeGreaterThan(0.5);
    p.account(saturated(0)); // -1
    p.account(saturated(0)); // 0
    await flush();
    expect(r.later).toEqual([4, 5]);
    p.account(saturated(0)); // +1: at least one more
    await flush();
    expect(r.later.length).toBeGreaterThanOrEqual(3);
    expect(r.later).toEqual([4, 5, 6, 7, 8, 9].slice(0, r.later.length));
    // a new request queues behind the waiting ones, never ahead of them
    const late = p.admit();
    expect(late).toBeInstanceOf(Promise);
  });

  it('lets every waiting request in as soon as the data path is no longer saturated', async () => {
    const p = new ControlPolicer({ share: 0.05 });
    p.account(saturated(10)); // saturated, and control took the whole window: deep debt
    const r = ask(p, 5);
    expect(r.now).toBe(0);
    p.account(idle);
    await flush();
    expect(r.later).toEqual([0, 1, 2, 3, 4]);
    expect(p.status()).toMatchObject({ saturated: false, waiting: 0, deferred: 5, saturatedWindows: 1 });
  });

  it('keeps control work near its share over many saturated windows', () => {
    const share = 0.05;
    const p = new ControlPolicer({ share });
    const costMs = 0.8; // what each admitted request really costs
    let pending = 0;
    let admittedInWindow = 0;
    let control = 0;
    const windows = 2000;
    for (let w = 0; w < windows; w++) {
      // a client with 16 requests outstanding: refill to 16 asking
      while (pending < 16) {
        const a = p.admit();
        pending++;
        if (a === undefined) admittedInWindow++;
        else void a.then(() => undefined);
      }
      const used = admittedInWindow * costMs;
      control += used;
      const before = p.status().waiting;
      p.account(saturated(Math.min(10, used)));
      const released = before - p.status().waiting;
      pending -= admittedInWindow;
      admittedInWindow = released;
    }
    expect(control / (windows * 10)).toBeGreaterThan(share * 0.5);
    expect(control / (windows * 10)).toBeLessThan(share * 1.5);
    expect(p.status().costMs).toBeCloseTo(costMs, 1);
  });

  it('admits the oldest waiting request after a second even when other control work keeps the credit below zero', async () => {
    const p = new ControlPolicer({ share: 0.05 });
    p.account(saturated(2)); // 2 ms of control work a window, four times the share: credit only falls
    const r = ask(p, 3);
    expect(r.now).toBe(0);
    let windows = 0;
    while (r.later.length === 0 && windows < 500) {
      p.account(saturated(2));
      windows++;
      await flush();
    }
    // The first waited one second of windows (10 ms each), not forever.
    expect(windows).toBe(100);
    expect(r.later).toEqual([0]);
    expect(p.status()).toMatchObject({ forced: 1, waiting: 2 });
    expect(p.status().creditMs).toBeLessThan(0);
    // The next one waits its own second.
    for (let i = 0; i < 99; i++) p.account(saturated(2));
    await flush();
    expect(r.later).toEqual([0]);
    p.account(saturated(2));
    await flush();
    expect(r.later).toEqual([0, 1]);
  });

  it('counts the fast path\'s thread: its backlog is saturation with the loop idle, and control work is held to the share', async () => {
    const p = new ControlPolicer({ share: 0.05, initialCostMs: 0.5 });
    p.account(idle); // credit refilled to the cap: 5 % of 20 ms = 1 ms
    p.account({ wallMs: 10, loopBusyMs: 1, dataPathMs: 0, backlogged: false, engineBacklogged: false });
    expect(p.status().saturated).toBe(false);
    // The engine left frames waiting; the loop spent 1 ms on control work and is otherwise idle.
    p.account({ wallMs: 10, loopBusyMs: 1, dataPathMs: 0, backlogged: false, engineBacklogged: true });
    expect(p.status().saturated).toBe(true);
    expect(p.status().creditMs).toBeCloseTo(0.5); // 1 + 0.5 earned − 1 used
    const a = ask(p, 20);
    expect(a.now).toBe(1); // 0.5 ms of credit at 0.5 ms a request
    for (let i = 0; i < 3; i++) p.account({ wallMs: 10, loopBusyMs: 0, dataPathMs: 0, backlogged: false, engineBacklogged: true });
    await flush();
    expect(a.later.length).toBeGreaterThan(0);
    expect(a.later.length).toBeLessThan(19);
    expect(a.later).toEqual([...a.later].sort((x, y) => x - y)); // in arrival order
    // The engine caught up: everything waiting goes in.
    p.account(idle);
    await flush();
    expect(a.now + a.later.length).toBe(20);
    expect(p.status().saturated).toBe(false);
  });

  it('share 1 turns policing off', () => {
    const p = new ControlPolicer({ share: 1 });
    p.account(saturated(10));
    expect(ask(p, 50).now).toBe(50);
  });

  it('releaseAll lets every waiter go (daemon stopping)', async () => {
    const p = new ControlPolicer({ share: 0.01 });
    p.account(saturated(10));
    const r = ask(p, 3);
    expect(r.now).toBe(0);
    p.releaseAll();
    await flush();
    expect(r.later).toEqual([0, 1, 2]);
  });

  it('refuses a share outside (0, 1] and ignores empty windows', () => {
    expect(() => new ControlPolicer({ share: 0 })).toThrow(RangeError);
    expect(() => new ControlPolicer({ share: 1.5 })).toThrow(/control share must be in \(0, 1\]/);
    expect(() => new ControlPolicer({ share: Number.NaN })).toThrow(RangeError);
    const p = new ControlPolicer({ share: 0.05 });
    p.account({ wallMs: 0, loopBusyMs: 0, dataPathMs: 0, backlogged: true });
    p.account({ wallMs: Number.NaN, loopBusyMs: 5, dataPathMs: 5, backlogged: true });
    expect(p.status()).toMatchObject({ saturated: false, saturatedWindows: 0 });
  });
});
