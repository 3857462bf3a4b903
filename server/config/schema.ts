/**
 * The one configuration schema: every part contributes its section, this file composes them and
 * adds the cross-references between sections (devices -> assets, rules -> escalations, ...).
 */
import { z } from 'zod';
import { zId } from '../../lib/schema.js';
import { assetSchema, brokerSchema, deviceSchema, metricSchema, storageSchema, tlsFilesSchema } from '../../ingest/config.js';
import { ruleSchema } from '../../rules/config.js';
import { channelSchema, contactSchema, departmentSchema, escalationSchema, escalationTargetIssues, recipientRef, scheduleSchema } from '../../alerts/config.js';
import { consoleSchema } from '../console/config.js';
import { sparkplugAdapterSchema } from '../../ingest/sparkplug/config.js';
import { httpAdapterSchema } from '../../ingest/http-push/config.js';
import { gb26875AdapterSchema } from '../../ingest/gb26875/config.js';
import { clusterSchema } from './cluster.js';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const apiSchema = z
  .strictObject({
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(8080),
    public_url: z
      .string()
      .regex(/^https?:\/\//, 'must be an http:// or https:// URL')
      .default('http://127.0.0.1:8080'),
    max_body_bytes: z
      .number()
      .int()
      .min(1024)
      .max(10 * 1024 * 1024)
      .default(64 * 1024),
    /** HTTPS from PEM files (with ca_file: clients must present a certificate it signed). */
    tls: tlsFilesSchema.optional(),
    tokens: z
      .array(
        z.strictObject({
          name: z.string().min(1).max(100),
          token: z.string().min(16, 'must be at least 16 characters'),
          role: z.enum(ROLES),
        }),
      )
      .default([]),
  })
  .default({ host: '0.0.0.0', port: 8080, public_url: 'http://127.0.0.1:8080', max_body_bytes: 64 * 1024, tokens: [] });

/** Sections that are lists: concatenated across files, items carry ids unique across files. */
export const LIST_SECTIONS = ['assets', 'devices', 'rules', 'contacts', 'channels', 'escalations', 'departments', 'schedules', 'adapters'] as const;
/** Sections that are maps: merged key by key across files. */
export const MAP_SECTIONS = ['metrics'] as const;
/** Sections that may appear in one file only. */
export const SINGLE_SECTIONS = ['broker', 'api', 'storage', 'console', 'cluster'] as const;
export const SECTIONS = [...SINGLE_SECTIONS, ...MAP_SECTIONS, ...LIST_SECTIONS] as const;

const REFERENCE_NOUN: Record<string, string> = {
  assets: 'asset',
  devices: 'device',
  escalations: 'escalation',
  channels: 'channel',
  contacts: 'contact',
  departments: 'department',
  schedules: 'schedule',
};

/** What a cross-reference issue carries in `params`: the section and id it names. */
export interface ReferenceParams {
  reference: { section: (typeof LIST_SECTIONS)[number]; id: string };
}

/** Device adapters (contract: Device adapters), by `type`. */
export const adapterSchema = z.discriminatedUnion('type', [gb26875AdapterSchema, sparkplugAdapterSchema, httpAdapterSchema]);

export const configSchema = z
  .strictObject({
    broker: brokerSchema,
    api: apiSchema,
    storage: storageSchema,
    console: consoleSchema,
    cluster: clusterSchema,
    assets: z.array(assetSchema).default([]),
    metrics: z.record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'metric names must match [a-z][a-z0-9_]{0,63}'), metricSchema).default({}),
    devices: z.array(deviceSchema).default([]),
    rules: z.array(ruleSchema).default([]),
    contacts: z.array(contactSchema).default([]),
    channels: z.array(channelSchema).default([]),
    escalations: z.array(escalationSchema).default([]),
    departments: z.array(departmentSchema).default([]),
    schedules: z.array(scheduleSchema).default([]),
    adapters: z.array(adapterSchema).default([]),
  })
  // Cross-references are checked even when some items are invalid (`when` below), so
  // `watchpost check` lists every error at once; the data is therefore read defensively.
  .superRefine(
    (config, ctx) => {
      const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
      // A reference to another item: the loader drops it when that item exists but failed (its own error is the cause).
      const reference = (path: (string | number)[], section: ReferenceParams['reference']['section'], id: string) =>
        ctx.addIssue({ code: 'custom', path, message: `unknown ${REFERENCE_NOUN[section]} "${id}"`, params: { reference: { section, id } } });
      const raw = config as unknown as Record<string, unknown>;
      const items = (section: string): Array<Record<string, unknown>> =>
        (Array.isArray(raw[section]) ? (raw[section] as unknown[]) : []).map((x) => (x !== null && typeof x === 'object' ? (x as Record<string, unknown>) : {}));
      const list = (x: unknown): unknown[] => (Array.isArray(x) ? x : x === undefined || x === null ? [] : [x]);

      for (const section of LIST_SECTIONS) {
        const seen = new Map<string, number>();
        items(section).forEach((item, i) => {
          if (typeof item.id !== 'string') return;
          const first = seen.get(item.id);
          if (first !== undefined) issue([section, i, 'id'], `duplicate id "${item.id}" (also ${section}[${first}])`);
          else seen.set(item.id, i);
        });
      }

      const assetIds = new Set(items('assets').map((a) => a.id));
      items('assets').forEach((asset, i) => {
        const sensors = new Set<unknown>();
        list(asset.sensors).forEach((s, j) => {
          const id = (s as { id?: unknown } | null)?.id;
          if (sensors.has(id)) issue(['assets', i, 'sensors', j, 'id'], `duplicate sensor id "${String(id)}"`);
          sensors.add(id);
        });
      });

      items('devices').forEach((device, i) => {
        list(device.assets).forEach((assetId, j) => {
          if (typeof assetId === 'string' && !assetIds.has(assetId)) reference(['devices', i, 'assets', j], 'assets', assetId);
        });
      });

      const escalationIds = new Set(items('escalations').map((e) => e.id));
      const checkEscalation = (path: (string | number)[], id: unknown) => {
        if (typeof id === 'string' && !escalationIds.has(id)) reference(path, 'escalations', id);
      };
      items('rules').forEach((rule, i) => {
        // Watchpost's own alerts (spool, deadman) use these rule ids.
        if (typeof rule.id === 'string' && rule.id.startsWith('platform-')) issue(['rules', i, 'id'], 'rule ids starting with "platform-" are reserved for Watchpost\'s own alerts');
        if (rule.id === 'delivery_failed') issue(['rules', i, 'id'], 'the rule id "delivery_failed" is reserved for failed-delivery alerts');
        const ref = rule.escalation;
        if (ref !== null && typeof ref === 'object') {
          for (const [level, id] of Object.entries(ref)) checkEscalation(['rules', i, 'escalation', level], id);
        } else checkEscalation(['rules', i, 'escalation'], ref);
        const match = rule.match as Record<string, unknown> | undefined;
        list(match?.asset_id).forEach((id, j) => {
          if (typeof id === 'string' && !assetIds.has(id)) reference(['rules', i, 'match', 'asset_id', ...(Array.isArray(match?.asset_id) ? [j] : [])], 'assets', id);
        });
        // GB/T 26875.3 transmission devices have a presence too (adapters[].devices[].device).
        const deviceIds = new Set([
          ...items('devices').map((d) => d.id),
          ...items('adapters').flatMap((a) => (a.type === 'gb26875' ? list(a.devices).map((m) => (m as { device?: unknown } | null)?.device) : [])),
        ]);
        list(match?.device_id).forEach((id, j) => {
          if (typeof id === 'string' && !deviceIds.has(id)) reference(['rules', i, 'match', 'device_id', ...(Array.isArray(match?.device_id) ? [j] : [])], 'devices', id);
        });
      });

      const channelIds = new Set(items('channels').map((c) => c.id));
      const contactIds = new Set(items('contacts').map((c) => c.id));
      const departmentIds = new Set(items('departments').map((d) => d.id));
      const scheduleIds = new Set(items('schedules').map((s) => s.id));
      const checkNotify = (notify: unknown, path: (string | number)[]) => {
        list(notify).forEach((target, n) => {
          const channel = typeof target === 'string' ? target : (target as { channel?: unknown } | null)?.channel;
          if (typeof channel === 'string' && !channelIds.has(channel)) reference([...path, n, 'channel'], 'channels', channel);
          list((target as { to?: unknown } | null)?.to).forEach((value, k) => {
            const ref = recipientRef(value);
            if (ref?.kind === 'contact' && !contactIds.has(ref.id)) reference([...path, n, 'to', k], 'contacts', ref.id);
            if (ref?.kind === 'schedule' && !scheduleIds.has(ref.id)) reference([...path, n, 'to', k, 'schedule'], 'schedules', ref.id);
            if (ref?.kind === 'department' && !departmentIds.has(ref.id)) reference([...path, n, 'to', k, 'department'], 'departments', ref.id);
          });
        });
      };
      items('departments').forEach((dep, i) => checkNotify(dep.notify, ['departments', i, 'notify']));
      items('schedules').forEach((schedule, i) => {
        list((schedule.rotation as { members?: unknown } | null)?.members).forEach((member, k) => {
          if (typeof member === 'string' && !contactIds.has(member)) reference(['schedules', i, 'rotation', 'members', k], 'contacts', member);
        });
      });
      items('assets').forEach((asset, i) => {
        if (typeof asset.owner === 'string' && !departmentIds.has(asset.owner)) reference(['assets', i, 'owner'], 'departments', asset.owner);
        list(asset.authorities).forEach((id, j) => {
          if (typeof id === 'string' && !departmentIds.has(id)) reference(['assets', i, 'authorities', j], 'departments', id);
        });
      });
      items('rules').forEach((rule, i) => {
        const department = (rule.dispatch as { department?: unknown } | null | undefined)?.department;
        if (typeof department === 'string' && department !== 'owner' && !departmentIds.has(department)) reference(['rules', i, 'dispatch', 'department'], 'departments', department);
      });
      items('escalations').forEach((esc, i) => {
        let previousAfter = -1;
        list(esc.tiers).forEach((tier, t) => {
          const { notify, after } = (tier ?? {}) as { notify?: unknown; after?: unknown };
          checkNotify(notify, ['escalations', i, 'tiers', t, 'notify']);
          if (typeof after === 'number') {
            if (after < previousAfter) issue(['escalations', i, 'tiers', t, 'after'], 'tiers must be in order of `after`');
            previousAfter = after;
          }
        });
      });

      // SMS and e-mail targets need contacts with a phone number / e-mail address.
      for (const i of escalationTargetIssues(items('channels'), items('contacts'), items('escalations'), items('departments'), items('schedules'))) issue(i.path, i.message);

      // Adapters: one of each type; a Sparkplug edge node is a device that may publish for its asset.
      const deviceAssets = new Map(items('devices').map((d) => [d.id, new Set(list(d.assets))]));
      const adapterTypes = new Map<unknown, number>();
      items('adapters').forEach((adapter, i) => {
        const first = adapterTypes.get(adapter.type);
        if (first !== undefined && (adapter.type === 'sparkplug' || adapter.type === 'http'))
          issue(['adapters', i, 'type'], `only one ${String(adapter.type)} adapter (also adapters[${first}])`);
        else adapterTypes.set(adapter.type, i);
        if (adapter.type === 'gb26875') {
          // A transmission device is a device of its own (presence, offline rules), not an MQTT device.
          list(adapter.devices).forEach((mapping, j) => {
            const { device, asset } = (mapping ?? {}) as { device?: unknown; asset?: unknown };
            if (typeof asset === 'string' && !assetIds.has(asset)) reference(['adapters', i, 'devices', j, 'asset'], 'assets', asset);
            if (typeof device === 'string' && deviceAssets.has(device))
              issue(['adapters', i, 'devices', j, 'device'], `"${device}" is an MQTT device (devices); a transmission device needs an id of its own`);
          });
          return;
        }
        if (adapter.type !== 'sparkplug') return;
        list(adapter.nodes).forEach((node, j) => {
          const { edge, asset } = (node ?? {}) as { edge?: unknown; asset?: unknown };
          if (typeof asset === 'string' && !assetIds.has(asset)) reference(['adapters', i, 'nodes', j, 'asset'], 'assets', asset);
          if (typeof edge !== 'string') return;
          const assets = deviceAssets.get(edge);
          if (!assets) reference(['adapters', i, 'nodes', j, 'edge'], 'devices', edge);
          else if (typeof asset === 'string' && !assets.has(asset))
            issue(['adapters', i, 'nodes', j, 'asset'], `device "${edge}" (the edge node) may not publish for asset "${asset}": add it to the device's assets`);
        });
      });

      const api = (raw.api ?? {}) as { tokens?: unknown };
      const tokens = new Set<unknown>();
      list(api.tokens).forEach((t, i) => {
        const token = (t as { token?: unknown } | null)?.token;
        if (typeof token === 'string' && tokens.has(token)) issue(['api', 'tokens', i, 'token'], 'the same token is given twice');
        tokens.add(token);
      });
    },
    { when: () => true },
  );

export type WatchpostConfig = z.output<typeof configSchema>;
export type ApiConfig = WatchpostConfig['api'];
export { zId };
