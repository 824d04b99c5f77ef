// The PostgreSQL store: per-key versions, tombstones and a change journal in one schema, on `pg`.
// Every Lockstep write or delete is one call of a PL/pgSQL function (one statement, one round trip,
// autocommit, a named prepared statement), except the common write of an existing key, which is the
// function's first statement sent on its own; writes made with plain SQL from anywhere else are
// versioned and journaled by triggers, and every journal append notifies LISTENers. The rules, and
// how journal ids follow commit order, are in postgres-schema.ts.
import type { Pool as PgPool, PoolConfig as PgPoolConfig } from 'pg';
import { loadDriver } from '../drivers.js';
import { toMs, type Duration } from '../duration.js';
import { ClosedError, InvalidOptionError, StoreOutcomeUnknownError, StoreWriteError } from '../errors.js';
import type {
  JournalEntry,
  JournalReason,
  StoreAdapter,
  StoreDeleteResult,
  StoreScanRow,
  StoreStats,
  StoredValue,
  StoreWriteOptions,
  StoreWriteResult,
  Version,
} from '../types.js';
import {
  advisoryKey,
  isIdentifier,
  JOURNAL_CHANNEL,
  POSTGRES_SCHEMA_VERSION,
  postgresSchemaSql,
  PRECONDITION_SQLSTATE,
  quoteIdentifier,
} from './postgres-schema.js';
import { preconditionFailed, preconditionParams } from './precondition.js';
import type { PostgresClient, PostgresPool, PostgresQueryConfig, PostgresQueryResult } from './postgres-client.js';
import { isDatabaseError, outcomeUnknown } from './postgres-errors.js';
import { INCARNATION_SQL, incarnationRefused, incarnationText } from './postgres-incarnation.js';
import { listenToNewConnections, quietConnection } from './postgres-connection-errors.js';
import { createListener } from './postgres-listener.js';
import { inTransaction } from './postgres-transaction.js';
import { CLIENT_MARGIN_MS, connectWithin, isClientTimeout, readTimedOut } from './client-timeouts.js';
import { createSessionSettler, markIf, newSessionMark, settling, type SessionMark } from './postgres-settle.js';
import { warningReceiver } from './settle-loop.js';

// pg is an optional peer: loaded here so a missing install fails this import with the fix.
const { default: pg } = await loadDriver('pg', 'lockstep/postgres', () => import('pg'));

export type { PostgresClient, PostgresNotification, PostgresPool, PostgresQueryConfig, PostgresQueryResult } from './postgres-client.js';
export { outcomeUnknown } from './postgres-errors.js';

// ---------------------------------------------------------------------------------------------
// Options

interface PostgresStoreCommon {
  /**
   * Receives warnings: polls of the settlement of writes given up on that failed (the database could
   * not be asked), at most one per minute. @default process.emitWarning
   */
  onWarning?: (message: string) => void;
  /**
   * The schema that holds Lockstep's tables, functions and triggers (created if missing). An
   * identifier of [A-Za-z_][A-Za-z0-9_]* up to 63 characters; used quoted, so case is kept.
   * @default 'public'
   */
  schema?: string;
  /**
   * `statement_timeout` of every connection the store uses. It must stay shorter than the engine's
   * `leaseTtl` (default 5 s), so a write that is still running can never commit after its lease
   * expired and readers stopped bypassing the cache. A write whose `deadlineMs` is shorter runs
   * with that timeout instead (in a transaction: three more round trips).
   * @default '2s'
   */
  statementTimeout?: Duration;
  /**
   * LISTEN for journal appends (`onJournal`), so the engine's drainer wakes at once after a plain-SQL
   * write instead of at its next poll. While someone listens, one connection is held for it: an extra
   * one beside a pool the store created, or one of the pool you passed.
   * @default true
   */
  notify?: boolean;
}

/**
 * Connect with a connection string (the store owns the pool and ends it on close()), or use an
 * existing pool (close() leaves it open). The store sets `statement_timeout` and
 * `default_transaction_isolation = 'read committed'` on every connection it checks out of the pool:
 * give it a pool of its own if other code needs other session settings.
 */
export type PostgresStoreOptions = PostgresStoreCommon &
  (
    | {
        connectionString: string;
        /** Connections in the pool the store creates (the LISTEN connection is extra). @default 10 */
        poolSize?: number;
        pool?: never;
      }
    | { pool: PostgresPool; connectionString?: never; poolSize?: never }
  );

export interface PostgresStore extends StoreAdapter {
  /** Its own counters: failed polls of the settlement of writes given up on. */
  stats(): StoreStats;
  /** Always a promise: the commit is a round trip. */
  write(namespace: string, key: string, payload: string, options: StoreWriteOptions): Promise<StoreWriteResult>;
  incarnation(): Promise<string | undefined>;
  readonly name: 'postgres';
  readonly schema: string;
  /** The resolved statement timeout, in ms: the engine can check it against its lease TTL. */
  readonly statementTimeoutMs: number;
  /** The pool the store queries. */
  readonly pool: PostgresPool;
  /** Creates the schema if it is missing (every operation does this first); resolves when ready. */
  ready(): Promise<void>;
  onJournal?(listener: () => void): () => void;
  /** Always a promise: a query over the network. */
  read(namespace: string, key: string): Promise<StoredValue | undefined>;
}

interface Resolved {
  readonly schema: string;
  readonly statementTimeoutMs: number;
  readonly notify: boolean;
  readonly pool: PostgresPool;
  /** Set when the store created the pool: it ends it on close() and uses a pool of one to LISTEN. */
  readonly connectionString: string | undefined;
}

function resolve(options: PostgresStoreOptions): Resolved {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('postgres store options must be an object');
  const { connectionString, pool, poolSize, schema = 'public', notify = true } = options as unknown as Record<string, unknown>;
  if (!isIdentifier(schema)) {
    throw new InvalidOptionError(
      `schema must be an identifier of [A-Za-z_][A-Za-z0-9_]*, at most 63 characters (got ${JSON.stringify(schema)})`,
    );
  }
  if (typeof notify !== 'boolean') throw new InvalidOptionError(`notify must be a boolean (got ${JSON.stringify(notify)})`);
  const statementTimeoutMs = toMs(options.statementTimeout ?? '2s', 'statementTimeout');
  if (statementTimeoutMs > 2_147_483_647) throw new InvalidOptionError('statementTimeout must be below 2^31 ms');
  if ((connectionString === undefined) === (pool === undefined)) {
    throw new InvalidOptionError('postgres store needs exactly one of `connectionString` or `pool` (an existing pg.Pool)');
  }
  if (pool !== undefined) {
    const candidate = pool as Partial<PostgresPool> | null;
    if (typeof candidate !== 'object' || candidate === null || typeof candidate.connect !== 'function' || typeof candidate.end !== 'function') {
      throw new InvalidOptionError('pool must be a pg.Pool (an object with connect() and end())');
    }
    if (poolSize !== undefined) throw new InvalidOptionError('poolSize applies only with connectionString (size the pool you pass yourself)');
    listenToNewConnections(candidate as PostgresPool);
    return { schema, statementTimeoutMs, notify, pool: candidate as PostgresPool, connectionString: undefined };
  }
  if (typeof connectionString !== 'string' || connectionString.length === 0) {
    throw new InvalidOptionError(`connectionString must be a non-empty string (got ${JSON.stringify(connectionString)})`);
  }
  const size = poolSize ?? 10;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > 1000) {
    throw new InvalidOptionError(`poolSize must be an integer from 1 to 1000 (got ${JSON.stringify(poolSize)})`);
  }
  return { schema, statementTimeoutMs, notify, pool: quietPool(new pg.Pool({ connectionString, max: size, connectionTimeoutMillis: statementTimeoutMs + CLIENT_MARGIN_MS })),
    connectionString,
  };
}

/**
 * The one-connection pool the journal's LISTEN connection comes from, when the store was given your
 * pool: a pg.Pool's own settings (its `options`), outside its limit. The connection is held for as long
 * as the store is open; taken from your pool, each store (each table of an ORM integration) kept one of
 * its connections, and as many tables as connections starved your queries and Lockstep's. A pool-like
 * object without pg.Pool's options is used as it is.
 */
function listenPoolBeside(pool: PostgresPool): { pool: PostgresPool; own: boolean } {
  const { options, Client } = pool as { options?: unknown; Client?: unknown };
  if (typeof Client !== 'function' || typeof options !== 'object' || options === null) return { pool, own: false };
  const given = options as PgPoolConfig;
  return {
    pool: quietPool(
      new pg.Pool({
        ...given,
        // pg-pool keeps the password (a string or a function) out of the options' own enumerable keys.
        password: given.password,
        // The pool's client class (a subclass, pg-native's), not only one named in its options.
        Client: Client as PgPoolConfig['Client'],
        max: 1,
        min: 0,
        // A connection that hangs does not hold close() (which waits for it) or the listener for ever.
        connectionTimeoutMillis: given.connectionTimeoutMillis || LISTEN_CONNECT_MS,
      }),
    ),
    own: true,
  };
}

/** How long a LISTEN pool (the store's own, or one made beside a pool that sets no connection timeout) waits for a connection. */
const LISTEN_CONNECT_MS = 10_000;
/** How long close() waits for the LISTEN pool to end (a connection being opened). */
const LISTEN_END_WAIT_MS = 2_000;

/** Ends a pool, waiting at most `ms` (pg-pool's end() waits for connections still being opened). */
async function endWithin(pool: PostgresPool, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = Promise.resolve(pool.end()).catch(() => undefined);
  await Promise.race([ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** An idle connection that dies emits 'error' on its pool, a new one on itself: without listeners the process would exit. */
function quietPool(pool: PgPool): PgPool {
  pool.on('error', () => undefined);
  listenToNewConnections(pool);
  return pool;
}

const int = (value: unknown): number => (typeof value === 'number' ? value : Number(value));
/** SQLSTATE lock_not_available: lock_timeout expired. */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * A StoreAdapter on PostgreSQL (13 or later). The schema is created on first use, under an advisory
 * lock so that processes starting at once create it once. Versions are per key and rise across delete
 * and re-create; other code may write `lockstep_kv` with plain SQL (leaving the `writer` column alone)
 * and the triggers version, journal and notify it.
 *
 * Round trips: read, write, delete, appendJournal, readJournal, journalHead, pruneJournal, scan: one
 * each (plus one per new connection, to set its session); a write hinted `likelyExists` whose row
 * is gone, two (the UPDATE finds none, then the write function). A write or delete whose
 * `deadlineMs` is below the statement timeout runs in a transaction with that timeout: four.
 *
 * `pruneJournal(before)` also prunes the tombstones of keys deleted before that time (see the SQLite
 * store: the journal retention must exceed the engine's tombstone TTL and lease TTL).
 */
export function createPostgresStore(options: PostgresStoreOptions): PostgresStore {
  const { schema, statementTimeoutMs, notify, pool, connectionString } = resolve(options);
  const owned = connectionString !== undefined;
  const s = quoteIdentifier(schema);
  const sql = postgresSchemaSql(schema);
  // Statement names are per connection; a pool shared by stores of two schemas needs distinct ones.
  const tag = `lockstep_${BigInt.asUintN(64, BigInt(advisoryKey(schema))).toString(36)}`;
  const statement = (name: string, text: string) => (values: unknown[]): PostgresQueryConfig => ({ name: `${tag}_${name}`, text, values });

  const writeSql = statement('write', `SELECT ${s}.lockstep_write($1, $2, $3, $4, $5, $6) AS version`);
  const updateSql = statement('update', sql.updateExisting);
  const deleteSql = statement('delete', `SELECT out_version AS version, out_existed AS existed FROM ${s}.lockstep_delete($1, $2, $3, $4, $5)`);
  const readSql = statement('read', `SELECT version, value AS payload FROM ${s}.lockstep_kv WHERE namespace = $1 AND key = $2`);
  const appendSql = statement('append', `INSERT INTO ${s}.lockstep_journal (namespace, key, version, reason) VALUES ($1, $2, $3, $4)`);
  const journalSql = statement(
    'journal',
    `SELECT id, namespace, key, version, reason, floor(extract(epoch FROM created_at) * 1000)::float8 AS created_at
       FROM ${s}.lockstep_journal WHERE id > $1 ORDER BY id LIMIT $2`,
  );
  const headSql = statement('head', `SELECT ${s}.lockstep_journal_head() AS head`);
  const pruneSql = statement(
    'prune',
    // A prefix only, never past the drainer's cursor ($2): see StoreAdapter.pruneJournal.
    `WITH journal AS (DELETE FROM ${s}.lockstep_journal WHERE id > 0 AND id <= $2::bigint
            AND id < coalesce((SELECT id FROM ${s}.lockstep_journal WHERE id > 0 AND created_at >= to_timestamp($1::float8 / 1000) ORDER BY id LIMIT 1), 9223372036854775807)
            RETURNING 1),
          tombstones AS (DELETE FROM ${s}.lockstep_tombstones WHERE deleted_at < to_timestamp($1::float8 / 1000) RETURNING 1)
     SELECT count(*)::int AS pruned FROM journal`,
  );
  const scanFirstSql = statement(
    'scan_first',
    `SELECT key, version, value AS payload FROM ${s}.lockstep_kv WHERE namespace = $1 ORDER BY key LIMIT $2`,
  );
  const scanAfterSql = statement(
    'scan_after',
    `SELECT key, version, value AS payload FROM ${s}.lockstep_kv WHERE namespace = $1 AND key > $2 ORDER BY key LIMIT $3`,
  );
  const sessionSql = statement(
    'session_marked',
    `SELECT set_config('statement_timeout', $1, false), set_config('default_transaction_isolation', 'read committed', false),
            pg_catalog.pg_try_advisory_lock($2::int8) AS marked`,
  );
  // The transaction's own mark (postgres-settle.ts): a write in a transaction is settled by it, not by the session's.
  const localTimeoutSql = statement('local_timeout_marked', `SELECT set_config('statement_timeout', $1, true), pg_catalog.pg_try_advisory_xact_lock($2::int8) AS marked`);

  // Connections whose session this store has set up (statement timeout, isolation, error listener),
  // with the advisory lock each session holds for its life, to settle a write given up on
  // (postgres-settle.ts).
  const prepared = new WeakMap<PostgresClient, SessionMark | undefined>();
  let closed = false;

  function live(): void {
    if (closed) throw new ClosedError('the postgres store was closed');
  }

  // Client-side deadlines (client-timeouts.ts): a stalled server or an exhausted pool ends in an
  // error after the statement timeout plus a margin, and the connection is destroyed.
  const clientMs = statementTimeoutMs + CLIENT_MARGIN_MS;
  /** The client with pg's query_timeout on every query it runs. */
  const timed = (client: PostgresClient, ms: number): PostgresClient =>
    ({ query: (config: PostgresQueryConfig) => client.query({ ...config, query_timeout: ms }), release: (d?: boolean | Error) => client.release(d) }) as PostgresClient;

  async function acquire(): Promise<PostgresClient> {
    const client = await connectWithin('PostgreSQL', () => pool.connect(), clientMs, (late) => late.release(true));
    if (prepared.has(client)) return client;
    try {
      // A checked-out pg client whose connection drops emits 'error': without a listener, the process exits (one listener per connection, whatever the stores on its pool).
      quietConnection(client);
      const mark = newSessionMark();
      const { rows } = await client.query({ ...sessionSql([String(statementTimeoutMs), mark]), query_timeout: clientMs });
      prepared.set(client, markIf(mark, rows[0]?.marked));
      return client;
    } catch (error) {
      client.release(true);
      throw error;
    }
  }

  /**
   * Runs one autocommit statement, or reads; releases (or destroys) the connection. A write whose
   * outcome is unknown is settled (postgres-settle.ts) when `settles`: the engine's writes and
   * deletes, not a repair row (nobody waits for one, and a late one only invalidates).
   */
  async function run(config: PostgresQueryConfig, { writes = false, settles = false } = {}): Promise<PostgresQueryResult> {
    await ensureSchema();
    let client: PostgresClient;
    try {
      client = await acquire();
    } catch (error) {
      throw isClientTimeout(error) ? readTimedOut('PostgreSQL', error) : error; // nothing was sent: a clean failure
    }
    try {
      const result = await client.query({ ...config, query_timeout: clientMs });
      client.release();
      return result;
    } catch (error) {
      const lost = outcomeUnknown(error);
      client.release(lost ? true : undefined);
      if (!writes && isClientTimeout(error)) throw readTimedOut('PostgreSQL', error);
      if (writes && lost) {
        const unknown = new StoreOutcomeUnknownError('the connection was lost before PostgreSQL confirmed the write: it may or may not have committed', {
          cause: error,
        });
        throw settles ? settling(settler, unknown, prepared.get(client)) : unknown;
      }
      throw error;
    }
  }

  // A write given up on may still land: its server session is ended from another connection, and
  // the engine told once it is gone (postgres-settle.ts).
  const settler = createSessionSettler((config) => run(config), `${tag}_settle`, undefined, warningReceiver(options.onWarning));

  /** One write statement, in its own transaction when its deadline is below the statement timeout. */
  async function runWrite(config: PostgresQueryConfig, deadlineMs: number): Promise<PostgresQueryResult> {
    if (!(deadlineMs < statementTimeoutMs)) return run(config, { writes: true, settles: true });
    await ensureSchema();
    const client = await acquire();
    const within = timed(client, Math.floor(deadlineMs) + CLIENT_MARGIN_MS);
    let marked: SessionMark | undefined;
    const markedWrite = async () => {
      const mark = newSessionMark();
      marked = markIf(mark, (await within.query(localTimeoutSql([String(Math.max(1, Math.floor(deadlineMs))), mark]))).rows[0]?.marked);
      return within.query(config);
    };
    try {
      return await inTransaction(within, [{ text: 'BEGIN' }], markedWrite);
    } catch (error) {
      throw error instanceof StoreOutcomeUnknownError ? settling(settler, error, marked) : error;
    }
  }

  /** Runs a write; the functions' precondition error (rolled back, nothing committed) becomes PreconditionFailedError. */
  async function conditional<R>(namespace: string, key: string, options: StoreWriteOptions, write: () => Promise<R>): Promise<R> {
    try {
      return await write();
    } catch (error) {
      const precondition = options.precondition;
      if (precondition === undefined || !isDatabaseError(error) || error.code !== PRECONDITION_SQLSTATE) throw error;
      const live = Number((error as { detail?: unknown }).detail);
      throw preconditionFailed(namespace, key, precondition, Number.isSafeInteger(live) ? live : 0, error);
    }
  }

  /** How long a schema upgrade waits for lockstep_kv's lock: half a statement's timeout, at most 1 s. */
  const upgradeLockTimeoutMs = Math.max(1, Math.min(1_000, Math.floor(statementTimeoutMs / 2)));
  let schemaReady: Promise<void> | undefined;
  function ensureSchema(): Promise<void> {
    schemaReady ??= createSchema().catch((error: unknown) => {
      schemaReady = undefined; // the next operation tries again
      throw error;
    });
    return schemaReady;
  }

  async function createSchema(): Promise<void> {
    // DDL may wait for other processes' DDL (60 s, below); the client waits a little longer.
    const client = timed(await acquire(), 60_000 + CLIENT_MARGIN_MS);
    const marker = async () =>
      (await client.query({ text: `SELECT obj_description(to_regclass($1), 'pg_class') AS marker`, values: [`${s}.lockstep_kv`] })).rows[0]
        ?.marker;
    let inTransaction = false;
    try {
      if ((await marker()) === POSTGRES_SCHEMA_VERSION) return client.release();
      await client.query({ text: 'BEGIN' });
      inTransaction = true;
      // DDL may wait for locks longer than a write should; processes starting at once queue here.
      await client.query({ text: `SELECT set_config('statement_timeout', '60000', true)` });
      await client.query({ text: 'SELECT pg_advisory_xact_lock($1::bigint)', values: [sql.ddlLockKey] });
      const server = await client.query({ text: `SELECT current_setting('server_version_num')::int AS v, current_setting('server_version') AS name` });
      if (int(server.rows[0]!.v) < 130000) {
        throw new InvalidOptionError(`the postgres store needs PostgreSQL 13 or later (the server is ${String(server.rows[0]!.name)})`);
      }
      const found = await client.query({ text: 'SELECT 1 FROM pg_namespace WHERE nspname = $1', values: [schema] });
      if (found.rows.length === 0) await client.query({ text: `CREATE SCHEMA ${s}` });
      const current = await marker();
      const upgrade = typeof current === 'string' ? sql.upgrades.get(current) : undefined;
      if (upgrade !== undefined) {
        // An upgrade waits for lockstep_kv's lock, and every statement on the table waits behind it:
        // it gives up well within a statement's timeout. The schema it found then stays (Lockstep's
        // statements are the same for it), and the next store to open tries again.
        await client.query({ text: `SELECT set_config('lock_timeout', $1, true)`, values: [String(upgradeLockTimeoutMs)] });
        try {
          await client.query({ text: upgrade });
        } catch (error) {
          if (!isDatabaseError(error) || error.code !== LOCK_NOT_AVAILABLE) throw error;
          await client.query({ text: 'ROLLBACK' });
          inTransaction = false;
          client.release();
          return;
        }
      } else if (current !== POSTGRES_SCHEMA_VERSION) {
        await refuseForeignTable(client, current);
        await client.query({ text: sql.ddl });
      }
      await client.query({ text: 'COMMIT' });
      inTransaction = false;
      client.release();
    } catch (error) {
      if (inTransaction) await client.query({ text: 'ROLLBACK' }).catch(() => undefined);
      client.release(true);
      throw error;
    }
  }

  /** A lockstep_kv table that this DDL did not create must at least have the columns it needs. */
  async function refuseForeignTable(client: PostgresClient, marker: unknown): Promise<void> {
    const { rows } = await client.query({
      text: `SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`,
      values: [`${s}.lockstep_kv`],
    });
    if (rows.length === 0) return;
    const columns = new Set(rows.map((r) => r.attname as string));
    const missing = ['namespace', 'key', 'value', 'version', 'writer', 'updated_at'].filter((c) => !columns.has(c));
    if (missing.length > 0) {
      throw new InvalidOptionError(
        `schema ${JSON.stringify(schema)} has a lockstep_kv table that Lockstep did not create (comment ${JSON.stringify(marker)}) ` +
          `and that lacks ${missing.join(', ')}: use another schema, or drop the lockstep_* objects`,
      );
    }
  }

  const listeners = new Set<() => void>();
  let listenPool: PostgresPool | undefined;
  /** Whether listenPool is the store's to end (its own, or one made beside the pool it was given). */
  let listenPoolOwned = false;
  let listener: ReturnType<typeof createListener> | undefined;
  function deliver(): void {
    for (const l of [...listeners]) {
      try {
        l();
      } catch {
        // a listener's own failure is not the store's
      }
    }
  }

  const store: PostgresStore = {
    name: 'postgres',
    schema,
    statementTimeoutMs,
    pool,
    async ready() {
      live();
      await ensureSchema();
    },
    async read(namespace, key): Promise<StoredValue | undefined> {
      live();
      const row = (await run(readSql([namespace, key]))).rows[0];
      return row === undefined ? undefined : { version: int(row.version), payload: row.payload as string };
    },
    async write(namespace, key, payload, options: StoreWriteOptions): Promise<StoreWriteResult> {
      live();
      let deadlineMs = options.deadlineMs;
      // The common case, a key the engine wrote before (StoreWriteOptions.likelyExists) without a
      // journal row or a precondition: one plain UPDATE (the function's own first statement, see
      // postgres-schema.ts), no PL/pgSQL call; a key not known to exist goes to the function at once,
      // so creating one stays a single round trip. When it
      // updates nothing, nothing was written, and the function takes the key within what is left
      // of the deadline, so the two statements together never outlast the write's lease.
      if (options.likelyExists === true && !options.journal && options.precondition === undefined) {
        const started = performance.now();
        const { rows } = await runWrite(updateSql([namespace, key, payload]), deadlineMs);
        if (rows.length > 0) return { version: int(rows[0]!.version) };
        deadlineMs -= performance.now() - started;
        if (!(deadlineMs >= 1)) {
          throw new StoreWriteError(`PostgreSQL: no time left within the write's deadline to create ${JSON.stringify(key)}; nothing was written`);
        }
      }
      const { rows } = await conditional(namespace, key, options, () =>
        runWrite(writeSql([namespace, key, payload, options.journal, ...preconditionParams(options.precondition)]), deadlineMs),
      );
      return { version: int(rows[0]!.version) };
    },
    async delete(namespace, key, options: StoreWriteOptions): Promise<StoreDeleteResult> {
      live();
      const { rows } = await conditional(namespace, key, options, () =>
        runWrite(deleteSql([namespace, key, options.journal, ...preconditionParams(options.precondition)]), options.deadlineMs),
      );
      return { version: int(rows[0]!.version), existed: rows[0]!.existed === true };
    },
    async appendJournal(namespace: string, key: string, version: Version, reason: JournalReason) {
      live();
      await run(appendSql([namespace, key, version, reason]), { writes: true });
    },
    async readJournal(afterId, limit): Promise<JournalEntry[]> {
      live();
      const { rows } = await run(journalSql([afterId, limit]));
      return rows.map((r) => ({
        id: int(r.id),
        namespace: r.namespace as string,
        key: r.key as string,
        version: int(r.version),
        reason: r.reason as JournalReason,
        createdAt: int(r.created_at),
      }));
    },
    async journalHead() {
      live();
      return int((await run(headSql([]))).rows[0]!.head);
    },
    async pruneJournal(beforeEpochMs, throughId = Number.MAX_SAFE_INTEGER) {
      live();
      return int((await run(pruneSql([beforeEpochMs, throughId]))).rows[0]!.pruned);
    },
    async scan(namespace, afterKey, limit): Promise<StoreScanRow[]> {
      live();
      const config = afterKey === undefined ? scanFirstSql([namespace, limit]) : scanAfterSql([namespace, afterKey, limit]);
      return (await run(config)).rows.map((r) => ({ key: r.key as string, version: int(r.version), payload: r.payload as string }));
    },
    async ping() {
      live();
      await run({ text: 'SELECT 1' });
    },
    async incarnation() {
      live();
      // The cluster's system identifier (a restore into another cluster) and its timeline (every
      // promotion of a replica, every point-in-time recovery starts a new one). A server that
      // keeps either from this role cannot tell (not a constant: an instance whose role may ask
      // would then see another incarnation than this one's, and flush at every start).
      try {
        const { rows } = await run({ text: INCARNATION_SQL });
        return incarnationText(rows[0] as { system: unknown; timeline: unknown });
      } catch (error) {
        if (incarnationRefused(error)) return undefined;
        throw error;
      }
    },
    async journalId() {
      live();
      // Drawn once, stored in the schema: not derived from how this instance reached the server.
      const { rows } = await run({ text: `SELECT value FROM ${s}.lockstep_meta WHERE name = 'journal_id'` });
      return `postgres:${String(rows[0]!.value)}`;
    },
    stats() {
      return { settlePollErrors: settler.pollErrors };
    },
    async close() {
      if (closed) return;
      closed = true;
      settler.stop();
      listeners.clear();
      listener?.stop();
      listener = undefined;
      if (owned) await Promise.all([listenPool === undefined ? undefined : endWithin(listenPool, LISTEN_END_WAIT_MS), pool.end()]);
      else if (listenPoolOwned && listenPool !== undefined) await endWithin(listenPool, LISTEN_END_WAIT_MS);
    },
  };

  if (notify) {
    store.onJournal = (callback: () => void) => {
      live();
      listeners.add(callback);
      if (listener === undefined) {
        // A pool of our own: a connection that LISTENs for ever, outside the pool that serves queries.
        if (listenPool === undefined) {
          if (owned) listenPool = quietPool(new pg.Pool({ connectionString, max: 1, connectionTimeoutMillis: LISTEN_CONNECT_MS }));
          else ({ pool: listenPool, own: listenPoolOwned } = listenPoolBeside(pool));
        }
        listener = createListener(listenPool, schema, deliver);
        listener.start();
      }
      return () => {
        listeners.delete(callback);
        if (listeners.size === 0 && listener !== undefined) {
          listener.stop();
          listener = undefined;
        }
      };
    };
  }

  return store;
}
