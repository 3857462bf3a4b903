/**
 * `watchpost receive`: a small webhook receiver that prints each delivery in a readable form, to
 * see notifications without writing a receiver first (the demo's webhook channel posts to it).
 *
 * With a secret it checks what every receiver should (contract: Notifications):
 * `X-Watchpost-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>`, and an
 * `X-Watchpost-Timestamp` within MAX_SKEW_SECONDS of now; anything else is answered 401 and
 * printed as refused. Repeats of a `delivery_id` (at-least-once delivery) are answered 200 and
 * marked as repeats. Without a secret, deliveries are printed and the signature is not checked.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exitWithParent } from '../lib/parent-guard.js';
import { zonedTime } from './ack-page.js';

export const DEFAULT_RECEIVE_PORT = 9000;
export const MAX_SKEW_SECONDS = 300;
const MAX_BODY_BYTES = 1024 * 1024;
/** Delivery ids remembered to mark repeats. */
const REMEMBERED_DELIVERIES = 10_000;

export interface ReceiverOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** The channel's secret; without it signatures are not checked. */
  secret?: string;
  /** Where the printed lines go. */
  print: (text: string) => void;
  /** Unix milliseconds (tests). */
  now?: () => number;
}

/** What the receiver needs of a delivery's body (contract: Notifications). */
interface Delivery {
  delivery_id?: unknown;
  event?: unknown;
  tier?: unknown;
  to?: Array<{ id?: unknown; name?: unknown }>;
  work_order?: { id?: unknown; department?: unknown; due_at?: unknown; url?: unknown };
  alert?: {
    level?: unknown;
    rule_name?: unknown;
    asset_id?: unknown;
    asset_name?: unknown;
    sensor_id?: unknown;
    metric?: unknown;
    value?: unknown;
    threshold?: unknown;
    message?: unknown;
    ack_url?: unknown;
  };
}

export type Verdict = { ok: true } | { ok: false; reason: string };

/** Checks a delivery's signature and timestamp against the channel's secret. */
export function verifyDelivery(secret: string, headers: { timestamp?: string; signature?: string }, raw: Buffer, nowMs: number): Verdict {
  const { timestamp, signature } = headers;
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'missing or malformed X-Watchpost-Timestamp' };
  if (!signature) return { ok: false, reason: 'missing X-Watchpost-Signature' };
  const match = /^sha256=([0-9a-f]{64})$/i.exec(signature);
  if (!match) return { ok: false, reason: 'malformed X-Watchpost-Signature (expected sha256=<64 hex digits>)' };
  const expected = createHmac('sha256', secret).update(`${timestamp}.`).update(raw).digest();
  if (!timingSafeEqual(expected, Buffer.from(match[1]!, 'hex'))) return { ok: false, reason: 'bad signature (wrong secret, or the body was changed)' };
  const skew = Math.abs(nowMs / 1000 - Number(timestamp));
  if (skew > MAX_SKEW_SECONDS) return { ok: false, reason: `timestamp ${Math.round(skew)} s away from this clock (at most ${MAX_SKEW_SECONDS} s)` };
  return { ok: true };
}

const text = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

/** The lines printed for one delivery. */
export function formatDelivery(body: Delivery, note: string, nowMs: number): string {
  const a = body.alert ?? {};
  const event = text(body.event) || '?';
  const level = text(a.level);
  const asset = a.asset_name ? `${text(a.asset_name)} (${text(a.asset_id)})` : text(a.asset_id);
  const lines = [
    `── ${zonedTime(new Date(nowMs).toISOString())}  ${event}${level ? ` · ${level}` : ''}${asset ? ` · ${asset}` : ''}${typeof body.tier === 'number' ? ` · tier ${body.tier}` : ''}  [${note}]`,
  ];
  if (a.rule_name) lines.push(`   rule:       ${text(a.rule_name)}`);
  if (a.message) lines.push(`   message:    ${text(a.message)}`);
  if (a.sensor_id || a.metric) {
    const threshold = Array.isArray(a.threshold) ? a.threshold.map(text).join('~') : text(a.threshold);
    lines.push(`   reading:    ${text(a.sensor_id)} ${text(a.metric)} = ${text(a.value)}${threshold ? ` (threshold ${threshold})` : ''}`);
  }
  const to = Array.isArray(body.to) ? body.to.map((c) => text(c?.name) || text(c?.id)).filter(Boolean) : [];
  if (to.length > 0) lines.push(`   to:         ${to.join(', ')}`);
  if (a.ack_url) lines.push(`   ack_url:    ${text(a.ack_url)}`);
  const wo = body.work_order;
  if (wo && typeof wo === 'object') lines.push(`   work order: ${text(wo.url)}${wo.department ? ` (${text(wo.department)}${wo.due_at ? `, due ${zonedTime(text(wo.due_at))}` : ''})` : ''}`);
  lines.push(`   delivery:   ${text(body.delivery_id)}`);
  return `${lines.join('\n')}\n`;
}

export class WebhookReceiver {
  private server: Server | undefined;
  private readonly seen = new Set<string>();

  constructor(private readonly options: ReceiverOptions) {}

  /** Listens; resolves with the bound port. */
  async start(): Promise<number> {
    const server = createServer((req, res) => this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? DEFAULT_RECEIVE_PORT, this.options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const answer = (status: number, body: object) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method !== 'POST') {
      answer(405, { error: 'method_not_allowed', message: 'deliveries are POSTed' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        if (!res.headersSent) {
          res.on('finish', () => req.destroy());
          answer(413, { error: 'too_large', message: `at most ${MAX_BODY_BYTES} bytes` });
        }
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      this.receive(req, Buffer.concat(chunks), answer);
    });
  }

  private receive(req: IncomingMessage, raw: Buffer, answer: (status: number, body: object) => void): void {
    const now = this.options.now?.() ?? Date.now();
    const header = (name: string) => (typeof req.headers[name] === 'string' ? req.headers[name] : undefined);
    let note = 'signature not checked: no --secret';
    if (this.options.secret !== undefined) {
      const verdict = verifyDelivery(this.options.secret, { timestamp: header('x-watchpost-timestamp'), signature: header('x-watchpost-signature') }, raw, now);
      if (!verdict.ok) {
        this.options.print(`── ${zonedTime(new Date(now).toISOString())}  REFUSED ${req.method} ${req.url}: ${verdict.reason} (answered 401)\n`);
        answer(401, { error: 'bad_signature', message: verdict.reason });
        return;
      }
      note = 'signature ok';
    }
    let body: Delivery;
    try {
      body = JSON.parse(raw.toString('utf8')) as Delivery;
      if (body === null || typeof body !== 'object') throw new Error('not a JSON object');
    } catch (err) {
      this.options.print(`── ${zonedTime(new Date(now).toISOString())}  REFUSED ${req.method} ${req.url}: the body is not a JSON object (${(err as Error).message}) (answered 400)\n`);
      answer(400, { error: 'bad_body', message: 'the body is not a JSON object' });
      return;
    }
    const id = text(body.delivery_id) || header('x-watchpost-delivery') || '';
    if (id && this.seen.has(id)) note += '; repeat of an earlier delivery';
    else if (id) {
      this.seen.add(id);
      if (this.seen.size > REMEMBERED_DELIVERIES) this.seen.delete(this.seen.values().next().value!);
    }
    this.options.print(formatDelivery(body, note, now));
    answer(200, { ok: true });
  }
}

/** The `watchpost receive` command: runs until SIGINT or SIGTERM. */
export async function runReceive(values: Record<string, string | boolean | undefined>): Promise<number> {
  const portText = typeof values.port === 'string' ? values.port : undefined;
  const port = portText === undefined ? DEFAULT_RECEIVE_PORT : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`watchpost receive: --port must be a port number (0-65535), not "${portText}"\n`);
    return 2;
  }
  const secret = typeof values.secret === 'string' ? values.secret : process.env.WATCHPOST_WEBHOOK_SECRET || undefined;
  const host = typeof values.host === 'string' ? values.host : '127.0.0.1';
  const receiver = new WebhookReceiver({ host, port, secret, print: (t) => process.stdout.write(t) });
  let bound: number;
  try {
    bound = await receiver.start();
  } catch (err) {
    process.stderr.write(`watchpost receive: cannot listen on ${host}:${port}: ${(err as Error).message}\n`);
    return 1;
  }
  const stop = () => void receiver.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  exitWithParent(stop);
  process.stdout.write(
    `watchpost receive: listening on http://${host}:${bound}/ (${secret === undefined ? 'signatures NOT checked: give --secret or WATCHPOST_WEBHOOK_SECRET' : 'checking signatures'}); Ctrl-C to stop\n`,
  );
  return -1;
}
