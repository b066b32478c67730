import { describe, it, expect } from 'vitest';
import fc from 'fast-check';

const U32 = fc.integer({ min: 0, max: 0xffffffff });
import {
  formatIpv4,
  formatIpv6,
  formatMac,
  ipv6FromWords,
  isLoopbackHost,
  macFromBytes,
  macToBytes,
  parseIpv4,
  parseIpv6,
  parseHostPort,
  parseMac,
} from '../../../src/util/addr.js';

describe('MAC', () => {
  it('parses into the flow-key halves', () => {
    expect(parseMac('02:00:00:00:00:01')).toEqual({ hi: 0x0200, lo: 1 });
    expect(parseMac('ff:ff:ff:ff:ff:ff')).toEqual({ hi: 0xffff, lo: 0xffffffff });
    expect(parseMac('AA-bb-CC-dd-EE-ff')).toEqual({ hi: 0xaabb, lo: 0xccddeeff });
    expect(parseMac('2:0:0:0:0:a')).toEqual({ hi: 0x0200, lo: 0x0a });
  });
  it('throws a RangeError naming the bad text', () => {
    for (const bad of ['', '02:00:00:00:00', '02:00:00:00:00:01:02', '02:00:00:00:00:0g', '020000000001', '02:00:00:00:00:100']) {
      expect(() => parseMac(bad)).toThrow(RangeError);
      expect(() => parseMac(bad)).toThrow(`"${bad}"`);
    }
  });
  it('formats lower case, zero padded', () => {
    expect(formatMac(0x0200, 0x0a)).toBe('02:00:00:00:00:0a');
    expect(formatMac(0xffff, 0xffffffff)).toBe('ff:ff:ff:ff:ff:ff');
  });
  it('bytes round trip', () => {
    expect(Array.from(macToBytes({ hi: 0x5254, lo: 0x00123456 }))).toEqual([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), U32, (hi, lo) => {
        const m = { hi, lo };
        expect(macFromBytes(macToBytes(m))).toEqual(m);
        expect(parseMac(formatMac(hi, lo))).toEqual(m);
      }),
    );
  });
});

describe('IPv4', () => {
  it('parses and formats', () => {
    expect(parseIpv4('10.0.0.1')).toBe(0x0a000001);
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIpv4('0.0.0.0')).toBe(0);
    expect(formatIpv4(0xc0a80001)).toBe('192.168.0.1');
    fc.assert(
      fc.property(U32, (ip) => {
        expect(parseIpv4(formatIpv4(ip))).toBe(ip);
      }),
    );
  });
  it('throws a RangeError naming the bad text', () => {
    for (const bad of ['10.0.0', '10.0.0.256', '10.0.0.01', 'a.b.c.d', '1.2.3.4 ', '1..2.3']) {
      expect(() => parseIpv4(bad)).toThrow(RangeError);
      expect(() => parseIpv4(bad)).toThrow(`"${bad}"`);
    }
  });
});

describe('IPv6', () => {
  const hex = (a: Uint8Array): string => Buffer.from(a).toString('hex');
  it('parses full, compressed and IPv4-tail forms', () => {
    expect(hex(parseIpv6('2001:db8::1'))).toBe('20010db8000000000000000000000001');
    expect(hex(parseIpv6('::'))).toBe('0'.repeat(32));
    expect(hex(parseIpv6('::1'))).toBe('0'.repeat(30) + '01');
    expect(hex(parseIpv6('fe80::'))).toBe('fe80' + '0'.repeat(28));
    expect(hex(parseIpv6('1:2:3:4:5:6:7:8'))).toBe('00010002000300040005000600070008');
    expect(hex(parseIpv6('::ffff:192.0.2.1'))).toBe('00000000000000000000ffffc0000201');
    expect(hex(parseIpv6('64:ff9b::10.0.0.1'))).toBe('0064ff9b0000000000000000' + '0a000001');
    expect(hex(parseIpv6('1:2:3:4:5:6:7::'))).toBe('00010002000300040005000600070000');
  });
  it('throws a RangeError naming the bad text', () => {
    for (const bad of ['', ':', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '::1.2.3', '1:2:3:4:5:6:7:8::', ':1:2:3:4:5:6:7']) {
      expect(() => parseIpv6(bad)).toThrow(RangeError);
      expect(() => parseIpv6(bad)).toThrow(`"${bad}"`);
    }
  });
  it('formats per RFC 5952', () => {
    const f = (s: string): string => formatIpv6(parseIpv6(s));
    expect(f('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(f('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1'); // a single 0 group is not compressed
    expect(f('2001:0:0:1:0:0:0:1')).toBe('2001:0:0:1::1'); // the longest run
    expect(f('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1'); // the first of equal runs
    expect(f('::')).toBe('::');
    expect(f('fe80::')).toBe('fe80::');
    expect(f('::1')).toBe('::1');
  });
  it('round trips, and from key words', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (a) => {
        expect(hex(parseIpv6(formatIpv6(a)))).toBe(hex(a));
      }),
    );
    expect(formatIpv6(ipv6FromWords([0x20010db8, 0, 0, 1]))).toBe('2001:db8::1');
  });
});

describe('control channel addresses', () => {
  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['192.0.2.1', '0.0.0.0', '::', '128.0.0.1', 'example.org', '::ffff:10.0.0.1', '1127.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('parses HOST:PORT', () => {
    expect(parseHostPort('192.0.2.1:6640')).toEqual({ host: '192.0.2.1', port: 6640 });
    expect(parseHostPort('[2001:db8::1]:1')).toEqual({ host: '2001:db8::1', port: 1 });
    expect(parseHostPort('site-a.example:65535')).toEqual({ host: 'site-a.example', port: 65535 });
    for (const bad of ['192.0.2.1', ':6640', '192.0.2.1:0', '192.0.2.1:65536', '2001:db8::1:6640', 'a b:1', '[x]:1', 'host:port']) {
      expect(parseHostPort(bad), bad).toBeUndefined();
    }
  });
});
