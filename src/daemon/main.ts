/**
 * `limed` command line: parse arguments, load the configuration, run the daemon in the
 * foreground until SIGTERM/SIGINT, and map failures to exit codes:
 * 0 clean stop, 1 runtime failure (privilege, device, socket in use), 2 bad usage/config.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError, DEFAULT_SOCKET, loadConfig } from './config.js';
import { Daemon, StartupError } from './daemon.js';
import { createLogger } from './log.js';

const HELP_AFTER = `
Configuration (YAML; JSON is accepted):
  site: a                        this site's name (required)
  socket: ${DEFAULT_SOCKET}   management socket for limectl (mode 0600)
  log_level: info                trace | debug | info | warn | error
  mac_table:
    capacity: 8192               learned MACs kept at most; the oldest is evicted when full
    aging_seconds: 300           a MAC not seen for this long is forgotten
  table_miss: normal             default table-miss rule (table 0, priority 0): normal | drop
  packet_in:                     packet-ins (CONTROLLER actions) to limectl monitor, per daemon
    rate: 1000                   per second (token bucket); the excess is dropped and counted
    burst: 100                   bucket depth
  ports:                         the ports limed switches between
    - name: vm1                  port name (also the device name unless "device" is set)
      type: tap                  a TAP device limed creates
      mtu: 1500                  68..9000
      mac: "02:00:00:00:00:01"   optional; the kernel picks one otherwise
      device: lime-vm1           optional OS device name (at most 15 characters)
      tx_queue_len: 5000         frames the kernel queues toward limed (64..100000)
    - name: uplink
      type: system               an interface that already exists (AF_PACKET)
      device: eth1               default: the port name
      offloads: off              off (default: GRO/TSO/... off on attach) | keep
    - name: to-b
      type: gre                  Ethernet over GRE over IPv4 to the peer site
      remote_ip: 192.0.2.2       required
      local_ip: 192.0.2.1        optional outer source / bound address
      key: 4242                  0..4294967295 | flow (the frame's tun_id); absent: no key
      csum: false                GRE checksum (C bit)     seq: false   sequence numbers
      ttl: 64                    1..255 | inherit         tos: 0       0..255 | inherit
      path_mtu: 1500             underlay MTU toward remote_ip (576..9000)
      fragment: false            MTU policy: false = DF set, drop what does not fit and
                                 answer IPv4 DF senders with ICMP fragmentation-needed;
                                 true = fragment the outer packet (DF clear)
      mss_clamp: false           clamp the TCP MSS of SYNs entering the tunnel
  metrics:                       optional: a Prometheus endpoint, GET http://LISTEN/metrics
    listen: "127.0.0.1:9469"     default shown; any address may be given (no authentication)
  limits:                        resource bounds (README "Resource bounds"); restart to change
    monitor_queue_bytes: 4194304 event bytes a monitor may leave unread before it is
                                 dropped (65536..1073741824)
    journal_compact_entries: 50000
                                 journal records between snapshots (100..10000000)
    replication_window_entries: 20000
                                 log entries the writer keeps for its follower; one
                                 further behind is cut loose and resyncs (1000..10000000)

Forwarding: by an OpenFlow-like flow table (limectl add-flow, dump-flows, ...; ovs-ofctl
syntax). The default table-miss rule priority=0,actions=NORMAL makes limed a VLAN-aware
MAC-learning switch until flows say otherwise: frames go to the port where their
destination MAC was learned, or are flooded to every other port.

Reload: SIGHUP (systemctl reload limed) or \`limectl reload\` re-reads the file and applies
port additions, removals and changes (not hosts of live migration nor the peer's tunnel
port) and log_level, mac_table.aging_seconds and packet_in, without touching the flow
table or the other ports. A file that does not validate or changes anything else is
refused with the reason; the running configuration stays in force.

Running: as root, or with CAP_NET_ADMIN (TAP devices, offloads) and CAP_NET_RAW
(AF_PACKET and raw IPv4 sockets for system and gre ports). limed runs in the
foreground and logs JSON lines to stdout (human-readable on a terminal). SIGTERM or SIGINT
stops it cleanly: its TAP devices and the management socket are removed.

Exit codes: 0 stopped cleanly, 1 runtime failure (missing privilege, device busy, socket
in use), 2 bad usage or bad configuration (the message names the field).

Examples:
  limed --check-config /etc/lime/limed.yaml
  limed --config /etc/lime/limed.yaml
  limectl --socket /run/lime/limed.sock show`;

export async function main(argv: string[]): Promise<number> {
  const program = new Command('limed')
    .description('lime data-plane daemon: switches Ethernet frames between TAP, system and GRE ports')
    .option('-c, --config <file>', 'configuration file (YAML or JSON)')
    .option('--check-config [file]', 'validate the configuration (FILE, or the --config file) and exit without starting')
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', HELP_AFTER)
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `limed: ${s.slice(7)}` : s),
    })
    .showSuggestionAfterError(true);

  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      process.stderr.write("limed: try 'limed --help'\n");
      return 2;
    }
    throw err;
  }
  const opts = program.opts<{ config?: string; checkConfig?: boolean | string }>();
  const checkOnly = opts.checkConfig !== undefined;
  const file = typeof opts.checkConfig === 'string' ? opts.checkConfig : opts.config;
  if (file === undefined) {
    process.stderr.write(`limed: a configuration file is required: --config FILE${checkOnly ? ' or --check-config FILE' : ''}\nlimed: try 'limed --help'\n`);
    return 2;
  }
  if (typeof opts.checkConfig === 'string' && opts.config !== undefined && opts.config !== opts.checkConfig) {
    process.stderr.write(`limed: --check-config ${opts.checkConfig} and --config ${opts.config} name different files; give one\n`);
    return 2;
  }

  let config;
  try {
    config = loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`limed: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (checkOnly) {
    process.stdout.write(`limed: ${file}: configuration is valid (site ${config.site}, ${config.ports.length} port(s))\n`);
    return 0;
  }

  const log = createLogger(config.log_level, config.site);
  const daemon = new Daemon(config, log, file);
  try {
    await daemon.start();
  } catch (err) {
    const code = err instanceof StartupError ? err.exitCode : 1;
    const msg = err instanceof Error ? err.message : String(err);
    log.error({ exitCode: code }, msg);
    process.stderr.write(`limed: ${msg}\n`);
    return code;
  }

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, `received ${signal}, stopping`);
      daemon.stop().then(
        () => {
          log.info('stopped');
          resolve(0);
        },
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          resolve(1);
        },
      );
    };
    // SIGHUP: re-read the file (daemon.reload logs what changed, or why it refused).
    process.on('SIGHUP', () => {
      if (stopping) return;
      log.info({ signal: 'SIGHUP', config: file }, 'received SIGHUP, reloading the configuration');
      daemon.reload().catch(() => {
        /* refused or failed: logged by reload with the reason; the old configuration stays */
      });
    });
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
