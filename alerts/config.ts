/**
 * Configuration of escalation: contacts, channels and escalation policies (contract: Escalation).
 *
 * Channel types: webhook, wecom, dingtalk, feishu, email and sms (providers http, aliyun, tencent,
 * twilio). Secrets come from the environment with `${NAME}`. Every provider endpoint is
 * configurable (`url` / `endpoint`), so a test or a private gateway can stand in for it.
 *
 * Options every channel except webhook has:
 * - `language: zh | en` (default zh): the language of the rendered message.
 * - `time_zone` (default Asia/Shanghai): times in the message are shown in this zone.
 * - `rate_limit: { max, per }` or a list of them: sends allowed per sliding window; notifications
 *   beyond it wait and are merged into one digest. Robots default to their providers' limits
 *   (WeCom and DingTalk 20 a minute, Feishu 5 a second and 100 a minute).
 * Options every channel has: `timeout` (per attempt, default 10s), `max_age` (how long a
 * notification is retried before it fails for good, default 1h) and optionally `max_attempts`.
 */
import { z } from 'zod';
import { zDuration, zId } from '../lib/schema.js';
import { TEMPLATE_VARIABLES, unknownPlaceholders } from './message-format.js';

export const LANGUAGES = ['zh', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

export const contactSchema = z.strictObject({
  id: zId,
  name: z.string().min(1).max(200),
  phone: z
    .string()
    .regex(/^\+?[0-9]{5,20}$/, 'must be a phone number such as +8613800000001')
    .optional(),
  email: z
    .string()
    .regex(/^[^@\s]+@[^@\s]+$/, 'must be an e-mail address')
    .optional(),
});

const zUrl = z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http:// or https:// URL');

const zTimeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone such as Asia/Shanghai');

export const rateLimitSchema = z
  .strictObject({ max: z.number().int().min(1).max(100_000), per: zDuration })
  .refine((r) => r.per >= 1, { message: '`per` must be at least 1ms', path: ['per'] });
export type RateLimit = z.output<typeof rateLimitSchema>;

const zRateLimits = z.union([rateLimitSchema.transform((r) => [r]), z.array(rateLimitSchema).max(5)]);

/** Providers' documented limits for their group robots. */
export const ROBOT_RATE_LIMITS: Record<'wecom' | 'dingtalk' | 'feishu', RateLimit[]> = {
  wecom: [{ max: 20, per: 60_000 }],
  dingtalk: [{ max: 20, per: 60_000 }],
  feishu: [
    { max: 5, per: 1_000 },
    { max: 100, per: 60_000 },
  ],
};

const DEFAULT_MAX_AGE = 60 * 60_000;

/** Fields of every channel. */
const base = {
  id: zId,
  timeout: zDuration.default(10_000),
  /** Retries stop once a notification is this old (then it fails for good). */
  max_age: zDuration.default(DEFAULT_MAX_AGE),
  /** Optional cap on attempts; without it only max_age limits retries. */
  max_attempts: z.number().int().min(1).max(1000).optional(),
};

/** Fields of channels that render a message for people. */
const rendered = {
  language: z.enum(LANGUAGES).default('zh'),
  time_zone: zTimeZone.default('Asia/Shanghai'),
};

export const webhookChannelSchema = z.strictObject({
  ...base,
  type: z.literal('webhook'),
  url: zUrl,
  secret: z.string().min(1).optional(),
  headers: z.record(z.string(), z.string()).default({}),
});

export const wecomChannelSchema = z
  .strictObject({
    ...base,
    ...rendered,
    type: z.literal('wecom'),
    /** https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=… */
    url: zUrl,
    /** markdown (default) or text; only text can @-mention recipients by phone. */
    msgtype: z.enum(['markdown', 'text']).default('markdown'),
    rate_limit: zRateLimits.optional(),
  })
  .transform((c) => ({ ...c, rate_limit: c.rate_limit ?? ROBOT_RATE_LIMITS.wecom }));

export const dingtalkChannelSchema = z
  .strictObject({
    ...base,
    ...rendered,
    type: z.literal('dingtalk'),
    /** https://oapi.dingtalk.com/robot/send?access_token=… */
    url: zUrl,
    /** The robot's 加签 secret (SEC…); without it the robot must use keywords or an IP list. */
    secret: z.string().min(1).optional(),
    msgtype: z.enum(['markdown', 'text']).default('markdown'),
    rate_limit: zRateLimits.optional(),
  })
  .transform((c) => ({ ...c, rate_limit: c.rate_limit ?? ROBOT_RATE_LIMITS.dingtalk }));

export const feishuChannelSchema = z
  .strictObject({
    ...base,
    ...rendered,
    type: z.literal('feishu'),
    /** https://open.feishu.cn/open-apis/bot/v2/hook/… */
    url: zUrl,
    /** The bot's 签名校验 secret. */
    secret: z.string().min(1).optional(),
    /** card (default: an interactive card coloured by level, with an acknowledge button) or text. */
    msgtype: z.enum(['card', 'text']).default('card'),
    rate_limit: zRateLimits.optional(),
  })
  .transform((c) => ({ ...c, rate_limit: c.rate_limit ?? ROBOT_RATE_LIMITS.feishu }));

export const emailChannelSchema = z.strictObject({
  ...base,
  ...rendered,
  type: z.literal('email'),
  smtp: z
    .strictObject({
      host: z.string().min(1),
      port: z.number().int().min(1).max(65535).optional(),
      /** true: TLS from the start (port 465); false: STARTTLS when the server offers it. */
      secure: z.boolean().default(false),
      /** Refuse to send without STARTTLS. */
      require_tls: z.boolean().default(false),
      user: z.string().min(1).optional(),
      pass: z.string().min(1).optional(),
    })
    .refine((s) => (s.user === undefined) === (s.pass === undefined), { message: 'give both user and pass, or neither' }),
  from: z.string().min(3).max(300),
  rate_limit: zRateLimits.optional(),
});

/** SMS template values: a string with placeholders such as {asset_name} (see message-format.ts). */
const zTemplate = z
  .string()
  .max(1000)
  .superRefine((text, ctx) => {
    const unknown = unknownPlaceholders(text);
    if (unknown.length) ctx.addIssue({ code: 'custom', message: `unknown placeholder ${unknown.map((u) => `{${u}}`).join(', ')}; use ${TEMPLATE_VARIABLES.map((v) => `{${v}}`).join(' ')}` });
  });

const smsBase = { ...base, ...rendered, type: z.literal('sms'), rate_limit: zRateLimits.optional() };

export const smsHttpSchema = z
  .strictObject({
    ...smsBase,
    provider: z.literal('http'),
    url: zUrl,
    method: z.enum(['POST', 'GET']).default('POST'),
    headers: z.record(z.string(), z.string()).default({}),
    /** How `body` is encoded for POST. */
    content_type: z.enum(['json', 'form']).default('json'),
    /** Request fields; string values are templates ({phone}, {short_text}, …). Default { phone: "{phone}", text: "{short_text}" }. */
    body: z.record(z.string(), z.union([zTemplate, z.number(), z.boolean()])).optional(),
    /** Query parameters (templates) added to the URL. */
    query: z.record(z.string(), zTemplate).default({}),
    /** A gateway that answers 200 for errors: the JSON field (dot path) that must equal `equals`. */
    success: z.strictObject({ field: z.string().min(1).max(200), equals: z.union([z.string(), z.number(), z.boolean()]) }).optional(),
  })
  .transform((c) => ({ ...c, body: c.body ?? { phone: '{phone}', text: '{short_text}' } }));

export const smsAliyunSchema = z.strictObject({
  ...smsBase,
  provider: z.literal('aliyun'),
  endpoint: zUrl.default('https://dysmsapi.aliyuncs.com/'),
  region: z.string().min(1).default('cn-hangzhou'),
  access_key_id: z.string().min(1),
  access_key_secret: z.string().min(1),
  sign_name: z.string().min(1),
  template_code: z.string().min(1),
  /** TemplateParam: template variable -> template of its value. */
  template_params: z.record(z.string(), zTemplate).default({ message: '{short_text}' }),
});

export const smsTencentSchema = z.strictObject({
  ...smsBase,
  provider: z.literal('tencent'),
  endpoint: zUrl.default('https://sms.tencentcloudapi.com'),
  region: z.string().min(1).default('ap-guangzhou'),
  secret_id: z.string().min(1),
  secret_key: z.string().min(1),
  sdk_app_id: z.string().regex(/^\d+$/, 'must be the SmsSdkAppId, digits only'),
  sign_name: z.string().min(1),
  template_id: z.string().regex(/^\d+$/, 'must be the template id, digits only'),
  /** TemplateParamSet, in the template's order. */
  template_params: z.array(zTemplate).max(20).default(['{short_text}']),
});

export const smsTwilioSchema = z
  .strictObject({
    ...smsBase,
    provider: z.literal('twilio'),
    endpoint: zUrl.default('https://api.twilio.com'),
    account_sid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'must be an Account SID (AC + 32 hex digits)'),
    auth_token: z.string().min(1),
    from: z.string().min(1).optional(),
    messaging_service_sid: z
      .string()
      .regex(/^MG[0-9a-fA-F]{32}$/, 'must be a Messaging Service SID (MG + 32 hex digits)')
      .optional(),
  })
  .refine((c) => (c.from === undefined) !== (c.messaging_service_sid === undefined), { message: 'give exactly one of from and messaging_service_sid' });

export const SMS_PROVIDERS = ['http', 'aliyun', 'tencent', 'twilio'] as const;
export const CHANNEL_TYPES = ['webhook', 'wecom', 'dingtalk', 'feishu', 'email', 'sms'] as const;

const SCHEMA_BY_TYPE = {
  webhook: webhookChannelSchema,
  wecom: wecomChannelSchema,
  dingtalk: dingtalkChannelSchema,
  feishu: feishuChannelSchema,
  email: emailChannelSchema,
} as const;

const SMS_SCHEMA_BY_PROVIDER = { http: smsHttpSchema, aliyun: smsAliyunSchema, tencent: smsTencentSchema, twilio: smsTwilioSchema } as const;

/** A channel of any type; dispatches on `type` (and `provider` for sms) for clear messages. */
export const channelSchema = z.unknown().transform((raw, ctx) => {
  const obj = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
  const type = obj?.type;
  let schema: z.ZodType | undefined;
  if (type === 'sms') {
    const provider = obj?.provider;
    schema = typeof provider === 'string' ? SMS_SCHEMA_BY_PROVIDER[provider as keyof typeof SMS_SCHEMA_BY_PROVIDER] : undefined;
    if (!schema) {
      ctx.addIssue({ code: 'custom', path: ['provider'], message: `unknown sms provider ${JSON.stringify(provider)}; use one of ${SMS_PROVIDERS.join(', ')}` });
      return z.NEVER;
    }
  } else {
    schema = typeof type === 'string' ? SCHEMA_BY_TYPE[type as keyof typeof SCHEMA_BY_TYPE] : undefined;
    if (!schema) {
      ctx.addIssue({ code: 'custom', path: ['type'], message: `unknown channel type ${JSON.stringify(type)}; use one of ${CHANNEL_TYPES.join(', ')}` });
      return z.NEVER;
    }
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, code: 'custom', message: issue.message, path: issue.path } as never);
    return z.NEVER;
  }
  return parsed.data as ChannelConfig;
});

export const SCHEDULE_PREFIX = 'schedule:';
export const DEPARTMENT_PREFIX = 'department:';

/**
 * Recipients in a notify target's `to`: a contact id, `{ schedule: ID }` (whoever is on call when
 * the notification is sent) or `{ department: ID }` (that department's own `notify`). Parsed to
 * strings: a contact id as is, the others as `schedule:ID` and `department:ID` (ids never hold ':').
 */
export const recipientSchema = z.union([
  zId,
  z.strictObject({ schedule: zId }).transform((r) => `${SCHEDULE_PREFIX}${r.schedule}`),
  z.strictObject({ department: zId }).transform((r) => `${DEPARTMENT_PREFIX}${r.department}`),
]);

export type RecipientRef = { kind: 'contact' | 'schedule' | 'department'; id: string };

/** What a recipient names, from its parsed string or its configured form (check reads both). */
export function recipientRef(value: unknown): RecipientRef | undefined {
  if (typeof value === 'string') {
    if (value.startsWith(SCHEDULE_PREFIX)) return { kind: 'schedule', id: value.slice(SCHEDULE_PREFIX.length) };
    if (value.startsWith(DEPARTMENT_PREFIX)) return { kind: 'department', id: value.slice(DEPARTMENT_PREFIX.length) };
    return { kind: 'contact', id: value };
  }
  if (value !== null && typeof value === 'object') {
    const v = value as { schedule?: unknown; department?: unknown };
    if (typeof v.schedule === 'string') return { kind: 'schedule', id: v.schedule };
    if (typeof v.department === 'string') return { kind: 'department', id: v.department };
  }
  return undefined;
}

export const notifyTargetSchema = z.union([zId.transform((channel) => ({ channel, to: [] as string[] })), z.strictObject({ channel: zId, to: z.array(recipientSchema).default([]) })]);

export const escalationSchema = z.strictObject({
  id: zId,
  tiers: z.array(z.strictObject({ after: zDuration.default(0), notify: z.array(notifyTargetSchema).min(1) })).min(1),
  repeat: zDuration.optional(),
  /** An acknowledged case neither dispatched nor closed this long escalates again (tier after the last notified). */
  ack_timeout: zDuration.optional(),
});

export const DEPARTMENT_KINDS = ['owner', 'authority', 'street', 'command'] as const;

/** A department that owns or supervises assets and takes work orders (contract: the disposal loop). */
export const departmentSchema = z.strictObject({
  id: zId,
  name: z.string().min(1).max(200),
  kind: z.enum(DEPARTMENT_KINDS),
  /** How its work orders (and overdue notices) reach it. */
  notify: z.array(notifyTargetSchema).min(1),
});

const zHandoff = z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'must be a time of day HH:MM such as 08:30');
const zDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD')
  .refine((d) => {
    const [y, m, day] = d.split('-').map(Number) as [number, number, number];
    const t = new Date(Date.UTC(y, m - 1, day));
    return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === day;
  }, 'is not a calendar date');

/** An on-call rotation (see oncall.ts for how shifts are counted). */
export const scheduleSchema = z.strictObject({
  id: zId,
  time_zone: zTimeZone.default('Asia/Shanghai'),
  rotation: z.strictObject({
    members: z.array(zId).min(1).max(100),
    shift: zDuration.refine((ms) => ms >= 60_000, 'must be at least 1m'),
    handoff: zHandoff.default('00:00'),
    start: zDate,
  }),
});

/** The escalation that `delivery_failed` alerts go to (contract: Escalation). */
export const FALLBACK_ESCALATION = 'fallback';

export type ContactConfig = z.output<typeof contactSchema>;
export type WebhookChannelConfig = z.output<typeof webhookChannelSchema>;
export type WecomChannelConfig = z.output<typeof wecomChannelSchema>;
export type DingtalkChannelConfig = z.output<typeof dingtalkChannelSchema>;
export type FeishuChannelConfig = z.output<typeof feishuChannelSchema>;
export type EmailChannelConfig = z.output<typeof emailChannelSchema>;
export type SmsHttpChannelConfig = z.output<typeof smsHttpSchema>;
export type SmsAliyunChannelConfig = z.output<typeof smsAliyunSchema>;
export type SmsTencentChannelConfig = z.output<typeof smsTencentSchema>;
export type SmsTwilioChannelConfig = z.output<typeof smsTwilioSchema>;
export type SmsChannelConfig = SmsHttpChannelConfig | SmsAliyunChannelConfig | SmsTencentChannelConfig | SmsTwilioChannelConfig;
export type ChannelConfig = WebhookChannelConfig | WecomChannelConfig | DingtalkChannelConfig | FeishuChannelConfig | EmailChannelConfig | SmsChannelConfig;
export type ChannelType = ChannelConfig['type'];
export type NotifyTarget = z.output<typeof notifyTargetSchema>;
export type EscalationConfig = z.output<typeof escalationSchema>;
export type DepartmentConfig = z.output<typeof departmentSchema>;
export type ScheduleConfig = z.output<typeof scheduleSchema>;

/**
 * How a channel addresses people: `group` channels (webhook, robots) get one notification per
 * escalation step, naming the contacts for @-mentions; `person` channels (sms, email) get one
 * notification per contact, each with its own delivery_id, retries and outcome.
 */
export function channelAddressing(type: ChannelType): 'group' | 'person' {
  return type === 'sms' || type === 'email' ? 'person' : 'group';
}

/** The contact field a person channel needs. */
export function requiredContactField(type: ChannelType): 'phone' | 'email' | undefined {
  return type === 'sms' ? 'phone' : type === 'email' ? 'email' : undefined;
}

export function rateLimitsOf(config: ChannelConfig): RateLimit[] {
  return 'rate_limit' in config && config.rate_limit ? config.rate_limit : [];
}

/**
 * Cross-references between escalations, departments, channels, contacts and schedules that the
 * schema of one item cannot see: SMS and e-mail targets need contacts with a phone number or
 * e-mail address, also every member of a schedule they name. Reads its input defensively (items
 * may be invalid), for `watchpost check` to list every error.
 */
export function escalationTargetIssues(
  channels: ReadonlyArray<Record<string, unknown>>,
  contacts: ReadonlyArray<Record<string, unknown>>,
  escalations: ReadonlyArray<Record<string, unknown>>,
  departments: ReadonlyArray<Record<string, unknown>> = [],
  schedules: ReadonlyArray<Record<string, unknown>> = [],
): Array<{ path: (string | number)[]; message: string }> {
  const issues: Array<{ path: (string | number)[]; message: string }> = [];
  const typeOf = new Map(channels.map((c) => [c.id, c.type]));
  const contactById = new Map(contacts.map((c) => [c.id, c]));
  const list = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);
  const membersOf = new Map(schedules.map((s) => [s.id, list((s.rotation as { members?: unknown } | null)?.members)]));
  const checkTargets = (notify: unknown, path: (string | number)[]) => {
    list(notify).forEach((target, n) => {
      if (typeof target === 'string' || target === null || typeof target !== 'object') {
        const type = typeOf.get(target);
        if (type === 'sms' || type === 'email')
          issues.push({ path: [...path, n], message: `channel "${String(target)}" (${type}) needs \`to\`: the contacts to ${type === 'sms' ? 'text' : 'mail'}` });
        return;
      }
      const { channel, to } = target as { channel?: unknown; to?: unknown };
      const type = typeOf.get(channel);
      if (type !== 'sms' && type !== 'email') return;
      const field = type === 'sms' ? 'phone' : 'email';
      const needs = field === 'phone' ? 'phone number' : 'e-mail address';
      if (list(to).length === 0) issues.push({ path: [...path, n, 'to'], message: `channel "${String(channel)}" (${type}) needs at least one contact` });
      list(to).forEach((value, k) => {
        const ref = recipientRef(value);
        if (ref?.kind === 'contact') {
          const contact = contactById.get(ref.id);
          if (contact && typeof contact[field] !== 'string')
            issues.push({ path: [...path, n, 'to', k], message: `contact "${ref.id}" has no ${needs}, which channel "${String(channel)}" (${type}) needs` });
        } else if (ref?.kind === 'schedule') {
          for (const member of membersOf.get(ref.id) ?? []) {
            const contact = contactById.get(member);
            if (contact && typeof contact[field] !== 'string')
              issues.push({
                path: [...path, n, 'to', k],
                message: `contact "${String(member)}" of schedule "${ref.id}" has no ${needs}, which channel "${String(channel)}" (${type}) needs`,
              });
          }
        }
      });
    });
  };
  escalations.forEach((esc, i) => {
    list(esc.tiers).forEach((tier, t) => checkTargets((tier as { notify?: unknown } | null)?.notify, ['escalations', i, 'tiers', t, 'notify']));
  });
  departments.forEach((dep, i) => checkTargets(dep.notify, ['departments', i, 'notify']));
  return issues;
}
