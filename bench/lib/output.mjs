// Where a run's results go: bench/results/<YYYY-MM-DD>/ holds the day's latest run — one
// JSON file per scenario (raw samples and the environment), run.json (what ran, the goals),
// REPORT.md and figures/*.svg. An earlier run of the same day is first moved into a
// subfolder named after its start time, so nothing is overwritten.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';

export const SCHEMA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema');
export const RUN_SCHEMA_ID = 'lime-bench-run/1';
export const SCENARIO_SCHEMA_ID = 'lime-bench-scenario/1';

/** The day's folder, with an earlier run of that day moved aside. */
export function prepareOutDir(resultsRoot, started) {
  const dir = join(resultsRoot, started.toISOString().slice(0, 10));
  const prev = join(dir, 'run.json');
  if (existsSync(prev)) {
    let stamp = 'earlier';
    try { stamp = JSON.parse(readFileSync(prev, 'utf8')).started_at.slice(11, 19).replace(/:/g, '-'); } catch { /* unreadable: keep the generic name */ }
    let aside = join(dir, stamp);
    for (let i = 2; existsSync(aside); i++) aside = join(dir, `${stamp}-${i}`);
    mkdirSync(aside, { recursive: true });
    for (const f of readdirSync(dir)) {
      if (f.endsWith('.json') || f === 'REPORT.md' || f === 'figures' || f.endsWith('.log')) renameSync(join(dir, f), join(aside, f));
    }
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** File name of a scenario's JSON (names are [a-z0-9-]). */
export const scenarioFile = (name) => `${name}.json`;

/** Write one scenario's JSON; returns the file name. */
export function writeScenario(dir, doc) {
  const file = scenarioFile(doc.name);
  writeFileSync(join(dir, file), JSON.stringify(doc, null, 1) + '\n');
  return file;
}

export function writeRun(dir, doc) {
  writeFileSync(join(dir, 'run.json'), JSON.stringify(doc, null, 1) + '\n');
}

let validators = null;
/** Ajv validators for run.json and the scenario files (bench/schema/). */
export function loadValidators() {
  if (validators) return validators;
  // Unknown keywords are errors (strictSchema); `required` under if/then names properties declared at the top.
  const ajv = new Ajv({ allErrors: true, strictSchema: true, strictRequired: false, strictTypes: false });
  const run = JSON.parse(readFileSync(join(SCHEMA_DIR, 'run.schema.json'), 'utf8'));
  const scenario = JSON.parse(readFileSync(join(SCHEMA_DIR, 'scenario.schema.json'), 'utf8'));
  validators = { run: ajv.compile(run), scenario: ajv.compile(scenario) };
  return validators;
}

/**
 * Check a results folder against the schemas: run.json, every file it lists, and that the
 * report's figures exist. Returns a list of problems (empty: well-formed).
 */
export function validateResults(dir) {
  const v = loadValidators();
  const problems = [];
  const read = (f) => {
    try { return JSON.parse(readFileSync(join(dir, f), 'utf8')); } catch (e) { problems.push(`${f}: ${e.message}`); return null; }
  };
  const run = read('run.json');
  if (!run) return problems;
  if (!v.run(run)) problems.push(...v.run.errors.map((e) => `run.json${e.instancePath}: ${e.message}`));
  for (const f of run.files ?? []) {
    const doc = read(f);
    if (doc && !v.scenario(doc)) problems.push(...v.scenario.errors.map((e) => `${f}${e.instancePath}: ${e.message}`));
  }
  const reportPath = join(dir, 'REPORT.md');
  if (!existsSync(reportPath)) problems.push('REPORT.md is missing');
  else {
    const report = readFileSync(reportPath, 'utf8');
    for (const m of report.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)) {
      const p = join(dir, m[1]);
      if (!existsSync(p)) problems.push(`REPORT.md shows ${m[1]}, which does not exist`);
      else if (!/^<svg[\s>]/.test(readFileSync(p, 'utf8').slice(0, 200))) problems.push(`${m[1]} is not an SVG document`);
    }
    for (const fig of run.figures ?? []) if (!report.includes(`(${fig})`)) problems.push(`run.json lists ${fig}, which REPORT.md does not show`);
  }
  return problems;
}
