import { describe, expect, it } from 'vitest';
import { diffItems, diffSections } from './config-reload.js';
import type { WatchpostConfig } from './config/schema.js';

const base = {
  broker: { host: '127.0.0.1', port: 1883, allow_anonymous: false },
  api: { host: '127.0.0.1', port: 8080, tokens: [{ name: 'a', token: 'x'.repeat(16), role: 'admin' }] },
  storage: { data_dir: '/var/lib/watchpost' },
  assets: [{ id: 'a1', type: 'bridge', name: 'A', street: 'S' }],
  channels: [{ id: 'hook', type: 'webhook', url: 'http://a/' }],
} as unknown as WatchpostConfig;

describe('diffSections', () => {
  it('names the sections that changed and those of them that need a restart', () => {
    const next = {
      ...base,
      broker: { ...base.broker, port: 1884 },
      api: { ...base.api, tokens: [] },
      storage: { data_dir: '/srv' },
      channels: [{ id: 'hook', type: 'webhook', url: 'http://b/' }],
    } as unknown as WatchpostConfig;
    expect(diffSections(base, next)).toEqual({ sections: ['api', 'broker', 'channels', 'storage'], restartNeeded: ['broker.port', 'storage'] });
    expect(diffSections(base, { ...base, adapters: [{ type: 'http', path: '/ingest/v1' }] } as unknown as WatchpostConfig)).toEqual({ sections: ['adapters'], restartNeeded: ['adapters'] });
    expect(diffSections(base, base)).toEqual({ sections: [], restartNeeded: [] });
  });
});

describe('diffItems', () => {
  it('ids added, removed and changed', () => {
    expect(
      diffItems(
        [
          { id: 'a', v: 1 },
          { id: 'b', v: 1 },
          { id: 'c', v: 1 },
        ],
        [
          { id: 'b', v: 2 },
          { id: 'c', v: 1 },
          { id: 'd', v: 1 },
        ],
      ),
    ).toEqual({ added: ['d'], removed: ['a'], changed: ['b'] });
  });
});
