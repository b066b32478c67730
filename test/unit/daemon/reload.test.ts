import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { ReloadRefused, describeSetting, planReload } from '../../../src/daemon/reload.js';

const BASE = `site: a
log_level: info
ports:
  - { name: vm1, type: tap }
  - { name: vm2, type: tap, mtu: 1500 }
`;

const PEERED = `site: a
insecure: true
listen: "127.0.0.1:6640"
peer: { name: b, address: "127.0.0.1:6641", tunnel_port: to-b }
ports:
  - { name: to-b, type: gre, remote_ip: 192.0.2.2, key: flow }
  - { name: h1, type: tap, tunnel_id: 101, site: a, mac: "02:00:00:00:01:01" }
  - { name: up, type: tap }
`;

function refused(running: string, next: string): string {
  try {
    planReload(parseConfig(running), parseConfig(next));
  } catch (e) {
    expect(e).toBeInstanceOf(ReloadRefused);
    return (e as Error).message;
  }
  throw new Error('expected the reload to be refused');
}

describe('planReload', () => {
  it('the same file changes nothing', () => {
    expect(planReload(parseConfig(BASE), parseConfig(BASE))).toEqual({ add: [], remove: [], change: [], settings: [] });
  });

  it('finds ports added, removed and changed, and the live settings', () => {
    const next = `site: a
log_level: debug
mac_table: { aging_seconds: 60 }
packet_in: { rate: 50, burst: 10 }
ports:
  - { name: vm2, type: tap, mtu: 9000 }
  - { name: vm3, type: tap }
  - { name: to-c, type: gre, remote_ip: 192.0.2.3 }
`;
    const plan = planReload(parseConfig(BASE), parseConfig(next));
    expect(plan.add.map((p) => p.name)).toEqual(['vm3', 'to-c']);
    expect(plan.remove).toEqual(['vm1']);
    expect(plan.change).toHaveLength(1);
    expect(plan.change[0]!.from).toMatchObject({ name: 'vm2', mtu: 1500 });
    expect(plan.change[0]!.to).toMatchObject({ name: 'vm2', mtu: 9000 });
    expect(plan.settings.map(describeSetting)).toEqual([
      'log_level: info -> debug',
      'mac_table.aging_seconds: 300 -> 60',
      'packet_in.rate: 1000 -> 50',
      'packet_in.burst: 100 -> 10',
    ]);
  });

  it('refuses settings only a restart changes, naming them', () => {
    expect(refused(BASE, BASE.replace('site: a', 'site: z'))).toBe('site changed: this setting changes only by restarting limed');
    expect(refused(BASE, `${BASE}socket: /tmp/x.sock\ntable_miss: drop\n`)).toBe('socket, table_miss changed: these settings change only by restarting limed');
    expect(refused(BASE, `${BASE}mac_table: { capacity: 100 }\n`)).toBe('mac_table.capacity changed: this setting changes only by restarting limed');
    expect(refused(BASE, `${BASE}fast_path: off\n`)).toMatch(/^fast_path changed/);
  });

  it('refuses a change of the resource limits: they are set at start only', () => {
    expect(refused(BASE, `${BASE}limits: { monitor_queue_bytes: 65536 }\n`)).toBe('limits changed: this setting changes only by restarting limed');
    expect(refused(BASE, `${BASE}limits: { journal_compact_entries: 100, replication_window_entries: 1000 }\n`)).toBe('limits changed: this setting changes only by restarting limed');
    // Spelling out the defaults changes nothing.
    expect(planReload(parseConfig(BASE), parseConfig(`${BASE}limits: { monitor_queue_bytes: 4194304 }\n`)).settings).toEqual([]);
  });

  it('refuses adding, removing or changing a host, and touching the tunnel port', () => {
    expect(refused(PEERED, PEERED.replace('  - { name: h1, type: tap, tunnel_id: 101, site: a, mac: "02:00:00:00:01:01" }\n', ''))).toMatch(/^ports: h1 is a host of live migration/);
    expect(refused(PEERED, PEERED.replace('tunnel_id: 101', 'tunnel_id: 102'))).toMatch(/^ports: h1 is a host/);
    expect(refused(PEERED, `${PEERED}  - { name: h2, type: tap, tunnel_id: 102, site: b }\n`)).toMatch(/^ports: h2 is a host of live migration .* added only by restarting/);
    expect(refused(PEERED, PEERED.replace('key: flow }', 'key: flow, ttl: 9 }'))).toBe("ports: to-b is the peer's tunnel port (peer.tunnel_port); it is changed only by restarting limed");
    // an ordinary port next to them may change
    expect(planReload(parseConfig(PEERED), parseConfig(PEERED.replace('{ name: up, type: tap }', '{ name: up, type: tap, mtu: 1400 }'))).change).toHaveLength(1);
  });
});
