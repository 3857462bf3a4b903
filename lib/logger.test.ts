/**
 * Redaction through a real pino destination (a file written synchronously): whatever is logged,
 * no secret reaches the output, and what is not a secret is logged as it was.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, logFormat, redact, redactString, REDACTED } from './logger.js';

const SECRETS = ['hunter2-secret', 'tok-123456789', 'pw-abcdef', 'smtp-pass-xyz', 'AKID-ali-key', 'bearer-credential-42', 'mqtt-user-pass', 'wecom-robot-key'];

describe('logger redaction', () => {
  let dir: string;
  let file: string;
  let destination: pino.DestinationStream & { flushSync(): void };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'watchpost-logger-'));
    file = join(dir, 'log.jsonl');
    destination = pino.destination({ dest: file, sync: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const lines = (): Array<Record<string, unknown>> =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('censors secret-looking keys at any depth, in arrays, bindings and errors, and credentials in strings', () => {
    const logger = createLogger({ destination }).child({ module: 'test', channel: { id: 'ops-hook', secret: SECRETS[0] } });
    const err = Object.assign(new Error('connect to mqtt://dau-1:mqtt-user-pass@broker.example.org:1883 failed'), {
      config: { headers: { Authorization: `Bearer ${SECRETS[5]}` } },
    });
    logger.info(
      {
        api: { tokens: [{ name: 'duty', token: SECRETS[1] }] },
        devices: [{ id: 'dau-1', Password: SECRETS[2] }],
        smtp: { host: 'smtp.example.org', user: 'watchpost', pass: SECRETS[3] },
        sms: { access_key_id: 'AKID', access_key: SECRETS[4] },
        url: `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${SECRETS[7]}&debug=1`,
        err,
        count: 3,
        has_secret: true,
      },
      'delivering to mqtt://dau-1:%s@broker',
      SECRETS[6],
    );
    logger.error(new Error(`login with Bearer ${SECRETS[5]} refused`));
    destination.flushSync();
    const text = readFileSync(file, 'utf8');
    for (const secret of SECRETS) expect(text).not.toContain(secret);

    const [first, second] = lines();
    expect(first).toMatchObject({
      module: 'test',
      channel: { id: 'ops-hook', secret: REDACTED },
      api: { tokens: REDACTED },
      devices: [{ id: 'dau-1', Password: REDACTED }],
      smtp: { host: 'smtp.example.org', user: 'watchpost', pass: REDACTED },
      sms: { access_key_id: 'AKID', access_key: REDACTED },
      url: `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${REDACTED}&debug=1`,
      count: 3,
      has_secret: true,
      msg: `delivering to mqtt://${REDACTED}@broker`,
      err: {
        type: 'Error',
        message: `connect to mqtt://${REDACTED}@broker.example.org:1883 failed`,
        config: { headers: { Authorization: REDACTED } },
      },
    });
    expect((first!.err as { stack: string }).stack.startsWith(`Error: connect to mqtt://${REDACTED}@broker.example.org:1883 failed\n`)).toBe(true);
    expect(second).toMatchObject({ level: 50, msg: `login with Bearer ${REDACTED} refused`, err: { type: 'Error', message: `login with Bearer ${REDACTED} refused` } });
  });

  it('leaves objects without secrets untouched (the same object, not a copy)', () => {
    const reading = { asset_id: 'lg-bridge-001', values: { strain: 212.5 }, ts: new Date(0), tags: ['a', 'b'] };
    expect(redact(reading)).toBe(reading);
    expect(redactString('telemetry/lg-bridge-001/strain-01')).toBe('telemetry/lg-bridge-001/strain-01');
    const createdAt = new Date(0);
    expect(redact({ at: createdAt, nested: { token: 'x' } })).toEqual({ at: createdAt, nested: { token: REDACTED } });
  });

  it('ends on a cycle', () => {
    const node: Record<string, unknown> = { id: 'a', secret: 'cyclic-secret' };
    node.self = node;
    const clean = redact(node) as Record<string, unknown>;
    expect(clean.secret).toBe(REDACTED);
    expect((clean.self as Record<string, unknown>).secret).toBe(REDACTED);
  });

  it('logs an object nested past the walk depth as cut, never as it is', () => {
    let deep: Record<string, unknown> = { token: 'deep-token-value' };
    for (let i = 0; i < 12; i++) deep = { level: deep };
    const out = JSON.stringify(redact(deep));
    expect(out).not.toContain('deep-token-value');
    expect(out).toContain('"[nested too deep]"');
    // Within the depth, values stay as they are.
    expect(redact({ a: { b: { c: 'kept' } } })).toEqual({ a: { b: { c: 'kept' } } });
  });
});

describe('log format', () => {
  it('is readable on a terminal and JSON otherwise, unless WATCHPOST_LOG_FORMAT says', () => {
    expect(logFormat({}, true)).toBe('pretty');
    expect(logFormat({}, false)).toBe('json');
    expect(logFormat({ WATCHPOST_LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormat({ WATCHPOST_LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
    expect(() => logFormat({ WATCHPOST_LOG_FORMAT: 'xml' }, false)).toThrow('WATCHPOST_LOG_FORMAT must be json or pretty, not "xml"');
  });
});
