/**
 * The audit log (contract: "Departments, on-call schedules and the disposal loop"): every
 * state-changing HTTP request (POST, PUT, PATCH, DELETE on the API, the acknowledgement page
 * /ack/… and the work-order page /wo/…) is recorded with its actor, method, path, outcome (the
 * status answered) and time, in alerts.db through the alert store, and listed by
 * GET /api/v1/audit (admin).
 *
 * The entry is written in the onSend hook, before the answer leaves: a client that saw an answer
 * finds its request in the log. The actor is the API token's name (also for a refused role, 403),
 * `link:<alert id>` on the acknowledgement page and `link:<department>` on the work-order page (as
 * the link claims it; the outcome says whether the link was accepted), null when no token was
 * recognised. Never a secret: the path is kept without its query, and a link's token is replaced
 * by REDACTED; bodies are not kept. Entries older than the alerts' retention are deleted.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, onSendHookHandler } from 'fastify';
import { z } from 'zod';
import { DueTimer } from '../alerts/due-timer.js';
import type { AuditRecord, AuditRepository } from '../alerts/store.js';
import type { Clock } from '../lib/clock.js';
import { isValidId } from '../lib/ids.js';
import type { Logger } from '../lib/logger.js';
import { routeSchema } from './api-schemas.js';
import type { Role } from './config/schema.js';
import { ApiError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The name of the API token the request carried, once recognised (also when its role is too low). */
    tokenName?: string;
  }
}

export const AUDITED_METHODS: readonly string[] = ['POST', 'PUT', 'PATCH', 'DELETE'];
/** Paths whose requests are audited: the API, the link pages and the console (not device ingest). */
const AUDITED_PREFIXES = ['/api/', '/ack/', '/wo/', '/console'];
const MAX_PATH_LENGTH = 512;
export const REDACTED = 'REDACTED';

/** The path as audited: without the query, a link page's token replaced by REDACTED, at most 512 characters. */
export function auditPath(url: string): string {
  const path = url.split('?', 1)[0]!;
  const redacted = path.replace(/^\/(ack|wo)\/[^/]*/, `/$1/${REDACTED}`);
  return redacted.length > MAX_PATH_LENGTH ? `${redacted.slice(0, MAX_PATH_LENGTH - 1)}…` : redacted;
}

export function isAudited(method: string, url: string): boolean {
  return AUDITED_METHODS.includes(method) && AUDITED_PREFIXES.some((prefix) => url.startsWith(prefix));
}

/**
 * The actor a link page's token names (alerts/ack-token.ts: v1~<alert>~…; alerts/work-order-token.ts:
 * w1~<work order>~<department>~…), read without checking its signature; `link:invalid` if it names none.
 */
export function linkActor(url: string): string | undefined {
  const match = /^\/(ack|wo)\/([^/?]*)/.exec(url);
  if (!match) return undefined;
  let token: string;
  try {
    token = decodeURIComponent(match[2]!);
  } catch {
    return 'link:invalid';
  }
  const parts = token.split('~');
  const id = match[1] === 'ack' ? (parts[0] === 'v1' ? parts[1] : undefined) : parts[0] === 'w1' ? parts[2] : undefined;
  return isValidId(id) ? `link:${id}` : 'link:invalid';
}

function actorOf(req: FastifyRequest): string | null {
  return req.principal?.name ?? req.tokenName ?? linkActor(req.url) ?? null;
}

export interface AuditView {
  seq: number;
  at: string;
  actor: string | null;
  method: string;
  path: string;
  outcome: number;
}

export interface AuditLogOptions {
  store: AuditRepository;
  clock: Clock;
  logger: Logger;
  /** Entries older than this are deleted (storage.retention.alerts); 0 keeps them forever. */
  retentionMs: number;
  /** How often old entries are deleted (default 1 h). */
  pruneIntervalMs?: number;
}

const PRUNE_BATCH = 1000;

export class AuditLog {
  private readonly timer: DueTimer;
  private running = false;

  constructor(private readonly options: AuditLogOptions) {
    this.timer = new DueTimer(options.clock, () => void this.prune());
  }

  start(): void {
    if (this.running || this.options.retentionMs <= 0) return;
    this.running = true;
    this.timer.arm(this.options.clock.now());
  }

  stop(): void {
    this.running = false;
    this.timer.clear();
  }

  /** Records one request; a failure is logged (the request's effect has happened already). */
  record(entry: Omit<AuditRecord, 'seq' | 'at'>): void {
    try {
      this.options.store.appendAudit({ ...entry, at: this.options.clock.now() });
    } catch (error) {
      this.options.logger.error({ err: error, method: entry.method, path: entry.path, outcome: entry.outcome }, 'the audit log could not be written');
    }
  }

  /** Entries at or after `since`, newest first; `beforeSeq` continues a listing. */
  list(query: { since?: number; beforeSeq?: number; limit: number }): AuditView[] {
    return this.options.store.auditEntries(query).map((e) => ({ seq: e.seq, at: new Date(e.at).toISOString(), actor: e.actor, method: e.method, path: e.path, outcome: e.outcome }));
  }

  private async prune(): Promise<void> {
    const before = this.options.clock.now() - this.options.retentionMs;
    let deleted = 0;
    try {
      while (this.running) {
        const n = this.options.store.pruneAudit(before, PRUNE_BATCH);
        deleted += n;
        if (n < PRUNE_BATCH) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (deleted > 0) this.options.logger.info({ deleted, before: new Date(before).toISOString() }, 'retention deleted old audit entries');
    } catch (error) {
      this.options.logger.error({ err: error }, 'retention of the audit log failed; it runs again at the next interval');
    }
    if (this.running) this.timer.arm(this.options.clock.now() + (this.options.pruneIntervalMs ?? 3_600_000));
  }
}

/** The onSend hook that records every audited request with the status about to be sent. */
export function auditHook(log: Pick<AuditLog, 'record'>): onSendHookHandler {
  return (req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => {
    if (isAudited(req.method, req.url)) log.record({ actor: actorOf(req), method: req.method, path: auditPath(req.url), outcome: reply.statusCode });
    done(null, payload);
  };
}

// ---- GET /api/v1/audit ----

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

const zTimeParam = z
  .string()
  .refine((v) => /^\d{1,15}$/.test(v) || !Number.isNaN(Date.parse(v)), 'must be RFC 3339 or epoch milliseconds')
  .transform((v) => (/^\d+$/.test(v) ? Number(v) : Date.parse(v)));

export const auditQuery = z.strictObject({
  since: zTimeParam.optional().describe('entries at or after this time: RFC 3339 or epoch milliseconds (default: all that are kept)'),
  before: z.coerce.number().int().min(1).optional().describe("entries with a seq below this: the previous answer's next_before"),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional().describe(`at most this many entries (default ${DEFAULT_PAGE})`),
});

export const auditEntryView = z.strictObject({
  seq: z.number().int().describe('increasing in the order requests were answered'),
  at: z.string().describe('RFC 3339 time the answer was sent'),
  actor: z.string().nullable().describe("the API token's name; link:<alert id> (ack page) or link:<department> (work-order page); null when no token was recognised"),
  method: z.string(),
  path: z.string().describe('without the query; link tokens replaced by REDACTED'),
  outcome: z.number().int().describe('the HTTP status answered'),
});

const auditAnswer = z.strictObject({
  audit: z.array(auditEntryView).describe('newest first'),
  next_before: z.number().int().nullable().describe('when the page is full: pass as before= for older entries; null on the last page'),
});

export function registerAuditRoutes(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's instance carries its pino logger type
  app: FastifyInstance<any, any, any, any>,
  deps: { audit: Pick<AuditLog, 'list'>; requireRole: (role: Role) => onRequestHookHandler },
): void {
  app.get(
    '/api/v1/audit',
    {
      onRequest: deps.requireRole('admin'),
      schema: routeSchema({
        summary: 'state-changing requests, newest first: actor, method, path, outcome, at',
        role: 'admin',
        tags: ['audit'],
        querystring: auditQuery,
        responses: { 200: auditAnswer },
      }),
    },
    (req) => {
      const result = auditQuery.safeParse(req.query);
      if (!result.success) {
        const first = result.error.issues[0]!;
        throw new ApiError('bad_request', `query${first.path.length ? `.${first.path.join('.')}` : ''}: ${first.message}`);
      }
      const limit = result.data.limit ?? DEFAULT_PAGE;
      const audit = deps.audit.list({ since: result.data.since, beforeSeq: result.data.before, limit });
      return { audit, next_before: audit.length === limit ? audit[audit.length - 1]!.seq : null };
    },
  );
}
