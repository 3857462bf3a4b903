/**
 * The console's files: built by `npm run build` (console/build.mjs) into dist/console and served
 * from there, so it runs without any network beyond Watchpost itself. /console and every path
 * under it that is not a file answer index.html: the application routes them (and shows its own
 * page for an unknown one).
 */
import { readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** A file name the build writes: no directories, no dot files. */
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

export interface StaticFile {
  body: Buffer;
  type: string;
  /** Hashed names never change: cached for a year; index.html is always revalidated. */
  immutable: boolean;
}

export class ConsoleFiles {
  private readonly cache = new Map<string, StaticFile>();

  constructor(private readonly dir: string) {}

  /** The file at `/console/assets/<name>`, or undefined. */
  asset(name: string): StaticFile | undefined {
    if (!ASSET_NAME.test(name) || !TYPES[extname(name)]) return undefined;
    return this.read(join('assets', name), true);
  }

  index(): StaticFile | undefined {
    return this.read('index.html', false);
  }

  private read(relative: string, immutable: boolean): StaticFile | undefined {
    const cached = this.cache.get(relative);
    if (cached) return cached;
    const file = join(this.dir, relative);
    try {
      if (!statSync(file).isFile()) return undefined;
    } catch {
      return undefined;
    }
    const entry = { body: readFileSync(file), type: TYPES[extname(file)] ?? 'application/octet-stream', immutable };
    this.cache.set(relative, entry);
    return entry;
  }
}

/** The Content-Security-Policy of the console: its own origin only, plus the tile server's images. */
export function contentSecurityPolicy(mapTiles: string | undefined): string {
  let tiles = '';
  if (mapTiles) {
    try {
      tiles = ` ${new URL(mapTiles.replace(/\{[a-z]\}/g, '0')).origin}`;
    } catch {
      tiles = '';
    }
  }
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    `img-src 'self' data:${tiles}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}
