/**
 * Mutual TLS on the embedded broker (`broker.tls.ca_file`): a client certificate signed by the
 * CA is not enough, it must name the device the client logs in as (subject CN or a DNS subject
 * alternative name); otherwise CONNECT is refused as bad credentials.
 */
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCerts, generateClientCert, opensslBinary, type TestCerts } from '../test/support/certs.js';
import { baseConfig, DEVICE_SECRET, OTHER_SECRET, startPlatform, tempDir, type RunningPlatform } from '../test/support/platform.js';

describe.skipIf(!opensslBinary)('mTLS: the client certificate names the device', () => {
  let dir: string;
  let certs: TestCerts;
  let p: RunningPlatform;

  beforeAll(async () => {
    dir = tempDir('mtls-certs');
    certs = generateCerts(dir);
    const config = baseConfig({
      webhookUrl: 'http://127.0.0.1:9/hook',
      dataDir: tempDir('mtls-data'),
      broker: { host: '127.0.0.1', port: 0, tls: { port: 0, cert_file: certs.certFile, key_file: certs.keyFile, ca_file: certs.caFile } },
    });
    p = await startPlatform(config);
  });
  afterAll(async () => {
    await p?.stop();
  });

  function connect(username: string, password: string, client: { certFile: string; keyFile: string }) {
    return mqtt.connectAsync(
      `mqtts://127.0.0.1:${p.platform.mqttsPort()}`,
      {
        username,
        password,
        ca: readFileSync(certs.caFile),
        cert: readFileSync(client.certFile),
        key: readFileSync(client.keyFile),
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      },
      false,
    );
  }

  it('accepts a certificate whose CN or DNS name is the device id', async () => {
    for (const cert of [generateClientCert(dir, 'bridge-cn', { cn: 'dau-bridge-001' }), generateClientCert(dir, 'bridge-san', { cn: 'gateway', dns: ['dau-bridge-001'] })]) {
      const client = await connect('dau-bridge-001', DEVICE_SECRET, cert);
      try {
        await client.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: 1764295200123, values: { strain: 12.5 } }), { qos: 1 });
      } finally {
        await client.endAsync();
      }
    }
  });

  it('refuses a certificate of another device, even with the right secret', async () => {
    const slope = generateClientCert(dir, 'slope', { cn: 'dau-slope-002', dns: ['dau-slope-002'] });
    await expect(connect('dau-bridge-001', DEVICE_SECRET, slope)).rejects.toThrow(/Bad username or password/);
    const client = await connect('dau-slope-002', OTHER_SECRET, slope);
    await client.endAsync();
    expect(p.platform.metrics.counter('watchpost_mqtt_refused_total', '').get({ reason: 'bad_credentials' })).toBe(1);
  });
});
