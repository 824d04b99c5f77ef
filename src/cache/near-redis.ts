// The near cache as users create it: a Redis cache, Redis's own invalidation tracking on a second
// connection, and the L1 in front (near.ts). `lockstep/near`.
import { toMs, type Duration } from '../duration.js';
import type { Codec } from '../types.js';
import { InvalidOptionError } from '../errors.js';
import { NearCache } from './near.js';
import { createTrackingFeed } from './near-tracking.js';
import { createRedisCache, type RedisCacheOptions } from './redis.js';

export { NearCache, type NearCacheStats } from './near.js';

export type NearRedisCacheOptions = Omit<RedisCacheOptions, 'client' | 'cluster' | 'url'> & {
  /** The Redis (a single Redis: a cluster is not supported). @default 'redis://127.0.0.1:6379' */
  url?: string;
  /** The bound: no read returns a value older than one acknowledged this long before the read began (e.g. '50ms'). */
  maxStaleness: Duration;
  /** Bound of the L1 in entries. At least one of maxEntries / maxBytes. */
  maxEntries?: number;
  /** Bound of the L1 in bytes (payload + key + a fixed overhead per entry). */
  maxBytes?: number;
  /** Heartbeats that keep copies servable past their age while the invalidation connection proves itself. @default true */
  heartbeat?: boolean;
  /** The engine's codec, if not the default JSON: the L1 holds decoded values. */
  codec?: Codec;
  /**
   * How long the invalidation connection may stay silent (a PING unanswered, a handshake unfinished)
   * before it is replaced and the L1 flushed: 100 ms to 1 h. Not a bound on staleness (maxStaleness
   * is): only when to give up on a connection. @default '10s'
   */
  feedSilentAfter?: Duration;
};

/**
 * Creates a Redis cache with an in-process near cache (L1) in front, and connects its invalidation
 * connection. See docs/near-cache.md for what it promises next to the default.
 */
export async function createNearCache(options: NearRedisCacheOptions): Promise<NearCache> {
  if (options === undefined || options.maxStaleness === undefined) throw new InvalidOptionError('maxStaleness is required (e.g. "50ms")');
  const { maxStaleness, maxEntries, maxBytes, heartbeat, codec, feedSilentAfter, ...redisOptions } = options;
  const silentAfterMs = feedSilentAfter === undefined ? undefined : toMs(feedSilentAfter, 'feedSilentAfter');
  const redis = createRedisCache(redisOptions as RedisCacheOptions);
  const feed = createTrackingFeed({
    ...(options.url === undefined ? {} : { url: options.url }),
    keyPrefix: redis.keyPrefix,
    ...(options.onError === undefined ? {} : { onError: options.onError }),
    ...(silentAfterMs === undefined ? {} : { silentAfterMs }),
  });
  const near = new NearCache({
    redis,
    feed,
    maxStaleness,
    ...(maxEntries === undefined ? {} : { maxEntries }),
    ...(maxBytes === undefined ? {} : { maxBytes }),
    ...(heartbeat === undefined ? {} : { heartbeat }),
    ...(codec === undefined ? {} : { codec }),
  });
  try {
    await near.start();
  } catch (error) {
    await near.close().catch(() => undefined);
    throw error;
  }
  return near;
}
