/**
 * The folder layout is the architecture: imports point from the daemon inwards to the pure
 * cores, never back (see ../shared/STYLE.md). This test reads every import in src/ and
 * fails on one that crosses a layer the wrong way.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

/** Which folders each folder may import from. */
const ALLOWED: Record<string, readonly string[]> = {
  util: [],
  proto: ['util'],
  packet: ['util'],
  flow: ['util', 'packet'],
  table: ['util', 'packet', 'flow'],
  tunnel: ['util', 'packet'],
  datapath: ['util', 'packet', 'flow', 'table', 'tunnel'],
  io: ['util', 'packet', 'tunnel'],
  sync: ['util', 'proto', 'flow', 'table'],
  migrate: ['util', 'tunnel'],
  mgmt: ['util', 'proto', 'flow', 'table', 'sync'],
  daemon: ['util', 'proto', 'packet', 'flow', 'table', 'tunnel', 'datapath', 'io', 'sync', 'migrate', 'mgmt'],
  cli: ['util', 'proto', 'flow', 'mgmt/service.ts', 'migrate/planner.ts'],
  demo: ['util'],
  bin: ['daemon', 'cli', 'demo'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('layering of src/', () => {
  const all = files(SRC);

  it('knows every folder', () => {
    for (const f of all) {
      const layer = relative(SRC, f).split('/')[0]!;
      expect(ALLOWED, `folder src/${layer} has no layering rule`).toHaveProperty(layer);
    }
  });

  it('has no import that points the wrong way', () => {
    const bad: string[] = [];
    for (const f of all) {
      const from = relative(SRC, f).split('/')[0]!;
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.\.?\/[^']+)'/g)) {
        const target = relative(SRC, join(f, '..', m[1]!)).replace(/\.js$/, '.ts');
        const to = target.split('/')[0]!;
        if (to === from) continue;
        const ok = (ALLOWED[from] ?? []).some((a) => a === to || a === target);
        if (!ok) bad.push(`${relative(SRC, f)} imports ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
