/**
 * Silences (contract: Escalation, HTTP API): a time window in which notifications of matching
 * alerts are held back. Alerts are still recorded, published and written to alert_events; what
 * is held is sent when the silence ends (see alert-service.ts). Pure: matching and the end of a
 * hold are computed from the silences and the time passed in.
 *
 * Matchers: asset_id, rule_id, street, level, asset_type, each a value or a list; an alert
 * matches when every given matcher contains its value. At least one matcher is required, so a
 * silence never covers everything by accident.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { LEVELS, type Level } from '../lib/levels.js';
import { oneOrMany, zId } from '../lib/schema.js';
import type { SilenceMatchers, SilenceRecord } from './store.js';

export const SILENCE_MATCHER_KEYS = ['asset_id', 'rule_id', 'street', 'level', 'asset_type'] as const;

/** Longest silence accepted: a forgotten silence must not hide alerts for ever. */
export const MAX_SILENCE_MS = 90 * 24 * 3_600_000;

const zTime = z.iso.datetime({ offset: true, message: 'must be an RFC 3339 time such as 2025-11-28T10:00:00+08:00' });

export const silenceMatchersSchema = z
  .strictObject({
    asset_id: oneOrMany(zId).optional(),
    rule_id: oneOrMany(zId).optional(),
    street: oneOrMany(z.string().min(1).max(200)).optional(),
    level: oneOrMany(z.enum(LEVELS)).optional(),
    asset_type: oneOrMany(z.string().min(1).max(100)).optional(),
  })
  .refine((m) => SILENCE_MATCHER_KEYS.some((k) => m[k] !== undefined), { message: `give at least one of ${SILENCE_MATCHER_KEYS.join(', ')}` });

/** The body of POST /api/v1/silences. */
export const silenceInputSchema = z.strictObject({
  matchers: silenceMatchersSchema,
  /** Default: now. */
  starts_at: zTime.optional(),
  ends_at: zTime,
  reason: z.string().trim().min(1, 'say why (the duty room reads it)').max(1000),
});
export type SilenceInput = z.input<typeof silenceInputSchema>;

/** What a silence is matched against. */
export interface SilenceSubject {
  asset_id: string;
  rule_id: string;
  street: string;
  level: Level;
  asset_type: string;
}

export function newSilenceId(): string {
  return `si_${randomBytes(8).toString('hex')}`;
}

export function silenceMatches(matchers: SilenceMatchers, subject: SilenceSubject): boolean {
  for (const key of SILENCE_MATCHER_KEYS) {
    const allowed = matchers[key] as readonly string[] | undefined;
    if (allowed !== undefined && !allowed.includes(subject[key])) return false;
  }
  return true;
}

export type SilenceState = 'pending' | 'active' | 'expired';

export function silenceState(s: SilenceRecord, now: number): SilenceState {
  if (s.deletedAt !== null || s.endsAt <= now) return 'expired';
  return s.startsAt > now ? 'pending' : 'active';
}

export interface Hold {
  /** Silences holding the subject now, by id. */
  silenceIds: string[];
  /** When no matching silence holds it any more (chained overlapping silences followed). */
  until: number;
}

/** Whether silences hold `subject` at `now`, and until when; undefined when none does. */
export function silenceHold(silences: readonly SilenceRecord[], subject: SilenceSubject, now: number): Hold | undefined {
  const matching = silences.filter((s) => s.deletedAt === null && silenceMatches(s.matchers, subject));
  const active = matching.filter((s) => s.startsAt <= now && s.endsAt > now);
  if (active.length === 0) return undefined;
  let until = Math.max(...active.map((s) => s.endsAt));
  // A silence that starts before (or when) the others end continues the hold without a gap.
  for (let changed = true; changed;) {
    changed = false;
    for (const s of matching) {
      if (s.startsAt <= until && s.endsAt > until) {
        until = s.endsAt;
        changed = true;
      }
    }
  }
  return { silenceIds: active.map((s) => s.id), until };
}

/** The API view of a silence. */
export interface SilenceView {
  id: string;
  matchers: SilenceMatchers;
  starts_at: string;
  ends_at: string;
  reason: string;
  created_by: string;
  created_at: string;
  state: SilenceState;
}

export function silenceView(s: SilenceRecord, now: number): SilenceView {
  return {
    id: s.id,
    matchers: s.matchers,
    starts_at: new Date(s.startsAt).toISOString(),
    ends_at: new Date(s.endsAt).toISOString(),
    reason: s.reason,
    created_by: s.createdBy,
    created_at: new Date(s.createdAt).toISOString(),
    state: silenceState(s, now),
  };
}
