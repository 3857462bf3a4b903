/**
 * The board view of an alert (GET /api/v1/alerts?view=board): only what a board of open alerts
 * shows and filters by, about a third of the full alert view's size. The duty console's board
 * draws from it; anything else about the alert is in GET /api/v1/alerts/{id}.
 */
import { z } from 'zod';
import { LEVELS } from '../../lib/levels.js';

export const ALERT_LIST_VIEWS = ['full', 'board'] as const;
export type AlertListView = (typeof ALERT_LIST_VIEWS)[number];

export const boardAlertView = z
  .strictObject({
    id: z.string(),
    rule_name: z.string(),
    level: z.enum(LEVELS),
    state: z.enum(['firing', 'acknowledged', 'resolved']),
    asset_id: z.string(),
    asset_name: z.string(),
    street: z.string(),
    sensor_id: z.string(),
    metric: z.string(),
    value: z.number(),
    started_at: z.string().describe('RFC 3339 time'),
    case: z.strictObject({ status: z.string(), department: z.string().nullable() }),
  })
  .describe('an alert as a board of open alerts shows it (view=board)');

export type BoardAlertView = z.output<typeof boardAlertView>;

/** The fields of the full alert view (alerts/alert-views.ts) that the board view keeps. */
export interface AlertViewFields {
  id: string;
  rule_name: string;
  level: BoardAlertView['level'];
  state: BoardAlertView['state'];
  asset_id: string;
  asset_name: string;
  street: string;
  sensor_id: string;
  metric: string;
  value: number;
  started_at: string;
  case?: { status: string; department: string | null };
}

export function boardView(a: AlertViewFields): BoardAlertView {
  return {
    id: a.id,
    rule_name: a.rule_name,
    level: a.level,
    state: a.state,
    asset_id: a.asset_id,
    asset_name: a.asset_name,
    street: a.street,
    sensor_id: a.sensor_id,
    metric: a.metric,
    value: a.value,
    started_at: a.started_at,
    case: { status: a.case?.status ?? 'new', department: a.case?.department ?? null },
  };
}
