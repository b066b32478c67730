/**
 * Saved fuzz findings under test/fixtures/fuzz-regression/<target>/, replayed on every run.
 *
 * Two formats, by extension:
 *   .hex   one binary input: hex digits (white space ignored); lines starting with '#'
 *          are comments (the format test/unit/packet/extract-fuzz.test.ts already reads).
 *   .json  { "comment": "...", ...target-specific fields }: for text inputs (exact, any
 *          character) and inputs with parameters (which decoder, how a stream is chunked).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../fixtures/fuzz-regression/', import.meta.url));

export interface Regression<T> {
  /** File name, for the failure message. */
  name: string;
  input: T;
}

function files(target: string, ext: string): string[] {
  const dir = join(ROOT, target);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.endsWith(ext))
    .sort();
}

export function hexBytes(text: string): Uint8Array {
  const digits = text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('')
    .replace(/\s+/g, '');
  if (!/^(?:[0-9a-f]{2})*$/i.test(digits)) throw new Error(`not hex: ${digits.slice(0, 40)}…`);
  return Uint8Array.from(digits.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** Every .hex input of `target`. */
export function hexRegressions(target: string): Regression<Uint8Array>[] {
  return files(target, '.hex').map((name) => ({ name, input: hexBytes(readFileSync(join(ROOT, target, name), 'utf8')) }));
}

/** Every .json input of `target`, parsed (the caller checks its shape). */
export function jsonRegressions<T>(target: string): Regression<T>[] {
  return files(target, '.json').map((name) => ({ name, input: JSON.parse(readFileSync(join(ROOT, target, name), 'utf8')) as T }));
}

/** Runs `check` on every input; a failure names the fixture file. Returns how many ran. */
export function replay<T>(regressions: Regression<T>[], check: (input: T) => void): number {
  for (const r of regressions) {
    try {
      check(r.input);
    } catch (err) {
      throw new Error(`regression ${r.name}: ${(err as Error).message}`, { cause: err });
    }
  }
  return regressions.length;
}
