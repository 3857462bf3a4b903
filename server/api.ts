/**
 * The HTTP API (contract: HTTP API). `buildApi(deps)` returns a fastify instance without listening,
 * so tests inject requests and the composition root decides where it listens.
 *
 * Every route carries its schema (api-schemas.ts, from the zod schemas its handler parses with),
 * and GET /openapi.json is the OpenAPI document @fastify/swagger builds from them.
 */
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type onRequestHookHandler } from 'fastify';
import type { z } from 'zod';
import { constantTimeEqual } from '../ingest/device-auth.js';
import type { Logger } from '../lib/logger.js';
import type { Level } from '../lib/levels.js';
import { packageVersion } from '../lib/package-info.js';
import { registerAckPage, type AckLinksPort } from './ack-page.js';
import {
  actionBody,
  alertDetail,
  alertIdParams,
  alertList,
  alertQuery,
  alertView,
  anyObject,
  assetView,
  markOptionalBodies,
  deviceView,
  healthBody,
  invalidRulesBody,
  listOf,
  reloadBody,
  routeSchema,
  rulesView,
} from './api-schemas.js';
import { auditHook, registerAuditRoutes, type AuditLog } from './audit.js';
import { boardView, type AlertViewFields } from './console/board-view.js';
import { registerConsole, type ConsolePort } from './console/routes.js';
import { CSRF_HEADER, cookieValue, SESSION_COOKIE } from './console/sessions.js';
import { STREAM_ID_HEADER } from './console/stream.js';
import { refuseNul } from './nul-guard.js';
import { ApiError } from './errors.js';
import { registerHttpPush } from './http-ingest.js';
import type { HttpPush } from '../ingest/http-push/http-push.js';
import { registerSilenceRoutes, type SilencesPort } from './silences-api.js';
import { registerCaseRoutes, type CasesPort } from './cases-api.js';
import { registerWorkOrderPage, type WorkOrderLinksPort } from './work-order-page.js';
import type { ConfigReloadOutcome } from './config-reload.js';
import { registerRegistryRoutes, type RegistryPort } from './registry-api.js';
import { registerReportRoutes, type ReportPort } from './report-api.js';
import type { ApiConfig, Role } from './config/schema.js';

const ROLE_RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export interface HealthReport {
  status: 'ok' | 'degraded' | 'unavailable';
  [detail: string]: unknown;
}

/** What the API needs from the alert stage; the AlertService satisfies it. */
export interface AlertsPort {
  list(query: { state?: 'firing' | 'acknowledged' | 'resolved'; level?: Level; assetId?: string; limit?: number }): unknown[];
  /** undefined when there is no such alert. */
  get(id: string): unknown;
  acknowledge(id: string, action: { by: string; note?: string }): unknown;
  resolve(id: string, action: { by: string; note?: string }): unknown;
}

export interface ApiDeps {
  config: ApiConfig;
  logger: Logger;
  alerts: AlertsPort;
  assets: () => unknown[];
  devices: () => unknown[];
  rules: () => unknown;
  /** Reloads the configuration directory (POST /api/v1/config/reload, alias POST /api/v1/rules/reload). */
  reloadRules?: () => ConfigReloadOutcome;
  /** Assets and devices changed at run time, kept in registry.yaml (server/registry-api.ts). */
  registry?: RegistryPort;
  health: () => HealthReport;
  /** The Prometheus text of /metrics. */
  metrics: () => string | Promise<string>;
  /** PEM material for HTTPS (api.tls, read by ingest/tls.ts); absent = plain HTTP. */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
  /** Silences (GET/POST /api/v1/silences, DELETE /api/v1/silences/{id}); the AlertService satisfies it. */
  silences?: SilencesPort;
  /** The acknowledgement page of ack_url links (/ack/<token>); the AlertService satisfies it. */
  ackLinks?: AckLinksPort;
  /** The audit log: every state-changing request recorded (server/audit.ts), GET /api/v1/audit. */
  audit?: Pick<AuditLog, 'record' | 'list'>;
  /** The disposal loop (verify, dismiss, dispatch, close, work orders, on call); the AlertService satisfies it. */
  cases?: CasesPort;
  /** The phone page of work-order links (/wo/<token>); the AlertService satisfies it. */
  workOrderLinks?: WorkOrderLinksPort;
  /** The duty console (server/console/): /console, its sessions (accepted here beside Bearer tokens), /api/v1/stream and /api/v1/series. */
  console?: ConsolePort;
  /** HTTP push of readings by devices (adapters: type http), POST {path}/{asset_id}/{sensor_id}. */
  httpPush?: HttpPush;
  /** The disposal loop's measures (GET /api/v1/report), as watchpost report --json. */
  report?: ReportPort;
}

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const first = result.error.issues[0]!;
    throw new ApiError('bad_request', `${what}${first.path.length ? `.${first.path.join('.')}` : ''}: ${first.message}`);
  }
  return result.data;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: { name: string; role: Role };
  }
}

export function buildApi(deps: ApiDeps) {
  const app = Fastify({
    loggerInstance: deps.logger.child({ module: 'api' }),
    // Per-request lines are noise at a duty room's scrape rate; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.config.max_body_bytes,
    return503OnClosing: true,
    // HTTPS when api.tls is configured (null: plain HTTP); with a CA, clients must present a certificate.
    https: deps.tls ? { cert: deps.tls.cert, key: deps.tls.key, ...(deps.tls.ca ? { ca: deps.tls.ca, requestCert: true, rejectUnauthorized: true } : {}) } : null,
  });
  // The route schemas document; the handlers validate with the zod schemas (same messages), and
  // answers are sent as they are (fast-json-stringify would drop fields a schema does not list).
  app.setValidatorCompiler(() => (value: unknown) => ({ value }));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Watchpost HTTP API',
        version: packageVersion(),
        description: 'JSON; errors are { "error": "<code>", "message": "…" }. Authorization: Bearer <token> except /healthz, /metrics, /openapi.json and /ack/{token}.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'an API token (api.tokens); roles viewer < operator < admin' },
          ...(deps.httpPush ? { device: { type: 'http', scheme: 'basic', description: 'HTTP push: a device id (devices) and its secret' } } : {}),
        },
      },
    },
    transformObject: (document) => ('openapiObject' in document ? markOptionalBodies(document.openapiObject) : document.swaggerObject),
  });

  function tokenPrincipal(token: string): { name: string; role: Role } | undefined {
    let found: { name: string; role: Role } | undefined;
    // Compare with every token, so the time taken does not depend on which one matches.
    for (const t of deps.config.tokens) if (constantTimeEqual(t.token, token) && !found) found = { name: t.name, role: t.role };
    return found;
  }

  function authenticate(req: FastifyRequest): { name: string; role: Role } {
    const header = req.headers.authorization;
    const sessionId = header === undefined && deps.console ? cookieValue(req.headers.cookie, SESSION_COOKIE) : undefined;
    if (sessionId !== undefined) return sessionPrincipal(req, sessionId);
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new ApiError('unauthorized', 'missing Authorization: Bearer <token>');
    const found = tokenPrincipal(match[1]!);
    if (!found) throw new ApiError('unauthorized', 'unknown token');
    return found;
  }

  /** A console session's principal; a state-changing request also needs the session's CSRF token (double submit). */
  function sessionPrincipal(req: FastifyRequest, sessionId: string): { name: string; role: Role } {
    const session = deps.console!.sessions.touch(sessionId);
    // The session's token must still be configured with the same role.
    if (!session || !deps.config.tokens.some((t) => t.name === session.name && t.role === session.role)) {
      throw new ApiError('session_expired', 'the console session has expired or ended; sign in again', 401);
    }
    if (!['GET', 'HEAD', 'OPTIONS'].includes(req.method)) {
      const sent = req.headers[CSRF_HEADER];
      if (typeof sent !== 'string' || !constantTimeEqual(sent, session.csrfToken)) {
        req.tokenName = session.name;
        throw new ApiError('csrf_token_invalid', 'a request signed in by the console cookie needs its X-CSRF-Token header', 403);
      }
    }
    return { name: session.name, role: session.role };
  }

  function requireRole(role: Role): onRequestHookHandler {
    return (req, _reply, done) => {
      try {
        const principal = authenticate(req);
        req.tokenName = principal.name; // the audit log's actor, also when the role is too low
        if (ROLE_RANK[principal.role] < ROLE_RANK[role]) throw new ApiError('forbidden', `this needs the ${role} role`);
        req.principal = principal;
        done();
      } catch (err) {
        done(err as Error);
      }
    };
  }

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; status?: number }, req, reply: FastifyReply) => {
    if (err instanceof ApiError) return reply.code(err.status).send({ error: err.code, message: err.message });
    // The cluster's alert store cannot be reached: the request can be made again once it is back.
    if ((err as { unavailable?: unknown }).unavailable === true) {
      req.log.warn({ err }, 'request refused: the alert store is unavailable');
      return reply.code(503).send({ error: 'unavailable', message: `the alert store is unavailable: ${err.message}` });
    }
    const status = err.status ?? err.statusCode ?? 500;
    if (status === 413) return reply.code(413).send({ error: 'payload_too_large', message: `request body exceeds ${deps.config.max_body_bytes} bytes` });
    if (status >= 400 && status < 500) {
      const code = typeof err.code === 'string' && /^[a-z_]+$/.test(err.code) ? err.code : 'bad_request';
      return reply.code(status).send({ error: code, message: err.message });
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }));

  app.addHook('preValidation', refuseNul);
  if (deps.audit) app.addHook('onSend', auditHook(deps.audit));
  void app.register((api, _options, done) => {
    registerRoutes(api, deps, requireRole);
    if (deps.console) registerConsole(api, deps.console, { requireRole, tokenPrincipal, secureCookie: deps.tls !== undefined });
    done();
  });
  return app;
}

export type RequireRole = (role: Role) => onRequestHookHandler;

function registerRoutes(app: FastifyInstance, deps: ApiDeps, requireRole: RequireRole): void {
  const guard = (role: Role) => ({ onRequest: requireRole(role) });

  app.get('/openapi.json', { schema: routeSchema({ summary: 'this OpenAPI document', tags: ['meta'], responses: { 200: anyObject('the OpenAPI 3.1 document') } }) }, () => app.swagger());

  app.get(
    '/healthz',
    { schema: routeSchema({ summary: 'health of ingest and storage', tags: ['meta'], responses: { 200: healthBody, 503: healthBody.describe('readings cannot be accepted') } }) },
    (_req, reply) => {
      const health = deps.health();
      void reply.code(health.status === 'unavailable' ? 503 : 200).send(health);
    },
  );
  app.get(
    '/metrics',
    {
      schema: routeSchema({
        summary: 'metrics in the Prometheus text format',
        tags: ['meta'],
        responses: { 200: { description: 'Prometheus text exposition format 0.0.4', mediaType: 'text/plain' } },
      }),
    },
    async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(await deps.metrics()),
  );

  app.get(
    '/api/v1/assets',
    { ...guard('viewer'), schema: routeSchema({ summary: 'assets with their latest readings', role: 'viewer', responses: { 200: listOf('assets', assetView) } }) },
    () => ({ assets: deps.assets() }),
  );

  app.get(
    '/api/v1/alerts',
    { ...guard('viewer'), schema: routeSchema({ summary: 'alerts, newest first', role: 'viewer', querystring: alertQuery, responses: { 200: alertList } }) },
    (req, reply) => {
      const q = parse(alertQuery, req.query, 'query');
      const alerts = deps.alerts.list({ state: q.state, level: q.level, assetId: q.asset_id, limit: q.limit });
      // Where the list was read in the console's stream: GET /api/v1/stream?last_event_id= goes on from there.
      if (deps.console) void reply.header(STREAM_ID_HEADER, String(deps.console.stream.latestId()));
      return { alerts: q.view === 'board' ? alerts.map((a) => boardView(a as AlertViewFields)) : alerts };
    },
  );

  app.get(
    '/api/v1/alerts/:id',
    {
      ...guard('viewer'),
      schema: routeSchema({ summary: 'one alert with its timeline (every event and delivery)', role: 'viewer', params: alertIdParams, responses: { 200: alertDetail }, errors: [404] }),
    },
    (req) => {
      const { id } = parse(alertIdParams, req.params, 'path');
      const alert = deps.alerts.get(id);
      if (!alert) throw new ApiError('not_found', `alert ${id} not found`);
      return alert;
    },
  );

  app.post(
    '/api/v1/alerts/:id/ack',
    {
      ...guard('operator'),
      schema: routeSchema({ summary: 'acknowledge: stops escalation', role: 'operator', params: alertIdParams, body: actionBody, responses: { 200: alertView }, errors: [404, 409] }),
    },
    (req) => {
      const { id } = parse(alertIdParams, req.params, 'path');
      const body = parse(actionBody, req.body, 'body');
      return deps.alerts.acknowledge(id, { by: req.principal!.name, note: body?.note });
    },
  );

  app.post(
    '/api/v1/alerts/:id/resolve',
    {
      ...guard('operator'),
      schema: routeSchema({ summary: 'resolve by hand', role: 'operator', params: alertIdParams, body: actionBody, responses: { 200: alertView }, errors: [404, 409] }),
    },
    (req) => {
      const { id } = parse(alertIdParams, req.params, 'path');
      const body = parse(actionBody, req.body, 'body');
      return deps.alerts.resolve(id, { by: req.principal!.name, note: body?.note });
    },
  );

  app.get(
    '/api/v1/devices',
    { ...guard('viewer'), schema: routeSchema({ summary: 'devices with their status (never a secret)', role: 'viewer', responses: { 200: listOf('devices', deviceView) } }) },
    () => ({ devices: deps.devices() }),
  );

  app.get(
    '/api/v1/rules',
    { ...guard('viewer'), schema: routeSchema({ summary: 'the rules in force, with the error of the last reload', role: 'viewer', responses: { 200: rulesView } }) },
    () => deps.rules(),
  );

  // 200 with what changed, or 400 with every error; a refused reload keeps the configuration in force.
  const reload = (code: string, what: string) => (req: FastifyRequest, reply: FastifyReply) => {
    if (!deps.reloadRules) throw new ApiError('not_found', 'reload is not available');
    const outcome = deps.reloadRules();
    if (!outcome.ok) {
      const n = outcome.errors.length;
      return reply
        .code(400)
        .send({ error: code, message: `the configuration has ${n} error${n === 1 ? '' : 's'}; ${what} in force ${what === 'the rules' ? 'are' : 'is'} unchanged`, errors: outcome.errors });
    }
    req.log.info({ by: req.principal?.name, changed: outcome.changed }, 'configuration reloaded through the API');
    const { rules, assets, devices, sections, restartNeeded } = outcome.changes;
    return reply.send({
      reloaded: outcome.changed,
      rules: outcome.rules,
      added: rules.added,
      removed: rules.removed,
      disabled: rules.disabled,
      changed: rules.changed,
      updated: rules.updated,
      no_longer_covered: rules.unmatched.map((a) => ({ rule_id: a.ruleId, asset_id: a.assetId, sensor_id: a.sensorId })),
      sections,
      restart_needed: restartNeeded,
      assets,
      devices,
    });
  };
  app.post(
    '/api/v1/config/reload',
    {
      ...guard('admin'),
      schema: routeSchema({
        summary: 'reload the configuration (every section but the listeners, storage and cluster)',
        role: 'admin',
        responses: { 200: reloadBody },
        errors: [400, 404],
        errorBodies: { 400: invalidRulesBody },
      }),
    },
    reload('invalid_config', 'the configuration'),
  );
  app.post(
    '/api/v1/rules/reload',
    {
      ...guard('admin'),
      schema: routeSchema({
        summary: 'reload the configuration (alias of POST /api/v1/config/reload)',
        role: 'admin',
        responses: { 200: reloadBody },
        errors: [400, 404],
        errorBodies: { 400: invalidRulesBody },
      }),
    },
    reload('invalid_rules', 'the rules'),
  );

  if (deps.registry) registerRegistryRoutes(app, { registry: deps.registry, requireRole });
  if (deps.silences) registerSilenceRoutes(app, { silences: deps.silences, requireRole });
  if (deps.ackLinks) registerAckPage(app, deps.ackLinks);
  if (deps.httpPush) registerHttpPush(app, deps.httpPush);
  if (deps.audit) registerAuditRoutes(app, { audit: deps.audit, requireRole });
  if (deps.cases) registerCaseRoutes(app, { cases: deps.cases, requireRole });
  if (deps.workOrderLinks) registerWorkOrderPage(app, deps.workOrderLinks);
  if (deps.report) registerReportRoutes(app, { report: deps.report, requireRole });
}
