// The MariaDB store: per-key versions, tombstones and a change journal, on mysql2. Every Lockstep
// write or delete is one call of a stored function (one autocommit statement, one round trip, a
// prepared statement); writes made with plain SQL from anywhere else are versioned and journaled by
// triggers. The rules, and how journal ids follow commit order, are in mysql-schema.ts.
//
// Built for MariaDB 10.6 or later (tested on 10.11): it relies on `SET STATEMENT … FOR` and
// `max_statement_time`, which MySQL does not have. The user needs CREATE, TRIGGER, CREATE ROUTINE and
// REFERENCES on the database the first time (then SELECT, INSERT, UPDATE, DELETE and EXECUTE); with binary
// logging on, creating triggers and functions also needs SUPER or log_bin_trust_function_creators=1.
import { createHash } from 'node:crypto';
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
  isDatabaseName,
  isTablePrefix,
  MYSQL_PACKAGE_VERSION,
  MYSQL_SCHEMA_VERSION,
  MYSQL_TRIGGERS_VERSION,
  mysqlSchema,
  PRECONDITION_SQLSTATE,
  REPLACEABLE_SCHEMA_VERSIONS,
  type MysqlSchema,
} from './mysql-schema.js';
import { liveVersionIn, preconditionFailed, preconditionParams } from './precondition.js';
import type { MysqlConnection, MysqlPool, MysqlValue } from './mysql-client.js';
import { isServerError, MAX_ATTEMPTS, outcomeUnknown, retryable } from './mysql-errors.js';
import { CLIENT_MARGIN_MS, connectionDeadline, connectWithin, isClientTimeout, readTimedOut } from './client-timeouts.js';
import { createMysqlSettler, SESSION_SQL, sessionFrom, type MysqlSession } from './mysql-settle.js';
import { settling, warningReceiver } from './settle-loop.js';

// mysql2 is an optional peer: loaded here so a missing install fails this import with the fix.
const { default: mysql } = await loadDriver('mysql2', 'lockstep/mysql', () => import('mysql2/promise'));

export type { MysqlConnection, MysqlPool, MysqlQueryOptions, MysqlValue } from './mysql-client.js';

// ---------------------------------------------------------------------------------------------
// Options

interface MysqlStoreCommon {
  /**
   * Receives warnings: polls of the settlement of writes given up on that failed (the database could
   * not be asked), at most one per minute. @default process.emitWarning
   */
  onWarning?: (message: string) => void;
  /**
   * The database that holds Lockstep's tables, triggers and functions (it must exist). Names are
   * qualified with it, so the pool's default database does not matter.
   * @default the current database of the pool's connections (the path of `uri`)
   */
  database?: string;
  /** Prefix of every table, trigger and function name: [A-Za-z_][A-Za-z0-9_]{0,31}. @default 'lockstep_' */
  tablePrefix?: string;
  /**
   * The longest a statement may run, lock waits included: MariaDB's `max_statement_time`, set on each
   * statement with `SET STATEMENT … FOR` (no session state, so a shared pool is left as it was). It
   * must stay shorter than the engine's `leaseTtl` (default 5 s), so a write that is still running can
   * never commit after its lease expired and readers stopped bypassing the cache. A write whose
   * `deadlineMs` is shorter runs with that (rounded down to 250 ms steps, then 100, 50, 25, 10 ms).
   * A timeout rolls the statement back and fails with ER_STATEMENT_TIMEOUT (errno 1969, SQLSTATE
   * 70100), a lock wait included: `max_statement_time` interrupts it with sub-second precision,
   * where `innodb_lock_wait_timeout` counts whole seconds, so the store leaves the latter alone.
   * @default '2s'
   */
  statementTimeout?: Duration;
}

/**
 * Connect with a URI (`mysql://user:password@host:port/database`; the store owns the pool and ends
 * it on close()), or use an existing mysql2/promise pool (close() leaves it open). The pool's
 * connections must be in autocommit mode and use utf8mb4 (mysql2's defaults).
 */
export type MysqlStoreOptions = MysqlStoreCommon &
  (
    | {
        uri: string;
        /** Connections in the pool the store creates. @default 10 */
        poolSize?: number;
        pool?: never;
      }
    | { pool: MysqlPool; uri?: never; poolSize?: never }
  );

export interface MysqlStore extends StoreAdapter {
  /** Its own counters: failed polls of the settlement of writes given up on. */
  stats(): StoreStats;
  /** Always a promise: the commit is a round trip. */
  write(namespace: string, key: string, payload: string, options: StoreWriteOptions): Promise<StoreWriteResult>;
  incarnation(): Promise<string | undefined>;
  readonly name: 'mysql';
  readonly tablePrefix: string;
  /** The resolved statement timeout, in ms: the engine can check it against its lease TTL. */
  readonly statementTimeoutMs: number;
  /** The pool the store queries. */
  readonly pool: MysqlPool;
  /** Creates the schema if it is missing (every operation does this first); resolves when ready. */
  ready(): Promise<void>;
  /** Always a promise: a query over the network. */
  read(namespace: string, key: string): Promise<StoredValue | undefined>;
}

interface Resolved {
  readonly database: string | undefined;
  readonly prefix: string;
  readonly statementTimeoutMs: number;
  readonly pool: MysqlPool;
  readonly owned: boolean;
}

const MAX_STATEMENT_TIMEOUT_MS = 86_400_000;

function resolve(options: MysqlStoreOptions): Resolved {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('mysql store options must be an object');
  const { uri, pool, poolSize, database, tablePrefix = 'lockstep_' } = options as unknown as Record<string, unknown>;
  if (database !== undefined && !isDatabaseName(database)) {
    throw new InvalidOptionError(`database must be 1-64 characters of [A-Za-z0-9_$-] (got ${JSON.stringify(database)})`);
  }
  if (!isTablePrefix(tablePrefix)) {
    throw new InvalidOptionError(`tablePrefix must match [A-Za-z_][A-Za-z0-9_]{0,31} (got ${JSON.stringify(tablePrefix)})`);
  }
  const statementTimeoutMs = toMs(options.statementTimeout ?? '2s', 'statementTimeout');
  if (statementTimeoutMs < 10 || statementTimeoutMs > MAX_STATEMENT_TIMEOUT_MS) {
    throw new InvalidOptionError(`statementTimeout must be from 10 ms to 24 h (got ${statementTimeoutMs} ms)`);
  }
  const common = { database: database as string | undefined, prefix: tablePrefix, statementTimeoutMs };
  if ((uri === undefined) === (pool === undefined)) {
    throw new InvalidOptionError('mysql store needs exactly one of `uri` or `pool` (an existing mysql2/promise pool)');
  }
  if (pool !== undefined) {
    const candidate = pool as Partial<MysqlPool> | null;
    if (typeof candidate !== 'object' || candidate === null || typeof candidate.getConnection !== 'function' || typeof candidate.end !== 'function') {
      throw new InvalidOptionError('pool must be a mysql2/promise Pool (an object with getConnection() and end())');
    }
    if (poolSize !== undefined) throw new InvalidOptionError('poolSize applies only with uri (size the pool you pass yourself)');
    return { ...common, pool: candidate as MysqlPool, owned: false };
  }
  if (typeof uri !== 'string' || !/^(mysql|mariadb):\/\//.test(uri)) {
    throw new InvalidOptionError('uri must be a mysql:// URI such as mysql://user@127.0.0.1:3306/database');
  }
  const size = poolSize ?? 10;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > 1000) {
    throw new InvalidOptionError(`poolSize must be an integer from 1 to 1000 (got ${JSON.stringify(poolSize)})`);
  }
  // mysql2 parses only mysql:// URIs; mariadb:// is the same protocol.
  const created = mysql.createPool({
    uri: uri.replace(/^mariadb:/, 'mysql:'),
    connectionLimit: size,
    supportBigNumbers: true,
    // A server that accepts and then stalls must not hold a new connection for mysql2's default 10 s.
    connectTimeout: statementTimeoutMs + CLIENT_MARGIN_MS,
  });
  return { ...common, pool: created as unknown as MysqlPool, owned: true };
}

const int = (value: unknown): number => (typeof value === 'number' ? value : Number(value));
const text = (value: unknown): string => (Buffer.isBuffer(value) ? value.toString('utf8') : String(value));
const bytes = (value: string): Buffer => Buffer.from(value, 'utf8');
const rowsOf = (result: unknown) => result as unknown[][];

/** A statement's time budget in ms, from a few fixed steps so that prepared statements are reused. */
export function budgetMs(remainingMs: number, statementTimeoutMs: number): number | undefined {
  if (remainingMs >= statementTimeoutMs) return statementTimeoutMs;
  if (remainingMs >= 250) return Math.floor(remainingMs / 250) * 250;
  return [100, 50, 25, 10].find((step) => step <= remainingMs);
}

const timed = (sql: string, ms: number) => `SET STATEMENT max_statement_time = ${(ms / 1000).toFixed(3)} FOR ${sql}`;

// ---------------------------------------------------------------------------------------------
// The store

/**
 * A StoreAdapter on MariaDB. The schema is created on first use, under GET_LOCK so that processes
 * starting at once create it once. Versions are per key and rise across delete and re-create; other
 * code may write the kv table with plain SQL (any statement but TRUNCATE, which the guard table
 * refuses) and the triggers version and journal it. Deadlocks and duplicate-key races of Lockstep's own
 * statements are retried within the deadline.
 *
 * Round trips: read, write, delete (journaled or not), appendJournal, readJournal, journalHead, scan:
 * one each, plus one to prepare each statement text once per connection, and one to learn the server
 * connection behind it (to settle a write given up on). pruneJournal: five.
 *
 * `pruneJournal(before)` also prunes the tombstones of keys deleted before that time (see the SQLite
 * store: the journal retention must exceed the engine's tombstone TTL and lease TTL).
 */
export function createMysqlStore(options: MysqlStoreOptions): MysqlStore {
  const resolved = resolve(options);
  const { prefix, statementTimeoutMs, pool, owned } = resolved;
  let schema: MysqlSchema | undefined;
  let closed = false;

  function live(): void {
    if (closed) throw new ClosedError('the mysql store was closed');
  }

  // Client-side deadlines (client-timeouts.ts): every statement and every wait for a connection ends
  // after the statement timeout plus a margin; a connection given up on is destroyed.
  const clientMs = statementTimeoutMs + CLIENT_MARGIN_MS;
  const handOut = (): Promise<MysqlConnection> => connectWithin('MariaDB', () => pool.getConnection(), clientMs, (late) => late.destroy());

  // The server connection behind each of the pool's connections (learnt once, when first handed
  // out), to settle a write given up on (mysql-settle.ts). mysql2 wraps a connection anew at each
  // checkout: it is known by the connection inside.
  const sessions = new WeakMap<object, MysqlSession | undefined>();
  const sessionKey = (connection: MysqlConnection): object => connection.connection ?? connection;
  async function connect(): Promise<MysqlConnection> {
    const connection = await handOut();
    if (sessions.has(sessionKey(connection))) return connection;
    try {
      // Text protocol: one round trip, where a prepared statement would cost a PREPARE too.
      const asked = connection.query({ sql: SESSION_SQL, rowsAsArray: true, timeout: clientMs });
      const [result] = await connectionDeadline(asked, clientMs, () => connection.destroy());
      sessions.set(sessionKey(connection), sessionFrom(rowsOf(result)[0]));
      return connection;
    } catch (error) {
      connection.destroy();
      throw error;
    }
  }

  async function execute(connection: MysqlConnection, sql: string, values: MysqlValue[] = [], timeout = clientMs): Promise<unknown> {
    // mysql2's timeout counts from the statement's start: a PREPARE stuck before it is not covered,
    // so the deadline is also kept here, and a connection past it is destroyed.
    const [result] = await connectionDeadline(connection.execute({ sql, rowsAsArray: true, namedPlaceholders: false, timeout }, values), timeout, () =>
      connection.destroy(),
    );
    return result;
  }

  /** Runs one autocommit statement; releases (or, when the connection broke, destroys) the connection. */
  async function run(sql: (s: MysqlSchema) => string, values: MysqlValue[], { writes = false } = {}): Promise<unknown> {
    const s = await ensureSchema();
    let connection: MysqlConnection;
    try {
      connection = await connect();
    } catch (error) {
      throw isClientTimeout(error) ? readTimedOut('MariaDB', error) : error; // nothing was sent: a clean failure
    }
    try {
      const result = await execute(connection, sql(s), values);
      connection.release();
      return result;
    } catch (error) {
      const unknown = outcomeUnknown(error);
      if (unknown) connection.destroy();
      else connection.release();
      if (!writes && isClientTimeout(error)) throw readTimedOut('MariaDB', error);
      if (writes && unknown) {
        const lost = new StoreOutcomeUnknownError('the connection was lost before MariaDB confirmed the write: it may or may not have committed', {
          cause: error,
        });
        throw settling(settler, lost, sessions.get(sessionKey(connection)));
      }
      throw error;
    }
  }

  // A write given up on may still land (destroy() lets what was sent go out): its server connection
  // is ended from another one, and the engine told once it is gone (mysql-settle.ts).
  const settler = createMysqlSettler(async (sql, values) => rowsOf(await run(() => sql, values)), undefined, warningReceiver(options.onWarning));

  /** Calls a write function within the deadline, again after a deadlock, a duplicate-key race or a 0 (retry). */
  async function callWrite(namespace: string, key: string, deadlineMs: number, sql: (s: MysqlSchema) => string, values: MysqlValue[]): Promise<number> {
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      const budget = budgetMs(deadlineMs - (performance.now() - started), statementTimeoutMs);
      if (budget === undefined) {
        throw new StoreWriteError(`the write's deadline (${deadlineMs} ms) ran out before MariaDB could run it; nothing was committed`, {
          key,
          namespace,
        });
      }
      try {
        const returned = int(rowsOf(await run((s) => timed(sql(s), budget), values, { writes: true }))[0]![0]);
        if (returned !== 0) return returned;
      } catch (error) {
        if (!retryable(error) || attempt >= MAX_ATTEMPTS) throw error;
        continue;
      }
      if (attempt >= MAX_ATTEMPTS) {
        throw new StoreWriteError(`the key was deleted and re-created under the write ${attempt} times; nothing was committed`, { key, namespace });
      }
    }
  }

  /** Runs a write; the functions' precondition SIGNAL (rolled back, nothing committed) becomes PreconditionFailedError. */
  async function conditional<R>(namespace: string, key: string, options: StoreWriteOptions, write: () => Promise<R>): Promise<R> {
    try {
      return await write();
    } catch (error) {
      const precondition = options.precondition;
      if (precondition === undefined || !isServerError(error) || error.sqlState !== PRECONDITION_SQLSTATE) throw error;
      const live = liveVersionIn((error as { sqlMessage?: unknown }).sqlMessage);
      throw preconditionFailed(namespace, key, precondition, live ?? 0, error);
    }
  }

  let schemaReady: Promise<MysqlSchema> | undefined;
  function ensureSchema(): Promise<MysqlSchema> {
    if (schema !== undefined) return Promise.resolve(schema);
    schemaReady ??= createSchema().catch((error: unknown) => {
      schemaReady = undefined; // the next operation tries again
      throw error;
    });
    return schemaReady;
  }

  async function createSchema(): Promise<MysqlSchema> {
    // Destroyed at the end, never used for a write: its server connection need not be learnt.
    const connection = await handOut();
    try {
      // Lockstep's reads are single autocommit statements: any isolation level but READ UNCOMMITTED
      // reads committed rows only. Under READ UNCOMMITTED a read would return, and the cache keep, a
      // value that a plain transaction wrote and then rolled back, and the drainer would read journal
      // rows that are rolled back and their ids handed out again (SET STATEMENT cannot set it per statement).
      const [isolation] = rowsOf(await execute(connection, 'SELECT @@SESSION.tx_isolation'))[0] ?? [];
      if (text(isolation).toUpperCase() === 'READ-UNCOMMITTED') {
        throw new InvalidOptionError(
          "the pool's connections run at READ UNCOMMITTED: Lockstep's reads would return uncommitted writes that may be rolled back; " +
            'use READ COMMITTED or REPEATABLE READ (the server default) on the connections the store uses',
        );
      }
      let database = resolved.database;
      if (database === undefined) {
        const current = rowsOf(await execute(connection, 'SELECT DATABASE()'))[0]?.[0];
        if (current === null || current === undefined) {
          throw new InvalidOptionError('the connection has no current database: pass `database`, or a uri that names one');
        }
        database = text(current);
        if (!isDatabaseName(database)) {
          throw new InvalidOptionError(`the current database ${JSON.stringify(database)} is not 1-64 characters of [A-Za-z0-9_$-]: pass \`database\``);
        }
      }
      const s = mysqlSchema(database, prefix);
      if (!(await isComplete(connection, s))) {
        // DDL may wait for metadata locks; processes starting at once queue on the named lock.
        await connection.query({ sql: 'SET SESSION lock_wait_timeout = 60' });
        const lockName = `lockstep:schema:${createHash('sha1').update(`${database}.${prefix}`).digest('hex')}`;
        const [got] = rowsOf(await execute(connection, 'SELECT GET_LOCK(?, 60)', [lockName], 60_000 + CLIENT_MARGIN_MS))[0] ?? [];
        if (int(got) !== 1) throw new Error(`could not take the schema lock ${lockName} within 60 s`);
        if (!(await isComplete(connection, s))) {
          await refuseForeignTable(connection, s);
          try {
            // Before the triggers that call it; only what is missing or of another version.
            const state = await packageState(connection, s);
            await createPackage(connection, s, state, async (sql) => {
              await connection.query({ sql });
              return true;
            });
            for (const statement of s.ddl) await connection.query({ sql: statement });
          } catch (error) {
            throw deniedDdl(error, s, 'must be created once, which this user may not do');
          }
          if (!(await isComplete(connection, s))) throw new Error(`the Lockstep schema in ${database} is still incomplete after its DDL ran`);
        }
      }
      await upgrade(connection, s);
      schema = s;
      return s;
    } finally {
      // Never back to the pool: this connection changed its session and may hold the named lock.
      connection.destroy();
    }
  }

  /** Whether every table, trigger and function exists, the functions of this schema version. */
  async function isComplete(connection: MysqlConnection, s: MysqlSchema): Promise<boolean> {
    const marks = (names: readonly string[]) => names.map(() => '?').join(', ');
    const [row] = rowsOf(
      await execute(
        connection,
        `SELECT
          (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (${marks(s.tableNames)})),
          (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (${marks(s.triggerNames)})),
          (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION' AND ROUTINE_NAME IN (${marks(s.routineNames)})),
          (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION' AND ROUTINE_NAME IN (${marks(s.routineNames)})
             AND ROUTINE_COMMENT LIKE ?),
          (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION' AND ROUTINE_NAME IN (${marks(s.routineNames)})
             AND SUBSTRING_INDEX(ROUTINE_COMMENT, ':', 3) IN (${marks(REPLACEABLE_SCHEMA_VERSIONS)}))`,
        [
          s.database,
          ...s.tableNames,
          s.database,
          ...s.triggerNames,
          s.database,
          ...s.routineNames,
          s.database,
          ...s.routineNames,
          `${MYSQL_SCHEMA_VERSION}:%`,
          s.database,
          ...s.routineNames,
          ...REPLACEABLE_SCHEMA_VERSIONS,
        ],
      ),
    );
    const [tables, triggers, routines, current, replaceable] = (row ?? []).map(int);
    // Functions of an earlier version this DDL knows are replaced (CREATE OR REPLACE), under the schema lock.
    if (replaceable! > 0 && routines === current! + replaceable!) return false;
    if (routines !== current) {
      throw new InvalidOptionError(
        `database ${s.database} has Lockstep functions (${s.routineNames.join(', ')}) of another schema version than ${MYSQL_SCHEMA_VERSION}: ` +
          'there is no migration from it; use another database or tablePrefix, or drop the objects',
      );
    }
    return tables === s.tableNames.length && triggers === s.triggerNames.length && current === s.routineNames.length;
  }

  /** Whether the package exists, whether any body does, and whether the body is of MYSQL_PACKAGE_VERSION. */
  interface PackageState {
    readonly spec: boolean;
    readonly body: boolean;
    readonly current: boolean;
  }
  async function packageState(connection: MysqlConnection, s: MysqlSchema): Promise<PackageState> {
    const [row] = rowsOf(
      await execute(
        connection,
        `SELECT
          (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ? AND ROUTINE_TYPE = 'PACKAGE'),
          (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ? AND ROUTINE_TYPE = 'PACKAGE BODY'),
          (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ? AND ROUTINE_TYPE = 'PACKAGE BODY'
             AND ROUTINE_COMMENT = ?)`,
        [s.database, s.packageName, s.database, s.packageName, s.database, s.packageName, MYSQL_PACKAGE_VERSION],
      ),
    );
    const [spec, body, current] = (row ?? []).map(int);
    return { spec: spec !== 0, body: body !== 0, current: spec !== 0 && current !== 0 };
  }

  /**
   * Creates the package through which Lockstep calls its functions if it is missing, and its body if
   * missing or of another version (sql_mode ORACLE syntax); nothing if both are current. Never CREATE
   * OR REPLACE PACKAGE: it drops the body too, and every call of the package (Lockstep's writes, the
   * triggers' owns()) fails until the body is created again. Returns false if `run` gave up on one.
   */
  async function createPackage(
    connection: MysqlConnection,
    s: MysqlSchema,
    state: PackageState,
    run: (sql: string) => Promise<boolean>,
  ): Promise<boolean> {
    if (state.current) return true;
    const [mode] = rowsOf(await execute(connection, 'SELECT @@SESSION.sql_mode'))[0] ?? [];
    await connection.query({ sql: "SET SESSION sql_mode = 'ORACLE'" });
    try {
      const [spec, body] = s.packageDdl;
      if (!state.spec && !(await run(spec))) return false;
      return await run(body);
    } finally {
      await execute(connection, 'SET SESSION sql_mode = ?', [text(mode)]);
    }
  }

  /**
   * Brings a schema made by an earlier version (or release) up to date, after the schema lock was
   * released or never needed: the package body of MYSQL_PACKAGE_VERSION, the triggers of
   * MYSQL_TRIGGERS_VERSION (recorded in the meta table once all are replaced) and the guard table
   * (mysql-schema.ts). A schema that is current needs no DDL (nor any privilege for it). Each DDL
   * statement takes a metadata lock (on the package, or on the trigger's table), and every statement
   * on it queues behind a waiting DDL, so each waits at most half the statement timeout, in MariaDB's
   * whole seconds (1 s at most; 0: only if nothing holds them). If one cannot, the store runs on (a
   * mix of older and newer triggers is correct for Lockstep's writes: older ones honour the marker
   * alone, newer ones with the package; a body of another version is the same code) and the next
   * store to open tries again; but with no package body at all it fails, since every write calls it.
   * A user without the privileges for a needed DDL statement fails with an InvalidOptionError.
   */
  async function upgrade(connection: MysqlConnection, s: MysqlSchema): Promise<void> {
    const [row] = rowsOf(
      await execute(
        connection,
        `SELECT
          (SELECT COUNT(*) FROM ${s.meta} WHERE name = 'triggers' AND value = ?),
          (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?)`,
        [MYSQL_TRIGGERS_VERSION, s.database, s.guardName],
      ),
    );
    const [triggersCurrent, hasGuard] = (row ?? []).map(int);
    const pkg = await packageState(connection, s);
    if (pkg.current && triggersCurrent !== 0 && hasGuard !== 0) return;
    // Before any DDL: bounded waits for metadata locks, on the server and on the client.
    const waitS = Math.min(1, Math.floor(statementTimeoutMs / 2 / 1000));
    await connection.query({ sql: `SET SESSION lock_wait_timeout = ${waitS}` });
    const bounded = async (sql: string): Promise<boolean> => {
      try {
        await connection.query({ sql, timeout: waitS * 1000 + clientMs });
        return true;
      } catch (error) {
        // ER_LOCK_WAIT_TIMEOUT (1205): the tables were busy; ER_STATEMENT_TIMEOUT (1969) likewise.
        if (isServerError(error) && (error.errno === 1205 || error.errno === 1969)) return false;
        throw deniedDdl(error, s, 'needs a one-time upgrade');
      }
    };
    if (!(await createPackage(connection, s, pkg, bounded)) && !pkg.body) {
      throw new Error(`could not create the package ${s.packageName} in ${s.database} within ${waitS} s: its metadata lock was held`);
    }
    if (triggersCurrent === 0) {
      let replaced = true;
      for (const statement of s.triggerReplaceDdl) {
        if (!(await bounded(statement))) {
          replaced = false;
          break;
        }
      }
      if (replaced) {
        await execute(connection, `INSERT INTO ${s.meta} (name, value) VALUES ('triggers', ?) ON DUPLICATE KEY UPDATE value = VALUES(value)`, [
          MYSQL_TRIGGERS_VERSION,
        ]);
      }
    }
    if (hasGuard === 0) await bounded(s.guardDdl);
  }

  /**
   * ER_TABLEACCESS_DENIED (1142), ER_DBACCESS_DENIED (1044), ER_SPECIFIC_ACCESS_DENIED (1227),
   * ER_PROCACCESS_DENIED (1370): a least-privilege user where DDL is still needed becomes an error
   * that names the privileges; any other error is returned as it is.
   */
  function deniedDdl(error: unknown, s: MysqlSchema, what: string): unknown {
    if (!isServerError(error) || ![1142, 1044, 1227, 1370].includes(error.errno ?? 0)) return error;
    return new InvalidOptionError(
      `the Lockstep schema in ${s.database} (tablePrefix ${s.prefix}) ${what} ` +
        `(errno ${error.errno}: ${String((error as { sqlMessage?: unknown }).sqlMessage ?? '')}): open the store once as a user with ` +
        'CREATE ROUTINE, ALTER ROUTINE, TRIGGER, CREATE and REFERENCES on the database (see docs/operations.md, MariaDB)',
      { cause: error },
    );
  }

  /** A kv table that this DDL did not create must at least have the columns it needs. */
  async function refuseForeignTable(connection: MysqlConnection, s: MysqlSchema): Promise<void> {
    const rows = rowsOf(
      await execute(connection, 'SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
        s.database,
        `${s.prefix}kv`,
      ]),
    );
    if (rows.length === 0) return;
    const columns = new Set(rows.map((r) => text(r[0]).toLowerCase()));
    const missing = ['namespace', 'key', 'value', 'version', 'writer', 'updated_at'].filter((c) => !columns.has(c));
    if (missing.length > 0) {
      throw new InvalidOptionError(
        `database ${s.database} has a ${s.prefix}kv table that Lockstep did not create and that lacks ${missing.join(', ')}: ` +
          'use another database or tablePrefix, or drop the table',
      );
    }
  }

  // Everything but the write functions runs with the full statement timeout (no deadline of its own).
  const limited = (sql: string) => timed(sql, statementTimeoutMs);

  return {
    name: 'mysql',
    tablePrefix: prefix,
    statementTimeoutMs,
    pool,
    async ready() {
      live();
      await ensureSchema();
    },
    async read(namespace, key): Promise<StoredValue | undefined> {
      live();
      const [row] = rowsOf(
        await run((s) => limited(`SELECT version, value FROM ${s.kv} WHERE namespace = ? AND \`key\` = ?`), [bytes(namespace), bytes(key)]),
      );
      return row === undefined ? undefined : { version: int(row[0]), payload: text(row[1]) };
    },
    async write(namespace, key, payload, options: StoreWriteOptions): Promise<StoreWriteResult> {
      live();
      const values = [bytes(namespace), bytes(key), payload, options.journal ? 1 : 0, ...preconditionParams(options.precondition)];
      const version = await conditional(namespace, key, options, () =>
        callWrite(namespace, key, options.deadlineMs, (s) => `SELECT ${s.ownWriteFunction}(?, ?, ?, ?, ?, ?)`, values),
      );
      return { version };
    },
    async delete(namespace, key, options: StoreWriteOptions): Promise<StoreDeleteResult> {
      live();
      const values = [bytes(namespace), bytes(key), options.journal ? 1 : 0, ...preconditionParams(options.precondition)];
      const signed = await conditional(namespace, key, options, () =>
        callWrite(namespace, key, options.deadlineMs, (s) => `SELECT ${s.ownDeleteFunction}(?, ?, ?, ?, ?)`, values),
      );
      return { version: Math.abs(signed), existed: signed > 0 };
    },
    async appendJournal(namespace: string, key: string, version: Version, reason: JournalReason) {
      live();
      await run(
        (s) => limited(`INSERT INTO ${s.journal} (namespace, \`key\`, version, reason, created_at) VALUES (?, ?, ?, ?, CAST(FLOOR(@@timestamp * 1000) AS SIGNED))`),
        [bytes(namespace), bytes(key), version, reason],
        { writes: true },
      );
    },
    async readJournal(afterId, limit): Promise<JournalEntry[]> {
      live();
      const rows = rowsOf(
        await run(
          (s) => limited(`SELECT id, namespace, \`key\`, version, reason, created_at FROM ${s.journal} WHERE id > ? ORDER BY id LIMIT ?`),
          [afterId, limit],
        ),
      );
      return rows.map((r) => ({
        id: int(r[0]),
        namespace: text(r[1]),
        key: text(r[2]),
        version: int(r[3]),
        reason: text(r[4]) as JournalReason,
        createdAt: int(r[5]),
      }));
    },
    async journalHead() {
      live();
      const [row] = rowsOf(await run((s) => limited(`SELECT head FROM ${s.journalLock} WHERE id = 1`), []));
      return row === undefined ? 0 : int(row[0]);
    },
    async pruneJournal(beforeEpochMs, throughId = Number.MAX_SAFE_INTEGER) {
      live();
      const s = await ensureSchema();
      const connection = await connect();
      let open = false;
      try {
        // READ COMMITTED: the unindexed tombstone scan then keeps no locks on the rows it skips.
        await connection.query({ sql: 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED' });
        await connection.query({ sql: 'START TRANSACTION' });
        open = true;
        const cutoff = Math.floor(beforeEpochMs);
        // A prefix of committed ids only, never past the drainer's cursor (see StoreAdapter.pruneJournal):
        // a long transaction's rows carry the time of their INSERT, not of their commit, and the
        // DELETE would otherwise wait for its lock and remove them as soon as it commits, unread.
        const [young] = rowsOf(await execute(connection, limited(`SELECT id FROM ${s.journal} WHERE created_at >= ? ORDER BY id LIMIT 1`), [cutoff]));
        const below = young === undefined ? Number.MAX_SAFE_INTEGER : int(young[0]);
        const upTo = Math.min(throughId, below - 1);
        const pruned = (await execute(connection, limited(`DELETE FROM ${s.journal} WHERE id <= ?`), [upTo])) as { affectedRows: number };
        await execute(connection, limited(`DELETE FROM ${s.tombstones} WHERE deleted_at < ?`), [cutoff]);
        await connection.query({ sql: 'COMMIT' });
        open = false;
        connection.release();
        return pruned.affectedRows;
      } catch (error) {
        // Whatever state the session is in (a pending isolation level, an open transaction): drop it.
        if (open) await connection.query({ sql: 'ROLLBACK' }).catch(() => undefined);
        connection.destroy();
        throw error;
      }
    },
    async scan(namespace, afterKey, limit): Promise<StoreScanRow[]> {
      live();
      const columns = 'SELECT `key`, version, value FROM';
      const rows = rowsOf(
        afterKey === undefined
          ? await run((s) => limited(`${columns} ${s.kv} WHERE namespace = ? ORDER BY \`key\` LIMIT ?`), [bytes(namespace), limit])
          : await run((s) => limited(`${columns} ${s.kv} WHERE namespace = ? AND \`key\` > ? ORDER BY \`key\` LIMIT ?`), [
              bytes(namespace),
              bytes(afterKey),
              limit,
            ]),
      );
      return rows.map((r) => ({ key: text(r[0]), version: int(r[1]), payload: text(r[2]) }));
    },
    async ping() {
      live();
      await run(() => limited('SELECT 1'), []);
    },
    async incarnation() {
      live();
      // The server answering: replicas have server ids of their own, so a failover to one shows.
      // Not in a Galera cluster: its nodes are all primaries (each with its own id, so a balancer
      // in front would seem to fail over at every connection), and a commit is on all of them.
      // (WSREP_ON read from information_schema: a server built without Galera has no @@wsrep_on.)
      const [row] = rowsOf(await run(() => limited("SELECT @@server_id, (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'WSREP_ON')"), []));
      return row![1] !== null && text(row![1]).toUpperCase() === 'ON' ? undefined : `mysql:${text(row![0])}`;
    },
    async journalId() {
      live();
      // Drawn once, stored with the tables: not derived from how this instance reached the server.
      const [row] = rowsOf(await run((s) => limited(`SELECT value FROM ${s.meta} WHERE name = 'journal_id'`), []));
      return `mysql:${text(row![0])}`;
    },
    stats() {
      return { settlePollErrors: settler.pollErrors };
    },
    async close() {
      if (closed) return;
      closed = true;
      settler.stop();
      if (owned) await pool.end();
    },
  };
}
