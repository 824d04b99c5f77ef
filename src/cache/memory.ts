// The in-process cache: servable values in a bounded LRU, leases beside them so that they are never
// evicted for space (a fill lease in the slot its value will take, memory-values.ts; write leases in
// a plain Map). Every operation is one synchronous step, which makes each
// protocol transition atomic without locks.
import { systemClock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';
import { createTokenSource } from '../tokens.js';
import { ValueSlots, type ValueSlot } from './memory-values.js';
import type {
  CacheAdapter,
  CacheEntry,
  CacheGetResult,
  CacheRecordView,
  CacheSlot,
  CacheStats,
  Clock,
  CompleteOutcome,
  LeaseToken,
  MissResult,
  ValueRecord,
  JournalCursor,
  Version,
} from '../types.js';

interface MemoryCacheCommon {
  /** Time source for TTLs and leases. @default monotonic performance.now() */
  clock?: Clock;
  /** Keep decoded, frozen values so that a hit costs no parse. @default true */
  decodedValues?: boolean;
}

/** A memory cache must be bounded: by entry count, by bytes of encoded payload, or both. */
export type MemoryCacheOptions = MemoryCacheCommon &
  ({ maxEntries: number; maxBytes?: number } | { maxEntries?: number; maxBytes: number });

interface WriteLease {
  readonly kind: 'write';
  /** writer token → lease deadline */
  readonly tokens: Map<LeaseToken, number>;
  maxVersion: Version;
  /** The record to publish when the last writer completes: the highest version seen. */
  max: StoredValue | undefined;
  /** A writer's lease expired: its outcome is unknown, so nothing may be published. */
  dirty: boolean;
}

interface StoredValue extends ValueRecord {
  readonly ttlMs: number;
  readonly sizeBytes: number;
}

const MISS_WITHOUT_TOKEN: MissResult = Object.freeze({ kind: 'miss', token: undefined });
const BYPASS = Object.freeze({ kind: 'bypass' as const });
const SWEEP_EVERY = 1024;

function bound(value: number | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidOptionError(`${option} must be a positive integer (got ${JSON.stringify(value)})`);
  }
  return value;
}

export function createMemoryCache(options: MemoryCacheOptions): CacheAdapter {
  return new MemoryCache(options);
}

class MemoryCache implements CacheAdapter {
  readonly name = 'memory';
  readonly capabilities;
  private readonly clock: Clock;
  private readonly epochOffsetMs: number;
  private readonly values: ValueSlots<StoredValue>;
  /** Write leases. A fill lease is a slot of `values` (ValueSlots.startFill). */
  private readonly leases = new Map<string, WriteLease>();
  private readonly cursors = new Map<string, JournalCursor>();
  private readonly nextToken = createTokenSource('fill');
  private leasesExpired = 0;
  private opsSinceSweep = 0;

  constructor(options: MemoryCacheOptions) {
    const maxEntries = bound(options?.maxEntries, 'maxEntries');
    const maxBytes = bound(options?.maxBytes, 'maxBytes');
    if (maxEntries === undefined && maxBytes === undefined) {
      throw new InvalidOptionError('a memory cache must be bounded: set maxEntries, maxBytes, or both');
    }
    this.clock = options.clock ?? systemClock;
    this.epochOffsetMs = Date.now() - this.clock.now();
    this.capabilities = Object.freeze({ decodedValues: options.decodedValues ?? true, shared: false });
    this.values = new ValueSlots<StoredValue>({
      maxEntries,
      maxBytes,
      clock: this.clock,
      // A reading of the default clock may be reused for 1 ms (a read is ~50 ns, a large part of a
      // hit); an injected clock, which tests move by hand, must be read every time.
      coarseClock: options.clock === undefined,
    });
  }

  /**
   * The key's value slot, while it holds a live value: the engine keeps it per key and reads it
   * (`slot.read()`, the same step as a hit of `get`) instead of looking the key up again.
   */
  slot(key: string): CacheSlot | undefined {
    return this.values.slot(key);
  }

  get(key: string, fillLeaseMs: number): CacheGetResult {
    // One lookup for the key's slot: its value, or its fill lease.
    const slot = this.values.lookup(key);
    if (slot !== undefined) {
      if (slot.live) {
        const value = this.values.use(slot);
        if (value !== undefined) return value; // else it expired and is gone
      } else if (this.fillIsLive(slot)) {
        return MISS_WITHOUT_TOKEN;
      }
    }
    if (this.liveWrite(key) !== undefined) return BYPASS;
    const token = this.nextToken();
    this.values.startFill(key, token, this.clock.now() + fillLeaseMs);
    this.leaseAdded();
    return { kind: 'miss', token };
  }

  fill(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number): boolean {
    const lease = this.liveFill(key);
    if (lease === undefined || lease.fillToken !== token) return false;
    const value = toStored(entry, ttlMs);
    this.values.fillWith(lease, value, ttlMs, value.sizeBytes);
    return true;
  }

  beginWrite(key: string, token: LeaseToken, leaseMs: number): void {
    const deadline = this.clock.now() + leaseMs;
    const lease = this.liveWrite(key);
    if (lease !== undefined) {
      lease.tokens.set(token, deadline);
      return;
    }
    // From a value, a fill (which this voids) or nothing: the value's version, if any, is the highest
    // seen, but not its payload (as in the Redis adapter): a completion publishes only a version above
    // it, and one at or below it (which a store never commits) clears instead. So no copy of the
    // value and its remaining TTL per write.
    const current = this.values.peek(key);
    this.liveFill(key); // an expired fill lease is counted as such
    this.values.delete(key); // the value, or the fill lease
    const tokens = new Map<LeaseToken, number>(); // set(), not new Map([[…]]): half the cost, per write
    tokens.set(token, deadline);
    this.leases.set(key, {
      kind: 'write',
      tokens,
      maxVersion: current?.version ?? 0,
      max: undefined,
      dirty: false,
    });
    this.leaseAdded();
  }

  completeWrite(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number): CompleteOutcome {
    const lease = this.liveWrite(key);
    if (lease?.kind !== 'write' || !lease.tokens.has(token)) {
      // No lease held (beginWrite failed, or it expired): a newer version may have been committed
      // and evicted meanwhile, so this writer may only invalidate, never publish.
      this.invalidateOlder(key, entry.version);
      return 'fenced';
    }
    if (entry.version > lease.maxVersion) {
      lease.maxVersion = entry.version;
      lease.max = toStored(entry, ttlMs);
    }
    // The last writer ends the lease with its token still in it: deleting the token first would
    // empty the map, which makes V8 reallocate its table, a garbage allocation per write.
    if (lease.tokens.size > 1) {
      lease.tokens.delete(token);
      return 'pending';
    }
    this.leases.delete(key);
    if (lease.dirty || lease.max === undefined) return 'cleared';
    this.publish(key, lease.max);
    return 'published';
  }

  abortWrite(key: string, token: LeaseToken): void {
    const lease = this.liveWrite(key);
    if (lease?.kind === 'write' && lease.tokens.delete(token) && lease.tokens.size === 0) this.leases.delete(key);
  }

  invalidateOlder(key: string, version: Version): void {
    const value = this.values.peek(key);
    if (value !== undefined && value.version < version) this.values.delete(key);
    const fill = this.liveFill(key);
    const lease = fill === undefined ? this.liveWrite(key) : undefined;
    if (fill !== undefined) this.values.delete(key);
    else if (lease?.kind === 'write' && lease.maxVersion < version) lease.dirty = true;
  }

  peek(key: string): CacheRecordView | undefined {
    const value = this.values.peek(key);
    if (value !== undefined) return this.valueView(key, value);
    const fill = this.liveFill(key);
    if (fill !== undefined) return this.fillView(fill);
    const lease = this.liveWrite(key);
    return lease === undefined ? undefined : this.writeView(key, lease);
  }

  /**
   * A view's expiresAt is epoch ms, as the Redis adapter's: the clock's reading plus the wall time
   * at which the clock read 0, fixed when the cache was created (so two views of one record agree).
   */
  private epochOf(clockMs: number): number {
    return Number.isFinite(clockMs) ? Math.round(clockMs + this.epochOffsetMs) : clockMs;
  }

  private fillView(fill: ValueSlot<StoredValue>): CacheRecordView {
    return { key: fill.key, kind: 'fill', expiresAt: this.epochOf(fill.expiresAt) };
  }

  private writeView(key: string, lease: WriteLease): CacheRecordView {
    return {
      key,
      kind: 'write',
      writers: lease.tokens.size,
      maxVersion: lease.maxVersion,
      dirty: lease.dirty,
      expiresAt: this.epochOf(Math.max(...lease.tokens.values())),
    };
  }

  async *scan(prefix: string): AsyncIterable<CacheRecordView> {
    for (const [key, value] of this.values.entries()) {
      if (key.startsWith(prefix) && this.values.remainingTtl(key) > 0) yield this.valueView(key, value);
    }
    for (const fill of this.values.fillSlots()) {
      // Still a fill lease (the caller may have changed the cache since the copy was taken)?
      if (fill.fillToken !== undefined && fill.key.startsWith(prefix) && this.fillIsLive(fill)) yield this.fillView(fill);
    }
    for (const key of [...this.leases.keys()]) {
      if (!key.startsWith(prefix)) continue;
      const lease = this.liveWrite(key);
      if (lease !== undefined) yield this.writeView(key, lease);
    }
  }

  ping(): void {}

  stats(): CacheStats {
    return { leasesExpired: this.leasesExpired };
  }

  /** Cursors of the drainers of this cache object (several engines may share one memory cache). */
  loadJournalCursor(journalId: string): JournalCursor | undefined {
    return this.cursors.get(journalId);
  }

  saveJournalCursor(journalId: string, cursor: JournalCursor, replace = false): void {
    const current = this.cursors.get(journalId);
    if (replace || current === undefined || current.id < cursor.id) this.cursors.set(journalId, { ...cursor });
  }

  /** No value and no lease at all: what a drainer may skip is then provably not in here. */
  isEmpty(): boolean {
    return this.values.size === 0 && this.values.fillCount === 0 && this.leases.size === 0;
  }

  close(): void {
    this.values.clear();
    this.leases.clear();
  }

  /** Number of values and leases held, for tests and diagnostics. */
  get size(): { values: number; leases: number } {
    return { values: this.values.size, leases: this.values.fillCount + this.leases.size };
  }

  private publish(key: string, value: StoredValue): void {
    this.values.set(key, value, value.ttlMs, value.sizeBytes);
  }

  /** After a new lease: every SWEEP_EVERY of them, every lease that has expired is dropped. */
  private leaseAdded(): void {
    // Leases of crashed holders are otherwise only dropped when their key is touched again.
    if (++this.opsSinceSweep >= SWEEP_EVERY) {
      this.opsSinceSweep = 0;
      for (const fill of this.values.fillSlots()) this.fillIsLive(fill);
      for (const leaseKey of [...this.leases.keys()]) this.liveWrite(leaseKey);
    }
  }

  /** The key's fill lease's slot, after dropping it if it has expired. */
  private liveFill(key: string): ValueSlot<StoredValue> | undefined {
    const fill = this.values.fillOf(key);
    return fill !== undefined && this.fillIsLive(fill) ? fill : undefined;
  }

  /** Whether a fill lease's slot is live; an expired one is dropped. */
  private fillIsLive(fill: ValueSlot<StoredValue>): boolean {
    if (fill.expiresAt > this.clock.now()) return true;
    this.values.remove(fill);
    this.leasesExpired++;
    return false;
  }

  /** The key's write lease after dropping what has expired (an expired writer marks the record dirty). */
  private liveWrite(key: string): WriteLease | undefined {
    const lease = this.leases.get(key);
    if (lease === undefined) return undefined;
    const now = this.clock.now();
    for (const [token, deadline] of lease.tokens) {
      if (deadline > now) continue;
      lease.tokens.delete(token);
      lease.dirty = true;
      this.leasesExpired++;
    }
    if (lease.tokens.size > 0) return lease;
    this.leases.delete(key);
    return undefined;
  }

  private valueView(key: string, value: StoredValue): CacheRecordView {
    const remaining = this.values.remainingTtl(key);
    return {
      key,
      kind: 'value',
      version: value.version,
      payload: value.payload,
      tombstone: value.tombstone,
      expiresAt: Number.isFinite(remaining) ? this.epochOf(this.clock.now() + remaining) : Number.POSITIVE_INFINITY,
    };
  }
}

function toStored(entry: CacheEntry, ttlMs: number): StoredValue {
  return Object.freeze({
    kind: 'value',
    version: entry.version,
    payload: entry.payload,
    tombstone: entry.tombstone,
    ttlMs,
    sizeBytes: Math.max(1, entry.sizeBytes),
  });
}
