import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AlertStore } from '../alerts/store.js';
import { silentLogger } from '../lib/logger.js';
import { openAlertStore } from '../test/support/alert-store.js';
import { tempDir } from '../test/support/platform.js';
import { AuditLog, auditPath, isAudited, linkActor } from './audit.js';

describe('audited requests', () => {
  it('keeps the path without its query and replaces a link token by REDACTED', () => {
    expect(auditPath('/api/v1/alerts/al_1/ack?token=abc')).toBe('/api/v1/alerts/al_1/ack');
    expect(auditPath('/ack/v1~al_1~m~nonce~zh~sms~-~mac?lang=en')).toBe('/ack/REDACTED');
    expect(auditPath('/wo/w1~wo_1~lg-water~m~nonce~mac')).toBe('/wo/REDACTED');
    expect(auditPath('/wo/')).toBe('/wo/REDACTED');
    expect(auditPath(`/api/v1/${'x'.repeat(600)}`)).toHaveLength(512);
  });

  it('audits changes on the API, the link pages and the console, not reads or device ingest', () => {
    expect(['POST', 'PUT', 'PATCH', 'DELETE'].map((m) => isAudited(m, '/api/v1/assets/a'))).toEqual([true, true, true, true]);
    expect(isAudited('GET', '/api/v1/audit')).toBe(false);
    expect(isAudited('POST', '/ack/t')).toBe(true);
    expect(isAudited('POST', '/wo/t')).toBe(true);
    expect(isAudited('POST', '/ingest/v1/a/s')).toBe(false);
  });

  it("names a link page's actor by the alert or the department its token claims", () => {
    expect(linkActor('/ack/v1~al_20251128_1~mq3k~AAAAAAAAAAAAAAAA~zh~sms~-~mac')).toBe('link:al_20251128_1');
    expect(linkActor('/wo/w1~wo_1~lg-water~mq3k~AAAAAAAAAAAAAAAA~mac')).toBe('link:lg-water');
    expect(linkActor('/wo/w1%7Ewo_1%7Elg-gas%7Emq3k')).toBe('link:lg-gas');
    expect(linkActor('/ack/not-a-token')).toBe('link:invalid');
    expect(linkActor('/wo/v1~al_1~x')).toBe('link:invalid');
    expect(linkActor('/ack/%E0%A4%A')).toBe('link:invalid');
    expect(linkActor('/api/v1/alerts')).toBeUndefined();
  });
});

describe('the audit log in the alert store', () => {
  const T0 = Date.UTC(2026, 11, 1, 0, 0, 0);
  let store: AlertStore;

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout', 'setImmediate'] });
    vi.setSystemTime(T0);
    store = openAlertStore(tempDir('audit-store'));
  });
  afterEach(() => {
    store.close();
    vi.useRealTimers();
  });

  it('lists newest first from a time on, pages by seq, and deletes entries older than the retention', async () => {
    const log = new AuditLog({ store, clock: { now: () => Date.now() }, logger: silentLogger(), retentionMs: 10 * 86_400_000, pruneIntervalMs: 86_400_000 });
    for (let day = 0; day < 4; day++) {
      vi.setSystemTime(T0 + day * 86_400_000);
      log.record({ actor: `op-${day}`, method: 'POST', path: `/api/v1/alerts/a${day}/ack`, outcome: 200 });
    }
    expect(log.list({ limit: 10 }).map((e) => [e.actor, e.at])).toEqual([
      ['op-3', '2026-12-04T00:00:00.000Z'],
      ['op-2', '2026-12-03T00:00:00.000Z'],
      ['op-1', '2026-12-02T00:00:00.000Z'],
      ['op-0', '2026-12-01T00:00:00.000Z'],
    ]);
    expect(log.list({ since: T0 + 2 * 86_400_000, limit: 10 }).map((e) => e.actor)).toEqual(['op-3', 'op-2']);
    const [newest, next] = log.list({ limit: 2 });
    expect(log.list({ beforeSeq: next!.seq, limit: 10 }).map((e) => e.actor)).toEqual(['op-1', 'op-0']);
    expect(newest!.seq).toBeGreaterThan(next!.seq);

    // Day 11.5: entries of days 0 and 1 are older than ten days.
    vi.setSystemTime(T0 + 11.5 * 86_400_000);
    log.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(log.list({ limit: 10 }).map((e) => e.actor)).toEqual(['op-3', 'op-2']);
    await vi.advanceTimersByTimeAsync(86_400_000);
    expect(log.list({ limit: 10 }).map((e) => e.actor)).toEqual(['op-3']);
    log.stop();
  });

  it('logs and goes on when the store cannot be written', () => {
    const errors: unknown[] = [];
    const logger = { ...silentLogger(), error: (o: unknown) => errors.push(o) } as unknown as ReturnType<typeof silentLogger>;
    store.close();
    const log = new AuditLog({ store, clock: { now: () => T0 }, logger, retentionMs: 0 });
    log.record({ actor: 'op', method: 'POST', path: '/api/v1/silences', outcome: 201 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ method: 'POST', path: '/api/v1/silences', outcome: 201 });
    store = openAlertStore(tempDir('audit-store'));
  });
});
