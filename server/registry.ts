/**
 * Assets and devices changed at run time (contract: "The registry at run time"). Each change is
 * validated with the whole configuration directory as `watchpost check` validates it, kept by the
 * registry's backend (registry-backend.ts: registry.yaml, or PostgreSQL in a cluster) and applied
 * at once, as a reload would; a change that would make the configuration invalid is refused with
 * every error and nothing changes.
 *
 * Secrets: a device created without one gets 32 random bytes (CSPRNG) as base64url, returned
 * once; only its scrypt hash is kept. A secret given in the body is hashed too (at least 8
 * characters, as the configuration requires). Items defined in another file of the directory are
 * that file's: changing them here is refused (409), edit the file.
 *
 * Changes are serialised in the process: each reads, validates, keeps and applies the content as
 * the one before left it (hashing runs before, off the event loop). Another instance's change in
 * between (a cluster) makes the backend refuse the write as a conflict; the change is then
 * computed again from the new content, so neither is lost.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { hashSecret } from '../ingest/device-auth.js';
import { assetSchema, deviceSchema } from '../ingest/config.js';
import { zId } from '../lib/schema.js';
import { loadConfig, type ConfigError } from './config/load.js';
import type { WatchpostConfig } from './config/schema.js';
import { FileRegistryBackend, RegistryConflict, RegistryError, type RegistryBackend, type RegistrySnapshot } from './registry-backend.js';
import { idsInOtherFiles, REGISTRY_FILE, renderRegistry, validateWith, type RawItem, type RegistryContent } from './registry-file.js';

export type { RawItem } from './registry-file.js';
export { RegistryError } from './registry-backend.js';

/** The minimum length of a device secret (as the configuration's `secret`). */
export const MIN_SECRET_LENGTH = 8;
const GENERATED_SECRET_BYTES = 32;
/** Writes refused as conflicts (another instance changed the registry) before the change is given up. */
const MAX_ATTEMPTS = 5;

/** PUT /api/v1/assets/{id}: the configuration's asset object; `id`, if given, must be the path's. */
export const assetBody = assetSchema.omit({ id: true }).extend({ id: zId.optional() });

/** PUT /api/v1/devices/{id}: assets, subscription filters and optionally the credential. */
export const deviceBody = z
  .strictObject({
    id: zId.optional(),
    assets: z.array(zId),
    subscribe: z.array(z.string().min(1)).default([]),
    secret: z.string().min(MIN_SECRET_LENGTH, `must be at least ${MIN_SECRET_LENGTH} characters`).max(1024).optional(),
    secret_hash: deviceSchema.shape.secret_hash,
  })
  .refine((d) => d.secret === undefined || d.secret_hash === undefined, { message: 'give at most one of secret or secret_hash' });

export type AssetBody = z.output<typeof assetBody>;
export type DeviceBody = z.output<typeof deviceBody>;

export interface RegistryDeps {
  configDir: string;
  /** The configuration in force (for the devices that reference an asset). */
  current: () => WatchpostConfig;
  /** Applies a configuration validated as a whole (the reloader's applyConfig). */
  apply: (config: WatchpostConfig) => void;
  hash?: (secret: string) => Promise<string>;
  load?: typeof loadConfig;
  /** Where changes are kept: registry.yaml in configDir by default. */
  backend?: RegistryBackend;
}

export type DeviceView = { id: string; assets: string[]; subscribe: string[] };

/** Every body error, as configuration errors of the request body. */
export function bodyErrors(error: z.ZodError): ConfigError[] {
  return error.issues.map((i) => ({ file: '(request body)', path: i.path.length === 0 ? '(root)' : i.path.join('.'), message: i.message }));
}

function parseBody<T extends z.ZodType>(schema: T, value: unknown, id: string): z.output<T> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    const errors = bodyErrors(result.error);
    throw new RegistryError('invalid_config', `the request body has ${errors.length} error${errors.length === 1 ? '' : 's'}; nothing changed`, 400, { errors });
  }
  const data = result.data as { id?: string };
  if (data.id !== undefined && data.id !== id)
    throw new RegistryError('invalid_config', `the body's id "${data.id}" is not the path's "${id}"`, 400, {
      errors: [{ file: '(request body)', path: 'id', message: `must be "${id}" (the path's id) or absent` }],
    });
  return result.data;
}

export function generateSecret(): string {
  return randomBytes(GENERATED_SECRET_BYTES).toString('base64url');
}

const deviceView = (d: RawItem): DeviceView => ({ id: d.id, assets: (d.assets as string[] | undefined) ?? [], subscribe: (d.subscribe as string[] | undefined) ?? [] });

export class Registry {
  private readonly backend: RegistryBackend;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: RegistryDeps) {
    this.backend = deps.backend ?? new FileRegistryBackend(deps.configDir);
  }

  private get dir(): string {
    return this.deps.configDir;
  }

  /** The content in force, after the checks every change needs. */
  private begin(section: 'assets' | 'devices', id: string): RegistrySnapshot {
    const refused = this.backend.unwritable();
    if (refused) throw refused;
    const snapshot = this.backend.read();
    if (!snapshot) {
      const result = (this.deps.load ?? loadConfig)(this.dir);
      const errors = result.ok ? [{ file: REGISTRY_FILE, path: '(root)', message: 'must be a mapping with lists of assets and devices' }] : result.errors;
      throw new RegistryError('invalid_config', `${REGISTRY_FILE} cannot be read; fix it by hand first (${errors.length} error${errors.length === 1 ? '' : 's'})`, 400, { errors });
    }
    const other = idsInOtherFiles(this.dir)[section].get(id);
    if (other !== undefined) {
      const noun = section === 'assets' ? 'asset' : 'device';
      throw new RegistryError(`${noun}_defined_elsewhere`, `${noun} "${id}" is defined in ${other}; change it there`, 409, { file: other });
    }
    return snapshot;
  }

  /** Validates the directory with `content` as the registry, keeps it and applies it. */
  private async commit(snapshot: RegistrySnapshot, content: RegistryContent): Promise<void> {
    const text = renderRegistry(content);
    const result = validateWith(this.dir, text, this.deps.load);
    if (!result.ok) {
      const errors = result.errors;
      throw new RegistryError('invalid_config', `the change would make the configuration invalid (${errors.length} error${errors.length === 1 ? '' : 's'}); nothing changed`, 400, {
        errors,
      });
    }
    await this.backend.write(snapshot, content, text);
    this.deps.apply(result.config);
  }

  /** Runs one change after the other in this process. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Computes a change from the content in force, then validates, keeps and applies it; computed
   * again from the new content when another instance changed the registry in between.
   */
  private change<T>(section: 'assets' | 'devices', id: string, compute: (content: RegistryContent) => { content: RegistryContent; result: T }): Promise<T> {
    return this.exclusive(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.backend.exclusive(async () => {
            const snapshot = this.begin(section, id);
            const next = compute(snapshot.content);
            await this.commit(snapshot, next.content);
            return next.result;
          });
        } catch (err) {
          if (!(err instanceof RegistryConflict)) throw err;
          if (attempt >= MAX_ATTEMPTS) throw new RegistryError('conflict', `the registry kept changing while this change was made (${attempt} attempts); send it again`, 409);
        }
      }
    });
  }

  private notFound(noun: 'asset' | 'device', id: string): RegistryError {
    return new RegistryError('not_found', `no ${noun} "${id}" in ${this.backend.where}`, 404);
  }

  putAsset(id: string, body: unknown): Promise<{ created: boolean; asset: RawItem }> {
    const parsed = parseBody(assetBody, body, id);
    const asset: RawItem = { ...parsed, id };
    return this.change('assets', id, (content) => {
      const index = content.assets.findIndex((a) => a.id === id);
      const assets = index < 0 ? [...content.assets, asset] : content.assets.map((a, i) => (i === index ? asset : a));
      return { content: { ...content, assets }, result: { created: index < 0, asset } };
    });
  }

  deleteAsset(id: string): Promise<void> {
    return this.change('assets', id, (content) => {
      if (!content.assets.some((a) => a.id === id)) throw this.notFound('asset', id);
      const referencing = new Set<string>();
      for (const d of this.deps.current().devices) if (d.assets.includes(id)) referencing.add(d.id);
      for (const d of content.devices) if (Array.isArray(d.assets) && d.assets.includes(id)) referencing.add(d.id);
      if (referencing.size > 0) {
        const devices = [...referencing].sort();
        throw new RegistryError('asset_in_use', `asset "${id}" is still referenced by device${devices.length === 1 ? '' : 's'} ${devices.join(', ')}`, 409, { devices });
      }
      return { content: { ...content, assets: content.assets.filter((a) => a.id !== id) }, result: undefined };
    });
  }

  /** Creates or replaces a device; `secret` is set when one was generated (returned once). */
  async putDevice(id: string, body: unknown): Promise<{ created: boolean; device: DeviceView; secret?: string }> {
    const parsed = parseBody(deviceBody, body, id);
    const existing = this.backend.read()?.content.devices.find((d) => d.id === id);
    let generated: string | undefined;
    let credential: { secret_hash: string } | { secret: string } | undefined;
    if (parsed.secret !== undefined) credential = { secret_hash: await this.hash(parsed.secret) };
    else if (parsed.secret_hash !== undefined) credential = { secret_hash: parsed.secret_hash };
    else if (!existing) {
      generated = generateSecret();
      credential = { secret_hash: await this.hash(generated) };
    }
    return this.change('devices', id, (content) => {
      const index = content.devices.findIndex((d) => d.id === id);
      const before = index < 0 ? undefined : content.devices[index]!;
      if (!credential && !before) {
        // Deleted while this request waited: create it afresh (a secret cannot be generated now without waiting again).
        throw new RegistryError('conflict', `device "${id}" was deleted meanwhile; send the request again`, 409);
      }
      const kept = before && !credential ? (before.secret_hash !== undefined ? { secret_hash: before.secret_hash } : { secret: before.secret }) : credential!;
      const device: RawItem = { id, ...kept, assets: parsed.assets, ...(parsed.subscribe.length > 0 ? { subscribe: parsed.subscribe } : {}) };
      const devices = index < 0 ? [...content.devices, device] : content.devices.map((d, i) => (i === index ? device : d));
      // A secret generated for a device another request created meanwhile is still the one now kept.
      return { content: { ...content, devices }, result: { created: index < 0, device: deviceView(device), ...(generated !== undefined ? { secret: generated } : {}) } };
    });
  }

  deleteDevice(id: string): Promise<void> {
    return this.change('devices', id, (content) => {
      if (!content.devices.some((d) => d.id === id)) throw this.notFound('device', id);
      return { content: { ...content, devices: content.devices.filter((d) => d.id !== id) }, result: undefined };
    });
  }

  /** A new secret for a device of the registry: the old one stops working and its connections close. */
  async rotateSecret(id: string): Promise<{ id: string; secret: string }> {
    this.begin('devices', id);
    const secret = generateSecret();
    const secret_hash = await this.hash(secret);
    return this.change('devices', id, (content) => {
      const index = content.devices.findIndex((d) => d.id === id);
      if (index < 0) throw this.notFound('device', id);
      const { secret: _old, secret_hash: _oldHash, ...rest } = content.devices[index]!;
      const device: RawItem = { ...rest, id, secret_hash };
      return { content: { ...content, devices: content.devices.map((d, i) => (i === index ? device : d)) }, result: { id, secret } };
    });
  }

  private hash(secret: string): Promise<string> {
    return (this.deps.hash ?? hashSecret)(secret);
  }
}
