// The memory cache's servable values: a map of slots in least-recently-used order, bounded by entry
// count and by bytes, each slot with its own TTL. Written for the memory cache instead of lru-cache
// for one reason: a slot is an object the engine can hold (CacheAdapter.slot), so a repeated hit of
// a key reads its slot without looking the joined cache key up again (two hash lookups were most of
// a memory hit). A slot belongs to its key until the key's value is deleted or evicted; then it is
// dead for good and its value let go, and a later value of the key gets a new slot.
import type { Clock, ValueRecord } from '../types.js';

export class ValueSlot<V extends ValueRecord> {
  /** Less and more recently used neighbours; undefined at the ends. */
  older: ValueSlot<V> | undefined = undefined;
  newer: ValueSlot<V> | undefined = undefined;
  live = true;

  constructor(
    private readonly owner: ValueSlots<V>,
    readonly key: string,
    public value: V | undefined,
    public expiresAt: number,
    public size: number,
  ) {}

  /** The value while this slot is its key's and has not expired (a use: it becomes the most recent); else undefined. */
  read(): V | undefined {
    return this.live ? this.owner.use(this) : undefined;
  }
}

export interface ValueSlotsOptions {
  readonly maxEntries: number | undefined;
  readonly maxBytes: number | undefined;
  readonly clock: Clock;
  /**
   * Reuse one clock reading for up to 1 ms (a reading is ~50 ns, a large part of a hit). Off for an
   * injected clock, which tests move by hand: it is then read every time.
   */
  readonly coarseClock: boolean;
}

export class ValueSlots<V extends ValueRecord> {
  private readonly slots = new Map<string, ValueSlot<V>>();
  /** Least recently used: evicted first. */
  private oldest: ValueSlot<V> | undefined;
  private newest: ValueSlot<V> | undefined;
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly clock: Clock;
  private readonly coarseClock: boolean;
  private cachedNow = 0;
  private nowCached = false;
  private readonly forgetNow = (): void => {
    this.nowCached = false;
  };

  constructor(options: ValueSlotsOptions) {
    this.maxEntries = options.maxEntries ?? Infinity;
    this.maxBytes = options.maxBytes ?? Infinity;
    this.clock = options.clock;
    this.coarseClock = options.coarseClock;
  }

  get size(): number {
    return this.slots.size;
  }

  /** The key's value, if live (a use). */
  get(key: string): V | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.use(slot);
  }

  /** The key's live slot, for a reader that will come back (CacheAdapter.slot). */
  slot(key: string): ValueSlot<V> | undefined {
    const slot = this.slots.get(key);
    return slot !== undefined && slot.expiresAt >= this.now() ? slot : undefined;
  }

  /** Whether the key holds a live value (not a use). */
  has(key: string): boolean {
    return this.peek(key) !== undefined;
  }

  /** The key's value, if live, without counting a use. */
  peek(key: string): V | undefined {
    const slot = this.slots.get(key);
    return slot !== undefined && slot.expiresAt >= this.now() ? slot.value : undefined;
  }

  /** Milliseconds the key's value has left: 0 when there is none, Infinity when it never expires. */
  remainingTtl(key: string): number {
    const slot = this.slots.get(key);
    if (slot === undefined) return 0;
    const left = slot.expiresAt - this.now();
    return left >= 0 ? left : 0;
  }

  /**
   * Stores the key's value for `ttlMs` (0 or less, or not finite: no expiry) as the most recent. A
   * value larger than maxBytes on its own is not stored, and the key's older value is dropped.
   */
  set(key: string, value: V, ttlMs: number, size: number): void {
    const expiresAt = ttlMs > 0 && Number.isFinite(ttlMs) ? this.now() + ttlMs : Infinity;
    let slot = this.slots.get(key);
    if (size > this.maxBytes) {
      if (slot !== undefined) this.remove(slot);
      return;
    }
    if (slot === undefined) {
      slot = new ValueSlot(this, key, value, expiresAt, size);
      this.slots.set(key, slot);
      this.append(slot);
    } else {
      this.bytes -= slot.size;
      slot.value = value;
      slot.expiresAt = expiresAt;
      slot.size = size;
      this.moveToNewest(slot);
    }
    this.bytes += size;
    // The new value is the newest: eviction takes older ones first, never it (it fits on its own).
    while (this.slots.size > this.maxEntries || this.bytes > this.maxBytes) this.remove(this.oldest!);
  }

  delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot !== undefined) this.remove(slot);
  }

  /** Live [key, value] pairs (a copy: the caller may change the cache while it iterates). */
  entries(): Array<[string, V]> {
    const now = this.now();
    const live: Array<[string, V]> = [];
    for (const slot of this.slots.values()) if (slot.expiresAt >= now) live.push([slot.key, slot.value!]);
    return live;
  }

  clear(): void {
    for (const slot of this.slots.values()) this.kill(slot);
    this.slots.clear();
    this.oldest = undefined;
    this.newest = undefined;
    this.bytes = 0;
  }

  /** A live slot's value, unless it expired (then it is removed); counts as a use. */
  use(slot: ValueSlot<V>): V | undefined {
    if (slot.expiresAt < this.now()) {
      this.remove(slot);
      return undefined;
    }
    if (slot !== this.newest) this.moveToNewest(slot);
    return slot.value;
  }

  private now(): number {
    if (!this.coarseClock) return this.clock.now();
    if (!this.nowCached) {
      this.cachedNow = this.clock.now();
      this.nowCached = true;
      setTimeout(this.forgetNow, 1).unref();
    }
    return this.cachedNow;
  }

  private remove(slot: ValueSlot<V>): void {
    this.slots.delete(slot.key);
    this.unlink(slot);
    this.bytes -= slot.size;
    this.kill(slot);
  }

  private kill(slot: ValueSlot<V>): void {
    slot.live = false;
    slot.value = undefined; // a reader may still hold the slot: it must not hold the value
    slot.older = undefined;
    slot.newer = undefined;
  }

  private append(slot: ValueSlot<V>): void {
    slot.older = this.newest;
    slot.newer = undefined;
    if (this.newest === undefined) this.oldest = slot;
    else this.newest.newer = slot;
    this.newest = slot;
  }

  private unlink(slot: ValueSlot<V>): void {
    if (slot.older === undefined) this.oldest = slot.newer;
    else slot.older.newer = slot.newer;
    if (slot.newer === undefined) this.newest = slot.older;
    else slot.newer.older = slot.older;
  }

  private moveToNewest(slot: ValueSlot<V>): void {
    if (slot === this.newest) return;
    this.unlink(slot);
    this.append(slot);
  }
}
