import { describe, expect, it } from 'vitest';
import { ClientIdRegistry } from './client-ids.js';

const connection = () => ({ closed: false });

describe('ClientIdRegistry', () => {
  it('refuses an id held by another device while its connection is open, and frees it when a clean one closes', () => {
    const ids = new ClientIdRegistry(4);
    const a = connection();
    expect(ids.claim('gw', 'dev-a', a, false)).toBeUndefined();
    expect(ids.claim('gw', 'dev-b', connection(), false)).toBe('held_by_other_device');
    // The holder may take its own id over.
    const a2 = connection();
    expect(ids.claim('gw', 'dev-a', a2, false)).toBeUndefined();
    ids.release('gw', a); // the older connection's close does not end the newer binding
    expect(ids.claim('gw', 'dev-b', connection(), false)).toBe('held_by_other_device');
    ids.release('gw', a2);
    expect(ids.size()).toBe(0);
    expect(ids.claim('gw', 'dev-b', connection(), false)).toBeUndefined();
  });

  it('treats a binding whose connection ended without a release as free (clean sessions only)', () => {
    const ids = new ClientIdRegistry(4);
    const a = { closed: false };
    ids.claim('gw', 'dev-a', a, false);
    a.closed = true;
    expect(ids.claim('gw', 'dev-b', connection(), false)).toBeUndefined();
    expect(ids.deviceOf('gw')).toBe('dev-b');
  });

  it('keeps a persistent session bound to its device after the connection closes, until it connects clean', () => {
    const ids = new ClientIdRegistry(4);
    const a = connection();
    ids.claim('gw', 'dev-a', a, true);
    ids.release('gw', a);
    expect(ids.claim('gw', 'dev-b', connection(), true)).toBe('held_by_other_device');
    expect(ids.claim('gw', 'dev-b', connection(), false)).toBe('held_by_other_device');
    const clean = connection();
    expect(ids.claim('gw', 'dev-a', clean, false)).toBeUndefined();
    ids.release('gw', clean);
    expect(ids.claim('gw', 'dev-b', connection(), true)).toBeUndefined();
  });

  it('bounds the persistent sessions of one device; reconnecting to one it holds is fine', () => {
    const ids = new ClientIdRegistry(2);
    for (const id of ['p-1', 'p-2']) ids.release(id, ((c) => (ids.claim(id, 'dev-a', c, true), c))(connection()));
    expect(ids.claim('p-3', 'dev-a', connection(), true)).toBe('too_many_sessions');
    expect(ids.claim('p-1', 'dev-a', connection(), true)).toBeUndefined();
    expect(ids.claim('p-3', 'dev-a', connection(), false)).toBeUndefined();
    expect(ids.claim('p-4', 'dev-b', connection(), true)).toBeUndefined();
    // Ending one session (a clean connection under its id) makes room.
    ids.claim('p-2', 'dev-a', connection(), false);
    expect(ids.claim('p-5', 'dev-a', connection(), true)).toBeUndefined();
  });
});
