// A fault-injecting wrapper around the near cache's invalidation feed (same port): it passes,
// drops or delays every message while told to, and counts what it did, so a test can prove the
// faults really happened.
import type { InvalidationFeed, InvalidationListener } from '../../src/cache/near-feed.js';

export type FeedFault = 'pass' | 'drop' | 'delay';

export class FaultyFeed implements InvalidationFeed {
  fault: FeedFault = 'pass';
  delayMs = 0;
  dropped = 0;
  delayed = 0;
  delivered = 0;
  /** How many times the feed went live (the first connect, then every reconnect). */
  wentLive = 0;
  /** The last key delivered (a test can wait for a probe key it modified to come through). */
  lastKey: string | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly inner: InvalidationFeed) {}

  start(listener: InvalidationListener): Promise<void> {
    return this.inner.start({
      invalidate: (key) =>
        this.route(() => {
          this.lastKey = key;
          listener.invalidate(key);
        }),
      invalidateAll: () => this.route(() => listener.invalidateAll()),
      heartbeat: (seq) => this.route(() => listener.heartbeat(seq)),
      setLive: (live) => {
        if (live) this.wentLive++;
        listener.setLive(live);
      },
    });
  }

  heartbeat(seq: number): Promise<void> {
    return this.inner.heartbeat(seq);
  }

  private route(deliver: () => void): void {
    if (this.fault === 'drop') {
      this.dropped++;
    } else if (this.fault === 'delay') {
      this.delayed++;
      // Same delay for every held message: timers fire in order, so the order is kept.
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.delivered++;
        deliver();
      }, this.delayMs);
      this.timers.add(timer);
    } else {
      this.delivered++;
      deliver();
    }
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.inner.close();
  }
}
