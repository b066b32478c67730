// Clone time: how long an empty peer takes to receive the logical flow table (1k, 10k, 100k
// flows), and what happens while flow-mods keep arriving at the writer (0, 100, 1,000 per
// second) during the copy. Two limed sites peered over TLS on loopback in limeb-sw (the
// sync section's set-up, bench/lib/sync.mjs); site B restarts with an empty state
// directory each time, so the writer sends it a snapshot and then the entries after it.
//
// limed's copy is LIME's iterative copy without a freeze: the snapshot is taken at entry
// S; flow-mods that arrive meanwhile are sequenced after S and streamed behind the snapshot
// until the follower has caught up ("delta entries": B's position when caught up minus S).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { log, sleep, startBg, stopSync } from '../lib/exec.mjs';
import { addNs, SW, teardownSync } from '../lib/netns.mjs';
import { fileSize, flowText, loadClient, logTime, makeCerts, siteConfig, waitPeered } from '../lib/sync.mjs';
import { waitForFile } from '../lib/scenarios.mjs';
import { flowLines } from '../lib/flows.mjs';
import { lineSpec } from '../lib/figures.mjs';
import { readFileSync } from 'node:fs';


/** The snapshot's sequence number, from B's log line "replication: snapshot loaded (…, seq S)". */
function snapshotSeq(file, from) {
  const text = readFileSync(file, 'utf8').slice(from);
  const m = /snapshot loaded \([^)]*seq (\d+)\)/.exec(text);
  return m ? Number(m[1]) : null;
}

/**
 * Flow-mods at A paced at `rate` per second (add, then delete of the same flow: the table
 * size stays put), at most 16 outstanding, until stop() is called.
 */
function flowModStream(request, sock, rate) {
  let stopped = false;
  let sent = 0, done = 0, failed = 0, outstanding = 0, maxMs = 0;
  const t0 = Date.now();
  const loop = (async () => {
    if (rate <= 0) return;
    while (!stopped) {
      const due = Math.floor(((Date.now() - t0) * rate) / 1000);
      while (sent < due && outstanding < 16 && !stopped) {
        const i = sent++;
        const add = i % 2 === 0;
        const flow = `priority=7002,ip,nw_dst=10.96.${(i >> 9) & 255}.${(i >> 1) & 255}${add ? ',actions=drop' : ''}`;
        outstanding++;
        const t = performance.now();
        request(sock, { body: 'flow_mods', flow_mods: { command: add ? 'ADD' : 'DELETE_STRICT', text: flowText([flow]) } })
          .then(() => { done++; maxMs = Math.max(maxMs, performance.now() - t); }, () => { failed++; })
          .finally(() => { outstanding--; });
      }
      await sleep(5);
    }
    while (outstanding > 0) await sleep(5);
  })();
  return { async stop() { stopped = true; await loop; return { sent, done, failed, max_latency_ms: maxMs, seconds: (Date.now() - t0) / 1000 }; } };
}

export const clone = {
  title: 'Clone time of the flow table to an empty peer',
  async run(ctx, profile) {
    teardownSync();
    const request = await loadClient(ctx);
    await addNs(SW);
    const certs = makeCerts(join(ctx.tmp, 'clone-certs'));
    const A = siteConfig(ctx, 'a', certs);
    const B = siteConfig(ctx, 'b', certs);
    for (const s of [A, B]) rmSync(s.stateDir, { recursive: true, force: true });
    const logA = join(ctx.tmp, 'clone-a.log');
    const logB = join(ctx.tmp, 'clone-b.log');
    const procA = startBg('limed-clone-a', process.execPath, [ctx.limedJs, '--config', A.cfg], { ns: SW, logFile: logA });
    let procB = null;
    const sizes = profile.quick ? [1_000] : [1_000, 10_000, 100_000];
    const churnFlows = profile.quick ? 10_000 : 100_000;
    const rates = profile.quick ? [0, 1000] : [0, 100, 1000];
    const all = flowLines(Math.max(...sizes, churnFlows), 10);
    let inTable = 0;
    const fill = async (n) => {
      for (let i = inTable; i < n; i += 10_000) {
        await request(A.sock, { body: 'flow_mods', flow_mods: { command: 'ADD', text: flowText(all.slice(i, Math.min(n, i + 10_000))) } }, 120_000);
      }
      inTable = Math.max(inTable, n);
    };
    /** B from empty: times from B's start and from its session to the table installed and to caught up. */
    const cloneOnce = async (rate) => {
      if (procB) { stopSync(procB); procB = null; }
      rmSync(B.stateDir, { recursive: true, force: true });
      const stream = flowModStream(request, A.sock, rate);
      await sleep(rate > 0 ? 300 : 0); // the stream is running before B asks for the table
      const from = fileSize(logB);
      const t0 = Date.now();
      procB = startBg('limed-clone-b', process.execPath, [ctx.limedJs, '--config', B.cfg], { ns: SW, logFile: logB });
      if (!(await waitForFile(B.sock, 15_000))) throw new Error('site B did not open its socket');
      await waitPeered(request, B.sock, 60_000);
      const barrier = await request(B.sock, { body: 'sync_barrier', sync_barrier: {} }, 120_000);
      const caughtUp = Date.now();
      const s = await stream.stop();
      const up = logTime(logB, from, /^peer session with site-a up/);
      const loaded = logTime(logB, from, /^replication: snapshot loaded/);
      const snap = snapshotSeq(logB, from);
      return {
        installed_ms: up != null && loaded != null ? loaded - up : null,
        caught_up_ms: up != null ? caughtUp - up : null,
        start_to_caught_up_ms: caughtUp - t0,
        snapshot_seq: snap, caught_up_seq: barrier.sync_barrier.seq, delta_entries: snap != null ? barrier.sync_barrier.seq - snap : null,
        flow_mods: s,
      };
    };
    try {
      if (!(await waitForFile(A.sock, 15_000))) throw new Error('site A did not open its socket');
      const out = { sizes: [], churn: [] };
      for (const n of sizes) {
        await fill(n);
        const c = await cloneOnce(0);
        out.sizes.push({ flows: n, ...c });
        log(`clone: ${n} flows installed at B ${c.installed_ms} ms after its session came up, caught up after ${c.caught_up_ms} ms`);
      }
      await fill(churnFlows);
      for (const rate of rates) {
        const c = await cloneOnce(rate);
        out.churn.push({ flow_mods_per_s: rate, flows: churnFlows, ...c, achieved_per_s: c.flow_mods.done / c.flow_mods.seconds });
        log(`clone: ${churnFlows} flows with ${rate} flow-mods/s at A: installed ${c.installed_ms} ms, caught up ${c.caught_up_ms} ms after the session came up, ${c.delta_entries} entries streamed behind the snapshot`);
      }
      return out;
    } finally {
      if (procB) stopSync(procB);
      stopSync(procA);
      teardownSync();
    }
  },
  async render(res, figure) {
    const f1 = await figure('clone-time', lineSpec({
      title: 'Clone time of the flow table to an empty peer',
      subtitle: 'two limed sites over TLS on loopback; from the peer session up to the snapshot installed / caught up',
      points: res.sizes.flatMap((s) => [{ x: s.flows, y: s.installed_ms, series: 'snapshot installed' }, { x: s.flows, y: s.caught_up_ms, series: 'caught up (sync barrier)' }]),
      xTitle: 'flows in the table (log scale)', yTitle: 'time after the session came up (ms)', seriesTitle: 'milestone', logX: true, yDomainMin: 0,
    }));
    const f2 = await figure('clone-under-churn', lineSpec({
      title: `Cloning ${res.churn[0]?.flows ?? ''} flows while flow-mods arrive`,
      subtitle: 'flow-mods at the writer during the copy; entries streamed behind the snapshot until the follower caught up',
      points: res.churn.flatMap((c) => [{ x: c.flow_mods_per_s, y: c.caught_up_ms, series: 'caught up (ms)' }, { x: c.flow_mods_per_s, y: c.delta_entries, series: 'delta entries after the snapshot' }]),
      xTitle: 'flow-mods per second at the writer', yTitle: 'ms / entries', seriesTitle: 'measure', yDomainMin: 0,
    }));
    const L = [`![clone time](${f1})`, '', `![clone under churn](${f2})`, '',
      '| flows | flow-mods/s during the copy | snapshot installed (ms) | caught up (ms) | delta entries after the snapshot | slowest flow-mod meanwhile (ms) |', '|---:|---:|---:|---:|---:|---:|'];
    for (const s of res.sizes) L.push(`| ${s.flows} | 0 | ${s.installed_ms ?? 'n/a'} | ${s.caught_up_ms ?? 'n/a'} | ${s.delta_entries ?? 'n/a'} | |`);
    for (const c of res.churn) L.push(`| ${c.flows} | ${c.flow_mods_per_s} (achieved ${c.achieved_per_s.toFixed(0)}) | ${c.installed_ms ?? 'n/a'} | ${c.caught_up_ms ?? 'n/a'} | ${c.delta_entries ?? 'n/a'} | ${c.flow_mods.max_latency_ms != null && c.flow_mods.done ? c.flow_mods.max_latency_ms.toFixed(0) : ''} |`);
    L.push('', 'limed copies the table as one snapshot at entry S followed by the ordered stream of every later entry, with no freeze: the LIME paper\'s rounds of copying deltas become one continuous stream, and the follower is live once it has applied it. Times count from the follower\'s peer session coming up (its log), so they exclude its process start-up.');
    return L;
  },
};
