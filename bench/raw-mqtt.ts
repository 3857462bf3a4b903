/**
 * A minimal MQTT 3.1.1 client for the load generators: CONNECT with username and password,
 * PUBLISH at QoS 1, PUBACK, PINGREQ, DISCONNECT, nothing else. The benchmarks measure Watchpost,
 * and on this 2-core machine the publishers share the CPU with it: mqtt.js spends tens of µs of
 * CPU per message (streams, packet objects, debug calls), this client a few, so more of the
 * machine is left to the process under test. Writes made in one tick go out as one socket write.
 */
import { connect as netConnect, type Socket } from 'node:net';

const KEEPALIVE_S = 60;

export type PublishCallback = (err?: Error) => void;

export class RawMqttClient {
  /** By packet id; grows as ids are used (a preallocated 65,536 slots cost 512 KiB per connection). */
  private readonly pending: Array<PublishCallback | undefined> = [];
  private nextId = 1;
  private inflight = 0;
  private corked = false;
  private buffered: Buffer[] = [];
  private lastWrite = Date.now();
  private readonly ping: ReturnType<typeof setInterval>;
  private closed = false;
  private readonly topics = new Map<string, Buffer>();

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.fail(new Error('connection closed')));
    socket.on('error', () => undefined);
    this.ping = setInterval(
      () => {
        if (Date.now() - this.lastWrite >= (KEEPALIVE_S / 2) * 1000) this.write(Buffer.from([0xc0, 0x00]));
      },
      (KEEPALIVE_S / 4) * 1000,
    );
    this.ping.unref();
  }

  /** Connects and resolves after a successful CONNACK. */
  static connect(url: string, username: string, password: string, timeoutMs = 60_000): Promise<RawMqttClient> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = netConnect(Number(port || 1883), hostname);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`${username}: no CONNACK within ${timeoutMs} ms`));
      }, timeoutMs);
      let header = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        header = Buffer.concat([header, chunk]);
        if (header.length < 4) return;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', onError);
        if (header[0] !== 0x20 || header[3] !== 0) {
          socket.destroy();
          return reject(new Error(`${username}: CONNACK refused (return code ${header[3]})`));
        }
        const client = new RawMqttClient(socket);
        if (header.length > 4) client.onData(header.subarray(4));
        resolve(client);
      };
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.on('data', onData);
      socket.once('error', onError);
      socket.once('connect', () => socket.write(connectPacket(username, username, password)));
    });
  }

  /** Messages sent and not yet acknowledged. */
  get outstanding(): number {
    return this.inflight;
  }

  /** Publishes at QoS 1; `cb` runs at the PUBACK, or with an error if the connection ends first. */
  publish(topic: string, payload: string | Buffer, cb: PublishCallback): void {
    if (this.closed) return cb(new Error('connection closed'));
    if (this.inflight >= 65535) return cb(new Error('too many messages in flight'));
    let id = this.nextId;
    while (this.pending[id] !== undefined) id = id === 65535 ? 1 : id + 1;
    this.nextId = id === 65535 ? 1 : id + 1;
    this.pending[id] = cb;
    this.inflight++;
    let topicBytes = this.topics.get(topic);
    if (!topicBytes) {
      topicBytes = Buffer.from(topic);
      this.topics.set(topic, topicBytes);
    }
    const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const remaining = 2 + topicBytes.length + 2 + body.length;
    const lengthBytes = varint(remaining);
    const packet = Buffer.allocUnsafe(1 + lengthBytes.length + remaining);
    let o = 0;
    packet[o++] = 0x32; // PUBLISH, QoS 1
    for (const b of lengthBytes) packet[o++] = b;
    packet.writeUInt16BE(topicBytes.length, o);
    o += 2;
    o += topicBytes.copy(packet, o);
    packet.writeUInt16BE(id, o);
    o += 2;
    body.copy(packet, o);
    this.write(packet);
  }

  /** Sends DISCONNECT and closes the socket. */
  end(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.flush();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end(Buffer.from([0xe0, 0x00]));
    });
  }

  private write(packet: Buffer): void {
    this.lastWrite = Date.now();
    if (!this.corked) {
      this.corked = true;
      process.nextTick(() => this.flush());
    }
    this.buffered.push(packet);
  }

  private flush(): void {
    this.corked = false;
    if (this.buffered.length === 0 || this.socket.destroyed) return;
    this.socket.write(this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered));
    this.buffered = [];
  }

  private rest: Buffer = Buffer.alloc(0);

  private onData(chunk: Buffer): void {
    const buf = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk;
    let o = 0;
    while (buf.length - o >= 2) {
      const type = buf[o]! >> 4;
      let len = 0;
      let mult = 1;
      let i = o + 1;
      for (;;) {
        if (i >= buf.length) {
          this.rest = buf.subarray(o);
          return;
        }
        const b = buf[i++]!;
        len += (b & 0x7f) * mult;
        mult *= 128;
        if (!(b & 0x80)) break;
      }
      if (buf.length < i + len) break;
      if (type === 4 && len >= 2) {
        const id = buf.readUInt16BE(i);
        const cb = this.pending[id];
        if (cb) {
          this.pending[id] = undefined;
          this.inflight--;
          cb();
        }
      }
      o = i + len;
    }
    this.rest = o < buf.length ? Buffer.from(buf.subarray(o)) : Buffer.alloc(0);
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ping);
    for (let id = 1; id < 65536; id++) {
      const cb = this.pending[id];
      if (cb) {
        this.pending[id] = undefined;
        cb(err);
      }
    }
    this.inflight = 0;
  }
}

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function mqttString(s: string): Buffer {
  const bytes = Buffer.from(s);
  const out = Buffer.allocUnsafe(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

/** CONNECT, MQTT 3.1.1, clean session, username and password. */
function connectPacket(clientId: string, username: string, password: string): Buffer {
  const variable = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0xc2, KEEPALIVE_S >> 8, KEEPALIVE_S & 0xff]);
  const payload = Buffer.concat([mqttString(clientId), mqttString(username), mqttString(password)]);
  const remaining = variable.length + payload.length;
  return Buffer.concat([Buffer.from([0x10, ...varint(remaining)]), variable, payload]);
}
