/**
 * The `console` configuration section: the duty console's map tiles, its sessions and its live
 * stream. Every field has a default, so a configuration without the section runs the console.
 */
import { z } from 'zod';
import { zDuration } from '../../lib/schema.js';

const TILE_TEMPLATE = /^https?:\/\/[^\s"'<>]+$/;

export const consoleSchema = z
  .strictObject({
    /** A tile URL template ({z}, {x}, {y}; optional {s} is left out): the map draws these tiles under the assets. */
    map_tiles: z
      .string()
      .regex(TILE_TEMPLATE, 'must be an http:// or https:// URL template')
      .refine((url) => ['{z}', '{x}', '{y}'].every((part) => url.includes(part)), 'must contain {z}, {x} and {y}')
      .optional()
      .describe('tile URL template with {z}, {x}, {y} (and optionally {s}); without it the map draws the assets on their coordinates with street names'),
    /** Credit shown on the map under the tiles (the tile server's licence). */
    map_attribution: z.string().max(200).optional().describe('credit shown under the tiles'),
    /** A console session ends after this long without a request. */
    session_idle: zDuration.default(12 * 3_600_000).describe('a console session ends after this long without a request (default 12h)'),
    /** ... and this long after sign-in, whatever happens. */
    session_max: zDuration.default(24 * 3_600_000).describe('... and this long after sign-in (default 24h)'),
    /** Sessions kept at most (the oldest ends first). */
    max_sessions: z.number().int().min(1).max(100_000).default(1000).describe('sessions kept at most; the oldest ends first'),
    /** Open GET /api/v1/stream connections at most (further ones get 503). */
    max_stream_clients: z.number().int().min(1).max(10_000).default(200).describe('open GET /api/v1/stream connections at most (more get 503)'),
    /** Events kept for Last-Event-ID replay. */
    stream_buffer: z.number().int().min(10).max(1_000_000).default(10_000).describe('events kept for Last-Event-ID replay'),
  })
  .prefault({});

export type ConsoleConfig = z.output<typeof consoleSchema>;
