/** The Channel properties every configured channel takes straight from its configuration. */
import { rateLimitsOf, type ChannelConfig, type RateLimit } from '../config.js';

export abstract class ConfiguredChannel<C extends ChannelConfig> {
  constructor(protected readonly config: C) {}

  get id(): string {
    return this.config.id;
  }

  get maxAttempts(): number | undefined {
    return this.config.max_attempts;
  }

  get maxAgeMs(): number {
    return this.config.max_age;
  }

  get rateLimits(): readonly RateLimit[] {
    return rateLimitsOf(this.config);
  }
}
