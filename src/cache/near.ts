// The near cache: an in-process L1 in front of the Redis cache, behind the same CacheAdapter port.
// A hot key's hit is a map lookup; everything else is the Redis cache's protocol, untouched.
//
// What it promises (docs/near-cache.md): a read never returns a value older than one acknowledged
// more than `maxStalenessMs` before the read began, and a process reads its own writes.
//
// Why the bound holds. A copy is a `value` that a Redis get returned; the get was sent at
// `loadedAt` (this process's monotonic clock), so the copy is no older than what Redis held at
// `loadedAt`, which (the default protocol's guarantee) is no older than any write acknowledged
// before then. A copy is "fresh as of" F and served only while `now - F < maxStalenessMs`:
//   - F = loadedAt needs no message at all (age rule);
//   - with heartbeats, F = max(loadedAt, provenAt): every heartbeat interval the feed writes a key
//     of its own through Redis and notes when (`sentAt`); when that key's invalidation comes back
//     on the feed, every invalidation Redis sent before it executed the heartbeat has been applied
//     (one connection, in order), so a copy still present was unchanged in Redis at `sentAt`:
//     provenAt = that `sentAt`. A heartbeat that comes back out of sequence (one went missing:
//     something was lost) flushes the L1; a reconnect flushes it and forgets provenAt.
// A paused, slow or dead feed only stops provenAt from moving: copies then live out their age.
//
// Values: the L1 holds decoded, deep-frozen values (the `decodedValues` capability), so a hit
// costs no parse. It decodes what Redis answers and encodes what the engine publishes, with the
// engine's codec (pass the same one: `codec`, JSON by default).
//
// Lease and fill rules stay Redis's: only a plain `value` answer is ever copied or served; a miss,
// a fill lease, a bypass and every transition (fill, writes, invalidateOlder) go to Redis, and
// drop the local copy before they are sent and again when they return. A get in flight while its
// key is dropped or invalidated does not copy its answer (its answer may predate the change).
import { LRUCache } from 'lru-cache';
import type { Duration } from '../duration.js';
import { toMs } from '../duration.js';
import { deepFreeze, jsonCodec } from '../codec.js';
import { InvalidOptionError } from '../errors.js';
import type {
  CacheAdapter,
  CacheCapabilities,
  CacheEntry,
  CacheGetResult,
  CacheRecordView,
  CacheStats,
  Codec,
  CompleteOutcome,
  CompleteWriteOptions,
  LeaseToken,
  MaybePromise,
  ValueRecord,
  JournalCursor,
  Version,
} from '../types.js';
import type { InvalidationFeed, InvalidationListener } from './near-feed.js';

export type { InvalidationFeed, InvalidationListener } from './near-feed.js';

export interface NearCacheOptions {
  /** The Redis cache (createRedisCache) the L1 sits in front of. Closed by the near cache's `close()`. */
  readonly redis: CacheAdapter & { readonly keyPrefix: string };
  /** Where invalidations come from: `createTrackingFeed({ url, keyPrefix })` (Redis CLIENT TRACKING). */
  readonly feed: InvalidationFeed;
  /** The bound: no read returns a value older than one acknowledged this long before the read began. */
  readonly maxStaleness: Duration;
  /** Bound of the L1 in entries. At least one of maxEntries / maxBytes. */
  readonly maxEntries?: number;
  /** Bound of the L1 in bytes of payload (UTF-8) plus key. */
  readonly maxBytes?: number;
  /**
   * Heartbeats through the feed that keep copies servable past their age while the feed proves
   * itself (see above); `false` keeps the age rule only (every copy is reloaded from Redis once it
   * is maxStaleness old). @default true, every maxStaleness / 4
   */
  readonly heartbeat?: boolean;
  /** The engine's codec (the L1 holds decoded values; Redis holds what this encodes). @default JSON */
  readonly codec?: Codec;
  /** Monotonic milliseconds. @default performance.now */
  readonly now?: () => number;
}

export interface NearCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly entries: number;
  readonly bytes: number;
  /** Whether the invalidation feed is connected and tracking (the L1 serves only while it is). */
  readonly live: boolean;
  /** Heartbeats that came back / flushes because one came back out of sequence. */
  readonly heartbeats: number;
  readonly gaps: number;
}

interface Copy {
  readonly record: ValueRecord;
  /** When the Redis get that returned it was sent. */
  readonly loadedAt: number;
  readonly bytes: number;
}

/** A get in flight: its answer is copied only if its key was not dropped meanwhile. */
interface Flight {
  count: number;
  stamp: number;
}

/** Outstanding heartbeats remembered at most, and for how many bounds. */
const MAX_OUTSTANDING_HEARTBEATS = 256;
const FORGET_HEARTBEAT_AFTER_BOUNDS = 20;

/** Per-copy overhead counted against maxBytes besides payload and key. */
const COPY_OVERHEAD_BYTES = 64;

export class NearCache implements CacheAdapter, InvalidationListener {
  readonly name: string;
  readonly capabilities: CacheCapabilities;
  readonly maxStalenessMs: number;
  private readonly redis: CacheAdapter & { readonly keyPrefix: string };
  private readonly feed: InvalidationFeed;
  private readonly copies: LRUCache<string, Copy>;
  private readonly flights = new Map<string, Flight>();
  private readonly now: () => number;
  private readonly prefix: string;
  private readonly codec: Codec;
  private live = false;
  /** Bumped whenever every copy is dropped: a get sent before it copies nothing. */
  private epoch = 0;
  private hits = 0;
  private misses = 0;
  /** Send time of the newest heartbeat that came back in sequence on the live connection. */
  private provenAt = -Infinity;
  private heartbeatSeq = 0;
  private lastHeartbeat = 0;
  private readonly heartbeatsSent = new Map<number, number>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeats = 0;
  private gaps = 0;
  private readonly heartbeatEvery: number | undefined;

  get restartQuarantineMs(): number | undefined {
    return this.redis.restartQuarantineMs;
  }

  constructor(options: NearCacheOptions) {
    if (options?.redis === undefined || typeof options.redis.keyPrefix !== 'string') {
      throw new InvalidOptionError('redis must be a Redis cache adapter (createRedisCache)');
    }
    if (options.redis.capabilities.decodedValues) throw new InvalidOptionError('the near cache fronts a cache of encoded values (Redis), not an in-process one');
    this.redis = options.redis;
    this.feed = options.feed;
    this.prefix = options.redis.keyPrefix;
    this.name = options.redis.name;
    this.capabilities = Object.freeze({ ...options.redis.capabilities, decodedValues: true });
    this.codec = options.codec ?? jsonCodec;
    this.maxStalenessMs = toMs(options.maxStaleness, 'maxStaleness');
    const maxEntries = positive(options.maxEntries, 'maxEntries');
    const maxBytes = positive(options.maxBytes, 'maxBytes');
    if (maxEntries === undefined && maxBytes === undefined) {
      throw new InvalidOptionError('a near cache must be bounded: set maxEntries, maxBytes, or both');
    }
    this.copies = new LRUCache<string, Copy>({
      ...(maxEntries === undefined ? {} : { max: maxEntries }),
      ...(maxBytes === undefined ? {} : { maxSize: maxBytes, sizeCalculation: (copy: Copy) => copy.bytes }),
    } as { max: number });
    this.now = options.now ?? (() => performance.now());
    // Never more often than every 2 ms: a tighter bound then relies on the age rule more often.
    this.heartbeatEvery = options.heartbeat === false ? undefined : Math.max(2, this.maxStalenessMs / 4);
  }

  /** Connects the invalidation feed (the L1 serves once it is tracking) and starts the heartbeats. */
  async start(): Promise<void> {
    await this.feed.start(this);
    if (this.heartbeatEvery !== undefined && this.heartbeatTimer === undefined) {
      this.heartbeatTimer = setInterval(() => this.sendHeartbeat(), this.heartbeatEvery);
      this.heartbeatTimer.unref();
    }
  }

  /** Whether a copy may be served now. The one rule the bound rests on. */
  protected servable(copy: Copy, now: number): boolean {
    return now - (copy.loadedAt > this.provenAt ? copy.loadedAt : this.provenAt) < this.maxStalenessMs;
  }

  /** Sends a heartbeat. */
  sendHeartbeat(): void {
    if (!this.live) return;
    const now = this.now();
    // Remember a bounded number of outstanding ones (oldest forgotten first): one that comes back
    // after it was forgotten is ignored, and the next one back then looks out of sequence and
    // flushes (conservative). A late one that is still remembered only proves an old time.
    for (const [seq, sentAt] of this.heartbeatsSent) {
      if (this.heartbeatsSent.size < MAX_OUTSTANDING_HEARTBEATS && now - sentAt < FORGET_HEARTBEAT_AFTER_BOUNDS * this.maxStalenessMs) break;
      this.heartbeatsSent.delete(seq);
    }
    const seq = ++this.heartbeatSeq;
    this.heartbeatsSent.set(seq, now);
    // A send that fails leaves a hole in the sequence: the next one back flushes (conservative).
    this.feed.heartbeat(seq).catch(() => undefined);
  }

  get(key: string, fillLeaseMs: number): MaybePromise<CacheGetResult> {
    if (this.live) {
      const copy = this.copies.get(key);
      if (copy !== undefined) {
        if (this.servable(copy, this.now())) {
          this.hits++;
          return copy.record;
        }
        this.copies.delete(key);
      }
    }
    this.misses++;
    return this.load(key, fillLeaseMs);
  }

  private async load(key: string, fillLeaseMs: number): Promise<CacheGetResult> {
    let flight = this.flights.get(key);
    if (flight === undefined) this.flights.set(key, (flight = { count: 0, stamp: 0 }));
    flight.count++;
    const stamp = flight.stamp;
    const epoch = this.epoch;
    const loadedAt = this.now();
    try {
      const result = await this.redis.get(key, fillLeaseMs);
      if (result.kind !== 'value') return result;
      const encoded = typeof result.payload === 'string' ? result.payload : '';
      const record: ValueRecord = {
        kind: 'value',
        version: result.version,
        tombstone: result.tombstone,
        payload: result.tombstone ? undefined : deepFreeze(this.codec.decode(encoded)),
      };
      if (this.live && epoch === this.epoch && stamp === flight.stamp) {
        this.copies.set(key, { record, loadedAt, bytes: Buffer.byteLength(encoded) + key.length + COPY_OVERHEAD_BYTES });
      }
      return record;
    } finally {
      if (--flight.count === 0) this.flights.delete(key);
    }
  }

  /** Drops the copy of `key` and keeps any get in flight from copying an answer older than now. */
  private drop(key: string): void {
    this.copies.delete(key);
    const flight = this.flights.get(key);
    if (flight !== undefined) flight.stamp++;
  }

  /** Runs a transition on Redis with the key dropped before it is sent and again when it returns. */
  private async around<T>(key: string, call: () => MaybePromise<T>): Promise<T> {
    this.dropOwn(key);
    try {
      return await call();
    } finally {
      this.dropOwn(key);
    }
  }

  /** This process changes `key`: what read-your-writes rests on (not on the feed delivering our own change back). */
  protected dropOwn(key: string): void {
    this.drop(key);
  }

  /** The engine hands decoded values (decodedValues); Redis keeps the encoded string. */
  private encoded(entry: CacheEntry): CacheEntry {
    return entry.tombstone ? entry : { ...entry, payload: this.codec.encode(entry.payload) };
  }

  fill(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number): Promise<boolean> {
    return this.around(key, () => this.redis.fill(key, token, this.encoded(entry), ttlMs));
  }

  beginWrite(key: string, token: LeaseToken, leaseMs: number): Promise<void> {
    return this.around(key, () => this.redis.beginWrite(key, token, leaseMs));
  }

  completeWrite(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number, options?: CompleteWriteOptions): Promise<CompleteOutcome> {
    return this.around(key, () => this.redis.completeWrite(key, token, this.encoded(entry), ttlMs, options));
  }

  abortWrite(key: string, token: LeaseToken): Promise<void> {
    return this.around(key, () => this.redis.abortWrite(key, token));
  }

  invalidateOlder(key: string, version: Version): Promise<void> {
    return this.around(key, () => this.redis.invalidateOlder(key, version));
  }

  // InvalidationListener: called by the feed.

  invalidate(redisKey: string): void {
    if (redisKey.startsWith(this.prefix)) this.drop(redisKey.slice(this.prefix.length));
  }

  invalidateAll(): void {
    this.epoch++;
    this.copies.clear();
  }

  setLive(live: boolean): void {
    this.invalidateAll();
    // A new connection starts a new sequence: nothing sent before it proves anything.
    this.provenAt = -Infinity;
    this.heartbeatsSent.clear();
    this.lastHeartbeat = this.heartbeatSeq;
    this.live = live;
  }

  heartbeat(seq: number): void {
    const sentAt = this.heartbeatsSent.get(seq);
    if (sentAt === undefined || seq <= this.lastHeartbeat) return; // an older connection's, or its key expiring
    if (seq !== this.lastHeartbeat + 1) this.onGap();
    for (const sent of this.heartbeatsSent.keys()) if (sent <= seq) this.heartbeatsSent.delete(sent);
    this.lastHeartbeat = seq;
    this.heartbeats++;
    if (sentAt > this.provenAt) this.provenAt = sentAt;
  }

  /** A heartbeat is missing: anything sent with it may be lost too, so nothing cached is trusted. */
  protected onGap(): void {
    this.gaps++;
    this.invalidateAll();
  }

  nearStats(): NearCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      entries: this.copies.size,
      bytes: this.copies.calculatedSize ?? 0,
      live: this.live,
      heartbeats: this.heartbeats,
      gaps: this.gaps,
    };
  }

  // The rest is Redis's.

  peek(key: string): MaybePromise<CacheRecordView | undefined> {
    return this.redis.peek(key);
  }

  scan(prefix: string): AsyncIterable<CacheRecordView> {
    return this.redis.scan(prefix);
  }

  ping(): MaybePromise<void> {
    return this.redis.ping();
  }

  stats(): CacheStats {
    return this.redis.stats();
  }

  loadJournalCursor(journalId: string): MaybePromise<JournalCursor | undefined> {
    return this.redis.loadJournalCursor(journalId);
  }

  saveJournalCursor(journalId: string, cursor: JournalCursor, replace?: boolean): MaybePromise<void> {
    return this.redis.saveJournalCursor(journalId, cursor, replace);
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    this.setLive(false);
    await this.feed.close();
    await this.redis.close();
  }
}

function positive(value: number | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidOptionError(`${option} must be a positive integer (got ${JSON.stringify(value)})`);
  return value;
}
