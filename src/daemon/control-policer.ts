/**
 * Control-plane policing: when the data path has more frames than it can forward (in the
 * event loop, or in the native fast path's thread), management requests (flow-mods and everything else an operator or controller
 * sends) get a bounded share of the loop, so that a stream of them slows down instead of
 * the forwarding. Routers call this control-plane policing; limed's data path and control
 * plane share one thread, so the share is enforced by admission, not by a scheduler.
 *
 * The daemon feeds one sample per window (10 ms while the loop is busy, else 100 ms): the window's wall time, the
 * loop's busy time (Node's event-loop utilisation) and the data path's busy time (the
 * native ports' time in their poll callbacks) and whether any port had a backlog (a
 * wake-up that stopped at its drain limit with frames still queued). Control work is
 * everything else the loop did: requests, replication, journal completions, timers. The
 * data path is *saturated* in a window when the loop was busy nearly all of it and frames
 * were left waiting: then every millisecond of control work is a millisecond the frames
 * waited. (A share of the loop would not do as the test: control work that crowds the
 * data path out would make it look idle.)
 *
 * While saturated, control work earns `share` of each window's wall time as credit and
 * pays what it used; a request is admitted only while the credit is positive, at most as
 * many per window as the credit covers at the measured cost of a request (an average over
 * saturated windows: a flow-mod's work continues after admission, in journal writes and
 * replies, so the cost is learned, not known up front). Requests that are not admitted
 * wait, in arrival order, for a later window; none is refused, and none waits longer than
 * MAX_WAIT_MS of wall time: work the policer does not admit (the peer's replication, a
 * follower's forwarded flow-mods, timers) also spends the credit, and could otherwise
 * keep it below zero for good. Outside saturation every
 * request is admitted at once and the credit refills, so an idle or lightly loaded switch
 * answers exactly as without policing. `share` 1 turns policing off.
 *
 * Pure: no clock, no I/O; the daemon owns the timer and the measurements.
 */

export interface PolicerOptions {
  /** Share of the loop control work may use while the data path is saturated, (0, 1]. */
  share: number;
  /** Most credit that carries over, ms of control work (default: the share of 20 ms). */
  burstMs?: number;
  /** The cost of a request assumed before any was measured, ms (default 1). */
  initialCostMs?: number;
}

export interface PolicerSample {
  /** Wall time of the window, ms. */
  wallMs: number;
  /** Time the event loop was busy in it, ms. */
  loopBusyMs: number;
  /** Time the data path (the ports' poll callbacks) was busy in it, ms. */
  dataPathMs: number;
  /** Some port left frames queued after a wake-up (it drained its most batches). */
  backlogged: boolean;
  /**
   * The native fast path's thread left frames waiting (a read filled its whole batch): the
   * data path is saturated there, on a thread of its own, whatever the loop did.
   */
  engineBacklogged?: boolean;
}

export interface PolicerStatus {
  share: number;
  saturated: boolean;
  /** Credit left for control work, ms (negative: debt still being paid). */
  creditMs: number;
  /** Measured control time per admitted request while saturated, ms. */
  costMs: number;
  /** Requests waiting now. */
  waiting: number;
  /** The loop's busy share in the last window. */
  loopBusy: number;
  /** Requests that had to wait, since start. */
  deferred: number;
  /** Windows the data path was saturated in, since start. */
  saturatedWindows: number;
  /** Requests admitted without credit after waiting MAX_WAIT_MS. */
  forced: number;
}

/** Loop busy share from which a window counts as saturated. */
const LOOP_BUSY = 0.9;
/** Weight of the newest window in the cost average. */
const COST_WEIGHT = 0.2;
/** Longest a request waits: then the oldest is admitted whatever the credit (progress). */
export const MAX_WAIT_MS = 1000;

export class ControlPolicer {
  readonly share: number;
  private readonly capMs: number;
  private creditMs = 0;
  private costMs: number;
  private saturated = false;
  private admittedThisWindow = 0;
  private allowedThisWindow = 0;
  private readonly waiters: Array<() => void> = [];
  private nDeferred = 0;
  private nSaturated = 0;
  private nForced = 0;
  private loopBusy = 0;
  /** Wall time the oldest waiting request has waited (ms). */
  private headWaitedMs = 0;

  constructor(opts: PolicerOptions) {
    if (!(opts.share > 0 && opts.share <= 1)) throw new RangeError(`control share must be in (0, 1], got ${opts.share}`);
    this.share = opts.share;
    this.costMs = opts.initialCostMs ?? 1;
    this.capMs = opts.burstMs ?? opts.share * 20;
  }

  /**
   * Admission of one request: undefined when it may run now, else a promise that resolves
   * when it may (in arrival order).
   */
  admit(): Promise<void> | undefined {
    if (this.share >= 1) return undefined;
    if (this.waiters.length === 0 && (!this.saturated || this.takeSlot())) return undefined;
    this.nDeferred++;
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Account one window and admit the waiting requests its credit covers. */
  account(s: PolicerSample): void {
    if (this.share >= 1 || !(s.wallMs > 0)) return;
    const cap = this.capMs;
    const controlMs = Math.max(0, s.loopBusyMs - s.dataPathMs);
    this.loopBusy = Math.min(1, s.loopBusyMs / s.wallMs);
    const wasSaturated = this.saturated;
    // Saturated: the loop's data path is behind (busy nearly all the window, frames left
    // queued), or the fast path's thread is — then control work competes with it for the
    // CPUs rather than for the loop, and is held to the same share.
    this.saturated = (s.backlogged && s.loopBusyMs >= LOOP_BUSY * s.wallMs) || s.engineBacklogged === true;
    if (this.saturated) {
      this.nSaturated++;
      if (wasSaturated && this.admittedThisWindow > 0) {
        const cost = controlMs / this.admittedThisWindow;
        this.costMs += COST_WEIGHT * (cost - this.costMs);
      }
      this.creditMs = Math.min(cap, this.creditMs + this.share * s.wallMs - controlMs);
    } else {
      this.creditMs = cap;
    }
    this.admittedThisWindow = 0;
    this.allowedThisWindow = this.saturated ? Math.max(0, Math.ceil(this.creditMs / Math.max(this.costMs, 1e-3))) : Infinity;
    const hadWaiters = this.waiters.length > 0;
    while (this.waiters.length > 0 && (!this.saturated || this.takeSlot())) this.release();
    if (this.waiters.length === 0) {
      this.headWaitedMs = 0;
    } else if (hadWaiters) {
      this.headWaitedMs += s.wallMs;
      if (this.headWaitedMs >= MAX_WAIT_MS) {
        this.nForced++;
        this.admittedThisWindow++;
        this.release();
      }
    }
  }

  private release(): void {
    this.waiters.shift()!();
    this.headWaitedMs = 0;
  }

  /** Release every waiting request (the daemon is stopping). */
  releaseAll(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  status(): PolicerStatus {
    return {
      share: this.share,
      saturated: this.saturated,
      creditMs: this.creditMs,
      costMs: this.costMs,
      waiting: this.waiters.length,
      loopBusy: this.loopBusy,
      deferred: this.nDeferred,
      saturatedWindows: this.nSaturated,
      forced: this.nForced,
    };
  }

  private takeSlot(): boolean {
    if (this.creditMs <= 0 || this.admittedThisWindow >= this.allowedThisWindow) return false;
    this.admittedThisWindow++;
    return true;
  }
}
