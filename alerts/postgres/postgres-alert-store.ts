/**
 * The PostgreSQL alert store: the same tables as alerts.db (migrations.ts), one repository per
 * table group, behind the AlertStore interface (../store.ts), reached synchronously through a
 * worker thread (sync-bridge.ts). Several instances share one database: the one-open-alert index,
 * row locks inside transactions and the outbox claims keep them from doing one thing twice.
 */
import { RepositoryAlertStore } from '../repository-store.js';
import { PostgresAlertRepository } from './alert-repository.js';
import { PostgresAuditRepository } from './audit-repository.js';
import { PostgresCaseRepository } from './case-repository.js';
import { PostgresAlertsDatabase, type PostgresOpenOptions } from './database.js';
import { PostgresHoldRepository } from './hold-repository.js';
import { PostgresOutboxRepository } from './outbox-repository.js';
import { PostgresReportRepository } from './report-repository.js';
import { PostgresScheduleRepository } from './schedule-repository.js';
import { PostgresSettingsRepository } from './settings-repository.js';

export type { PostgresOpenOptions } from './database.js';

export class PostgresAlertStore extends RepositoryAlertStore {
  private constructor(private readonly db: PostgresAlertsDatabase) {
    super(
      {
        alerts: new PostgresAlertRepository(db),
        outbox: new PostgresOutboxRepository(db),
        holds: new PostgresHoldRepository(db),
        schedules: new PostgresScheduleRepository(db),
        settings: new PostgresSettingsRepository(db),
        cases: new PostgresCaseRepository(db),
        audit: new PostgresAuditRepository(db),
        report: new PostgresReportRepository(db),
      },
      db,
    );
  }

  /**
   * Connects to `url` (postgres://user:password@host:port/database) and brings its schema to this
   * version. Throws, naming host:port but never the password, for a bad URL, an unreachable server,
   * refused credentials or a schema newer than this version.
   */
  static open(url: string, options: PostgresOpenOptions = {}): PostgresAlertStore {
    return new PostgresAlertStore(PostgresAlertsDatabase.open(url, options));
  }

  /** host:port of the server. */
  get server(): string {
    return this.db.server;
  }
}
