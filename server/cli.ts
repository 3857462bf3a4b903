#!/usr/bin/env -S node --max-semi-space-size=64
/**
 * `watchpost <command>` (contract: Command line). Every command is one entry of COMMANDS: its
 * options, its help text and what it runs; `watchpost <command> --help` prints the help.
 * Longer than 500 lines because the help texts of every command live in their entries.
 */
// First: replaces the `debug` package with a disabled one (unless DEBUG is set) before aedes loads it.
import '../lib/quiet-debug.js';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { hashSecret } from '../ingest/device-auth.js';
import { createLogger } from '../lib/logger.js';
import { PACKAGE_ROOT, packageVersion } from '../lib/package-info.js';
import { exitWithParent } from '../lib/parent-guard.js';
import { formatErrors, loadConfig } from './config/load.js';
import { loadConfigIsolated } from './config/load-isolated.js';
import type { WatchpostConfig } from './config/schema.js';

/** The bundled demo configuration, next to the package root. */
export const DEMO_CONFIG_DIR = join(PACKAGE_ROOT, 'config-demo');

export function resolveConfigDir(given: string | undefined): string {
  if (given) return resolve(given);
  if (existsSync('config')) return resolve('config');
  return DEMO_CONFIG_DIR;
}

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | undefined>;

interface Command {
  /** One line for `watchpost --help`. */
  summary: string;
  /** The usage lines, without the leading `watchpost `; a line starting with a space continues the one before. */
  usage: string[];
  /** What the command does and its options, for `watchpost <command> --help`. */
  help: string;
  options: Options;
  /** Takes arguments besides its options (import: the CSV file). */
  positionals?: boolean;
  /** The exit code, or -1 to keep the process running (start). */
  run(values: Values, positionals: string[]): number | Promise<number>;
}

const CONFIG_HELP = `  --config DIR     the configuration directory; default ./config if present, else the bundled demo configuration`;

const COMMANDS: Record<string, Command> = {
  start: {
    summary: 'run the platform: broker, ingest, storage, rules, alerts, HTTP API',
    usage: ['start [--config DIR]'],
    help: `Runs the platform until SIGTERM or SIGINT, which shut it down cleanly (writers flushed, state kept).
SIGHUP reloads the configuration (docs/registry.md). Logs JSON lines to stdout (level: WATCHPOST_LOG_LEVEL, default info).

options:
${CONFIG_HELP}`,
    options: { config: { type: 'string' } },
    run: runStart,
  },
  simulate: {
    summary: "device simulators publishing over MQTT with the devices' credentials",
    usage: [
      'simulate [--config DIR] [--url mqtt://…] [--scenario NAME] [--devices N] [--rate HZ] [--duration S] [--seed N]',
      '  [--speed X] [--start TIME] [--connections N] [--protocol mqtt|gb26875]',
    ],
    help: `Simulates the devices of the configuration, publishing readings of their assets' sensors over MQTT
with each device's credentials. Prints a summary on stdout, progress on stderr; exits 1 if any
reading failed or a connection was refused.

options:
${CONFIG_HELP}
  --url URL        the broker; default: the configuration's broker (embedded: mqtt://127.0.0.1:<port>)
  --scenario NAME  normal (default), drift, spike, sensor_dropout, device_offline, landslide, pipe_burst,
                   gas_leak, fire, storm, incident, disposal, quiet
  --devices N      simulated devices: the first N configured ones, or replicas of them beyond that
  --connections N  MQTT connections shared by all simulated devices; default one per device
  --rate HZ        readings per second per sensor; default 1
  --speed X        simulated seconds per wall-clock second; default 1
  --duration S     wall-clock seconds to run; default the scenario's length / speed, or until SIGINT
  --start TIME     timestamp of the first reading: epoch milliseconds or RFC 3339; default: so that
                   the simulated span ends at the present
  --seed N         seed of every signal generator; default 1
  --protocol P     mqtt (default), or gb26875: play the scenario as the GB/T 26875.3 transmission devices of
                   the configuration's gb26875 adapter (--url host:port; default the adapter's port;
                   scenario default fire)`,
    options: {
      config: { type: 'string' },
      url: { type: 'string' },
      scenario: { type: 'string' },
      protocol: { type: 'string' },
      devices: { type: 'string' },
      connections: { type: 'string' },
      rate: { type: 'string' },
      speed: { type: 'string' },
      duration: { type: 'string' },
      start: { type: 'string' },
      seed: { type: 'string' },
    },
    run: runSimulate,
  },
  check: {
    summary: 'validate the configuration; lists every error',
    usage: ['check [--config DIR]'],
    help: `Validates the configuration. Exit 0 if it is valid; otherwise exit 1 and every error on stderr,
each naming the file, the path in it and the reason.

options:
${CONFIG_HELP}`,
    options: { config: { type: 'string' } },
    run: runCheck,
  },
  replay: {
    summary: 'run the rules over recorded readings and print the alert timeline',
    usage: ['replay [--config DIR] --input FILE [--json] [--end TIME] [--tz +08:00]', 'replay [--config DIR] --from-influx --start TIME --end TIME [--json] [--tz +08:00]'],
    help: `Runs the configuration's rules over recorded readings on event time and prints the alert
timeline; the same input always gives the same output. Notifications are not sent.

options:
${CONFIG_HELP}
  --input FILE     readings as JSONL ({asset_id, sensor_id, ts, values} per line) or CSV; - = stdin
  --from-influx    read the readings stored between --start and --end instead (InfluxDB or the embedded store)
  --start TIME     with --from-influx: the start of the range (epoch milliseconds or RFC 3339)
  --end TIME       the end of the range; with --input: run the platform clock on to this time
                   after the last reading (stale and offline rules)
  --tz OFFSET      print times at this UTC offset, e.g. +08:00; default Z (UTC)
  --json           print the report as JSON instead of a table`,
    options: {
      config: { type: 'string' },
      input: { type: 'string' },
      'from-influx': { type: 'boolean' },
      start: { type: 'string' },
      end: { type: 'string' },
      tz: { type: 'string' },
      json: { type: 'boolean' },
    },
    run: runReplay,
  },
  import: {
    summary: 'add or replace assets and devices from a CSV inventory, into registry.yaml',
    usage: ['import [--config DIR] FILE.csv [--dry-run]'],
    help: `Adds or replaces the assets and devices of a CSV export of the component inventory in the
configuration directory's registry.yaml (docs/registry.md has the columns and an example). Every
row is validated as the configuration is; every bad row is reported by line and column, and
nothing is written when any row is bad (exit 1). Devices without secret_hash get a generated
secret, printed once on stdout as device_id,secret; only its scrypt hash is kept. A running
platform takes the change on its next reload (it watches the directory; or SIGHUP).

options:
${CONFIG_HELP}
  --dry-run        validate and report only; nothing is written`,
    options: { config: { type: 'string' }, 'dry-run': { type: 'boolean' } },
    positionals: true,
    run: async (values, positionals) => (await import('./import-command.js')).runImport(resolveConfigDir(str(values.config)), positionals, values['dry-run'] === true),
  },
  'hash-secret': {
    summary: 'read a device secret on stdin, print a secret_hash for the configuration',
    usage: ['hash-secret'],
    help: `Reads a device secret (at least 8 characters) on stdin and prints its scrypt hash, for a device's
secret_hash in the configuration, so that the secret itself need not be stored there.`,
    options: {},
    run: runHashSecret,
  },
  receive: {
    summary: 'a webhook receiver that prints each notification and checks its signature',
    usage: ['receive [--port N] [--host ADDR] [--secret S]'],
    help: `Listens for webhook deliveries (the demo configuration's channel posts to port 9000) and prints each
one: event, level, asset, message, ack_url and work order link. With a secret, deliveries whose
X-Watchpost-Signature or X-Watchpost-Timestamp (at most 5 minutes off) do not check out are
answered 401 and printed as refused. Runs until SIGINT or SIGTERM.

options:
  --port N         the port; default 9000 (0 = a free one, printed)
  --host ADDR      the address to listen on; default 127.0.0.1
  --secret S       the channel's secret; default the environment variable WATCHPOST_WEBHOOK_SECRET,
                   else signatures are not checked (the demo's: demo-ops-hook-secret-longgang)`,
    options: { port: { type: 'string' }, host: { type: 'string' }, secret: { type: 'string' } },
    run: async (values) => (await import('./receive.js')).runReceive(values),
  },
  report: {
    summary: 'response times, overdue work orders and false-alarm rates of the disposal loop',
    usage: ['report [--config DIR] --from TIME --to TIME [--json]'],
    help: `Reports the cases (alerts) that started between --from and --to, read from alerts.db in the
configuration's data_dir (read-only: it runs beside a running platform): per department and per
level, the cases, how many are open or dismissed, the overdue work orders, and the median and
90th percentile time of each stage, each measured from the alert's start to the first step of it
(ack = acknowledged, verify = verified, dispatch = dispatched, on_site, close = closed); then the
false-alarm rate (dismissed / all cases) by rule and by sensor, most dismissed first. A case's
department is the one it was dispatched to, else its asset's owner.

options:
${CONFIG_HELP}
  --from TIME      the start of the range, included: epoch milliseconds or RFC 3339
  --to TIME        the end of the range, excluded
  --json           print the report as JSON instead of tables`,
    options: { config: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } },
    run: runReport,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return `usage: watchpost <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  .join('\n')}

watchpost <command> --help   the command's options
watchpost --version          the version`;
}

function commandHelp(name: string, command: Command): string {
  const lines = command.usage.map((u) => (u.startsWith(' ') ? `${' '.repeat(`watchpost ${name}`.length)}${u.trimEnd()}` : `watchpost ${u}`));
  return `usage: ${lines.join('\n       ')}\n\n${command.help}\n  -h, --help       this help\n`;
}

/** parseArgs' errors, reworded: what was wrong, and where the options are listed. */
function optionError(name: string, err: Error & { code?: string }): string {
  const option = /'(-[^' ]+)/.exec(err.message)?.[1];
  const hint = `see: watchpost ${name} --help`;
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `watchpost ${name}: unknown option ${option ?? err.message} (${hint})`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(err.message) ? `watchpost ${name}: option ${option} needs a value (${hint})` : `watchpost ${name}: option ${option} takes no value (${hint})`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `watchpost ${name}: unexpected argument ${/'([^']*)'/.exec(err.message)?.[1] ?? ''} (${hint})`;
    default:
      return `watchpost ${name}: ${err.message} (${hint})`;
  }
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (name === 'help') return main([rest[0]!, '--help']);
  if (!name) {
    process.stderr.write(`${usage()}\n`);
    return 2;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name]! : undefined;
  if (!command) {
    process.stderr.write(
      name.startsWith('-') ? `watchpost: unknown option ${name}; options follow the command (see: watchpost --help)\n` : `watchpost: unknown command "${name}" (see: watchpost --help)\n`,
    );
    return 2;
  }
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: command.positionals === true,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    process.stderr.write(`${optionError(name, err as Error)}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(commandHelp(name, command));
    return 0;
  }
  return command.run(values, positionals);
}

async function loadOrExit(dir: string): Promise<WatchpostConfig> {
  // In a worker: the parser's garbage would otherwise stay in this long-running process.
  const result = await loadConfigIsolated(dir);
  if (!result.ok) {
    process.stderr.write(`configuration ${dir} is invalid (${result.errors.length} error${result.errors.length === 1 ? '' : 's'}):\n${formatErrors(result.errors)}\n`);
    process.exit(2);
  }
  return result.config;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

function runCheck(values: Values): number {
  const configDir = resolveConfigDir(str(values.config));
  const result = loadConfig(configDir);
  if (!result.ok) {
    process.stderr.write(`${formatErrors(result.errors)}\n${result.errors.length} error${result.errors.length === 1 ? '' : 's'} in ${configDir}\n`);
    return 1;
  }
  const c = result.config;
  process.stdout.write(
    `${configDir}: valid (${result.files.length} files; ${c.assets.length} assets, ${c.devices.length} devices, ${c.rules.length} rules, ${c.escalations.length} escalations)\n`,
  );
  return 0;
}

async function runStart(values: Values): Promise<number> {
  const configDir = resolveConfigDir(str(values.config));
  const config = await loadOrExit(configDir);
  const logger = createLogger();
  const { Platform } = await import('./platform.js');
  const platform = new Platform(config, { logger, configDir });
  if (configDir === DEMO_CONFIG_DIR) {
    logger.warn('running the bundled demo configuration: its device secrets and API tokens are public; do not expose it beyond this machine');
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    platform.stop().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  exitWithParent(() => shutdown('parent exited'));
  // SIGHUP reloads the configuration; an invalid one is logged and the one in force stays.
  process.on('SIGHUP', () => {
    try {
      platform.reloadConfig('signal');
    } catch (err) {
      logger.error({ err }, 'configuration reload failed');
    }
  });
  try {
    await platform.start();
  } catch (err) {
    logger.fatal({ err }, 'start failed');
    await platform.stop().catch(() => undefined);
    return 1;
  }
  return -1; // keep running
}

async function runSimulate(values: Values): Promise<number> {
  const config = await loadOrExit(resolveConfigDir(str(values.config)));
  const logger = createLogger({ level: process.env.WATCHPOST_LOG_LEVEL ?? 'info' });
  const { runSimulation, defaultBrokerUrl, formatSummary, formatProgress } = await import('../simulators/simulate.js');
  const { parseStart } = await import('../simulators/clock.js');
  const num = (name: string): number | undefined => {
    const v = str(values[name]);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
    return n;
  };
  const protocol = str(values.protocol) ?? 'mqtt';
  if (protocol !== 'mqtt' && protocol !== 'gb26875') throw new Error(`--protocol must be mqtt or gb26875, got "${protocol}"`);
  const controller = new AbortController();
  process.on('SIGINT', () => controller.abort());
  process.on('SIGTERM', () => controller.abort());
  exitWithParent(() => controller.abort());
  if (protocol === 'gb26875') {
    const { runGb26875Simulation } = await import('../simulators/gb26875-publisher.js');
    const start = str(values.start);
    const summary = await runGb26875Simulation(config, {
      target: str(values.url)?.replace(/^tcp:\/\//, ''),
      scenario: str(values.scenario),
      rate: num('rate'),
      speed: num('speed'),
      start: start === undefined ? undefined : parseStart(start),
      duration: num('duration'),
      seed: num('seed'),
      logger,
      signal: controller.signal,
    });
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return summary.denied > 0 || summary.unanswered > 0 ? 1 : 0;
  }
  const url = str(values.url) ?? defaultBrokerUrl(config);
  // Progress: one line rewritten in place on a terminal, a line every 10 s otherwise (stderr,
  // so stdout keeps only the summary).
  const tty = process.stderr.isTTY === true;
  let previous: Parameters<typeof formatProgress>[0] | undefined;
  let lastPrinted = 0;
  const onProgress = (p: Parameters<typeof formatProgress>[0]) => {
    if (!tty && p.elapsedMs - lastPrinted < 10_000) return;
    const line = formatProgress(p, previous);
    previous = p;
    lastPrinted = p.elapsedMs;
    process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  };
  const start = str(values.start);
  const summary = await runSimulation(config, {
    url,
    scenario: str(values.scenario),
    devices: num('devices'),
    connections: num('connections'),
    rate: num('rate'),
    speed: num('speed'),
    start: start === undefined ? undefined : parseStart(start),
    duration: num('duration'),
    seed: num('seed'),
    logger,
    signal: controller.signal,
    onProgress,
  });
  if (tty) process.stderr.write('\n');
  process.stdout.write(`${formatSummary(summary)}\n`);
  return summary.errors > 0 ? 1 : 0;
}

async function runReplay(values: Values): Promise<number> {
  const replay = await import('./replay.js');
  const fromStore = values['from-influx'] === true;
  const inputFile = str(values.input);
  const tz = str(values.tz);
  if (fromStore === (inputFile !== undefined)) {
    process.stderr.write(`watchpost replay: give either --input FILE or --from-influx --start TIME --end TIME (see: watchpost replay --help)\n`);
    return 2;
  }
  let start: number | undefined;
  let end: number | undefined;
  try {
    if (tz !== undefined && tz !== 'Z') replay.parseOffset(tz);
    if (values.end !== undefined) end = replay.parseTimeOption(str(values.end)!, 'end');
    if (fromStore) {
      if (values.start === undefined || end === undefined) throw new Error('--from-influx needs --start and --end');
      start = replay.parseTimeOption(str(values.start)!, 'start');
      if (!(start < end)) throw new Error('--start must be before --end');
    }
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const config = await loadOrExit(resolveConfigDir(str(values.config)));
  let input;
  try {
    if (fromStore) {
      const { readStoredRecords } = await import('./replay-storage.js');
      const { compileRules } = await import('../rules/compile.js');
      const { Catalogue } = await import('../ingest/catalogue.js');
      const { parseStoredRecords } = await import('./replay-input.js');
      const records = await readStoredRecords(config, compileRules(config.rules), start!, end!);
      const catalogue = new Catalogue(config.assets, config.metrics);
      input = parseStoredRecords(records, { catalogue, devices: replay.deviceAssets(config, catalogue) });
    } else {
      input = replay.readReplayFile(config, inputFile!);
    }
  } catch (err) {
    process.stderr.write(`watchpost replay: ${(err as Error).message}\n`);
    return 1;
  }
  const report = replay.runReplay(config, input, { tz, end });
  process.stderr.write(replay.formatRejected(input.rejected));
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : replay.formatTable(report));
  return 0;
}

async function runReport(values: Values): Promise<number> {
  const { parseTimeOption } = await import('./replay.js');
  let from: number;
  let to: number;
  try {
    if (values.from === undefined || values.to === undefined) throw new Error('watchpost report: give --from TIME and --to TIME (see: watchpost report --help)');
    from = parseTimeOption(str(values.from)!, 'from');
    to = parseTimeOption(str(values.to)!, 'to');
    if (!(from < to)) throw new Error('--from must be before --to');
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const config = await loadOrExit(resolveConfigDir(str(values.config)));
  const { reportFromDataDir } = await import('./report.js');
  try {
    process.stdout.write(reportFromDataDir(config, from, to, values.json === true));
  } catch (err) {
    process.stderr.write(`watchpost report: ${(err as Error).message}\n`);
    return 1;
  }
  return 0;
}

async function runHashSecret(): Promise<number> {
  const secret = await readStdin();
  if (secret.length < 8) {
    process.stderr.write('a device secret must be at least 8 characters\n');
    return 1;
  }
  process.stdout.write(`${await hashSecret(secret)}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: Error) => {
    process.stderr.write(`watchpost: ${err.message}\n`);
    process.exit(2);
  },
);
