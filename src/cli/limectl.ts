/**
 * limectl: the operator's CLI for limed, over the local management socket.
 *
 * `main(argv, io)` parses the arguments (commander), validates what it can locally (MTU,
 * MAC, device name — before anything is sent), sends one request (client.ts), and prints
 * the reply: human text by default, exactly one JSON object with --json. It returns the
 * exit code instead of exiting, so tests drive it in-process:
 *   0 success; 1 runtime failure (limed not running, limed returned an error, timeout);
 *   2 bad usage (unknown command/option, missing argument, bad option value).
 * Every failure is one line on stderr starting with `limectl: `; usage errors add a hint
 * to --help. No stack traces.
 */
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { formatPlanFile, parsePlanFile, PlanError } from '../migrate/planner.js';
import { Command, CommanderError } from 'commander';
import { pcapHeader, pcapRecord } from '../util/pcap.js';
import { ClientError, monitor, request, transact } from './client.js';
import {
  type AddPortRequest,
  DEFAULT_MGMT_SOCKET,
  type FdbEntry,
  type FlowModCommandName,
  type FlowText,
  type MgmtRequestBody,
  type MigrateRequest,
  type MigrateStatus,
  type PeerShowReply,
  type PortInfo,
  type ReloadReply,
  type ShowReply,
} from '../proto/schema.js';
import {
  FlowFileError,
  FlowInputError,
  checkActions,
  checkFlow,
  checkPacket,
  chunkFlows,
  eventJson,
  flowJson,
  formatDumpLine,
  formatEvent,
  formatPortStats,
  formatTrace,
  parseFrameHex,
  portStats,
  readFlowFile,
} from './flows.js';

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Environment to read LIME_SOCKET from (default: process.env). */
  env?: Record<string, string | undefined>;
  /** Ends `monitor` (as Ctrl-C does). Default: SIGINT/SIGTERM of this process. */
  signal?: AbortSignal;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

const DEFAULT_TIMEOUT_MS = 5000;

/** Bad command line: exit 2. `command` names the subcommand whose --help to suggest. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

interface GlobalOptions {
  socket?: string;
  json?: boolean;
  timeout?: string;
}

interface Context {
  io: CliIo;
  socket: string;
  json: boolean;
  timeoutMs: number;
}

export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const env = io.env ?? process.env;
  const status = { code: EXIT_OK };
  const program = buildProgram(io, env, status);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return status.code;
  } catch (err) {
    return report(err, io);
  }
}

function report(err: unknown, io: CliIo): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK;
    if (err.code === 'commander.help') {
      // No command given: commander's help went to a discarded buffer; say it in one line.
      io.stderr.write("limectl: missing command (see 'limectl --help')\n");
      return EXIT_USAGE;
    }
    const text = err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
    io.stderr.write(`limectl: ${text} (see 'limectl --help')\n`);
    return EXIT_USAGE;
  }
  if (err instanceof UsageError) {
    const help = err.command ? `limectl ${err.command} --help` : 'limectl --help';
    io.stderr.write(`limectl: ${err.message} (see '${help}')\n`);
    return EXIT_USAGE;
  }
  if (err instanceof FlowInputError) {
    io.stderr.write(`limectl: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (err instanceof PlanError) {
    io.stderr.write(`limectl: invalid plan: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (err instanceof ClientError || err instanceof FlowFileError) {
    io.stderr.write(`limectl: ${err.message}\n`);
    return EXIT_FAILURE;
  }
  io.stderr.write(`limectl: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT_FAILURE;
}

function buildProgram(io: CliIo, env: Record<string, string | undefined>, status: { code: number }): Command {
  const program = new Command('limectl');
  program
    .description('Operator CLI for limed, the lime data plane daemon. Talks to the local limed over its management socket.')
    .option(
      '--socket <path>',
      `limed's management socket (default: $LIME_SOCKET if set, else ${DEFAULT_MGMT_SOCKET})`,
    )
    .option('--json', 'print exactly one JSON object (for scripts) instead of text')
    .option('--timeout <ms>', `give up when limed has not replied within MS milliseconds (default: ${DEFAULT_TIMEOUT_MS})`)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: () => {}, // only help-on-error goes here; report() prints one line instead
      outputError: () => {},
    })
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      `
Environment:
  LIME_SOCKET   management socket path, used when --socket is not given

Exit codes:
  0  success
  1  runtime failure (limed not running, limed returned an error — e.g. it rejected a
     flow-mod or does not know a port —, timeout, a flow file that cannot be read)
  2  bad usage (unknown command or option, missing argument, bad option value, flow text
     that does not parse); diff-flows also exits 2 when it found differences, as
     ovs-ofctl diff-flows does

Flow syntax is ovs-ofctl's (ovs-ofctl(8) "Flow Syntax"); ports may be named or numbered.

Examples:
  limectl show
  limectl --json show
  limectl fdb/show
  limectl add-port vm3 --mtu 9000 --mac 02:00:00:00:00:03
  limectl del-port vm3
  limectl add-flow 'priority=100,in_port=vm1,tcp,tp_dst=22,actions=output:vm2'
  limectl add-flows flows.txt
  limectl dump-flows 'tcp' --json
  limectl del-flows --strict 'priority=100,in_port=vm1,tcp,tp_dst=22'
  limectl trace 'in_port=vm1,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_dst=22'
  limectl monitor --json
  limectl capture to-b -w to-b.pcap --count 100
  limectl capture vm1 -w - | tcpdump -nn -r -
  limectl peer status
  limectl sync barrier`,
    );

  const context = (cmd: Command): Context => {
    const opts = cmd.optsWithGlobals<GlobalOptions>();
    const timeoutMs = opts.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseTimeout(opts.timeout);
    const socket = opts.socket ?? (env['LIME_SOCKET'] || DEFAULT_MGMT_SOCKET);
    if (socket === '') throw new UsageError('invalid --socket: empty path');
    return { io, socket, json: opts.json === true, timeoutMs };
  };

  program
    .command('show')
    .description('show the site, its ports with state and counters, and the MAC table')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const reply = await request({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, { body: 'show', show: {} });
      if (reply.body !== 'show') throw unexpected('show', reply.body);
      if (ctx.json) printJson(ctx, reply.show);
      else ctx.io.stdout.write(formatShow(reply.show));
    });

  program
    .command('fdb/show')
    .alias('fdb-show')
    .description('show the learned MAC addresses (port, VLAN, MAC, age in seconds), like ovs-appctl fdb/show')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const reply = await request({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, { body: 'fdb_show', fdb_show: {} });
      if (reply.body !== 'fdb_show') throw unexpected('fdb/show', reply.body);
      if (ctx.json) printJson(ctx, { entries: reply.fdb_show.entries });
      else ctx.io.stdout.write(formatFdb(reply.fdb_show.entries));
    });

  program
    .command('add-port')
    .description('add a port at run time')
    .argument('<name>', 'port name (also the device name unless --device is given)')
    .option('--type <type>', 'tap (a TAP device limed creates) or system (an existing interface, e.g. eth1)', 'tap')
    .option('--device <dev>', 'OS device name (default: the port name)')
    .option('--mtu <n>', 'MTU, an integer from 68 to 65535 (default: limed\'s, 1500)')
    .option('--mac <mac>', 'MAC address, unicast, like 02:00:00:00:00:03 (default: chosen by the kernel)')
    .action(async (name: string, opts: { type: string; device?: string; mtu?: string; mac?: string }, cmd: Command) => {
      const spec = parseAddPort(name, opts);
      const ctx = context(cmd);
      const reply = await request({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, { body: 'add_port', add_port: spec });
      if (reply.body !== 'port') throw unexpected('add-port', reply.body);
      if (ctx.json) printJson(ctx, reply.port);
      else ctx.io.stdout.write(formatAddedPort(reply.port));
    });

  program
    .command('del-port')
    .description('remove a port at run time')
    .argument('<name>', 'port name')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      if (name === '') throw new UsageError('port name must not be empty', 'del-port');
      const ctx = context(cmd);
      const reply = await request({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, { body: 'del_port', del_port: { name } });
      if (reply.body !== 'ok') throw unexpected('del-port', reply.body);
      if (ctx.json) printJson(ctx, { deleted: name });
      else ctx.io.stdout.write(`deleted port ${name}\n`);
    });

  // ---- flow table (issue 3) ------------------------------------------------------------

  const send = async (ctx: Context, bodies: MgmtRequestBody[]) =>
    transact({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, bodies);

  /** flow_mods requests for `texts` (chunks of one file, or one flow), the last one applying. */
  const flowMods = async (ctx: Context, command: FlowModCommandName, texts: FlowText[], what: string): Promise<void> => {
    const replies = await send(ctx, texts.map((text) => ({ body: 'flow_mods', flow_mods: { command, text } }) as MgmtRequestBody));
    const last = replies[replies.length - 1]![0]!;
    if (last.body !== 'flow_mods') throw unexpected(what, last.body);
    if (ctx.json) printJson(ctx, last.flow_mods);
  };

  const one = (flow: string): FlowText[] => [{ flows: [flow], lines: [0], source: '', more: false }];

  program
    .command('add-flow')
    .description('add a flow (ovs-ofctl syntax); an identical match and priority is replaced')
    .argument('<flow>', "e.g. 'priority=100,in_port=vm1,ip,nw_dst=10.1.0.0/16,actions=output:uplink'")
    .action(async (flow: string, _opts: unknown, cmd: Command) => {
      checkFlow(flow, 'add');
      const ctx = context(cmd);
      await flowMods(ctx, 'ADD', one(flow), 'add-flow');
    });

  program
    .command('add-flows')
    .description('add the flows of FILE (one per line, # comments), all or none')
    .argument('<file>', 'flow file')
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      const parsed = readFlowFile(file, 'add');
      const ctx = context(cmd);
      if (parsed.flows.length === 0) {
        if (ctx.json) printJson(ctx, { added: 0, modified: 0, removed: 0 });
        return;
      }
      await flowMods(ctx, 'ADD', chunkFlows(parsed), 'add-flows');
    });

  program
    .command('mod-flows')
    .description("change the actions of the flows FLOW's match covers (--strict: the flow with exactly that match and priority)")
    .argument('<flow>', "e.g. 'in_port=vm1,actions=drop'")
    .option('--strict', 'only the flow with exactly this match and priority')
    .action(async (flow: string, opts: { strict?: boolean }, cmd: Command) => {
      checkFlow(flow, 'modify');
      const ctx = context(cmd);
      await flowMods(ctx, opts.strict ? 'MODIFY_STRICT' : 'MODIFY', one(flow), 'mod-flows');
    });

  program
    .command('del-flows')
    .description('delete the flows MATCH covers (--strict: exactly that match and priority); no MATCH deletes every flow')
    .argument('[match]', "e.g. 'in_port=vm1,tcp'")
    .option('--strict', 'only the flow with exactly this match and priority')
    .action(async (match: string | undefined, opts: { strict?: boolean }, cmd: Command) => {
      if (match !== undefined) checkFlow(match, 'delete');
      const ctx = context(cmd);
      const texts: FlowText[] = match === undefined ? [{ flows: [], lines: [], source: '', more: false }] : one(match);
      await flowMods(ctx, opts.strict ? 'DELETE_STRICT' : 'DELETE', texts, 'del-flows');
    });

  program
    .command('dump-flows')
    .description("print the flows (all, or those MATCH covers) in ovs-ofctl's layout, by table and priority")
    .argument('[match]', "e.g. 'tcp,in_port=vm1'")
    .option('--strict', 'only the flow with exactly this match and priority')
    .option('--site <site>', 'with a peer site: both (default: the logical table, counters summed over both sites), local or peer (one site\'s physical table)')
    .option('--json', 'print a JSON array of flows')
    .action(async (match: string | undefined, opts: { strict?: boolean; site?: string }, cmd: Command) => {
      if (match !== undefined) checkFlow(match, 'delete');
      const site = opts.site ?? '';
      if (site !== '' && site !== 'both' && site !== 'local' && site !== 'peer') throw new UsageError(`invalid --site '${site}': expected local, peer or both`);
      const ctx = context(cmd);
      const replies = await send(ctx, [{ body: 'dump_flows', dump_flows: { match: match ?? '', strict: opts.strict === true, site } }]);
      let localOnly = false;
      const flows = replies[0]!.flatMap((r) => {
        if (r.body !== 'dump_flows') throw unexpected('dump-flows', r.body);
        if (r.dump_flows.local_only === true) localOnly = true;
        return r.dump_flows.flows;
      });
      if (localOnly) ctx.io.stderr.write('limectl: the peer site is not connected: counters are this site\'s only\n');
      if (ctx.json) printJson(ctx, flows.map(flowJson));
      else ctx.io.stdout.write(flows.map((f) => `${formatDumpLine(f)}\n`).join(''));
    });

  const replaceOrDiff = async (file: string, cmd: Command, dryRun: boolean): Promise<void> => {
    const parsed = readFlowFile(file, 'add');
    const ctx = context(cmd);
    const chunks = chunkFlows(parsed);
    const what = dryRun ? 'diff-flows' : 'replace-flows';
    const replies = await send(ctx, chunks.map((text) => ({ body: 'replace_flows', replace_flows: { text, dry_run: dryRun } }) as MgmtRequestBody));
    const parts = replies[replies.length - 1]!;
    const lines: string[] = [];
    let counts = { added: 0, modified: 0, removed: 0 };
    for (const r of parts) {
      if (r.body !== 'flow_diff') throw unexpected(what, r.body);
      lines.push(...r.flow_diff.lines);
      counts = { added: r.flow_diff.n_added, modified: r.flow_diff.n_modified, removed: r.flow_diff.n_removed };
    }
    if (ctx.json) printJson(ctx, { ...counts, diff: lines });
    else if (dryRun) ctx.io.stdout.write(lines.map((l) => `${l}\n`).join(''));
    if (dryRun && lines.length > 0) status.code = EXIT_USAGE; // ovs-ofctl diff-flows: exit 2 when they differ
  };

  program
    .command('replace-flows')
    .description('make the flow table equal to FILE: add, delete and modify only what differs (unchanged flows keep their counters); atomic')
    .argument('<file>', 'flow file')
    .action(async (file: string, _opts: unknown, cmd: Command) => replaceOrDiff(file, cmd, false));

  program
    .command('diff-flows')
    .description('print how the flow table differs from FILE (-flow: only in the table, +flow: only in the file); exit 0 if none, 2 if any (as ovs-ofctl)')
    .argument('<file>', 'flow file')
    .action(async (file: string, _opts: unknown, cmd: Command) => replaceOrDiff(file, cmd, true));

  program
    .command('dump-ports')
    .description('per-port receive and transmit counters (packets, bytes, drops), like ovs-ofctl dump-ports')
    .argument('[port]', 'a port name or number')
    .option('--json', 'print a JSON array')
    .action(async (port: string | undefined, _opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const reply = await request({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, { body: 'show', show: {} });
      if (reply.body !== 'show') throw unexpected('dump-ports', reply.body);
      let ports = [...reply.show.ports].sort((a, b) => a.number - b.number);
      if (port !== undefined) {
        ports = ports.filter((p) => p.name === port || String(p.number) === port);
        if (ports.length === 0) throw new NoSuchPortError(`no port named or numbered ${port}`);
      }
      const stats = ports.map(portStats);
      if (ctx.json) printJson(ctx, stats);
      else ctx.io.stdout.write(formatPortStats(stats));
    });

  program
    .command('monitor')
    .description('print flow-table changes, flow-removed, packet-in and host-moved events as they happen (until Ctrl-C)')
    .option('--json', 'one JSON object per line')
    .option('--events', 'mobility events only: each host move (host, MAC, old and new site, cause, time)')
    .action(async (opts: { events?: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      let signal = io.signal;
      let cleanup = (): void => {};
      if (signal === undefined) {
        const ac = new AbortController();
        const stop = (): void => ac.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        cleanup = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        };
        signal = ac.signal;
      }
      try {
        await monitor({ path: ctx.socket, timeoutMs: ctx.timeoutMs, signal }, (event) => {
          if (opts.events === true && event.kind !== 'host_moved') return;
          ctx.io.stdout.write(ctx.json ? `${JSON.stringify(eventJson(event))}\n` : `${formatEvent(event)}\n`);
        });
      } finally {
        cleanup();
      }
    });

  program
    .command('capture')
    .description('write the frames a port receives and sends to a pcap file (tcpdump/Wireshark), until --count frames or Ctrl-C')
    .argument('<port>', 'port name')
    .requiredOption('-w, --write <file>', "pcap file to write ('-' = standard output)")
    .option('--count <n>', 'stop after N frames')
    .option('--snaplen <bytes>', 'bytes kept per frame, 1 to 65535 (default 65535)')
    .action(async (portName: string, opts: { write: string; count?: string; snaplen?: string }, cmd: Command) => {
      const count = opts.count === undefined ? Infinity : parsePositiveInt(opts.count, '--count', 'capture', 2 ** 31);
      const snaplen = opts.snaplen === undefined ? 65535 : parsePositiveInt(opts.snaplen, '--snaplen', 'capture', 65535);
      if (portName === '') throw new UsageError('port name must not be empty', 'capture');
      const ctx = context(cmd);
      const toStdout = opts.write === '-';
      const out = toStdout ? process.stdout : createWriteStream(opts.write, { mode: 0o600 });
      const opened = toStdout ? Promise.resolve() : new Promise<void>((resolve, reject) => {
        out.once('open', () => resolve());
        out.once('error', (err: NodeJS.ErrnoException) => reject(new ClientError(`cannot write ${opts.write}: ${err.code ?? err.message}`)));
      });
      await opened;
      out.write(pcapHeader(snaplen));
      const ac = new AbortController();
      const stopSignals = (): void => ac.abort();
      if (io.signal !== undefined) io.signal.addEventListener('abort', stopSignals);
      else {
        process.once('SIGINT', stopSignals);
        process.once('SIGTERM', stopSignals);
      }
      let frames = 0;
      let dropped = 0;
      if (!toStdout) ctx.io.stderr.write(`limectl: capturing on ${portName} to ${opts.write}${count !== Infinity ? ` (${count} frames)` : ''}; Ctrl-C to stop\n`);
      try {
        await monitor({ path: ctx.socket, timeoutMs: ctx.timeoutMs, signal: ac.signal, start: { body: 'capture', capture: { port: portName, snaplen } } }, (event) => {
          if (event.kind === 'dropped') dropped += event.dropped;
          if (event.kind !== 'frame' || event.frame === undefined || frames >= count) return;
          out.write(pcapRecord(event.frame.data, event.time * 1000, Math.max(event.frame.len, event.frame.data.length), snaplen));
          frames++;
          if (frames >= count) ac.abort();
        });
      } finally {
        process.off('SIGINT', stopSignals);
        process.off('SIGTERM', stopSignals);
        await new Promise<void>((resolve) => (toStdout ? resolve() : out.end(resolve)));
      }
      const summary = { port: portName, file: opts.write, frames, dropped };
      if (ctx.json && !toStdout) printJson(ctx, summary);
      else ctx.io.stderr.write(`limectl: ${frames} frame(s) captured on ${portName}${dropped > 0 ? `, ${dropped} dropped by limed (the capture read too slowly)` : ''}\n`);
    });

  program
    .command('packet-out')
    .description(
      "send a frame through ACTIONS as if received on IN_PORT, like ovs-ofctl packet-out: either one argument 'in_port=PORT,packet=HEX,actions=ACTIONS' or three: IN_PORT ACTIONS HEX",
    )
    .argument('<spec...>', "'in_port=vm1,packet=ffff…,actions=output:vm2'  or  vm1 output:vm2 ffff…")
    .action(async (spec: string[], _opts: unknown, cmd: Command) => {
      const out = parsePacketOut(spec);
      const ctx = context(cmd);
      const replies = await send(ctx, [{ body: 'packet_out', packet_out: out }]);
      const r = replies[0]![0]!;
      if (r.body !== 'ok') throw unexpected('packet-out', r.body);
      if (ctx.json) printJson(ctx, { sent: out.packet.length });
    });

  program
    .command('trace')
    .description('show how a packet described in flow syntax would be handled: each table lookup, the rule and its actions, then the datapath actions (like ovs-appctl ofproto/trace)')
    .argument('<packet>', "e.g. 'in_port=vm1,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_dst=22'")
    .option('--json', 'print the trace as one JSON object')
    .action(async (packet: string, _opts: unknown, cmd: Command) => {
      checkPacket(packet);
      const ctx = context(cmd);
      const replies = await send(ctx, [{ body: 'trace', trace: { packet } }]);
      const r = replies[0]![0]!;
      if (r.body !== 'trace') throw unexpected('trace', r.body);
      if (ctx.json) printJson(ctx, r.trace);
      else ctx.io.stdout.write(formatTrace(r.trace));
    });

  const peer = program.command('peer').description('the control channel to the peer site');
  peer
    .command('status')
    .description('role (writer or follower), connection, TLS identity, round-trip time, replication lag, last resync')
    .option('--json', 'print one JSON object')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const reply = await request({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, { body: 'peer_show', peer_show: {} });
      if (reply.body !== 'peer_show') throw unexpected('peer status', reply.body);
      if (ctx.json) printJson(ctx, reply.peer_show);
      else ctx.io.stdout.write(formatPeerStatus(reply.peer_show));
    });

  const sync = program.command('sync').description('replication of the logical flow table');
  sync
    .command('barrier')
    .description('wait until every change made so far is applied at both sites; prints the log position reached')
    .option('--json', 'print one JSON object')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const reply = await request({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, { body: 'sync_barrier', sync_barrier: {} });
      if (reply.body !== 'sync_barrier') throw unexpected('sync barrier', reply.body);
      if (ctx.json) printJson(ctx, reply.sync_barrier);
      else ctx.io.stdout.write(`${reply.sync_barrier.peered ? 'applied at both sites' : 'applied at this site (no peer connected)'} up to entry ${reply.sync_barrier.seq}\n`);
    });

  program
    .command('reload')
    .description("make limed re-read its configuration file (as SIGHUP does) and apply what changed; a file that is invalid, or changes what needs a restart, is refused and the running configuration stays")
    .option('--json', 'print one JSON object')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const reply = await request({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, { body: 'reload', reload: {} });
      if (reply.body !== 'reload') throw unexpected('reload', reply.body);
      if (ctx.json) printJson(ctx, reply.reload);
      else ctx.io.stdout.write(formatReload(reply.reload));
    });

  const migrate = program.command('migrate').description('live migration: where each host (logical port) is, and moving hosts between the sites');
  const phaseCommand = (name: string, description: string, body: (opts: { to?: string; strategy?: string }) => MigrateRequest, done: (m: MigrateStatus) => string): Command =>
    migrate
      .command(name)
      .description(description)
      .option('--json', 'print one JSON object')
      .action(async (opts: { to?: string; strategy?: string }, cmd: Command) => {
        const ctx = context(cmd);
        const reply = await request({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, { body: 'migrate', migrate: body(opts) });
        if (reply.body !== 'migrate') throw unexpected(`migrate ${name}`, reply.body);
        if (ctx.json) printJson(ctx, reply.migrate);
        else ctx.io.stdout.write(done(reply.migrate));
      });
  phaseCommand(
    'prepare',
    'start an ensemble migration to SITE: the flow table is cloned there (both sites in step), then hosts move with migrate host',
    (o) => ({ action: 'prepare', prepare: { phase: 'moving', from: '', to: o.to!, strategy: o.strategy ?? 'lime', before: [], ended: '' } }),
    (m) => `migration from site ${m.migration.from} to site ${m.migration.to} under way: ${m.flows} flows at both sites (log entry ${m.seq}); move the hosts, then finalize\n`,
  )
    .requiredOption('--to <site>', 'the new site')
    .option('--strategy <strategy>', 'lime (both sites forward, tunnel at egress) or stop-and-copy (the old site\'s table switches everything until finalize freezes both and cuts over)', 'lime');
  phaseCommand('finalize', 'end the migration once every host is at the new site; the old site then carries nothing', () => ({ action: 'finalize', finalize: {} }), (m) => `migration from site ${m.migration.from} to site ${m.migration.to} finalized: the counters of ${m.archived_flows} flows moved to site ${m.migration.to} (log entry ${m.seq})\n`);
  phaseCommand('abort', 'return every host to where it was at prepare, then end the migration', () => ({ action: 'abort', abort: {} }), (m) => `migration from site ${m.migration.from} to site ${m.migration.to} aborted: every host is back (log entry ${m.seq})\n`);
  migrate
    .command('host')
    .description('move one host to a site: the new site delivers to it first, then the old site tunnels its frames there; returns once both sites applied the move')
    .argument('<host>', 'the host (a port with a tunnel_id)')
    .requiredOption('--to <site>', 'the site the host is at now')
    .option('--json', 'print one JSON object')
    .action(async (host: string, opts: { to: string }, cmd: Command) => {
      const ctx = context(cmd);
      const reply = await request({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, { body: 'migrate', migrate: { action: 'host', host: { host, site: opts.to, cause: 'command' } } });
      if (reply.body !== 'migrate') throw unexpected('migrate host', reply.body);
      if (ctx.json) printJson(ctx, reply.migrate);
      else {
        const m = reply.migrate.moved;
        ctx.io.stdout.write(`host ${m.host} moved from site ${m.from} to site ${m.to} (log entry ${m.seq})\n`);
      }
    });
  migrate
    .command('plan')
    .description('measure who talks to whom through this site for a window, then order the moves of the hosts here to keep inter-site traffic low; -o writes the plan for migrate run')
    .option('--window <seconds>', 'how long to measure traffic (default 5)')
    .option('--parallel <n>', 'hosts moved at once, at most (default 1)')
    .option('-o, --output <file>', 'write the plan file (JSON) for migrate run --plan')
    .option('--json', 'print one JSON object')
    .action(async (opts: { window?: string; parallel?: string; output?: string }, cmd: Command) => {
      const windowMs = opts.window === undefined ? 0 : Math.round(parsePositiveNumber(opts.window, '--window', 'migrate plan', 600) * 1000);
      const parallel = opts.parallel === undefined ? 0 : parsePositiveInt(opts.parallel, '--parallel', 'migrate plan', 1_000_000);
      const ctx = context(cmd);
      const timeoutMs = Math.max(ctx.timeoutMs, (windowMs === 0 ? 5000 : windowMs) + 10_000);
      const reply = await request({ path: ctx.socket, timeoutMs }, { body: 'migrate', migrate: { action: 'plan', plan: { window_ms: windowMs, parallel } } });
      if (reply.body !== 'migrate') throw unexpected('migrate plan', reply.body);
      const p = reply.migrate.plan;
      if (opts.output !== undefined) {
        const text = formatPlanFile({ parallel: p.parallel, steps: p.steps.map((st) => st.hosts), predictedBytes: p.predicted_bytes, randomOrderBytes: p.random_order_bytes });
        try {
          writeFileSync(opts.output, text);
        } catch (err) {
          throw new ClientError(`cannot write ${opts.output}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
      if (ctx.json) printJson(ctx, p);
      else {
        const lines = [`plan from ${p.window_ms / 1000} s of traffic at site ${reply.migrate.site}, at most ${p.parallel} host(s) at once:`];
        p.steps.forEach((st, i) => lines.push(`  step ${i + 1}: ${st.hosts.join(' ')}`));
        lines.push(`predicted inter-site bytes: ${p.predicted_bytes} (a random order: ${p.random_order_bytes})`);
        if (opts.output !== undefined) lines.push(`plan written to ${opts.output}`);
        ctx.io.stdout.write(lines.join('\n') + '\n');
      }
    });
  migrate
    .command('run')
    .description('move the hosts of a plan file step by step (a step\'s hosts at once), starting the migration when none is under way')
    .requiredOption('--plan <file>', 'the plan (from migrate plan -o)')
    .option('--parallel <n>', 'regroup the plan\'s order into steps of N hosts')
    .option('--to <site>', 'where the hosts go (default: the migration under way)')
    .option('--strategy <strategy>', 'when it starts the migration: lime or stop-and-copy (see migrate prepare)', 'lime')
    .option('--json', 'print one JSON object')
    .action(async (opts: { plan: string; parallel?: string; to?: string; strategy: string }, cmd: Command) => {
      let text: string;
      try {
        text = readFileSync(opts.plan, 'utf8');
      } catch (err) {
        throw new ClientError(`cannot read plan file ${opts.plan}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const plan = parsePlanFile(text);
      let steps = plan.steps;
      if (opts.parallel !== undefined) {
        const n = parsePositiveInt(opts.parallel, '--parallel', 'migrate run', 1_000_000);
        const order = steps.flat();
        steps = [];
        for (let i = 0; i < order.length; i += n) steps.push(order.slice(i, i + n));
      }
      const ctx = context(cmd);
      const run = { steps: steps.map((hosts) => ({ hosts })), to: opts.to ?? '', strategy: opts.strategy };
      const reply = await request({ path: ctx.socket, timeoutMs: Math.max(ctx.timeoutMs, 60_000) }, { body: 'migrate', migrate: { action: 'run', run } });
      if (reply.body !== 'migrate') throw unexpected('migrate run', reply.body);
      if (ctx.json) printJson(ctx, reply.migrate);
      else ctx.io.stdout.write(`moved ${steps.flat().length} host(s) in ${steps.length} step(s) to site ${reply.migrate.migration.to}; finalize when they all work there\n`);
    });
  migrate
    .command('status')
    .description('each host\'s site and tunnel id, and the bytes carried over the inter-site link')
    .option('--json', 'print one JSON object')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const reply = await request({ path: ctx.socket, timeoutMs: ctx.timeoutMs }, { body: 'migrate', migrate: { action: 'status', status: {} } });
      if (reply.body !== 'migrate') throw unexpected('migrate status', reply.body);
      if (ctx.json) {
        const { moved: _moved, seq: _seq, plan: _plan, ...status } = reply.migrate;
        printJson(ctx, status);
      } else ctx.io.stdout.write(formatMigrateStatus(reply.migrate));
    });

  return program;
}

/** `limectl migrate status` as text. */
export function formatMigrateStatus(m: MigrateStatus): string {
  const lines = [`site ${m.site}${m.peer !== '' ? `, peer ${m.peer} (${m.peer_connected ? 'connected' : 'not connected'})` : ' (no peer)'}${m.tunnel_port !== '' ? `, tunnel port ${m.tunnel_port}` : ''}`];
  const p = m.migration;
  lines.push(p.phase === 'moving' ? `  migration from site ${p.from} to site ${p.to} under way (${p.strategy})` : p.phase === 'cutover' ? `  migration from site ${p.from} to site ${p.to} cutting over (forwarding frozen)` : `  no migration under way${p.ended !== '' ? ` (the last, from site ${p.from} to site ${p.to}, was ${p.ended})` : ''}`);
  if (m.hosts.length === 0) lines.push('  no hosts declared (ports with a tunnel_id)');
  else {
    const w = Math.max(4, ...m.hosts.map((h) => h.name.length));
    const ws = Math.max(4, ...m.hosts.map((h) => h.site.length));
    lines.push(`  ${'host'.padEnd(w)}  ${'site'.padEnd(ws)}  tunnel_id  mac`);
    for (const h of m.hosts) lines.push(`  ${h.name.padEnd(w)}  ${h.site.padEnd(ws)}  ${String(h.tunnel_id).padStart(9)}  ${h.mac || '-'}`);
  }
  lines.push(`  inter-site link: sent ${m.inter_site_tx_packets} frames (${m.inter_site_tx_bytes} bytes), received ${m.inter_site_rx_packets} frames (${m.inter_site_rx_bytes} bytes)`);
  return lines.join('\n') + '\n';
}

/** `limectl peer status` as text. */
export function formatPeerStatus(p: PeerShowReply): string {
  if (!p.configured) return `site ${p.site}: no peer and no state directory configured (flows are kept in memory only)\n`;
  const lines = [`site ${p.site}: ${p.role}${p.peer !== '' ? `, peer ${p.peer}` : ' (no peer)'}`];
  if (p.peer !== '') {
    lines.push(p.connected ? `  connected to ${p.remote_address} (${p.tls_identity})${p.rtt_ms !== undefined ? `, round trip ${p.rtt_ms.toFixed(2)} ms` : ''}` : '  not connected');
  }
  lines.push(`  log ${p.log_id || '(none yet)'}: applied up to entry ${p.seq}, durable up to ${p.durable_seq}`);
  if (p.lag_entries !== undefined) lines.push(`  replication lag: ${p.lag_entries} entries${p.lag_ms !== undefined ? `, ${p.lag_ms.toFixed(0)} ms` : ''}`);
  lines.push(`  resyncs: ${p.resyncs}${p.last_resync_at !== undefined ? `, last at ${new Date(p.last_resync_at * 1000).toISOString()}` : ''}${p.role === 'writer' ? `; resumes: ${p.resumes}` : ''}`);
  if (p.window_cutoffs > 0) lines.push(`  follower cut loose ${p.window_cutoffs} time(s) for falling behind the replication window (limits.replication_window_entries)`);
  if (p.divergent > 0) lines.push(`  WARNING: ${p.divergent} replicated entries did not apply here; the tables may differ (see the log)`);
  lines.push(`  state directory: ${p.state_dir}`);
  lines.push(`  journal: ${p.journal_bytes} bytes, ${p.compactions} compactions since start`);
  return lines.join('\n') + '\n';
}

class NoSuchPortError extends ClientError {}

/** packet-out arguments → request; FlowInputError/UsageError for what does not parse. */
function parsePacketOut(spec: string[]): { in_port: string; actions: string; packet: Uint8Array } {
  let inPort: string;
  let actions: string;
  let hex: string;
  if (spec.length === 1) {
    const text = spec[0]!;
    const a = text.search(/(^|[\s,])actions=/);
    if (a < 0) throw new UsageError("packet-out: expected 'in_port=PORT,packet=HEX,actions=ACTIONS'", 'packet-out');
    const start = text.indexOf('actions=', a);
    actions = text.slice(start + 'actions='.length);
    const head = text.slice(0, a);
    const fields = new Map<string, string>();
    for (const item of head.split(/[\s,]+/).filter((x) => x !== '')) {
      const eq = item.indexOf('=');
      if (eq < 0) throw new UsageError(`packet-out: expected KEY=VALUE, got '${item}'`, 'packet-out');
      const key = item.slice(0, eq);
      if (key !== 'in_port' && key !== 'packet') throw new UsageError(`packet-out: unknown field '${key}' (expected in_port, packet, actions)`, 'packet-out');
      fields.set(key, item.slice(eq + 1));
    }
    inPort = fields.get('in_port') ?? 'none';
    const p = fields.get('packet');
    if (p === undefined) throw new UsageError('packet-out: packet=HEX is required', 'packet-out');
    hex = p;
  } else if (spec.length >= 3) {
    inPort = spec[0]!;
    actions = spec[1]!;
    hex = spec.slice(2).join('');
  } else {
    throw new UsageError("packet-out: expected 'in_port=PORT,packet=HEX,actions=ACTIONS' or IN_PORT ACTIONS HEX", 'packet-out');
  }
  checkActions(actions, 'packet-out actions');
  const packet = parseFrameHex(hex);
  if (packet === undefined) throw new UsageError(`packet-out: packet '${hex.length > 40 ? hex.slice(0, 37) + '...' : hex}' is not an even number of hex digits`, 'packet-out');
  if (packet.length < 14) throw new UsageError(`packet-out: a frame needs at least 14 bytes (Ethernet header), got ${packet.length}`, 'packet-out');
  if (!/^[A-Za-z0-9_.-]+$/.test(inPort)) throw new UsageError(`packet-out: bad in_port '${inPort}'`, 'packet-out');
  return { in_port: inPort, actions, packet };
}

class UnexpectedReplyError extends ClientError {}

function unexpected(command: string, body: string): Error {
  return new UnexpectedReplyError(`limed answered ${command} with an unexpected '${body}' reply`);
}

function printJson(ctx: Context, value: unknown): void {
  ctx.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------
// Local validation (the daemon validates again; this only saves a round trip and gives the
// operator the option's name)

export const MIN_MTU = 68; // RFC 791: every IPv4 host must accept 68-byte datagrams
export const MAX_MTU = 65535;

function parsePositiveNumber(text: string, what: string, command: string, max: number): number {
  const n = Number(text);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || !(n > 0) || n > max) throw new UsageError(`invalid ${what} '${text}': must be a number of seconds from 0.1 to ${max}`, command);
  return n;
}

function parsePositiveInt(text: string, what: string, command: string, max: number): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new UsageError(`invalid ${what} '${text}': must be an integer from 1 to ${max}`, command);
  }
  return n;
}

function parseTimeout(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 3_600_000) {
    throw new UsageError(`invalid --timeout '${text}': must be a whole number of milliseconds from 1 to 3600000`);
  }
  return Number(text);
}

/** "1500" → 1500, or UsageError naming --mtu. */
export function parseMtu(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < MIN_MTU || n > MAX_MTU) {
    throw new UsageError(`invalid --mtu '${text}': must be an integer from ${MIN_MTU} to ${MAX_MTU}`, 'add-port');
  }
  return n;
}

/** "02:00:00:00:00:0A" → "02:00:00:00:00:0a", or UsageError naming --mac. */
export function parseMac(text: string): string {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) {
    throw new UsageError(`invalid --mac '${text}': expected six hex octets separated by colons, like 02:00:00:00:00:03`, 'add-port');
  }
  const mac = text.toLowerCase();
  if (parseInt(mac.slice(0, 2), 16) & 1) {
    throw new UsageError(`invalid --mac '${text}': a port MAC must be unicast (lowest bit of the first octet clear)`, 'add-port');
  }
  if (mac === '00:00:00:00:00:00') {
    throw new UsageError(`invalid --mac '${text}': the all-zeros MAC is not a valid address`, 'add-port');
  }
  return mac;
}

/** Linux accepts a device name of 1..15 bytes, not "." or "..", without '/', ':' or whitespace. */
function checkDeviceName(device: string, what: string): void {
  if (
    device.length === 0 ||
    Buffer.byteLength(device) > 15 ||
    device === '.' ||
    device === '..' ||
    /[/:\s]/.test(device)
  ) {
    throw new UsageError(`invalid ${what} '${device}': a device name is 1 to 15 characters without '/', ':' or spaces`, 'add-port');
  }
}

function parseAddPort(name: string, opts: { type: string; device?: string; mtu?: string; mac?: string }): AddPortRequest {
  if (name === '') throw new UsageError('port name must not be empty', 'add-port');
  if (opts.type !== 'tap' && opts.type !== 'system') {
    throw new UsageError(`invalid --type '${opts.type}': 'tap' (a TAP device limed creates) or 'system' (an existing interface); gre tunnels come from the configuration`, 'add-port');
  }
  if (opts.type === 'system' && (opts.mtu !== undefined || opts.mac !== undefined)) {
    throw new UsageError(`--mtu and --mac apply to tap ports only: a system port keeps its interface's MTU and MAC`, 'add-port');
  }
  const spec: AddPortRequest = { name, type: opts.type };
  if (opts.device !== undefined) {
    checkDeviceName(opts.device, '--device');
    spec.device = opts.device;
  } else {
    checkDeviceName(name, 'port name (it is also the device name; use --device)');
  }
  if (opts.mtu !== undefined) spec.mtu = parseMtu(opts.mtu);
  if (opts.mac !== undefined) spec.mac = parseMac(opts.mac);
  return spec;
}

// ---------------------------------------------------------------------------------------
// Human output

type Align = 'left' | 'right';

/** Columns padded to the widest cell, two spaces apart. */
export function formatTable(header: string[], rows: string[][], align: Align[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (align[i] === 'right' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export function formatDrops(drops: Record<string, number>): string {
  const parts = Object.entries(drops)
    .filter(([, n]) => n !== 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([reason, n]) => `${reason}=${n}`);
  return parts.length > 0 ? parts.join(',') : '-';
}

export function formatShow(reply: ShowReply): string {
  let out = `site: ${reply.site}\n`;
  const ports = [...reply.ports].sort((a, b) => a.number - b.number);
  if (ports.length === 0) {
    out += 'ports: none\n';
  } else {
    out += formatTable(
      ['PORT', 'NAME', 'TYPE', 'DEVICE', 'STATE', 'MTU', 'MAC', 'RX_PACKETS', 'RX_BYTES', 'TX_PACKETS', 'TX_BYTES', 'DROPS'],
      ports.map((p) => [
        String(p.number),
        p.name,
        p.type,
        p.device,
        p.state,
        String(p.mtu),
        p.mac,
        String(p.rx_packets),
        String(p.rx_bytes),
        String(p.tx_packets),
        String(p.tx_bytes),
        formatDrops(p.drops),
      ]),
      ['right', 'left', 'left', 'left', 'left', 'right', 'left', 'right', 'right', 'right', 'right', 'left'],
    );
  }
  for (const p of ports) {
    const o = Object.entries(p.options ?? {});
    if (o.length > 0) out += `${p.name}: ${o.map(([k, v]) => `${k}=${v}`).join(', ')}\n`;
  }
  const t = reply.mac_table;
  out += `mac table: ${t.size} of ${t.capacity} entries, ${t.evictions} evictions, aging ${t.aging_seconds} s\n`;
  const c = reply.control;
  if (c !== undefined && c.share_percent < 100) {
    out += `control plane: ${c.share_percent} % of the event loop while the data path is saturated (${c.saturated ? 'saturated now' : 'not saturated now'}); ${c.deferred} requests deferred, ${c.waiting} waiting\n`;
  }
  if (c !== undefined && c.monitors_dropped > 0) {
    out += `monitors dropped: ${c.monitors_dropped} (left more than limits.monitor_queue_bytes of events unread)\n`;
  }
  const f = reply.fast_path;
  if (f !== undefined && f.enabled) {
    out += `fast path: native on ${f.ports.length > 0 ? f.ports.join(', ') : 'no port'}; ${f.hits} of ${f.rx} frames forwarded natively, ${f.upcalls} handed over (${f.upcall_drops} dropped); flow cache ${f.cache_used} of ${f.cache_slots} (${f.installs} installs, ${f.cache_full} full, ${f.invalidations} invalidations)\n`;
  } else if (f !== undefined) {
    out += 'fast path: off\n';
  }
  return out;
}

/** Same layout as `ovs-appctl fdb/show`. */
export function formatFdb(entries: FdbEntry[]): string {
  let out = ' port  VLAN  MAC                Age\n';
  for (const e of entries) {
    out += `${e.port.padStart(5)}  ${String(e.vlan).padStart(4)}  ${e.mac}  ${String(Math.floor(e.age)).padStart(3)}\n`;
  }
  return out;
}

export function formatReload(r: ReloadReply): string {
  const parts: string[] = [];
  if (r.ports_added.length > 0) parts.push(`  ports added: ${r.ports_added.join(', ')}`);
  if (r.ports_removed.length > 0) parts.push(`  ports removed: ${r.ports_removed.join(', ')}`);
  if (r.ports_changed.length > 0) parts.push(`  ports changed (reopened): ${r.ports_changed.join(', ')}`);
  for (const s of r.settings_changed) parts.push(`  ${s}`);
  if (parts.length === 0) return `reloaded ${r.config}: nothing changed\n`;
  return `reloaded ${r.config}:\n${parts.join('\n')}\n`;
}

function formatAddedPort(p: PortInfo): string {
  return `added port ${p.name}: number ${p.number}, type ${p.type}, device ${p.device}, state ${p.state}, mtu ${p.mtu}, mac ${p.mac}\n`;
}
