import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/logger.js';
import { MetricsRegistry } from '../../lib/metrics.js';
import type { IngestOutcome } from '../ingest-service.js';
import { Gb26875Adapter } from './adapter.js';
import { gb26875AdapterSchema } from './config.js';
import { COMMAND, encodeFrame, scanFrame, timeLabelAt, type Frame } from './frame.js';
import { encodeUnit } from './objects.js';

const DEVICE = '0x0000AB12CD34';
const OTHER = '0x0000AB12CD35';

interface Call {
  sensorId: string;
  payload: string;
  resolve: (o: IngestOutcome) => void;
}

function setup(overrides: Record<string, unknown> = {}) {
  const calls: Call[] = [];
  const presence: string[] = [];
  const metrics = new MetricsRegistry();
  const config = gb26875AdapterSchema.parse({
    type: 'gb26875',
    host: '127.0.0.1',
    port: 0,
    sync_time: false,
    devices: [
      { address: DEVICE, device: 'uitd-1', asset: 'tower' },
      { address: OTHER, device: 'uitd-2', asset: 'tower' },
    ],
    ...overrides,
  });
  const adapter = new Gb26875Adapter({
    config,
    name: 'gb26875',
    clock: { now: () => Date.now() },
    logger: silentLogger(),
    metrics,
    telemetry: (_source, _topic, _asset, sensorId, payload) => new Promise((resolve) => calls.push({ sensorId, payload: payload.toString(), resolve })),
    presence: (device, status) => presence.push(`${device}:${status}`),
  });
  return { adapter, calls, presence, metrics };
}

class Link {
  readonly frames: Frame[] = [];
  private buf = Buffer.alloc(0);
  closed = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      for (;;) {
        const s = scanFrame(this.buf);
        if (s.kind === 'more') break;
        if (s.kind === 'frame') this.frames.push(s.frame);
        this.buf = this.buf.subarray(s.next);
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }
  static open(port: number): Promise<Link> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new Link(s)));
      s.once('error', reject);
    });
  }
}

/** Polls a condition (bounded), for events that arrive over TCP. */
async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const time = () => timeLabelAt(Date.now(), 480);
const status = (serial: number, componentAddress: number, bits: number, source = DEVICE) =>
  encodeFrame({
    serial,
    version: 1,
    time: time(),
    source,
    destination: '0x000000000000',
    command: COMMAND.send,
    appData: encodeUnit({
      type: 2,
      objects: [{ type: 2, systemType: 1, systemAddress: 1, componentType: 42, componentAddress, status: bits, description: new Uint8Array(0), time: time() }],
    }),
  });
const stored: IngestOutcome = { accepted: 4, rejected: 0, stored: true };

describe('GB/T 26875.3 transport', () => {
  let current: Gb26875Adapter | undefined;
  afterEach(async () => {
    await current?.stop();
    current = undefined;
  });

  it('takes a fire alarm frame before the bulk frames queued ahead of it', async () => {
    const { adapter, calls } = setup();
    current = adapter;
    await adapter.start();
    const link = await Link.open(adapter.port()!);
    // 40 normal frames: 32 go to storage at once, 8 wait; then a fire alarm.
    link.socket.write(Buffer.concat(Array.from({ length: 40 }, (_, i) => status(i + 1, 100 + i, 0b01))));
    await until(() => calls.length === 32, '32 frames in flight');
    link.socket.write(status(999, 7, 0b11));
    await new Promise((r) => setTimeout(r, 50));
    calls[0]!.resolve(stored);
    await until(() => calls.length === 33, 'the next frame taken');
    expect(calls[32]!.sensorId).toBe('c-1-1-00000007');
    expect(JSON.parse(calls[32]!.payload).values).toEqual({ fire_alarm: 1, fault: 0, supervisory: 0, disabled: 0 });
    for (const c of calls.slice(1)) c.resolve(stored);
    await until(() => link.frames.some((f) => f.serial === 999 && f.command === COMMAND.confirm), 'the fire alarm confirmed');
  });

  it('confirms only once stored, and does not answer a frame storage refused', async () => {
    const { adapter, calls, metrics } = setup();
    current = adapter;
    await adapter.start();
    const link = await Link.open(adapter.port()!);
    link.socket.write(Buffer.concat([status(1, 1, 0b01), status(2, 2, 0b01)]));
    await until(() => calls.length === 2, 'two frames handed to ingest');
    await new Promise((r) => setTimeout(r, 50));
    expect(link.frames).toEqual([]); // nothing is durable yet
    calls[0]!.resolve({ accepted: 0, rejected: 0, stored: false });
    calls[1]!.resolve(stored);
    await until(() => link.frames.length === 1, 'an answer');
    await new Promise((r) => setTimeout(r, 50));
    expect(link.frames.map((f) => [f.serial, f.command])).toEqual([[2, COMMAND.confirm]]);
    const text = await metrics.render();
    expect(text).toMatch(/^watchpost_adapter_frames_total\{adapter="gb26875",outcome="not_stored"\} 1$/m);
    expect(text).toMatch(/^watchpost_adapter_frames_total\{adapter="gb26875",outcome="confirmed"\} 1$/m);
  });

  it('denies an unknown type flag and a second address on one link; the device is online until its link closes', async () => {
    const { adapter, calls, presence } = setup();
    current = adapter;
    await adapter.start();
    const link = await Link.open(adapter.port()!);
    link.socket.write(encodeFrame({ serial: 5, version: 1, time: time(), source: DEVICE, destination: '0x000000000000', command: COMMAND.send, appData: Uint8Array.from([9, 1, 0]) }));
    link.socket.write(status(6, 1, 0b01, OTHER));
    await until(() => link.frames.length === 2, 'two answers');
    expect(link.frames.map((f) => [f.serial, f.command, f.destination])).toEqual([
      [5, COMMAND.deny, DEVICE],
      [6, COMMAND.deny, OTHER],
    ]);
    expect(calls).toEqual([]);
    expect(presence).toEqual(['uitd-1:online']);
    link.socket.destroy();
    await until(() => presence.length === 2, 'offline');
    expect(presence).toEqual(['uitd-1:online', 'uitd-1:offline']);
  });

  it('refuses connections past the per-address limit, and the ones it kept still work', async () => {
    const { adapter, calls, metrics } = setup({ max_connections_per_address: 3 });
    current = adapter;
    await adapter.start();
    const links = await Promise.all(Array.from({ length: 10 }, () => Link.open(adapter.port()!)));
    await until(() => links.filter((l) => l.closed).length === 7, '7 links refused');
    const kept = links.find((l) => !l.closed)!;
    kept.socket.write(status(1, 1, 0b01));
    await until(() => calls.length === 1, 'the frame handed to ingest');
    calls[0]!.resolve(stored);
    await until(() => kept.frames.length === 1, 'confirm');
    expect(await metrics.render()).toMatch(/^watchpost_adapter_connections_total\{adapter="gb26875",outcome="refused_per_address"\} 7$/m);
    for (const l of links) l.socket.destroy();
  });
});
