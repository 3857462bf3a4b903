import { describe, expect, it } from 'vitest';
import { embeddedBrokerSchema, influxSchema, storageSchema, zBytes } from './config.js';

const issues = (r: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) => (r.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);

describe('ingest configuration', () => {
  it('reads sizes as bytes, with binary and decimal units', () => {
    expect(['512', '64KiB', '512MiB', '2GiB', '100MB', '1.5GiB', ' 3 KB '].map((t) => zBytes.parse(t))).toEqual([512, 65_536, 536_870_912, 2_147_483_648, 100_000_000, 1_610_612_736, 3000]);
    expect(zBytes.parse(4096)).toBe(4096);
    expect(issues(zBytes.safeParse('2 gigs'))).toEqual([': "2 gigs" is not a size (use a number of bytes, or 64KiB, 512MiB, 2GiB, 100MB)']);
  });

  it('fills the spool and deadman defaults, and checks their bounds', () => {
    expect(storageSchema.parse({})).toEqual({
      data_dir: './data',
      spool: { max_bytes: 2 * 1024 ** 3, segment_bytes: 64 * 1024 ** 2, fsync: 'always', fsync_interval: 1000, group_commit_delay: 0, alert_percent: 80 },
      deadman: { no_readings: 600_000, failing_writes: 300_000 },
      retention: { telemetry: 400 * 86_400_000, alerts: 400 * 86_400_000 },
    });
    expect(storageSchema.parse({ retention: { telemetry: '90d' } }).retention).toEqual({ telemetry: 90 * 86_400_000, alerts: 400 * 86_400_000 });
    expect(issues(storageSchema.safeParse({ retention: { telemetry: 'forever' } }))).toEqual(['retention.telemetry: "forever" is not a duration (use 500ms, 30s, 10m, 6h or 1d)']);
    expect(
      storageSchema.parse({ spool: { max_bytes: '256MiB', segment_bytes: '8MiB', fsync: 'interval', fsync_interval: '250ms', group_commit_delay: '2ms' }, deadman: { no_readings: '0s' } }),
    ).toMatchObject({
      spool: { max_bytes: 268_435_456, segment_bytes: 8_388_608, fsync: 'interval', fsync_interval: 250, group_commit_delay: 2 },
      deadman: { no_readings: 0, failing_writes: 300_000 },
    });
    expect(issues(storageSchema.safeParse({ spool: { max_bytes: '1KiB' } }))).toEqual([
      'spool.max_bytes: must be at least 1MiB',
      'spool.segment_bytes: segment_bytes must not exceed max_bytes',
    ]);
    expect(issues(storageSchema.safeParse({ spool: { max_bytes: '2MiB', segment_bytes: '4MiB' } }))).toEqual(['spool.segment_bytes: segment_bytes must not exceed max_bytes']);
    expect(issues(storageSchema.safeParse({ spool: { fsync: 'sometimes' } }))).toEqual(['spool.fsync: Invalid option: expected one of "always"|"interval"']);
  });

  it('refuses credentials in the InfluxDB URL (they would be refused by fetch, and logged with the URL)', () => {
    expect(issues(influxSchema.safeParse({ url: 'http://admin:hunter2@influx:8086', database: 'telemetry' }))).toEqual(['url: must not hold credentials: use username/password or token']);
    expect(influxSchema.parse({ url: 'https://influx:8086', database: 'telemetry' })).toMatchObject({ retry_max_delay: 10_000 });
  });

  it('takes TLS and per-address limits for the embedded broker', () => {
    const broker = embeddedBrokerSchema.parse({ tls: { cert_file: 'server.pem', key_file: 'server.key' }, limits: { connects_per_second: 5, exempt: ['10.0.0.1'] } });
    expect(broker.tls).toEqual({ cert_file: 'server.pem', key_file: 'server.key', port: 8883 });
    expect(broker.plaintext).toBeUndefined();
    expect(broker.limits).toEqual({ connects_per_second: 5, connect_burst: 200, max_auth_failures: 20, auth_failure_window: 300_000, lockout: 600_000, exempt: ['10.0.0.1'] });
    expect(embeddedBrokerSchema.parse({}).limits.exempt).toEqual(['127.0.0.1', '::1']);
    expect(issues(embeddedBrokerSchema.safeParse({ tls: { cert_file: 'a.pem' } }))).toEqual(['tls.key_file: Invalid input: expected string, received undefined']);
  });

  it("bounds the embedded broker's retained store and persistent sessions, with defaults", () => {
    const defaults = embeddedBrokerSchema.parse({});
    expect([defaults.retained, defaults.persistent_sessions_per_device]).toEqual([{ max_messages: 100_000, max_bytes: 64 * 1024 ** 2 }, 16]);
    expect(embeddedBrokerSchema.parse({ retained: { max_bytes: '1MiB' } }).retained).toEqual({ max_messages: 100_000, max_bytes: 1024 ** 2 });
    expect(issues(embeddedBrokerSchema.safeParse({ retained: { max_messages: 0, max_bytes: 10 }, persistent_sessions_per_device: 0 }))).toEqual([
      'retained.max_messages: Too small: expected number to be >=1',
      'retained.max_bytes: must be at least 1KiB',
      'persistent_sessions_per_device: Too small: expected number to be >=1',
    ]);
  });
});
