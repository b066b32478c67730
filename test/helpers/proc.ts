/** Background helper processes in namespaces: wait for READY, collect output at exit. */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RAWFRAMES = fileURLToPath(new URL('./rawframes.py', import.meta.url));
export const UDPSEQ = fileURLToPath(new URL('./udp-seq.mjs', import.meta.url));

export interface Background {
  /** Resolves with stdout when the process exits (rejects on non-zero exit). */
  done: Promise<string>;
  pid: number;
  /** The process's standard input (left open when no `input` was given). */
  stdin: NodeJS.WritableStream;
}

/** Start `cmd args` inside `ns`; resolves once it printed READY on stderr. */
export async function startInNs(ns: string, cmd: string, args: readonly string[], input?: string): Promise<Background> {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  let readyResolve: () => void;
  const ready = new Promise<void>((r) => (readyResolve = r));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    if (err.includes('READY')) readyResolve();
  });
  if (input !== undefined) child.stdin.end(input);
  const done = new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
  });
  await Promise.race([ready, done.then(() => undefined)]);
  return { done, pid: child.pid!, stdin: child.stdin };
}

/** Run to completion inside `ns`, returning stdout. */
export function runInNs(ns: string, cmd: string, args: readonly string[], input?: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim()}`));
    });
    child.stdin.end(input ?? '');
  });
}

/**
 * Capture on `iface` inside `ns` with tshark (a second opinion on our wire format: its own
 * dissectors decode the frames), printing `fields` of each frame matching the capture
 * filter. Resolves once tshark is capturing; `done` yields one array of field values per frame.
 */
export async function startTshark(
  ns: string,
  iface: string,
  filter: string,
  fields: readonly string[],
  seconds: number,
): Promise<{ done: Promise<string[][]> }> {
  const args = ['-i', iface, '-a', `duration:${seconds}`, '-f', filter, '-l', '-T', 'fields', ...fields.flatMap((f) => ['-e', f])];
  const child = spawn('ip', ['netns', 'exec', ns, 'tshark', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  let ready: () => void;
  const started = new Promise<void>((r) => (ready = r));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    if (err.includes('Capturing on')) ready();
  });
  const done = new Promise<string[][]>((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`tshark exited ${code}: ${err.trim()}`));
      else resolve(out.split('\n').filter((l) => l !== '').map((l) => l.split('\t')));
    });
  });
  await Promise.race([started, done.then(() => undefined)]);
  return { done };
}

/**
 * A TCP transfer of `bytes` random bytes from namespace `from` to `toIp` (port 5001) in `to`
 * (a Node server and client; the data goes through a file in `dir`). Throws unless every
 * byte arrived intact (count and SHA-256); returns the time it took (ms), for reports.
 */
export async function tcpTransfer(from: string, to: string, toIp: string, dir: string, bytes = 4 * 1024 * 1024): Promise<number> {
  const data = randomBytes(bytes);
  const file = join(dir, `tcp-${Date.now()}-${Math.floor(Math.random() * 1e6)}.bin`);
  writeFileSync(file, data);
  const server = `
    const net = require('node:net'); const crypto = require('node:crypto');
    const h = crypto.createHash('sha256'); let n = 0;
    const srv = net.createServer((s) => { s.on('data', (d) => { h.update(d); n += d.length; });
      s.on('end', () => { console.log(JSON.stringify({ n, sha: h.digest('hex') })); srv.close(); }); });
    srv.listen(5001, '${toIp}', () => process.stderr.write('READY\\n'));`;
  let srv: Background | undefined;
  try {
    srv = await startInNs(to, process.execPath, ['-e', server]);
    const client = `
      const net = require('node:net'); const fs = require('node:fs');
      const s = net.connect(5001, '${toIp}', () => s.end(fs.readFileSync(${JSON.stringify(file)})));`;
    const t0 = Date.now();
    await runInNs(from, process.execPath, ['-e', client]);
    const got = JSON.parse(await srv.done) as { n: number; sha: string };
    srv = undefined;
    const ms = Date.now() - t0;
    const want = createHash('sha256').update(data).digest('hex');
    if (got.n !== data.length || got.sha !== want) {
      throw new Error(`TCP ${from} → ${toIp}: received ${got.n} of ${data.length} bytes, SHA-256 ${got.sha}, sent ${want}`);
    }
    return ms;
  } finally {
    rmSync(file, { force: true });
    if (srv !== undefined) {
      // The client failed: do not leave the server listening (`ip netns exec` runs it as its own process).
      srv.done.catch(() => undefined);
      try {
        process.kill(srv.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}
