/**
 * How long the fuzz properties run, chosen by the environment:
 *
 *   (default, CI)          every property runs a fixed number of cases, LIME_FUZZ_RUNS
 *                          (default DEFAULT_RUNS), divided by the property's relative cost:
 *                          the suite takes the same time whatever seed fast-check draws.
 *   LIME_FUZZ_SECONDS=N    long run: each fuzz *target* (one test file) gets N seconds,
 *                          shared among its properties by weight; runs are unbounded.
 *   LIME_FUZZ_SEED=S       replay: the seed fast-check printed for a failure (with
 *   LIME_FUZZ_PATH=P       the path it printed, to go straight to the shrunk case).
 *
 * `npm run fuzz` is the long run: LIME_FUZZ_SECONDS (default 300) per target, every target
 * in test/fuzz, or only those in LIME_FUZZ_TARGETS (e.g. test/fuzz/flow-syntax.test.ts).
 *
 * fuzzCheck() runs a property and, on failure, throws fast-check's own report (seed, path,
 * shrunk counterexample), so a failure in CI can be replayed locally. In a long run it
 * also prints how many cases each property ran, the figure the long run reports.
 */
import fc from 'fast-check';

/** CI cases per property of cost 1; all fuzz files together stay under ~25 s here. */
export const DEFAULT_RUNS = 1000;

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${raw}: expected a positive number`);
  return n;
}

const RUNS = envNumber('LIME_FUZZ_RUNS') ?? DEFAULT_RUNS;
const SECONDS = envNumber('LIME_FUZZ_SECONDS');
const SEED = envNumber('LIME_FUZZ_SEED');
const PATH = process.env['LIME_FUZZ_PATH'];

/** True in a time-boxed long run (LIME_FUZZ_SECONDS set). */
export const LONG_RUN = SECONDS !== undefined;

export interface Budget {
  /** Share of the target's time in a long run (the shares of a file should sum to 1). */
  share: number;
  /** Relative cost of one case: CI runs LIME_FUZZ_RUNS / cost cases. */
  cost?: number;
}

/** Shrinking after a failure gets this long on top of the running time. */
const SHRINK_MS = 120_000;

/** vitest timeout for a test that runs properties with these budgets. */
export function testTimeout(...budgets: Budget[]): number {
  if (SECONDS === undefined) return 60_000;
  const share = budgets.reduce((s, b) => s + b.share, 0);
  return Math.ceil(SECONDS * 1000 * share) + SHRINK_MS * budgets.length;
}

function params<T>(b: Budget): fc.Parameters<T> {
  const p: fc.Parameters<T> = { numRuns: Math.max(1, Math.round(RUNS / (b.cost ?? 1))) };
  if (SECONDS !== undefined) {
    p.numRuns = 2 ** 31 - 1; // the time limit ends the run
    p.plugins = [fc.interruptAfterTimeLimit(SECONDS * 1000 * b.share) as fc.Plugin<T>];
  }
  if (SEED !== undefined) p.seed = SEED;
  if (PATH !== undefined) p.path = PATH;
  return p;
}

function report<T>(name: string, details: fc.RunDetails<T>, startedAt: number): void {
  if (details.failed) {
    const cause = details.errorInstance;
    const why = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    throw new Error(`fuzz property "${name}" failed:\n${fc.defaultReportMessage(details)}\n${why}`, { cause });
  }
  if (LONG_RUN) {
    const s = ((performance.now() - startedAt) / 1000).toFixed(0);
    console.log(`[fuzz] ${name}: ${details.numRuns} cases in ${s} s, seed ${details.seed}, no failure`);
  }
}

/** Run a synchronous property within its budget; throws fast-check's report on failure. */
export function fuzzCheck<T>(name: string, property: fc.IProperty<T>, budget: Budget): void {
  const startedAt = performance.now();
  report(name, fc.check(property, params<T>(budget)), startedAt);
}

/** fuzzCheck for an asynchronous property. */
export async function fuzzCheckAsync<T>(name: string, property: fc.IAsyncProperty<T>, budget: Budget): Promise<void> {
  const startedAt = performance.now();
  report(name, await fc.check(property, params<T>(budget)), startedAt);
}
