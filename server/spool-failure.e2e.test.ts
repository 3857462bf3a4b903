/**
 * A failed fdatasync of the spool (an injected failing disk) stops the platform acknowledging
 * readings: /healthz answers 503 naming the failure, the red platform-spool alert reaches the
 * fallback escalation, and a device's next QoS 1 publish is not acknowledged. What was
 * acknowledged before still reaches the telemetry store. Once per fsync mode.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../test/support/binaries.js';
import { failingFs } from '../test/support/failing-fs.js';
import { baseConfig, DEVICE_SECRET, startPlatform, tempDir, type RunningPlatform } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';

const T0 = Date.parse('2025-11-28T02:00:00.000Z');
const TOPIC = 'telemetry/lg-bridge-001/strain-01';

interface Health {
  status: string;
  storage: { accepting?: boolean; queueError?: string };
}

async function health(apiUrl: string): Promise<{ code: number; body: Health }> {
  const res = await fetch(`${apiUrl}/healthz`);
  return { code: res.status, body: (await res.json()) as Health };
}

/** The webhook bodies the receiver got, parsed. */
function hooks(receiver: Receiver): Array<{ event?: string; alert?: { rule_id?: string } }> {
  return receiver.requests.map((r) => JSON.parse(r.body) as { event?: string; alert?: { rule_id?: string } });
}

/** Publishes at QoS 1: 'acked' on PUBACK, 'closed' when the connection closes first. */
function publishOutcome(client: MqttClient, payload: string): Promise<'acked' | 'closed'> {
  return new Promise((resolve) => {
    client.once('close', () => resolve('closed'));
    client.publish(TOPIC, payload, { qos: 1 }, (err) => {
      if (!err) resolve('acked');
    });
  });
}

describe('platform after a failed spool fdatasync', () => {
  let receiver: Receiver | undefined;
  let p: RunningPlatform | undefined;
  afterEach(async () => {
    await p?.stop();
    await receiver?.close();
    p = receiver = undefined;
  });

  for (const fsync of ['always', 'interval'] as const) {
    it(`fsync: ${fsync}: stops acknowledging, answers 503 and raises platform-spool; acknowledged readings are stored`, async () => {
      receiver = await startReceiver();
      const fs = failingFs();
      const base = baseConfig({ webhookUrl: receiver.url, dataDir: tempDir(`spool-fail-${fsync}`) });
      p = await startPlatform(
        {
          ...base,
          storage: { ...base.storage, spool: { fsync, fsync_interval: '200ms' } },
          escalations: [...base.escalations, { id: 'fallback', tiers: [{ after: '0s', notify: ['ops-hook'] }] }],
        },
        { spoolFs: fs },
      );
      const running = p;
      const device = await running.connect('dau-bridge-001', DEVICE_SECRET);
      expect(await publishOutcome(device, JSON.stringify({ ts: T0, values: { strain: 1 } }))).toBe('acked');
      expect((await health(running.apiUrl)).code).toBe(200);

      fs.failing = true;
      if (fsync === 'always') {
        // The group's own fdatasync fails: the message is not acknowledged (the device sends it again later).
        expect(await publishOutcome(device, JSON.stringify({ ts: T0 + 1, values: { strain: 2 } }))).toBe('closed');
      }
      // With fsync: interval the periodic fdatasync fails on its own, no publish needed.
      const down = await waitFor(
        '/healthz 503',
        async () => {
          const h = await health(running.apiUrl);
          return h.code === 503 ? h : undefined;
        },
        10_000,
      );
      expect(down.body).toMatchObject({ status: 'unavailable', storage: { accepting: false } });
      expect(down.body.storage.queueError).toMatch(/^spool: fdatasync of .*\/spool\/00000000000000000000\.seg failed: EIO/);

      const hook = await waitFor('the fallback notification', () => Promise.resolve(hooks(receiver!).find((b) => b.alert?.rule_id === 'platform-spool')), 10_000);
      expect(hook).toMatchObject({ event: 'firing', alert: { rule_id: 'platform-spool', asset_id: 'watchpost', level: 'red' } });

      // The disk answering again changes nothing until a restart: a new publish is still not acknowledged.
      fs.failing = false;
      const again = await running.connect('dau-bridge-001', DEVICE_SECRET);
      expect(await publishOutcome(again, JSON.stringify({ ts: T0 + 2, values: { strain: 3 } }))).toBe('closed');
      expect((await health(running.apiUrl)).code).toBe(503);

      // The reading acknowledged before the failure reaches the store (the spool is still drained).
      const db = new Database(join(running.dataDir, 'telemetry.db'), { readonly: true, fileMustExist: true });
      try {
        const rows = await waitFor(
          'the acknowledged reading in telemetry.db',
          () => {
            const r = db.prepare('SELECT ts, value FROM readings ORDER BY ts').all() as Array<{ ts: number; value: number }>;
            return Promise.resolve(r.length > 0 ? r : undefined);
          },
          10_000,
        );
        expect(rows).toEqual([{ ts: T0, value: 1 }]);
      } finally {
        db.close();
      }
    }, 60_000);
  }
});
