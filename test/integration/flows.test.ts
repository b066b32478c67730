/**
 * limed forwarding by its flow table, driven through limectl, with hosts in network
 * namespaces and real traffic: an ACL (only TCP/22 and ICMP from A to B), exact counters,
 * mod_nw_dst/mod_dl_dst rewrites the receiving kernel accepts, VLAN push and pop seen on
 * the wire, an idle timeout with its flow-removed at a running `limectl monitor --json`,
 * packet-in to the monitor and packet-out to a host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LIMECTL, LimedProcess } from '../../src/demo/limed-process.js';
import { Netns, waitFor } from '../../src/demo/netns.js';
import { describeAsRoot } from '../helpers/root.js';
import { RAWFRAMES, runInNs, startInNs, startTshark } from '../helpers/proc.js';

const PREFIX = 'limef-';
const hosts = ['a', 'b', 'c'].map((x, i) => ({
  ns: `${PREFIX}h${x}`,
  port: `p${x}`,
  device: `limef-p${x}`,
  mac: `02:00:00:89:00:0${i + 1}`,
  ip: `10.89.0.${i + 1}`,
}));
const [A, B, C] = hosts as [(typeof hosts)[0], (typeof hosts)[0], (typeof hosts)[0]];
const FAKE_IP = '10.89.0.99';
const FAKE_MAC = '02:00:00:89:00:99';

function hex(mac: string): string {
  return mac.replace(/:/g, '');
}

/** A raw frame: dst, src, optional 802.1Q tag, ethertype, and a numbered payload of `size` bytes in all. */
function frame(dst: string, src: string, ethertype: number, size: number, seq: number, vid?: number): string {
  const tag = vid === undefined ? '' : '8100' + vid.toString(16).padStart(4, '0');
  const header = hex(dst) + hex(src) + tag + ethertype.toString(16).padStart(4, '0');
  const payload = Buffer.alloc(size - header.length / 2);
  for (let i = 0; i < payload.length; i++) payload[i] = (i + seq) & 0xff;
  return header + payload.toString('hex');
}

/** node -e script: send `count` UDP datagrams to host:port, 5 ms apart. */
function udpSend(host: string, port: number, count: number): string[] {
  const js = `const s=require('node:dgram').createSocket('udp4');let i=0;
    const t=setInterval(()=>{s.send(Buffer.from('probe '+i),${port},'${host}');if(++i>=${count}){clearInterval(t);setTimeout(()=>s.close(),50);}},5);`;
  return ['-e', js];
}

/** node -e script: print every UDP datagram received on port for `ms`, then exit. */
function udpRecv(port: number, ms: number): string[] {
  const js = `const s=require('node:dgram').createSocket('udp4');const got=[];
    s.on('message',(m,r)=>got.push({from:r.address,data:m.toString()}));
    s.bind(${port},()=>{process.stderr.write('READY\\n');setTimeout(()=>{console.log(JSON.stringify(got));s.close();},${ms});});`;
  return ['-e', js];
}

/** node -e script: TCP listener on port (prints READY), accepts for `ms`. */
function tcpListen(ip: string, port: number, ms: number): string[] {
  const js = `const n=require('node:net');let c=0;const srv=n.createServer((s)=>{c++;s.end('hi');});
    srv.listen(${port},'${ip}',()=>{process.stderr.write('READY\\n');setTimeout(()=>{console.log(c);srv.close();process.exit(0);},${ms});});`;
  return ['-e', js];
}

/** node -e script: TCP connect with a timeout; prints "ok" or "fail". */
function tcpConnect(ip: string, port: number, timeoutMs: number): string[] {
  const js = `const s=require('node:net').connect({host:'${ip}',port:${port}});
    const t=setTimeout(()=>{console.log('fail');process.exit(0);},${timeoutMs});
    s.on('data',()=>{clearTimeout(t);console.log('ok');s.destroy();process.exit(0);});
    s.on('error',()=>{clearTimeout(t);console.log('fail');process.exit(0);});`;
  return ['-e', js];
}

interface Monitor {
  child: ChildProcess;
  lines: () => Array<Record<string, any>>;
}

describeAsRoot('limed forwarding by its flow table (netns, real traffic)', () => {
  const net = new Netns(PREFIX);
  let limed: LimedProcess;
  let mon: Monitor;

  async function ctl(...args: string[]): Promise<string> {
    const r = await limed.ctl(args);
    if (r.code !== 0) throw new Error(`limectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  async function dump(match = ''): Promise<Array<Record<string, any>>> {
    return JSON.parse(await ctl('dump-flows', ...(match === '' ? [] : [match]), '--json'));
  }

  /** Replace the whole table with `flows` (one per line). */
  async function useFlows(name: string, flows: string[]): Promise<void> {
    const file = join(limed.dir, `${name}.flows`);
    writeFileSync(file, `# ${name}\n${flows.join('\n')}\n`);
    await ctl('replace-flows', file);
  }

  beforeAll(async () => {
    Netns.cleanupStale(PREFIX);
    limed = new LimedProcess({ site: 'flows', ports: hosts.map((h) => ({ name: h.port, device: h.device, mtu: 1500 })) });
    await limed.start();
    for (const h of hosts) {
      const ns = net.add(h.ns.slice(PREFIX.length));
      net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
      net.attach(h.device, ns, { rename: 'eth0' });
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'down']);
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'address', h.mac]);
      net.exec(ns, 'ip', ['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'up']);
      // Static neighbours: no ARP needed, so the flow tables below need no ARP rules.
      for (const o of hosts) if (o !== h) net.exec(ns, 'ip', ['neigh', 'replace', o.ip, 'lladdr', o.mac, 'dev', 'eth0', 'nud', 'permanent']);
      net.exec(ns, 'ip', ['neigh', 'replace', FAKE_IP, 'lladdr', FAKE_MAC, 'dev', 'eth0', 'nud', 'permanent']);
    }
    // A monitor running for the whole file (spawned by us, killed by PID in afterAll).
    const child = spawn(process.execPath, [LIMECTL, '--socket', limed.socket, 'monitor', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    mon = {
      child,
      lines: () =>
        out
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Record<string, any>),
    };
    // The monitor is live once it reports a change. Its process may still be starting when
    // the first add lands (a loaded machine), so add again (a replace, reported as
    // "modified") until it reports one.
    const deadline = Date.now() + 20_000;
    while (!mon.lines().some((e) => e.event === 'added' || e.event === 'modified')) {
      if (Date.now() > deadline) throw new Error('timed out after 20 s waiting for the monitor to start');
      await ctl('add-flow', 'priority=1,dl_type=0x1234,actions=drop');
      await new Promise((r) => setTimeout(r, 300));
    }
  }, 30_000);

  afterAll(async () => {
    if (mon?.child.pid !== undefined && mon.child.exitCode === null) process.kill(mon.child.pid, 'SIGKILL');
    const code = await limed?.stop();
    net.destroy();
    limed?.cleanup();
    expect(code).toBe(0);
  });

  it('starts with the table-miss rule priority=0,actions=NORMAL, so hosts ping', async () => {
    const flows = await dump('priority=0');
    expect(flows.find((f) => f.priority === 0 && f.match === '')).toMatchObject({ table: 0, actions: 'NORMAL', cookie: '0x0' });
    const out = await runInNs(A.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', B.ip]);
    expect(out).toMatch(/2 packets transmitted, 2 received/);
  });

  it('ACL: only TCP/22 and ICMP pass from A to B', async () => {
    await useFlows('acl', [
      `priority=100,in_port=${A.port},tcp,nw_dst=${B.ip},tp_dst=22,actions=output:${B.port}`,
      `priority=100,in_port=${B.port},tcp,nw_src=${B.ip},tp_src=22,actions=output:${A.port}`,
      `priority=100,in_port=${A.port},icmp,nw_dst=${B.ip},actions=output:${B.port}`,
      `priority=100,in_port=${B.port},icmp,nw_src=${B.ip},actions=output:${A.port}`,
      'priority=0,actions=drop',
    ]);
    const ssh = await startInNs(B.ns, process.execPath, tcpListen(B.ip, 22, 2500));
    const web = await startInNs(B.ns, process.execPath, tcpListen(B.ip, 80, 2500));
    const udp = await startInNs(B.ns, process.execPath, udpRecv(5353, 1500));
    const [r22, r80] = await Promise.all([
      runInNs(A.ns, process.execPath, tcpConnect(B.ip, 22, 2000)),
      runInNs(A.ns, process.execPath, tcpConnect(B.ip, 80, 1200)),
      runInNs(A.ns, process.execPath, udpSend(B.ip, 5353, 5)),
    ]);
    expect(r22.trim()).toBe('ok');
    expect(r80.trim()).toBe('fail');
    expect(JSON.parse(await udp.done)).toEqual([]);
    expect((await ssh.done).trim()).toBe('1');
    expect((await web.done).trim()).toBe('0');
    const ping = await runInNs(A.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', B.ip]);
    expect(ping).toMatch(/2 packets transmitted, 2 received/);
    // The drop rule counted what the ACL refused (the port-80 SYNs and the UDP datagrams).
    const drop = (await dump()).find((f) => f.priority === 0);
    expect(drop!.n_packets).toBeGreaterThanOrEqual(6);
    // trace agrees with what happened.
    const trace = JSON.parse(await ctl('trace', `in_port=${A.port},tcp,nw_src=${A.ip},nw_dst=${B.ip},tp_dst=22`, '--json'));
    expect(trace.steps[0]).toMatchObject({ table: 0, miss: false, priority: 100, actions: `output:${B.port}` });
    expect(trace.actions).toEqual([`output:${B.port}`]);
  });

  it('counts exactly the packets sent, and a rejected add-flows file leaves the table unchanged', async () => {
    await useFlows('count', [`priority=300,in_port=${A.port},udp,nw_dst=${B.ip},tp_dst=7777,actions=output:${B.port}`, 'priority=0,actions=drop']);
    const rx = await startInNs(B.ns, process.execPath, udpRecv(7777, 1200));
    await runInNs(A.ns, process.execPath, udpSend(B.ip, 7777, 25));
    expect(JSON.parse(await rx.done)).toHaveLength(25);
    const [flow] = await dump('udp,tp_dst=7777');
    // 14 + 20 + 8 header bytes + "probe N": 7 bytes for N < 10, 8 for the 15 others.
    expect(flow).toMatchObject({ priority: 300, n_packets: 25, n_bytes: 25 * (14 + 20 + 8 + 7) + 15 });

    const before = await ctl('dump-flows');
    const bad = join(limed.dir, 'bad.flows');
    writeFileSync(bad, `priority=5,udp,actions=output:${B.port}\n# fine so far\npriority=6,in_port=nosuchport,actions=drop\n`);
    const r = await limed.ctl(['add-flows', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.flows line 3: flow syntax error at column 20: unknown port "nosuchport"/);
    expect(r.stderr).toContain(`\n${' '.repeat(2 + 19)}${'^'.repeat('nosuchport'.length)}\n`); // caret under the name
    const after = await ctl('dump-flows');
    expect(after.replace(/duration=[0-9.]+s/g, '')).toBe(before.replace(/duration=[0-9.]+s/g, ''));
  });

  it('rewrites with mod_nw_dst + mod_dl_dst: the receiving kernel accepts the datagram (valid checksums)', async () => {
    await useFlows('rewrite', [
      `priority=300,in_port=${A.port},udp,nw_dst=${FAKE_IP},actions=mod_nw_dst:${C.ip},mod_dl_dst:${C.mac},output:${C.port}`,
      'priority=0,actions=drop',
    ]);
    const rx = await startInNs(C.ns, process.execPath, udpRecv(6000, 1200));
    await runInNs(A.ns, process.execPath, udpSend(FAKE_IP, 6000, 3));
    const got = JSON.parse(await rx.done) as Array<{ from: string; data: string }>;
    expect(got.map((g) => g.data)).toEqual(['probe 0', 'probe 1', 'probe 2']);
    expect(got[0]!.from).toBe(A.ip);
  });

  it('pushes a VLAN tag on one port and pops it on another, as seen on the wire', async () => {
    await useFlows('vlan', [
      `priority=300,in_port=${A.port},dl_type=0x88b5,actions=push_vlan:0x8100,mod_vlan_vid:42,output:${B.port}`,
      `priority=300,in_port=${B.port},dl_vlan=42,actions=strip_vlan,output:${C.port}`,
      'priority=0,actions=drop',
    ]);
    // tshark at B as a second opinion: its dissector must see an 802.1Q tag, VID 42, over 0x88b5.
    // Started first: its start-up can outlast the receivers' listening window on a busy machine.
    const sharkB = await startTshark(B.ns, 'eth0', `ether src ${A.mac}`, ['vlan.id', 'vlan.etype'], 7);
    // Listening windows long enough for the other receiver's start-up on a loaded machine.
    const atB = await startInNs(B.ns, 'python3', [RAWFRAMES, 'recv', 'eth0', '4']);
    const atC = await startInNs(C.ns, 'python3', [RAWFRAMES, 'recv', 'eth0', '3']);
    const plain = frame(B.mac, A.mac, 0x88b5, 80, 1);
    const tagged = frame(C.mac, B.mac, 0x88b5, 84, 2, 42);
    await runInNs(A.ns, 'python3', [RAWFRAMES, 'send', 'eth0'], plain + '\n');
    await runInNs(B.ns, 'python3', [RAWFRAMES, 'send', 'eth0'], tagged + '\n');
    const seenB = (await atB.done).split('\n').filter((l) => l.startsWith(hex(B.mac) + hex(A.mac)));
    const seenC = (await atC.done).split('\n').filter((l) => l.startsWith(hex(C.mac) + hex(B.mac)));
    // At B: the same frame with an 802.1Q tag, VID 42, after the MACs.
    expect(seenB).toEqual([plain.slice(0, 24) + '8100002a' + plain.slice(24)]);
    // At C: the tagged frame B sent, with its tag removed.
    expect(seenC).toEqual([tagged.slice(0, 24) + tagged.slice(32)]);
    expect(await sharkB.done).toEqual([['42', '0x88b5']]);
  });

  it('expires an idle flow after traffic stops and reports flow-removed to the monitor', async () => {
    await useFlows('idle', [
      `priority=300,idle_timeout=1,send_flow_rem,in_port=${A.port},udp,tp_dst=7778,actions=output:${B.port}`,
      'priority=0,actions=drop',
    ]);
    await runInNs(A.ns, process.execPath, udpSend(B.ip, 7778, 3));
    expect((await dump('udp,tp_dst=7778'))[0]).toMatchObject({ idle_timeout: 1, n_packets: 3, flags: ['send_flow_rem'] });
    const stoppedAt = Date.now();
    await waitFor('the idle flow to expire', () => mon.lines().some((e) => e.event === 'flow_removed' && e.flow.match.includes('tp_dst=7778')), 10_000);
    const elapsed = Date.now() - stoppedAt;
    expect(elapsed).toBeGreaterThan(500);
    expect(elapsed).toBeLessThan(2500);
    const removed = mon.lines().find((e) => e.event === 'flow_removed')!;
    expect(removed).toMatchObject({ reason: 'idle_timeout', flow: { priority: 300, idle_timeout: 1, n_packets: 3, actions: `output:${B.port}` } });
    const deleted = mon.lines().find((e) => e.event === 'deleted' && e.flow.match.includes('tp_dst=7778'));
    expect(deleted).toMatchObject({ reason: 'idle_timeout' });
    expect(await dump('udp,tp_dst=7778')).toEqual([]);
  });

  it('packet-in: a CONTROLLER flow delivers the frame, truncated to max_len, to the monitor', async () => {
    await useFlows('pin', [`priority=300,in_port=${A.port},dl_type=0x88b6,actions=CONTROLLER:64`, 'priority=0,actions=drop']);
    const f = frame(B.mac, A.mac, 0x88b6, 100, 7);
    await runInNs(A.ns, 'python3', [RAWFRAMES, 'send', 'eth0'], f + '\n');
    await waitFor('the packet-in', () => mon.lines().some((e) => e.event === 'packet_in'), 10_000);
    const pin = mon.lines().find((e) => e.event === 'packet_in')!;
    expect(pin).toMatchObject({
      reason: 'action',
      packet_in: { table: 0, in_port: A.port, total_len: 100, data_len: 64, data: f.slice(0, 128), buffer_id: 0xffffffff },
    });
  });

  it('packet-out: a frame injected with actions=output:PORT arrives at that host', async () => {
    const rx = await startInNs(C.ns, 'python3', [RAWFRAMES, 'recv', 'eth0', '1.0']);
    const f = frame(C.mac, A.mac, 0x88b5, 64, 9);
    await ctl('packet-out', `in_port=none,packet=${f},actions=output:${C.port}`);
    const g = frame(C.mac, A.mac, 0x88b5, 70, 10);
    await ctl('packet-out', A.port, `output:${C.port}`, g);
    const seen = (await rx.done).split('\n').filter((l) => l.startsWith(hex(C.mac) + hex(A.mac)));
    expect(seen).toEqual([f, g]);
  });
});
