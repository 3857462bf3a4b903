/** Builds the duty console's parts from the configuration, for the composition root (server/platform.ts). */
import { join } from 'node:path';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { PACKAGE_ROOT } from '../../lib/package-info.js';
import type { InfluxConfig } from '../../ingest/config.js';
import type { ConsoleConfig } from './config.js';
import type { ConsolePort } from './routes.js';
import { EmbeddedSeries, InfluxSeries } from './series.js';
import { SessionStore } from './sessions.js';
import { ConsoleFiles } from './static.js';
import { AlertStream } from './stream.js';

/** Where `npm run build` writes the console (console/build.mjs). */
export const CONSOLE_DIST = join(PACKAGE_ROOT, 'dist', 'console');

export interface ConsoleParts {
  port: ConsolePort;
  stream: AlertStream;
  stop(): void;
}

/** The console of `config.console`, reading series from `config.storage` (InfluxDB, else the embedded store, opened on first use). */
export function consolePort(
  config: { console: ConsoleConfig; storage: { data_dir: string; influx?: InfluxConfig } },
  deps: { clock: Clock; logger: Logger },
  filesDir = CONSOLE_DIST,
): ConsoleParts {
  const c = config.console;
  const stream = new AlertStream(deps.clock, { capacity: c.stream_buffer, maxClients: c.max_stream_clients });
  const embedded = config.storage.influx ? undefined : new EmbeddedSeries(config.storage.data_dir);
  const port: ConsolePort = {
    config: c,
    sessions: new SessionStore(deps.clock, { idleMs: c.session_idle, maxMs: c.session_max, maxSessions: c.max_sessions }),
    stream,
    series: embedded ?? new InfluxSeries(config.storage.influx!),
    files: new ConsoleFiles(filesDir),
    logger: deps.logger.child({ module: 'console' }),
    now: () => deps.clock.now(),
  };
  return {
    port,
    stream,
    stop() {
      stream.stop();
      embedded?.close();
    },
  };
}
