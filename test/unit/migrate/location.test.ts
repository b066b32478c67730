import { describe, expect, it } from 'vitest';
import { LocationError, LocationMap, MAX_TUNNEL_ID, type HostSpec } from '../../../src/migrate/location.js';

const specs: HostSpec[] = [
  { name: 'vm1', tunnelId: 101, site: 'a', mac: '02:00:00:00:00:01' },
  { name: 'vm2', tunnelId: 102, site: 'b', mac: '' },
];

function error(fn: () => unknown): LocationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof LocationError) return err;
    throw err;
  }
  throw new Error('expected a LocationError');
}

describe('LocationMap', () => {
  it('starts each host at its declared site, in declaration order', () => {
    const m = new LocationMap(['a', 'b'], specs);
    expect(m.list()).toEqual([
      { name: 'vm1', site: 'a', tunnel_id: 101, mac: '02:00:00:00:00:01' },
      { name: 'vm2', site: 'b', tunnel_id: 102, mac: '' },
    ]);
    expect(m.siteOf('vm2')).toBe('b');
    expect(m.siteOf('nosuch')).toBeUndefined();
    expect(m.version).toBe(0);
  });

  it('moves a host, bumps the version, and treats a replayed move as no change', () => {
    const m = new LocationMap(['a', 'b'], specs);
    expect(m.move('vm1', 'b')).toEqual({ from: 'a', to: 'b', changed: true });
    expect(m.siteOf('vm1')).toBe('b');
    expect(m.version).toBe(1);
    expect(m.move('vm1', 'b')).toEqual({ from: 'b', to: 'b', changed: false });
    expect(m.version).toBe(1);
  });

  it('checks a move without changing anything: unknown host or site, already there', () => {
    const m = new LocationMap(['a', 'b'], specs);
    expect(m.check('vm1', 'b')).toEqual({ from: 'a', to: 'b' });
    expect(error(() => m.check('vm9', 'b'))).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('no host named vm9 (hosts: vm1, vm2)') });
    expect(error(() => m.check('vm1', 'c'))).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('no site named c') });
    expect(error(() => m.check('vm1', 'a'))).toMatchObject({ code: 'BAD_REQUEST', message: 'host vm1 is already at site a' });
    expect(error(() => m.move('vm9', 'a')).code).toBe('NOT_FOUND');
    expect(m.list().map((h) => h.site)).toEqual(['a', 'b']);
    expect(m.version).toBe(0);
  });

  it('refuses a bad declaration: duplicate name or tunnel id, tunnel id out of range, unknown start site', () => {
    const bad: Array<[HostSpec[], RegExp]> = [
      [[specs[0]!, { ...specs[0]!, tunnelId: 7 }], /declared twice/],
      [[specs[0]!, { ...specs[1]!, tunnelId: 101 }], /vm1 and vm2 have the same tunnel id 101/],
      [[{ ...specs[0]!, tunnelId: 0 }], /not an integer from 1/],
      [[{ ...specs[0]!, tunnelId: MAX_TUNNEL_ID + 1 }], /not an integer from 1/],
      [[{ ...specs[0]!, tunnelId: 1.5 }], /not an integer from 1/],
      [[{ ...specs[0]!, site: 'c' }], /starts at site c, which is not one of a, b/],
    ];
    for (const [list, message] of bad) expect(error(() => new LocationMap(['a', 'b'], list)).message).toMatch(message);
  });

  it('takes a snapshot\'s sites, returning (not applying) names and sites it does not know', () => {
    const m = new LocationMap(['a', 'b'], specs);
    expect(m.restore([{ name: 'vm1', site: 'b' }, { name: 'vm7', site: 'a' }, { name: 'vm2', site: 'z' }])).toEqual(['vm7', 'vm2']);
    expect(m.list().map((h) => `${h.name}@${h.site}`)).toEqual(['vm1@b', 'vm2@b']);
    expect(m.version).toBe(1);
  });
});
