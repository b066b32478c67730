// The paced ladder: the capacity figure (highest offered rate delivered with ≤ 1 % loss).
import { log } from './exec.mjs';

const k = (x) => `${(x / 1000).toFixed(1)}k`;

/**
 * Offer `send(rate, seconds)` at start, start + stepBy, … until two steps lose more than
 * 1 % (or two passing steps are sender-limited), then `refine` bisection steps between the
 * best pass and the lowest failure above it. The figure is the delivered rate of the best
 * passing step.
 */
export async function ladder({ send, start, stepBy, max, seconds, refine }) {
  const steps = [];
  const step = async (rate) => {
    const r = await send(rate, seconds);
    r.pass = r.loss_pct <= 1;
    r.sender_limited = r.sent_pps < 0.95 * rate;
    steps.push(r);
    log(`  ladder ${k(rate)}: sent ${k(r.sent_pps)}/s, delivered ${k(r.rx_pps)}/s, loss ${r.loss_pct.toFixed(2)} %${r.pass ? '' : ' ✗'}${r.sender_limited ? ' (sender-limited)' : ''}`);
    return r;
  };
  let fails = 0;
  let senderCapped = 0;
  for (let rate = start; rate <= max; rate += stepBy) {
    const r = await step(rate);
    if (!r.pass) fails++;
    if (r.pass && r.sender_limited) senderCapped++;
    if (fails >= 2) break;
    if (senderCapped >= 2) { log('  ladder: the sender cannot offer more; stopping'); break; }
  }
  // Bisection between the highest passing rate and the lowest failing rate above it.
  for (let i = 0; i < refine; i++) {
    const passes = steps.filter((s) => s.pass).map((s) => s.offered_pps);
    const lo = passes.length ? Math.max(...passes) : 0;
    const failsAbove = steps.filter((s) => !s.pass && s.offered_pps > lo).map((s) => s.offered_pps);
    if (!failsAbove.length) break;
    const hi = Math.min(...failsAbove);
    const mid = Math.round((lo + hi) / 2 / 5000) * 5000;
    if (mid <= lo || mid >= hi) break;
    await step(mid);
  }
  const passing = steps.filter((s) => s.pass);
  const best = passing.reduce((b, s) => (!b || s.rx_pps > b.rx_pps ? s : b), null);
  return {
    steps,
    capacity_pps: best ? best.rx_pps : 0,
    capacity_offered: best ? best.offered_pps : 0,
    sender_limited: best ? best.sender_limited : false,
  };
}

