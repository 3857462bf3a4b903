/** The shapes of the HTTP API's answers the console reads (docs/http-api.md). */
export type Level = 'blue' | 'yellow' | 'orange' | 'red';
export const LEVELS: Level[] = ['red', 'orange', 'yellow', 'blue'];
export type CaseStatus = 'new' | 'acknowledged' | 'verified' | 'dismissed' | 'dispatched' | 'on_site' | 'closed';
export const CASE_STATUSES: CaseStatus[] = ['new', 'acknowledged', 'verified', 'dismissed', 'dispatched', 'on_site', 'closed'];
export const DISMISS_REASONS = ['sensor_fault', 'maintenance', 'test', 'environment', 'duplicate', 'other'] as const;

export interface Session {
  name: string;
  role: 'viewer' | 'operator' | 'admin';
  csrf_token: string;
  expires_at: string;
  idle_timeout_s: number;
  map_tiles: string | null;
  map_attribution: string | null;
}

export interface Device {
  id: string;
  assets: string[];
  status: 'online' | 'offline' | 'unknown';
  since: string | null;
  last_seen?: string | null;
}

export interface Alert {
  id: string;
  rule_id: string;
  rule_name: string;
  level: Level;
  state: 'firing' | 'acknowledged' | 'resolved';
  asset_id: string;
  asset_name: string;
  asset_type: string;
  street: string;
  sensor_id: string;
  metric: string;
  value: number;
  threshold: number | [number, number] | null;
  started_at: string;
  message: string;
  plan: string[];
  case?: { status: CaseStatus; department: string | null; work_order_id: string | null };
  updated_at?: string;
  acknowledged_by?: string | null;
  resolved_at?: string | null;
  dismiss_reason?: string | null;
}

/** An alert as the board shows it: GET /api/v1/alerts?view=board. */
export interface BoardAlert {
  id: string;
  rule_name: string;
  level: Level;
  state: Alert['state'];
  asset_id: string;
  asset_name: string;
  street: string;
  sensor_id: string;
  metric: string;
  value: number;
  started_at: string;
  case: { status: CaseStatus; department: string | null };
}

export interface TimelineEntry {
  seq: number;
  at: string;
  kind: 'event' | 'delivery';
  type: string;
  [field: string]: unknown;
}

export interface AlertDetail extends Alert {
  timeline: TimelineEntry[];
}

export interface AlertEvent {
  event: string;
  alert: Alert;
  work_order?: { id: string; department: string; due_at: string };
}

export interface Asset {
  id: string;
  type: string;
  name: string;
  street: string;
  location: [number, number] | null;
  alert_level: Level | null;
  open_alerts: number;
  latest: Array<{ sensor_id: string; metric: string; value: number; ts: string }>;
}

export interface Silence {
  id: string;
  matchers: Record<string, string[]>;
  starts_at: string;
  ends_at: string;
  reason: string;
  created_by: string;
  state: 'pending' | 'active' | 'expired';
}

export interface WorkOrder {
  id: string;
  alert_id: string;
  department: string;
  department_name: string;
  status: string;
  note: string | null;
  created_by: string;
  created_at: string;
  due_at: string;
  overdue: boolean;
  arrived_at: string | null;
  closed_at: string | null;
  outcome: string | null;
}

export interface OnCallMember {
  member: string;
  name: string;
  from: string;
  until: string;
}

export interface OnCall {
  schedule: string;
  time_zone: string;
  current: OnCallMember;
  next: OnCallMember;
}

export interface RuleConfig {
  id: string;
  name?: string;
  kind: string;
  levels?: Partial<Record<Level, { above?: number; below?: number; outside?: [number, number] }>>;
  signal?: { kind: string };
}

export interface SeriesAnswer {
  points: Array<{ t: number; v: number; min?: number; max?: number }>;
  bucket_ms: number | null;
}

export interface StageFigures {
  count: number;
  median_s: number | null;
  p90_s: number | null;
}

/** GET /api/v1/report: the figures the console shows (the answer holds more). */
export interface CaseReport {
  from: string;
  to: string;
  total: {
    cases: number;
    stages: Record<'ack' | 'verify' | 'dispatch' | 'on_site' | 'close', StageFigures>;
    overdue: number;
    dismissed: number;
    false_alarm_rate: number | null;
  };
}
