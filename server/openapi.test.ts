/**
 * GET /openapi.json: every route the API registers is in it, with the errors it can answer, and
 * answers match it.
 */
import type { FastifyInstance } from 'fastify';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiMismatches, pathTemplate, type OpenApiDocument } from '../test/support/openapi.js';
import { silentLogger } from '../lib/logger.js';
import { buildApi, type ApiDeps } from './api.js';
import { AlertError } from '../alerts/errors.js';
import { buildCaseReport } from '../alerts/report.js';
import { ApiError } from './errors.js';
import { RegistryError } from './registry.js';
import { DeviceRegistry } from '../ingest/broker-policy.js';
import { SecretVerifier } from '../ingest/device-auth.js';
import { HttpPush } from '../ingest/http-push/http-push.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { consoleSchema } from './console/config.js';
import { consolePort } from './console/platform-console.js';

const VIEWER = 'viewer-token-0123456789ab';
const OPERATOR = 'operator-token-0123456789';
const ADMIN = 'admin-token-0123456789abc';

const alert = {
  id: 'al_1',
  rule_id: 'r1',
  rule_name: 'R1',
  level: 'red',
  state: 'firing',
  asset_id: 'a1',
  asset_name: 'A1',
  asset_type: 'bridge',
  street: 'S',
  sensor_id: 's1',
  metric: 'strain',
  value: 312.5,
  threshold: 300,
  started_at: '2026-12-01T00:00:00.000Z',
  message: 'm',
  plan: ['p'],
  ack_url: 'http://x/api/v1/alerts/al_1',
  updated_at: '2026-12-01T00:00:00.000Z',
  acknowledged_at: null,
  acknowledged_by: null,
  resolved_at: null,
  resolved_by: null,
  resolve_reason: null,
  escalation: 'e1',
  tier: 0,
};
const caseAlert = { ...alert, case: { status: 'verified', department: null, work_order_id: null } };
const workOrder = {
  id: 'wo_1',
  alert_id: 'al_1',
  department: 'lg-water',
  department_name: '水务',
  status: 'dispatched',
  note: null,
  created_by: 'ops',
  created_at: alert.started_at,
  due_at: alert.started_at,
  overdue: false,
  arrived_at: null,
  closed_at: null,
  closed_by: null,
  outcome: null,
};
const silence = {
  id: 'si_0123456789abcdef',
  matchers: { asset_id: ['a1'] },
  starts_at: '2026-12-01T00:00:00.000Z',
  ends_at: '2026-12-02T00:00:00.000Z',
  reason: 'works',
  created_by: 'ops',
  created_at: '2026-12-01T00:00:00.000Z',
  state: 'active',
};

/** Every optional part too (Required): each route the API can have is registered and checked. */
function deps(): Required<Omit<ApiDeps, 'tls'>> {
  return {
    config: {
      host: '127.0.0.1',
      port: 0,
      public_url: 'http://127.0.0.1:8080',
      max_body_bytes: 64 * 1024,
      tokens: [
        { name: 'viewer', token: VIEWER, role: 'viewer' },
        { name: 'ops', token: OPERATOR, role: 'operator' },
        { name: 'admin', token: ADMIN, role: 'admin' },
      ],
    },
    logger: silentLogger(),
    alerts: {
      list: () => [alert],
      get: (id) => (id === 'al_1' ? { ...alert, timeline: [{ seq: 1, at: alert.started_at, kind: 'event', type: 'firing', level: 'red' }] } : undefined),
      acknowledge: (id) => {
        if (id !== 'al_1') throw new ApiError('not_found', `alert ${id} not found`);
        throw new ApiError('conflict', 'the alert is already resolved');
      },
      resolve: () => ({ ...alert, state: 'resolved', resolved_at: alert.started_at, resolved_by: 'ops', resolve_reason: 'operator' }),
    },
    assets: () => [
      {
        id: 'a1',
        type: 'bridge',
        name: 'A1',
        street: 'S',
        location: [114.2, 22.7],
        alert_level: 'red',
        open_alerts: 1,
        latest: [{ sensor_id: 's1', metric: 'strain', value: 1, ts: alert.started_at }],
      },
    ],
    devices: () => [{ id: 'd1', assets: ['a1'], status: 'online', since: alert.started_at }],
    rules: () => ({ rules: [{ id: 'r1', kind: 'threshold' }], loaded_at: alert.started_at, last_reload: null, error: null }),
    reloadRules: () => ({ ok: false, errors: [{ file: 'rules.yaml', path: 'rules[0].for', message: 'not a duration', line: 3 }] }),
    health: () => ({ status: 'ok', broker: 'up', storage: { state: 'ok' }, open_alerts: { blue: 0, yellow: 0, orange: 0, red: 1 } }),
    metrics: () => Promise.resolve('# HELP x y\n# TYPE x counter\nx 1\n'),
    silences: { listSilences: () => [silence], createSilence: () => silence, deleteSilence: () => undefined },
    ackLinks: { ackLink: () => ({ kind: 'invalid' }), acknowledgeByLink: () => ({ kind: 'invalid' }) },
    httpPush: new HttpPush({
      config: { type: 'http', path: '/ingest/v1', rate_limit: { requests_per_second: 5, burst: 20 }, idle_timeout: 10_000 },
      devices: new DeviceRegistry([]),
      verifier: () => new SecretVerifier([]),
      clock: { now: () => Date.now() },
      metrics: new MetricsRegistry(),
      maxPayloadBytes: 64 * 1024,
      telemetry: () => Promise.resolve({ accepted: 0, rejected: 0, stored: true }),
      rejected: () => undefined,
    }),
    audit: { record: () => undefined, list: () => [{ seq: 1, at: alert.started_at, actor: 'ops', method: 'POST', path: '/api/v1/alerts/al_1/ack', outcome: 200 }] },
    registry: {
      putAsset: (id) => ({ created: id === 'new-asset', asset: { id, type: 'bridge', name: 'A', street: 'S' } }),
      deleteAsset: (id) => {
        throw new RegistryError('asset_in_use', `asset "${id}" is still referenced by device d1`, 409, { devices: ['d1'] });
      },
      putDevice: (id) => Promise.resolve({ created: true, device: { id, assets: ['a1'], subscribe: [] }, secret: 'generated-secret-0123456789abcdefghijklmno' }),
      deleteDevice: (id) => {
        throw new RegistryError('read_only_config', `the configuration directory is read-only (${id})`, 409);
      },
      rotateSecret: (id) => Promise.resolve({ id, secret: 'rotated-secret-0123456789abcdefghijklmnop' }),
    },
    cases: {
      verify: () => caseAlert,
      dismiss: () => caseAlert,
      dispatch: () => ({ alert: { ...caseAlert, case: { status: 'dispatched', department: 'lg-water', work_order_id: workOrder.id } }, work_order: workOrder }),
      close: (id) => {
        throw new AlertError('illegal_case_move', `cannot close a case that is new (${id})`, 'new');
      },
      workOrders: () => [workOrder],
      onCall: () => [
        {
          schedule: 'water-oncall',
          time_zone: 'Asia/Shanghai',
          current: { member: 'zhang-san', name: '张三', from: alert.started_at, until: alert.started_at },
          next: { member: 'li-si', name: '李四', from: alert.started_at, until: alert.started_at },
        },
      ],
      createOverride: (id) => {
        if (id !== 'water-oncall') throw new AlertError('schedule_not_found', `no schedule with id "${id}"`);
        return { id: 'ov_1', schedule: id, member: 'li-si', starts_at: alert.started_at, ends_at: alert.started_at, created_by: 'ops', created_at: alert.started_at };
      },
    },
    workOrderLinks: { workOrderLink: () => ({ kind: 'invalid' }), actOnWorkOrder: () => ({ kind: 'invalid' }) },
    report: (from, to) => buildCaseReport([], { from, to }),
    console: consolePort({ console: consoleSchema.parse({}), storage: { data_dir: '/nonexistent/watchpost-openapi-test' } }, { clock: { now: () => Date.now() }, logger: silentLogger() })
      .port,
  };
}

describe('GET /openapi.json', () => {
  let app: FastifyInstance;
  const routes: Array<{ method: string; url: string }> = [];
  let doc: OpenApiDocument;

  beforeAll(async () => {
    app = buildApi(deps()) as unknown as FastifyInstance;
    app.addHook('onRoute', (r) => {
      for (const method of [r.method].flat()) routes.push({ method, url: r.url });
    });
    await app.ready();
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    doc = res.json<OpenApiDocument>();
  });
  afterAll(() => app.close());

  const call = async (method: string, url: string, token?: string, payload?: unknown) => {
    const res = await app.inject({
      method: method as 'GET',
      url,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    const body: unknown = String(res.headers['content-type']).startsWith('application/json') ? res.json() : res.body;
    return { status: res.statusCode, body };
  };

  it('is OpenAPI 3.1 without authentication, with the bearer scheme', () => {
    expect(doc.openapi).toBe('3.1.0');
    const { securitySchemes } = (doc as unknown as { components: { securitySchemes: unknown } }).components;
    expect(securitySchemes).toMatchObject({ bearer: { type: 'http', scheme: 'bearer' } });
    expect(Object.keys(securitySchemes as object)).toEqual(['bearer', 'device']);
  });

  it('describes every route the API registers', () => {
    const registered = routes.filter((r) => r.method !== 'HEAD').map((r) => `${r.method} ${r.url.replace(/:([A-Za-z_]+)/g, '{$1}')}`);
    expect(registered.length).toBeGreaterThanOrEqual(15);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual([...new Set(registered)].sort());
    for (const must of [
      'GET /healthz',
      'GET /metrics',
      'GET /openapi.json',
      'GET /ack/{token}',
      'POST /ack/{token}',
      'GET /api/v1/silences',
      'POST /api/v1/silences',
      'DELETE /api/v1/silences/{id}',
      'GET /api/v1/rules',
      'POST /api/v1/rules/reload',
    ]) {
      expect(documented).toContain(must);
    }
  });

  it('gives every authenticated route its role, 401 and 403, and every route with input its 400, all as { error, message }', () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const o = op as { responses: Record<string, { content?: Record<string, { schema: { required?: string[] } }> }>; security?: unknown[]; parameters?: unknown[]; requestBody?: unknown };
        const open = ['/healthz', '/metrics', '/openapi.json', '/ack/{token}', '/wo/{token}'].includes(path) || path === '/console' || path.startsWith('/console/'); // the console's pages and sign-in: no token
        expect(o.security === undefined, `${method} ${path} security`).toBe(open);
        const errorCodes = Object.keys(o.responses).filter((s) => Number(s) >= 400);
        if (!open) expect(errorCodes, `${method} ${path}`).toEqual(expect.arrayContaining(['401', '403']));
        if (o.parameters?.length || o.requestBody) expect(errorCodes, `${method} ${path}`).toContain('400');
        expect(errorCodes).toContain('500');
        for (const s of ['400', '401', '403', '404', '409', '500']) {
          const answer = o.responses[s];
          if (!answer) continue;
          // The ack page answers its own outcomes (invalid, used, expired) as pages.
          if ((path === '/ack/{token}' || path === '/wo/{token}') && (s === '404' || s === '409')) expect(Object.keys(answer.content!)).toEqual(['text/html']);
          else expect(answer.content?.['application/json']?.schema.required, `${method} ${path} ${s}`).toEqual(expect.arrayContaining(['error', 'message']));
        }
      }
    }
    expect(Object.keys(doc.paths['/api/v1/alerts/{id}/ack']!.post!.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '404', '409', '413']));
    // The note is optional, and so is the body; a silence needs one.
    const body = (path: string, method: string) => (doc.paths[path]![method] as unknown as { requestBody: { required: boolean } }).requestBody.required;
    expect(body('/api/v1/alerts/{id}/ack', 'post')).toBe(false);
    expect(body('/api/v1/silences', 'post')).toBe(true);
  });

  it('has request and answer schemas that are valid JSON Schema', () => {
    const ajv = new Ajv2020({ strict: false });
    let n = 0;
    for (const ops of Object.values(doc.paths)) {
      for (const op of Object.values(ops)) {
        for (const r of Object.values(op.responses)) {
          for (const c of Object.values(r.content ?? {})) {
            ajv.compile(c.schema);
            n++;
          }
        }
      }
    }
    expect(n).toBeGreaterThan(60);
  });

  it.each([
    ['GET', '/healthz', undefined, undefined, 200],
    ['GET', '/api/v1/assets', VIEWER, undefined, 200],
    ['GET', '/api/v1/alerts?state=firing', VIEWER, undefined, 200],
    ['GET', '/api/v1/alerts?level=purple', VIEWER, undefined, 400],
    ['GET', '/api/v1/alerts', undefined, undefined, 401],
    ['GET', '/api/v1/alerts/al_1', VIEWER, undefined, 200],
    ['GET', '/api/v1/alerts/al_2', VIEWER, undefined, 404],
    ['POST', '/api/v1/alerts/al_1/ack', VIEWER, { note: 'x' }, 403],
    ['POST', '/api/v1/alerts/al_1/ack', OPERATOR, { note: 'x' }, 409],
    ['POST', '/api/v1/alerts/al_1/ack', OPERATOR, { nope: 1 }, 400],
    ['POST', '/api/v1/alerts/al_1/resolve', OPERATOR, {}, 200],
    ['GET', '/api/v1/devices', VIEWER, undefined, 200],
    ['GET', '/api/v1/rules', VIEWER, undefined, 200],
    ['POST', '/api/v1/rules/reload', ADMIN, undefined, 400],
    ['POST', '/api/v1/config/reload', ADMIN, undefined, 400],
    ['PUT', '/api/v1/assets/new-asset', ADMIN, { type: 'bridge', name: 'A', street: 'S' }, 201],
    ['PUT', '/api/v1/assets/a1', ADMIN, { type: 'bridge', name: 'A', street: 'S' }, 200],
    ['PUT', '/api/v1/assets/a1', OPERATOR, { type: 'bridge', name: 'A', street: 'S' }, 403],
    ['DELETE', '/api/v1/assets/a1', ADMIN, undefined, 409],
    ['PUT', '/api/v1/devices/d9', ADMIN, { assets: ['a1'] }, 201],
    ['DELETE', '/api/v1/devices/d9', ADMIN, undefined, 409],
    ['POST', '/api/v1/devices/d9/rotate-secret', ADMIN, undefined, 200],
    ['GET', '/api/v1/silences', OPERATOR, undefined, 200],
    ['POST', '/api/v1/silences', OPERATOR, { matchers: { asset_id: 'a1' }, ends_at: '2026-12-02T00:00:00Z', reason: 'works' }, 201],
    ['DELETE', '/api/v1/silences/nope', OPERATOR, undefined, 400],
    ['GET', '/openapi.json', undefined, undefined, 200],
    ['POST', '/api/v1/alerts/al_1/verify', OPERATOR, { note: 'x' }, 200],
    ['POST', '/api/v1/alerts/al_1/verify', VIEWER, { note: 'x' }, 403],
    ['POST', '/api/v1/alerts/al_1/dismiss', OPERATOR, { reason: 'sensor_fault' }, 200],
    ['POST', '/api/v1/alerts/al_1/dismiss', OPERATOR, { reason: 'bored' }, 400],
    ['POST', '/api/v1/alerts/al_1/dispatch', OPERATOR, { department: 'lg-water', due: '2h' }, 201],
    ['POST', '/api/v1/alerts/al_1/close', OPERATOR, { outcome: 'resolved' }, 409],
    ['GET', '/api/v1/work-orders?department=lg-water&status=dispatched', VIEWER, undefined, 200],
    ['GET', '/api/v1/work-orders?status=lost', VIEWER, undefined, 400],
    ['GET', '/api/v1/oncall', VIEWER, undefined, 200],
    ['GET', '/api/v1/report?from=2026-12-01T00:00:00%2B08:00&to=2026-12-02T00:00:00%2B08:00', VIEWER, undefined, 200],
    ['GET', '/api/v1/report?from=yesterday&to=2026-12-02T00:00:00Z', VIEWER, undefined, 400],
    ['GET', '/api/v1/report?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z', VIEWER, undefined, 400],
    ['GET', '/api/v1/report?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z', undefined, undefined, 401],
    ['POST', '/api/v1/schedules/water-oncall/overrides', OPERATOR, { member: 'li-si', starts_at: '2026-12-01T08:30:00+08:00', ends_at: '2026-12-01T20:30:00+08:00' }, 201],
    ['POST', '/api/v1/schedules/nope/overrides', OPERATOR, { member: 'li-si', starts_at: '2026-12-01T08:30:00+08:00', ends_at: '2026-12-01T20:30:00+08:00' }, 404],
    ['POST', '/api/v1/schedules/water-oncall/overrides', VIEWER, { member: 'li-si', starts_at: '2026-12-01T08:30:00+08:00', ends_at: '2026-12-01T20:30:00+08:00' }, 403],
  ])('%s %s answers as documented', async (method, url, token, payload, status) => {
    const res = await call(method, url, token, payload);
    expect(res.status).toBe(status);
    expect(openApiMismatches(doc, method, url, status, res.body)).toEqual([]);
  });

  it('documents the text and HTML answers with their media types', async () => {
    expect(Object.keys(doc.paths['/metrics']!.get!.responses['200']!.content!)).toEqual(['text/plain']);
    expect(Object.keys(doc.paths['/ack/{token}']!.get!.responses['404']!.content!)).toEqual(['text/html']);
    expect((await call('GET', '/ack/not-a-valid-token-at-all')).status).toBe(404);
    expect(doc.paths['/api/v1/silences/{id}']!.delete!.responses['204']!.content).toBeUndefined();
  });

  it('the validator catches an answer that is not as documented', () => {
    expect(openApiMismatches(doc, 'GET', '/api/v1/alerts/al_1', 200, { ...alert, level: 'purple', timeline: [] })).toEqual([
      expect.stringContaining('/level must be equal to one of the allowed values'),
    ]);
    expect(openApiMismatches(doc, 'GET', '/api/v1/alerts', 401, { error: 'unauthorized' })).toEqual([expect.stringContaining("must have required property 'message'")]);
    expect(pathTemplate(doc, '/api/v1/alerts/al_1/ack?x=1')).toBe('/api/v1/alerts/{id}/ack');
  });
});
