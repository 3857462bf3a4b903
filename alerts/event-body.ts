/** The alert event body (contract: Notifications): webhook body, MQTT payload, input of every message. */
import type { Level } from '../lib/levels.js';
import type { Threshold } from '../rules/types.js';
import type { CaseStatus } from './case-machine.js';
import type { NotificationEvent } from './store.js';
import type { AlertState } from './state-machine.js';

/** The alert object of the alert event body, in the contract's key order. */
export interface AlertBody {
  id: string;
  rule_id: string;
  rule_name: string;
  level: Level;
  state: AlertState;
  asset_id: string;
  asset_name: string;
  asset_type: string;
  street: string;
  sensor_id: string;
  metric: string;
  value: number;
  threshold: Threshold | null;
  started_at: string;
  message: string;
  plan: string[];
  ack_url: string;
  /** The alert's case in the disposal loop. */
  case: CaseBody;
}

export interface CaseBody {
  status: CaseStatus;
  department: string | null;
  work_order_id: string | null;
}

/** A contact a delivery is for. */
export interface RecipientBody {
  id: string;
  name: string;
}

/** The work order a work-order notification is about; `url` is the department's signed phone link. */
export interface WorkOrderBody {
  id: string;
  department: string;
  due_at: string;
  url: string;
}

export interface AlertEventBody {
  delivery_id: string;
  event: NotificationEvent | 'level_dropped';
  tier: number;
  /** The contacts this delivery is for (resolved when it is sent); empty for MQTT events and channels without contacts. */
  to: RecipientBody[];
  work_order?: WorkOrderBody;
  alert: AlertBody;
}

/** Reads a stored body back; throws on anything that is not one. */
export function parseEventBody(text: string): AlertEventBody {
  const body = JSON.parse(text) as AlertEventBody;
  if (!body || typeof body !== 'object' || typeof body.event !== 'string' || !body.alert || typeof body.alert.id !== 'string') {
    throw new Error('not an alert event body');
  }
  return body;
}
