/** `limectl monitor --json` against a running limed, collecting its events until stopped (integration tests). */
import { spawn } from 'node:child_process';
import { LIMECTL, type LimedProcess } from '../../src/demo/limed-process.js';

export interface Monitor<E> {
  events: E[];
  /** Ends the monitor (as Ctrl-C does) and waits for it to exit. */
  stop(): Promise<void>;
}

/** `extra`: more monitor arguments (e.g. --events). */
export function monitorJson<E>(l: LimedProcess, extra: readonly string[] = []): Monitor<E> {
  const child = spawn(process.execPath, [LIMECTL, '--socket', l.socket, 'monitor', '--json', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const events: E[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const line of lines) if (line.trim() !== '') events.push(JSON.parse(line) as E);
  });
  return {
    events,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    },
  };
}
