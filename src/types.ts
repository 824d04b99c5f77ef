// The ports: the small, dumb interfaces that the engine drives and the adapters implement.
// Adapters move strings (or, as a declared capability, frozen decoded values); the engine owns
// serialization, versions and policy. See docs/protocol.md.

/** A version assigned by the store. Per key it increases in commit order, across delete and re-create. */
export type Version = number;

/** Opaque token naming one lease holder (a writer, or the reader allowed to fill). */
export type LeaseToken = string;

/** A value or a promise of it: in-process adapters answer synchronously, so a memory hit costs no promise. */
export type MaybePromise<T> = T | Promise<T>;

/** Milliseconds on a monotonic time line. Injected so that TTL and lease tests never sleep. */
export interface Clock {
  now(): number;
}

/** Turns user values into the string the store keeps, and back. */
export interface Codec {
  /** Throws when the value cannot be represented. */
  encode(value: unknown): string;
  decode(payload: string): unknown;
}

// ---------------------------------------------------------------------------------------------
// Cache port: every operation is one atomic transition of the per-key record.

/** What the engine hands the cache to publish: a value or a tombstone, with the store's version. */
export interface CacheEntry {
  readonly version: Version;
  /** The encoded payload, or the deep-frozen decoded value when the adapter holds decoded values. Undefined for a tombstone. */
  readonly payload: unknown;
  readonly tombstone: boolean;
  /** Size of the encoded payload in bytes, for byte-bounded caches. */
  readonly sizeBytes: number;
}

/** A servable record. Adapters may return the stored object itself: treat it as read-only. */
export interface ValueRecord {
  readonly kind: 'value';
  readonly version: Version;
  readonly payload: unknown;
  readonly tombstone: boolean;
}

/** A miss. With a token the caller holds the fill lease; without one another reader is filling. */
export interface MissResult {
  readonly kind: 'miss';
  readonly token: LeaseToken | undefined;
}

/** A write is in flight: read the store and do not fill. */
export interface BypassResult {
  readonly kind: 'bypass';
}

export type CacheGetResult = ValueRecord | MissResult | BypassResult;

/**
 * What completeWrite did: `published` (last writer, value now servable), `pending` (other writers
 * still hold the record), `cleared` (last writer, but the record was dirty: left empty),
 * `fenced` (the token held no lease: only invalidateOlder was applied).
 */
export type CompleteOutcome = 'published' | 'pending' | 'cleared' | 'fenced';

/** How the engine makes a completeWrite call (a hint: an adapter may ignore it). */
export interface CompleteWriteOptions {
  /**
   * The write was acknowledged already (acknowledge 'after-commit'): nobody waits for this call. The
   * Redis adapter may then hold it until the end of the tick, to send it with other calls.
   */
  readonly acknowledged?: boolean;
}

/** A record as the auditor and `inspect` see it, without changing it. */
export type CacheRecordView =
  | { readonly key: string; readonly kind: 'value'; readonly version: Version; readonly payload: unknown; readonly tombstone: boolean; readonly expiresAt: number }
  | { readonly key: string; readonly kind: 'fill'; readonly expiresAt: number }
  | { readonly key: string; readonly kind: 'write'; readonly writers: number; readonly maxVersion: Version; readonly dirty: boolean; readonly expiresAt: number };

export interface CacheCapabilities {
  /** The adapter keeps decoded, deep-frozen values: the engine passes and receives those instead of strings. */
  readonly decodedValues: boolean;
  /**
   * Several processes see the same records (Redis), so the journal cursor is kept in the cache: rows
   * committed while no instance ran are still replayed. A private cache (memory) starts empty and
   * starts at the journal's end.
   */
  readonly shared: boolean;
}

/** See CacheAdapter.slot. */
export interface CacheSlot {
  /** The key's value record while this slot holds it (counts as a use, like a hit of `get`); undefined otherwise. */
  read(): ValueRecord | undefined;
}

export interface CacheStats {
  /** Leases dropped because their holder did not finish in time. */
  readonly leasesExpired: number;
  /** Datasets removed because the cache could not prove it wrote them (a Redis restarted from a snapshot, a promoted replica). */
  readonly datasetFlushes?: number;
  /** Quarantines started after a lost dataset: the cache answered no call for one lease period. */
  readonly datasetQuarantines?: number;
}

/** A store's own counters (the SQL stores: settlement of writes given up on, settle-loop.ts). */
export interface StoreStats {
  /** Polls of the settlement loop that failed (the database could not be asked); each is retried. */
  readonly settlePollErrors: number;
}

/**
 * What a caller of CacheAdapter.getThen does with get's answer (one object, not two closures). The
 * engine may pass the same handler to every untimed read of one key: an adapter must keep no
 * per-read state on it (key it by nothing; answer through the returned value only).
 */
export interface CacheAnswerHandler<R> {
  answer(answer: CacheGetResult): R | Promise<R>;
  failure(error: unknown): R | Promise<R>;
}

export interface CacheAdapter {
  readonly name: string;
  readonly capabilities: CacheCapabilities;
  /** How long the cache answers no call after losing its dataset (the Redis adapter); an engine's leaseTtl may not exceed it. */
  readonly restartQuarantineMs?: number | undefined;
  /** value → the record; nothing or an expired lease → a fill lease for the caller (miss with token); live fill → miss without token; live write → bypass. */
  get(key: string, fillLeaseMs: number): MaybePromise<CacheGetResult>;
  /**
   * `get(key, fillLeaseMs).then((a) => handler.answer(a), (e) => handler.failure(e))` in one step,
   * for a cache whose get is a promise: it runs the caller's handling of the answer in its own
   * callback, sparing the promise in between (the Redis adapter: a hit is then one promise fewer).
   * The same answers and failures as get, each handled as `then` would. A wrapper that must see
   * every get (tracing) leaves it out.
   */
  getThen?<R>(key: string, fillLeaseMs: number, handler: CacheAnswerHandler<R>): Promise<R>;
  /** Publishes the entry only if `token` still holds the fill lease. Returns whether it was accepted. */
  fill(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number): MaybePromise<boolean>;
  /** Adds a write lease for `token`, whatever the record holds (keeping the highest version seen). */
  beginWrite(key: string, token: LeaseToken, leaseMs: number): MaybePromise<void>;
  /** Drops `token`'s lease; the last writer publishes the highest version (or clears a dirty record). Without a lease: invalidateOlder only. */
  completeWrite(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number, options?: CompleteWriteOptions): MaybePromise<CompleteOutcome>;
  /** Drops `token`'s lease after a clean store failure; the last writer leaves the record empty. */
  abortWrite(key: string, token: LeaseToken): MaybePromise<void>;
  /** Version fencing: removes a value older than `version`, voids a fill, marks an older write record dirty. */
  invalidateOlder(key: string, version: Version): MaybePromise<void>;
  /** The record as it is, without creating a lease. */
  peek(key: string): MaybePromise<CacheRecordView | undefined>;
  /** Every record whose key starts with `prefix`, for the auditor. */
  scan(prefix: string): AsyncIterable<CacheRecordView>;
  ping(): MaybePromise<void>;
  stats(): CacheStats;
  /**
   * The last id of the journal `journalId` (see StoreAdapter.journalId) replayed into this cache, or
   * undefined when unknown (a new or emptied cache, or a lost cursor: the drainer then replays the
   * whole retained journal). One cache may front several stores.
   */
  loadJournalCursor(journalId: string): MaybePromise<JournalCursor | undefined>;
  /**
   * Records that rows of journal `journalId` up to `cursor.id` are replayed, with the stamp of the
   * row at that id. Never moves the cursor backwards (a drainer that lags behind another keeps
   * its own), unless `replace`: after the store's journal went back (a failover or restore), the
   * saved cursor stands for rows the store no longer has.
   */
  saveJournalCursor(journalId: string, cursor: JournalCursor, replace?: boolean): MaybePromise<void>;
  /**
   * An in-process cache may hand out the slot of a key's live value (undefined when it holds none):
   * `slot.read()` is then the same step as a `get` that hits, and answers undefined once the slot no
   * longer holds the key's value (deleted, evicted, expired, replaced by a lease), when the reader
   * asks `get` again. It spares a repeated hit the key lookup. A wrapper that must see every hit
   * (tracing each get) leaves it out.
   */
  slot?(key: string): CacheSlot | undefined;
  /**
   * True only when the cache holds no record at all right now (an in-process cache can tell; a
   * shared one leaves this out). The journal drainer may then start at the journal's head.
   */
  isEmpty?(): boolean;
  close(): MaybePromise<void>;
}

// ---------------------------------------------------------------------------------------------
// Store port: the source of truth, versioned, with a journal of keys to invalidate.

export interface StoredValue {
  readonly version: Version;
  readonly payload: string;
}

/**
 * A condition on the key's live version, checked inside the write's own transaction (so no other
 * write can slip between the check and the commit): `version` (the live version equals it),
 * `absent` (the key is not live: create-only), `present` (the key is live).
 */
export type StorePrecondition =
  | { readonly kind: 'version'; readonly version: Version }
  | { readonly kind: 'absent' }
  | { readonly kind: 'present' };

export interface StoreWriteOptions {
  /** Also append the key to the repair journal in the same transaction (the cache could not be leased). */
  readonly journal: boolean;
  /** Time the store may take before giving up (lock waits, statement timeout), in ms. */
  readonly deadlineMs: number;
  /**
   * When set and it does not hold, the store commits nothing and throws PreconditionFailedError
   * with the key's live version (0 when not live).
   */
  readonly precondition?: StorePrecondition | undefined;
  /**
   * A hint: the key had a live row when this instance last wrote it. A store may try an update-only
   * statement first (PostgreSQL); a wrong hint costs it a second statement, never another result.
   */
  readonly likelyExists?: boolean;
}

export interface StoreWriteResult {
  readonly version: Version;
  /**
   * The value as the store holds it after the write, read back in its transaction, from a store that
   * can change what it is given (an entity table: the database's types and rounding, generated
   * columns, the application's own triggers). The cache publishes this one, not the payload written.
   */
  readonly payload?: string;
}

export interface StoreDeleteResult {
  readonly version: Version;
  readonly existed: boolean;
}

/** Why a key is in the journal: `trigger` (a write seen by the store's triggers, e.g. plain SQL) or `repair` (Lockstep could not reach the cache). */
export type JournalReason = 'trigger' | 'repair';

/** Where a journal drainer stands: rows up to `id` are replayed. */
export interface JournalCursor {
  readonly id: number;
  /**
   * The stamp (journalRowStamp) of the row with id `id`, when the cursor stands at a row: a store
   * that went back to an older state (a failover to an async replica, a restore) hands its ids out
   * again, and the stamp tells the rows apart. Undefined: a position at no row, not checked.
   */
  readonly stamp?: string;
  /**
   * The hash of the store's incarnation (StoreAdapter.incarnation) when the cursor was reached: a
   * store promoted from a replica or restored to an older state answers another one.
   */
  readonly incarnation?: string;
}

export interface JournalEntry {
  readonly id: number;
  readonly namespace: string;
  readonly key: string;
  readonly version: Version;
  readonly reason: JournalReason;
  /** Wall-clock ms since the epoch when the row was written. */
  readonly createdAt: number;
}

export interface StoreScanRow {
  readonly key: string;
  readonly version: Version;
  readonly payload: string;
}

export interface StoreAdapter {
  readonly name: string;
  /**
   * The key's committed payload and version, or undefined when it is not live. An in-process store
   * (SQLite) may answer synchronously, as the memory cache's get does: the engine then fills without
   * a promise in between. A failure is a rejected promise, never a throw (the engine copes with
   * both, but other callers may not).
   */
  read(namespace: string, key: string): MaybePromise<StoredValue | undefined>;
  /**
   * Commits the payload as the key's next version. An in-process store (SQLite) may answer
   * synchronously, as `read` may: the engine then publishes without a promise or a deadline race in
   * between (a settled commit wins any race). A failure is a rejected promise, never a throw.
   */
  write(namespace: string, key: string, payload: string, options: StoreWriteOptions): MaybePromise<StoreWriteResult>;
  /** Deleting a missing key still commits a new version (a tombstone the cache can be fenced with). */
  delete(namespace: string, key: string, options: StoreWriteOptions): Promise<StoreDeleteResult>;
  appendJournal(namespace: string, key: string, version: Version, reason: JournalReason): Promise<void>;
  /** Journal rows with id > afterId, in id order. Ids are assigned in commit order. */
  readJournal(afterId: number, limit: number): Promise<JournalEntry[]>;
  /** The highest journal id so far (0 when empty). */
  journalHead(): Promise<number>;
  /**
   * Deletes journal rows written before `beforeEpochMs`, only as a prefix of the journal (rows below
   * the first one not that old; so the oldest retained id bounds what was ever pruned) and never a
   * row above `throughId` (the pruning drainer's cursor: a row committed late with an old timestamp,
   * e.g. by a long transaction, is kept until a drainer applied it). Returns how many.
   */
  pruneJournal(beforeEpochMs: number, throughId?: number): Promise<number>;
  /** Live keys of a namespace in key order, after `afterKey` (exclusive). */
  scan(namespace: string, afterKey: string | undefined, limit: number): Promise<StoreScanRow[]>;
  ping(): Promise<void>;
  /**
   * Names this store's journal (database, schema or file), so that a shared cache keeps one
   * replay cursor per journal: two stores behind one Redis never share a cursor.
   */
  journalId(): Promise<string>;
  /**
   * Names the line of history the store is on: it changes when the store may have gone back to an
   * older state, such as a replica promoted after a failover (PostgreSQL: its timeline; MariaDB:
   * the server answering) or a restore that started a new timeline. The journal drainer checks it
   * on every pass and flushes the cache when it changed (docs/protocol.md, "A store that goes
   * back"). Undefined, or the method left out: the store cannot tell (SQLite: a restored file is
   * caught only through its journal), and nothing is compared.
   */
  incarnation?(): Promise<string | undefined>;
  /**
   * Calls `listener` when journal rows may have been appended (PostgreSQL LISTEN/NOTIFY), so the
   * drainer need not wait for its next poll. Returns the unsubscribe function. Stores without push
   * notifications leave it out; polling covers them.
   */
  onJournal?(listener: () => void): () => void;
  /** The store's own counters, read at scrape time; stores with none leave it out. */
  stats?(): StoreStats;
  close(): Promise<void>;
}
