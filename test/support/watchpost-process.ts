/**
 * Watchpost as users run it, in a child process: `node dist/server/cli.js start --config DIR`
 * (build first: `npm run build`; `npm test` does). Reads the ports from the "watchpost started"
 * log line and keeps every log line, so tests can kill -9 it, restart it and inspect its logs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'server', 'cli.js');
export const cliBuilt = existsSync(CLI);

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one `watchpost …` command to its end (killed after timeoutMs), with `input` on stdin. */
export function runCli(args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, WATCHPOST_LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`watchpost ${args.join(' ')} did not finish; stderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface WatchpostProcess {
  child: ChildProcess;
  /** Plain MQTT port of the embedded broker (undefined in external-broker or TLS-only mode). */
  mqttPort: number | undefined;
  mqttsPort: number | undefined;
  httpPort: number;
  apiUrl: string;
  /** Every line logged so far (stdout and stderr). */
  logs(): string;
  /** SIGKILL, and wait for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export async function startWatchpostProcess(configDir: string, options: { env?: Record<string, string>; timeoutMs?: number; logs?: { text: string } } = {}): Promise<WatchpostProcess> {
  const child = spawn(process.execPath, [CLI, 'start', '--config', configDir], {
    cwd: ROOT,
    env: { ...process.env, WATCHPOST_LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const sink = options.logs ?? { text: '' };
  // A shared sink holds earlier runs' lines: look for this run's start line only.
  const from = sink.text.length;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.stdout.on('data', (d: Buffer) => (sink.text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (sink.text += d.toString()));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const started = await new Promise<{ mqtt_port?: number; mqtts_port?: number; http_port: number }>((resolveStart, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`watchpost did not start: ${sink.text.slice(-3000)}`));
    }, options.timeoutMs ?? 30_000);
    const onData = () => {
      const line = sink.text
        .slice(from)
        .split('\n')
        .find((l) => l.includes('"msg":"watchpost started"'));
      if (!line) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolveStart(JSON.parse(line));
    };
    child.stdout.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`watchpost exited with ${code} before it started: ${sink.text.slice(-3000)}`));
    });
  });
  const apiUrl = `http://127.0.0.1:${started.http_port}`;
  return {
    child,
    mqttPort: started.mqtt_port,
    mqttsPort: started.mqtts_port,
    httpPort: started.http_port,
    apiUrl,
    logs: () => sink.text,
    async kill9() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export { metricValue } from '../../bench/support/metric-value.js';
