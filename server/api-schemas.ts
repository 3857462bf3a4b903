/**
 * The HTTP API's schemas: the zod schemas the handlers parse requests with, the shapes of the
 * answers, and `routeSchema()`, which turns them into the route's JSON Schema for fastify (and
 * so for GET /openapi.json). Requests are validated by the handlers with the zod schemas
 * themselves (one source, the same error messages); fastify only documents them.
 */
import { z } from 'zod';
import { LEVELS } from '../lib/levels.js';
import { silenceInputSchema } from '../alerts/silences.js';
import { ALERT_LIST_VIEWS, boardAlertView } from './console/board-view.js';

// ---- requests ----

export const alertQuery = z.strictObject({
  state: z.enum(['firing', 'acknowledged', 'resolved']).optional(),
  level: z.enum(LEVELS).optional(),
  asset_id: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional().describe('at most this many alerts (default: all)'),
  view: z.enum(ALERT_LIST_VIEWS).optional().describe('full (the default): the alert view; board: only the fields a board of open alerts shows'),
});
export const actionBody = z.strictObject({ note: z.string().max(2000).optional() }).nullish();
export const alertIdParams = z.strictObject({ id: z.string().min(1).max(100) });
export const silenceListQuery = z.strictObject({ state: z.enum(['pending', 'active', 'expired']).optional() });
export const silenceIdParams = z.strictObject({ id: z.string().regex(/^si_[0-9a-f]{16}$/, 'not a silence id') });
export const ackTokenParams = z.strictObject({ token: z.string().describe('the signed token of an ack_url link') });

// ---- answers ----

const zTime = z.string().describe('RFC 3339 time');
const zLevel = z.enum(LEVELS);

export const errorBody = z
  .strictObject({
    error: z.string().describe('a code: bad_request, invalid_request, unauthorized, forbidden, not_found, alert_not_found, alert_resolved, payload_too_large, internal, ...'),
    message: z.string(),
  })
  .describe('an error');

const configError = z.looseObject({ file: z.string(), path: z.string(), message: z.string(), line: z.number().int().optional(), column: z.number().int().optional() });

export const invalidRulesBody = errorBody.extend({ errors: z.array(configError) }).describe('the configuration is invalid; the rules in force are unchanged');

export const healthBody = z
  .looseObject({
    status: z.enum(['ok', 'degraded', 'unavailable']),
    broker: z.enum(['up', 'down']).optional(),
    storage: z.looseObject({ state: z.string() }).nullable().optional(),
    open_alerts: z.record(z.string(), z.number().int()).optional(),
  })
  .describe('ok; degraded while InfluxDB is unreachable and readings are spooled; unavailable (503) when readings cannot be accepted');

export const assetView = z.looseObject({
  id: z.string(),
  type: z.string(),
  name: z.string(),
  street: z.string(),
  location: z.tuple([z.number(), z.number()]).nullable().describe('[lon, lat]'),
  alert_level: zLevel.nullable().describe('the highest level of its open alerts'),
  open_alerts: z.number().int(),
  latest: z.array(z.looseObject({ sensor_id: z.string(), metric: z.string(), value: z.number(), ts: zTime })),
});

export const deviceView = z.looseObject({
  id: z.string(),
  assets: z.array(z.string()),
  status: z.string().describe('online, offline or unknown (not seen since the start)'),
  since: zTime.nullable(),
  last_seen: zTime.nullable().optional().describe("the device's last message, connection or disconnection since the start"),
});

export const alertView = z.looseObject({
  id: z.string(),
  rule_id: z.string(),
  rule_name: z.string(),
  level: zLevel,
  state: z.enum(['firing', 'acknowledged', 'resolved']),
  asset_id: z.string(),
  asset_name: z.string(),
  asset_type: z.string(),
  street: z.string(),
  sensor_id: z.string(),
  metric: z.string(),
  value: z.number(),
  threshold: z.union([z.number(), z.tuple([z.number(), z.number()])]).nullable(),
  started_at: zTime,
  message: z.string(),
  plan: z.array(z.string()),
  ack_url: z.string().describe("the alert's API URL (signed links are in notifications only)"),
  updated_at: zTime,
  acknowledged_at: zTime.nullable(),
  acknowledged_by: z.string().nullable(),
  resolved_at: zTime.nullable(),
  resolved_by: z.string().nullable(),
  resolve_reason: z.string().nullable(),
  escalation: z.string().nullable(),
  tier: z.number().int().nullable().describe('the last escalation tier notified'),
});

/** GET /api/v1/alerts: full alert views, or board views with view=board. */
export const alertList = z.strictObject({ alerts: z.array(z.union([alertView, boardAlertView])).describe('alert views; with view=board, board views') });

export const timelineEntry = z.looseObject({ seq: z.number().int(), at: zTime, kind: z.enum(['event', 'delivery']), type: z.string() });

export const alertDetail = alertView.extend({ timeline: z.array(timelineEntry).describe('every event and delivery, oldest first') });

export const silenceView = z.looseObject({
  id: z.string(),
  matchers: z.record(z.string(), z.array(z.string())),
  starts_at: zTime,
  ends_at: zTime,
  reason: z.string(),
  created_by: z.string(),
  created_at: zTime,
  state: z.enum(['pending', 'active', 'expired']),
});

export const rulesView = z.looseObject({
  rules: z.array(z.looseObject({ id: z.string(), kind: z.string() })),
  loaded_at: zTime,
  last_reload: z.looseObject({ at: zTime, trigger: z.string(), ok: z.boolean() }).nullable(),
  error: z.looseObject({ at: zTime, trigger: z.string(), message: z.string(), errors: z.array(configError) }).nullable(),
});

export const reloadBody = z.looseObject({
  reloaded: z.boolean().describe('whether anything changed'),
  rules: z.number().int().describe('rules in force'),
  added: z.array(z.string()),
  removed: z.array(z.string()),
  disabled: z.array(z.string()),
  changed: z.array(z.string()),
  updated: z.array(z.string()),
  no_longer_covered: z.array(z.looseObject({ rule_id: z.string(), asset_id: z.string(), sensor_id: z.string() })),
});

export { silenceInputSchema };

/** `{ <key>: [item, ...] }`. */
export function listOf(key: string, item: z.ZodType): z.ZodType {
  return z.strictObject({ [key]: z.array(item) });
}

/** Any JSON object. */
export function anyObject(description: string): z.ZodType {
  return z.looseObject({}).describe(description);
}

// ---- route schemas ----

type Json = Record<string, unknown>;

/** Marks an operation whose body may be left out (@fastify/swagger marks every body required). */
const OPTIONAL_BODY = 'x-optional-body';

/** For @fastify/swagger's transformObject: bodies that may be left out are not required. */
export function markOptionalBodies<T extends { paths?: object }>(document: T): T {
  for (const ops of Object.values((document.paths ?? {}) as Record<string, Record<string, Json>>)) {
    for (const op of Object.values(ops)) {
      if (!op[OPTIONAL_BODY]) continue;
      delete op[OPTIONAL_BODY];
      (op.requestBody as Json).required = false;
    }
  }
  return document;
}

export function toJsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  // nullish bodies: documented as the object (an empty body is accepted too).
  const inner = schema instanceof z.ZodOptional || schema instanceof z.ZodNullable ? (schema.unwrap() as z.ZodType) : schema;
  const json = z.toJSONSchema(inner instanceof z.ZodOptional || inner instanceof z.ZodNullable ? (inner.unwrap() as z.ZodType) : inner, { io, unrepresentable: 'any' }) as Json;
  delete json.$schema;
  return json;
}

const ERROR_STATUS: Record<number, string> = {
  400: 'the request is not valid',
  401: 'no Authorization: Bearer <token>, or an unknown token',
  403: 'the token lacks the role this needs',
  404: 'not found',
  409: 'a conflict with the current state',
  413: 'the request body is too large',
  500: 'an internal error',
};

export type Role = 'viewer' | 'operator' | 'admin';

export interface RouteDoc {
  summary: string;
  /** Needs a token with at least this role; absent: no authentication. */
  role?: Role;
  params?: z.ZodType;
  querystring?: z.ZodType;
  body?: z.ZodType;
  /** Success answers by status: a zod schema (JSON), a media type with a string body, or null (no body). */
  responses: Record<number, z.ZodType | { description: string; mediaType: string } | { description: string; empty: true }>;
  /** Error statuses besides those implied (401/403 with a role, 400 with a request schema, 500 always). */
  errors?: number[];
  /** Error statuses answered with another body than { error, message }. */
  errorBodies?: Record<number, z.ZodType>;
  tags?: string[];
  /** Media types of the body; default application/json. */
  consumes?: string[];
}

/** A fastify route schema from the route's zod schemas: what /openapi.json describes. */
export function routeSchema(doc: RouteDoc): Json {
  const schema: Json = { summary: doc.summary, tags: doc.tags ?? ['api'] };
  if (doc.role) {
    schema.security = [{ bearer: [] }];
    schema.description = `Role: ${doc.role} or above.`;
  }
  if (doc.params) schema.params = toJsonSchema(doc.params, 'input');
  if (doc.querystring) schema.querystring = toJsonSchema(doc.querystring, 'input');
  if (doc.body) schema.body = toJsonSchema(doc.body, 'input');
  if (doc.body?.safeParse(undefined).success) schema[OPTIONAL_BODY] = true;
  if (doc.consumes) schema.consumes = doc.consumes;
  const response: Json = {};
  for (const [status, answer] of Object.entries(doc.responses)) {
    if (answer instanceof z.ZodType) response[status] = { description: answer.description ?? 'OK', ...toJsonSchema(answer, 'output') };
    else if ('empty' in answer) response[status] = { type: 'null', description: answer.description };
    else response[status] = { description: answer.description, content: { [answer.mediaType]: { schema: { type: 'string' } } } };
  }
  const errors = new Set(doc.errors ?? []);
  if (doc.params || doc.querystring || doc.body) errors.add(400);
  if (doc.body) errors.add(413);
  if (doc.role) {
    errors.add(401);
    errors.add(403);
  }
  errors.add(500);
  for (const status of [...errors].sort()) {
    const body = doc.errorBodies?.[status] ?? errorBody;
    response[status] = { ...toJsonSchema(body, 'output'), description: body === errorBody ? (ERROR_STATUS[status] ?? 'an error') : (body.description ?? 'an error') };
  }
  schema.response = response;
  return schema;
}

// ---- the acknowledgement page (server/ack-page.ts) ----

const html = (description: string) => ({ description, mediaType: 'text/html' });
const ackPageAnswers = {
  404: html('the link is not valid'),
  409: html('the link was used already, or the alert is resolved'),
  410: html('the link has expired'),
};

/** The phone page behind a notification's ack_url: the signed token is the only credential. */
export const ACK_PAGE_SCHEMAS = {
  get: routeSchema({
    summary: 'the acknowledgement page of an ack_url link',
    tags: ['ack page'],
    params: ackTokenParams,
    responses: { 200: html('the alert, its plan and history, and the acknowledge form'), ...ackPageAnswers },
  }),
  post: routeSchema({
    summary: "acknowledge through an ack_url link (the page's form); uses the link up",
    tags: ['ack page'],
    params: ackTokenParams,
    body: z.looseObject({ note: z.string().optional().describe('kept to 500 characters') }).optional(),
    consumes: ['application/x-www-form-urlencoded'],
    responses: { 200: html('acknowledged (or it was already)'), ...ackPageAnswers },
  }),
};
