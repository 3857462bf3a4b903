import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const QUIET = fileURLToPath(new URL('../dist/lib/quiet-debug.js', import.meta.url));

/** Loads quiet-debug, then mqtt-packet, in a fresh process; parses and generates a PUBLISH. */
const SCRIPT = `
import ${JSON.stringify(QUIET)};
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(fileURLToPath(import.meta.url))});
const mqtt = require('mqtt-packet');
const bytes = mqtt.generate({ cmd: 'publish', topic: 'telemetry/a/b', payload: Buffer.from('{}'), qos: 1, messageId: 7, retain: false, dup: false });
const parser = mqtt.parser();
let got;
parser.on('packet', (p) => { got = p; });
parser.parse(bytes);
console.log(JSON.stringify({ enabled: require('debug')('mqtt-packet:parser').enabled, topic: got.topic, messageId: got.messageId }));
`;

function run(env: NodeJS.ProcessEnv) {
  const { DEBUG: _ignored, ...base } = process.env;
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT], { env: { ...base, ...env }, encoding: 'utf8' });
  expect(out.status, out.stderr).toBe(0);
  return { result: JSON.parse(out.stdout.trim()) as { enabled: boolean; topic: string; messageId: number }, stderr: out.stderr };
}

describe('quiet-debug', () => {
  it('without DEBUG, mqtt-packet gets a disabled debug that prints nothing, and still parses', () => {
    const { result, stderr } = run({});
    expect(result).toEqual({ enabled: false, topic: 'telemetry/a/b', messageId: 7 });
    expect(stderr).toBe('');
  });

  it('with DEBUG set, the real package loads and prints', () => {
    const { result, stderr } = run({ DEBUG: 'mqtt-packet:*' });
    expect(result).toEqual({ enabled: true, topic: 'telemetry/a/b', messageId: 7 });
    expect(stderr).toContain('mqtt-packet:parser');
  });
});
