// Structured JSON logs (pino). Tokens, passwords and query parameters are never logged: the
// redaction paths below are a safety net, the rule is not to pass them in the first place.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'token',
  'password',
  'accessToken',
  'access_token',
  '*.token',
  '*.password',
  '*.accessToken',
  '*.access_token',
  'params',
  '*.params',
  'parameters',
  '*.parameters',
];

export function createLogger(options: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const opts: LoggerOptions = {
    level: options.level ?? process.env.WARDEN_LOG_LEVEL ?? 'info',
    name: options.name ?? 'warden',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

/** A logger that discards everything (tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });
