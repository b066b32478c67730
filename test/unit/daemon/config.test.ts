import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_SOCKET, parseConfig } from '../../../src/daemon/config.js';

function err(text: string): string {
  try {
    parseConfig(text, 'limed.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('limed configuration', () => {
  it('accepts YAML with defaults filled in', () => {
    const c = parseConfig('site: a\nports:\n  - { name: vm1, type: tap }\n  - { name: vm2, type: tap, mtu: 9000, mac: "02:00:00:00:00:02", device: lime-vm2 }\n');
    expect(c.site).toBe('a');
    expect(c.socket).toBe(DEFAULT_SOCKET);
    expect(c.mac_table).toEqual({ capacity: 8192, aging_seconds: 300 });
    expect(c.ports[0]).toEqual({ name: 'vm1', type: 'tap', mtu: 1500 });
    expect(c.ports[1]).toMatchObject({ mtu: 9000, mac: '02:00:00:00:00:02', device: 'lime-vm2' });
  });

  it('accepts JSON', () => {
    const c = parseConfig('{"site": "b", "socket": "/tmp/x.sock", "ports": []}');
    expect(c.site).toBe('b');
    expect(c.socket).toBe('/tmp/x.sock');
  });

  it.each([
    ['ports: []\n', 'limed.yaml: site: expected the site name, a string, but it is missing'],
    ['site: ""\n', 'limed.yaml: site: expected a non-empty site name, got ""'],
    ['site: a\nports:\n  - { name: vm1, type: tap, mtu: 99999 }\n', 'limed.yaml: ports[0].mtu: expected an integer from 68 to 9000, got 99999'],
    ['site: a\nports:\n  - { name: vm1, type: tap, mtu: "big" }\n', 'limed.yaml: ports[0].mtu: expected an integer from 68 to 9000, got "big"'],
    ['site: a\nports:\n  - { name: vm1, type: tap, mac: "zz:00:00:00:00:01" }\n', 'limed.yaml: ports[0].mac: expected a MAC address like "02:00:00:00:00:01", got "zz:00:00:00:00:01"'],
    ['site: a\nports:\n  - { name: vm1, type: tap, mac: "01:00:00:00:00:01" }\n', 'limed.yaml: ports[0].mac: expected a unicast MAC address (first octet even), got "01:00:00:00:00:01"'],
    ['site: a\nports:\n  - { name: vm1, type: gre }\n', 'limed.yaml: ports[0].type: expected "tap" (the only port type so far), got "gre"'],
    ['site: a\nports:\n  - { name: this-name-is-too-long, type: tap }\n', 'limed.yaml: ports[0].name: expected a device name of at most 15 characters (Linux IFNAMSIZ), got "this-name-is-too-long"'],
    ['site: a\nports:\n  - { name: vm1, type: tap, colour: red }\n', 'limed.yaml: ports[0]: unknown field "colour"'],
    ['site: a\nport: []\n', 'limed.yaml: unknown field "port"'],
    ['site: a\nports: {}\n', 'limed.yaml: ports: expected a list of ports, got {}'],
    ['site: a\nmac_table: { capacity: 3 }\n', 'limed.yaml: mac_table.capacity: expected at least 16, got 3'],
    ['site: a\nports:\n  - { name: vm1, type: tap }\n  - { name: vm1, type: tap }\n', 'limed.yaml: ports[1].name: duplicate port name "vm1" (also ports[0])'],
    ['site: a\nports:\n  - { name: vm1, type: tap, device: d }\n  - { name: vm2, type: tap, device: d }\n', 'limed.yaml: ports[1].device: device "d" is already used by ports[0]'],
    ['- just\n- a list\n', 'limed.yaml: expected a mapping with at least "site" and "ports"'],
  ])('rejects %j', (text, message) => {
    expect(err(text)).toBe(message);
  });

  it('names the line of a YAML syntax error', () => {
    expect(err('site: a\nports: [\n')).toMatch(/^limed\.yaml: not valid YAML or JSON \(line \d+, column \d+\)/);
  });

  it('rejects duplicate keys', () => {
    expect(err('site: a\nsite: b\n')).toMatch(/^limed\.yaml: not valid YAML or JSON/);
  });
});
