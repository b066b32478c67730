import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_LIMITS, DEFAULT_METRICS_LISTEN, DEFAULT_SOCKET, DEFAULT_STATE_DIR, parseConfig } from '../../../src/daemon/config.js';

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
    expect(c.control_share_percent).toBe(5);
    expect(parseConfig('site: a\ncontrol_share_percent: 100\n').control_share_percent).toBe(100);
    expect(parseConfig('site: a\ncontrol_share_percent: 2.5\n').control_share_percent).toBe(2.5);
    expect(c.ports[0]).toEqual({ name: 'vm1', type: 'tap', mtu: 1500 });
    expect(c.ports[1]).toMatchObject({ mtu: 9000, mac: '02:00:00:00:00:02', device: 'lime-vm2' });
  });

  it('accepts gre and system ports, with their defaults', () => {
    const c = parseConfig(
      'site: a\nports:\n  - { name: to-b, type: gre, remote_ip: 192.0.2.2, key: 4242 }\n' +
        '  - { name: to-c, type: gre, remote_ip: 192.0.2.3, local_ip: 192.0.2.1, key: flow, csum: true, seq: true, ttl: inherit, tos: inherit, path_mtu: 1400, fragment: true, mss_clamp: true }\n' +
        '  - { name: to-d, type: gre, remote_ip: 192.0.2.4 }\n' +
        '  - { name: to-b2, type: gre, remote_ip: 192.0.2.2, key: 4243 }\n' +
        '  - { name: up, type: system, device: eth1 }\n',
    );
    expect(c.ports[0]).toEqual({ name: 'to-b', type: 'gre', remote_ip: '192.0.2.2', key: 4242, csum: false, seq: false, ttl: 64, tos: 0, path_mtu: 1500, fragment: false, mss_clamp: false, mtu: 1500 });
    expect(c.ports[1]).toMatchObject({ local_ip: '192.0.2.1', key: 'flow', csum: true, seq: true, ttl: 'inherit', tos: 'inherit', path_mtu: 1400, fragment: true, mss_clamp: true });
    expect(c.ports[2]).not.toHaveProperty('key');
    expect(c.ports[4]).toEqual({ name: 'up', type: 'system', device: 'eth1', offloads: 'off' });
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
    ['site: a\nports:\n  - { name: vm1, type: tap, tx_queue_len: 10 }\n', 'limed.yaml: ports[0].tx_queue_len: expected an integer from 64 to 100000 (frames the kernel queues toward limed), got 10'],
    ['site: a\nports:\n  - { name: vm1, type: vxlan }\n', 'limed.yaml: ports[0].type: expected a port with type tap, system or gre, got "vxlan"'],
    ['site: a\nports:\n  - { name: t, type: gre }\n', 'limed.yaml: ports[0].remote_ip: expected an IPv4 address like "192.0.2.1", but it is missing'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: 10.0.0.256 }\n', 'limed.yaml: ports[0].remote_ip: expected an IPv4 address like "192.0.2.1", got "10.0.0.256"'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: "fd00::1" }\n', 'limed.yaml: ports[0].remote_ip: expected an IPv4 address like "192.0.2.1", got "fd00::1"'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: 224.0.0.1 }\n', 'limed.yaml: ports[0].remote_ip: expected a unicast IPv4 address (not 0.0.0.0, loopback, multicast or broadcast), got "224.0.0.1"'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: 10.0.0.2, local_ip: 0.0.0.0 }\n', 'limed.yaml: ports[0].local_ip: expected a unicast IPv4 address (not 0.0.0.0, loopback, multicast or broadcast), got "0.0.0.0"'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: 10.0.0.2, key: 4294967296 }\n', 'limed.yaml: ports[0].key: expected a key from 0 to 4294967295, or "flow" (the key is the packet\'s tun_id), got 4294967296'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: 10.0.0.2, key: any }\n', 'limed.yaml: ports[0].key: expected a key from 0 to 4294967295, or "flow" (the key is the packet\'s tun_id), got "any"'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: 10.0.0.2, ttl: 0 }\n', 'limed.yaml: ports[0].ttl: expected a TTL: an integer from 1 to 255, or "inherit", got 0'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: 10.0.0.2, path_mtu: 100 }\n', 'limed.yaml: ports[0].path_mtu: expected an integer from 576 to 9000 (the underlay MTU toward remote_ip), got 100'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: 10.0.0.2, fragment: yes please }\n', 'limed.yaml: ports[0].fragment: expected true (fragment the outer packet, DF clear) or false (drop and answer ICMP, DF set), got "yes please"'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: 10.0.0.2, device: x }\n', 'limed.yaml: ports[0]: unknown field "device"'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: 10.0.0.2, key: 1 }\n  - { name: u, type: gre, remote_ip: 10.0.0.2, key: 1 }\n', 'limed.yaml: ports[1].key: ports[0] is already a GRE tunnel to 10.0.0.2 with key 1'],
    ['site: a\nports:\n  - { name: t, type: gre, remote_ip: 10.0.0.2, key: 1 }\n  - { name: u, type: gre, remote_ip: 10.0.0.2, key: flow }\n', 'limed.yaml: ports[1].key: a GRE tunnel with key "flow" takes every key from 10.0.0.2: it must be the only tunnel to that remote'],
    ['site: a\nports:\n  - { name: s, type: system, mac: "02:00:00:00:00:09" }\n', 'limed.yaml: ports[0].mac: on a system port, mac is the MAC of the host behind it and needs tunnel_id (limed does not change an existing device\'s MAC)'],
    ['site: a\nports:\n  - { name: s, type: system, offloads: on }\n', 'limed.yaml: ports[0].offloads: expected off (turn the device\'s offloads off on attach) or keep, got "on"'],
    ['site: a\nports:\n  - { name: s, type: system, mtu: 1500 }\n', 'limed.yaml: ports[0]: unknown field "mtu"'],
    ['site: a\nports:\n  - { name: s, type: system, device: eth1 }\n  - { name: v, type: tap, device: eth1 }\n', 'limed.yaml: ports[1].device: device "eth1" is already used by ports[0]'],
    ['site: a\nports:\n  - { name: this-name-is-too-long, type: tap }\n', 'limed.yaml: ports[0].name: expected a device name of at most 15 characters (Linux IFNAMSIZ), got "this-name-is-too-long"'],
    ['site: a\nports:\n  - { name: vm1, type: tap, colour: red }\n', 'limed.yaml: ports[0]: unknown field "colour"'],
    ['site: a\nport: []\n', 'limed.yaml: unknown field "port"'],
    ['site: a\nports: {}\n', 'limed.yaml: ports: expected a list of ports, got {}'],
    ['site: a\nmac_table: { capacity: 3 }\n', 'limed.yaml: mac_table.capacity: expected at least 16, got 3'],
    ['site: a\ncontrol_share_percent: 0\n', 'limed.yaml: control_share_percent: expected a number from 1 to 100 (percent of the event loop), got 0'],
    ['site: a\ncontrol_share_percent: 101\n', 'limed.yaml: control_share_percent: expected a number from 1 to 100 (percent of the event loop), got 101'],
    ['site: a\ncontrol_share_percent: lots\n', 'limed.yaml: control_share_percent: expected a number from 1 to 100 (percent of the event loop), got "lots"'],
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

describe('limed configuration: the control channel', () => {
  const TLS = 'tls: { ca: /etc/lime/ca.pem, cert: /etc/lime/a.pem, key: /etc/lime/a.key }\n';

  it('accepts a TLS peering, with defaults filled in', () => {
    const c = parseConfig(`site: a\nlisten: "192.0.2.1:6640"\npeer: { name: b, address: "192.0.2.2:6640" }\n${TLS}`);
    expect(c.listen).toBe('192.0.2.1:6640');
    expect(c.peer).toEqual({ name: 'b', address: '192.0.2.2:6640', dead_peer_ms: 3000 });
    expect(c.tls).toEqual({ ca: '/etc/lime/ca.pem', cert: '/etc/lime/a.pem', key: '/etc/lime/a.key' });
    expect(c.insecure).toBe(false);
    expect(c.state_dir).toBeUndefined(); // limed uses DEFAULT_STATE_DIR with a peer
    expect(DEFAULT_STATE_DIR).toBe('/var/lib/lime');
  });

  it('accepts the dialing site without listen, IPv6 and names as hosts, and insecure on loopback', () => {
    expect(parseConfig(`site: b\npeer: { name: a, address: "[2001:db8::1]:6640" }\n${TLS}`).listen).toBeUndefined();
    expect(parseConfig(`site: b\npeer: { name: a, address: "site-a.example:6640" }\n${TLS}`).peer?.address).toBe('site-a.example:6640');
    const c = parseConfig('site: a\nlisten: "127.0.0.1:6640"\npeer: { name: b, address: "[::1]:6641", dead_peer_ms: 500 }\ninsecure: true\nstate_dir: /tmp/lime-a\n');
    expect(c.insecure).toBe(true);
    expect(c.peer?.dead_peer_ms).toBe(500);
    expect(c.state_dir).toBe('/tmp/lime-a');
  });

  it.each([
    [`site: a\nlisten: "192.0.2.1:6640"\npeer: { name: b, address: "192.0.2.2:6640" }\ninsecure: true\n`,
      'limed.yaml: listen: insecure: true (plain TCP, no authentication) is allowed only on loopback, but listen is "192.0.2.1:6640"; use tls: { ca, cert, key }'],
    [`site: a\nlisten: "127.0.0.1:6640"\npeer: { name: b, address: "192.0.2.2:6640" }\ninsecure: true\n`,
      'limed.yaml: peer.address: insecure: true (plain TCP, no authentication) is allowed only on loopback, but peer.address is "192.0.2.2:6640"; use tls: { ca, cert, key }'],
    [`site: a\nlisten: "127.0.0.1:6640"\npeer: { name: b, address: "127.0.0.1:6641" }\n`,
      'limed.yaml: tls: the control channel needs tls: { ca, cert, key } (mutual certificate authentication), or insecure: true on loopback'],
    [`site: a\nlisten: "127.0.0.1:6640"\npeer: { name: b, address: "127.0.0.1:6641" }\ninsecure: true\n${TLS}`,
      'limed.yaml: insecure: set either tls or insecure: true, not both'],
    [`site: a\npeer: { name: b, address: "192.0.2.2:6640" }\n${TLS}`,
      'limed.yaml: listen: this site ("a") sorts before its peer ("b"), so it is the writer and accepts the peer\'s connection: set listen: "ADDR:PORT"'],
    [`site: a\nlisten: "192.0.2.1:6640"\npeer: { name: a, address: "192.0.2.2:6640" }\n${TLS}`, 'limed.yaml: peer.name: the peer must be another site than "a"'],
    [`site: a\nlisten: "192.0.2.1"\npeer: { name: b, address: "192.0.2.2:6640" }\n${TLS}`,
      'limed.yaml: listen: expected "HOST:PORT", e.g. "192.0.2.1:6640" or "[2001:db8::1]:6640", got "192.0.2.1"'],
    [`site: b\npeer: { name: a, address: "192.0.2.2:70000" }\n${TLS}`,
      'limed.yaml: peer.address: expected "HOST:PORT", e.g. "192.0.2.1:6640" or "[2001:db8::1]:6640", got "192.0.2.2:70000"'],
    [`site: b\npeer: { name: a, address: "192.0.2.2:6640", dead_peer_ms: 10 }\n${TLS}`,
      'limed.yaml: peer.dead_peer_ms: expected an integer from 300 to 60000 (ms without a word from the peer before it is taken for dead), got 10'],
    [`site: b\npeer: { name: a }\n${TLS}`, 'limed.yaml: peer.address: expected "HOST:PORT", e.g. "192.0.2.1:6640" or "[2001:db8::1]:6640", but it is missing'],
    [`site: b\npeer: { name: a, address: "192.0.2.2:6640" }\ntls: { ca: /ca.pem, cert: /b.pem }\n`, 'limed.yaml: tls.key: expected the path of a PEM file, but it is missing'],
    ['site: a\nlisten: "127.0.0.1:6640"\n', 'limed.yaml: listen: there is no peer to listen for (set peer: { name, address })'],
    [`site: a\n${TLS}`, 'limed.yaml: tls: there is no peer (set peer: { name, address })'],
    ['site: a\nstate_dir: var/lib/lime\n', 'limed.yaml: state_dir: expected an absolute path, got "var/lib/lime"'],
  ])('rejects %j', (text, message) => {
    expect(err(text)).toBe(message);
  });
});

describe('limed configuration: hosts for live migration', () => {
  const TLS = 'tls: { ca: /etc/lime/ca.pem, cert: /etc/lime/a.pem, key: /etc/lime/a.key }\n';
  const PEER = `site: a\nlisten: "192.0.2.1:6640"\n${TLS}`;
  const WAN = '  - { name: wan, type: gre, remote_ip: 192.0.2.2, key: flow }\n';

  it('accepts hosts with tunnel ids and start sites, and the peer\'s tunnel port', () => {
    const c = parseConfig(`${PEER}peer: { name: b, address: "192.0.2.2:6640", tunnel_port: wan }\nports:\n  - { name: vm1, type: tap, tunnel_id: 101, site: a }\n  - { name: vm2, type: system, device: veth2, tunnel_id: 102, site: b }\n${WAN}`);
    expect(c.peer?.tunnel_port).toBe('wan');
    expect(c.ports.map((p) => (p.type === 'gre' ? p.name : `${p.name}:${p.tunnel_id}@${p.site}`))).toEqual(['vm1:101@a', 'vm2:102@b', 'wan']);
  });

  it.each([
    [`${PEER}peer: { name: b, address: "192.0.2.2:6640", tunnel_port: wan }\nports:\n  - { name: vm1, tunnel_id: 101, type: tap }\n${WAN}`, 'limed.yaml: ports[0].site: a host needs the site where it starts (a or b)'],
    [`${PEER}peer: { name: b, address: "192.0.2.2:6640", tunnel_port: wan }\nports:\n  - { name: vm1, type: tap, tunnel_id: 101, site: c }\n${WAN}`, 'limed.yaml: ports[0].site: expected a or b, got "c"'],
    [`${PEER}peer: { name: b, address: "192.0.2.2:6640", tunnel_port: wan }\nports:\n  - { name: vm1, type: tap, tunnel_id: 101, site: a }\n  - { name: vm2, type: tap, tunnel_id: 101, site: b }\n${WAN}`, 'limed.yaml: ports[1].tunnel_id: tunnel id 101 is already the id of ports[0]'],
    [`${PEER}peer: { name: b, address: "192.0.2.2:6640", tunnel_port: wan }\nports:\n  - { name: vm1, type: tap, tunnel_id: 0, site: a }\n${WAN}`, 'limed.yaml: ports[0].tunnel_id: expected an integer from 1 to 16777215 (the host\'s tunnel id: GRE key between the sites), got 0'],
    [`${PEER}peer: { name: b, address: "192.0.2.2:6640" }\nports:\n  - { name: vm1, type: tap, tunnel_id: 101, site: a }\n${WAN}`, 'limed.yaml: peer.tunnel_port: hosts (ports with tunnel_id) need the port that carries their frames to the peer site'],
    [`${PEER}peer: { name: b, address: "192.0.2.2:6640", tunnel_port: nosuch }\nports:\n  - { name: vm1, type: tap, tunnel_id: 101, site: a }\n${WAN}`, 'limed.yaml: peer.tunnel_port: no port named "nosuch"'],
    [`${PEER}peer: { name: b, address: "192.0.2.2:6640", tunnel_port: wan }\nports:\n  - { name: vm1, type: tap, tunnel_id: 101, site: a }\n  - { name: wan, type: gre, remote_ip: 192.0.2.2, key: 7 }\n`, 'limed.yaml: peer.tunnel_port: port "wan" must be a gre port with key: flow (each host\'s frames cross with its tunnel id as the key)'],
    ['site: a\nports:\n  - { name: vm1, type: tap, tunnel_id: 101, site: a }\n', 'limed.yaml: ports[0].tunnel_id: a host moves between two sites: set peer: { name, address, tunnel_port }'],
    ['site: a\nports:\n  - { name: vm1, type: tap, site: a }\n', 'limed.yaml: ports[0].site: only a host (a port with tunnel_id) has a starting site'],
  ])('rejects %j', (text, message) => {
    expect(err(text)).toBe(message);
  });
});

describe('limed configuration: resource limits', () => {
  it('fills the defaults, and takes each bound at its ends', () => {
    expect(parseConfig('site: a\n').limits).toEqual({ monitor_queue_bytes: 4194304, journal_compact_entries: 50000, replication_window_entries: 20000 });
    expect(DEFAULT_LIMITS).toEqual({ monitor_queue_bytes: 4194304, journal_compact_entries: 50000, replication_window_entries: 20000 });
    expect(parseConfig('site: a\nlimits: { journal_compact_entries: 100 }\n').limits).toEqual({ monitor_queue_bytes: 4194304, journal_compact_entries: 100, replication_window_entries: 20000 });
    expect(parseConfig('site: a\nlimits: { monitor_queue_bytes: 65536, journal_compact_entries: 10000000, replication_window_entries: 1000 }\n').limits).toEqual({
      monitor_queue_bytes: 65536, journal_compact_entries: 10000000, replication_window_entries: 1000,
    });
    expect(parseConfig('site: a\nlimits: { monitor_queue_bytes: 1073741824, replication_window_entries: 10000000 }\n').limits).toMatchObject({ monitor_queue_bytes: 1073741824, replication_window_entries: 10000000 });
  });

  it.each([
    ['site: a\nlimits: { monitor_queue_bytes: 65535 }\n', 'limed.yaml: limits.monitor_queue_bytes: expected an integer from 65536 to 1073741824 (bytes of events a monitor connection may leave unread), got 65535'],
    ['site: a\nlimits: { monitor_queue_bytes: 1073741825 }\n', 'limed.yaml: limits.monitor_queue_bytes: expected an integer from 65536 to 1073741824 (bytes of events a monitor connection may leave unread), got 1073741825'],
    ['site: a\nlimits: { monitor_queue_bytes: 4MiB }\n', 'limed.yaml: limits.monitor_queue_bytes: expected an integer from 65536 to 1073741824 (bytes of events a monitor connection may leave unread), got "4MiB"'],
    ['site: a\nlimits: { journal_compact_entries: 99 }\n', 'limed.yaml: limits.journal_compact_entries: expected an integer from 100 to 10000000 (journal records between snapshots), got 99'],
    ['site: a\nlimits: { journal_compact_entries: 1000.5 }\n', 'limed.yaml: limits.journal_compact_entries: expected an integer from 100 to 10000000 (journal records between snapshots), got 1000.5'],
    ['site: a\nlimits: { replication_window_entries: 999 }\n', 'limed.yaml: limits.replication_window_entries: expected an integer from 1000 to 10000000 (log entries the writer keeps for its follower), got 999'],
    ['site: a\nlimits: { replication_window_entries: 10000001 }\n', 'limed.yaml: limits.replication_window_entries: expected an integer from 1000 to 10000000 (log entries the writer keeps for its follower), got 10000001'],
    ['site: a\nlimits: { mac_table: 5 }\n', 'limed.yaml: limits: unknown field "mac_table"'],
    ['site: a\nlimits: 5\n', 'limed.yaml: limits: expected a mapping like { monitor_queue_bytes: 4194304, journal_compact_entries: 50000, replication_window_entries: 20000 }, got 5'],
  ])('rejects %j', (text, message) => {
    expect(err(text)).toBe(message);
  });
});

describe('limed configuration: the Prometheus endpoint', () => {
  it('has none unless the metrics section is given; listen defaults to loopback', () => {
    expect(parseConfig('site: a\n').metrics).toBeUndefined();
    expect(parseConfig('site: a\nmetrics: {}\n').metrics).toEqual({ listen: DEFAULT_METRICS_LISTEN });
    expect(DEFAULT_METRICS_LISTEN).toBe('127.0.0.1:9469');
    // Any address is the operator's choice, IPv6 and names included.
    expect(parseConfig('site: a\nmetrics: { listen: "0.0.0.0:9100" }\n').metrics).toEqual({ listen: '0.0.0.0:9100' });
    expect(parseConfig('site: a\nmetrics: { listen: "[::1]:9469" }\n').metrics?.listen).toBe('[::1]:9469');
    expect(parseConfig('site: a\nmetrics: { listen: "localhost:9469" }\n').metrics?.listen).toBe('localhost:9469');
  });

  it.each([
    ['site: a\nmetrics: { listen: 9469 }\n', 'limed.yaml: metrics.listen: expected "HOST:PORT", e.g. "192.0.2.1:6640" or "[2001:db8::1]:6640", got 9469'],
    ['site: a\nmetrics: { listen: "127.0.0.1" }\n', 'limed.yaml: metrics.listen: expected "HOST:PORT", e.g. "192.0.2.1:6640" or "[2001:db8::1]:6640", got "127.0.0.1"'],
    ['site: a\nmetrics: { listen: "127.0.0.1:70000" }\n', 'limed.yaml: metrics.listen: expected "HOST:PORT", e.g. "192.0.2.1:6640" or "[2001:db8::1]:6640", got "127.0.0.1:70000"'],
    ['site: a\nmetrics: { listen: "127.0.0.1:0" }\n', 'limed.yaml: metrics.listen: expected "HOST:PORT", e.g. "192.0.2.1:6640" or "[2001:db8::1]:6640", got "127.0.0.1:0"'],
    ['site: a\nmetrics: { listen: "127.0.0.1:9469", path: /m }\n', 'limed.yaml: metrics: unknown field "path"'],
    ['site: a\nmetrics: true\n', 'limed.yaml: metrics: expected a mapping like { listen: "127.0.0.1:9469" }, got true'],
    ['site: a\nmetrics:\n', 'limed.yaml: metrics: expected a mapping like { listen: "127.0.0.1:9469" }, got null'],
    ['site: a\nmetrics: "127.0.0.1:9469"\n', 'limed.yaml: metrics: expected a mapping like { listen: "127.0.0.1:9469" }, got "127.0.0.1:9469"'],
  ])('rejects %j', (text, message) => {
    expect(err(text)).toBe(message);
  });
});
