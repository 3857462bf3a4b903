/**
 * The configuration loader on hostile input: any file content, any structure, any environment.
 * It never throws; it answers either a configuration that passes the schema, or errors that each
 * name a file, a path and a reason. `${NAME}` is replaced by exactly the variable's value.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './load.js';
import { configSchema } from './schema.js';
import { params } from '../../test/support/property.js';

const VALID = {
  broker: { host: '127.0.0.1', port: 1883 },
  storage: { data_dir: './data', spool: { max_bytes: '64MiB', fsync: 'always' }, deadman: { no_readings: '10m' } },
  assets: [{ id: 'lg-bridge-001', type: 'bridge', name: '桥', street: '龙城街道', sensors: [{ id: 'strain-01', metrics: ['strain'] }] }],
  metrics: { strain: { unit: 'µε', min: -5000, max: 5000 } },
  devices: [{ id: 'dau-1', secret: '${DAU_SECRET}', assets: ['lg-bridge-001'] }],
  rules: [{ id: 'r1', match: { metric: 'strain' }, levels: { red: { above: 300 }, yellow: { above: 200 } } }],
};

/** A valid configuration with one value somewhere replaced by anything. */
function mutate(value: unknown, path: readonly (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  if (Array.isArray(value)) return value.map((v, i) => (i === head ? mutate(v, rest, replacement) : v));
  if (value !== null && typeof value === 'object') return { ...value, [head!]: mutate((value as Record<string, unknown>)[head as string], rest, replacement) };
  return replacement;
}

function paths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}
const ALL_PATHS = paths(VALID).filter((p) => p.length > 0);

describe('loadConfig (property)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'watchpost-config-prop-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function load(text: string, env: Record<string, string> = { DAU_SECRET: 'secret-value-1' }) {
    writeFileSync(join(dir, 'watchpost.yaml'), text);
    return loadConfig(dir, env);
  }

  function checkOutcome(result: ReturnType<typeof loadConfig>) {
    if (result.ok) {
      // The schema's defaults are in: every section is there (cluster only when configured).
      const optional = new Set(['cluster']);
      expect(
        Object.keys(result.config)
          .filter((s) => !optional.has(s))
          .sort(),
      ).toEqual(
        Object.keys(configSchema.shape)
          .filter((s) => !optional.has(s))
          .sort(),
      );
      return;
    }
    expect(result.errors.length).toBeGreaterThan(0);
    for (const e of result.errors) {
      expect(typeof e.file).toBe('string');
      expect(typeof e.path).toBe('string');
      expect(typeof e.message).toBe('string');
      expect(e.message.length).toBeGreaterThan(0);
    }
  }

  it('reports an alias without its anchor as a YAML error (it used to throw)', () => {
    const result = load('*-');
    expect(result).toMatchObject({ ok: false, errors: [{ file: 'watchpost.yaml', path: '(root)' }] });
    if (!result.ok) expect(result.errors[0]!.message).toMatch(/^YAML: Unresolved alias/);
  });

  it('reserves rule ids starting with platform- for the platform alerts', () => {
    const result = load(stringify({ ...VALID, rules: [{ ...VALID.rules[0], id: 'platform-spool' }] }));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.errors).toContainEqual({
        file: 'watchpost.yaml',
        path: 'rules[0] (platform-spool).id',
        message: 'rule ids starting with "platform-" are reserved for Watchpost\'s own alerts',
        line: expect.any(Number),
      });
    }
  });

  it('never throws on any text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 400 }),
          fc.string({ unit: fc.constantFrom(':', '-', ' ', '\n', '{', '}', '[', ']', '&', '*', '!', '|', '>', '#', '$', 'a', '1', '"', "'"), maxLength: 200 }),
        ),
        (text) => {
          checkOutcome(load(text));
        },
      ),
      params(200),
    );
  });

  it('never throws on any structure, and refuses what is not a configuration with errors naming file and path', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 4, withNullPrototype: false }), (doc) => {
        const text = stringify(doc) ?? '';
        checkOutcome(load(text));
      }),
      params(200),
    );
  });

  it('never throws when any value of a valid configuration is replaced by anything', () => {
    expect(load(stringify(VALID)).ok).toBe(true);
    fc.assert(
      fc.property(fc.constantFrom(...ALL_PATHS), fc.anything({ maxDepth: 2 }), (path, replacement) => {
        checkOutcome(load(stringify(mutate(VALID, path, replacement))));
      }),
      params(300),
    );
  });

  it('replaces ${NAME} by exactly the value of NAME, whatever it holds, and names a missing variable', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Z][A-Z0-9_]{0,15}$/), fc.string({ minLength: 8, maxLength: 40 }), (name, value) => {
        const doc = { ...VALID, devices: [{ ...VALID.devices[0], secret: `\${${name}}` }] };
        const ok = load(stringify(doc), { [name]: value });
        if (ok.ok) expect(ok.config.devices[0]!.secret).toBe(value);
        else expect(ok.errors.map((e) => e.path)).toContain('devices[0].secret');
        const missing = load(stringify(doc), {});
        expect(missing.ok).toBe(false);
        if (!missing.ok)
          expect(missing.errors).toContainEqual({ file: 'watchpost.yaml', path: 'devices[0].secret', message: `environment variable ${name} is not set`, line: expect.any(Number) });
      }),
      params(100),
    );
  });
});
