/** Background helper processes in namespaces: wait for READY, collect output at exit. */
import { spawn } from 'node:child_process';
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
