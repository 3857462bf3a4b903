/** A stored alert for store tests: a red strain alert of one bridge sensor, firing at ALERT_T0. */
import type { AlertRecord } from '../../alerts/store.js';

export const ALERT_T0 = Date.UTC(2025, 10, 28, 2, 0, 0);

export function sampleAlert(id: string, extra: Partial<AlertRecord> = {}): AlertRecord {
  return {
    id,
    ruleId: 'bridge-strain',
    assetId: 'lg-bridge-001',
    sensorId: 'strain-01',
    metric: 'strain',
    level: 'red',
    state: 'firing',
    value: 312.5,
    threshold: [300, 400],
    eventTs: ALERT_T0 - 1000,
    startedAt: ALERT_T0,
    updatedAt: ALERT_T0,
    acknowledgedAt: null,
    acknowledgedBy: null,
    resolvedAt: null,
    resolvedBy: null,
    resolveReason: null,
    ruleName: '主梁应变超限',
    assetName: '龙岗河大桥',
    assetType: 'bridge',
    street: '龙城街道',
    message: '应变 312.5',
    plan: ['核查'],
    escalationPolicy: 'bridge-duty',
    lastTier: null,
    heldNotice: null,
    ...extra,
  };
}
