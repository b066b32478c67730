/**
 * The migration planner: in which order to move the hosts of an ensemble from the old site
 * to the new one so that as little traffic as possible crosses the inter-site link while
 * the migration runs (`limectl migrate plan`, executed by `migrate run --plan FILE`).
 *
 * Cost model (LIME's ensemble migration with tunnelling at egress). Every host starts at the
 * old site. The hosts are moved in steps; a step moves a group of at most `parallel` hosts
 * at once. While both networks forward, a frame between two hosts at the same site stays at
 * that site, and a frame between two hosts at different sites crosses the inter-site link
 * exactly once (egress tunnelling sends it over only on its last hop). So during the period
 * after step i and before step i+1, the bytes that cross are those exchanged between the
 * moved hosts (steps 1..i) and the unmoved ones (steps i+1..m): the cut between the two
 * sets. Before the first step and after the last, every host is at one site and nothing
 * crosses. The predicted inter-site bytes of an order are the sum of the cuts over the m-1
 * periods between consecutive steps.
 *
 * Assumption, stated because every number here rests on it: each period lasts one
 * measurement window, and hosts keep exchanging during it what the traffic matrix measured
 * in its window. The traffic between a and b is the sum of both directions (each direction
 * crosses the link alike). Equivalently — and this is how the code computes it — a pair
 * whose hosts move in steps s and t is split for |s - t| periods, so
 *
 *     predicted bytes = Σ over host pairs {a, b} of bytes(a, b) · |step(a) - step(b)|.
 *
 * What follows: moving tightly coupled hosts in the same step costs nothing for their
 * pair; fewer steps means fewer periods (two consecutive steps that together fit in
 * `parallel` hosts are never worse merged); reversing an order does not change its cost.
 *
 * The planner (planOrder) is a heuristic — with parallel = 1 the problem is minimum linear
 * arrangement, which is NP-hard. It is deterministic: hosts are handled in name order
 * (code-unit comparison), every tie goes to the earlier name, and its only randomness
 * comes from a fixed seed. For each number of steps m worth trying (see planOrder):
 *   1. greedy: step by step, for every remaining host as a seed, grow a group of the
 *      step's size by adding, one at a time, the host that least increases the next
 *      period's cut; keep the seed whose group leaves the smallest cut. Growing from each
 *      seed is what moves tightly coupled groups together: once one host of a heavy pair
 *      is in the group, the other is almost free.
 *   2. local search: move one host to another step that has room, or swap two hosts of
 *      different steps, while that lowers the predicted bytes; then, from the best order
 *      found, repeatedly kick (a few random swaps or moves) and descend again, keeping
 *      only improvements (iterated local search). Greedy plus descent alone was measured
 *      at up to 2× the optimum on 8 hosts; the kicks close that gap.
 * Cost: phase 1 is O(n³) in the worst case; a descent pass is O(n·(n + m)) with a table
 * of each host's cost at each step, a host's move O(n·m); kicks are bounded so that their
 * work stays near KICK_WORK. 100 hosts plan in tens of milliseconds.
 *
 * optimalOrder is the exact reference for tests and the benchmark: dynamic programming over
 * the sets of already moved hosts, which examines every ordered partition into steps of at
 * most `parallel` hosts (any number of steps) — brute force, without repeating sub-orders.
 *
 * Everything here is pure: no I/O, no timers, no clocks; randomness is injected. Errors are
 * PlanError, with a message that names the field or host at fault.
 */

/** A planner input or plan file that is not valid; the message names what is wrong. */
export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanError';
  }
}

/** Bytes sent from one host to another during the measurement window. */
export interface TrafficFlow {
  readonly from: string;
  readonly to: string;
  readonly bytes: number;
}

/**
 * Host-to-host traffic over one measurement window. Built by trafficMatrix(), which
 * validates it; the planner functions trust a value of this type.
 */
export interface TrafficMatrix {
  /** Host names, unique, sorted in code-unit order. */
  readonly hosts: readonly string[];
  /** One entry per ordered pair with bytes > 0, sorted by (from, to). */
  readonly flows: readonly TrafficFlow[];
}

/** A migration order: the hosts of each step, steps in the order they run. */
export interface MigrationOrder {
  readonly steps: string[][];
  readonly predictedBytes: number;
}

/** What a plan file holds (see formatPlanFile). */
export interface Plan {
  readonly parallel: number;
  readonly steps: string[][];
  /** Absent in a hand-written plan file that does not give it. */
  readonly predictedBytes?: number;
  readonly randomOrderBytes?: number;
}

/** A random source: returns a number in [0, 1), like Math.random. */
export type RandomSource = () => number;

export const PLAN_FILE_VERSION = 1;
/** optimalOrder's limit: 3^n sub-order checks, 6561 at 8 hosts. */
export const MAX_OPTIMAL_HOSTS = 8;
/** Local-search passes in planOrder; each pass that changes nothing ends it earlier. */
const MAX_IMPROVE_PASSES = 100;
/** Seed of the local search's kicks: any constant; fixed so that plans are reproducible. */
const KICK_SEED = 0x11ae;
/**
 * Kicks of the iterated local search per step count tried: at most MAX_KICKS, and fewer for
 * many hosts, so that kicks × n² (the price of a descent) stays near KICK_WORK. Measured
 * (see the planner tests): orders of up to 8 hosts come out optimal, and 100 hosts with
 * parallel 4 plan in tens of milliseconds.
 */
const MAX_KICKS = 200;
const KICK_WORK = 600_000;
/** planOrder stops trying more steps after this many step counts in a row did no better. */
const STEP_COUNTS_WITHOUT_GAIN = 2;

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isNonNegativeFinite(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0;
}

function checkParallel(parallel: unknown, where: string): number {
  if (typeof parallel !== 'number' || !Number.isInteger(parallel) || parallel < 1) {
    throw new PlanError(`${where}: parallel must be a positive integer, got ${String(parallel)}`);
  }
  return parallel;
}

/**
 * Validates hosts and flows and returns the matrix. Several entries for the same ordered
 * pair add up (a measurement may report a pair once per flow). Errors: empty host list,
 * a host name that is not a non-empty string, a duplicate host, a flow naming an unknown
 * host or a host and itself, bytes that are negative or not finite.
 */
export function trafficMatrix(hosts: readonly string[], flows: Iterable<TrafficFlow>): TrafficMatrix {
  if (!Array.isArray(hosts) || hosts.length === 0) throw new PlanError('traffic matrix: the host list is empty');
  const known = new Set<string>();
  hosts.forEach((h: unknown, i) => {
    if (typeof h !== 'string' || h === '') {
      throw new PlanError(`traffic matrix: hosts[${i}] must be a non-empty string, got ${JSON.stringify(h)}`);
    }
    if (known.has(h)) throw new PlanError(`traffic matrix: duplicate host "${h}"`);
    known.add(h);
  });
  const sums = new Map<string, Map<string, number>>();
  let i = 0;
  for (const f of flows) {
    const where = `traffic matrix: flow ${i} (${JSON.stringify(f.from)} -> ${JSON.stringify(f.to)})`;
    if (!known.has(f.from)) throw new PlanError(`${where}: unknown host ${JSON.stringify(f.from)}`);
    if (!known.has(f.to)) throw new PlanError(`${where}: unknown host ${JSON.stringify(f.to)}`);
    if (f.from === f.to) throw new PlanError(`${where}: a host cannot send to itself over the switch`);
    if (!isNonNegativeFinite(f.bytes)) {
      throw new PlanError(`${where}: bytes must be a finite number >= 0, got ${String(f.bytes)}`);
    }
    let row = sums.get(f.from);
    if (row === undefined) sums.set(f.from, (row = new Map()));
    row.set(f.to, (row.get(f.to) ?? 0) + f.bytes);
    i++;
  }
  const sortedHosts = [...hosts].sort(compareNames);
  const sortedFlows: TrafficFlow[] = [];
  for (const from of sortedHosts) {
    const row = sums.get(from);
    if (row === undefined) continue;
    for (const to of [...row.keys()].sort(compareNames)) {
      const bytes = row.get(to)!;
      if (bytes > 0) sortedFlows.push({ from, to, bytes });
    }
  }
  return { hosts: sortedHosts, flows: sortedFlows };
}

/** Bytes exchanged between a and b in the window, both directions. */
export function pairBytes(matrix: TrafficMatrix, a: string, b: string): number {
  let sum = 0;
  for (const f of matrix.flows) {
    if ((f.from === a && f.to === b) || (f.from === b && f.to === a)) sum += f.bytes;
  }
  return sum;
}

/** Host name → index into matrix.hosts (which is sorted, so index order is name order). */
function hostIndex(matrix: TrafficMatrix): Map<string, number> {
  return new Map(matrix.hosts.map((h, i) => [h, i]));
}

/** Symmetric n×n weights: w[a*n+b] = bytes a→b + bytes b→a; the diagonal is 0. */
function pairWeights(matrix: TrafficMatrix, index: Map<string, number>): Float64Array {
  const n = matrix.hosts.length;
  const w = new Float64Array(n * n);
  for (const f of matrix.flows) {
    const a = index.get(f.from)!;
    const b = index.get(f.to)!;
    w[a * n + b] += f.bytes;
    w[b * n + a] += f.bytes;
  }
  return w;
}

interface StepCheck {
  /** Where, for messages: "plan file", "predictBytes". */
  where: string;
  parallel?: number;
  /** Hosts a step may name; undefined = any. */
  known?: ReadonlySet<string>;
  /** Every known host must appear in some step. */
  requireAll?: boolean;
}

/**
 * Checks that steps is a non-empty array of non-empty arrays of distinct host names, each
 * step within parallel and every host known (and, if asked, every known host present).
 */
function checkSteps(steps: unknown, check: StepCheck): string[][] {
  const { where } = check;
  if (!Array.isArray(steps)) throw new PlanError(`${where}: steps must be an array of arrays of host names`);
  if (steps.length === 0) throw new PlanError(`${where}: steps is empty, there is nothing to move`);
  const stepOf = new Map<string, number>();
  const result: string[][] = [];
  steps.forEach((step: unknown, s) => {
    if (!Array.isArray(step)) throw new PlanError(`${where}: steps[${s}] must be an array of host names`);
    if (step.length === 0) throw new PlanError(`${where}: steps[${s}] is empty`);
    if (check.parallel !== undefined && step.length > check.parallel) {
      throw new PlanError(
        `${where}: steps[${s}] moves ${step.length} hosts, more than parallel = ${check.parallel}`,
      );
    }
    step.forEach((host: unknown, j) => {
      if (typeof host !== 'string' || host === '') {
        throw new PlanError(`${where}: steps[${s}][${j}] must be a non-empty host name, got ${JSON.stringify(host)}`);
      }
      if (check.known !== undefined && !check.known.has(host)) {
        throw new PlanError(`${where}: steps[${s}][${j}]: unknown host "${host}"`);
      }
      const first = stepOf.get(host);
      if (first !== undefined) {
        throw new PlanError(`${where}: duplicate host "${host}" in steps[${first}] and steps[${s}]`);
      }
      stepOf.set(host, s);
    });
    result.push([...(step as string[])]);
  });
  if (check.requireAll === true && check.known !== undefined) {
    const missing = [...check.known].filter((h) => !stepOf.has(h)).sort(compareNames);
    if (missing.length > 0) throw new PlanError(`${where}: hosts in no step: ${missing.join(', ')}`);
  }
  return result;
}

/**
 * Predicted inter-site bytes of moving the hosts in these steps (see the cost model at the
 * top). steps must be a partition of the matrix's hosts into non-empty steps, each of at
 * most options.parallel hosts when that is given.
 */
export function predictBytes(
  matrix: TrafficMatrix,
  steps: readonly (readonly string[])[],
  options: { parallel?: number } = {},
): number {
  const check: StepCheck = { where: 'predictBytes', known: new Set(matrix.hosts), requireAll: true };
  if (options.parallel !== undefined) check.parallel = checkParallel(options.parallel, 'predictBytes');
  const checked = checkSteps(steps, check);
  const stepOf = new Map<string, number>();
  checked.forEach((step, s) => step.forEach((h) => stepOf.set(h, s)));
  // A pair is split for the |s - t| periods between its hosts' steps (cost model above).
  let sum = 0;
  for (const f of matrix.flows) sum += f.bytes * Math.abs(stepOf.get(f.from)! - stepOf.get(f.to)!);
  return sum;
}

/** Steps as name lists, from step indices per host (index order = name order within a step). */
function stepsFromAssignment(hosts: readonly string[], stepOf: Int32Array, nSteps: number): string[][] {
  const steps: string[][] = Array.from({ length: nSteps }, () => []);
  stepOf.forEach((s, h) => steps[s]!.push(hosts[h]!));
  return steps.filter((s) => s.length > 0);
}

/**
 * Phase 1 of planOrder: greedy steps of the given sizes, each the seeded group that leaves
 * the smallest cut for the next period. Returns the step of each host.
 */
function greedySteps(n: number, w: Float64Array, sizes: readonly number[]): Int32Array {
  const stepOf = new Int32Array(n).fill(-1);
  // ext[h] = how much the cut grows if h alone moves now: its traffic with unmoved hosts
  // (which becomes split) minus its traffic with moved hosts (which stops being split).
  const ext = new Float64Array(n);
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) ext[a] += w[a * n + b]!;
  // link[x] = traffic between x and the group being grown.
  const link = new Float64Array(n);
  const inGroup = new Uint8Array(n);
  const group: number[] = [];
  let best: number[] = [];
  for (let step = 0; step < sizes.length; step++) {
    const size = sizes[step]!;
    let bestGrowth = Infinity;
    for (let seed = 0; seed < n; seed++) {
      if (stepOf[seed] !== -1) continue;
      group.length = 0;
      link.fill(0);
      inGroup.fill(0);
      let growth = 0;
      let next = seed;
      for (;;) {
        // Adding x grows the cut by ext[x], minus twice its traffic with the group: that
        // traffic was counted as split from both sides and now stays at one site.
        growth += ext[next]! - 2 * link[next]!;
        group.push(next);
        inGroup[next] = 1;
        if (group.length === size) break;
        for (let x = 0; x < n; x++) link[x] += w[next * n + x]!;
        next = -1;
        let nextGrowth = Infinity;
        for (let x = 0; x < n; x++) {
          if (stepOf[x] !== -1 || inGroup[x] === 1) continue;
          const g = ext[x]! - 2 * link[x]!;
          if (g < nextGrowth) {
            nextGrowth = g;
            next = x;
          }
        }
      }
      if (growth < bestGrowth) {
        bestGrowth = growth;
        best = group.slice();
      }
    }
    for (const h of best) {
      stepOf[h] = step;
      // h now counts as moved: its traffic with the unmoved stops adding to, and its
      // traffic with the moved starts subtracting from, every other host's ext.
      for (let x = 0; x < n; x++) ext[x] -= 2 * w[h * n + x]!;
    }
  }
  return stepOf;
}

/** A small seeded generator (mulberry32): the local search's kicks, the same on every run. */
function seededRandom(seed: number): RandomSource {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Phase 2 of planOrder: an assignment of hosts to a fixed number of steps, with each host's
 * cost at every step kept up to date so that a move or swap is priced in O(1):
 * cost[u*m+t] = Σ_x w(u,x)·|t - step(x)|, u's share of the total if u were in step t.
 */
class Arrangement {
  readonly size: Int32Array;
  readonly cost: Float64Array;
  total = 0;
  /** Sums of integer byte counts are exact, but fractional inputs round: a change must win
   * by more than rounding noise, or two equal orders could swap back and forth. */
  readonly epsilon: number;

  constructor(
    readonly n: number,
    readonly m: number,
    readonly w: Float64Array,
    readonly parallel: number,
    readonly stepOf: Int32Array,
  ) {
    this.size = new Int32Array(m);
    for (let h = 0; h < n; h++) this.size[stepOf[h]!]++;
    this.cost = new Float64Array(n * m);
    let weight = 0;
    for (let u = 0; u < n; u++) {
      for (let x = 0; x < n; x++) {
        const wux = w[u * n + x]!;
        if (wux === 0) continue;
        weight += wux;
        const sx = stepOf[x]!;
        for (let t = 0; t < m; t++) this.cost[u * m + t] += wux * Math.abs(t - sx);
      }
      this.total += this.cost[u * m + stepOf[u]!]! / 2;
    }
    this.epsilon = 1e-9 * Math.max(1, weight);
  }

  /** Moves host x to step `to`, keeping the cost table and the total up to date. */
  relocate(x: number, to: number): void {
    const { n, m, w, cost } = this;
    const from = this.stepOf[x]!;
    this.total += cost[x * m + to]! - cost[x * m + from]!;
    for (let u = 0; u < n; u++) {
      const wux = w[u * n + x]!;
      if (wux === 0) continue;
      for (let t = 0; t < m; t++) cost[u * m + t] += wux * (Math.abs(t - to) - Math.abs(t - from));
    }
    this.size[from]--;
    this.size[to]++;
    this.stepOf[x] = to;
  }

  /**
   * Local search: for each host in name order, the best move to a step with room or swap
   * with a host of another step, if it lowers the total; until a pass changes nothing.
   */
  descend(): void {
    const { n, m, w, parallel, stepOf, size, cost } = this;
    for (let pass = 0; pass < MAX_IMPROVE_PASSES; pass++) {
      let changed = false;
      for (let u = 0; u < n; u++) {
        const su = stepOf[u]!;
        let bestDelta = -this.epsilon;
        let bestStep = -1;
        let bestSwap = -1;
        if (size[su]! > 1) {
          for (let t = 0; t < m; t++) {
            if (t === su || size[t]! >= parallel) continue;
            const delta = cost[u * m + t]! - cost[u * m + su]!;
            if (delta < bestDelta) {
              bestDelta = delta;
              bestStep = t;
            }
          }
        }
        for (let v = 0; v < n; v++) {
          const sv = stepOf[v]!;
          if (sv === su) continue;
          // Each side's move counts the pair u-v as if the other stayed put (-w·d twice);
          // swapped, the pair is as far apart as before, so add 2·w·d back.
          const delta =
            cost[u * m + sv]! - cost[u * m + su]! + cost[v * m + su]! - cost[v * m + sv]! +
            2 * w[u * n + v]! * Math.abs(su - sv);
          if (delta < bestDelta) {
            bestDelta = delta;
            bestSwap = v;
          }
        }
        if (bestSwap !== -1) {
          const sv = stepOf[bestSwap]!;
          this.relocate(u, sv);
          this.relocate(bestSwap, su);
          changed = true;
        } else if (bestStep !== -1) {
          this.relocate(u, bestStep);
          changed = true;
        }
      }
      if (!changed) break;
    }
  }

  /** A random swap or move, kept legal (steps within parallel, none empty); may do nothing. */
  kick(random: RandomSource): void {
    const { n, m, parallel, stepOf, size } = this;
    const u = Math.floor(random() * n);
    const t = Math.floor(random() * m);
    const su = stepOf[u]!;
    if (t === su) return;
    if (size[t]! < parallel && size[su]! > 1 && random() < 0.5) {
      this.relocate(u, t);
      return;
    }
    // Swap with a random host of step t.
    let k = Math.floor(random() * size[t]!);
    for (let v = 0; v < n; v++) {
      if (stepOf[v] !== t || k-- > 0) continue;
      this.relocate(u, t);
      this.relocate(v, su);
      return;
    }
  }

  snapshot(): { stepOf: Int32Array; size: Int32Array; cost: Float64Array; total: number } {
    return { stepOf: this.stepOf.slice(), size: this.size.slice(), cost: this.cost.slice(), total: this.total };
  }

  restore(s: { stepOf: Int32Array; size: Int32Array; cost: Float64Array; total: number }): void {
    this.stepOf.set(s.stepOf);
    this.size.set(s.size);
    this.cost.set(s.cost);
    this.total = s.total;
  }
}

/**
 * Iterated local search from a greedy start: descend, then repeatedly kick the best order
 * found with a few random swaps or moves and descend again, keeping the result only if it
 * is cheaper. The kicks come from a fixed seed, so the outcome is deterministic; `kicks`
 * bounds the work. Works on stepOf in place.
 */
function improveSteps(
  n: number,
  w: Float64Array,
  parallel: number,
  stepOf: Int32Array,
  m: number,
  kicks: number,
): void {
  const arrangement = new Arrangement(n, m, w, parallel, stepOf);
  arrangement.descend();
  if (m < 2) return;
  const random = seededRandom(KICK_SEED);
  let best = arrangement.snapshot();
  for (let i = 0; i < kicks; i++) {
    const nKicks = 1 + Math.floor(random() * 3);
    for (let j = 0; j < nKicks; j++) arrangement.kick(random);
    arrangement.descend();
    if (arrangement.total < best.total - arrangement.epsilon) best = arrangement.snapshot();
    else arrangement.restore(best);
  }
  arrangement.restore(best);
}

/** Σ over pairs of w(a,b)·|step(a) - step(b)|: the predicted bytes of an assignment. */
function assignmentCost(n: number, w: Float64Array, stepOf: Int32Array): number {
  let sum = 0;
  for (let a = 0; a < n; a++) {
    for (let b = a + 1; b < n; b++) sum += w[a * n + b]! * Math.abs(stepOf[a]! - stepOf[b]!);
  }
  return sum;
}

/**
 * Merges each step into the one before it while the two fit in one step; never raises the
 * cost, as the period between them disappears and no other pair gets farther apart.
 * Returns the new number of steps.
 */
function mergeSteps(n: number, parallel: number, stepOf: Int32Array, nSteps: number): number {
  const size = new Int32Array(nSteps);
  for (let h = 0; h < n; h++) size[stepOf[h]!]++;
  const target = new Int32Array(nSteps);
  let current = 0;
  let currentSize = size[0]!;
  for (let t = 1; t < nSteps; t++) {
    if (currentSize + size[t]! <= parallel) {
      currentSize += size[t]!;
    } else {
      current++;
      currentSize = size[t]!;
    }
    target[t] = current;
  }
  for (let h = 0; h < n; h++) stepOf[h] = target[stepOf[h]!]!;
  return current + 1;
}

/**
 * Orders the moves to minimise the predicted inter-site bytes (greedy, then local search;
 * see the top of the file). Deterministic: the same matrix and parallel give the same
 * order. Steps list their hosts in name order.
 *
 * Full steps are not always best: with parallel = 3 and three tightly coupled pairs, three
 * steps of two beat two steps of three, which must split a pair. So the planner tries
 * numbers of steps m from the fewest upward and keeps the cheapest (the fewest steps on a
 * tie). Bounds: at least ceil(n / parallel); and some optimal order has no two consecutive
 * steps that fit in one (merging them never costs more), so every two consecutive steps
 * hold more than parallel hosts and m <= 2n / (parallel + 1) + 1.
 */
export function planOrder(matrix: TrafficMatrix, options: { parallel: number }): MigrationOrder {
  const parallel = checkParallel(options.parallel, 'planOrder');
  const n = matrix.hosts.length;
  const w = pairWeights(matrix, hostIndex(matrix));
  const fewestSteps = Math.ceil(n / parallel);
  const mostSteps = Math.min(n, Math.floor((2 * n) / (parallel + 1)) + 1);
  const kicks = Math.min(MAX_KICKS, Math.floor(KICK_WORK / (n * n)));
  let best: Int32Array | undefined;
  let bestSteps = 0;
  let bestCost = Infinity;
  let bestM = fewestSteps;
  // The cost over step counts is in practice one valley: more steps help only until the
  // coupled groups fit, so the search stops once the last few counts tried did no better.
  for (let m = fewestSteps; m <= mostSteps && m - bestM <= STEP_COUNTS_WITHOUT_GAIN; m++) {
    // As even as possible, larger steps first: n = m·base + extra.
    const base = Math.floor(n / m);
    const extra = n - m * base;
    const sizes = Array.from({ length: m }, (_, t) => base + (t < extra ? 1 : 0));
    const stepOf = greedySteps(n, w, sizes);
    improveSteps(n, w, parallel, stepOf, m, kicks);
    const nSteps = mergeSteps(n, parallel, stepOf, m);
    const cost = assignmentCost(n, w, stepOf);
    if (cost < bestCost) {
      best = stepOf;
      bestSteps = nSteps;
      bestCost = cost;
      bestM = m;
    }
  }
  const steps = stepsFromAssignment(matrix.hosts, best!, bestSteps);
  return { steps, predictedBytes: predictBytes(matrix, steps) };
}

function checkRandom(random: RandomSource, where: string): number {
  const r = random();
  if (typeof r !== 'number' || !(r >= 0 && r < 1)) {
    throw new PlanError(`${where}: the random source returned ${String(r)}, not a number in [0, 1)`);
  }
  return r;
}

/**
 * A uniformly random order (Fisher-Yates over the hosts in name order), cut into steps of
 * `parallel` hosts, the last one possibly shorter. The baseline the plan is compared with.
 */
export function randomOrder(
  matrix: TrafficMatrix,
  options: { parallel: number; random: RandomSource },
): MigrationOrder {
  const parallel = checkParallel(options.parallel, 'randomOrder');
  const hosts = [...matrix.hosts];
  for (let i = hosts.length - 1; i > 0; i--) {
    const j = Math.floor(checkRandom(options.random, 'randomOrder') * (i + 1));
    [hosts[i], hosts[j]] = [hosts[j]!, hosts[i]!];
  }
  const steps: string[][] = [];
  for (let i = 0; i < hosts.length; i += parallel) steps.push(hosts.slice(i, i + parallel));
  return { steps, predictedBytes: predictBytes(matrix, steps) };
}

/**
 * The order with the least predicted bytes, over every ordered partition of the hosts into
 * steps of at most `parallel` (any number of steps), for at most MAX_OPTIMAL_HOSTS hosts.
 * f(M) = least cost of reaching "the hosts in M have moved" = min over the last step S ⊆ M
 * of f(M \ S) + cut(M \ S), the period that ran before S moved. Of equal orders it returns
 * the one found first (sets enumerated in a fixed order), so it is deterministic.
 */
export function optimalOrder(matrix: TrafficMatrix, options: { parallel: number }): MigrationOrder {
  const parallel = checkParallel(options.parallel, 'optimalOrder');
  const n = matrix.hosts.length;
  if (n > MAX_OPTIMAL_HOSTS) {
    throw new PlanError(`optimalOrder: ${n} hosts, brute force handles at most ${MAX_OPTIMAL_HOSTS}`);
  }
  const w = pairWeights(matrix, hostIndex(matrix));
  const full = (1 << n) - 1;
  const cut = new Float64Array(full + 1);
  const popcount = new Uint8Array(full + 1);
  for (let mask = 1; mask <= full; mask++) {
    popcount[mask] = popcount[mask >> 1]! + (mask & 1);
    let c = 0;
    for (let a = 0; a < n; a++) {
      if ((mask & (1 << a)) === 0) continue;
      for (let b = 0; b < n; b++) if ((mask & (1 << b)) === 0) c += w[a * n + b]!;
    }
    cut[mask] = c;
  }
  const best = new Float64Array(full + 1).fill(Infinity);
  const lastStep = new Int32Array(full + 1);
  best[0] = 0;
  for (let mask = 1; mask <= full; mask++) {
    for (let s = mask; s > 0; s = (s - 1) & mask) {
      if (popcount[s]! > parallel) continue;
      const before = mask ^ s;
      const c = best[before]! + cut[before]!;
      if (c < best[mask]!) {
        best[mask] = c;
        lastStep[mask] = s;
      }
    }
  }
  const steps: string[][] = [];
  for (let mask = full; mask !== 0; mask ^= lastStep[mask]!) {
    const s = lastStep[mask]!;
    steps.unshift(matrix.hosts.filter((_, i) => (s & (1 << i)) !== 0));
  }
  return { steps, predictedBytes: predictBytes(matrix, steps) };
}

/**
 * The plan `limectl migrate plan` prints and writes: planOrder's steps and prediction, and
 * the prediction of one random order for comparison.
 */
export function makePlan(matrix: TrafficMatrix, options: { parallel: number; random: RandomSource }): Plan {
  const planned = planOrder(matrix, options);
  return {
    parallel: options.parallel,
    steps: planned.steps,
    predictedBytes: planned.predictedBytes,
    randomOrderBytes: randomOrder(matrix, options).predictedBytes,
  };
}

/**
 * LIME's k-random traffic pattern: every host sends to k distinct other hosts chosen
 * uniformly at random. hosts is a list of names or a count (names vm1…vmN); bytes is the
 * amount per chosen (sender, receiver), or a function giving it.
 */
export function kRandomMatrix(options: {
  hosts: number | readonly string[];
  k: number;
  bytes: number | ((from: string, to: string) => number);
  random: RandomSource;
}): TrafficMatrix {
  const { k, bytes, random } = options;
  let hosts: readonly string[];
  if (typeof options.hosts === 'number') {
    if (!Number.isInteger(options.hosts) || options.hosts < 1) {
      throw new PlanError(`kRandomMatrix: hosts must be a positive integer or a list of names, got ${options.hosts}`);
    }
    hosts = Array.from({ length: options.hosts }, (_, i) => `vm${i + 1}`);
  } else {
    hosts = options.hosts;
    trafficMatrix(hosts, []); // checks the names before they are drawn from
  }
  if (!Number.isInteger(k) || k < 0 || k > hosts.length - 1) {
    throw new PlanError(`kRandomMatrix: k must be an integer from 0 to ${hosts.length - 1} (hosts - 1), got ${k}`);
  }
  const flows: TrafficFlow[] = [];
  for (const from of hosts) {
    // Partial Fisher-Yates: the first k of a shuffle of the other hosts.
    const others = hosts.filter((h) => h !== from);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(checkRandom(random, 'kRandomMatrix') * (others.length - i));
      [others[i], others[j]] = [others[j]!, others[i]!];
      const to = others[i]!;
      flows.push({ from, to, bytes: typeof bytes === 'number' ? bytes : bytes(from, to) });
    }
  }
  return trafficMatrix(hosts, flows);
}

const PLAN_FILE_KEYS = new Set(['version', 'parallel', 'steps', 'predicted_bytes', 'random_order_bytes']);

/**
 * Reads a plan file: `{ version: 1, parallel, steps: [["vm1","vm2"],["vm3"]],
 * predicted_bytes?, random_order_bytes? }`. With knownHosts, every host in it must be one of
 * them (a plan may move only some hosts: the rest can be moved by hand). Unknown keys are
 * errors, so that a misspelt field is reported instead of silently ignored; a later format
 * that adds fields will carry a new version.
 */
export function parsePlanFile(text: string, knownHosts?: Iterable<string>): Plan {
  const where = 'plan file';
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new PlanError(`${where}: not JSON (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new PlanError(`${where}: must be a JSON object`);
  }
  const obj = doc as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!PLAN_FILE_KEYS.has(key)) throw new PlanError(`${where}: unknown field "${key}"`);
  }
  if (obj['version'] !== PLAN_FILE_VERSION) {
    throw new PlanError(`${where}: version must be ${PLAN_FILE_VERSION}, got ${JSON.stringify(obj['version'])}`);
  }
  const parallel = checkParallel(obj['parallel'], where);
  const check: StepCheck = { where, parallel };
  if (knownHosts !== undefined) check.known = new Set(knownHosts);
  const steps = checkSteps(obj['steps'], check);
  const plan: { -readonly [K in keyof Plan]: Plan[K] } = { parallel, steps };
  for (const [key, field] of [
    ['predicted_bytes', 'predictedBytes'],
    ['random_order_bytes', 'randomOrderBytes'],
  ] as const) {
    const value = obj[key];
    if (value === undefined) continue;
    if (!isNonNegativeFinite(value)) {
      throw new PlanError(`${where}: ${key} must be a finite number >= 0, got ${JSON.stringify(value)}`);
    }
    plan[field] = value;
  }
  return plan;
}

/**
 * The text of a plan file, one step per line, ending in a newline. Throws PlanError for a
 * plan that parsePlanFile would refuse, so that no unreadable file is ever written.
 */
export function formatPlanFile(plan: Plan): string {
  const where = 'formatPlanFile';
  const parallel = checkParallel(plan.parallel, where);
  const steps = checkSteps(plan.steps, { where, parallel });
  const lines = [
    `  "version": ${PLAN_FILE_VERSION}`,
    `  "parallel": ${parallel}`,
    `  "steps": [\n${steps.map((s) => `    [${s.map((h) => JSON.stringify(h)).join(', ')}]`).join(',\n')}\n  ]`,
  ];
  for (const [key, value] of [
    ['predicted_bytes', plan.predictedBytes],
    ['random_order_bytes', plan.randomOrderBytes],
  ] as const) {
    if (value === undefined) continue;
    if (!isNonNegativeFinite(value)) throw new PlanError(`${where}: ${key} must be a finite number >= 0, got ${value}`);
    lines.push(`  "${key}": ${value}`);
  }
  return `{\n${lines.join(',\n')}\n}\n`;
}
