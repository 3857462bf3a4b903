/**
 * The versioned schema of alerts.db, kept in `PRAGMA user_version`. Each migration takes the
 * schema from the version before it to its own. They run in order inside one IMMEDIATE
 * transaction, so two instances opening the database together cannot both migrate: the second
 * waits for the first, then finds the schema current. A database newer than this code is refused.
 */
import type Database from 'better-sqlite3';

interface Migration {
  version: number;
  description: string;
  /** `from`: the version found (0 for a new database). */
  up(db: Database.Database, from: number): void;
}

/** The schema of version 2, created whole in a new database. */
const SCHEMA_V2 = `
CREATE TABLE IF NOT EXISTS alerts (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL,
  asset_id TEXT NOT NULL,
  sensor_id TEXT NOT NULL,
  metric TEXT NOT NULL,
  level TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
  value REAL NOT NULL,
  threshold TEXT,
  event_ts INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  acknowledged_at INTEGER,
  acknowledged_by TEXT,
  resolved_at INTEGER,
  resolved_by TEXT,
  resolve_reason TEXT,
  rule_name TEXT NOT NULL,
  asset_name TEXT NOT NULL,
  asset_type TEXT NOT NULL,
  street TEXT NOT NULL,
  message TEXT NOT NULL,
  plan TEXT NOT NULL,
  escalation_policy TEXT,
  last_tier INTEGER,
  held_notice TEXT
);
-- One open alert per (rule, asset, sensor), enforced by the database itself.
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open ON alerts (rule_id, asset_id, sensor_id) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_started ON alerts (started_at);
CREATE INDEX IF NOT EXISTS alerts_asset ON alerts (asset_id, started_at);

CREATE TABLE IF NOT EXISTS alert_timeline (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_id TEXT NOT NULL REFERENCES alerts (id),
  at INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('event', 'delivery')),
  type TEXT NOT NULL,
  level TEXT,
  state TEXT,
  tier INTEGER,
  channel TEXT,
  delivery_id TEXT,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_timeline_alert ON alert_timeline (alert_id, seq);

CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT NOT NULL UNIQUE,
  alert_id TEXT NOT NULL REFERENCES alerts (id),
  channel_id TEXT NOT NULL,
  recipients TEXT NOT NULL,
  event TEXT NOT NULL,
  tier INTEGER NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_error TEXT,
  digest_id TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, alert_id, channel_id, seq);

CREATE TABLE IF NOT EXISTS outbox_digests (
  delivery_id TEXT PRIMARY KEY,
  channel_id TEXT NOT NULL,
  rate_key TEXT NOT NULL,
  recipients TEXT NOT NULL,
  members TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_digests_pending ON outbox_digests (status, next_attempt_at);

CREATE TABLE IF NOT EXISTS silences (
  id TEXT PRIMARY KEY,
  matchers TEXT NOT NULL,
  starts_at INTEGER NOT NULL,
  ends_at INTEGER NOT NULL,
  reason TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  deleted_at INTEGER,
  deleted_by TEXT
);

-- (rule, asset, sensor) whose notifications are held because the rules stage reports flapping.
CREATE TABLE IF NOT EXISTS flapping (
  rule_id TEXT NOT NULL,
  asset_id TEXT NOT NULL,
  sensor_id TEXT NOT NULL,
  since INTEGER NOT NULL,
  PRIMARY KEY (rule_id, asset_id, sensor_id)
);

-- Single-use acknowledgement links: the nonce of every link that was used.
CREATE TABLE IF NOT EXISTS ack_links_used (
  nonce TEXT PRIMARY KEY,
  alert_id TEXT NOT NULL,
  used_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS escalation_schedule (
  alert_id TEXT PRIMARY KEY REFERENCES alerts (id),
  policy_id TEXT NOT NULL,
  anchor_at INTEGER NOT NULL,
  next_tier INTEGER NOT NULL,
  next_due_at INTEGER NOT NULL,
  repeats INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS escalation_schedule_due ON escalation_schedule (next_due_at);
`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 2,
    description: 'alerts, timeline, outbox and digests, silences, flapping, used ack links, settings, escalation schedule',
    up(db, from) {
      // Version 1 lacked digests and held notifications; its other tables are kept as they are.
      if (from === 1) db.exec('ALTER TABLE outbox ADD COLUMN digest_id TEXT; ALTER TABLE alerts ADD COLUMN held_notice TEXT;');
      db.exec(SCHEMA_V2);
    },
  },
  {
    version: 3,
    description: 'indexes for retention (resolved alerts by age) and for the outbox rows of one alert',
    up(db) {
      db.exec(`CREATE INDEX IF NOT EXISTS alerts_resolved ON alerts (resolved_at) WHERE state = 'resolved';
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox (alert_id, seq);`);
    },
  },
  {
    version: 4,
    description: 'the disposal loop: cases, work orders and on-call overrides',
    up(db) {
      db.exec(`
CREATE TABLE IF NOT EXISTS alert_cases (
  alert_id TEXT PRIMARY KEY REFERENCES alerts (id),
  status TEXT NOT NULL CHECK (status IN ('new', 'acknowledged', 'verified', 'dismissed', 'dispatched', 'on_site', 'closed')),
  department TEXT,
  work_order_id TEXT,
  dismiss_reason TEXT,
  updated_at INTEGER NOT NULL,
  ack_deadline INTEGER
);
CREATE INDEX IF NOT EXISTS alert_cases_ack_deadline ON alert_cases (ack_deadline) WHERE ack_deadline IS NOT NULL;
CREATE INDEX IF NOT EXISTS alert_cases_status ON alert_cases (status);

CREATE TABLE IF NOT EXISTS work_orders (
  id TEXT PRIMARY KEY,
  alert_id TEXT NOT NULL REFERENCES alerts (id),
  department TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('dispatched', 'on_site', 'closed')),
  note TEXT,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  nonce TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  arrived_at INTEGER,
  closed_at INTEGER,
  closed_by TEXT,
  outcome TEXT,
  overdue_at INTEGER
);
CREATE INDEX IF NOT EXISTS work_orders_alert ON work_orders (alert_id);
CREATE INDEX IF NOT EXISTS work_orders_created ON work_orders (created_at);
CREATE INDEX IF NOT EXISTS work_orders_due ON work_orders (due_at) WHERE status <> 'closed' AND overdue_at IS NULL;

CREATE TABLE IF NOT EXISTS schedule_overrides (
  id TEXT PRIMARY KEY,
  schedule_id TEXT NOT NULL,
  member TEXT NOT NULL,
  starts_at INTEGER NOT NULL,
  ends_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS schedule_overrides_end ON schedule_overrides (ends_at);
`);
    },
  },
  {
    version: 5,
    description: 'the audit log of state-changing HTTP requests',
    up(db) {
      db.exec(`
CREATE TABLE IF NOT EXISTS audit_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  outcome INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
`);
    },
  },
  {
    version: 6,
    description: 'claims on outbox rows and digests (the sender fence of a cluster), held notices by update',
    up(db) {
      for (const table of ['outbox', 'outbox_digests']) {
        const columns = new Set((db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as Array<{ name: string }>).map((c) => c.name));
        if (!columns.has('claimed_by')) db.exec(`ALTER TABLE ${table} ADD COLUMN claimed_by TEXT`);
        if (!columns.has('claimed_until')) db.exec(`ALTER TABLE ${table} ADD COLUMN claimed_until INTEGER`);
      }
      db.exec('CREATE INDEX IF NOT EXISTS alerts_held ON alerts (updated_at) WHERE held_notice IS NOT NULL');
    },
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Brings the schema to SCHEMA_VERSION; throws for a database newer than that. */
export function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`alerts.db has schema version ${version}, newer than this version of watchpost understands (${SCHEMA_VERSION})`);
    }
    for (const migration of MIGRATIONS) {
      if (migration.version <= version) continue;
      migration.up(db, version);
    }
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
