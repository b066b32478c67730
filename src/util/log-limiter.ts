/**
 * Rate limiting for warnings that an outside party can trigger over and over (a client
 * that keeps sending garbage, frames that keep failing the same way): at most one line per
 * key per interval, and the next line that is written says how many were held back
 * (`suppressed`), so the log stays readable and nothing is silently lost from the count.
 * Never per frame: the data path counts, it does not log.
 */
export class LogLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
    /** Keys remembered at most (a key per distinct problem, not per event). */
    private readonly maxKeys = 256,
  ) {}

  /**
   * May a line for `key` be written now? Returns -1 (hold it back: counted), or the number
   * of lines held back since the last one written for this key (0 or more: write it, with
   * that number when it is not 0).
   */
  admit(key: string): number {
    const t = this.now();
    const seen = this.last.get(key);
    if (seen !== undefined && t - seen.at < this.intervalMs) {
      seen.suppressed++;
      return -1;
    }
    const suppressed = seen?.suppressed ?? 0;
    if (seen === undefined && this.last.size >= this.maxKeys) {
      const oldest = this.last.keys().next().value as string;
      this.last.delete(oldest);
    }
    this.last.delete(key); // re-insert: the map's order is the keys' age
    this.last.set(key, { at: t, suppressed: 0 });
    return suppressed;
  }
}

/** `fields` plus `suppressed: n` when n lines were held back. */
export function withSuppressed(fields: Record<string, unknown>, n: number): Record<string, unknown> {
  return n > 0 ? { ...fields, suppressed: n } : fields;
}
