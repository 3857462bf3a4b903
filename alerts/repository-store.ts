/**
 * An AlertStore made of one repository per table group and the database under them: every method
 * goes to its repository, transactions and the lifecycle to the database. The SQLite and
 * PostgreSQL stores build theirs on it.
 */
import type {
  AlertFilter,
  AlertKey,
  AlertRecord,
  AlertRepository,
  AlertStore,
  AuditRepository,
  CaseRepository,
  HoldRepository,
  OutboxRepository,
  ReportRepository,
  ScheduleRepository,
  SettingsRepository,
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
} from './store.js';
import type { CaseStatus } from './case-machine.js';

export interface StoreRepositories {
  alerts: AlertRepository;
  outbox: OutboxRepository;
  holds: HoldRepository;
  schedules: ScheduleRepository;
  settings: SettingsRepository;
  cases: CaseRepository;
  audit: AuditRepository;
  report: ReportRepository;
}

/** The database under the repositories: its transactions and its lifecycle. */
export interface StoreDatabase {
  transaction<T>(fn: () => T): T;
  readonly isOpen: boolean;
  close(): void;
}

export abstract class RepositoryAlertStore implements AlertStore {
  protected constructor(
    private readonly repos: StoreRepositories,
    private readonly database: StoreDatabase,
  ) {}

  transaction<T>(fn: () => T): T {
    return this.database.transaction(fn);
  }

  get isOpen(): boolean {
    return this.database.isOpen;
  }

  close(): void {
    this.database.close();
  }

  insertAlert(a: AlertRecord): void {
    this.repos.alerts.insertAlert(a);
  }

  updateAlert(a: AlertRecord): void {
    this.repos.alerts.updateAlert(a);
  }

  getAlert(id: string): AlertRecord | undefined {
    return this.repos.alerts.getAlert(id);
  }

  findOpenAlert(ruleId: string, assetId: string, sensorId: string): AlertRecord | undefined {
    return this.repos.alerts.findOpenAlert(ruleId, assetId, sensorId);
  }

  listAlerts(filter?: AlertFilter): AlertRecord[] {
    return this.repos.alerts.listAlerts(filter);
  }

  openAlerts(ruleId?: string): AlertRecord[] {
    return this.repos.alerts.openAlerts(ruleId);
  }

  alertsWithHeldNotice(): AlertRecord[] {
    return this.repos.alerts.alertsWithHeldNotice();
  }

  openCountsByLevel(): Map<string, number> {
    return this.repos.alerts.openCountsByLevel();
  }

  appendTimeline(entry: Omit<TimelineEntry, 'seq'>): number {
    return this.repos.alerts.appendTimeline(entry);
  }

  timeline(alertId: string): TimelineEntry[] {
    return this.repos.alerts.timeline(alertId);
  }

  pruneResolved(before: number, limit: number): { alerts: number; digests: number } {
    return this.repos.alerts.pruneResolved(before, limit);
  }

  insertOutbox(row: Omit<OutboxRow, 'seq' | 'status' | 'attempts' | 'updatedAt' | 'lastError' | 'digestId'>): void {
    this.repos.outbox.insertOutbox(row);
  }

  getOutbox(deliveryId: string): OutboxRow | undefined {
    return this.repos.outbox.getOutbox(deliveryId);
  }

  outboxForAlert(alertId: string): OutboxRow[] {
    return this.repos.outbox.outboxForAlert(alertId);
  }

  pendingOutboxHeads(): OutboxRow[] {
    return this.repos.outbox.pendingOutboxHeads();
  }

  pendingOutboxRows(afterSeq?: number): PendingRow[] {
    return this.repos.outbox.pendingOutboxRows(afterSeq);
  }

  pendingOutboxCount(): number {
    return this.repos.outbox.pendingOutboxCount();
  }

  resolveOutbox(deliveryId: string, recipients: string[], body: string): void {
    this.repos.outbox.resolveOutbox(deliveryId, recipients, body);
  }

  claimOutbox(deliveryId: string, owner: string, now: number, untilMs: number): boolean {
    return this.repos.outbox.claimOutbox(deliveryId, owner, now, untilMs);
  }

  claimDigest(deliveryId: string, owner: string, now: number, untilMs: number): boolean {
    return this.repos.outbox.claimDigest(deliveryId, owner, now, untilMs);
  }

  updateOutbox(deliveryId: string, change: AttemptChange): void {
    this.repos.outbox.updateOutbox(deliveryId, change);
  }

  notifiedTargets(alertId: string): Array<{ channel: string; to: string[] }> {
    return this.repos.outbox.notifiedTargets(alertId);
  }

  insertDigest(d: Omit<DigestRow, 'status' | 'attempts' | 'updatedAt' | 'lastError'>): void {
    this.repos.outbox.insertDigest(d);
  }

  pendingDigests(): DigestRow[] {
    return this.repos.outbox.pendingDigests();
  }

  getDigest(deliveryId: string): DigestRow | undefined {
    return this.repos.outbox.getDigest(deliveryId);
  }

  updateDigest(deliveryId: string, change: AttemptChange): void {
    this.repos.outbox.updateDigest(deliveryId, change);
  }

  attemptsSince(since: number): Array<{ channelId: string; recipients: string[]; at: number }> {
    return this.repos.outbox.attemptsSince(since);
  }

  insertSilence(s: SilenceRecord): void {
    this.repos.holds.insertSilence(s);
  }

  getSilence(id: string): SilenceRecord | undefined {
    return this.repos.holds.getSilence(id);
  }

  silencesEndingAfter(since: number): SilenceRecord[] {
    return this.repos.holds.silencesEndingAfter(since);
  }

  expiredSilences(now: number, limit?: number): SilenceRecord[] {
    return this.repos.holds.expiredSilences(now, limit);
  }

  deleteSilence(id: string, at: number, by: string): boolean {
    return this.repos.holds.deleteSilence(id, at, by);
  }

  setFlapping(key: AlertKey, since: number | null): void {
    this.repos.holds.setFlapping(key, since);
  }

  flappingKeys(): Array<AlertKey & { since: number }> {
    return this.repos.holds.flappingKeys();
  }

  putSchedule(s: EscalationSchedule): void {
    this.repos.schedules.putSchedule(s);
  }

  getSchedule(alertId: string): EscalationSchedule | undefined {
    return this.repos.schedules.getSchedule(alertId);
  }

  deleteSchedule(alertId: string): void {
    this.repos.schedules.deleteSchedule(alertId);
  }

  dueSchedules(now: number): EscalationSchedule[] {
    return this.repos.schedules.dueSchedules(now);
  }

  nextScheduleDueAfter(now: number): number | undefined {
    return this.repos.schedules.nextScheduleDueAfter(now);
  }

  nextScheduleDue(): number | undefined {
    return this.repos.schedules.nextScheduleDue();
  }

  useAckLink(nonce: string, alertId: string, usedAt: number, expiresAt: number): boolean {
    return this.repos.settings.useAckLink(nonce, alertId, usedAt, expiresAt);
  }

  ackLinkUsed(nonce: string): boolean {
    return this.repos.settings.ackLinkUsed(nonce);
  }

  pruneAckLinks(now: number): void {
    this.repos.settings.pruneAckLinks(now);
  }

  meta(key: string, init: () => string): string {
    return this.repos.settings.meta(key, init);
  }

  getCase(alertId: string): CaseRecord | undefined {
    return this.repos.cases.getCase(alertId);
  }

  getCases(alertIds: readonly string[]): Map<string, CaseRecord> {
    return this.repos.cases.getCases(alertIds);
  }

  putCase(c: CaseRecord): void {
    this.repos.cases.putCase(c);
  }

  dueAckDeadlines(now: number): CaseRecord[] {
    return this.repos.cases.dueAckDeadlines(now);
  }

  nextAckDeadline(): number | undefined {
    return this.repos.cases.nextAckDeadline();
  }

  insertWorkOrder(w: WorkOrderRecord): void {
    this.repos.cases.insertWorkOrder(w);
  }

  updateWorkOrder(w: WorkOrderRecord): void {
    this.repos.cases.updateWorkOrder(w);
  }

  getWorkOrder(id: string): WorkOrderRecord | undefined {
    return this.repos.cases.getWorkOrder(id);
  }

  listWorkOrders(filter?: WorkOrderFilter): WorkOrderRecord[] {
    return this.repos.cases.listWorkOrders(filter);
  }

  dueWorkOrders(now: number): WorkOrderRecord[] {
    return this.repos.cases.dueWorkOrders(now);
  }

  nextWorkOrderDue(): number | undefined {
    return this.repos.cases.nextWorkOrderDue();
  }

  insertOverride(o: OverrideRecord): void {
    this.repos.cases.insertOverride(o);
  }

  overrides(since: number, scheduleId?: string): OverrideRecord[] {
    return this.repos.cases.overrides(since, scheduleId);
  }

  appendAudit(entry: Omit<AuditRecord, 'seq'>): number {
    return this.repos.audit.appendAudit(entry);
  }

  auditEntries(filter?: AuditFilter): AuditRecord[] {
    return this.repos.audit.auditEntries(filter);
  }

  pruneAudit(before: number, limit: number): number {
    return this.repos.audit.pruneAudit(before, limit);
  }

  alertsStartedBetween(from: number, to: number): AlertRecord[] {
    return this.repos.report.alertsStartedBetween(from, to);
  }

  openCaseCounts(): Map<CaseStatus, number> {
    return this.repos.report.openCaseCounts();
  }
}
