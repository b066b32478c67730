/**
 * The pcap writer: exact header and record bytes (worked out by hand from the format
 * description), field validation, PcapWriter over a stream, a descriptor and a file
 * stream, readPcap (both byte orders and resolutions), then two independent readers —
 * tshark and tcpdump — reading a file of frames made by src/packet/build.ts. The reader
 * tests skip visibly without the tool outside CI and fail under CI (.ci/setup installs
 * both).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  pcapHeader,
  pcapRecord,
  PcapWriter,
  readPcap,
} from '../../../src/util/pcap.js';
import { buildArpRequest, buildFrame, padFrame } from '../../../src/packet/build.js';
import { hex } from '../../fixtures/packet/frames.js';
import { describeWhen } from '../../helpers/root.js';

const MAC1 = { hi: 0x0200, lo: 0x00000001 };
const MAC2 = { hi: 0x0200, lo: 0x00000002 };
const IP1 = 0x0a000001; // 10.0.0.1
const IP2 = 0x0a000002; // 10.0.0.2

const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function withDir<T>(fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'lime-pcap-'));
  return Promise.resolve()
    .then(() => fn(dir))
    .finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** Three frames: a padded ARP request (60), a VLAN 42 ICMP echo (102), a 1514-byte UDP frame. */
function frames(): Uint8Array[] {
  const arp = new Uint8Array(64);
  const arpSize = padFrame(arp, 0, buildArpRequest(arp, 0, { sha: MAC1, spa: IP1, tpa: IP2 }));
  const icmp = new Uint8Array(128);
  const icmpSize = buildFrame(icmp, 0, {
    dst: MAC2,
    src: MAC1,
    vlans: [{ vid: 42 }],
    ip: { version: 4, src: IP1, dst: IP2 },
    l4: { proto: 'icmp', type: 8, code: 0, rest: 0x12340001 },
    payload: new Uint8Array(56).map((_, i) => i),
  });
  const udp = new Uint8Array(1514);
  const udpSize = buildFrame(udp, 0, {
    dst: MAC1,
    src: MAC2,
    ip: { version: 4, src: IP2, dst: IP1 },
    l4: { proto: 'udp', srcPort: 5678, dstPort: 1234 },
    payload: new Uint8Array(1472).fill(0x5a),
  });
  expect([arpSize, icmpSize, udpSize]).toEqual([60, 102, 1514]);
  return [arp.subarray(0, arpSize), icmp.subarray(0, icmpSize), udp];
}

/** 2023-11-14T22:13:20.123456Z, then +1 s, then a stamp that rounds up to the next second. */
const TIMES = [1_700_000_000_123.456, 1_700_000_001_000, 1_700_000_002_999.9999];

describe('pcapHeader', () => {
  it('default: microsecond magic, 2.4, zone 0, sigfigs 0, snaplen 65535, Ethernet — little-endian', () => {
    expect(toHex(pcapHeader())).toBe(
      'd4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + 'ffff0000' + '01000000',
    );
  });

  it('snaplen 128, LINKTYPE_RAW (101)', () => {
    expect(toHex(pcapHeader(128, LINKTYPE_RAW))).toBe('d4c3b2a102000400000000000000000080000000' + '65000000');
  });

  it('bad snaplen or linktype: RangeError naming the field', () => {
    for (const s of [0, -1, 1.5, 262145, Number.NaN]) expect(() => pcapHeader(s)).toThrow(/snaplen/);
    expect(() => pcapHeader(262144)).not.toThrow();
    for (const l of [-1, 65536, 2.5]) expect(() => pcapHeader(65535, l)).toThrow(/linktype/);
  });
});

describe('pcapRecord', () => {
  const f = hex('0102 0304 0506 0708 090a');

  it('ts_sec, ts_usec, caplen, origlen (little-endian), then the bytes', () => {
    // 1700000000 = 0x6553f100, 123456 = 0x0001e240.
    expect(toHex(pcapRecord(f, TIMES[0]!))).toBe('00f15365' + '40e20100' + '0a000000' + '0a000000' + toHex(f));
  });

  it('rounds to the microsecond, carrying into the seconds', () => {
    const r = pcapRecord(f, TIMES[2]!);
    expect(r.readUInt32LE(0)).toBe(1_700_000_003);
    expect(r.readUInt32LE(4)).toBe(0);
    expect(pcapRecord(f, 0.0004).readUInt32LE(4)).toBe(0);
    expect(pcapRecord(f, 0.0005).readUInt32LE(4)).toBe(1);
  });

  it('caplen = min(size, snaplen); origLen is the size on the wire', () => {
    const r = pcapRecord(f, 0, undefined, 4);
    expect(r.length).toBe(16 + 4);
    expect(r.readUInt32LE(8)).toBe(4);
    expect(r.readUInt32LE(12)).toBe(10);
    expect(toHex(r.subarray(16))).toBe('01020304');
    const cut = pcapRecord(f.subarray(0, 4), 0, 1514);
    expect(cut.readUInt32LE(8)).toBe(4);
    expect(cut.readUInt32LE(12)).toBe(1514);
  });

  it('copies the frame: the slot may be reused at once', () => {
    const slot = Uint8Array.from(f);
    const r = pcapRecord(slot, 0);
    slot.fill(0);
    expect(toHex(r.subarray(16))).toBe(toHex(f));
  });

  it('bad timeMs, origLen or snaplen: RangeError naming the field', () => {
    for (const t of [-1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 32 * 1000]) expect(() => pcapRecord(f, t)).toThrow(/timeMs/);
    expect(() => pcapRecord(f, 2 ** 32 * 1000 - 1)).not.toThrow();
    for (const o of [9, 10.5, 2 ** 32]) expect(() => pcapRecord(f, 0, o)).toThrow(/origLen/);
    expect(() => pcapRecord(f, 0, 10, 0)).toThrow(/snaplen/);
  });
});

describe('readPcap', () => {
  it('reads back what pcapHeader + pcapRecord wrote', () => {
    const fs = frames();
    const file = Buffer.concat([pcapHeader(128), ...fs.map((fr, i) => pcapRecord(fr, TIMES[i]!, undefined, 128))]);
    const p = readPcap(file);
    expect(p).toMatchObject({ nanosecond: false, bigEndian: false, versionMajor: 2, versionMinor: 4, snaplen: 128, linktype: 1 });
    expect(p.records.map((r) => r.data.length)).toEqual([60, 102, 128]);
    expect(p.records.map((r) => r.origLen)).toEqual([60, 102, 1514]);
    expect(p.records[0]!.timeMs).toBeCloseTo(TIMES[0]!, 3);
    expect(p.records[2]!.timeMs).toBe(1_700_000_003_000);
    expect(toHex(p.records[1]!.data)).toBe(toHex(fs[1]!));
  });

  it('big-endian and nanosecond files (as other writers make them)', () => {
    const be = hex(`
      a1b23c4d 0002 0004 00000000 00000000 0000ffff 00000065
      6553f100 075bca00 00000002 00000004 abcd`);
    const p = readPcap(be);
    expect(p).toMatchObject({ nanosecond: true, bigEndian: true, snaplen: 65535, linktype: LINKTYPE_RAW });
    expect(p.records).toHaveLength(1);
    expect(p.records[0]!.timeMs).toBeCloseTo(1_700_000_000_123.456, 3); // 0x075bca00 ns = 123.456 ms
    expect(p.records[0]!.origLen).toBe(4);
    expect(toHex(p.records[0]!.data)).toBe('abcd');
  });

  it('garbage: RangeError naming what is wrong', () => {
    expect(() => readPcap(new Uint8Array(10))).toThrow(/header/);
    expect(() => readPcap(hex('0a0d0d0a' + '00'.repeat(20)))).toThrow(/magic/); // pcapng
    const v1 = pcapHeader();
    v1.writeUInt16LE(1, 4);
    expect(() => readPcap(v1)).toThrow(/version/);
    const good = Buffer.concat([pcapHeader(), pcapRecord(hex('0102030405'), 0)]);
    expect(() => readPcap(good.subarray(0, good.length - 1))).toThrow(/caplen/);
    expect(() => readPcap(good.subarray(0, 24 + 10))).toThrow(/record 0/);
    expect(readPcap(pcapHeader()).records).toEqual([]);
  });
});

describe('PcapWriter', () => {
  it('over a stream: header once, one record per write, count, close ends the stream', async () => {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const w = new PcapWriter(sink, { snaplen: 128 });
    expect(w.count).toBe(0);
    const fs = frames();
    fs.forEach((fr, i) => expect(w.write(fr, TIMES[i]!)).toBe(true));
    expect(w.count).toBe(3);
    await w.close();
    await w.close(); // idempotent
    expect(sink.writableFinished).toBe(true);
    expect(() => w.write(fs[0]!, 0)).toThrow(/after close/);
    const file = Buffer.concat(chunks);
    expect(toHex(file.subarray(0, 24))).toBe(toHex(pcapHeader(128)));
    expect(file.length).toBe(24 + 3 * 16 + 60 + 102 + 128);
    expect(readPcap(file).records.map((r) => r.origLen)).toEqual([60, 102, 1514]);
  });

  it('an empty capture is still a valid file (the header)', async () => {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await new PcapWriter(sink).close();
    expect(toHex(Buffer.concat(chunks))).toBe(toHex(pcapHeader()));
  });

  it('open(path): a new file, mode 0600, written synchronously; bad options throw before it exists', () =>
    withDir(async (dir) => {
      const path = join(dir, 'a.pcap');
      const w = PcapWriter.open(path, { linktype: LINKTYPE_RAW });
      expect(statSync(path).mode & 0o777).toBe(0o600);
      w.write(hex('4500 0014 0000 0000 4000 0000 0a00 0001 0a00 0002'), 1000);
      expect(readFileSync(path).length).toBe(24 + 16 + 20); // already on disk
      await w.close();
      const p = readPcap(readFileSync(path));
      expect(p.linktype).toBe(LINKTYPE_RAW);
      expect(p.records[0]!.timeMs).toBe(1000);
      const bad = join(dir, 'b.pcap');
      expect(() => PcapWriter.open(bad, { snaplen: 0 })).toThrow(/snaplen/);
      expect(existsSync(bad)).toBe(false);
    }));

  it('over a file stream: close() waits until the bytes are on disk', () =>
    withDir(async (dir) => {
      const path = join(dir, 'c.pcap');
      const w = new PcapWriter(createWriteStream(path));
      for (const [i, fr] of frames().entries()) w.write(fr, TIMES[i]!);
      await w.close();
      const p = readPcap(readFileSync(path));
      expect(p.linktype).toBe(LINKTYPE_ETHERNET);
      expect(p.records.map((r) => r.data.length)).toEqual([60, 102, 1514]);
    }));
});

/** A file of the three frames at TIMES, snaplen 128 (so the UDP frame is cut to 128 of 1514). */
async function writeSample(dir: string): Promise<string> {
  const path = join(dir, 'sample.pcap');
  const w = PcapWriter.open(path, { snaplen: 128 });
  frames().forEach((fr, i) => w.write(fr, TIMES[i]!));
  await w.close();
  return path;
}

const HAVE_TSHARK = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const HAVE_TCPDUMP = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0;

describeWhen(HAVE_TSHARK, 'tshark', 'pcap files vs tshark', () => {
  it('tshark reads sizes, captured sizes, times, MACs, the VLAN and the protocols', () =>
    withDir(async (dir) => {
      const path = await writeSample(dir);
      const text = execFileSync(
        'tshark',
        ['-r', path, '-T', 'fields', '-E', 'separator=|', '-e', 'frame.len', '-e', 'frame.cap_len', '-e', 'frame.time_epoch',
          '-e', 'eth.src', '-e', 'eth.dst', '-e', 'vlan.id', '-e', 'frame.protocols'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const rows = text.trim().split('\n').map((l) => l.split('|'));
      expect(rows.map((r) => r.slice(0, 2))).toEqual([['60', '60'], ['102', '102'], ['1514', '128']]);
      expect(rows.map((r) => r[2])).toEqual(['1700000000.123456000', '1700000001.000000000', '1700000003.000000000']);
      expect(rows.map((r) => [r[3], r[4]])).toEqual([
        ['02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff'],
        ['02:00:00:00:00:01', '02:00:00:00:00:02'],
        ['02:00:00:00:00:02', '02:00:00:00:00:01'],
      ]);
      expect(rows.map((r) => r[5])).toEqual(['', '42', '']);
      expect(rows[0]![6]).toBe('eth:ethertype:arp');
      expect(rows[1]![6]).toBe('eth:ethertype:vlan:ethertype:ip:icmp:data');
      expect(rows[2]![6]).toMatch(/^eth:ethertype:ip:udp/);
    }));
});

describeWhen(HAVE_TCPDUMP, 'tcpdump', 'pcap files vs tcpdump', () => {
  it('tcpdump -r reads the link type, snaplen, times and every frame', () =>
    withDir(async (dir) => {
      const path = await writeSample(dir);
      const r = spawnSync('tcpdump', ['-r', path, '-nn', '-tt', '-e'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain('link-type EN10MB (Ethernet), snapshot length 128');
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(/^1700000000\.123456 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype ARP \(0x0806\), length 60: /);
      expect(lines[0]).toContain('Request who-has 10.0.0.2 tell 10.0.0.1');
      expect(lines[1]).toMatch(/^1700000001\.000000 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 802\.1Q \(0x8100\), length 102: vlan 42/);
      expect(lines[1]).toContain('10.0.0.1 > 10.0.0.2: ICMP echo request, id 4660, seq 1, length 64');
      expect(lines[2]).toMatch(/^1700000003\.000000 02:00:00:00:00:02 > 02:00:00:00:00:01, ethertype IPv4 \(0x0800\), length 1514: /);
      expect(lines[2]).toContain('10.0.0.2.5678 > 10.0.0.1.1234: UDP, length 1472');
    }));
});
