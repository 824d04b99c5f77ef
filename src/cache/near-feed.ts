// The near cache's port for invalidations: whatever tells the L1 that a Redis key changed. The
// real one is Redis's own tracking (near-tracking.ts); tests wrap it to delay or drop messages.

export interface InvalidationListener {
  /** A Redis key (with the adapter's prefix) was modified by someone. */
  invalidate(redisKey: string): void;
  /** Everything may have changed (FLUSHALL, or the feed restarted and missed messages). */
  invalidateAll(): void;
  /** Whether the feed is connected and tracking now; while not, the L1 serves nothing. */
  setLive(live: boolean): void;
  /**
   * Heartbeat `seq` came back through the feed: every message Redis sent before it executed the
   * heartbeat was delivered before it (one connection delivers in order).
   */
  heartbeat(seq: number): void;
}

export interface InvalidationFeed {
  /** Connects and starts calling `listener`; resolves once the connection is open. */
  start(listener: InvalidationListener): Promise<void>;
  /** Sends heartbeat `seq` through Redis: a write whose invalidation comes back as `listener.heartbeat(seq)`. */
  heartbeat(seq: number): Promise<void>;
  close(): Promise<void>;
}
