// The deletes of expired rows that reads start (commands/targets.ts): best effort and off the reply
// path, so nothing waits for them, and nothing would bound them. With the store slow or stalled, a
// client pipelining GETs of an expired key started one store delete per GET (20,000 GETs: 20,000
// deletes waiting, +144 MB of heap). So: one purge per key at a time, and at most `limit` in
// flight per front; a purge not started is no loss (the row reads as missing either way, and a
// later read purges it).

/** Purges in flight at most, per front. */
export const MAX_PURGES_IN_FLIGHT = 64;

export class PurgeTracker {
  private readonly inFlight = new Set<string>();

  constructor(readonly limit = MAX_PURGES_IN_FLIGHT) {}

  get size(): number {
    return this.inFlight.size;
  }

  /** Runs `purge` unless one for `id` is in flight or `limit` are; its failure is ignored. */
  start(id: string, purge: () => Promise<unknown>): void {
    if (this.inFlight.has(id) || this.inFlight.size >= this.limit) return;
    this.inFlight.add(id);
    void (async () => {
      try {
        await purge();
      } catch {
        // best effort: the row reads as missing either way
      } finally {
        this.inFlight.delete(id);
      }
    })();
  }
}
