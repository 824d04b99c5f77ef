// A Keyv storage adapter that writes through to SQL: `new Keyv({ store: new KeyvLockstep({ store, cache }) })`.
// Keyv, cache-manager and NestJS users swap their store and get the consistency protocol: every
// set, delete and clear goes through a Lockstep engine (lease, store commit, versioned publish).
// keyv is only a type here (an optional peer dependency): nothing of it is loaded at run time.
import { EventEmitter } from 'node:events';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { jsonCodec } from '../codec.js';
import type { WriteThroughOptions } from '../compose/write-through.js';
import type { Engine } from '../engine/api.js';
import { ClosedError, InvalidOptionError, PreconditionFailedError } from '../errors.js';
import { resolveOptions, type JournalDrainerLike, type JournalOptions } from '../options.js';
import { createService, type LockstepService } from '../service/service.js';
import { KeyvNamespaces, type RoutedKey } from './keyv-namespaces.js';
import { asKeyvRow, hasTtl, isLive, keyvRowOf, type KeyvRow } from './keyv-row.js';

export type { KeyvRow } from './keyv-row.js';

export interface KeyvLockstepOptions extends Omit<WriteThroughOptions, 'namespace' | 'codec'> {
  /**
   * Keys Keyv sends without a namespace live in the Lockstep namespace `<namespacePrefix>`; keys of
   * Keyv namespace `users` in `<namespacePrefix>.users` (Keyv's default namespace `keyv` → `keyv.keyv`).
   * @default 'keyv'
   */
  namespacePrefix?: string;
  /**
   * Journal replay (plain-SQL writes, repairs): options for one poller shared by every namespace of
   * this adapter (started on first use, stopped by disconnect()), a drainer shared with other
   * instances, or `false` when something else drains it. @default {}
   */
  journal?: JournalOptions | JournalDrainerLike | false;
  /** Wall clock for expiry timestamps, in ms since the epoch (rows are shared by processes, so not monotonic time). @default Date.now */
  wallClock?: () => number;
  /** Rows read per batch by clear() and iterator(). @default 500 */
  scanBatchSize?: number;
}

/** Keyv's store options object: Keyv wires `keyv.iterator()` only for adapters whose `dialect` or `url` names an SQL or Redis family it knows. */
export interface KeyvLockstepOpts {
  /** The Lockstep store's name (`sqlite`, `postgres`, `mysql` …). */
  dialect: string;
  url: string;
  [option: string]: unknown;
}

type KeyvEngine = Engine<KeyvRow>;

/**
 * Keyv's adapter contract, except that setMany resolves to one boolean per entry (which Keyv's
 * setMany hands its caller, as its documentation promises) where the type says void.
 */
export class KeyvLockstep extends EventEmitter implements Omit<KeyvStoreAdapter, 'setMany'> {
  readonly opts: KeyvLockstepOpts;
  private readonly store: WriteThroughOptions['store'];
  /** The service host: engines per namespace, one journal drainer, one metrics registry (as the HTTP service). */
  private readonly service: LockstepService;
  private readonly namespaces: KeyvNamespaces;
  private readonly cacheTtlMs: number;
  private readonly scanBatchSize: number;
  private readonly now: () => number;
  private currentNamespace: string | undefined;
  private disconnected = false;

  constructor(options: KeyvLockstepOptions) {
    super();
    const { namespacePrefix = 'keyv', journal = {}, metrics, wallClock, scanBatchSize = 500, ...engineOptions } = options;
    // Resolve once so that a bad option fails here, not at the first set().
    const resolved = resolveOptions({ ...engineOptions, namespace: namespacePrefix, journal });
    if (!Number.isSafeInteger(scanBatchSize) || scanBatchSize <= 0) {
      throw new InvalidOptionError(`scanBatchSize must be a positive integer (got ${JSON.stringify(scanBatchSize)})`);
    }
    if (wallClock !== undefined && typeof wallClock !== 'function') throw new InvalidOptionError('wallClock must be a function returning ms since the epoch');
    this.namespaces = new KeyvNamespaces(namespacePrefix);
    const { store, cache, ...settings } = engineOptions;
    this.store = store;
    // The journal poller is started here, with the adapter (it was started on first use before).
    this.service = createService({
      store,
      cache,
      engine: settings,
      journal,
      ...(metrics === undefined ? {} : { metrics }),
      onJournalError: (error) => {
        if (this.listenerCount('error') > 0) this.emit('error', error);
      },
      audit: { interval: 0 },
    });
    this.cacheTtlMs = resolved.ttlMs;
    this.scanBatchSize = scanBatchSize;
    this.now = wallClock ?? (() => Date.now());
    this.opts = { dialect: resolved.store.name, url: `lockstep://${resolved.store.name}`, namespacePrefix };
  }

  /** The Keyv namespace; Keyv assigns it when the store is handed to it. */
  get namespace(): string | undefined {
    return this.currentNamespace;
  }

  set namespace(keyvNamespace: string | undefined) {
    this.namespaces.remember(keyvNamespace); // throws InvalidNamespaceError for a namespace Lockstep cannot name
    this.currentNamespace = keyvNamespace;
  }

  /** The Lockstep instance behind a Keyv namespace (by default the current one), for inspect(), counters and metrics. */
  writeThrough(keyvNamespace: string | undefined = this.currentNamespace): KeyvEngine {
    return this.engineFor(this.namespaces.lockstepNamespaceOf(keyvNamespace));
  }

  /** Keyv's serialized string, or undefined when missing or expired. */
  async get<Value = string>(key: string): Promise<StoredData<Value> | undefined> {
    try {
      return (await this.read(key)) as Value | undefined;
    } catch (error) {
      // Keyv.get swallows a store's rejection without a word: say it on the error channel too.
      if (this.listenerCount('error') > 0) this.emit('error', error);
      throw error;
    }
  }

  getMany<Value = string>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return Promise.all(keys.map((key) => this.read(key) as Promise<Value | undefined>));
  }

  async has(key: string): Promise<boolean> {
    return (await this.read(key)) !== undefined;
  }

  hasMany(keys: string[]): Promise<boolean[]> {
    return Promise.all(keys.map((key) => this.has(key)));
  }

  /** Store first, then cache. A ttl (ms) expires the entry on both sides; the cache keeps it at most min(ttl, the `ttl` option). */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const target = this.route(key);
    const row = keyvRowOf(value, ttl, this.now(), target);
    const cacheTtl = hasTtl(ttl) ? Math.max(1, Math.min(Math.ceil(ttl), this.cacheTtlMs)) : undefined;
    await this.engineFor(target.namespace).write(target.key, row, cacheTtl === undefined ? undefined : { ttl: cacheTtl });
    return true;
  }

  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<boolean[]> {
    return Promise.all(entries.map((entry) => this.set(entry.key, entry.value, entry.ttl)));
  }

  /** Whether a row was there (an expired one counts: it was still stored). */
  async delete(key: string): Promise<boolean> {
    const target = this.route(key);
    return (await this.engineFor(target.namespace).delete(target.key)).existed;
  }

  /** True when at least one of the keys was there. */
  async deleteMany(keys: string[]): Promise<boolean> {
    const existed = await Promise.all(keys.map((key) => this.delete(key)));
    return existed.some(Boolean);
  }

  /**
   * Deletes every key of the current Keyv namespace, one protocol delete per key found by the
   * store's scan, so each leaves a versioned tombstone that fences a slow fill of the old value.
   * A key written while clear() runs may survive it (as with any delete that races a write).
   */
  async clear(): Promise<void> {
    const namespace = this.namespaces.lockstepNamespaceOf(this.currentNamespace);
    const engine = this.engineFor(namespace);
    for await (const batch of this.scanBatches(namespace)) {
      await Promise.all(batch.map((row) => engine.delete(row.key)));
    }
  }

  /** Live entries of a Keyv namespace as `[prefixed key, Keyv's string]`, read from the store (the source of truth) in key order. */
  async *iterator(keyvNamespace?: string): AsyncGenerator<[string, string], void> {
    const namespace = this.namespaces.lockstepNamespaceOf(keyvNamespace);
    for await (const batch of this.scanBatches(namespace)) {
      const now = this.now();
      for (const stored of batch) {
        const row = asKeyvRow(jsonCodec.decode(stored.payload), { key: stored.key, namespace });
        if (isLive(row, now)) yield [this.namespaces.keyvKeyOf(keyvNamespace, stored.key), row.value];
      }
    }
  }

  /** Replays pending journal rows (plain-SQL writes, repairs) into the cache now; returns how many. */
  drainJournal(): Promise<number> {
    return this.service.drainJournal();
  }

  /** The Prometheus exposition of this adapter's engines (empty with `metrics: false`). */
  metricsText(): Promise<string> {
    return this.service.metricsText();
  }

  /** Closes this adapter's engines and journal poller. The store and cache belong to the caller and stay open. */
  async disconnect(): Promise<void> {
    if (this.disconnected) return;
    this.disconnected = true;
    await this.service.close();
  }

  private async read(keyvKey: string): Promise<string | undefined> {
    const target = this.route(keyvKey);
    const engine = this.engineFor(target.namespace);
    const entry = await engine.readEntry(target.key);
    if (!entry.found) return undefined;
    const row = asKeyvRow(entry.value, target);
    if (isLive(row, this.now())) return row.value;
    await this.purge(engine, target.key, entry.version);
    return undefined;
  }

  /**
   * Deletes an expired row, but only the version that was read: a set() that landed since wins (the
   * store refuses the delete with E_PRECONDITION_FAILED). Best effort: the row reads as missing anyway.
   */
  private async purge(engine: KeyvEngine, key: string, version: number): Promise<void> {
    try {
      await engine.delete(key, { ifVersion: version });
    } catch (error) {
      if (!(error instanceof PreconditionFailedError) && this.listenerCount('error') > 0) this.emit('error', error);
    }
  }

  private route(keyvKey: string): RoutedKey {
    return this.namespaces.route(keyvKey, this.currentNamespace);
  }

  private async *scanBatches(namespace: string) {
    const store = this.store;
    let after: string | undefined;
    for (;;) {
      const batch = await store.scan(namespace, after, this.scanBatchSize);
      if (batch.length > 0) yield batch;
      if (batch.length < this.scanBatchSize) return;
      after = batch[batch.length - 1]!.key;
    }
  }

  /** The engine of a Lockstep namespace, from the service host (made on first use, shared journal drainer and metrics). */
  private engineFor(namespace: string): KeyvEngine {
    if (this.disconnected) throw new ClosedError('this Keyv adapter is disconnected', { namespace });
    return this.service.engine(namespace) as KeyvEngine;
  }
}
