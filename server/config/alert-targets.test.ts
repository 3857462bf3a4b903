/**
 * Escalation targets against contacts and channels: checked by the whole configuration's schema,
 * which knows both.
 */
import { describe, expect, it } from 'vitest';
import { configSchema } from './schema.js';

describe('channel configuration', () => {
  it('checks that SMS and e-mail targets reach contacts with a phone number or address', () => {
    const r = configSchema.safeParse({
      contacts: [
        { id: 'a', name: 'A', phone: '+8613800000001' },
        { id: 'b', name: 'B' },
      ],
      channels: [
        { id: 'sms', type: 'sms', provider: 'http', url: 'https://gw' },
        { id: 'mail', type: 'email', from: 'w@x.y', smtp: { host: 'h' } },
      ],
      escalations: [{ id: 'e', tiers: [{ after: '0s', notify: ['sms', { channel: 'sms', to: ['a', 'b'] }, { channel: 'mail', to: ['a'] }] }] }],
    });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'escalations.0.tiers.0.notify.0.to: channel "sms" (sms) needs at least one contact',
      'escalations.0.tiers.0.notify.1.to.1: contact "b" has no phone number, which channel "sms" (sms) needs',
      'escalations.0.tiers.0.notify.2.to.0: contact "a" has no e-mail address, which channel "mail" (email) needs',
    ]);
  });
});
