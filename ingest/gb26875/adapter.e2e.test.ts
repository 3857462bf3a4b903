import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseConfig, startPlatform, tempDir, type RunningPlatform } from '../../test/support/platform.js';
import { startReceiver, type Receiver } from '../../test/support/receiver.js';
import { COMMAND, encodeFrame, scanFrame, timeLabelAt, type Frame } from './frame.js';
import { encodeUnit } from './objects.js';
import { encodeDescription } from './standard.js';

const PANEL = '0x0000AB12CD34';
const CENTRE = '0x000000000001';

/** A transmission device's side of a link: sends frames, collects the centre's frames. */
class DeviceLink {
  readonly received: Frame[] = [];
  private buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      for (;;) {
        const scan = scanFrame(this.buffer);
        if (scan.kind === 'more') break;
        if (scan.kind === 'frame') this.received.push(scan.frame);
        this.buffer = this.buffer.subarray(scan.next);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<DeviceLink> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new DeviceLink(socket)));
      socket.once('error', reject);
    });
  }

  async answerTo(serial: number, timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find((f) => f.serial === serial && (f.command === COMMAND.confirm || f.command === COMMAND.deny));
      if (found) return found;
      if (this.closed) throw new Error(`link closed before an answer to serial ${serial}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer to serial ${serial}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

function frame(serial: number, appData: Uint8Array, source = PANEL): Buffer {
  return encodeFrame({ serial, version: 0x0101, time: timeLabelAt(Date.now(), 480), source, destination: CENTRE, command: COMMAND.send, appData });
}

function componentStatus(componentAddress: number, status: number, description: string): Uint8Array {
  return encodeUnit({
    type: 2,
    objects: [{ type: 2, systemType: 1, systemAddress: 1, componentType: 42, componentAddress, status, description: encodeDescription(description), time: timeLabelAt(Date.now(), 480) }],
  });
}

/** The latest values of one sensor of an asset view, metric -> value. */
function latest(asset: { latest: Array<{ sensor_id: string; metric: string; value: number }> }, sensorId: string): Record<string, number> {
  return Object.fromEntries(asset.latest.filter((l) => l.sensor_id === sensorId).map((l) => [l.metric, l.value]));
}

async function metricsText(p: RunningPlatform): Promise<string> {
  return (await fetch(`${p.apiUrl}/metrics`)).text();
}

describe('GB/T 26875.3 adapter, end to end', () => {
  let receiver: Receiver;
  let p: RunningPlatform;
  let port: number;

  beforeAll(async () => {
    receiver = await startReceiver();
    const base = baseConfig({ webhookUrl: receiver.url, dataDir: tempDir('gb26875') });
    p = await startPlatform(
      {
        ...base,
        assets: [
          ...base.assets,
          {
            id: 'hg-tower-001',
            type: 'building',
            name: '横岗高层住宅',
            street: '横岗街道',
            sensors: [
              { id: 'panel', metrics: ['fire_alarm', 'fault', 'supervisory', 'disabled'] },
              { id: 'c-1-1-00120001', metrics: ['fire_alarm', 'fault', 'supervisory', 'disabled'] },
              { id: 'hydrant-roof', metrics: ['hydrant_pressure'] },
            ],
          },
        ],
        metrics: {
          ...base.metrics,
          fire_alarm: { min: 0, max: 1 },
          fault: { min: 0, max: 1 },
          supervisory: { min: 0, max: 1 },
          disabled: { min: 0, max: 1 },
          hydrant_pressure: { unit: 'MPa', min: 0, max: 1.6 },
        },
        rules: [
          ...base.rules,
          { id: 'uitd-offline', name: '用户信息传输装置离线', offline: '1s', level: 'yellow', match: { device_id: 'uitd-hg-001' }, escalation: 'bridge-duty' },
          { id: 'fire-alarm', name: '火警', match: { asset_type: 'building', metric: 'fire_alarm' }, levels: { red: { above: 0.5 } }, escalation: 'bridge-duty' },
        ],
        adapters: [
          {
            type: 'gb26875',
            host: '127.0.0.1',
            port: 0,
            address: CENTRE,
            frame_timeout: '1s',
            devices: [
              {
                address: PANEL,
                device: 'uitd-hg-001',
                asset: 'hg-tower-001',
                sensors: [
                  { id: 's-1-1', sensor: 'panel' },
                  { id: 'c-1-1-00000005', sensor: 'hydrant-roof', metrics: { pressure: 'hydrant_pressure' } },
                ],
              },
            ],
          },
        ],
      },
      { ruleTickMs: 100 },
    );
    port = p.platform.gb26875Port()!;
  });

  /** The first webhook body from request `from` on that matches, within 10 s. */
  async function webhook(from: number, match: (body: any) => boolean): Promise<any> {
    const deadline = Date.now() + 10_000;
    for (let n = from + 1; ; n++) {
      const requests = await receiver.waitForRequests(n, Math.max(1, deadline - Date.now()));
      const body = JSON.parse(requests[n - 1]!.body);
      if (match(body)) return body;
    }
  }

  afterAll(async () => {
    await p?.stop();
    await receiver?.close();
  });

  it('confirms a fire alarm frame with its serial number once stored, and the alert reaches the webhook within 10 s', async () => {
    const device = await DeviceLink.open(port);
    try {
      const sent = Date.now();
      device.socket.write(frame(0x1234, componentStatus(0x120001, 0b11, '18层电梯前室')));
      const answer = await device.answerTo(0x1234);
      expect(answer).toMatchObject({ serial: 0x1234, version: 0x0101, source: CENTRE, destination: PANEL, command: COMMAND.confirm });
      expect(answer.appData.length).toBe(0);
      // The first frame of a link also synchronises the device's clock (control, type 90).
      expect(device.received.some((f) => f.command === COMMAND.control && f.appData[0] === 90 && f.appData[1] === 1)).toBe(true);

      const hook = await webhook(0, (b) => b.alert.rule_id === 'fire-alarm');
      expect(Date.now() - sent).toBeLessThan(10_000);
      expect(hook).toMatchObject({ event: 'firing', alert: { rule_id: 'fire-alarm', asset_id: 'hg-tower-001', sensor_id: 'c-1-1-00120001', level: 'red', value: 1, metric: 'fire_alarm' } });

      const assets = await p.api('GET', '/api/v1/assets');
      const tower = assets.body.assets.find((a: { id: string }) => a.id === 'hg-tower-001');
      expect(latest(tower, 'c-1-1-00120001')).toEqual({ fire_alarm: 1, fault: 0, supervisory: 0, disabled: 0 });
      expect(await metricsText(p)).toMatch(/^watchpost_adapter_frames_total\{adapter="gb26875",outcome="confirmed"\} 1$/m);
    } finally {
      device.close();
    }
  });

  it('stores renamed points: the system status as panel, an analogue value as hydrant_pressure', async () => {
    const device = await DeviceLink.open(port);
    try {
      const time = timeLabelAt(Date.now(), 480);
      device.socket.write(frame(7, encodeUnit({ type: 1, objects: [{ type: 1, systemType: 1, systemAddress: 1, status: 0b1_0001, time }] })));
      device.socket.write(
        frame(8, encodeUnit({ type: 3, objects: [{ type: 3, systemType: 1, systemAddress: 1, componentType: 99, componentAddress: 5, analogueType: 4, value: 3, time }] })),
      );
      expect((await device.answerTo(7)).command).toBe(COMMAND.confirm);
      expect((await device.answerTo(8)).command).toBe(COMMAND.confirm);
      const tower = (await p.api('GET', '/api/v1/assets')).body.assets.find((a: { id: string }) => a.id === 'hg-tower-001');
      expect(latest(tower, 'panel')).toEqual({ fire_alarm: 0, fault: 0, supervisory: 1, disabled: 0 });
      expect(latest(tower, 'hydrant-roof')).toEqual({ hydrant_pressure: 0.3 });
    } finally {
      device.close();
    }
  });

  it('denies a bad checksum and an unknown address, counted, and the link stays usable', async () => {
    const device = await DeviceLink.open(port);
    try {
      const bad = frame(21, componentStatus(0x120001, 0b01, 'x'));
      bad[bad.length - 3] = bad[bad.length - 3]! ^ 0xff;
      device.socket.write(bad);
      expect((await device.answerTo(21)).command).toBe(COMMAND.deny);
      device.socket.write(frame(22, componentStatus(0x120001, 0b01, 'x'), '0x00000000BEEF'));
      expect((await device.answerTo(22)).command).toBe(COMMAND.deny);
      device.socket.write(frame(23, componentStatus(0x120001, 0b01, 'x')));
      expect((await device.answerTo(23)).command).toBe(COMMAND.confirm);
      const metrics = await metricsText(p);
      expect(metrics).toMatch(/^watchpost_adapter_frames_total\{adapter="gb26875",outcome="bad_checksum"\} 1$/m);
      expect(metrics).toMatch(/^watchpost_adapter_frames_total\{adapter="gb26875",outcome="unknown_address"\} 1$/m);
    } finally {
      device.close();
    }
  });

  it('a garbage flood on one link does not hurt another, and a trickling link is closed after frame_timeout', async () => {
    const flood = await DeviceLink.open(port);
    const good = await DeviceLink.open(port);
    const trickle = await DeviceLink.open(port);
    try {
      trickle.socket.write(Buffer.from('@@'));
      const junk = Buffer.alloc(64 * 1024, 0x41);
      for (let i = 0; i < 32; i++) flood.socket.write(junk);
      good.socket.write(frame(31, componentStatus(0x120001, 0b01, 'x')));
      expect((await good.answerTo(31)).command).toBe(COMMAND.confirm);
      await new Promise<void>((resolve) => (trickle.closed ? resolve() : trickle.socket.once('close', () => resolve())));
      expect(trickle.closed).toBe(true);
      const metrics = await metricsText(p);
      expect(metrics).toMatch(/^watchpost_adapter_frames_total\{adapter="gb26875",outcome="timeout"\} 1$/m);
      expect(metrics).toMatch(/^watchpost_adapter_discarded_bytes_total\{adapter="gb26875"\} \d+$/m);
    } finally {
      flood.close();
      good.close();
      trickle.close();
    }
  });

  it('raises the offline rule for the transmission device once its link closes', async () => {
    const device = await DeviceLink.open(port);
    device.socket.write(frame(41, componentStatus(0x120001, 0b01, 'x')));
    expect((await device.answerTo(41)).command).toBe(COMMAND.confirm);
    const before = receiver.requests.length;
    device.close();
    const hook = await webhook(before, (b) => b.alert.rule_id === 'uitd-offline' && b.event === 'firing');
    expect(hook).toMatchObject({ event: 'firing', alert: { rule_id: 'uitd-offline', level: 'yellow', state: 'firing' } });
  });
});
