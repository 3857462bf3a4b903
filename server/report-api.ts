/**
 * GET /api/v1/report?from=&to=: the disposal loop's measures over the alerts that started in
 * [from, to), the same JSON as `watchpost report --json` (alerts/report.ts), from the store the
 * platform has open.
 */
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import type { CaseReport } from '../alerts/report.js';
import { routeSchema } from './api-schemas.js';
import type { Role } from './config/schema.js';
import { ApiError } from './errors.js';
import { parseTs } from './replay-input.js';

/** The report over the cases that started in [from, to) (epoch ms). */
export type ReportPort = (from: number, to: number) => CaseReport;

const zTimeParam = z
  .string()
  .transform((v, ctx) => {
    const ts = parseTs(v);
    if (typeof ts === 'string') {
      ctx.addIssue({ code: 'custom', message: ts.replace(/^ts\b/, 'the time') });
      return z.NEVER;
    }
    return ts;
  })
  .describe('RFC 3339 time such as 2026-12-01T00:00:00+08:00, or epoch milliseconds');

export const reportQuery = z.strictObject({
  from: zTimeParam.describe('cases that started at or after this time: RFC 3339 or epoch milliseconds'),
  to: zTimeParam.describe('cases that started before this time: RFC 3339 or epoch milliseconds'),
});

const stageFigures = z.strictObject({
  count: z.number().int().describe('cases that reached the stage'),
  median_s: z.number().nullable().describe("seconds from the alert's start; null without cases"),
  p90_s: z.number().nullable(),
});

const groupFigures = z.looseObject({
  cases: z.number().int(),
  status: z.record(z.string(), z.number().int()).describe('cases by their status now'),
  stages: z.record(z.string(), stageFigures).describe('ack, verify, dispatch, on_site, close'),
  overdue: z.number().int().describe('work orders found overdue'),
  dismissed: z.number().int(),
  false_alarm_rate: z.number().nullable().describe('dismissed / cases; null without cases'),
});

const falseAlarmRow = z.looseObject({ cases: z.number().int(), dismissed: z.number().int(), rate: z.number(), reasons: z.record(z.string(), z.number().int()) });

export const reportView = z.strictObject({
  from: z.string().describe('RFC 3339 time'),
  to: z.string().describe('RFC 3339 time'),
  total: groupFigures,
  by_department: z.array(groupFigures.extend({ department: z.string() })),
  by_level: z.array(groupFigures.extend({ level: z.string() })),
  false_alarms: z.strictObject({
    by_rule: z.array(falseAlarmRow.extend({ rule_id: z.string() })),
    by_sensor: z.array(falseAlarmRow.extend({ asset_id: z.string(), sensor_id: z.string() })),
  }),
});

export function registerReportRoutes(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's instance carries its pino logger type
  app: FastifyInstance<any, any, any, any>,
  deps: { report: ReportPort; requireRole: (role: Role) => onRequestHookHandler },
): void {
  app.get(
    '/api/v1/report',
    {
      onRequest: deps.requireRole('viewer'),
      schema: routeSchema({
        summary: "the disposal loop's measures over the alerts that started in [from, to): the JSON of watchpost report --json",
        role: 'viewer',
        querystring: reportQuery,
        responses: { 200: reportView },
      }),
    },
    (req) => {
      const result = reportQuery.safeParse(req.query);
      if (!result.success) {
        const first = result.error.issues[0]!;
        throw new ApiError('bad_request', `query${first.path.length ? `.${first.path.join('.')}` : ''}: ${first.message}`);
      }
      const { from, to } = result.data;
      if (!(from < to)) throw new ApiError('bad_request', 'query.from must be before query.to');
      return deps.report(from, to);
    },
  );
}
