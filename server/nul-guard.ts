/**
 * Refuses text with the NUL character (U+0000) anywhere in a request's body, query or path
 * parameters: PostgreSQL text cannot hold it, so a note or name that SQLite would keep would fail
 * in a cluster; one answer (400) for both stores instead.
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

/** Nesting deeper than this is not scanned further (bodies are size-limited; the schemas refuse such shapes anyway). */
const MAX_DEPTH = 32;

/** True when a string anywhere in `value` holds U+0000 (Buffers, such as HTTP push bodies, are not text here). */
export function containsNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (depth >= MAX_DEPTH || value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return false;
  if (Array.isArray(value)) return value.some((v) => containsNul(v, depth + 1));
  for (const [k, v] of Object.entries(value)) if (k.includes('\u0000') || containsNul(v, depth + 1)) return true;
  return false;
}

/** A preValidation hook: 400 bad_request naming the part that holds a NUL. */
export function refuseNul(req: FastifyRequest): Promise<void> {
  for (const [part, value] of [
    ['body', req.body],
    ['query', req.query],
    ['path', req.params],
  ] as const) {
    if (containsNul(value)) return Promise.reject(new ApiError('bad_request', `the request's ${part} contains the NUL character (U+0000), which text may not hold`));
  }
  return Promise.resolve();
}
