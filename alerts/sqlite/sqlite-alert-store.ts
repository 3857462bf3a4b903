/**
 * The SQLite alert store: `${dataDir}/alerts.db` (database.ts, migrations.ts), one repository per
 * table group, behind the AlertStore interface (../store.ts).
 */
import type {
  AlertFilter,
  AlertKey,
  AlertRecord,
  AlertStore,
  AttemptChange,
  AuditFilter,
  AuditRecord,
  CaseRecord,
  DigestRow,
  EscalationSchedule,
  OutboxRow,
  OverrideRecord,
  PendingRow,
  SilenceRecord,
  TimelineEntry,
  WorkOrderFilter,
  WorkOrderRecord,
} from '../store.js';
import type { CaseStatus } from '../case-machine.js';
import { SqliteCaseRepository } from './case-repository.js';
import { SqliteAlertRepository } from './alert-repository.js';
import { SqliteAuditRepository } from './audit-repository.js';
import { SqliteReportRepository } from './report-repository.js';
import { AlertsDatabase } from './database.js';
import { SqliteHoldRepository } from './hold-repository.js';
import { SqliteOutboxRepository } from './outbox-repository.js';
import { SqliteScheduleRepository } from './schedule-repository.js';
import { SqliteSettingsRepository } from './settings-repository.js';

export class SqliteAlertStore implements AlertStore {
  private readonly alerts: SqliteAlertRepository;
  private readonly outbox: SqliteOutboxRepository;
  private readonly holds: SqliteHoldRepository;
  private readonly schedules: SqliteScheduleRepository;
  private readonly settings: SqliteSettingsRepository;
  private readonly cases: SqliteCaseRepository;
  private readonly audit: SqliteAuditRepository;
  private readonly report: SqliteReportRepository;

  private constructor(private readonly db: AlertsDatabase) {
    this.alerts = new SqliteAlertRepository(db);
    this.outbox = new SqliteOutboxRepository(db);
    this.holds = new SqliteHoldRepository(db);
    this.schedules = new SqliteScheduleRepository(db);
    this.settings = new SqliteSettingsRepository(db);
    this.cases = new SqliteCaseRepository(db);
    this.audit = new SqliteAuditRepository(db);
    this.report = new SqliteReportRepository(db);
  }

  /** Opens (creating and migrating if needed) `${dataDir}/alerts.db`. */
  static open(dataDir: string): SqliteAlertStore {
    return new SqliteAlertStore(AlertsDatabase.open(dataDir));
  }

  /** Opens an existing `${dataDir}/alerts.db` for reading only (a report beside a running platform); every write throws. */
  static openReadOnly(dataDir: string): SqliteAlertStore {
    return new SqliteAlertStore(AlertsDatabase.openReadOnly(dataDir));
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn);
  }

  get isOpen(): boolean {
    return this.db.isOpen;
  }

  close(): void {
    this.db.close();
  }

  insertAlert(a: AlertRecord): void {
    this.alerts.insertAlert(a);
  }

  updateAlert(a: AlertRecord): void {
    this.alerts.updateAlert(a);
  }

  getAlert(id: string): AlertRecord | undefined {
    return this.alerts.getAlert(id);
  }

  findOpenAlert(ruleId: string, assetId: string, sensorId: string): AlertRecord | undefined {
    return this.alerts.findOpenAlert(ruleId, assetId, sensorId);
  }

  listAlerts(filter?: AlertFilter): AlertRecord[] {
    return this.alerts.listAlerts(filter);
  }

  openAlerts(ruleId?: string): AlertRecord[] {
    return this.alerts.openAlerts(ruleId);
  }

  alertsWithHeldNotice(): AlertRecord[] {
    return this.alerts.alertsWithHeldNotice();
  }

  openCountsByLevel(): Map<string, number> {
    return this.alerts.openCountsByLevel();
  }

  appendTimeline(entry: Omit<TimelineEntry, 'seq'>): number {
    return this.alerts.appendTimeline(entry);
  }

  timeline(alertId: string): TimelineEntry[] {
    return this.alerts.timeline(alertId);
  }

  pruneResolved(before: number, limit: number): { alerts: number; digests: number } {
    return this.alerts.pruneResolved(before, limit);
  }

  insertOutbox(row: Omit<OutboxRow, 'seq' | 'status' | 'attempts' | 'updatedAt' | 'lastError' | 'digestId'>): void {
    this.outbox.insertOutbox(row);
  }

  getOutbox(deliveryId: string): OutboxRow | undefined {
    return this.outbox.getOutbox(deliveryId);
  }

  outboxForAlert(alertId: string): OutboxRow[] {
    return this.outbox.outboxForAlert(alertId);
  }

  pendingOutboxHeads(): OutboxRow[] {
    return this.outbox.pendingOutboxHeads();
  }

  pendingOutboxRows(afterSeq?: number): PendingRow[] {
    return this.outbox.pendingOutboxRows(afterSeq);
  }

  pendingOutboxCount(): number {
    return this.outbox.pendingOutboxCount();
  }

  resolveOutbox(deliveryId: string, recipients: string[], body: string): void {
    this.outbox.resolveOutbox(deliveryId, recipients, body);
  }

  claimOutbox(deliveryId: string, owner: string, now: number, untilMs: number): boolean {
    return this.outbox.claimOutbox(deliveryId, owner, now, untilMs);
  }

  claimDigest(deliveryId: string, owner: string, now: number, untilMs: number): boolean {
    return this.outbox.claimDigest(deliveryId, owner, now, untilMs);
  }

  updateOutbox(deliveryId: string, change: AttemptChange): void {
    this.outbox.updateOutbox(deliveryId, change);
  }

  notifiedTargets(alertId: string): Array<{ channel: string; to: string[] }> {
    return this.outbox.notifiedTargets(alertId);
  }

  insertDigest(d: Omit<DigestRow, 'status' | 'attempts' | 'updatedAt' | 'lastError'>): void {
    this.outbox.insertDigest(d);
  }

  pendingDigests(): DigestRow[] {
    return this.outbox.pendingDigests();
  }

  getDigest(deliveryId: string): DigestRow | undefined {
    return this.outbox.getDigest(deliveryId);
  }

  updateDigest(deliveryId: string, change: AttemptChange): void {
    this.outbox.updateDigest(deliveryId, change);
  }

  attemptsSince(since: number): Array<{ channelId: string; recipients: string[]; at: number }> {
    return this.outbox.attemptsSince(since);
  }

  insertSilence(s: SilenceRecord): void {
    this.holds.insertSilence(s);
  }

  getSilence(id: string): SilenceRecord | undefined {
    return this.holds.getSilence(id);
  }

  silencesEndingAfter(since: number): SilenceRecord[] {
    return this.holds.silencesEndingAfter(since);
  }

  expiredSilences(now: number, limit?: number): SilenceRecord[] {
    return this.holds.expiredSilences(now, limit);
  }

  deleteSilence(id: string, at: number, by: string): boolean {
    return this.holds.deleteSilence(id, at, by);
  }

  setFlapping(key: AlertKey, since: number | null): void {
    this.holds.setFlapping(key, since);
  }

  flappingKeys(): Array<AlertKey & { since: number }> {
    return this.holds.flappingKeys();
  }

  putSchedule(s: EscalationSchedule): void {
    this.schedules.putSchedule(s);
  }

  getSchedule(alertId: string): EscalationSchedule | undefined {
    return this.schedules.getSchedule(alertId);
  }

  deleteSchedule(alertId: string): void {
    this.schedules.deleteSchedule(alertId);
  }

  dueSchedules(now: number): EscalationSchedule[] {
    return this.schedules.dueSchedules(now);
  }

  nextScheduleDueAfter(now: number): number | undefined {
    return this.schedules.nextScheduleDueAfter(now);
  }

  nextScheduleDue(): number | undefined {
    return this.schedules.nextScheduleDue();
  }

  useAckLink(nonce: string, alertId: string, usedAt: number, expiresAt: number): boolean {
    return this.settings.useAckLink(nonce, alertId, usedAt, expiresAt);
  }

  ackLinkUsed(nonce: string): boolean {
    return this.settings.ackLinkUsed(nonce);
  }

  pruneAckLinks(now: number): void {
    this.settings.pruneAckLinks(now);
  }

  meta(key: string, init: () => string): string {
    return this.settings.meta(key, init);
  }

  getCase(alertId: string): CaseRecord | undefined {
    return this.cases.getCase(alertId);
  }

  putCase(c: CaseRecord): void {
    this.cases.putCase(c);
  }

  dueAckDeadlines(now: number): CaseRecord[] {
    return this.cases.dueAckDeadlines(now);
  }

  nextAckDeadline(): number | undefined {
    return this.cases.nextAckDeadline();
  }

  insertWorkOrder(w: WorkOrderRecord): void {
    this.cases.insertWorkOrder(w);
  }

  updateWorkOrder(w: WorkOrderRecord): void {
    this.cases.updateWorkOrder(w);
  }

  getWorkOrder(id: string): WorkOrderRecord | undefined {
    return this.cases.getWorkOrder(id);
  }

  listWorkOrders(filter?: WorkOrderFilter): WorkOrderRecord[] {
    return this.cases.listWorkOrders(filter);
  }

  dueWorkOrders(now: number): WorkOrderRecord[] {
    return this.cases.dueWorkOrders(now);
  }

  nextWorkOrderDue(): number | undefined {
    return this.cases.nextWorkOrderDue();
  }

  insertOverride(o: OverrideRecord): void {
    this.cases.insertOverride(o);
  }

  overrides(since: number, scheduleId?: string): OverrideRecord[] {
    return this.cases.overrides(since, scheduleId);
  }

  appendAudit(entry: Omit<AuditRecord, 'seq'>): number {
    return this.audit.appendAudit(entry);
  }

  auditEntries(filter?: AuditFilter): AuditRecord[] {
    return this.audit.auditEntries(filter);
  }

  pruneAudit(before: number, limit: number): number {
    return this.audit.pruneAudit(before, limit);
  }

  alertsStartedBetween(from: number, to: number): AlertRecord[] {
    return this.report.alertsStartedBetween(from, to);
  }

  openCaseCounts(): Map<CaseStatus, number> {
    return this.report.openCaseCounts();
  }
}
