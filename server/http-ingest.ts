/**
 * The HTTP push route (docs/adapters-http.md): POST {path}/{asset_id}/{sensor_id} on the API's
 * listener. Credentials and the rate limit are checked before the body is read; the body is
 * taken as raw bytes (any content type) up to broker.max_payload_bytes and handed to
 * ingest/http-push/http-push.ts, which answers once the readings are durable.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { DeviceEntry } from '../ingest/broker-policy.js';
import type { HttpPush, PushAnswer } from '../ingest/http-push/http-push.js';
import { errorBody, routeSchema } from './api-schemas.js';

declare module 'fastify' {
  interface FastifyRequest {
    pushDevice?: DeviceEntry;
  }
}

const pushParams = z.strictObject({
  asset_id: z.string().describe('an asset the device may publish for (1-64 characters of A-Z a-z 0-9 _ . -)'),
  sensor_id: z.string().describe('a sensor of the asset'),
});
const pushBody = z.unknown().describe('the MQTT telemetry payload: a reading object { "ts", "values" }, or a JSON array of up to 1000');
const rejectedReading = z.strictObject({ index: z.number().int().optional().describe('position in a batch'), reason: z.string(), detail: z.string() });
const acceptedBody = z.strictObject({ accepted: z.number().int().describe('metric values stored'), rejected: z.array(rejectedReading) }).describe('the accepted readings are durable');
const refusedBody = errorBody.extend({ accepted: z.literal(0), rejected: z.array(rejectedReading) });

function send(reply: FastifyReply, answer: PushAnswer): FastifyReply {
  return reply
    .code(answer.status)
    .headers(answer.headers ?? {})
    .send(answer.body);
}

export function registerHttpPush(app: FastifyInstance, push: HttpPush): void {
  void app.register((scope, _options, done) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: push.maxPayloadBytes }, (_req, body, next) => next(null, body));
    scope.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
      const params = req.params as { asset_id?: string; sensor_id?: string };
      if (err.statusCode === 413 && req.pushDevice) {
        const length = Number(req.headers['content-length']);
        return send(reply, push.tooLarge(req.pushDevice, params.asset_id ?? '', params.sensor_id ?? '', Number.isSafeInteger(length) ? length : undefined));
      }
      throw err; // the API's error handler
    });
    scope.post(
      `${push.path}/:asset_id/:sensor_id`,
      {
        schema: {
          ...routeSchema({
            summary: 'push readings of a device (HTTP Basic: device id and secret); 202 once durable',
            tags: ['ingest'],
            params: pushParams,
            body: pushBody,
            responses: { 202: acceptedBody },
            errors: [401, 403, 429, 503],
            errorBodies: {
              400: refusedBody.describe('nothing stored: bad JSON or shape, unknown asset or sensor, out of range, ...'),
              403: refusedBody.describe('the device may not publish for this asset'),
              413: refusedBody.describe('the body exceeds broker.max_payload_bytes'),
            },
          }),
          security: [{ device: [] }],
        },
        bodyLimit: push.maxPayloadBytes, // not api.max_body_bytes: the MQTT limit
        onRequest: async (req, reply) => {
          // Until the answer, an idle socket times out, and node:http closes it (nothing here listens for 'timeout'); reset in onResponse.
          req.socket.setTimeout(push.idleTimeoutMs);
          const auth = await push.authorize(req.headers.authorization, req.socket.remoteAddress);
          if (!auth.ok) return send(reply, auth.answer);
          req.pushDevice = auth.device;
        },
        onResponse: (req, _reply, done) => {
          req.socket.setTimeout(0);
          done();
        },
      },
      async (req, reply) => {
        const { asset_id, sensor_id } = req.params as { asset_id: string; sensor_id: string };
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        return send(reply, await push.ingest(req.pushDevice!, asset_id, sensor_id, body));
      },
    );
    done();
  });
}
