/**
 * Per-address limits of the embedded broker: a token bucket on new connections (connect
 * floods) and a lockout after repeated failed logins (password guessing; every attempt would
 * otherwise cost an scrypt verification). Pure bookkeeping on an injected clock; the broker
 * asks before it accepts a socket and reports failed logins.
 *
 * Memory is bounded: at most `maxTracked` addresses are remembered; idle ones are forgotten first.
 */
export interface ConnectLimits {
  /** Refill rate of the connect bucket, per second. */
  connectsPerSecond: number;
  /** Bucket size: connections an address may open at once. */
  connectBurst: number;
  /** Failed logins within `authFailureWindow` (ms) that lock an address out... */
  maxAuthFailures: number;
  authFailureWindow: number;
  /** ...for this long (ms). */
  lockout: number;
  /** Addresses never limited. */
  exempt: readonly string[];
  maxTracked?: number;
}

export type ConnectDecision = { ok: true } | { ok: false; reason: 'rate_limited' | 'locked_out'; retryAfterMs: number };

interface AddressState {
  tokens: number;
  refilledAt: number;
  /** Times of recent failed logins, oldest first. */
  failures: number[];
  lockedUntil: number;
}

const DEFAULT_MAX_TRACKED = 100_000;

/** `::ffff:1.2.3.4` (an IPv4 client on a dual-stack socket) is the address 1.2.3.4. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class ConnectLimiter {
  private readonly states = new Map<string, AddressState>();
  private readonly exempt: ReadonlySet<string>;
  private readonly maxTracked: number;

  constructor(
    private readonly limits: ConnectLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.exempt = new Set(limits.exempt.map(normalizeAddress));
    this.maxTracked = limits.maxTracked ?? DEFAULT_MAX_TRACKED;
  }

  /** A new connection from `address`: may it proceed? Takes a token when it may. */
  allowConnect(rawAddress: string | undefined): ConnectDecision {
    const address = normalizeAddress(rawAddress);
    if (this.exempt.has(address)) return { ok: true };
    const now = this.now();
    const state = this.state(address, now);
    if (state.lockedUntil > now) return { ok: false, reason: 'locked_out', retryAfterMs: state.lockedUntil - now };
    this.refill(state, now);
    if (state.tokens < 1) {
      const retryAfterMs = Math.ceil(((1 - state.tokens) / this.limits.connectsPerSecond) * 1000);
      return { ok: false, reason: 'rate_limited', retryAfterMs };
    }
    state.tokens -= 1;
    return { ok: true };
  }

  /** A failed login from `address`; true when it is now locked out. */
  authFailed(rawAddress: string | undefined): boolean {
    const address = normalizeAddress(rawAddress);
    if (this.exempt.has(address)) return false;
    const now = this.now();
    const state = this.state(address, now);
    const windowStart = now - this.limits.authFailureWindow;
    while (state.failures.length > 0 && state.failures[0]! <= windowStart) state.failures.shift();
    state.failures.push(now);
    if (state.failures.length >= this.limits.maxAuthFailures) {
      state.failures = [];
      state.lockedUntil = now + this.limits.lockout;
      return true;
    }
    return false;
  }

  /** Is `address` locked out right now? */
  lockedOut(rawAddress: string | undefined): boolean {
    const state = this.states.get(normalizeAddress(rawAddress));
    return state !== undefined && state.lockedUntil > this.now();
  }

  /** How much longer `address` is locked out (ms; 0 when it is not). */
  lockedOutForMs(rawAddress: string | undefined): number {
    const state = this.states.get(normalizeAddress(rawAddress));
    return state ? Math.max(0, state.lockedUntil - this.now()) : 0;
  }

  tracked(): number {
    return this.states.size;
  }

  private state(address: string, now: number): AddressState {
    let state = this.states.get(address);
    if (state) {
      // Most recently used last, so eviction finds idle addresses first.
      this.states.delete(address);
      this.states.set(address, state);
      return state;
    }
    if (this.states.size >= this.maxTracked) this.evict(now);
    state = { tokens: this.limits.connectBurst, refilledAt: now, failures: [], lockedUntil: 0 };
    this.states.set(address, state);
    return state;
  }

  private refill(state: AddressState, now: number): void {
    const elapsed = Math.max(0, now - state.refilledAt) / 1000;
    state.tokens = Math.min(this.limits.connectBurst, state.tokens + elapsed * this.limits.connectsPerSecond);
    state.refilledAt = now;
  }

  /** Forgets the least recently used addresses that hold no lockout, then any if it must. */
  private evict(now: number): void {
    const target = Math.floor(this.maxTracked * 0.9);
    for (const [address, state] of this.states) {
      if (this.states.size <= target) return;
      if (state.lockedUntil <= now) this.states.delete(address);
    }
    for (const address of this.states.keys()) {
      if (this.states.size <= target) return;
      this.states.delete(address);
    }
  }
}
