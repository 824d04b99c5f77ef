// The Redis (and Redis Cluster) cache: the per-key record of the consistency protocol, shared by
// every process that talks to the same Redis. Each transition is one Lua script (redis-scripts.ts)
// called by SHA; on a single Redis a hit of a plain value is one GET and no script (in a cluster, a
// script that checks the slot's incarnation first: the dataset guard per slot). Every call has a deadline. On a
// single Redis, the beginWrite / completeWrite calls of one tick share a script run (redis-write-batch.ts).
import { DeadlineCall, Deadlines } from './deadlines.js';
import type { Duration } from '../duration.js';
import { toMs } from '../duration.js';
import { CacheError, CacheEvictionPolicyError, CacheTimeoutError, ClosedError, DatasetQuarantinedError, InvalidOptionError, LockstepError } from '../errors.js';
import { createTokenSource } from '../tokens.js';
import type {
  CacheAdapter,
  CacheAnswerHandler,
  CacheEntry,
  CacheGetResult,
  CacheRecordView,
  CacheStats,
  CompleteOutcome,
  CompleteWriteOptions,
  LeaseToken,
  MissResult,
  JournalCursor,
  Version,
} from '../types.js';
import { checkVersion, decodeValue, encodeValue, escapeGlob } from './redis-records.js';
import { CLUSTER_SCRIPTS, SCRIPTS, type LuaScript, type ScriptName } from './redis-scripts.js';
import { IncarnationKeys } from './redis-slots.js';
import { WriteBatcher, WriteCall, type WriteCallHost, type WriteOp } from './redis-write-batch.js';
import { configValue, durationArg, toView, unexpected } from './redis-replies.js';
import { DatasetGuard, guarded, type DatasetFlush, type DatasetQuarantine } from './redis-dataset.js';
import {
  clientTransport,
  isServerReply,
  clusterNodes,
  clusterTransport,
  DEFAULT_URL,
  isCluster,
  OWNED_OPTIONS,
  ownedClient,
  ownedCluster,
  parseClusterUrl,
  PASSED_OPTIONS,
  type ClientSettings,
  type RedisClientLike,
  type RedisClusterLike,
  type Transport,
} from './redis-transport.js';

export { parseClusterUrl, type RedisClientLike, type RedisClusterLike } from './redis-transport.js';

interface RedisCacheCommon {
  /** Prepended to every key (and the journal cursor key), so several apps can share a Redis. @default 'lockstep:' */
  keyPrefix?: string;
  /**
   * Deadline of every call (a hit, a transition, a scan page, ping): past it the call rejects with
   * an error naming the operation, whatever the connection does. @default '500ms'
   */
  commandTimeout?: Duration;
  /** How long `connect()` waits for the first connection; also the socket connect timeout. @default '5s' */
  connectTimeout?: Duration;
  /** Cap of the reconnect backoff (50 ms doubling, with jitter) of a client the adapter creates. @default '2s' */
  maxReconnectDelay?: Duration;
  /** Bound of node-redis's command queue (sent + waiting) of a client the adapter creates. @default 50000 */
  maxQueuedCommands?: number;
  /** Receives warnings, e.g. an `allkeys-*` maxmemory-policy. @default process.emitWarning */
  onWarning?: (message: string) => void;
  /**
   * After a lost dataset (a Redis restart, a promoted replica, the dataset guard's flush) the cache
   * answers no call for this long (E_CACHE_QUARANTINED: reads use the store, writes follow the
   * failure policy), so that no write whose lease was lost can still commit once fills resume.
   * **Must be at least the `leaseTtl` of every engine using this Redis.** In a Redis Cluster it is
   * kept per hash slot, from the first call that touches the slot after the loss.
   * @default '5s' (the engine's default leaseTtl)
   */
  restartQuarantine?: Duration;
  /** Receives connection errors of a client the adapter creates (failed calls also carry them as `cause`). @default ignored */
  onError?: (error: unknown) => void;
}

/**
 * Where the Redis is: a url (`redis://…`, `rediss://…`, or `redis+cluster://host:port,host:port`
 * for a cluster), cluster root nodes, or a node-redis client / cluster client you created.
 */
export type RedisCacheOptions = RedisCacheCommon &
  (
    | { url?: string; cluster?: undefined; client?: undefined }
    | { cluster: { rootNodes: readonly string[] }; url?: undefined; client?: undefined }
    | { client: RedisClientLike | RedisClusterLike; url?: undefined; cluster?: undefined }
  );

/** The Redis cache adapter: a CacheAdapter plus an explicit, optional `connect()`. */
export interface RedisCacheAdapter extends CacheAdapter {
  /** The prefix of every key this adapter writes. */
  readonly keyPrefix: string;
  /**
   * Opens the connection now and waits for it (at most `connectTimeout`). Optional: the first call
   * connects lazily. Useful at start-up to fail fast on a wrong url.
   */
  connect(): Promise<void>;
  // Every call goes to Redis: each returns a promise, with a deadline.
  get(key: string, fillLeaseMs: number): Promise<CacheGetResult>;
  fill(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number): Promise<boolean>;
  beginWrite(key: string, token: LeaseToken, leaseMs: number): Promise<void>;
  completeWrite(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number, options?: CompleteWriteOptions): Promise<CompleteOutcome>;
  abortWrite(key: string, token: LeaseToken): Promise<void>;
  invalidateOlder(key: string, version: Version): Promise<void>;
  peek(key: string): Promise<CacheRecordView | undefined>;
  ping(): Promise<void>;
  loadJournalCursor(journalId: string): Promise<JournalCursor | undefined>;
  saveJournalCursor(journalId: string, cursor: JournalCursor, replace?: boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * Creates the Redis cache. It connects lazily (the first call opens the connection and waits for it
 * within its deadline) or when you `await cache.connect()`. `close()` closes only a client the
 * adapter created; a client you pass stays yours (the adapter connects it if it is not open).
 *
 * Redis configuration it needs: **`maxmemory-policy` must be `noeviction` or a `volatile-*` policy
 * (`volatile-lru`, `volatile-lfu`, `volatile-ttl`, `volatile-random`), never `allkeys-*`.** Values
 * carry a TTL (PEXPIRE) and may be evicted; leases carry none, so a volatile policy never evicts
 * them for space (evicting a write lease would let a reader fill a stale value). Under `noeviction`
 * a full Redis refuses new leases and the engine falls back to the store. The policy is checked
 * when connecting and again every 5 s while in use (tolerating a disabled CONFIG): under an
 * `allkeys-*` policy `connect()` rejects and every call fails with E_CACHE_EVICTION_POLICY (the
 * engine then treats the cache as down: reads go to the store, writes follow the failure policy),
 * and `onWarning` is told; the adapter serves again once the policy is fixed.
 * A lease whose holder crashed stays as a small key (no TTL) until its key is touched again or
 * `scan()` (the auditor) passes over it: both drop it once its deadline has passed.
 *
 * Records: a value is the plain string `v<version>:<0|1>:<payload>` with a PEXPIRE, so a hit on a
 * single Redis is one GET decoded here, no script; a miss or a lease costs a second round trip (the get-or-lease script).
 * Leases are one record per key with the value (`f…` fill, `w…` write: tokens and deadlines,
 * maxVersion, the pending highest value and its TTL, dirty), so every call touches one key: one slot
 * of a Redis Cluster. Transitions are Lua scripts called by EVALSHA (EVAL on NOSCRIPT), lease
 * deadlines are on the server's clock (TIME), and a hit in a cluster is always read from the master.
 * On a single Redis, the write leases and completions made in one tick run in one script (each its
 * own transition on its own key, with its own deadline, result and error); a cluster runs each alone.
 *
 * A Redis restarted from a snapshot (RDB or AOF), or a promoted replica, may hold values older than
 * acknowledged writes: on every connection, before anything else runs on it, the adapter compares the
 * server's `run_id` with the one it wrote under (a marker key, `<keyPrefix>#dataset`) and, when they
 * differ, removes every key under the prefix (the cache starts cold; `onWarning` is told and
 * `stats().datasetFlushes` counts it). After a lost dataset it answers no call (E_CACHE_QUARANTINED)
 * for `restartQuarantine`, which must be at least every engine's leaseTtl: a write whose lease was lost
 * may still commit meanwhile (`stats().datasetQuarantines`; docs/protocol.md, "The quarantine").
 * In a Redis Cluster the same guard runs per hash slot inside every script (a hit is a script there
 * too): a slot's incarnation key (`<keyPrefix>#inc{…}`) names the serving process, records carry its
 * stamp, a slot found under another process is claimed (its older records are absent) and
 * quarantined. On a single Redis, for a client you pass, this holds only with
 * `disableOfflineQueue: true` (docs/protocol.md, "A cache that rolls back", "Redis Cluster").
 *
 * Failure behavior: the offline queue is disabled and every call has a deadline (`commandTimeout`),
 * so while Redis is down or stalled every call fails within the deadline and never hangs; a client
 * the adapter created reconnects in the background with backoff. Errors are LockstepErrors whose
 * `cause` is the node-redis error. A node-redis `keyPrefix` on a client you pass is not used by
 * the raw commands the adapter sends: use the adapter's `keyPrefix`.
 */
export function createRedisCache(options: RedisCacheOptions = {}): RedisCacheAdapter {
  return new RedisCache(options ?? {});
}

const MISS_WITHOUT_TOKEN: MissResult = Object.freeze({ kind: 'miss', token: undefined });
const BYPASS = Object.freeze({ kind: 'bypass' as const });
const SCAN_COUNT = '1000';
/** A journal cursor's stamp and incarnation hash (journal-stamp.ts). */
const HEX = /^[0-9a-f]{1,64}$/;
/** How many keys' GET commands are kept for the hit path (the engine keeps as many joined keys). */
const GET_COMMANDS_KEPT = 8192;
/** How often the maxmemory-policy is checked again while the adapter is in use. */
const POLICY_RECHECK_MS = 5_000;
class RedisCache implements RedisCacheAdapter, WriteCallHost {
  readonly name: string;
  readonly capabilities = Object.freeze({ decodedValues: false, shared: true });
  readonly restartQuarantineMs: number | undefined;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  /** Cursor keys start with '#', which no namespace can, so no cache key is ever one. */
  private readonly deadlines: Deadlines;
  private readonly cursorPrefix: string;
  /** The adapter's own keys (journal cursors, the dataset marker): '#' after the prefix. */
  private readonly internalPrefix: string;
  /** Every command goes through this transport: for a single Redis it is the dataset guard's (never bypass it). */
  private readonly transport: Transport;
  /** Proves each connection's dataset was written under the current server process (single Redis only). */
  private readonly guard: DatasetGuard | undefined;
  /** Coalesces the beginWrite / completeWrite calls of a tick into one script run (single Redis only). */
  private readonly batcher: WriteBatcher | undefined;
  private readonly owned: boolean;
  private readonly onWarning: (message: string) => void;
  private readonly nextToken = createTokenSource('fill');
  private leasesExpired = 0;
  private closed = false;
  /** The first connection succeeded: from then on calls go straight to the client (and fail fast while it is offline). */
  private connected = false;
  private opening: Promise<void> | undefined;
  private lastError: unknown;
  /** Why the adapter refuses to be used (an allkeys-* maxmemory-policy), or undefined. */
  private evictionRefusal: string | undefined;
  private policyCheckedAt = 0;
  /** Cluster only: the incarnation key of each slot (the dataset guard runs inside every script there). */
  private readonly incarnations: IncarnationKeys | undefined;
  /** Cluster only: the quarantine, as the last argument of every transition script. */
  private readonly quarantineArg: string;
  /** Cluster only: slots this adapter claimed (each a per-slot flush and quarantine). */
  private slotQuarantines = 0;
  /** Cluster only: performance.now() of the last quarantine warning (one per 10 s, not one per slot). */
  private quarantineWarnedAt = -Infinity;
  private policyCheck: Promise<void> | undefined;
  /** Deadlines.answered at the last expired call, and when calls began expiring with nothing answered in between. */
  private answeredAtExpiry = -1;
  private silentSince = 0;
  /** The hit path's GET per key (getArgs). */
  private readonly getCommands = new Map<string, readonly string[]>();

  constructor(options: RedisCacheOptions) {
    this.keyPrefix = options.keyPrefix ?? 'lockstep:';
    if (typeof this.keyPrefix !== 'string') throw new InvalidOptionError('keyPrefix must be a string');
    this.timeoutMs = toMs(options.commandTimeout ?? '500ms', 'commandTimeout');
    // Deadlines fire at most a tenth of the command timeout late (and never coarser than 50 ms).
    this.deadlines = new Deadlines(Math.max(5, Math.min(50, Math.floor(this.timeoutMs / 10))), isServerReply);
    this.connectTimeoutMs = toMs(options.connectTimeout ?? '5s', 'connectTimeout');
    const maxReconnectDelayMs = toMs(options.maxReconnectDelay ?? '2s', 'maxReconnectDelay');
    const maxQueued = options.maxQueuedCommands ?? 50_000;
    if (!Number.isSafeInteger(maxQueued) || maxQueued <= 0) {
      throw new InvalidOptionError(`maxQueuedCommands must be a positive integer (got ${JSON.stringify(maxQueued)})`);
    }
    this.cursorPrefix = `${this.keyPrefix}#journal-cursor:`;
    this.internalPrefix = `${this.keyPrefix}#`;
    this.onWarning = options.onWarning ?? ((message) => process.emitWarning(message, 'LockstepWarning'));
    const onError = (error: unknown): void => {
      this.lastError = error;
      options.onError?.(error);
    };
    const settings: ClientSettings = { connectTimeoutMs: this.connectTimeoutMs, maxReconnectDelayMs, maxQueued, onError };

    let transport: Transport;
    if (options.client !== undefined) {
      if (options.url !== undefined || options.cluster !== undefined) {
        throw new InvalidOptionError('pass either a client, or a url / cluster root nodes, not both');
      }
      this.owned = false;
      const client = options.client;
      transport = isCluster(client) ? clusterTransport(client, PASSED_OPTIONS) : clientTransport(client, PASSED_OPTIONS);
    } else {
      this.owned = true;
      const cluster = options.cluster !== undefined ? clusterNodes(options.cluster.rootNodes) : parseClusterUrl(options.url);
      if (options.cluster !== undefined && options.url !== undefined) {
        throw new InvalidOptionError('pass either url or cluster.rootNodes, not both');
      }
      transport =
        cluster === undefined
          ? clientTransport(ownedClient(options.url ?? DEFAULT_URL, settings), OWNED_OPTIONS)
          : clusterTransport(ownedCluster(cluster, settings), OWNED_OPTIONS);
    }
    // A single Redis: nothing is read or written on a connection before its dataset is proven ours
    // (redis-dataset.ts). A cluster: every script checks its slot's incarnation (redis-scripts.ts,
    // CLUSTER_SCRIPTS; docs/protocol.md, "A cache that rolls back").
    const quarantineMs = toMs(options.restartQuarantine ?? '5s', 'restartQuarantine');
    this.restartQuarantineMs = quarantineMs;
    this.quarantineArg = String(Math.ceil(quarantineMs));
    this.incarnations = transport.kind === 'redis-cluster' ? new IncarnationKeys(`${this.internalPrefix}inc`) : undefined;
    if (transport.kind === 'redis') {
      const client = transport.client as RedisClientLike;
      this.guard = new DatasetGuard(
        client,
        transport.options,
        `${this.internalPrefix}dataset`,
        `${escapeGlob(this.keyPrefix)}*`,
        (flush) => this.flushed(flush),
        quarantineMs,
        (quarantine) => this.quarantined(quarantine),
      );
      transport = guarded(transport, this.guard);
      if (!this.owned && (client as { options?: { disableOfflineQueue?: boolean } }).options?.disableOfflineQueue !== true) {
        this.onWarning(
          "the node-redis client passed to Lockstep's Redis cache has an offline queue: a command it queued when the connection " +
            'broke may reach a restarted Redis before the adapter checks its dataset; create it with disableOfflineQueue: true',
        );
      }
    }
    this.transport = transport;
    this.name = this.transport.kind;
    // A script's keys must share a slot in a cluster: there, every call is its own script run.
    this.batcher = transport.kind === 'redis' ? new WriteBatcher((script, keys, args) => this.evalScript(script, keys, args)) : undefined;
  }

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError('the Redis cache is closed'));
    return this.deadline('connect', undefined, this.whenOpen(), this.connectTimeoutMs).then(() => {
      if (this.evictionRefusal !== undefined) throw new CacheEvictionPolicyError(this.evictionRefusal);
    });
  }

  get(key: string, fillLeaseMs: number): Promise<CacheGetResult> {
    return this.getInto<CacheGetResult>(key, fillLeaseMs, undefined);
  }

  /** CacheAdapter.getThen: the engine's handling of the answer runs in the deadline's own callback. */
  getThen<R>(key: string, fillLeaseMs: number, handler: CacheAnswerHandler<R>): Promise<R> {
    return this.getInto(key, fillLeaseMs, handler);
  }

  /**
   * The GET of a key, kept per key (bounded; started over when full, as the engine's joined keys):
   * a repeated hit sends the same frozen array, so no new key string is joined and then flattened
   * again to be written. node-redis only reads the arguments it is given.
   */
  private getArgs(key: string): readonly string[] {
    let args = this.getCommands.get(key);
    if (args === undefined) {
      if (this.getCommands.size >= GET_COMMANDS_KEPT) this.getCommands.clear();
      const full = this.keyPrefix + key;
      args = Object.freeze(['GET', full]);
      this.getCommands.set(key, args);
    }
    return args;
  }

  /** get, or get and then the handler's step when one is given. */
  private getInto<R>(key: string, fillLeaseMs: number, handler: CacheAnswerHandler<R> | undefined): Promise<R> {
    if (this.incarnations !== undefined) return this.clusterGet(key, this.keyPrefix + key, fillLeaseMs, handler);
    // Before the first connection, closed, or refusing (eviction policy): the general path.
    if (!this.connected || this.closed || this.evictionRefusal !== undefined) {
      const full = this.keyPrefix + key;
      const call = this.run('get', key, () => this.send(full, ['GET', full]).then((raw) => this.afterGet(raw, full, fillLeaseMs)));
      return handler === undefined ? (call as Promise<R>) : call.then((answer) => handler.answer(answer), (error: unknown) => handler.failure(error));
    }
    // The hit path: one GET under a deadline, decoded in the call's own callback, and the caller's
    // next step run there too: one object and one promise per call (GetCall below). Only nothing
    // or a lease needs the script, within the same deadline.
    const args = this.getArgs(key);
    const call = this.deadlines.start(new GetCall(this, key, args[1]!, fillLeaseMs, handler), this.send(args[1]!, args as string[]), this.timeoutMs);
    this.recheckPolicy(this.deadlines.clock);
    return call;
  }

  /**
   * A cluster's read: one run of the hit script (the slot's incarnation checked, then a value stamped
   * with its current token, or getOrLease), never a plain GET: a raw record is stamped, and only the
   * script can tell a current stamp from one of a lost incarnation.
   */
  private clusterGet<R>(key: string, full: string, fillLeaseMs: number, handler: CacheAnswerHandler<R> | undefined): Promise<R> {
    let args: string[];
    try {
      args = [durationArg(fillLeaseMs, 'fillLeaseMs'), this.nextToken()];
    } catch (error) {
      const failed = Promise.reject(this.failure('get', key, error));
      return handler === undefined ? (failed as Promise<R>) : failed.then(undefined, (e: unknown) => handler.failure(e));
    }
    const send = (): Promise<unknown> => this.script('hit', full, args);
    if (!this.connected || this.closed || this.evictionRefusal !== undefined) {
      const call = this.run('get', key, () => send().then((reply) => this.afterHit(reply, args[1]!)));
      return handler === undefined ? (call as Promise<R>) : call.then((answer) => handler.answer(answer), (error: unknown) => handler.failure(error));
    }
    const call = this.deadlines.start(new GetCall(this, key, full, fillLeaseMs, handler, args[1]), send(), this.timeoutMs);
    this.recheckPolicy(this.deadlines.clock);
    return call;
  }

  /** The hit script's reply: a stamped value record (stripped here), or getOrLease's reply. */
  afterHit(reply: unknown, token: string): CacheGetResult {
    if (typeof reply === 'string') {
      const bar = reply.indexOf('|');
      const value = bar < 0 ? undefined : decodeValue(reply.slice(bar + 1));
      if (value !== undefined) return value;
      throw unexpected('hit', reply);
    }
    if (!Array.isArray(reply) || typeof reply[0] !== 'number') throw unexpected('hit', reply);
    if (reply[0] > 0) this.leasesExpired += reply[0];
    return this.leaseAnswer(reply, token);
  }

  /** A GET's reply: a value, or the get-or-lease script for nothing or a lease. */
  afterGet(raw: unknown, full: string, fillLeaseMs: number): CacheGetResult | Promise<CacheGetResult> {
    if (typeof raw === 'string') {
      const value = decodeValue(raw);
      if (value !== undefined) return value;
    }
    return this.lease(full, fillLeaseMs);
  }

  private async lease(full: string, fillLeaseMs: number): Promise<CacheGetResult> {
    const token = this.nextToken();
    const reply = await this.transition('getOrLease', full, [durationArg(fillLeaseMs, 'fillLeaseMs'), token]);
    return this.leaseAnswer(reply, token);
  }

  private leaseAnswer(reply: unknown[], token: LeaseToken): CacheGetResult {
    switch (reply[1]) {
      case 'm':
        return { kind: 'miss', token };
      case 'n':
        return MISS_WITHOUT_TOKEN;
      case 'b':
        return BYPASS;
      case 'v': {
        const value = decodeValue(String(reply[2]));
        if (value !== undefined) return value;
      }
    }
    throw unexpected('getOrLease', reply);
  }

  /** One command; a transport that throws instead of rejecting becomes a rejection. */
  private send(key: string, args: string[]): Promise<unknown> {
    try {
      return this.transport.send(key, args);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  fill(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number): Promise<boolean> {
    return this.run('fill', key, async () => {
      const reply = await this.transition('fill', this.keyPrefix + key, [token, encodeValue(entry, key), durationArg(ttlMs, 'ttlMs')]);
      return reply[1] === 1;
    });
  }

  beginWrite(key: string, token: LeaseToken, leaseMs: number): Promise<void> {
    let args: string[];
    try {
      args = [token, durationArg(leaseMs, 'leaseMs')];
    } catch (error) {
      return Promise.reject(this.failure('beginWrite', key, error));
    }
    return this.write('beginWrite', key, args, false) as Promise<void>;
  }

  completeWrite(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number, options?: CompleteWriteOptions): Promise<CompleteOutcome> {
    let args: string[];
    try {
      args = [token, String(checkVersion(entry.version, key)), encodeValue(entry, key), durationArg(ttlMs, 'ttlMs')];
    } catch (error) {
      return Promise.reject(this.failure('completeWrite', key, error));
    }
    return this.write('completeWrite', key, args, options?.acknowledged === true) as Promise<CompleteOutcome>;
  }

  /**
   * beginWrite / completeWrite: on a single Redis that is up, through the batcher (the calls of a
   * tick share one script run, redis-write-batch.ts); otherwise (a cluster, before the first
   * connection, closed, refusing) each call is its own script run, as run() makes any call.
   */
  private write(op: WriteOp, key: string, args: string[], acknowledged: boolean): Promise<unknown> {
    const full = this.keyPrefix + key;
    if (this.batcher === undefined || !this.connected || this.closed || this.evictionRefusal !== undefined) {
      return this.run(op, key, () => this.script(op, full, args).then((reply) => this.afterWrite(op, reply)));
    }
    const call = new WriteCall(this, op, key, full, args, acknowledged);
    const promise = this.deadlines.start(call, undefined, this.timeoutMs);
    this.recheckPolicy(this.deadlines.clock);
    this.batcher.submit(call);
    return promise;
  }

  /** A write script's reply (the same from its own script and from a batch): beginWrite → undefined, completeWrite → its outcome. */
  afterWrite(op: WriteOp, reply: unknown): unknown {
    if (op === 'beginWrite') {
      // The number of expired leases alone (redis-scripts.ts: no table on the write path).
      if (typeof reply !== 'number') throw unexpected('beginWrite', reply);
      if (reply > 0) this.leasesExpired += reply;
      return undefined;
    }
    if (reply === 'published') return reply; // the fast path: its outcome alone
    if (!Array.isArray(reply) || typeof reply[0] !== 'number') throw unexpected('completeWrite', reply);
    if (reply[0] > 0) this.leasesExpired += reply[0];
    const outcome = reply[1];
    if (outcome === 'published' || outcome === 'pending' || outcome === 'cleared' || outcome === 'fenced') return outcome;
    throw unexpected('completeWrite', reply);
  }

  abortWrite(key: string, token: LeaseToken): Promise<void> {
    return this.run('abortWrite', key, async () => {
      await this.transition('abortWrite', this.keyPrefix + key, [token]);
    });
  }

  invalidateOlder(key: string, version: Version): Promise<void> {
    return this.run('invalidateOlder', key, async () => {
      await this.transition('invalidateOlder', this.keyPrefix + key, [String(checkVersion(version, key))]);
    });
  }

  peek(key: string): Promise<CacheRecordView | undefined> {
    return this.run('peek', key, async () => toView(key, await this.transition('peek', this.keyPrefix + key, [])));
  }

  /**
   * SCAN with MATCH (the prefix's glob characters escaped) on every master, then a peek of each
   * key found (which drops expired leases, like any touch). Each page and each peek has its own
   * deadline. Keys are de-duplicated (SCAN may return a key twice), which holds the matched keys in
   * memory for the duration of the scan. Records under the prefix that are not Lockstep's are skipped.
   */
  async *scan(prefix: string): AsyncIterable<CacheRecordView> {
    const match = `${escapeGlob(this.keyPrefix + prefix)}*`;
    const nodes = await this.run('scan', undefined, () => this.transport.nodes());
    const seen = new Set<string>();
    for (const node of nodes) {
      let cursor = '0';
      do {
        const page = await this.run('scan', undefined, () => node.sendCommand(['SCAN', cursor, 'MATCH', match, 'COUNT', SCAN_COUNT], this.transport.options));
        if (!Array.isArray(page) || !Array.isArray(page[1])) throw unexpected('SCAN', page);
        cursor = String(page[0]);
        const fresh = (page[1] as unknown[]).map(String).filter((full) => !seen.has(full) && !full.startsWith(this.internalPrefix));
        for (const full of fresh) seen.add(full);
        const views = await Promise.all(fresh.map((full) => this.peekForScan(full)));
        for (const view of views) if (view !== undefined) yield view;
      } while (cursor !== '0');
    }
  }

  ping(): Promise<void> {
    return this.run('ping', undefined, async () => {
      const nodes = await this.transport.nodes();
      await Promise.all(nodes.map((node) => node.sendCommand(['PING'], this.transport.options)));
    });
  }

  stats(): CacheStats {
    return { leasesExpired: this.leasesExpired, datasetFlushes: this.guard?.flushes ?? 0, datasetQuarantines: this.guard?.quarantines ?? this.slotQuarantines };
  }

  loadJournalCursor(journalId: string): Promise<JournalCursor | undefined> {
    const cursorKey = this.cursorPrefix + journalId;
    return this.run('loadJournalCursor', undefined, async () => {
      const raw = await this.transport.send(cursorKey, ['GET', cursorKey]);
      if (raw === null || raw === undefined) return undefined;
      // "<id>" (saved before stamps existed) or "<id> <stamp> <incarnation>", '-' for a part unknown.
      const parts = String(raw).split(' ');
      const id = Number(parts[0]);
      const [stamp, incarnation] = parts.slice(1).map((part) => (part === '-' ? undefined : part));
      const wellFormed = Number.isSafeInteger(id) && id >= 0 && (parts.length === 1 || (parts.length === 3 && parts.slice(1).every((part) => part === '-' || HEX.test(part))));
      if (!wellFormed) throw unexpected('loadJournalCursor', raw);
      return { id, ...(stamp === undefined ? {} : { stamp }), ...(incarnation === undefined ? {} : { incarnation }) };
    });
  }

  saveJournalCursor(journalId: string, cursor: JournalCursor, replace = false): Promise<void> {
    const cursorKey = this.cursorPrefix + journalId;
    return this.run('saveJournalCursor', undefined, async () => {
      const { id, stamp, incarnation } = cursor;
      if (!Number.isSafeInteger(id) || id < 0) throw new LockstepError(`a journal cursor must be a non-negative safe integer (got ${String(id)})`);
      for (const part of [stamp, incarnation]) {
        if (part !== undefined && !HEX.test(part)) throw new LockstepError(`a journal cursor's stamp and incarnation must be 1 to 64 lowercase hex digits (got ${JSON.stringify(part)})`);
      }
      const value = stamp === undefined && incarnation === undefined ? String(id) : `${id} ${stamp ?? '-'} ${incarnation ?? '-'}`;
      await this.evalScript(SCRIPTS.saveCursor, [cursorKey], [String(id), replace ? '1' : '0', value]);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.batcher?.flush(); // held calls go out before the client closes
    this.closed = true;
    this.guard?.dispose();
    if (!this.owned) return;
    const { client } = this.transport;
    if (client.isReady) {
      try {
        await this.deadline('close', undefined, client.close());
        return;
      } catch {
        // a stalled server does not answer the close: drop the socket instead
      }
    }
    try {
      client.destroy();
    } catch {
      // never opened, or already closed
    }
  }

  // -------------------------------------------------------------------------------------------

  /** Runs one adapter call: waits for the first connection if there has been none, within the deadline. */
  private run<T>(op: string, key: string | undefined, body: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ClosedError(`the Redis cache is closed (${op})`, { key }));
    if (this.connected && this.evictionRefusal !== undefined) {
      this.recheckPolicy(performance.now()); // a fixed policy lets the adapter serve again
      return Promise.reject(new CacheEvictionPolicyError(this.evictionRefusal, { key }));
    }
    const work = this.connected ? body() : this.whenOpen().then(() => this.refuseIfEvicting(key)).then(body);
    const call = this.deadline(op, key, work);
    // On the deadlines' clock (at most a sweep interval old): no clock read per call.
    if (this.connected) this.recheckPolicy(this.deadlines.clock);
    return call;
  }

  /**
   * A connection that answers nothing is replaced. A socket lost without a trace (the server's host
   * died, a failover moved its address: no FIN or RST ever comes) gives node-redis no error to
   * reconnect on until the kernel gives up on it (about 15 minutes on Linux), and every call would
   * time out meanwhile. So once calls have been expiring (or refused by the client: its queue full of
   * unanswered commands) for SILENT_CONNECTION_TIMEOUTS command timeouts (at least 2 s) with nothing
   * answered by the server in between (a reply, a late one included, or an error reply), an adapter's own single-Redis client
   * is dropped and connects again (its dataset is checked again, as after any reconnection). A
   * command already sent may still run late, as any call past its deadline may (docs/protocol.md).
   */
  private noteSilence(): void {
    if (!this.owned || this.transport.kind !== 'redis' || this.closed || !this.connected) return;
    const answered = this.deadlines.answered;
    const now = performance.now();
    if (answered !== this.answeredAtExpiry) {
      this.answeredAtExpiry = answered;
      this.silentSince = now;
      return;
    }
    if (now - this.silentSince < Math.max(2_000, SILENT_CONNECTION_TIMEOUTS * this.timeoutMs)) return;
    const client = this.transport.client as RedisClientLike;
    if (!client.isReady) return; // already reconnecting
    this.answeredAtExpiry = -1;
    this.onWarning(`Lockstep's Redis cache got no answer on its connection for ${Math.round(now - this.silentSince)} ms: it drops the connection and connects again`);
    this.connected = false;
    this.opening = undefined;
    try {
      client.destroy();
    } catch {
      // already closed
    }
    void this.whenOpen().catch(() => undefined); // calls meanwhile wait for it, within their deadline
  }

  /** The policy can change at run time (CONFIG SET): checked again in the background every 5 s. */
  private recheckPolicy(now: number): void {
    if (now - this.policyCheckedAt > POLICY_RECHECK_MS) this.policyCheck ??= this.checkMaxmemoryPolicy();
  }

  private deadline<T>(op: string, key: string | undefined, work: Promise<T>, ms = this.timeoutMs): Promise<T> {
    return this.deadlines.race(
      work,
      ms,
      () => this.timeoutError(op, key, ms),
      (error) => this.failure(op, key, error),
    );
  }

  private whenOpen(): Promise<void> {
    if (this.connected) return Promise.resolve();
    if (this.opening === undefined) {
      const opening = this.open();
      opening.catch(() => undefined); // a caller that gave up (deadline) must not leave it unhandled
      this.opening = opening;
    }
    return this.opening;
  }

  private async open(): Promise<void> {
    const { client } = this.transport;
    try {
      // A standalone client's connect() resolves once it is ready, retrying with backoff meanwhile.
      if (!client.isOpen) await client.connect();
      if (this.incarnations !== undefined) await this.checkClusterInfo();
    } catch (error) {
      this.opening = undefined; // the next call tries again
      throw error;
    }
    this.connected = true;
    this.policyCheck ??= this.checkMaxmemoryPolicy();
    await this.policyCheck;
    // A quarantined cache is connected: its calls fail (cache errors) until the quarantine ends.
    await this.guard?.whenVerified().catch((error: unknown) => {
      if (!(error instanceof DatasetQuarantinedError)) throw error;
    });
  }

  /**
   * A cluster's guard reads INFO inside every script (redis-scripts.ts, GUARD): without it (an ACL
   * user without INFO, `rename-command INFO`) every script would fail with Redis's own script error.
   * Asked of every master before the adapter counts as connected, so connect() and every call say
   * what to change instead (and the next call asks again: a fixed ACL is picked up).
   */
  private async checkClusterInfo(): Promise<void> {
    const nodes = await this.transport.nodes();
    await Promise.all(
      nodes.map(async (node) => {
        let reply: unknown;
        try {
          reply = await this.deadline('INFO', undefined, node.sendCommand(['INFO', 'server', 'replication'], this.transport.options));
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          if (!/NOPERM|ERR unknown command/i.test(message)) throw error;
          reply = message;
        }
        if (typeof reply !== 'string' || !reply.includes('run_id:') || !reply.includes('master_replid:') || !reply.includes('master_replid2:')) {
          throw new CacheError(
            "Lockstep's Redis Cluster cache needs the INFO command on every master (its dataset guard reads run_id and master_replid " +
              `inside every script), and INFO server replication was refused or incomplete (${String(reply).slice(0, 200)}): allow INFO for ` +
              "the adapter's user (ACL: +info) and do not rename or disable INFO (rename-command)",
            { cause: reply },
          );
        }
      }),
    );
  }

  /** The guard removed a dataset this adapter cannot prove it wrote: say so, once per flush. */
  private flushed(flush: DatasetFlush): void {
    const previous = flush.previous === undefined ? 'no marker said which process the records were written under' : `the records were written under run_id ${flush.previous}`;
    this.onWarning(
      `Lockstep's Redis cache found a dataset under the prefix ${JSON.stringify(this.keyPrefix)} that it cannot prove it wrote ` +
        `under the running Redis process (run_id ${flush.runId}; ${previous}): a restart from a snapshot or a ` +
        `promoted replica may hold values older than acknowledged writes, so ${flush.keysRemoved} keys were removed and the cache starts cold`,
    );
  }

  /** The cache answers no call until the quarantine ends: say so, once per quarantine. */
  private quarantined(quarantine: DatasetQuarantine): void {
    this.onWarning(
      `Lockstep's Redis cache under the prefix ${JSON.stringify(this.keyPrefix)} lost its dataset or cannot prove it is its own ` +
        `(run_id ${quarantine.runId}): it answers no call (E_CACHE_QUARANTINED) for ${quarantine.remainingMs} ms more, until Redis ` +
        `server time ${new Date(quarantine.untilServerMs).toISOString()}, so that no write whose lease was lost can still commit when fills resume; ` +
        'reads use the store meanwhile',
    );
  }

  private refuseIfEvicting(key: string | undefined): void {
    if (this.evictionRefusal !== undefined) throw new CacheEvictionPolicyError(this.evictionRefusal, { key });
  }

  /**
   * Refuses service while a master evicts keys without a TTL (`allkeys-*`): leases could then be
   * evicted for space, and a stale fill let in. Never rejects: CONFIG is often disabled on managed
   * Redis (nothing to check then), and a failed check keeps the last verdict.
   */
  private async checkMaxmemoryPolicy(): Promise<void> {
    try {
      const nodes = await this.transport.nodes();
      const replies = await Promise.all(
        nodes.map((node) => this.deadline('CONFIG GET', undefined, node.sendCommand(['CONFIG', 'GET', 'maxmemory-policy'], this.transport.options))),
      );
      const evicting = replies.map((reply) => configValue(reply, 'maxmemory-policy')).find((policy) => policy?.startsWith('allkeys-'));
      const refusal =
        evicting === undefined
          ? undefined
          : `Lockstep's Redis cache needs maxmemory-policy noeviction or volatile-* (got ${evicting}): ` +
            'an allkeys-* policy may evict write leases and let a stale value be served, so the cache is not used until the policy is changed';
      if (refusal !== undefined && this.evictionRefusal === undefined) this.onWarning(refusal);
      this.evictionRefusal = refusal;
    } catch {
      // CONFIG disabled, or Redis unreachable: keep the last verdict
    } finally {
      this.policyCheckedAt = performance.now();
      this.policyCheck = undefined;
    }
  }

  /** A transition script: adds the leases it found expired to the stats and returns its reply. */
  private async transition(name: ScriptName, key: string, args: string[]): Promise<unknown[]> {
    const reply = await this.script(name, key, args);
    if (!Array.isArray(reply) || typeof reply[0] !== 'number') throw unexpected(name, reply);
    if (reply[0] > 0) this.leasesExpired += reply[0];
    return reply;
  }

  /**
   * EVALSHA, and on NOSCRIPT (a restarted or flushed server, a new cluster node) EVAL, which also loads it.
   * In a cluster, the script's variant with the slot's guard: KEYS [record, incarnation key], the quarantine last.
   */
  private script(name: ScriptName | 'hit', key: string, args: string[]): Promise<unknown> {
    if (this.incarnations !== undefined) {
      if (name === 'hit' || name in CLUSTER_SCRIPTS) {
        return this.evalScript(CLUSTER_SCRIPTS[name as keyof typeof CLUSTER_SCRIPTS], [key, this.incarnations.forKey(key)], [...args, this.quarantineArg]);
      }
      return Promise.reject(new LockstepError(`the ${name} script has no Redis Cluster variant`));
    }
    if (name === 'hit') return Promise.reject(new LockstepError('the hit script is for a Redis Cluster'));
    return this.evalScript(SCRIPTS[name], [key], args);
  }

  /** EVALSHA over keys (routed by the first: all share its slot in a cluster), EVAL on NOSCRIPT. */
  private evalScript(script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const route = keys[0]!;
    const tail = [String(keys.length), ...keys, ...args];
    return this.send(route, ['EVALSHA', script.sha, ...tail]).catch((error: unknown) => {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return this.send(route, ['EVAL', script.source, ...tail]);
    });
  }

  private async peekForScan(full: string): Promise<CacheRecordView | undefined> {
    const key = full.slice(this.keyPrefix.length);
    try {
      return await this.run('scan', key, async () => toView(key, await this.transition('peek', full, [])));
    } catch (error) {
      if (error instanceof LockstepError && error.cause instanceof Error && /does not hold a Lockstep cache record|^WRONGTYPE/.test(error.cause.message)) {
        return undefined;
      }
      throw error;
    }
  }

  failure(op: string, key: string | undefined, error: unknown): unknown {
    if (error instanceof LockstepError) return error;
    // The client's own refusal (a queue full of unanswered commands) is a sign of silence too.
    if (!isServerReply(error)) this.noteSilence();
    const message = error instanceof Error ? error.message : String(error);
    if (message.startsWith(QUARANTINED)) return this.slotQuarantined(op, key, message, error);
    return new CacheError(`Redis cache ${op} failed: ${message}`, { key, cause: error });
  }

  /** A cluster script refused the call: its slot is quarantined ('ERR lockstep: quarantined <ms left> <end> <claimed>'). */
  private slotQuarantined(op: string, key: string | undefined, message: string, cause: unknown): LockstepError {
    const [left, until, claimed] = message.slice(QUARANTINED.length).trim().split(' ').map(Number) as [number, number, number];
    if (claimed === 1) {
      this.slotQuarantines++;
      const now = performance.now();
      if (now - this.quarantineWarnedAt > 10_000) {
        this.quarantineWarnedAt = now;
        this.onWarning(
          `Lockstep's Redis Cluster cache under the prefix ${JSON.stringify(this.keyPrefix)} found a hash slot whose records it cannot prove were ` +
            'written under the serving node (a restart, from a snapshot or not, a failover, a migrated slot): they are treated as absent, and the ' +
            `slot answers no call (E_CACHE_QUARANTINED) for ${left} ms, until Redis server time ${new Date(until).toISOString()}, so that no write ` +
            'whose lease was lost can still commit when fills resume; reads use the store meanwhile (one warning per 10 s, other slots may follow)',
        );
      }
    }
    return new DatasetQuarantinedError(`Redis cache ${op}: its cluster slot is quarantined after a dataset loss for ${left} ms more (until Redis server time ${new Date(until).toISOString()})`, { key, cause });
  }

  timeoutError(op: string, key: string | undefined, ms: number): LockstepError {
    this.noteSilence();
    const offline = !this.transport.client.isReady && this.lastError !== undefined;
    const why = offline ? ` (not connected: ${this.lastError instanceof Error ? this.lastError.message : String(this.lastError)})` : '';
    return new CacheTimeoutError(`Redis cache ${op} timed out after ${ms} ms${why}`, { key, cause: offline ? this.lastError : undefined });
  }
}

/** Command timeouts of silence (calls expiring, none answered) after which the adapter's own connection is replaced. */
const SILENT_CONNECTION_TIMEOUTS = 4;

/** How a cluster script says its slot is quarantined (redis-scripts.ts, GUARD). */
const QUARANTINED = 'ERR lockstep: quarantined';

/** A GET of the hit path under its deadline, with the caller's handling of the answer (getThen). */
class GetCall<R> extends DeadlineCall<unknown, CacheGetResult, R> {
  constructor(
    private readonly cache: RedisCache,
    private readonly key: string,
    private readonly full: string,
    private readonly fillLeaseMs: number,
    handler: CacheAnswerHandler<R> | undefined,
    /** A cluster's hit script: the fill token it was sent with (undefined: a plain GET). */
    private readonly token?: string,
  ) {
    super(handler);
  }

  protected timeoutError(): unknown {
    return this.cache.timeoutError('get', this.key, this.cache.timeoutMs);
  }

  protected failure(error: unknown): unknown {
    return this.cache.failure('get', this.key, error);
  }

  protected next(raw: unknown): CacheGetResult | Promise<CacheGetResult> {
    return this.token === undefined ? this.cache.afterGet(raw, this.full, this.fillLeaseMs) : this.cache.afterHit(raw, this.token);
  }
}

// ---------------------------------------------------------------------------------------------
// Replies
