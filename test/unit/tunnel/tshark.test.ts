/**
 * Second opinion: Wireshark's dissector reads our encapsulation. Writes a pcap by hand
 * (24-byte global header, 16-byte record headers, LINKTYPE_RAW = 101: raw IPv4, what the
 * raw socket carries) and runs tshark on it. Skips visibly without tshark outside CI;
 * fails under CI (.ci/setup installs tshark).
 */
import { expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGreTemplate, greEncap } from '../../../src/tunnel/gre.js';
import * as fx from '../../fixtures/packet/frames.js';
import { describeWhen } from '../../helpers/root.js';

const HAVE_TSHARK = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const LINKTYPE_RAW = 101;

function pcap(packets: Uint8Array[]): Buffer {
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(65535, 16); // snaplen
  g.writeUInt32LE(LINKTYPE_RAW, 20);
  const parts: Buffer[] = [g];
  packets.forEach((p, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(1_700_000_000 + i, 0);
    r.writeUInt32LE(p.length, 8);
    r.writeUInt32LE(p.length, 12);
    parts.push(r, Buffer.from(p));
  });
  return Buffer.concat(parts);
}

function encap(spec: Parameters<typeof buildGreTemplate>[0], key: number, seq: number): Uint8Array {
  const inner = fx.icmpEcho; // 02:00:00:00:00:01 → 02:00:00:00:00:02
  const buf = new Uint8Array(64 + inner.length);
  buf.set(inner, 64);
  const s = greEncap(buf, 64, inner.length, buildGreTemplate(spec), key, seq);
  return buf.subarray(s);
}

const body = () => {
  it('tshark decodes protocol 47, 0x6558, the key and the inner MACs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lime-gre-'));
    try {
      const file = join(dir, 'gre.pcap');
      writeFileSync(
        file,
        pcap([
          encap({ src: 0xc6336401, dst: 0xc6336402, key: 0x1234 }, 0, 0),
          encap({ src: 0xc6336401, dst: 0xc6336402, key: 'flow', csum: true, seq: true }, 0xfedcba98, 7),
        ]),
      );
      const text = execFileSync(
        'tshark',
        ['-r', file, '-T', 'fields', '-E', 'separator=|', '-e', 'ip.proto', '-e', 'gre.proto', '-e', 'gre.key', '-e', 'eth.dst', '-e', 'eth.src', '-e', 'ip.checksum.status', '-e', 'gre.checksum.status', '-e', 'gre.sequence_number', '-o', 'ip.check_checksum:TRUE'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const rows = text.trim().split('\n').map((l) => l.split('|'));
      expect(rows.length).toBe(2);
      for (const r of rows) {
        expect(r[0]!.split(',')[0]).toBe('47');
        expect(r[1]).toBe('0x6558');
        expect(r[3]).toBe('02:00:00:00:00:02');
        expect(r[4]).toBe('02:00:00:00:00:01');
        expect(r[5]!.split(',')[0]).toBe('1'); // PROTO_CHECKSUM_E_GOOD (0 bad, 1 good, 2 unverified)
      }
      expect(Number(rows[0]![2])).toBe(0x1234);
      expect(Number(rows[1]![2])).toBe(0xfedcba98);
      expect(rows[1]![6]).toBe('1'); // GRE checksum good
      expect(rows[1]![7]).toBe('7');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
};

describeWhen(HAVE_TSHARK, 'tshark', 'GRE encapsulation vs tshark', body);
