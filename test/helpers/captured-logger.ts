import { Writable } from 'node:stream';
import { createLogger, type Logger, type LogLevel } from '../../src/core/log.js';

/** A logger (at `level`, default info) whose JSON lines are kept, parsed, in `lines` as they are written. */
export function capturedLogger(level: LogLevel = 'info'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}
