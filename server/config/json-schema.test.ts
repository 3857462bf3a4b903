/**
 * watchpost.schema.json: generated from the configuration schema (fails when the committed file
 * is out of date: `npm run schema` regenerates it), referenced by every demo file, accepts the
 * demo files, and refuses what `watchpost check` refuses for the shape of one file.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configJsonSchema, configJsonSchemaText } from './json-schema.js';
import { loadConfig } from './load.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SCHEMA_FILE = join(ROOT, 'watchpost.schema.json');
const DEMO = join(ROOT, 'config-demo');
const demoFiles = readdirSync(DEMO).filter((f) => /\.ya?ml$/.test(f));

const validate = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true }).compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);
const errorsOf = (doc: unknown) =>
  validate(doc) ? [] : validate.errors!.map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** What `watchpost check` says about one file on its own. */
function check(yaml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-schema-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'a.yaml'), yaml);
  return loadConfig(dir, {});
}

describe('watchpost.schema.json', () => {
  it('is up to date with the configuration schema (npm run schema)', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(configJsonSchemaText());
  });

  it('has every section, all optional, and refuses unknown sections', () => {
    const schema = configJsonSchema();
    expect(Object.keys(schema.properties as object).sort()).toEqual([
      'adapters',
      'api',
      'assets',
      'broker',
      'channels',
      'cluster',
      'console',
      'contacts',
      'departments',
      'devices',
      'escalations',
      'metrics',
      'rules',
      'schedules',
      'storage',
    ]);
    expect(schema.required).toBeUndefined();
    expect(schema.additionalProperties).toBe(false);
    expect(errorsOf({})).toEqual([]);
    expect(errorsOf({ asets: [] })).toEqual(['/ must NOT have additional properties (asets)']);
  });

  it.each(demoFiles)('config-demo/%s names it in a yaml-language-server modeline and is valid', (file) => {
    const text = readFileSync(join(DEMO, file), 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../watchpost.schema.json');
    expect(errorsOf(parse(text))).toEqual([]);
  });

  const rule = 'rules:\n  - id: r1\n    match: { asset_type: bridge, metric: strain }\n';
  it.each([
    ['a misspelt rule kind', `${rule}    levles: { red: { above: 1 } }\n`, '/rules/0'],
    ['an unknown field of a threshold rule', `${rule}    levels: { red: { above: 1 } }\n    colour: red\n`, '/rules/0'],
    ['a misspelt level', `${rule}    levels: { rouge: { above: 1 } }\n`, '/rules/0'],
    ['a duration that is not one', `${rule}    levels: { red: { above: 1 } }\n    for: soon\n`, '/rules/0'],
    ['an unknown signal', `${rule}    levels: { red: { above: 1 } }\n    signal: { median: 10m }\n`, '/rules/0'],
    ['a compound rule with both all and any', 'rules:\n  - { id: r1, level: red, all: [{ metric: a, above: 1 }], any: [{ metric: b, above: 1 }] }\n', '/rules/0'],
    ['an unknown channel type', 'channels:\n  - { id: c1, type: pager, url: "http://x" }\n', '/channels/0'],
    ['an unknown field of a webhook channel', 'channels:\n  - { id: c1, type: webhook, url: "http://127.0.0.1:9000/", secrett: abc }\n', '/channels/0'],
    ['an unknown field of an asset', 'assets:\n  - { id: a1, type: bridge, name: A, street: S, location: [114, 22], keeper: x }\n', '/assets/0'],
    ['a port out of range', 'broker: { port: 70000 }\n', '/broker'],
    ['a bad id', 'devices:\n  - { id: "bad id", secret: "0123456789abcdef" }\n', '/devices/0/id'],
  ])('refuses %s, as watchpost check does', (_what, yaml, at) => {
    expect(check(yaml).ok).toBe(false);
    const errors = errorsOf(parse(yaml));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.startsWith(at))).toBe(true);
  });

  it.each([
    ['a threshold rule on a rate', `${rule}    levels: { red: { above: 5 } }\n    signal: { rate: 1d, window: 6h }\n    for: 30s\n`],
    ['a stale rule', 'rules:\n  - { id: s1, stale: 10m, level: yellow }\n'],
    ['an offline rule', 'rules:\n  - { id: o1, offline: 2m, level: yellow }\n'],
    [
      'a compound rule',
      'rules:\n  - id: c1\n    level: red\n    all:\n      - { metric: rainfall, signal: { sum: 24h }, above: 100 }\n      - { metric: displacement, signal: { tangent_angle: 6h, velocity: 0.8 }, above: 85 }\n',
    ],
    ['an sms channel', 'channels:\n  - { id: sms, type: sms, provider: http, url: "https://sms.example.org/send" }\n'],
    ['an external broker', 'broker: { url: "mqtt://127.0.0.1:1883", username: w, password: p, shared_group: watchpost }\n'],
  ])('accepts %s, as watchpost check does', (_what, yaml) => {
    const checked = check(yaml);
    expect(checked.ok ? [] : checked.errors).toEqual([]);
    expect(errorsOf(parse(yaml))).toEqual([]);
  });
});
