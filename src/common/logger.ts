import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level: LevelWithSilent;
  format: 'auto' | 'json' | 'pretty';
  base?: Record<string, unknown>;
}

/**
 * One JSON line per event; human-readable when a person is watching the terminal.
 * pino-pretty is loaded only then, so the JSON path pays nothing for it.
 */
export async function createLogger(opts: LoggerOptions): Promise<Logger> {
  const pretty = opts.format === 'pretty' || (opts.format === 'auto' && process.stdout.isTTY === true);
  const options = { level: opts.level, base: opts.base ?? {}, timestamp: pino.stdTimeFunctions.isoTime };
  if (!pretty) return pino(options, pino.destination({ dest: 1, sync: true }));
  const { default: prettyStream } = await import('pino-pretty');
  return pino(options, prettyStream({ colorize: process.stdout.isTTY === true, sync: true, ignore: 'pid,hostname', singleLine: true }));
}
