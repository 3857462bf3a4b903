/**
 * Who a notification is for. A notify target's `to` holds contact ids, `schedule:ID` (whoever is
 * on call when the notification is sent) and `department:ID` (that department's own `notify`):
 * - departments are expanded when the outbox rows are written (their configuration is static);
 * - schedules are resolved when a row is first sent (outbox.ts calls `resolveRow`): its
 *   recipients and the body's `to` are rewritten once, before the first attempt, so every retry
 *   sends the same bytes under the same delivery_id, and a hand-off between writing and sending
 *   reaches the member on call at sending time.
 */
import type { AlertContext } from './alert-types.js';
import { recipientRef, type NotifyTarget } from './config.js';
import { mergeTargets } from './escalation.js';
import { parseEventBody, type RecipientBody } from './event-body.js';
import { memberAt, type Override } from './oncall.js';
import type { OutboxRow } from './store.js';

/** Departments naming departments: expansion stops at this depth (check refuses unknown ids, not cycles). */
const MAX_DEPARTMENT_DEPTH = 5;

export class Recipients {
  constructor(private readonly ctx: AlertContext) {}

  /** The targets with every `department:ID` replaced by that department's notify targets. */
  expand(targets: readonly NotifyTarget[], depth = 0): NotifyTarget[] {
    const out: NotifyTarget[] = [];
    for (const target of targets) {
      const direct: string[] = [];
      for (const id of target.to) {
        const ref = recipientRef(id);
        if (ref?.kind !== 'department') {
          direct.push(id);
          continue;
        }
        const department = this.ctx.departments.get(ref.id);
        if (!department) this.ctx.logger.warn({ department: ref.id }, 'notify target names an unknown department; skipping it');
        else if (depth >= MAX_DEPARTMENT_DEPTH) this.ctx.logger.warn({ department: ref.id }, 'departments name each other too deeply; skipping');
        else out.push(...this.expand(department.notify, depth + 1));
      }
      // A target whose only recipients were departments is not also sent to the channel itself.
      if (direct.length > 0 || target.to.length === 0) out.push({ channel: target.channel, to: direct });
    }
    return mergeTargets(out);
  }

  /** The member on call in a schedule at `now` (with its overrides), or undefined for an unknown schedule. */
  onCall(scheduleId: string, now: number): string | undefined {
    const schedule = this.ctx.schedules.get(scheduleId);
    if (!schedule) return undefined;
    return memberAt(schedule, this.overrides(scheduleId, now), now);
  }

  overrides(scheduleId: string, now: number): Override[] {
    return this.ctx.store.overrides(now, scheduleId).map((o) => ({ id: o.id, member: o.member, startsAt: o.startsAt, endsAt: o.endsAt, createdAt: o.createdAt }));
  }

  /** Contact ids for recipients as of `now`: schedules resolved, unknown ones dropped (and logged), no repeats. */
  resolve(ids: readonly string[], now: number): string[] {
    const out: string[] = [];
    for (const id of ids) {
      const ref = recipientRef(id);
      let contact: string | undefined = id;
      if (ref?.kind === 'schedule') {
        contact = this.onCall(ref.id, now);
        if (contact === undefined) this.ctx.logger.warn({ schedule: ref.id }, 'notification names an unknown schedule; skipping it');
      } else if (ref?.kind === 'department') contact = undefined;
      if (contact !== undefined && !out.includes(contact)) out.push(contact);
    }
    return out;
  }

  /** The body's `to`: the known contacts among `ids`, with their names. */
  toBody(ids: readonly string[]): RecipientBody[] {
    return ids.flatMap((id) => {
      const contact = this.ctx.contacts.get(id);
      return contact ? [{ id: contact.id, name: contact.name }] : [];
    });
  }

  /** For a row naming a schedule: its recipients and body as of `now`; undefined when nothing changes. */
  resolveRow(row: OutboxRow, now: number): { recipients: string[]; body: string } | undefined {
    if (!row.recipients.some((id) => recipientRef(id)?.kind === 'schedule')) return undefined;
    const recipients = this.resolve(row.recipients, now);
    const body = parseEventBody(row.body);
    body.to = this.toBody(recipients);
    return { recipients, body: JSON.stringify(body) };
  }
}
