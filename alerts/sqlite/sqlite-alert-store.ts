/**
 * The SQLite alert store: `${dataDir}/alerts.db` (database.ts, migrations.ts), one repository per
 * table group (../repository-store.ts), behind the AlertStore interface (../store.ts).
 */
import { RepositoryAlertStore } from '../repository-store.js';
import { SqliteCaseRepository } from './case-repository.js';
import { SqliteAlertRepository } from './alert-repository.js';
import { SqliteAuditRepository } from './audit-repository.js';
import { SqliteReportRepository } from './report-repository.js';
import { AlertsDatabase } from './database.js';
import { SqliteHoldRepository } from './hold-repository.js';
import { SqliteOutboxRepository } from './outbox-repository.js';
import { SqliteScheduleRepository } from './schedule-repository.js';
import { SqliteSettingsRepository } from './settings-repository.js';

export class SqliteAlertStore extends RepositoryAlertStore {
  private constructor(db: AlertsDatabase) {
    super(
      {
        alerts: new SqliteAlertRepository(db),
        outbox: new SqliteOutboxRepository(db),
        holds: new SqliteHoldRepository(db),
        schedules: new SqliteScheduleRepository(db),
        settings: new SqliteSettingsRepository(db),
        cases: new SqliteCaseRepository(db),
        audit: new SqliteAuditRepository(db),
        report: new SqliteReportRepository(db),
      },
      db,
    );
  }

  /** Opens (creating and migrating if needed) `${dataDir}/alerts.db`. */
  static open(dataDir: string): SqliteAlertStore {
    return new SqliteAlertStore(AlertsDatabase.open(dataDir));
  }

  /** Opens an existing `${dataDir}/alerts.db` for reading only (a report beside a running platform); every write throws. */
  static openReadOnly(dataDir: string): SqliteAlertStore {
    return new SqliteAlertStore(AlertsDatabase.openReadOnly(dataDir));
  }
}
