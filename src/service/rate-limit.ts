// Per-caller rate limits: one token bucket per token name (anonymous callers: per remote address).
// Buckets live in an LRU of bounded size, so a flood of distinct callers costs bounded memory; an
// evicted bucket comes back full, which only ever errs towards letting a request through.
import { LRUCache } from 'lru-cache';
import { InvalidOptionError } from '../errors.js';
import type { Clock } from '../types.js';

export interface RateLimit {
  /** Sustained requests per second (may be fractional: 0.5 is one request every 2 s). */
  readonly perSecond: number;
  /** Requests that may arrive at once after a quiet period. @default max(1, ceil(perSecond)) */
  readonly burst?: number;
}

export type TakeResult = { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number };

export interface RateLimiter {
  /** Takes one request from `bucket`'s allowance under `limit`. */
  take(bucket: string, limit: RateLimit): TakeResult;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Validates a rate limit from options or a token file; `false` means no limit. */
export function resolveRateLimit(value: unknown, where: string): RateLimit | false {
  if (value === false) return false;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError(`${where} must be {"perSecond": N, "burst"?: N} or false`);
  }
  const record = value as Record<string, unknown>;
  const unknown = Object.keys(record).find((field) => field !== 'perSecond' && field !== 'burst');
  if (unknown !== undefined) throw new InvalidOptionError(`${where}: unknown field ${JSON.stringify(unknown)} (expected perSecond, burst)`);
  const { perSecond, burst } = record;
  if (typeof perSecond !== 'number' || !Number.isFinite(perSecond) || perSecond <= 0 || perSecond > 1e9) {
    throw new InvalidOptionError(`${where}: perSecond must be a number above 0 (got ${JSON.stringify(perSecond)})`);
  }
  const resolvedBurst = burst ?? Math.max(1, Math.ceil(perSecond));
  if (typeof resolvedBurst !== 'number' || !Number.isSafeInteger(resolvedBurst) || resolvedBurst < 1) {
    throw new InvalidOptionError(`${where}: burst must be an integer of at least 1 (got ${JSON.stringify(burst)})`);
  }
  return Object.freeze({ perSecond, burst: resolvedBurst });
}

export function createRateLimiter(options: { readonly maxBuckets: number; readonly clock: Clock }): RateLimiter {
  const { clock } = options;
  const buckets = new LRUCache<string, Bucket>({ max: options.maxBuckets });
  return {
    take(name, limit) {
      const burst = limit.burst ?? Math.max(1, Math.ceil(limit.perSecond));
      const now = clock.now();
      let bucket = buckets.get(name);
      if (bucket === undefined) {
        bucket = { tokens: burst, updatedAt: now };
        buckets.set(name, bucket);
      } else {
        const elapsedMs = Math.max(0, now - bucket.updatedAt);
        bucket.tokens = Math.min(burst, bucket.tokens + (elapsedMs * limit.perSecond) / 1000);
        bucket.updatedAt = now;
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterMs: ((1 - bucket.tokens) * 1000) / limit.perSecond };
    },
  };
}
