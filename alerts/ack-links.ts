/**
 * Acknowledgement links: every notification carries a signed, single-use `ack_url` (see
 * ack-token.ts), signed with a key made once per data directory and kept in alerts.db. Opening
 * the link shows the alert; acknowledging through it uses the link up.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { signAckToken, verifyAckToken, type AckClaims } from './ack-token.js';
import type { AlertContext } from './alert-types.js';
import { timelineView, type AlertViews, type AlertView, type TimelineEntryView } from './alert-views.js';
import type { Language } from './config.js';
import type { AlertStore } from './store.js';
import type { Transitions } from './transitions.js';

export const DEFAULT_ACK_LINK_TTL_MS = 24 * 3_600_000;

/** What the acknowledgement page shows for a link. */
export type AckLinkState =
  | { kind: 'invalid' }
  | { kind: 'expired'; language: Language }
  | { kind: 'used'; language: Language; alert: AlertView }
  | { kind: 'valid'; language: Language; alert: AlertView; timeline: TimelineEntryView[] };

/** The outcome of acknowledging through a link. */
export type AckLinkResult =
  | { kind: 'invalid' }
  | { kind: 'expired'; language: Language }
  | { kind: 'used'; language: Language; alert: AlertView }
  | { kind: 'resolved'; language: Language; alert: AlertView }
  | { kind: 'acknowledged'; language: Language; alert: AlertView; already: boolean };

export class AckLinks {
  private readonly store: AlertStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private keyCache: Buffer | undefined;

  constructor(
    private readonly ctx: AlertContext,
    private readonly views: AlertViews,
    private readonly transitions: Transitions,
  ) {
    this.store = ctx.store;
    this.clock = ctx.clock;
    this.logger = ctx.logger;
  }

  /** The key that signs acknowledgement links: made once per data directory, kept in alerts.db. */
  get ackKey(): Buffer {
    this.keyCache ??= Buffer.from(
      this.store.meta('ack_link_key', () => randomBytes(32).toString('base64')),
      'base64',
    );
    return this.keyCache;
  }

  /** A signed, single-use acknowledgement link (`expiresAt` is set from now and the TTL). */
  url(claims: AckClaims, now: number): string {
    const expiresAt = Math.floor((now + (this.ctx.options.ackLinkTtlMs ?? DEFAULT_ACK_LINK_TTL_MS)) / 1000) * 1000;
    return `${this.ctx.options.publicUrl.replace(/\/+$/, '')}/ack/${signAckToken(this.ackKey, { ...claims, expiresAt })}`;
  }

  /** What the page of an ack_url shows. */
  page(token: string): AckLinkState {
    const check = verifyAckToken(this.ackKey, token, this.clock.now());
    if (!check.ok) return check.reason === 'expired' ? { kind: 'expired', language: check.claims!.language } : { kind: 'invalid' };
    const { claims } = check;
    const alert = this.store.getAlert(claims.alertId);
    if (!alert) return { kind: 'invalid' };
    if (this.store.ackLinkUsed(claims.nonce)) return { kind: 'used', language: claims.language, alert: this.views.view(alert) };
    return {
      kind: 'valid',
      language: claims.language,
      alert: this.views.view(alert),
      timeline: this.store
        .timeline(alert.id)
        .filter((e) => e.kind === 'event')
        .map(timelineView),
    };
  }

  /** Acknowledges through an ack_url; the link is used up by this, also when it finds the alert acknowledged. */
  acknowledge(token: string, note?: string): AckLinkResult {
    const now = this.clock.now();
    const check = verifyAckToken(this.ackKey, token, now);
    if (!check.ok) return check.reason === 'expired' ? { kind: 'expired', language: check.claims!.language } : { kind: 'invalid' };
    const { claims } = check;
    const language = claims.language;
    const current = this.store.getAlert(claims.alertId);
    if (!current) return { kind: 'invalid' };
    if (current.state === 'resolved') return { kind: 'resolved', language, alert: this.views.view(current) };
    const by = `link:${claims.channel}${claims.contact ? `/${claims.contact}` : ''}`;
    const cleanNote = note?.trim().slice(0, 2000) || undefined;
    let used = false;
    const alert = this.transitions.commit((effects) => {
      if (!this.store.useAckLink(claims.nonce, claims.alertId, now, claims.expiresAt)) {
        used = true;
        return current;
      }
      return this.transitions.operatorTransition(claims.alertId, { kind: 'acknowledge', by, ...(cleanNote ? { note: cleanNote } : {}) }, effects);
    });
    if (used) return { kind: 'used', language, alert: this.views.view(this.store.getAlert(claims.alertId) ?? current) };
    this.logger.info({ alert_id: alert.id, by }, 'alert acknowledged through its link');
    return { kind: 'acknowledged', language, alert: this.views.view(alert), already: current.state === 'acknowledged' };
  }
}
