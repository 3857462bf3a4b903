/**
 * A load-generating process for the GB/T 26875.3 benchmark: one TCP link per transmission device
 * it is given, sending frames as fast as the centre's confirms allow (a window of `window`
 * unconfirmed frames per link) until the deadline, and reporting counts to its parent. Frames
 * alternate between analogue values (type 3, `objects` temperatures) and component status (type 2,
 * `objects` components, four readings each: fire_alarm, fault, supervisory, disabled; never a fire
 * alarm, so the background is bulk traffic). Each frame's objects carry their own second, one
 * later than the device's previous frame, so every reading is a distinct InfluxDB point.
 * The centre's clock synchronisation (control, type 90) is confirmed as a device does.
 */
import { connect } from 'node:net';
import { COMMAND, encodeFrame, scanFrame, timeLabelAt, type Frame } from '../ingest/gb26875/frame.js';
import { encodeUnit, type InfoObject } from '../ingest/gb26875/objects.js';

export interface Gb26875LoadJob {
  port: number;
  /** The monitoring centre's address (destination of the frames). */
  centre: string;
  devices: string[];
  window: number;
  objects: number;
  durationMs: number;
  /** Time (epoch ms, whole seconds) of every device's first frame; each next frame is 1 s later. */
  t0: number;
}

export interface Gb26875LoadReport {
  type: 'progress' | 'done';
  frames: number;
  readings: number;
  denied: number;
  errors: number;
  cpuMs?: number;
}

const OFFSET = 480; // the adapter's default utc_offset, +08:00
const VERSION = 0x0101;

/** Readings of each kind of frame: an analogue value is one, a component status four. */
const readingsOfFrame = (n: number, objects: number): number => (n % 2 === 0 ? objects : objects * 4);

function appData(n: number, objects: number, at: number): Buffer {
  const time = timeLabelAt(at, OFFSET);
  const list: InfoObject[] = [];
  for (let c = 0; c < objects; c++) {
    list.push(
      n % 2 === 0
        ? { type: 3, systemType: 1, systemAddress: 1, componentType: 30, componentAddress: c + 1, analogueType: 3, value: 200 + ((n + c) % 100), time }
        : { type: 2, systemType: 1, systemAddress: 1, componentType: 42, componentAddress: c + 1, status: 0b1 | ((n >> 1) % 7 === 0 ? 0b100 : 0), description: new Uint8Array(0), time },
    );
  }
  return encodeUnit({ type: n % 2 === 0 ? 3 : 2, objects: list });
}

function device(job: Gb26875LoadJob, address: string, deadline: number, counts: Gb26875LoadReport): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(job.port, '127.0.0.1');
    const unconfirmed = new Map<number, number>(); // serial -> readings
    let next = 0; // frames sent
    let buffer: Buffer = Buffer.alloc(0);
    const send = () => {
      while (unconfirmed.size < job.window && Date.now() < deadline) {
        const serial = next & 0xffff;
        const at = job.t0 + next * 1000;
        socket.write(
          encodeFrame({ serial, version: VERSION, time: timeLabelAt(at, OFFSET), source: address, destination: job.centre, command: COMMAND.send, appData: appData(next, job.objects, at) }),
        );
        unconfirmed.set(serial, readingsOfFrame(next, job.objects));
        next++;
      }
      if (unconfirmed.size === 0) socket.end();
    };
    const answer = (f: Frame) => {
      if (f.command === COMMAND.control) {
        socket.write(
          encodeFrame({
            serial: f.serial,
            version: f.version,
            time: timeLabelAt(Date.now(), OFFSET),
            source: address,
            destination: f.source,
            command: COMMAND.confirm,
            appData: new Uint8Array(0),
          }),
        );
        return;
      }
      const readings = unconfirmed.get(f.serial);
      if (readings === undefined) return;
      unconfirmed.delete(f.serial);
      if (f.command === COMMAND.confirm) {
        counts.frames++;
        counts.readings += readings;
      } else counts.denied++;
    };
    socket.on('connect', send);
    socket.on('data', (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      for (;;) {
        const scan = scanFrame(buffer);
        if (scan.kind === 'more') break;
        if (scan.kind === 'frame') answer(scan.frame);
        buffer = buffer.subarray(scan.next);
      }
      send();
    });
    socket.on('error', () => counts.errors++);
    socket.on('close', () => {
      counts.errors += unconfirmed.size; // sent, never answered
      resolve();
    });
  });
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function run(job: Gb26875LoadJob): Promise<void> {
  const counts: Gb26875LoadReport = { type: 'progress', frames: 0, readings: 0, denied: 0, errors: 0 };
  const deadline = Date.now() + job.durationMs;
  const ticker = setInterval(() => process.send?.({ ...counts }), 500);
  await Promise.all(job.devices.map((a) => device(job, a, deadline, counts)));
  clearInterval(ticker);
  process.send?.({ ...counts, type: 'done', cpuMs: cpuMs() });
  process.disconnect?.();
}

process.once('message', (job: Gb26875LoadJob) => void run(job));
