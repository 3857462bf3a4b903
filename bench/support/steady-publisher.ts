/**
 * A device as the durability tests need one: takes a reading at a steady rate, publishes it at
 * QoS 1 and keeps it until the broker acknowledges it (PUBACK), publishing everything
 * unacknowledged again after each reconnect, as a device with a buffer does. Every reading has
 * its own timestamp (`tsBase + seq * tsStepMs`) and value (`valueOf(seq)`), so the test can check
 * each one. Used by the durability tests and, with real-time stamps, by the cluster's.
 */
import mqtt, { type MqttClient } from 'mqtt';

export interface SteadyPublisherOptions {
  url: string;
  username?: string;
  password?: string;
  clientId: string;
  topic: string;
  /** Readings per second. */
  rate: number;
  tsBase: number;
  /** Event time between readings (default 1 ms; 1000 / rate stamps them as taken, for `for` and windows). */
  tsStepMs?: number;
  metric: string;
  valueOf: (seq: number) => number;
}

export interface SteadyPublisher {
  /** seq -> value of every reading the broker acknowledged. */
  readonly acked: Map<number, number>;
  /** Readings taken so far (acknowledged or not). */
  taken(): number;
  unacknowledged(): number;
  connected(): boolean;
  /** Stops taking readings; the unacknowledged ones are still sent. */
  pause(): void;
  /** Waits until every reading taken is acknowledged. */
  settle(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export function startSteadyPublisher(options: SteadyPublisherOptions): SteadyPublisher {
  const acked = new Map<number, number>();
  const pending = new Map<number, string>();
  const tsStepMs = options.tsStepMs ?? 1;
  let seq = 0;
  const client: MqttClient = mqtt.connect(options.url, {
    protocolVersion: 4,
    clientId: options.clientId,
    username: options.username,
    password: options.password,
    clean: true,
    reconnectPeriod: 300,
    connectTimeout: 3000,
    keepalive: 10,
  });
  client.on('error', () => undefined);

  const send = (n: number, payload: string) => {
    client.publish(options.topic, payload, { qos: 1 }, (err) => {
      if (err || !pending.has(n)) return;
      pending.delete(n);
      acked.set(n, options.valueOf(n));
    });
  };
  client.on('connect', () => {
    for (const [n, payload] of pending) send(n, payload);
  });

  const take = () => {
    const n = seq++;
    const payload = JSON.stringify({ ts: Math.round(options.tsBase + n * tsStepMs), values: { [options.metric]: options.valueOf(n) } });
    pending.set(n, payload);
    if (client.connected) send(n, payload);
  };
  let timer: ReturnType<typeof setInterval> | undefined = setInterval(take, 1000 / options.rate);

  return {
    acked,
    taken: () => seq,
    unacknowledged: () => pending.size,
    connected: () => client.connected,
    pause() {
      clearInterval(timer);
      timer = undefined;
    },
    async settle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (pending.size > 0) {
        if (Date.now() > deadline) throw new Error(`${options.clientId}: ${pending.size} readings still unacknowledged`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async close() {
      clearInterval(timer);
      await client.endAsync(true);
    },
  };
}
