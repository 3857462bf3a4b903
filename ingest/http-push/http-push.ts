/**
 * HTTP push (contract: Device adapters): devices and carrier IoT platforms POST the MQTT
 * telemetry payload to {path}/{asset_id}/{sensor_id} with HTTP Basic device credentials. The
 * readings take the MQTT telemetry path (same limits, catalogue checks, rejection reasons and
 * errors/{device_id} lines), and the answer is 202 only once they are durable in the spool.
 * No HTTP framework here: the route (server/http-ingest.ts) calls `authorize` before the body
 * is read, then `ingest`.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../lib/clock.js';
import { isValidId } from '../../lib/ids.js';
import type { Counter, MetricsRegistry } from '../../lib/metrics.js';
import type { DeviceEntry, DeviceRegistry } from '../broker-policy.js';
import type { ConnectLimiter } from '../connect-limiter.js';
import type { SecretVerifier } from '../device-auth.js';
import type { IngestOutcome, TelemetrySource } from '../ingest-service.js';
import type { Rejection, RejectionLine, RejectionReason } from '../rejections.js';
import { topics } from '../topics.js';
import type { HttpAdapterConfig } from './config.js';
import { parseBasicAuth } from './basic-auth.js';
import { TokenBuckets } from './rate-limiter.js';

export interface HttpPushDeps {
  config: HttpAdapterConfig;
  devices: DeviceRegistry;
  /** The verifier the broker uses (the same work for known and unknown ids). */
  verifier: () => SecretVerifier;
  /** Locks out an address after repeated failed logins (the broker's `limits`); absent: no lockout. */
  logins?: ConnectLimiter;
  clock: Clock;
  metrics: MetricsRegistry;
  maxPayloadBytes: number;
  /** The MQTT telemetry path: resolves once the readings are durable (or refused). */
  telemetry(source: TelemetrySource, topic: string, assetId: string, sensorId: string, payload: Buffer): Promise<IngestOutcome>;
  /** Reports a message refused before decoding (the MQTT path's `rejected`). */
  rejected(source: TelemetrySource, topic: string, rejection: Rejection): void;
}

/** An answer: status, JSON body, extra headers. */
export interface PushAnswer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

export type Authorization = { ok: true; device: DeviceEntry } | { ok: false; answer: PushAnswer };

/** Seconds a client is told to wait when storage cannot take readings now. */
const STORAGE_RETRY_AFTER_S = 5;
/** Successful logins remembered (by a hash of id and secret), so a device's every request does not cost an scrypt. */
const VERIFIED_TTL_MS = 60_000;
const MAX_VERIFIED = 10_000;

const STATUS_OF: Partial<Record<RejectionReason, number>> = { too_large: 413, not_allowed: 403, storage_full: 503 };

export class HttpPush {
  private readonly buckets: TokenBuckets;
  private readonly verified = new Map<string, { until: number; entry: DeviceEntry }>();
  private readonly requests: Counter;

  constructor(private readonly deps: HttpPushDeps) {
    const limit = deps.config.rate_limit;
    this.buckets = new TokenBuckets({ perSecond: limit.requests_per_second, burst: limit.burst }, () => deps.clock.now());
    this.requests = deps.metrics.counter('watchpost_http_ingest_requests_total', 'HTTP push requests, by status code answered.');
  }

  get path(): string {
    return this.deps.config.path;
  }

  get idleTimeoutMs(): number {
    return this.deps.config.idle_timeout;
  }

  get maxPayloadBytes(): number {
    return this.deps.maxPayloadBytes;
  }

  /** Checks the client address's lockout, the credentials and the device's rate limit (before the body is read). */
  async authorize(authorization: string | undefined, address: string | undefined): Promise<Authorization> {
    const { logins } = this.deps;
    if (logins?.lockedOut(address)) {
      const seconds = Math.max(1, Math.ceil(logins.lockedOutForMs(address) / 1000));
      return {
        ok: false,
        answer: this.answer(429, { error: 'locked_out', message: `too many failed logins from this address; try again in ${seconds} s` }, { 'retry-after': String(seconds) }),
      };
    }
    const credentials = parseBasicAuth(authorization);
    const device = credentials ? this.deps.devices.get(credentials.user) : undefined;
    if (!credentials || !(await this.verify(device, credentials.password))) {
      // A request without credentials is a client asking which scheme to use, not a guess.
      if (authorization !== undefined) logins?.authFailed(address);
      return {
        ok: false,
        answer: this.answer(
          401,
          { error: 'unauthorized', message: 'HTTP Basic credentials of a device (device id and secret) are required' },
          { 'www-authenticate': 'Basic realm="watchpost", charset="UTF-8"' },
        ),
      };
    }
    const rate = this.buckets.take(device!.id);
    if (!rate.ok) {
      const seconds = Math.max(1, Math.ceil(rate.retryAfterMs / 1000));
      return {
        ok: false,
        answer: this.answer(429, { error: 'rate_limited', message: `too many requests from device ${device!.id}; try again in ${seconds} s` }, { 'retry-after': String(seconds) }),
      };
    }
    return { ok: true, device: device! };
  }

  /** The body was larger than max_payload_bytes: reported like an MQTT message that is too large. */
  tooLarge(device: DeviceEntry, assetId: string, sensorId: string, bytes: number | undefined): PushAnswer {
    const topic = this.topic(assetId, sensorId);
    const rejection: Rejection = { reason: 'too_large', detail: `payload is ${bytes ?? 'more than ' + this.deps.maxPayloadBytes} bytes; the limit is ${this.deps.maxPayloadBytes}` };
    if (topic) this.deps.rejected(this.source(device), topic, rejection);
    return this.answer(413, { error: 'too_large', message: rejection.detail, accepted: 0, rejected: [rejection] });
  }

  /** Stores one posted payload; answers once the readings are durable (202) or refused. */
  async ingest(device: DeviceEntry, assetId: string, sensorId: string, body: Buffer): Promise<PushAnswer> {
    const topic = this.topic(assetId, sensorId);
    if (!topic) {
      const rejection: Rejection = { reason: 'bad_topic', detail: 'asset and sensor ids are 1-64 characters of A-Z a-z 0-9 _ . -' };
      this.deps.rejected(this.source(device), `${this.path}/…`, rejection);
      return this.answer(400, { error: 'bad_topic', message: rejection.detail, accepted: 0, rejected: [rejection] });
    }
    let line: RejectionLine | undefined;
    const outcome = await this.deps.telemetry({ ...this.source(device), onRejected: (l) => (line = l) }, topic, assetId, sensorId, body);
    const rejected = line ? rejectedList(line) : [];
    if (!outcome.stored) {
      return this.answer(
        503,
        { error: 'storage_full', message: 'storage cannot take readings now; send them again later', accepted: 0, rejected },
        { 'retry-after': String(STORAGE_RETRY_AFTER_S) },
      );
    }
    if (outcome.accepted > 0 || !line) return this.answer(202, { accepted: outcome.accepted, rejected });
    return this.answer(STATUS_OF[line.reason] ?? 400, { error: line.reason, message: line.detail, accepted: 0, rejected });
  }

  private source(device: DeviceEntry): TelemetrySource {
    return { deviceId: device.id, allowedAssets: device.assets };
  }

  private topic(assetId: string, sensorId: string): string | undefined {
    return isValidId(assetId) && isValidId(sensorId) ? topics.telemetry(assetId, sensorId) : undefined;
  }

  private answer(status: number, body: Record<string, unknown>, headers?: Record<string, string>): PushAnswer {
    this.requests.inc({ status: String(status) });
    return { status, body, ...(headers ? { headers } : {}) };
  }

  private async verify(device: DeviceEntry | undefined, password: string): Promise<boolean> {
    const now = this.deps.clock.now();
    const key = device ? createHash('sha256').update(device.id).update('\0').update(password).digest('base64') : undefined;
    const remembered = key !== undefined ? this.verified.get(key) : undefined;
    // A remembered login counts only for the entry it was checked against (a reload may change the secret).
    if (remembered && remembered.until > now && remembered.entry === device) return true;
    const ok = await this.deps.verifier().verify(device?.config, Buffer.from(password, 'utf8'));
    if (ok && key !== undefined) {
      if (this.verified.size >= MAX_VERIFIED) this.verified.clear();
      this.verified.set(key, { until: now + VERIFIED_TTL_MS, entry: device! });
    }
    return ok;
  }
}

/** The rejected readings of a message, as the errors/ line lists them (at most MAX_LISTED_READINGS of a batch). */
function rejectedList(line: RejectionLine): Array<{ index?: number; reason: RejectionReason; detail: string }> {
  return line.rejected_readings ?? [{ reason: line.reason, detail: line.detail }];
}
