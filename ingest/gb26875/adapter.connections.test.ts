/**
 * GB/T 26875.3 listener under 1,000 connections from one address: each is refused (closed) or
 * answers its frame, and a device on another address is served throughout.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/logger.js';
import { MetricsRegistry } from '../../lib/metrics.js';
import { Gb26875Adapter } from './adapter.js';
import { DEFAULT_GB26875, gb26875AdapterSchema } from './config.js';
import { COMMAND, encodeFrame, scanFrame, timeLabelAt, type Frame } from './frame.js';
import { encodeUnit } from './objects.js';

const FLOODER = '0x0000AB12CD34';
const OTHER = '0x0000AB12CD35';
const CONNECTIONS = 1000;
const BATCH = 100;

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
  /** A link to the listener from `localAddress` (any 127/8 address is the loopback on Linux). */
  static open(port: number, localAddress: string): Promise<Link> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(new Link(s)));
      s.once('error', reject);
    });
  }
  confirmed(serial: number): boolean {
    return this.frames.some((f) => f.serial === serial && f.command === COMMAND.confirm);
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const time = () => timeLabelAt(Date.now(), 480);
const status = (serial: number, source: string) =>
  encodeFrame({
    serial,
    version: 1,
    time: time(),
    source,
    destination: '0x000000000000',
    command: COMMAND.send,
    appData: encodeUnit({
      type: 2,
      objects: [{ type: 2, systemType: 1, systemAddress: 1, componentType: 42, componentAddress: 1, status: 0b01, description: new Uint8Array(0), time: time() }],
    }),
  });

describe('GB/T 26875.3 listener, 1,000 connections from one address', () => {
  let adapter: Gb26875Adapter | undefined;
  const links: Link[] = [];
  afterEach(async () => {
    for (const l of links.splice(0)) l.socket.destroy();
    await adapter?.stop();
    adapter = undefined;
  });

  it('refuses or answers each of them, and keeps serving a device on another address', async () => {
    const metrics = new MetricsRegistry();
    const stored: string[] = [];
    const presence: string[] = [];
    adapter = new Gb26875Adapter({
      // The defaults (per address 8, in all 1,000), on the loopback.
      config: gb26875AdapterSchema.parse({
        type: 'gb26875',
        host: '127.0.0.1',
        port: 0,
        sync_time: false,
        devices: [
          { address: FLOODER, device: 'uitd-flood', asset: 'tower' },
          { address: OTHER, device: 'uitd-other', asset: 'tower' },
        ],
      }),
      name: 'gb26875',
      clock: { now: () => Date.now() },
      logger: silentLogger(),
      metrics,
      telemetry: (_source, _topic, _asset, sensorId) => {
        stored.push(sensorId);
        return Promise.resolve({ accepted: 4, rejected: 0, stored: true });
      },
      presence: (device, state) => presence.push(`${device}:${state}`),
    });
    await adapter.start();
    const port = adapter.port()!;
    const perAddress = DEFAULT_GB26875.max_connections_per_address;

    const other = await Link.open(port, '127.0.0.2');
    links.push(other);
    let otherSerial = 0;
    const otherServed = async () => {
      otherSerial++;
      other.socket.write(status(otherSerial, OTHER));
      await until(() => other.confirmed(otherSerial), `the other address's frame ${otherSerial} confirmed`);
    };
    await otherServed();

    // The flood, BATCH connections at a time; each sends a frame; the other address is served between batches.
    const flood: Link[] = [];
    for (let i = 0; i < CONNECTIONS; i += BATCH) {
      const batch = await Promise.all(Array.from({ length: BATCH }, () => Link.open(port, '127.0.0.1')));
      links.push(...batch);
      flood.push(...batch);
      batch.forEach((l, j) => !l.closed && l.socket.write(status(i + j + 1, FLOODER)));
      await otherServed();
    }
    await until(() => flood.every((l, i) => l.closed || l.confirmed(i + 1)), 'every flood connection refused or answered');

    const answered = flood.filter((l, i) => l.confirmed(i + 1));
    expect(answered.length).toBe(perAddress);
    expect(answered.every((l) => !l.closed)).toBe(true);
    expect(flood.filter((l) => l.closed).length).toBe(CONNECTIONS - perAddress);
    const text = await metrics.render();
    expect(text).toMatch(new RegExp(`^watchpost_adapter_connections_total\\{adapter="gb26875",outcome="refused_per_address"\\} ${CONNECTIONS - perAddress}$`, 'm'));
    expect(text).toMatch(/^watchpost_adapter_connections_total\{adapter="gb26875",outcome="accepted"\} 9$/m);
    // Only the answered frames reached ingest: one per kept flood link, one per frame of the other address.
    expect(stored.length).toBe(perAddress + otherSerial);

    // Once the flood is gone, its address may connect again, and the other address is still served.
    for (const l of flood) l.socket.destroy();
    await otherServed();
    await until(() => presence.includes('uitd-flood:offline'), "the flood's kept links closed");
    const again = await Link.open(port, '127.0.0.1');
    links.push(again);
    again.socket.write(status(5000, FLOODER));
    await until(() => again.confirmed(5000) || again.closed, 'the reconnection answered');
    expect(again.confirmed(5000)).toBe(true);
  }, 120_000);
});
