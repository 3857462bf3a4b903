/** Builds the sender of a configured channel. */
import type { Clock } from '../../lib/clock.js';
import type { ChannelConfig } from '../config.js';
import type { Channel } from '../outbox.js';
import { WebhookChannel } from '../webhook-channel.js';
import { EmailChannel } from './email.js';
import type { HttpDeps } from './http.js';
import { DingtalkChannel, FeishuChannel, WecomChannel } from './robots.js';
import { SmsChannel } from './sms.js';

export interface ChannelDeps extends HttpDeps {
  clock: Clock;
}

export function createChannel(config: ChannelConfig, deps: ChannelDeps): Channel {
  switch (config.type) {
    case 'webhook':
      return new WebhookChannel(config, deps);
    case 'wecom':
      return new WecomChannel(config, deps);
    case 'dingtalk':
      return new DingtalkChannel(config, deps);
    case 'feishu':
      return new FeishuChannel(config, deps);
    case 'email':
      return new EmailChannel(config);
    case 'sms':
      return new SmsChannel(config, deps);
  }
}
