/**
 * The duty console's routes (contract: Duty console):
 * - GET /console (and every path under it): the application, from dist/console;
 * - POST /console/session `{ token }`: sign in with an API token; answers the session's CSRF token
 *   and sets the session cookie (HttpOnly, SameSite=Strict, Path=/, Secure under TLS);
 *   GET /console/session: the signed-in session (the page reads its CSRF token after a reload);
 *   DELETE /console/session: sign out;
 * - GET /api/v1/stream (viewer): live alert events as server-sent events (stream.ts), from the
 *   Last-Event-ID header or `?last_event_id=` (GET /api/v1/alerts answers the stream's latest id
 *   in STREAM_ID_HEADER, so a client reads a list and then the stream from where the list was read);
 * - GET /api/v1/series (viewer): a sensor metric's readings (series.ts).
 * Everything else the console shows comes from the same HTTP API everyone uses; the API accepts
 * the session cookie beside Bearer tokens (server/api.ts), with the CSRF token on changes.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import { zId, zMetric } from '../../lib/schema.js';
import type { Logger } from '../../lib/logger.js';
import { anyObject, routeSchema } from '../api-schemas.js';
import type { Role } from '../config/schema.js';
import { ApiError } from '../errors.js';
import type { ConsoleConfig } from './config.js';
import { CSRF_HEADER, cookieValue, SESSION_COOKIE, sessionCookie, type Session, type SessionStore } from './sessions.js';
import type { SeriesSource } from './series.js';
import { contentSecurityPolicy, type ConsoleFiles, type StaticFile } from './static.js';
import { STREAM_ID_HEADER, type AlertStream } from './stream.js';

export interface ConsolePort {
  config: ConsoleConfig;
  sessions: SessionStore;
  stream: AlertStream;
  series: SeriesSource;
  files: ConsoleFiles;
  logger: Logger;
  now: () => number;
}

interface ConsoleAuth {
  requireRole: (role: Role) => onRequestHookHandler;
  tokenPrincipal: (token: string) => { name: string; role: Role } | undefined;
  secureCookie: boolean;
}

const DEFAULT_SERIES_RANGE_MS = 6 * 3_600_000;
const MAX_SERIES_RANGE_MS = 400 * 86_400_000;
const DEFAULT_MAX_POINTS = 500;

const zTimeParam = z.union([
  z
    .string()
    .regex(/^\d{1,15}$/)
    .transform(Number),
  z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
]);

export const signInBody = z.strictObject({ token: z.string().min(1).max(1000).describe('an API token (api.tokens)') });
export const sessionView = z.strictObject({
  name: z.string().describe("the token's name: the actor of what this session does"),
  role: z.enum(['viewer', 'operator', 'admin']),
  csrf_token: z.string().describe(`send it as ${CSRF_HEADER} on every state-changing request signed in by this session`),
  expires_at: z.string().describe('RFC 3339: the latest the session ends (it ends earlier when idle)'),
  idle_timeout_s: z.number().int(),
  map_tiles: z.string().nullable().describe('console.map_tiles'),
  map_attribution: z.string().nullable(),
});
export const streamQuery = z.strictObject({
  last_event_id: z
    .string()
    .regex(/^\d{1,16}$/, 'not an event id')
    .optional()
    .describe(`start after this event (the ${STREAM_ID_HEADER} header of a GET /api/v1/alerts answer); the Last-Event-ID header wins`),
});
export const seriesQuery = z.strictObject({
  asset_id: zId,
  sensor_id: zId,
  metric: zMetric,
  from: zTimeParam.optional().describe('epoch ms or RFC 3339; default: 6 h before `to`'),
  to: zTimeParam.optional().describe('epoch ms or RFC 3339; default: now'),
  max_points: z.coerce.number().int().min(10).max(5000).optional().describe(`at most this many points (default ${DEFAULT_MAX_POINTS}); more readings are averaged into time buckets`),
});
export const seriesView = z.strictObject({
  asset_id: z.string(),
  sensor_id: z.string(),
  metric: z.string(),
  from: z.string(),
  to: z.string(),
  bucket_ms: z.number().int().nullable().describe('the bucket width when readings were averaged; null: the readings themselves'),
  points: z.array(z.looseObject({ t: z.number().describe('epoch ms'), v: z.number(), min: z.number().optional(), max: z.number().optional() })),
});

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const first = result.error.issues[0]!;
    throw new ApiError('bad_request', `${what}${first.path.length ? `.${first.path.join('.')}` : ''}: ${first.message}`);
  }
  return result.data;
}

export function registerConsole(app: FastifyInstance, port: ConsolePort, auth: ConsoleAuth): void {
  const { config, sessions, stream } = port;
  const tags = ['console'];
  const csp = contentSecurityPolicy(config.map_tiles);

  const view = (session: Session) => ({
    name: session.name,
    role: session.role,
    csrf_token: session.csrfToken,
    expires_at: new Date(session.createdAt + config.session_max).toISOString(),
    idle_timeout_s: Math.round(config.session_idle / 1000),
    map_tiles: config.map_tiles ?? null,
    map_attribution: config.map_attribution ?? null,
  });
  const cookieSession = (req: FastifyRequest) => {
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    return id === undefined ? undefined : { id, session: sessions.touch(id) };
  };

  app.post(
    '/console/session',
    { schema: routeSchema({ summary: 'console sign-in with an API token: sets the session cookie', tags, body: signInBody, responses: { 200: sessionView }, errors: [401] }) },
    (req, reply) => {
      const { token } = parse(signInBody, req.body, 'body');
      const principal = auth.tokenPrincipal(token);
      if (!principal) throw new ApiError('unauthorized', 'unknown token');
      req.tokenName = principal.name;
      const created = sessions.create(principal);
      port.logger.info({ name: principal.name, role: principal.role }, 'console sign-in');
      void reply.header('set-cookie', sessionCookie(created.id, { secure: auth.secureCookie, maxAgeSeconds: Math.floor(config.session_max / 1000) })).header('cache-control', 'no-store');
      return view(created.session);
    },
  );

  app.get(
    '/console/session',
    { schema: routeSchema({ summary: 'the console session of the cookie, with its CSRF token', tags, responses: { 200: sessionView }, errors: [401] }) },
    (req, reply) => {
      const found = cookieSession(req);
      if (!found?.session) throw new ApiError('session_expired', 'not signed in, or the session has expired', 401);
      void reply.header('cache-control', 'no-store');
      return view(found.session);
    },
  );

  app.delete(
    '/console/session',
    { schema: routeSchema({ summary: `console sign-out (needs the ${CSRF_HEADER} header)`, tags, responses: { 204: { description: 'signed out', empty: true } }, errors: [401, 403] }) },
    (req, reply) => {
      const found = cookieSession(req);
      if (!found?.session) throw new ApiError('session_expired', 'not signed in, or the session has expired', 401);
      req.tokenName = found.session.name;
      const sent = req.headers[CSRF_HEADER];
      if (sent !== found.session.csrfToken) throw new ApiError('csrf_token_invalid', `sign-out needs the ${CSRF_HEADER} header of the session`, 403);
      sessions.end(found.id);
      port.logger.info({ name: found.session.name }, 'console sign-out');
      return reply
        .header('set-cookie', sessionCookie('', { secure: auth.secureCookie, maxAgeSeconds: 0 }))
        .code(204)
        .send();
    },
  );

  app.get(
    '/api/v1/stream',
    {
      onRequest: auth.requireRole('viewer'),
      schema: routeSchema({
        summary: 'live alert events (server-sent events: ready, alert, reset); reconnect with Last-Event-ID to be sent what was missed',
        role: 'viewer',
        tags,
        querystring: streamQuery,
        responses: { 200: { description: 'text/event-stream; `alert` events carry the alert event body of alerts/{level}/{asset_id}', mediaType: 'text/event-stream' } },
        errors: [503],
      }),
    },
    (req, reply) => {
      // HEAD (fastify adds it to every GET) answers the headers only, and is no stream client.
      if (req.method === 'HEAD') return reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-cache, no-store').send();
      const q = parse(streamQuery, req.query, 'query');
      if (stream.isFull()) throw new ApiError('too_many_clients', 'too many open streams; try again later', 503);
      const header = req.headers['last-event-id'];
      reply.hijack();
      stream.attach(reply.raw, typeof header === 'string' ? header : q.last_event_id);
    },
  );

  app.get(
    '/api/v1/series',
    {
      onRequest: auth.requireRole('viewer'),
      schema: routeSchema({
        summary: "a sensor metric's readings over a time range, averaged into buckets when there are many",
        role: 'viewer',
        tags,
        querystring: seriesQuery,
        responses: { 200: seriesView },
        errors: [503],
      }),
    },
    async (req) => {
      const q = parse(seriesQuery, req.query, 'query');
      const to = q.to ?? port.now();
      const from = q.from ?? to - DEFAULT_SERIES_RANGE_MS;
      if (from > to) throw new ApiError('bad_request', 'query.from: must not be after to');
      if (to - from > MAX_SERIES_RANGE_MS) throw new ApiError('bad_request', 'query: the range is at most 400 days');
      let series;
      try {
        series = await port.series.series({ assetId: q.asset_id, sensorId: q.sensor_id, metric: q.metric, from, to, maxPoints: q.max_points ?? DEFAULT_MAX_POINTS });
      } catch (err) {
        req.log.warn({ err }, 'series query failed');
        throw new ApiError('storage_unavailable', `the readings cannot be read now: ${(err as Error).message}`, 503);
      }
      return { asset_id: q.asset_id, sensor_id: q.sensor_id, metric: q.metric, from: new Date(from).toISOString(), to: new Date(to).toISOString(), ...series };
    },
  );

  const send = (reply: FastifyReply, file: StaticFile | undefined) => {
    if (!file) throw new ApiError('not_found', 'the console is not built: run npm run build');
    return reply
      .header('content-type', file.type)
      .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('content-security-policy', csp)
      .send(file.body);
  };
  // The application's pages (console/src/router.ts); any other path under /console answers the
  // application too, with 404, and it shows its own page for it.
  const assetParams = z.strictObject({ name: z.string() });
  void app.register(
    (scope, _options, done) => {
      const page = (summary: string, params?: z.ZodType) => ({
        schema: routeSchema({ summary, tags, ...(params ? { params } : {}), responses: { 200: { description: 'the console (HTML)', mediaType: 'text/html' } }, errors: [404] }),
      });
      scope.get('/', { ...page('the duty console: the live alert board'), prefixTrailingSlash: 'no-slash' }, (_req, reply) => send(reply, port.files.index()));
      scope.get('/alerts/:id', page('the duty console: one alert', z.strictObject({ id: z.string() })), (_req, reply) => send(reply, port.files.index()));
      for (const [path, what] of [
        ['/map', 'the map'],
        ['/work-orders', 'work orders'],
        ['/oncall', 'who is on call'],
        ['/silences', 'silences'],
      ] as const) {
        scope.get(path, page(`the duty console: ${what}`), (_req, reply) => send(reply, port.files.index()));
      }
      scope.get(
        '/assets/:name',
        { schema: routeSchema({ summary: "the console's scripts and styles", tags, params: assetParams, responses: { 200: anyObject('a file') }, errors: [404] }) },
        (req, reply) => {
          const { name } = parse(assetParams, req.params, 'path');
          const file = port.files.asset(name);
          if (!file) throw new ApiError('not_found', `no console file ${name}`);
          return send(reply, file);
        },
      );
      scope.setNotFoundHandler((req, reply) => {
        if (req.method !== 'GET' && req.method !== 'HEAD') return reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
        return send(reply.code(404), port.files.index());
      });
      done();
    },
    { prefix: '/console' },
  );
}
