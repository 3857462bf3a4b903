/**
 * The platform's one root logger. Parts take `logger.child({ module })`.
 *
 * Secrets are redacted by what they look like, not where they are: a value under any key that
 * matches `*secret*`, `*token*`, `*password*`, `*passwd*`, `*pass`, `*_key`, `*authorization*` or
 * `*cookie*` (any case, any depth up to MAX_DEPTH, in arrays, child bindings and errors), the
 * userinfo of a URL (`mqtt://user:pass@host`), secret-looking query parameters
 * (`?access_token=…`, `&key=…`) and `Bearer …` credentials in any string, the message included.
 * pino's own `redact` takes fixed paths only, so this is a walk of the logged object, which copies
 * only what it changes.
 *
 * Output: JSON lines, or readable lines (pino-pretty) when stdout is a terminal; the environment
 * variable WATCHPOST_LOG_FORMAT=json or =pretty overrides that.
 */
import { pino, stdSerializers, type Logger } from 'pino';

export type { Logger };

export const REDACTED = '[redacted]';

const SECRET_KEY = /secret|token|password|passwd|pass$|_key$|authorization|cookie/i;
/** Objects nested deeper than this are not walked (a cycle must end) and are logged as DEPTH_CUT, never as they are. */
const MAX_DEPTH = 8;
const DEPTH_CUT = '[nested too deep]';
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi;
const SECRET_QUERY = /([?&][^=&#\s]*(?:secret|token|password|passwd|pass|key|sign(?:ature)?)=)[^&#\s]*/gi;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g;

/** A string with URL credentials, secret query parameters and bearer tokens replaced. */
export function redactString(text: string): string {
  let out = text;
  if (out.includes('://')) out = out.replace(URL_USERINFO, `$1${REDACTED}@`);
  if (out.includes('=')) out = out.replace(SECRET_QUERY, `$1${REDACTED}`);
  if (out.includes('Bearer') || out.includes('Basic')) out = out.replace(BEARER, `$1 ${REDACTED}`);
  return out;
}

/** `value` with every secret replaced; the same object when there was none. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  // Fail closed: what is not inspected is not logged.
  if (depth >= MAX_DEPTH) return DEPTH_CUT;
  if (value instanceof URL) return redactString(value.href);
  if (value instanceof Error) {
    const serialised = stdSerializers.err(value) as unknown as Record<string, unknown>;
    const plain: Record<string, unknown> = {};
    for (const key of Object.keys(serialised)) plain[key] = serialised[key];
    return redact(plain, depth);
  }
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const clean = redact(item, depth + 1);
      if (clean !== item) (copy ??= value.slice())[i] = clean;
    }
    return copy ?? value;
  }
  // Dates, Buffers and the like serialise themselves; they hold no keys to censor.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function' || ArrayBuffer.isView(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    const clean = SECRET_KEY.test(key) && item !== null && item !== undefined && typeof item !== 'boolean' ? REDACTED : redact(item, depth + 1);
    if (clean !== item) (copy ??= { ...(value as Record<string, unknown>) })[key] = clean;
  }
  return copy ?? value;
}

export type LogFormat = 'json' | 'pretty';

const PRETTY_OPTIONS = {
  colorize: true,
  translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l o',
  ignore: 'pid,hostname,app,module',
  messageFormat: '{if module}{module}: {end}{msg}',
};

/** JSON unless stdout is a terminal; WATCHPOST_LOG_FORMAT=json|pretty decides when set. */
export function logFormat(env: NodeJS.ProcessEnv = process.env, isTTY = process.stdout.isTTY === true): LogFormat {
  const chosen = env.WATCHPOST_LOG_FORMAT;
  if (chosen === 'json' || chosen === 'pretty') return chosen;
  if (chosen !== undefined && chosen !== '') throw new Error(`WATCHPOST_LOG_FORMAT must be json or pretty, not "${chosen}"`);
  return isTTY ? 'pretty' : 'json';
}

export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const pretty = options.destination === undefined && logFormat() === 'pretty';
  const logger = pino(
    {
      level: options.level ?? process.env.WATCHPOST_LOG_LEVEL ?? 'info',
      base: { app: 'watchpost' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        bindings: (bindings) => redact(bindings) as Record<string, unknown>,
        log: (object) => redact(object) as Record<string, unknown>,
      },
      // formatters.log has serialised and redacted errors already; pino's default would do it again to the copy.
      serializers: { err: (err: unknown) => (err instanceof Error ? redact(err) : err) },
      hooks: {
        logMethod(args, method) {
          const parts: unknown[] = args;
          for (let i = 0; i < parts.length; i++) if (typeof parts[i] === 'string') parts[i] = redactString(parts[i] as string);
          // `logger.error(err)` alone: the message pino would take from the error, redacted.
          if (parts.length === 1 && parts[0] instanceof Error) parts.push(redactString(parts[0].message));
          method.apply(this, parts as Parameters<typeof method>);
        },
      },
      ...(pretty ? { transport: { target: 'pino-pretty', options: PRETTY_OPTIONS } } : {}),
    },
    options.destination,
  );
  // Child bindings bypass formatters.log; children inherit this from the root (pino's children are
  // Object.create(parent)), so every descendant's bindings are redacted too.
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called through Reflect.apply with each child's own `this`
  const child = logger.child;
  logger.child = function redactedChild(this: Logger, bindings: pino.Bindings, childOptions?: pino.ChildLoggerOptions) {
    return Reflect.apply(child, this, [redact(bindings), childOptions]) as Logger;
  } as unknown as typeof logger.child;
  return logger;
}

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
