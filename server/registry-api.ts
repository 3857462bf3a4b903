/**
 * The registry through the HTTP API (contract: "The registry at run time"), admin role:
 * PUT/DELETE /api/v1/assets/{id}, PUT/DELETE /api/v1/devices/{id} and
 * POST /api/v1/devices/{id}/rotate-secret. The work is registry.ts's; this file maps it to HTTP.
 * Every request here is state-changing, so the audit hook (audit.ts) records each one.
 */
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import { zId } from '../lib/schema.js';
import { errorBody, invalidRulesBody, routeSchema } from './api-schemas.js';
import type { Role } from './config/schema.js';
import { ApiError } from './errors.js';
import { assetBody, deviceBody, RegistryError, type DeviceView, type RawItem } from './registry.js';

/** What the routes need; registry.ts's Registry satisfies it. */
export interface RegistryPort {
  putAsset(id: string, body: unknown): Promise<{ created: boolean; asset: RawItem }> | { created: boolean; asset: RawItem };
  deleteAsset(id: string): Promise<void> | void;
  putDevice(id: string, body: unknown): Promise<{ created: boolean; device: DeviceView; secret?: string }>;
  deleteDevice(id: string): Promise<void> | void;
  rotateSecret(id: string): Promise<{ id: string; secret: string }>;
}

const idParams = z.strictObject({ id: zId });
const assetAnswer = z.looseObject({ id: z.string(), type: z.string(), name: z.string(), street: z.string() }).describe('the asset as kept in registry.yaml');
const deviceAnswer = z
  .looseObject({
    id: z.string(),
    assets: z.array(z.string()),
    subscribe: z.array(z.string()),
    secret: z.string().optional().describe('the generated secret, on create without secret or secret_hash only: shown this once, kept only as its scrypt hash'),
  })
  .describe('the device (never its secret_hash)');
const secretAnswer = z.strictObject({ id: z.string(), secret: z.string().describe('the new secret, shown this once') });
const inUseBody = errorBody
  .extend({ devices: z.array(z.string()).optional(), file: z.string().optional() })
  .describe('read_only_config, asset_in_use (naming the devices), or the item is defined in another file');
const unavailableBody = errorBody.describe('registry_unavailable: the shared registry (PostgreSQL, in a cluster) cannot be reached; nothing changed');
const invalidBody = invalidRulesBody.describe('the change would make the configuration invalid (every error); nothing changed');

/** The part of a reply an error answer needs (the API's instance carries its own generics). */
interface Reply {
  code(status: number): { send(body: unknown): unknown };
}

function sendError(reply: Reply, err: unknown): unknown {
  if (err instanceof RegistryError) return reply.code(err.status).send({ error: err.code, message: err.message, ...err.details });
  throw err;
}

function pathId(params: unknown): string {
  const parsed = idParams.safeParse(params);
  if (!parsed.success) throw new ApiError('bad_request', `path.id: ${parsed.error.issues[0]!.message}`);
  return parsed.data.id;
}

export function registerRegistryRoutes(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's instance carries its pino logger type
  app: FastifyInstance<any, any, any, any>,
  deps: { registry: RegistryPort; requireRole: (role: Role) => onRequestHookHandler },
): void {
  const admin = { onRequest: deps.requireRole('admin') };
  const tags = ['registry'];
  const errors = { errors: [400, 404, 409, 503], errorBodies: { 400: invalidBody, 409: inUseBody, 503: unavailableBody } };

  app.put(
    '/api/v1/assets/:id',
    {
      ...admin,
      schema: routeSchema({
        summary: 'create (201) or replace (200) an asset, kept in registry.yaml',
        role: 'admin',
        tags,
        params: idParams,
        body: assetBody,
        responses: { 200: assetAnswer, 201: assetAnswer },
        ...errors,
      }),
    },
    async (req, reply) => {
      const id = pathId(req.params);
      try {
        const { created, asset } = await deps.registry.putAsset(id, req.body);
        return await reply.code(created ? 201 : 200).send(asset);
      } catch (err) {
        return sendError(reply, err);
      }
    },
  );

  app.delete(
    '/api/v1/assets/:id',
    {
      ...admin,
      schema: routeSchema({
        summary: 'retire an asset of registry.yaml: its open alerts resolve (asset_removed)',
        role: 'admin',
        tags,
        params: idParams,
        responses: { 204: { description: 'deleted', empty: true } },
        ...errors,
      }),
    },
    async (req, reply) => {
      const id = pathId(req.params);
      try {
        await deps.registry.deleteAsset(id);
        return await reply.code(204).send();
      } catch (err) {
        return sendError(reply, err);
      }
    },
  );

  app.put(
    '/api/v1/devices/:id',
    {
      ...admin,
      schema: routeSchema({
        summary: 'create (201) or replace (200) a device; on create without secret or secret_hash a secret is generated and returned once',
        role: 'admin',
        tags,
        params: idParams,
        body: deviceBody,
        responses: { 200: deviceAnswer, 201: deviceAnswer },
        ...errors,
      }),
    },
    async (req, reply) => {
      const id = pathId(req.params);
      try {
        const { created, device, secret } = await deps.registry.putDevice(id, req.body);
        return await reply.code(created ? 201 : 200).send({ ...device, ...(secret !== undefined ? { secret } : {}) });
      } catch (err) {
        return sendError(reply, err);
      }
    },
  );

  app.delete(
    '/api/v1/devices/:id',
    {
      ...admin,
      schema: routeSchema({
        summary: 'retire a device of registry.yaml: its connections close',
        role: 'admin',
        tags,
        params: idParams,
        responses: { 204: { description: 'deleted', empty: true } },
        ...errors,
      }),
    },
    async (req, reply) => {
      const id = pathId(req.params);
      try {
        await deps.registry.deleteDevice(id);
        return await reply.code(204).send();
      } catch (err) {
        return sendError(reply, err);
      }
    },
  );

  app.post(
    '/api/v1/devices/:id/rotate-secret',
    {
      ...admin,
      schema: routeSchema({
        summary: "a new secret, returned once; the old one stops working and the device's connections close",
        role: 'admin',
        tags,
        params: idParams,
        responses: { 200: secretAnswer },
        ...errors,
      }),
    },
    async (req, reply) => {
      const id = pathId(req.params);
      try {
        return await reply.send(await deps.registry.rotateSecret(id));
      } catch (err) {
        return sendError(reply, err);
      }
    },
  );
}
