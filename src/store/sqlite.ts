// The SQLite store: a versioned key-value table, one global version sequence and a change journal,
// on better-sqlite3. Every Lockstep write or delete is one BEGIN IMMEDIATE transaction; writes made
// with plain SQL from anywhere else are versioned and journaled by triggers (see sqlite-schema.ts).
import Database from 'better-sqlite3';
import { toMs, type Duration } from '../duration.js';
import { ClosedError, InvalidOptionError } from '../errors.js';
import type {
  JournalEntry,
  JournalReason,
  StoreAdapter,
  StoreDeleteResult,
  StoreScanRow,
  StoredValue,
  StoreWriteOptions,
  StoreWriteResult,
  Version,
} from '../types.js';
import { SQLITE_SCHEMA } from './sqlite-schema.js';

export type SqliteSynchronous = 'FULL' | 'NORMAL' | 'OFF';

interface SqliteStoreCommon {
  /** `PRAGMA synchronous` of the store's connection. `FULL` makes every commit durable; `NORMAL` may lose the last commits on power loss (not on a process crash). @default 'FULL' */
  synchronous?: SqliteSynchronous;
  /**
   * How long a write waits for another connection's write lock before failing with SQLITE_BUSY.
   * It must stay shorter than the engine's `leaseTtl`, so that a write that is still waiting can
   * never commit after its lease expired and readers stopped bypassing the cache. A write whose
   * `deadlineMs` is shorter waits only that long.
   * @default '2s'
   */
  busyTimeout?: Duration;
}

/** Open a file by path, or use an existing connection (its journal mode, synchronous and busy timeout are set; close() leaves it open). */
export type SqliteStoreOptions = SqliteStoreCommon &
  ({ path: string; database?: never } | { database: Database.Database; path?: never });

export interface SqliteStore extends StoreAdapter {
  readonly name: 'sqlite';
  /** The connection the store uses, for tests and tools. */
  readonly database: Database.Database;
  /** The resolved busy timeout, in ms: the engine can check it against its lease TTL. */
  readonly busyTimeoutMs: number;
}

const SYNCHRONOUS: readonly SqliteSynchronous[] = ['FULL', 'NORMAL', 'OFF'];

interface Resolved {
  readonly database: Database.Database;
  readonly owned: boolean;
  readonly synchronous: SqliteSynchronous;
  readonly busyTimeoutMs: number;
}

function resolve(options: SqliteStoreOptions): Resolved {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('sqlite store options must be an object');
  const synchronous = options.synchronous ?? 'FULL';
  if (!SYNCHRONOUS.includes(synchronous)) {
    throw new InvalidOptionError(`synchronous must be one of ${SYNCHRONOUS.join(', ')} (got ${JSON.stringify(synchronous)})`);
  }
  const busyTimeoutMs = toMs(options.busyTimeout ?? '2s', 'busyTimeout', { allowZero: true });
  const { path, database } = options as { path?: unknown; database?: unknown };
  if ((path === undefined) === (database === undefined)) {
    throw new InvalidOptionError('sqlite store needs exactly one of `path` (a file to open) or `database` (an open better-sqlite3 connection)');
  }
  if (database !== undefined) {
    const db = database as Partial<Database.Database>;
    if (typeof db !== 'object' || db === null || typeof db.prepare !== 'function' || typeof db.pragma !== 'function') {
      throw new InvalidOptionError('database must be a better-sqlite3 Database');
    }
    if (!db.open) throw new InvalidOptionError('database must be open (it was closed)');
    if (db.readonly) throw new InvalidOptionError('database must be writable (it was opened readonly)');
    return { database: database as Database.Database, owned: false, synchronous, busyTimeoutMs };
  }
  if (typeof path !== 'string' || path.length === 0) {
    throw new InvalidOptionError(`path must be a non-empty file path (got ${JSON.stringify(path)})`);
  }
  return { database: new Database(path, { timeout: busyTimeoutMs }), owned: true, synchronous, busyTimeoutMs };
}

/**
 * A StoreAdapter on SQLite. Opens (or sets up) the connection in WAL mode and creates the schema if
 * it is missing. Versions come from one global sequence; other processes may write `lockstep_kv`
 * with plain SQL (leaving `version` alone or not) and the triggers version and journal it.
 */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const { database: db, owned, synchronous, busyTimeoutMs } = resolve(options);
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    // WAL: readers never block the writer, and one fsync per commit under synchronous=FULL.
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    // One immediate transaction, so processes opening a new file at once create the schema once.
    db.transaction(() => db.exec(SQLITE_SCHEMA)).immediate();
  } catch (error) {
    if (owned) db.close();
    throw error;
  }

  // Versions and ids are numbers even on a connection opened with defaultSafeIntegers(true).
  const prepare = (sql: string) => db.prepare(sql).safeIntegers(false);
  // Raises the flag that makes the triggers stand aside for this transaction (see sqlite-schema.ts).
  const claim = prepare('UPDATE lockstep_sequence SET version = version + 1, in_write = 1 WHERE id = 1 RETURNING version').pluck();
  const release = prepare('UPDATE lockstep_sequence SET in_write = 0 WHERE id = 1');
  const upsert = prepare(
    `INSERT INTO lockstep_kv (namespace, key, value, version, updated_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = excluded.version, updated_at = excluded.updated_at`,
  );
  const remove = prepare('DELETE FROM lockstep_kv WHERE namespace = ? AND key = ?');
  const select = prepare('SELECT version, value AS payload FROM lockstep_kv WHERE namespace = ? AND key = ?');
  const append = prepare('INSERT INTO lockstep_journal (namespace, key, version, reason, created_at) VALUES (?, ?, ?, ?, ?)');
  const journalAfter = prepare(
    'SELECT id, namespace, key, version, reason, created_at AS createdAt FROM lockstep_journal WHERE id > ? ORDER BY id LIMIT ?',
  );
  // The AUTOINCREMENT high-water mark, so the head does not move back when pruning empties the journal.
  const head = prepare(
    `SELECT max(coalesce((SELECT max(id) FROM lockstep_journal), 0),
                coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'lockstep_journal'), 0))`,
  ).pluck();
  const prune = prepare('DELETE FROM lockstep_journal WHERE created_at < ?');
  const scanFirst = prepare('SELECT key, version, value AS payload FROM lockstep_kv WHERE namespace = ? ORDER BY key LIMIT ?');
  const scanAfter = prepare(
    'SELECT key, version, value AS payload FROM lockstep_kv WHERE namespace = ? AND key > ? ORDER BY key LIMIT ?',
  );
  const ping = prepare('SELECT 1').pluck();

  /** Bumps the sequence and runs `change` with the triggers standing aside; the caller's transaction makes it atomic. */
  function versioned<T>(namespace: string, key: string, journal: boolean, change: (version: Version) => T): { version: Version; result: T } {
    const version = claim.get() as Version | undefined;
    if (version === undefined) throw new Error('lockstep_sequence has no row: the schema was altered outside Lockstep');
    const result = change(version);
    if (journal) append.run(namespace, key, version, 'repair', Date.now());
    release.run();
    return { version, result };
  }

  const writeTx = db.transaction((namespace: string, key: string, payload: string, journal: boolean) =>
    versioned(namespace, key, journal, (version) => upsert.run(namespace, key, payload, version, Date.now())).version,
  );
  const deleteTx = db.transaction((namespace: string, key: string, journal: boolean): StoreDeleteResult => {
    const { version, result } = versioned(namespace, key, journal, () => remove.run(namespace, key).changes > 0);
    return { version, existed: result };
  });

  /** A deadline shorter than the busy timeout caps the lock wait of this write only. */
  function withDeadline<T>(deadlineMs: number, run: () => T): T {
    if (!(deadlineMs < busyTimeoutMs)) return run();
    // PRAGMA takes no parameters; the value is a clamped integer.
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(deadlineMs))}`);
    try {
      return run();
    } finally {
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    }
  }

  let closed = false;
  function live(): void {
    if (closed) throw new ClosedError('the sqlite store was closed');
  }

  return {
    name: 'sqlite',
    database: db,
    busyTimeoutMs,
    async read(namespace, key) {
      live();
      return select.get(namespace, key) as StoredValue | undefined;
    },
    async write(namespace, key, payload, options: StoreWriteOptions): Promise<StoreWriteResult> {
      live();
      return { version: withDeadline(options.deadlineMs, () => writeTx.immediate(namespace, key, payload, options.journal)) };
    },
    async delete(namespace, key, options: StoreWriteOptions) {
      live();
      return withDeadline(options.deadlineMs, () => deleteTx.immediate(namespace, key, options.journal));
    },
    async appendJournal(namespace: string, key: string, version: Version, reason: JournalReason) {
      live();
      append.run(namespace, key, version, reason, Date.now());
    },
    async readJournal(afterId, limit) {
      live();
      return journalAfter.all(afterId, limit) as JournalEntry[];
    },
    async journalHead() {
      live();
      return head.get() as number;
    },
    async pruneJournal(beforeEpochMs) {
      live();
      return prune.run(beforeEpochMs).changes;
    },
    async scan(namespace, afterKey, limit) {
      live();
      const rows = afterKey === undefined ? scanFirst.all(namespace, limit) : scanAfter.all(namespace, afterKey, limit);
      return rows as StoreScanRow[];
    },
    async ping() {
      live();
      ping.get();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (owned) db.close();
    },
  };
}
