/**
 * Holds: while a silence matches an alert, or the rules stage reports its (rule, asset, sensor)
 * as flapping, its notifications are held (see alert-service.ts for what is sent when a hold
 * ends). Silences and flapping marks are kept in alerts.db and in memory here.
 */
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { AlertError } from './errors.js';
import { newSilenceId, silenceHold, silenceInputSchema, silenceState, silenceView, MAX_SILENCE_MS, type SilenceState, type SilenceSubject, type SilenceView } from './silences.js';
import type { AlertKey, AlertRecord, AlertStore, HeldNotice, SilenceRecord } from './store.js';

/** Why an alert's notifications are held. */
export interface Hold {
  reason: 'silence' | 'flapping';
  /** When the hold ends on its own (silences); undefined for flapping. */
  until?: number;
  silenceIds?: string[];
}

function keyString(k: AlertKey): string {
  return `${k.ruleId}\u0000${k.assetId}\u0000${k.sensorId}`;
}

export class Holds {
  /** Silences not deleted that had not ended when last loaded. */
  private silences: SilenceRecord[] = [];
  private flapping = new Set<string>();

  constructor(
    private readonly store: AlertStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** A hold ended by an operator (a silence deleted): held notifications are due. */
    private readonly onEnded: () => void,
  ) {}

  /**
   * Reads silences and flapping marks from alerts.db: at start, and in a cluster every poll, so
   * that a silence or flapping mark another instance recorded holds here too. True when a hold
   * ended or was removed since the last read (held notifications may then be due).
   */
  load(): boolean {
    try {
      const silences = this.store.silencesEndingAfter(this.clock.now());
      const flapping = new Set(this.store.flappingKeys().map(keyString));
      const ids = new Set(silences.map((s) => s.id));
      const ended = this.silences.some((s) => !ids.has(s.id)) || [...this.flapping].some((k) => !flapping.has(k));
      this.silences = silences;
      this.flapping = flapping;
      return ended;
    } catch (error) {
      this.logger.error({ err: error }, 'reading silences and flapping state failed');
      return false;
    }
  }

  isFlapping(key: AlertKey): boolean {
    return this.flapping.has(keyString(key));
  }

  /** Records a flapping hold starting or ending; throws when alerts.db cannot. */
  recordFlapping(key: AlertKey, flapping: boolean, at: number): 'started' | 'ended' | 'unchanged' {
    const k = keyString(key);
    if (this.flapping.has(k) === flapping) return 'unchanged';
    this.store.setFlapping({ ruleId: key.ruleId, assetId: key.assetId, sensorId: key.sensorId }, flapping ? at : null);
    if (flapping) this.flapping.add(k);
    else this.flapping.delete(k);
    this.logger.info(
      { rule_id: key.ruleId, asset_id: key.assetId, sensor_id: key.sensorId, flapping },
      flapping ? 'alert is flapping; notifications held' : 'alert is stable again; held notifications released',
    );
    return flapping ? 'started' : 'ended';
  }

  /** Forgets silences that ended or were deleted before `now`. */
  dropEnded(now: number): void {
    this.silences = this.silences.filter((s) => s.endsAt > now && s.deletedAt === null);
  }

  /** The earliest end after `now` of a silence, or `wake` when that is earlier. */
  nextEnd(now: number, wake: number | undefined): number | undefined {
    for (const s of this.silences) if (s.endsAt > now && (wake === undefined || s.endsAt < wake)) wake = s.endsAt;
    return wake;
  }

  /** Why the alert's notifications are held at `now`, if they are. */
  holdOf(alert: AlertRecord, now: number): Hold | undefined {
    if (this.flapping.has(keyString(alert))) return { reason: 'flapping' };
    const hold = silenceHold(this.silences, subjectOf(alert), now);
    return hold ? { reason: 'silence', until: hold.until, silenceIds: hold.silenceIds } : undefined;
  }

  recordHeld(alert: AlertRecord, hold: Hold, notice: HeldNotice | 'firing', now: number): void {
    const detail: Record<string, unknown> = { reason: hold.reason, notice };
    if (hold.silenceIds) detail.silence_ids = hold.silenceIds;
    if (hold.until !== undefined) detail.until = new Date(hold.until).toISOString();
    this.store.appendTimeline({ alertId: alert.id, at: now, kind: 'event', type: 'held', level: alert.level, state: alert.state, tier: null, channel: null, deliveryId: null, detail });
  }

  // ---- silences ----

  /** Silences, newest first: active and pending by default, or those of one state. */
  listSilences(state?: SilenceState): SilenceView[] {
    const now = this.clock.now();
    const rows = state === 'expired' ? this.store.expiredSilences(now) : this.store.silencesEndingAfter(now).filter((s) => state === undefined || silenceState(s, now) === state);
    return rows.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1)).map((s) => silenceView(s, now));
  }

  /** Creates a silence from the API body; throws invalid_request with the reason. */
  createSilence(input: unknown, by: string): SilenceView {
    const parsed = silenceInputSchema.safeParse(input);
    if (!parsed.success) {
      const first = parsed.error.issues[0]!;
      throw new AlertError('invalid_request', `body${first.path.length ? `.${first.path.join('.')}` : ''}: ${first.message}`);
    }
    const now = this.clock.now();
    const startsAt = parsed.data.starts_at !== undefined ? Date.parse(parsed.data.starts_at) : now;
    const endsAt = Date.parse(parsed.data.ends_at);
    if (endsAt <= startsAt) throw new AlertError('invalid_request', 'body.ends_at: must be after starts_at');
    if (endsAt <= now) throw new AlertError('invalid_request', 'body.ends_at: must be in the future');
    if (endsAt - startsAt > MAX_SILENCE_MS) throw new AlertError('invalid_request', `body.ends_at: a silence may last at most ${MAX_SILENCE_MS / 86_400_000} days`);
    const silence: SilenceRecord = {
      id: newSilenceId(),
      matchers: parsed.data.matchers,
      startsAt,
      endsAt,
      reason: parsed.data.reason,
      createdBy: by,
      createdAt: now,
      deletedAt: null,
      deletedBy: null,
    };
    this.store.insertSilence(silence);
    this.silences.push(silence);
    this.logger.info({ silence_id: silence.id, matchers: silence.matchers, starts_at: new Date(startsAt).toISOString(), ends_at: new Date(endsAt).toISOString(), by }, 'silence created');
    return silenceView(silence, now);
  }

  /** Ends a silence now; what it held is sent. Throws silence_not_found. */
  deleteSilence(id: string, by: string): void {
    if (!this.store.deleteSilence(id, this.clock.now(), by)) throw new AlertError('silence_not_found', `no silence with id "${id}"`);
    this.silences = this.silences.filter((s) => s.id !== id);
    this.logger.info({ silence_id: id, by }, 'silence deleted');
    this.onEnded();
  }
}

function subjectOf(a: AlertRecord): SilenceSubject {
  return { asset_id: a.assetId, rule_id: a.ruleId, street: a.street, level: a.level, asset_type: a.assetType };
}
