/** The platform's one root logger. Parts take `logger.child({ module })`. Secrets are redacted. */
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'secret',
  'password',
  'token',
  '*.secret',
  '*.password',
  '*.token',
  '*.*.secret',
  '*.*.password',
  '*.*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
];

export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.WATCHPOST_LOG_LEVEL ?? 'info',
      base: { app: 'watchpost' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
