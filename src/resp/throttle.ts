// The HTTP service's rate limits, per RESP command: one token bucket per token (per client address
// before AUTH, so guessing tokens is throttled too). A token's own limit wins over the front's.
import { error, type Reply } from './replies.js';
import type { ResolvedRespOptions } from './options.js';
import { createRateLimiter, type RateLimit } from './service-port.js';
import type { Session } from './session.js';

/** Buckets kept at most (an LRU: an evicted bucket comes back full, erring towards letting a command through). */
const MAX_BUCKETS = 10_000;

/** Returns an error reply when the session is over its limit, else undefined (and takes one command). */
export type Throttle = (session: Session, remoteHost: string) => Reply | undefined;

export function createThrottle(options: ResolvedRespOptions): Throttle {
  const limiter = createRateLimiter({ maxBuckets: MAX_BUCKETS, clock: { now: () => performance.now() } });
  return (session, remoteHost) => {
    const { principal } = session;
    const limit: RateLimit | false = principal?.rateLimit ?? options.rateLimit;
    if (limit === false) return undefined;
    const taken = limiter.take(principal === undefined ? `anonymous:${remoteHost}` : `token:${principal.name}`, limit);
    if (taken.ok) return undefined;
    const seconds = Math.max(1, Math.ceil(taken.retryAfterMs / 1000));
    return error(`LOCKSTEP_E_RATE_LIMITED too many commands; retry in ${seconds} s`);
  };
}
