// The request bytes every connection of the RESP front holds unread, together. Each connection is
// bounded on its own (maxQueryBufferBytes), but 1000 connections that each send most of a large
// command and stop would hold 1000 times that. Over the total, the connection holding the most is
// evicted (answered an error and closed), as Redis 7 evicts clients over maxmemory-clients: a
// received byte cannot be refused, and pausing every reader could leave them all waiting on
// commands none of them can finish.

/** One connection's share; `evict` answers it and closes it (its 'close' then releases the share). */
export interface QueryHolder {
  held: number;
  evict(limit: number): void;
}

export class QueryBudget {
  private total = 0;
  private readonly holders = new Set<QueryHolder>();

  constructor(readonly limit: number) {}

  /** Bytes held by every connection now. */
  get held(): number {
    return this.total;
  }

  add(holder: QueryHolder): void {
    this.holders.add(holder);
  }

  /** Sets what `holder` holds; over the limit, evicts the largest holders until the rest fit. */
  set(holder: QueryHolder, bytes: number): void {
    if (!this.holders.has(holder)) return; // released (closed): nothing more is counted for it
    this.total += bytes - holder.held;
    holder.held = bytes;
    while (this.total > this.limit) {
      let largest = holder;
      for (const h of this.holders) if (h.held > largest.held) largest = h;
      this.release(largest);
      largest.evict(this.limit);
    }
  }

  /** The connection is gone: what it held is free. */
  release(holder: QueryHolder): void {
    if (!this.holders.delete(holder)) return;
    this.total -= holder.held;
    holder.held = 0;
  }
}
