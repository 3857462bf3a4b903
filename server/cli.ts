#!/usr/bin/env -S node --max-semi-space-size=64
/** `watchpost <command>`: start, simulate, check, replay, hash-secret (contract: Command line). */
// First: replaces the `debug` package with a disabled one (unless DEBUG is set) before aedes loads it.
import '../lib/quiet-debug.js';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hashSecret } from '../ingest/device-auth.js';
import { createLogger } from '../lib/logger.js';
import { formatErrors, loadConfig } from './config/load.js';
import { loadConfigIsolated } from './config/load-isolated.js';
import type { WatchpostConfig } from './config/schema.js';

const USAGE = `usage: watchpost <command> [options]

commands:
  start [--config DIR]                     run the platform (broker, ingest, storage, rules, alerts, API)
  simulate [--config DIR] [--url mqtt://…] [--scenario NAME] [--devices N] [--rate HZ] [--duration S] [--seed N]
           [--speed X] [--start TIME] [--connections N]
                                           device simulators publishing over MQTT with the devices' credentials;
                                           scenarios: normal drift spike sensor_dropout device_offline landslide
                                           pipe_burst gas_leak fire storm incident quiet
  check [--config DIR]                     validate the configuration; lists every error
  replay --config DIR --input FILE [--json] [--end TIME] [--tz +08:00]
  replay --config DIR --from-influx --start TIME --end TIME [--json] [--tz +08:00]
                                           run the rules over recorded readings (JSONL or CSV, - = stdin) or a
                                           stored time range on event time and print the alert timeline
  hash-secret                              read a device secret on stdin, print a secret_hash for the config

Without --config, ./config is used if present, else the bundled Longgang demo configuration.`;

/** The bundled demo configuration, next to the package root (dist/server/cli.js -> config-demo/). */
export const DEMO_CONFIG_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config-demo');

export function resolveConfigDir(given: string | undefined): string {
  if (given) return resolve(given);
  if (existsSync('config')) return resolve('config');
  return DEMO_CONFIG_DIR;
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
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      config: { type: 'string' },
      url: { type: 'string' },
      scenario: { type: 'string' },
      devices: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      seed: { type: 'string' },
      speed: { type: 'string' },
      start: { type: 'string' },
      connections: { type: 'string' },
      input: { type: 'string' },
      json: { type: 'boolean' },
      'from-influx': { type: 'boolean' },
      end: { type: 'string' },
      tz: { type: 'string' },
    },
  });
  const configDir = resolveConfigDir(values.config);

  switch (command) {
    case 'check': {
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
    case 'start': {
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
      // SIGHUP reloads the rules; an invalid configuration is logged and the rules in force stay.
      process.on('SIGHUP', () => {
        try {
          platform.reloadRules('signal');
        } catch (err) {
          logger.error({ err }, 'rule reload failed');
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
    case 'simulate': {
      const config = await loadOrExit(configDir);
      const logger = createLogger({ level: process.env.WATCHPOST_LOG_LEVEL ?? 'info' });
      const { runSimulation, defaultBrokerUrl, formatSummary, formatProgress } = await import('../simulators/simulate.js');
      const { parseStart } = await import('../simulators/clock.js');
      const num = (v: string | undefined, name: string): number | undefined => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
        return n;
      };
      const url = values.url ?? defaultBrokerUrl(config);
      const controller = new AbortController();
      process.on('SIGINT', () => controller.abort());
      process.on('SIGTERM', () => controller.abort());
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
      const summary = await runSimulation(config, {
        url,
        scenario: values.scenario,
        devices: num(values.devices, 'devices'),
        connections: num(values.connections, 'connections'),
        rate: num(values.rate, 'rate'),
        speed: num(values.speed, 'speed'),
        start: values.start === undefined ? undefined : parseStart(values.start),
        duration: num(values.duration, 'duration'),
        seed: num(values.seed, 'seed'),
        logger,
        signal: controller.signal,
        onProgress,
      });
      if (tty) process.stderr.write('\n');
      process.stdout.write(`${formatSummary(summary)}\n`);
      return summary.errors > 0 ? 1 : 0;
    }
    case 'replay': {
      const replay = await import('./replay.js');
      const fromStore = values['from-influx'] === true;
      if (fromStore === (values.input !== undefined)) {
        process.stderr.write(`replay needs either --input FILE or --from-influx --start TIME --end TIME\n${USAGE}\n`);
        return 2;
      }
      let start: number | undefined;
      let end: number | undefined;
      try {
        if (values.tz !== undefined && values.tz !== 'Z') replay.parseOffset(values.tz);
        if (values.end !== undefined) end = replay.parseTimeOption(values.end, 'end');
        if (fromStore) {
          if (values.start === undefined || end === undefined) throw new Error('--from-influx needs --start and --end');
          start = replay.parseTimeOption(values.start, 'start');
          if (!(start < end)) throw new Error('--start must be before --end');
        }
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        return 2;
      }
      const config = await loadOrExit(configDir);
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
          input = replay.readReplayFile(config, values.input!);
        }
      } catch (err) {
        process.stderr.write(`watchpost replay: ${(err as Error).message}\n`);
        return 1;
      }
      const report = replay.runReplay(config, input, { tz: values.tz, end });
      process.stderr.write(replay.formatRejected(input.rejected));
      process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : replay.formatTable(report));
      return 0;
    }
    case 'hash-secret': {
      const secret = await readStdin();
      if (secret.length < 8) {
        process.stderr.write('a device secret must be at least 8 characters\n');
        return 1;
      }
      process.stdout.write(`${await hashSecret(secret)}\n`);
      return 0;
    }
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
      return 2;
  }
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
