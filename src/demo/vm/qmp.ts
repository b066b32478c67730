/**
 * A minimal QMP (QEMU Machine Protocol) client over a unix socket: the greeting,
 * `qmp_capabilities`, then one command at a time (JSON objects, one per line; replies
 * carry `return` or `error`, events carry `event` and are collected).
 */
import { connect, type Socket } from 'node:net';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export class Qmp {
  readonly events: QmpEvent[] = [];
  private buf = '';
  private waiting: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void; cmd: string }> = [];
  private closed: Error | undefined;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    const fail = (err: Error): void => {
      this.closed = err;
      for (const w of this.waiting.splice(0)) w.reject(new Error(`QMP ${w.cmd}: ${err.message}`));
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed')));
  }

  /** Connect (retrying until QEMU has opened the socket) and negotiate capabilities. */
  static async open(path: string, timeoutMs = 30_000): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new Qmp(sock);
        await qmp.greeting();
        await qmp.cmd('qmp_capabilities');
        return qmp;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`QMP socket ${path}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private greetingWaiter: ((ok: boolean) => void) | undefined;

  private greeting(): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no QMP greeting')), 10_000);
      this.greetingWaiter = (ok) => {
        clearTimeout(t);
        if (ok) resolve();
        else reject(new Error('bad QMP greeting'));
      };
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line === '') continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) {
        this.greetingWaiter?.(true);
        this.greetingWaiter = undefined;
      } else if ('event' in msg) {
        this.events.push(msg as unknown as QmpEvent);
      } else if ('return' in msg || 'error' in msg) {
        const w = this.waiting.shift();
        if (w === undefined) continue;
        if ('error' in msg) {
          const e = msg.error as { class?: string; desc?: string };
          w.reject(new Error(`QMP ${w.cmd}: ${e.class ?? 'Error'}: ${e.desc ?? JSON.stringify(e)}`));
        } else w.resolve(msg.return);
      }
    }
  }

  /** Run one command; resolves with its `return` value. */
  cmd<T = unknown>(execute: string, args?: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    if (this.closed !== undefined) return Promise.reject(new Error(`QMP ${execute}: ${this.closed.message}`));
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`QMP ${execute}: no answer within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({
        cmd: execute,
        resolve: (v) => {
          clearTimeout(t);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.sock.write(`${JSON.stringify(args === undefined ? { execute } : { execute, arguments: args })}\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
