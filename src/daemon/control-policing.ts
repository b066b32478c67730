/**
 * The clock and the measurements behind the control policer (control-policer.ts): every
 * window it samples the event loop's busy time (Node's event-loop utilisation), the data
 * path's (the native ports' time in their poll callbacks) and whether a port — or the
 * native fast path's thread — was left with a backlog (reads that stopped at their drain
 * limit), hands them to the policer,
 * and logs when policing starts to hold requests back, at most once per LOG_EVERY_MS.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { ControlPolicer, type PolicerStatus } from './control-policer.js';

/** Window while the loop is busy or requests wait, and while it is mostly idle. */
export const POLICING_WINDOW_MS = 10;
export const IDLE_WINDOW_MS = 100;
/** Loop busy share from which the short window is used. */
const BUSY = 0.5;
const LOG_EVERY_MS = 10_000;

export interface PolicingIo {
  /** Nanoseconds the data path has spent on the loop so far (may drop when a port goes away). */
  dataPathNs(): number;
  /** Wake-ups so far that left frames queued, summed over ports (may drop likewise). */
  backlogPolls(): number;
  /**
   * Reads of the native fast path's thread so far that left frames waiting (none without
   * the fast path): its data path is saturated while the event loop may well be idle.
   */
  engineBacklogs?(): number;
  log(msg: string, fields: Record<string, unknown>): void;
}

export class ControlPolicing {
  readonly policer: ControlPolicer;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastLoggedDeferred = 0;
  private lastLogAt = -Infinity;

  constructor(
    sharePercent: number,
    private readonly io: PolicingIo,
    private readonly windowMs = POLICING_WINDOW_MS,
    private readonly idleWindowMs = IDLE_WINDOW_MS,
  ) {
    this.policer = new ControlPolicer({ share: sharePercent / 100 });
  }

  start(): void {
    if (this.timer !== undefined || this.stopped || this.policer.share >= 1) return;
    let elu: EventLoopUtilization = performance.eventLoopUtilization();
    let dataNs = this.io.dataPathNs();
    let backlog = this.io.backlogPolls();
    let engineBacklog = this.io.engineBacklogs?.() ?? 0;
    let at = performance.now();
    // Short windows only while the loop is busy (or requests wait): an idle daemon wakes
    // ten times a second for this, not a hundred.
    const sample = (): void => {
      const now = performance.now();
      const nowElu = performance.eventLoopUtilization();
      const d = performance.eventLoopUtilization(nowElu, elu);
      const nowNs = this.io.dataPathNs();
      const nowBacklog = this.io.backlogPolls();
      const nowEngineBacklog = this.io.engineBacklogs?.() ?? 0;
      this.policer.account({
        wallMs: now - at, loopBusyMs: d.active, dataPathMs: Math.max(0, nowNs - dataNs) / 1e6,
        backlogged: nowBacklog > backlog, engineBacklogged: nowEngineBacklog > engineBacklog,
      });
      elu = nowElu;
      dataNs = nowNs;
      backlog = nowBacklog;
      engineBacklog = nowEngineBacklog;
      at = now;
      const st = this.policer.status();
      this.maybeLog(now, st);
      this.schedule(sample, st.loopBusy >= BUSY || st.waiting > 0 || st.saturated ? this.windowMs : this.idleWindowMs);
    };
    this.schedule(sample, this.idleWindowMs);
  }

  private schedule(fn: () => void, ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(fn, ms);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.policer.releaseAll();
  }

  private maybeLog(now: number, s: PolicerStatus): void {
    if (s.deferred === this.lastLoggedDeferred || now - this.lastLogAt < LOG_EVERY_MS) return;
    this.io.log(`data path saturated: management requests limited to ${(s.share * 100).toFixed(0)} % of the event loop`, {
      deferred: s.deferred - this.lastLoggedDeferred,
      waiting: s.waiting,
      cost_ms: Number(s.costMs.toFixed(3)),
    });
    this.lastLoggedDeferred = s.deferred;
    this.lastLogAt = now;
  }
}
