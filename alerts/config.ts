/** Configuration of escalation: contacts, channels and escalation policies (contract: Escalation). */
import { z } from 'zod';
import { zDuration, zId } from '../lib/schema.js';

export const contactSchema = z.strictObject({
  id: zId,
  name: z.string().min(1).max(200),
  phone: z.string().regex(/^\+?[0-9]{5,20}$/, 'must be a phone number such as +8613800000001').optional(),
  email: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'must be an e-mail address').optional(),
});

export const webhookChannelSchema = z.strictObject({
  id: zId,
  type: z.literal('webhook'),
  url: z.string().regex(/^https?:\/\//, 'must be an http:// or https:// URL'),
  secret: z.string().min(1).optional(),
  headers: z.record(z.string(), z.string()).default({}),
  timeout: zDuration.default(10_000),
  max_attempts: z.number().int().min(1).max(100).default(10),
});

export const channelSchema = z.unknown().transform((raw, ctx) => {
  const type = raw !== null && typeof raw === 'object' ? (raw as { type?: unknown }).type : undefined;
  if (type !== 'webhook') {
    const known = ['sms', 'wecom', 'dingtalk', 'feishu', 'email'];
    ctx.addIssue({
      code: 'custom',
      path: ['type'],
      message: known.includes(String(type))
        ? `channel type "${String(type)}" is not supported by this version yet; use webhook`
        : `unknown channel type ${JSON.stringify(type)}; use webhook`,
    });
    return z.NEVER;
  }
  const parsed = webhookChannelSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, code: 'custom', message: issue.message, path: issue.path } as never);
    return z.NEVER;
  }
  return parsed.data;
});

export const notifyTargetSchema = z.union([
  zId.transform((channel) => ({ channel, to: [] as string[] })),
  z.strictObject({ channel: zId, to: z.array(zId).default([]) }),
]);

export const escalationSchema = z.strictObject({
  id: zId,
  tiers: z.array(z.strictObject({ after: zDuration.default(0), notify: z.array(notifyTargetSchema).min(1) })).min(1),
  repeat: zDuration.optional(),
});

export type ContactConfig = z.output<typeof contactSchema>;
export type WebhookChannelConfig = z.output<typeof webhookChannelSchema>;
export type ChannelConfig = WebhookChannelConfig;
export type NotifyTarget = z.output<typeof notifyTargetSchema>;
export type EscalationConfig = z.output<typeof escalationSchema>;
