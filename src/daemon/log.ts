/**
 * Structured logging (pino): JSON lines on stdout, human-readable when stdout is a
 * terminal. The data path never logs per frame; it counts, and the daemon reports counts.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, site?: string): Logger {
  const base = site === undefined ? { pid: process.pid } : { pid: process.pid, site };
  if (process.stdout.isTTY) {
    return pino({
      level,
      base,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 1, sync: true }));
}
