/**
 * limectl capture against a real ManagementServer whose service is the fake of
 * test/helpers/fake-mgmt.ts: the frames the "data path" hands over land in a pcap file that
 * our reader and tcpdump both read back; --count, --snaplen, drops, and bad usage.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../../src/cli/limectl.js';
import { ManagementServer } from '../../../src/mgmt/server.js';
import { readPcap } from '../../../src/util/pcap.js';
import { buildFrame } from '../../../src/packet/build.js';
import { parseIpv4, parseMac } from '../../../src/util/addr.js';
import { FakeManagementService, tempDir } from '../../helpers/fake-mgmt.js';
import { describeWhen } from '../../helpers/root.js';

let tmp: ReturnType<typeof tempDir>;
let server: ManagementServer;
let service: FakeManagementService;
let socket: string;

beforeEach(async () => {
  tmp = tempDir();
  service = new FakeManagementService();
  socket = join(tmp.dir, 'limed.sock');
  server = new ManagementServer({ path: socket, service, monitorQueueBytes: 64 * 1024 });
  await server.start();
  vi.stubEnv('LIME_SOCKET', undefined);
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await server.stop();
  tmp.cleanup();
});

function udpFrame(n: number, size = 100): Buffer {
  const buf = Buffer.alloc(2048);
  const len = buildFrame(buf, 0, {
    dst: parseMac('02:00:00:00:00:02'),
    src: parseMac('02:00:00:00:00:01'),
    ip: { version: 4, src: parseIpv4('10.0.0.1'), dst: parseIpv4('10.0.0.2') },
    l4: { proto: 'udp', srcPort: 1000 + n, dstPort: 53 },
    payload: Buffer.alloc(size - 42, n),
  });
  return Buffer.from(buf.subarray(0, len));
}

interface Capture {
  done: Promise<number>;
  stdout: () => string;
  stderr: () => string;
  abort: () => void;
}

/** Start `limectl capture ARGS` and wait until the fake service has the capture. */
async function startCapture(port: string, ...args: string[]): Promise<Capture> {
  let stdout = '';
  let stderr = '';
  const ac = new AbortController();
  const done = main(['--socket', socket, 'capture', port, ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    signal: ac.signal,
  });
  await vi.waitFor(() => expect(service.captures.has(port)).toBe(true));
  return { done, stdout: () => stdout, stderr: () => stderr, abort: () => ac.abort() };
}

describe('limectl capture', () => {
  it('writes received and sent frames to a pcap file until --count, then tells how many', async () => {
    const file = join(tmp.dir, 'vm1.pcap');
    const c = await startCapture('vm1', '-w', file, '--count', '3');
    const frames = [udpFrame(1), udpFrame(2, 300), udpFrame(3, 60), udpFrame(4)];
    service.emitFrame('vm1', 'rx', frames[0]!, 1_700_000_000.25);
    service.emitFrame('vm1', 'tx', frames[1]!, 1_700_000_000.5);
    service.emitFrame('vm1', 'rx', frames[2]!, 1_700_000_001);
    service.emitFrame('vm1', 'rx', frames[3]!, 1_700_000_002); // may or may not arrive: past the count
    expect(await c.done).toBe(0);
    expect(c.stderr()).toContain('3 frame(s) captured on vm1');
    const pcap = readPcap(readFileSync(file));
    expect(pcap.linktype).toBe(1);
    expect(pcap.records.map((r) => Buffer.from(r.data))).toEqual(frames.slice(0, 3));
    expect(pcap.records.map((r) => r.timeMs)).toEqual([1_700_000_000_250, 1_700_000_000_500, 1_700_000_001_000]);
    await vi.waitFor(() => expect(service.captures.has('vm1')).toBe(false)); // the daemon side stopped
  });

  it('--snaplen truncates the stored bytes and keeps the original length', async () => {
    const file = join(tmp.dir, 'snap.pcap');
    const c = await startCapture('vm2', '-w', file, '--count', '1', '--snaplen', '64');
    expect(service.captures.get('vm2')?.snaplen).toBe(64);
    const f = udpFrame(7, 500);
    service.emitFrame('vm2', 'rx', f);
    expect(await c.done).toBe(0);
    const pcap = readPcap(readFileSync(file));
    expect(pcap.snaplen).toBe(64);
    expect(pcap.records[0]!.data.length).toBe(64);
    expect(pcap.records[0]!.origLen).toBe(500);
    expect(Buffer.from(pcap.records[0]!.data)).toEqual(f.subarray(0, 64));
  });

  it('stops on Ctrl-C with a valid file, and reports frames limed dropped for a slow reader', async () => {
    const file = join(tmp.dir, 'ctrlc.pcap');
    const c = await startCapture('vm1', '-w', file);
    service.emitFrame('vm1', 'rx', udpFrame(1));
    service.emitDropped('vm1', 5);
    service.emitFrame('vm1', 'rx', udpFrame(2));
    await vi.waitFor(() => expect(readPcap(readFileSync(file)).records.length).toBe(2));
    c.abort();
    expect(await c.done).toBe(0);
    expect(c.stderr()).toMatch(/2 frame\(s\) captured on vm1, 5 dropped by limed/);
  });

  it('--json prints a summary object', async () => {
    const file = join(tmp.dir, 'json.pcap');
    let stdout = '';
    const done = main(['--socket', socket, '--json', 'capture', 'vm1', '-w', file, '--count', '1'], {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: () => true },
    });
    await vi.waitFor(() => expect(service.captures.has('vm1')).toBe(true));
    service.emitFrame('vm1', 'tx', udpFrame(9));
    expect(await done).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ port: 'vm1', file, frames: 1, dropped: 0 });
  });

  it.each([
    [['vm1'], "required option '-w, --write <file>' not specified"],
    [['vm1', '-w', 'x.pcap', '--count', '0'], "invalid --count '0': must be an integer from 1 to 2147483648"],
    [['vm1', '-w', 'x.pcap', '--count', 'ten'], "invalid --count 'ten'"],
    [['vm1', '-w', 'x.pcap', '--snaplen', '70000'], "invalid --snaplen '70000': must be an integer from 1 to 65535"],
  ])('bad usage %j exits 2', async (args, message) => {
    let stderr = '';
    const code = await main(['--socket', socket, 'capture', ...args], { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) } });
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });

  it('an unknown port: exit 1 with limed\'s reason, and no capture left behind', async () => {
    let stderr = '';
    const file = join(tmp.dir, 'none.pcap');
    const code = await main(['--socket', socket, 'capture', 'nosuch', '-w', file], { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) } });
    expect(code).toBe(1);
    expect(stderr).toMatch(/no port named nosuch/);
    expect(service.captures.size).toBe(0);
  });

  it('an unwritable file: exit 1 naming it, before asking limed', async () => {
    let stderr = '';
    const file = join(tmp.dir, 'no', 'such', 'dir.pcap');
    const code = await main(['--socket', socket, 'capture', 'vm1', '-w', file], { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) } });
    expect(code).toBe(1);
    expect(stderr).toContain(`cannot write ${file}: ENOENT`);
    expect(service.captures.size).toBe(0);
    expect(existsSync(file)).toBe(false);
  });
});

const TCPDUMP = spawnSync('sh', ['-c', 'command -v tcpdump']).status === 0;
describeWhen(TCPDUMP, 'tcpdump', 'limectl capture output read by tcpdump', () => {
  it('tcpdump reads the file and sees the UDP frames', async () => {
    const file = join(tmp.dir, 'td.pcap');
    const c = await startCapture('vm1', '-w', file, '--count', '2');
    service.emitFrame('vm1', 'rx', udpFrame(1));
    service.emitFrame('vm1', 'tx', udpFrame(2));
    expect(await c.done).toBe(0);
    const r = spawnSync('tcpdump', ['-nn', '-r', file], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/IP 10\.0\.0\.1\.1001 > 10\.0\.0\.2\.53: /);
    expect(lines[1]).toMatch(/IP 10\.0\.0\.1\.1002 > 10\.0\.0\.2\.53: /);
  });
});
