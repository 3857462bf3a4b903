/**
 * Silences through the HTTP API (contract: HTTP API): GET and POST /api/v1/silences and
 * DELETE /api/v1/silences/{id}, operator role. The body is validated by the alert stage's
 * schema (alerts/silences.ts), whose errors come back as 400 with the reason.
 */
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import type { z } from 'zod';
import { listOf, routeSchema, silenceIdParams, silenceInputSchema, silenceListQuery, silenceView } from './api-schemas.js';
import type { Role } from './config/schema.js';
import { ApiError } from './errors.js';

export interface SilencesPort {
  listSilences(state?: 'pending' | 'active' | 'expired'): unknown[];
  createSilence(input: unknown, by: string): unknown;
  deleteSilence(id: string, by: string): void;
}

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const first = result.error.issues[0]!;
    throw new ApiError('bad_request', `${what}${first.path.length ? `.${first.path.join('.')}` : ''}: ${first.message}`);
  }
  return result.data;
}

export function registerSilenceRoutes(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's instance carries its pino logger type
  app: FastifyInstance<any, any, any, any>,
  deps: { silences: SilencesPort; requireRole: (role: Role) => onRequestHookHandler },
): void {
  const operator = { onRequest: deps.requireRole('operator') };
  const tags = ['silences'];

  app.get(
    '/api/v1/silences',
    { ...operator, schema: routeSchema({ summary: 'silences, by state', role: 'operator', tags, querystring: silenceListQuery, responses: { 200: listOf('silences', silenceView) } }) },
    (req) => {
      const q = parse(silenceListQuery, req.query, 'query');
      return { silences: deps.silences.listSilences(q.state) };
    },
  );

  // The body is validated by the alert stage (alerts/silences.ts, silenceInputSchema).
  app.post(
    '/api/v1/silences',
    {
      ...operator,
      schema: routeSchema({
        summary: 'create a silence: notifications of matching alerts are held until it ends',
        role: 'operator',
        tags,
        body: silenceInputSchema,
        responses: { 201: silenceView },
      }),
    },
    async (req, reply) => {
      const silence = deps.silences.createSilence(req.body ?? null, req.principal!.name);
      return reply.code(201).send(silence);
    },
  );

  app.delete(
    '/api/v1/silences/:id',
    {
      ...operator,
      schema: routeSchema({ summary: 'end a silence now', role: 'operator', tags, params: silenceIdParams, responses: { 204: { description: 'deleted', empty: true } }, errors: [404] }),
    },
    async (req, reply) => {
      const { id } = parse(silenceIdParams, req.params, 'path');
      deps.silences.deleteSilence(id, req.principal!.name);
      return reply.code(204).send();
    },
  );
}
