/**
 * The clock and the measurements behind the control policer (control-policer.ts): every
 * window it samples the event loop's busy time (Node's event-loop utilisation), the data
 * path's (the native ports' time in their poll callbacks) and whether a port was left with
 * a backlog (wake-ups that stopped at their drain limit), hands them to the policer,
 * and logs when policing starts to hold requests back, at most once per LOG_EVERY_MS.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { ControlPolicer } from './control-policer.js';

export const POLICING_WINDOW_MS = 10;
const LOG_EVERY_MS = 10_000;

export interface PolicingIo {
  /** Nanoseconds the data path has spent on the loop so far (may drop when a port goes away). */
  dataPathNs(): number;
  /** Wake-ups so far that left frames queued, summed over ports (may drop likewise). */
  backlogPolls(): number;
  log(msg: string, fields: Record<string, unknown>): void;
}

export class ControlPolicing {
  readonly policer: ControlPolicer;
  private timer: NodeJS.Timeout | undefined;
  private lastLoggedDeferred = 0;
  private lastLogAt = -Infinity;

  constructor(
    sharePercent: number,
    private readonly io: PolicingIo,
    private readonly windowMs = POLICING_WINDOW_MS,
  ) {
    this.policer = new ControlPolicer({ share: sharePercent / 100 });
  }

  start(): void {
    if (this.timer !== undefined || this.policer.share >= 1) return;
    let elu: EventLoopUtilization = performance.eventLoopUtilization();
    let dataNs = this.io.dataPathNs();
    let backlog = this.io.backlogPolls();
    let at = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      const nowElu = performance.eventLoopUtilization();
      const d = performance.eventLoopUtilization(nowElu, elu);
      const nowNs = this.io.dataPathNs();
      const nowBacklog = this.io.backlogPolls();
      this.policer.account({ wallMs: now - at, loopBusyMs: d.active, dataPathMs: Math.max(0, nowNs - dataNs) / 1e6, backlogged: nowBacklog > backlog });
      elu = nowElu;
      dataNs = nowNs;
      backlog = nowBacklog;
      at = now;
      this.maybeLog(now);
    }, this.windowMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.policer.releaseAll();
  }

  private maybeLog(now: number): void {
    const s = this.policer.status();
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
