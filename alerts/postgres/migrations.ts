/**
 * The versioned schema of the PostgreSQL alert store, one row per applied version in
 * `watchpost_schema`. The migrations run in order in one transaction that first takes an
 * advisory lock, so several instances starting together migrate once: the others wait for the
 * lock, then find the schema current. A schema newer than this code is refused.
 *
 * The tables mirror alerts.db (../sqlite/migrations.ts) column for column, so that both backends
 * share their row mapping (../sqlite/rows.ts): epoch milliseconds are BIGINT, JSON values TEXT
 * (kept byte for byte, as SQLite keeps them); an identity column stands in for SQLite's rowid
 * where rows are listed in insertion order. Text that breaks ties in an order is compared bytewise
 * (COLLATE "C"), as SQLite compares it, whatever the database's locale. The cluster's own tables (instances, leases, rule
 * checkpoints, the run-time registry) live in the same schema, with PostgreSQL's clock
 * (TIMESTAMPTZ) where leases need it; their parts create them too (IF NOT EXISTS, under the same
 * advisory lock) when they start before the store.
 */
import type { Logger } from '../../lib/logger.js';
import type { PostgresAlertsDatabase } from './database.js';

interface Migration {
  version: number;
  description: string;
  sql: string;
}

const SCHEMA_V1 = `
CREATE TABLE alerts (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL,
  asset_id TEXT NOT NULL,
  sensor_id TEXT NOT NULL,
  metric TEXT NOT NULL,
  level TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
  value DOUBLE PRECISION NOT NULL,
  threshold TEXT,
  event_ts BIGINT NOT NULL,
  started_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  acknowledged_at BIGINT,
  acknowledged_by TEXT,
  resolved_at BIGINT,
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
  held_notice TEXT,
  -- Insertion order (SQLite's rowid): ties of started_at list the later insert first.
  row_seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
-- One open alert per (rule, asset, sensor), enforced by the database itself, across instances.
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule_id, asset_id, sensor_id) WHERE state <> 'resolved';
CREATE INDEX alerts_started ON alerts (started_at, row_seq);
CREATE INDEX alerts_asset ON alerts (asset_id, started_at);
CREATE INDEX alerts_resolved ON alerts (resolved_at) WHERE state = 'resolved';
CREATE INDEX alerts_held ON alerts (updated_at) WHERE held_notice IS NOT NULL;

CREATE TABLE alert_timeline (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  alert_id TEXT NOT NULL REFERENCES alerts (id),
  at BIGINT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('event', 'delivery')),
  type TEXT NOT NULL,
  level TEXT,
  state TEXT,
  tier INTEGER,
  channel TEXT,
  delivery_id TEXT,
  detail TEXT NOT NULL
);
CREATE INDEX alert_timeline_alert ON alert_timeline (alert_id, seq);

CREATE TABLE outbox (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id TEXT NOT NULL UNIQUE,
  alert_id TEXT NOT NULL REFERENCES alerts (id),
  channel_id TEXT NOT NULL,
  recipients TEXT NOT NULL,
  event TEXT NOT NULL,
  tier INTEGER NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  last_error TEXT,
  digest_id TEXT,
  -- The instance attempting the row, until when (the sender's fence in a cluster).
  claimed_by TEXT,
  claimed_until BIGINT
);
CREATE INDEX outbox_pending ON outbox (alert_id, channel_id, seq) WHERE status = 'pending';
CREATE INDEX outbox_pending_seq ON outbox (seq) WHERE status = 'pending';
CREATE INDEX outbox_alert ON outbox (alert_id, seq);
CREATE INDEX outbox_attempted ON outbox (updated_at) WHERE attempts > 0;

CREATE TABLE outbox_digests (
  delivery_id TEXT PRIMARY KEY,
  channel_id TEXT NOT NULL,
  rate_key TEXT NOT NULL,
  recipients TEXT NOT NULL,
  members TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  last_error TEXT,
  claimed_by TEXT,
  claimed_until BIGINT
);
CREATE INDEX outbox_digests_pending ON outbox_digests (next_attempt_at, created_at) WHERE status = 'pending';
CREATE INDEX outbox_digests_settled ON outbox_digests (updated_at) WHERE status <> 'pending';

CREATE TABLE silences (
  id TEXT PRIMARY KEY,
  matchers TEXT NOT NULL,
  starts_at BIGINT NOT NULL,
  ends_at BIGINT NOT NULL,
  reason TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  deleted_at BIGINT,
  deleted_by TEXT
);
CREATE INDEX silences_end ON silences (ends_at) WHERE deleted_at IS NULL;

-- (rule, asset, sensor) whose notifications are held because the rules stage reports flapping.
CREATE TABLE flapping (
  rule_id TEXT NOT NULL,
  asset_id TEXT NOT NULL,
  sensor_id TEXT NOT NULL,
  since BIGINT NOT NULL,
  PRIMARY KEY (rule_id, asset_id, sensor_id)
);

-- Single-use acknowledgement links: the nonce of every link that was used.
CREATE TABLE ack_links_used (
  nonce TEXT PRIMARY KEY,
  alert_id TEXT NOT NULL,
  used_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX ack_links_used_expiry ON ack_links_used (expires_at);

CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE escalation_schedule (
  alert_id TEXT PRIMARY KEY REFERENCES alerts (id),
  policy_id TEXT NOT NULL,
  anchor_at BIGINT NOT NULL,
  next_tier INTEGER NOT NULL,
  next_due_at BIGINT NOT NULL,
  repeats INTEGER NOT NULL
);
CREATE INDEX escalation_schedule_due ON escalation_schedule (next_due_at);

CREATE TABLE alert_cases (
  alert_id TEXT PRIMARY KEY REFERENCES alerts (id),
  status TEXT NOT NULL CHECK (status IN ('new', 'acknowledged', 'verified', 'dismissed', 'dispatched', 'on_site', 'closed')),
  department TEXT,
  work_order_id TEXT,
  dismiss_reason TEXT,
  updated_at BIGINT NOT NULL,
  ack_deadline BIGINT
);
CREATE INDEX alert_cases_ack_deadline ON alert_cases (ack_deadline) WHERE ack_deadline IS NOT NULL;
CREATE INDEX alert_cases_status ON alert_cases (status);

CREATE TABLE work_orders (
  id TEXT PRIMARY KEY,
  alert_id TEXT NOT NULL REFERENCES alerts (id),
  department TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('dispatched', 'on_site', 'closed')),
  note TEXT,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  due_at BIGINT NOT NULL,
  nonce TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  arrived_at BIGINT,
  closed_at BIGINT,
  closed_by TEXT,
  outcome TEXT,
  overdue_at BIGINT,
  row_seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX work_orders_alert ON work_orders (alert_id);
CREATE INDEX work_orders_created ON work_orders (created_at, row_seq);
CREATE INDEX work_orders_due ON work_orders (due_at) WHERE status <> 'closed' AND overdue_at IS NULL;

CREATE TABLE schedule_overrides (
  id TEXT PRIMARY KEY,
  schedule_id TEXT NOT NULL,
  member TEXT NOT NULL,
  starts_at BIGINT NOT NULL,
  ends_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  created_by TEXT NOT NULL
);
CREATE INDEX schedule_overrides_end ON schedule_overrides (ends_at);

CREATE TABLE audit_log (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at BIGINT NOT NULL,
  actor TEXT,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  outcome INTEGER NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Cluster mode: the instances, their leases (partitions, leader) and the rules' state per asset,
-- exactly as cluster/leases.ts and cluster/rule-checkpoints.ts create them when they start first.
CREATE TABLE IF NOT EXISTS cluster_instances (
  instance_id TEXT PRIMARY KEY,
  heartbeat_at TIMESTAMPTZ NOT NULL,
  started_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_leases (
  name TEXT PRIMARY KEY,          -- 'partition:<p>' or 'leader'
  owner TEXT,                     -- NULL = free
  epoch BIGINT NOT NULL,          -- +1 for every new owner (fencing token)
  expires_at TIMESTAMPTZ NOT NULL -- PostgreSQL's clock; '-infinity' for a row never leased
);
CREATE TABLE IF NOT EXISTS rule_checkpoints (
  asset_id TEXT PRIMARY KEY,
  partition INT NOT NULL,
  state JSONB NOT NULL,           -- rules/state-codec.ts AssetSnapshot, version field "v"
  updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS rule_checkpoints_partition ON rule_checkpoints (partition);
`;

/** The run-time registry of a cluster, as server/registry-postgres.ts creates it when it starts first. */
const REGISTRY_V2 = `
CREATE TABLE IF NOT EXISTS registry_state (
  id smallint PRIMARY KEY CHECK (id = 1),
  version bigint NOT NULL CHECK (version >= 0)
);
INSERT INTO registry_state (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS registry_entries (
  kind text NOT NULL CHECK (kind IN ('asset', 'device')),
  id text NOT NULL CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
  body json CHECK (body IS NULL OR (json_typeof(body) = 'object' AND body->>'id' = id)),
  position bigint NOT NULL,
  version bigint NOT NULL CHECK (version > 0),
  PRIMARY KEY (kind, id),
  CONSTRAINT registry_entries_no_plain_secret CHECK (kind <> 'device' OR body IS NULL OR body->'secret' IS NULL)
);
CREATE INDEX IF NOT EXISTS registry_entries_version ON registry_entries (version);
`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description:
      'alerts, timeline, outbox and digests, silences, flapping, used ack links, settings, escalation schedule, cases, work orders, overrides, audit log; cluster instances, leases, rule checkpoints',
    sql: SCHEMA_V1,
  },
  {
    version: 2,
    description: 'the run-time registry of a cluster: its version and its entries (assets, devices)',
    sql: REGISTRY_V2,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The advisory lock that serializes migrations of one database (any constant; this one spells "wpschema"). */
const MIGRATION_LOCK = '7770736368656d61';

/** The lock cluster/leases.ts and cluster/rule-checkpoints.ts take while they create their tables. */
const CLUSTER_SCHEMA_LOCK = 'watchpost.cluster_schema';

/** Brings the schema to SCHEMA_VERSION; throws for a database newer than that. */
export function migrate(db: PostgresAlertsDatabase, logger?: Logger): void {
  db.transaction(() => {
    db.exec(`SELECT pg_advisory_xact_lock(x'${MIGRATION_LOCK}'::bigint)`, [], false);
    db.exec(`CREATE TABLE IF NOT EXISTS watchpost_schema (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`, [], false);
    const row = db.exec<{ version: number | null }>('SELECT MAX(version) AS version FROM watchpost_schema', [], false).rows[0];
    const version = row?.version ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new Error(`the PostgreSQL alert store at ${db.server} has schema version ${version}, newer than this version of watchpost understands (${SCHEMA_VERSION}); upgrade watchpost`);
    }
    // The cluster's leases and checkpoints create their tables under a lock of their own.
    if (version < SCHEMA_VERSION) db.exec(`SELECT pg_advisory_xact_lock(hashtext('${CLUSTER_SCHEMA_LOCK}'))`, [], false);
    for (const migration of MIGRATIONS) {
      if (migration.version <= version) continue;
      db.exec(migration.sql, [], false);
      db.exec('INSERT INTO watchpost_schema (version, description) VALUES ($1, $2)', [migration.version, migration.description], false);
      logger?.info({ version: migration.version, server: db.server }, `PostgreSQL alert store migrated: ${migration.description}`);
    }
  });
}
