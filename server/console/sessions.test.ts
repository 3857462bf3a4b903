import { describe, expect, it } from 'vitest';
import { cookieValue, sessionCookie, SessionStore } from './sessions.js';

const HOUR = 3_600_000;

function store(options: Partial<{ idleMs: number; maxMs: number; maxSessions: number }> = {}) {
  const clock = {
    t: 1_000_000,
    now() {
      return this.t;
    },
  };
  return { clock, sessions: new SessionStore(clock, { idleMs: 12 * HOUR, maxMs: 24 * HOUR, maxSessions: 10, ...options }) };
}

describe('console sessions', () => {
  it('hands out a random id and CSRF token, and finds the session by the id only', () => {
    const { sessions } = store();
    const a = sessions.create({ name: 'duty', role: 'operator' });
    const b = sessions.create({ name: 'duty', role: 'operator' });
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.id).not.toBe(b.id);
    expect(a.session.csrfToken).not.toBe(b.session.csrfToken);
    expect(sessions.touch(a.id)).toMatchObject({ name: 'duty', role: 'operator', csrfToken: a.session.csrfToken });
    expect(sessions.touch(a.session.csrfToken.replace(/^./, 'x'))).toBeUndefined();
    expect(sessions.touch('short')).toBeUndefined();
  });

  it('ends a session idle for idleMs; a request restarts the idle time', () => {
    const { clock, sessions } = store();
    const { id } = sessions.create({ name: 'duty', role: 'viewer' });
    clock.t += 12 * HOUR - 1;
    expect(sessions.touch(id)).toBeDefined();
    clock.t += 12 * HOUR - 1;
    expect(sessions.touch(id)).toBeDefined();
    clock.t += 12 * HOUR;
    expect(sessions.touch(id)).toBeUndefined();
    expect(sessions.size()).toBe(0);
  });

  it('ends a session maxMs after sign-in however busy it is', () => {
    const { clock, sessions } = store({ idleMs: 2 * HOUR, maxMs: 5 * HOUR });
    const { id } = sessions.create({ name: 'duty', role: 'viewer' });
    for (let i = 0; i < 4; i++) {
      clock.t += HOUR;
      expect(sessions.touch(id)).toBeDefined();
    }
    clock.t += HOUR;
    expect(sessions.touch(id)).toBeUndefined();
  });

  it('keeps at most maxSessions: the oldest ends first; sign-out ends one', () => {
    const { sessions } = store({ maxSessions: 2 });
    const first = sessions.create({ name: 'a', role: 'viewer' });
    const second = sessions.create({ name: 'b', role: 'viewer' });
    const third = sessions.create({ name: 'c', role: 'viewer' });
    expect(sessions.touch(first.id)).toBeUndefined();
    expect(sessions.touch(second.id)?.name).toBe('b');
    expect(sessions.end(third.id)).toBe(true);
    expect(sessions.end(third.id)).toBe(false);
    expect(sessions.touch(third.id)).toBeUndefined();
  });

  it('reads its cookie and writes it HttpOnly, SameSite=Strict, Path=/ (Secure under TLS)', () => {
    expect(cookieValue('a=1; watchpost_session=abc; b=2', 'watchpost_session')).toBe('abc');
    expect(cookieValue('xwatchpost_session=abc', 'watchpost_session')).toBeUndefined();
    expect(cookieValue(undefined, 'watchpost_session')).toBeUndefined();
    expect(sessionCookie('v', { secure: true, maxAgeSeconds: 60 })).toBe('watchpost_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure');
    expect(sessionCookie('', { secure: false, maxAgeSeconds: 0 })).toBe('watchpost_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
  });
});
