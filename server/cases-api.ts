/**
 * The disposal loop through the HTTP API (contract: Departments, on-call schedules and the
 * disposal loop): verify, dismiss, dispatch and close an alert's case (operator), work orders and
 * who is on call (viewer), on-call overrides (operator). 400 names the field; 404 an unknown
 * alert, department or schedule; 409 a move the case's state machine forbids, with the case's
 * current status (`{ "error": "illegal_case_move", "message", "status" }`).
 */
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import { CASE_STATUSES, DISMISS_REASONS, type DismissReason } from '../alerts/case-machine.js';
import { isAlertError } from '../alerts/errors.js';
import { WORK_ORDER_STATUSES, type WorkOrderFilter } from '../alerts/store.js';
import { alertIdParams, alertView, errorBody, listOf, routeSchema } from './api-schemas.js';
import type { Role } from './config/schema.js';
import { ApiError } from './errors.js';

export interface CasesPort {
  verify(id: string, action: { by: string; note?: string }): unknown;
  dismiss(id: string, reason: DismissReason, action: { by: string; note?: string }): unknown;
  dispatch(id: string, input: { by: string; note?: string; department?: string; due?: string }): unknown;
  close(id: string, input: { by: string; note?: string; outcome?: string }): unknown;
  workOrders(filter: WorkOrderFilter): unknown[];
  onCall(): unknown[];
  createOverride(scheduleId: string, input: { member: string; starts_at: string; ends_at: string }, by: string): unknown;
}

const zId = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . -');
const zNote = z.string().max(2000);
const zTime = z.string().describe('RFC 3339 time');
const zRfc3339 = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/, 'must be an RFC 3339 time such as 2026-12-01T08:30:00+08:00');

export const verifyBody = z.strictObject({ note: zNote.optional() }).nullish();
export const dismissBody = z.strictObject({ reason: z.enum(DISMISS_REASONS), note: zNote.optional() });
export const dispatchBody = z
  .strictObject({
    department: zId.optional().describe("a department id, or `owner` (the asset's owner); default: the rule's dispatch default, else owner"),
    note: zNote.optional(),
    due: z.string().max(40).optional().describe("a duration (30m, 2h, 1d) or an RFC 3339 time; default: the rule's due time for the alert's level"),
  })
  .nullish();
export const closeBody = z.strictObject({ note: zNote.optional(), outcome: z.string().min(1).max(200).optional().describe('how the case ended, e.g. resolved, false_alarm') }).nullish();
export const workOrderQuery = z.strictObject({
  department: zId.optional(),
  status: z.enum(WORK_ORDER_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
export const scheduleParams = z.strictObject({ id: zId });
export const overrideBody = z.strictObject({ member: zId.describe('a contact id'), starts_at: zRfc3339, ends_at: zRfc3339 });

const workOrderView = z.looseObject({
  id: z.string(),
  alert_id: z.string(),
  department: z.string(),
  department_name: z.string(),
  status: z.enum(WORK_ORDER_STATUSES),
  note: z.string().nullable(),
  created_by: z.string(),
  created_at: zTime,
  due_at: zTime,
  overdue: z.boolean(),
  arrived_at: zTime.nullable(),
  closed_at: zTime.nullable(),
  closed_by: z.string().nullable(),
  outcome: z.string().nullable(),
});
const caseAlertView = alertView.extend({ case: z.looseObject({ status: z.enum(CASE_STATUSES), department: z.string().nullable(), work_order_id: z.string().nullable() }) });
const onCallMember = z.looseObject({ member: z.string(), name: z.string(), from: zTime, until: zTime, override_id: z.string().optional() });
const onCallView = z.looseObject({ schedule: z.string(), time_zone: z.string(), current: onCallMember, next: onCallMember });
const overrideView = z.looseObject({ id: z.string(), schedule: z.string(), member: z.string(), starts_at: zTime, ends_at: zTime, created_by: z.string(), created_at: zTime });
const illegalMoveBody = errorBody.extend({ status: z.enum(CASE_STATUSES).describe("the case's current status") }).describe('the case cannot make this move from its current status');

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const first = result.error.issues[0]!;
    throw new ApiError('bad_request', `${what}${first.path.length ? `.${first.path.join('.')}` : ''}: ${first.message}`);
  }
  return result.data;
}

/** Runs a case move; an illegal one answers 409 with the case's current status. */
function move(reply: { code(status: number): { send(body: unknown): unknown } }, fn: () => unknown): unknown {
  try {
    return fn();
  } catch (error) {
    if (isAlertError(error) && error.code === 'illegal_case_move') {
      return reply.code(409).send({ error: error.code, message: error.message, status: error.caseStatus });
    }
    throw error;
  }
}

export function registerCaseRoutes(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's instance carries its pino logger type
  app: FastifyInstance<any, any, any, any>,
  deps: { cases: CasesPort; requireRole: (role: Role) => onRequestHookHandler },
): void {
  const operator = { onRequest: deps.requireRole('operator') };
  const viewer = { onRequest: deps.requireRole('viewer') };
  const tags = ['disposal loop'];
  const moveDoc = (summary: string, body: z.ZodType, errors: number[] = [404, 409]) =>
    routeSchema({ summary, role: 'operator', tags, params: alertIdParams, body, responses: { 200: caseAlertView }, errors, errorBodies: { 409: illegalMoveBody } });

  app.post('/api/v1/alerts/:id/verify', { ...operator, schema: moveDoc('研判确认: the alarm is real (acknowledges it if still firing)', verifyBody) }, (req, reply) => {
    const { id } = parse(alertIdParams, req.params, 'path');
    const body = parse(verifyBody, req.body, 'body');
    return move(reply, () => deps.cases.verify(id, { by: req.principal!.name, ...(body?.note ? { note: body.note } : {}) }));
  });

  app.post('/api/v1/alerts/:id/dismiss', { ...operator, schema: moveDoc('误报: a false alarm, with a reason; stops escalation', dismissBody) }, (req, reply) => {
    const { id } = parse(alertIdParams, req.params, 'path');
    const body = parse(dismissBody, req.body ?? {}, 'body');
    return move(reply, () => deps.cases.dismiss(id, body.reason, { by: req.principal!.name, ...(body.note ? { note: body.note } : {}) }));
  });

  app.post(
    '/api/v1/alerts/:id/dispatch',
    {
      ...operator,
      schema: routeSchema({
        summary: '派单: a work order for a department, notified with its phone link',
        role: 'operator',
        tags,
        params: alertIdParams,
        body: dispatchBody,
        responses: { 201: z.strictObject({ alert: caseAlertView, work_order: workOrderView }) },
        errors: [404, 409],
        errorBodies: { 409: illegalMoveBody },
      }),
    },
    (req, reply) => {
      const { id } = parse(alertIdParams, req.params, 'path');
      const body = parse(dispatchBody, req.body, 'body');
      const input = {
        by: req.principal!.name,
        ...(body?.note ? { note: body.note } : {}),
        ...(body?.department ? { department: body.department } : {}),
        ...(body?.due ? { due: body.due } : {}),
      };
      const result = move(reply, () => deps.cases.dispatch(id, input));
      return reply.sent ? reply : reply.code(201).send(result);
    },
  );

  app.post('/api/v1/alerts/:id/close', { ...operator, schema: moveDoc('办结: close the case (and its work order)', closeBody) }, (req, reply) => {
    const { id } = parse(alertIdParams, req.params, 'path');
    const body = parse(closeBody, req.body, 'body');
    return move(reply, () => deps.cases.close(id, { by: req.principal!.name, ...(body?.note ? { note: body.note } : {}), ...(body?.outcome ? { outcome: body.outcome } : {}) }));
  });

  app.get(
    '/api/v1/work-orders',
    {
      ...viewer,
      schema: routeSchema({
        summary: 'work orders, newest first',
        role: 'viewer',
        tags,
        querystring: workOrderQuery,
        responses: { 200: listOf('work_orders', workOrderView) },
        errors: [404],
      }),
    },
    (req) => {
      const q = parse(workOrderQuery, req.query, 'query');
      return {
        work_orders: deps.cases.workOrders({ ...(q.department ? { department: q.department } : {}), ...(q.status ? { status: q.status } : {}), ...(q.limit ? { limit: q.limit } : {}) }),
      };
    },
  );

  app.get(
    '/api/v1/oncall',
    {
      ...viewer,
      schema: routeSchema({ summary: 'for each schedule: who is on call now and who is next, with times', role: 'viewer', tags, responses: { 200: listOf('schedules', onCallView) } }),
    },
    () => ({
      schedules: deps.cases.onCall(),
    }),
  );

  app.post(
    '/api/v1/schedules/:id/overrides',
    {
      ...operator,
      schema: routeSchema({
        summary: 'a temporary swap: member is on call from starts_at to ends_at (the latest override wins)',
        role: 'operator',
        tags,
        params: scheduleParams,
        body: overrideBody,
        responses: { 201: overrideView },
        errors: [404],
      }),
    },
    (req, reply) => {
      const { id } = parse(scheduleParams, req.params, 'path');
      const body = parse(overrideBody, req.body ?? {}, 'body');
      return reply.code(201).send(deps.cases.createOverride(id, body, req.principal!.name));
    },
  );
}
