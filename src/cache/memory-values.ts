// The memory cache's servable values: a map of slots in least-recently-used order, bounded by entry
// count and by bytes, each slot with its own TTL. Written for the memory cache instead of lru-cache
// for one reason: a slot is an object the engine can hold (CacheAdapter.slot), so a repeated hit of
// a key reads its slot without looking the joined cache key up again (two hash lookups were most of
// a memory hit). A slot belongs to its key until the key's value is deleted or evicted; then it is
// dead for good and its value let go, and a later value of the key gets a new slot.
//
// A key's fill lease lives here too, in a slot of its own (not live, not in the LRU list, in a list of
// fill leases instead): the fill that lands under it turns that slot into the key's value in place, so
// a cold read costs one map insert for its lease and its value together (the memory cache's lease map
// holds write leases only). A key has at most one slot: a value or a fill lease.
import type { Clock, ValueRecord } from '../types.js';

export class ValueSlot<V extends ValueRecord> {
  /** Less and more recently used neighbours; undefined at the ends. */
  /** Less and more recently used neighbours (a fill lease: older and newer fill leases); undefined at the ends. */
  older: ValueSlot<V> | undefined = undefined;
  newer: ValueSlot<V> | undefined = undefined;
  /** Holds the key's value; false while it holds a fill lease, and once dead. */
  live: boolean;

  constructor(
    private readonly owner: ValueSlots<V>,
    readonly key: string,
    public value: V | undefined,
    /** The value's expiry; while the slot holds a fill lease, the lease's deadline. */
    public expiresAt: number,
    public size: number,
    /** The fill lease's token while the slot holds one; undefined otherwise. */
    public fillToken: string | undefined,
  ) {
    this.live = fillToken === undefined;
  }

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
  /** Fill leases, oldest first (for the sweep of expired ones). */
  private oldestFill: ValueSlot<V> | undefined;
  private newestFill: ValueSlot<V> | undefined;
  private values = 0;
  private fills = 0;
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly clock: Clock;
  /** The reused reading, when the clock is coarse. */
  private readonly coarse: CoarseReading | undefined;

  constructor(options: ValueSlotsOptions) {
    this.maxEntries = options.maxEntries ?? Infinity;
    this.maxBytes = options.maxBytes ?? Infinity;
    this.clock = options.clock;
    this.coarse = options.coarseClock ? new CoarseReading(options.clock) : undefined;
  }

  /** Values held (fill leases not counted). */
  get size(): number {
    return this.values;
  }

  /** Fill leases held (live or expired, until dropped). */
  get fillCount(): number {
    return this.fills;
  }

  /** The key's slot, whatever it holds: a value (live) or a fill lease (not live); undefined when none. */
  lookup(key: string): ValueSlot<V> | undefined {
    return this.slots.get(key);
  }

  /** The key's value, if live (a use). */
  get(key: string): V | undefined {
    const slot = this.slots.get(key);
    return slot === undefined || !slot.live ? undefined : this.use(slot);
  }

  /** The key's live slot, for a reader that will come back (CacheAdapter.slot). */
  slot(key: string): ValueSlot<V> | undefined {
    const slot = this.slots.get(key);
    return slot !== undefined && slot.live && slot.expiresAt >= this.now() ? slot : undefined;
  }

  /** The slot of the key's fill lease (live or expired), if the key holds one. */
  fillOf(key: string): ValueSlot<V> | undefined {
    const slot = this.slots.get(key);
    return slot !== undefined && slot.fillToken !== undefined ? slot : undefined;
  }

  /** A fill lease for a key that holds no slot (the caller has just looked: one map insert, no lookup). */
  startFill(key: string, token: string, deadline: number): void {
    const slot = new ValueSlot<V>(this, key, undefined, deadline, 0, token);
    this.slots.set(key, slot);
    slot.older = this.newestFill;
    if (this.newestFill === undefined) this.oldestFill = slot;
    else this.newestFill.newer = slot;
    this.newestFill = slot;
    this.fills++;
  }

  /**
   * The fill lease's slot takes the value (the caller checked the lease: live, and the filler's):
   * the lease ends and the key holds the value, as `set` would store it, without a second lookup.
   */
  fillWith(slot: ValueSlot<V>, value: V, ttlMs: number, size: number): void {
    this.unlinkFill(slot);
    slot.fillToken = undefined;
    if (size > this.maxBytes) {
      this.slots.delete(slot.key);
      this.kill(slot);
      return;
    }
    slot.live = true;
    slot.value = value;
    slot.expiresAt = ttlMs > 0 && Number.isFinite(ttlMs) ? this.now() + ttlMs : Infinity;
    slot.size = size;
    this.values++;
    this.append(slot);
    this.bytes += size;
    this.evictFor();
  }

  /** The fill leases' slots (a copy: the caller may drop some while it iterates). */
  fillSlots(): Array<ValueSlot<V>> {
    const slots: Array<ValueSlot<V>> = [];
    for (let slot = this.oldestFill; slot !== undefined; slot = slot.newer) slots.push(slot);
    return slots;
  }

  /** Whether the key holds a live value (not a use). */
  has(key: string): boolean {
    return this.peek(key) !== undefined;
  }

  /** The key's value, if live, without counting a use. */
  peek(key: string): V | undefined {
    const slot = this.slots.get(key);
    return slot !== undefined && slot.live && slot.expiresAt >= this.now() ? slot.value : undefined;
  }

  /** Milliseconds the key's value has left: 0 when there is none, Infinity when it never expires. */
  remainingTtl(key: string): number {
    const slot = this.slots.get(key);
    if (slot === undefined || !slot.live) return 0;
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
    if (slot !== undefined && !slot.live) {
      this.remove(slot); // a fill lease: a value replaces it
      slot = undefined;
    }
    if (size > this.maxBytes) {
      if (slot !== undefined) this.remove(slot);
      return;
    }
    if (slot === undefined) {
      slot = new ValueSlot<V>(this, key, value, expiresAt, size, undefined);
      this.slots.set(key, slot);
      this.values++;
      this.append(slot);
    } else {
      this.bytes -= slot.size;
      slot.value = value;
      slot.expiresAt = expiresAt;
      slot.size = size;
      this.moveToNewest(slot);
    }
    this.bytes += size;
    this.evictFor();
  }

  /** Within the bounds again: the value just stored is the newest, so eviction takes older ones first, never it (it fits on its own). */
  private evictFor(): void {
    while (this.values > this.maxEntries || this.bytes > this.maxBytes) this.remove(this.oldest!);
  }

  /** Drops the key's value or fill lease. */
  delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot !== undefined) this.remove(slot);
  }

  /** Live [key, value] pairs (a copy: the caller may change the cache while it iterates). */
  entries(): Array<[string, V]> {
    const now = this.now();
    const live: Array<[string, V]> = [];
    for (const slot of this.slots.values()) if (slot.live && slot.expiresAt >= now) live.push([slot.key, slot.value!]);
    return live;
  }

  clear(): void {
    for (const slot of this.slots.values()) this.kill(slot);
    this.slots.clear();
    this.oldest = undefined;
    this.newest = undefined;
    this.oldestFill = undefined;
    this.newestFill = undefined;
    this.values = 0;
    this.fills = 0;
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

  // Small enough to be inlined where it is compared: a double returned from a call that is not
  // inlined is boxed (a heap number per hit).
  private now(): number {
    const coarse = this.coarse;
    return coarse !== undefined && coarse.valid ? coarse.value : this.readClock();
  }

  private readClock(): number {
    return this.coarse === undefined ? this.clock.now() : this.coarse.read();
  }

  /** Drops a slot of the map, a value's or a fill lease's. */
  remove(slot: ValueSlot<V>): void {
    this.slots.delete(slot.key);
    if (slot.fillToken !== undefined) {
      this.unlinkFill(slot);
      slot.fillToken = undefined;
    } else {
      this.unlink(slot);
      this.bytes -= slot.size;
      this.values--;
    }
    this.kill(slot);
  }

  private unlinkFill(slot: ValueSlot<V>): void {
    if (slot.older === undefined) this.oldestFill = slot.newer;
    else slot.older.newer = slot.newer;
    if (slot.newer === undefined) this.newestFill = slot.older;
    else slot.newer.older = slot.older;
    slot.older = undefined;
    slot.newer = undefined;
    this.fills--;
  }

  private kill(slot: ValueSlot<V>): void {
    slot.live = false;
    slot.fillToken = undefined;
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

/**
 * A clock reading reused until a 1 ms timer drops it. The timer holds this small object, not the
 * slots: a cache dropped without close() is not kept (with all its values) until the event loop
 * next runs timers, which a loop of awaited reads that never yields can put off indefinitely.
 */
class CoarseReading {
  value = 0;
  valid = false;
  private readonly forget = (): void => {
    this.valid = false;
  };

  constructor(private readonly clock: Clock) {}

  read(): number {
    const now = this.clock.now();
    this.value = now;
    this.valid = true;
    setTimeout(this.forget, 1).unref();
    return now;
  }
}
