// The SQLite store: a versioned key-value table with versions per key, the tombstones of deleted keys
// and a change journal, on better-sqlite3. Every Lockstep write or delete is one BEGIN IMMEDIATE
// transaction; writes made with plain SQL from anywhere else are versioned and journaled by triggers
// (see sqlite-schema.ts). A write of an existing key writes the row's page and nothing else.
import Database from 'better-sqlite3';
import { toMs, type Duration } from '../duration.js';
import { ClosedError, InvalidOptionError, StoreReadError, StoreWriteError } from '../errors.js';
import type {
  JournalEntry,
  JournalReason,
  StoreAdapter,
  StoreDeleteResult,
  StorePrecondition,
  StoreScanRow,
  StoredValue,
  StoreWriteOptions,
  StoreWriteResult,
  Version,
} from '../types.js';
import { preconditionFailed, preconditionHolds } from './precondition.js';
import { type LateEnd, whenOutsideTransaction } from './sqlite-outside-transaction.js';
import { DELETE_MARKER, FLIP_WRITER, INSERT_MARKER, SQLITE_SCHEMA } from './sqlite-schema.js';

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

/** Why the file cannot be used: it holds Lockstep tables of an earlier, incompatible schema. */
function outdatedSchema(db: Database.Database): string | undefined {
  const tables = new Set(
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'lockstep%'").pluck().all() as string[],
  );
  if (tables.has('lockstep_sequence')) return 'it has a lockstep_sequence table (one global version sequence)';
  if (!tables.has('lockstep_kv')) return undefined;
  const columns = (db.pragma('table_info(lockstep_kv)') as Array<{ name: string }>).map((c) => c.name);
  if (!columns.includes('writer')) return 'its lockstep_kv table has no writer column';
  if (!tables.has('lockstep_tombstones')) return 'it has lockstep_kv but no lockstep_tombstones table';
  return undefined;
}

/**
 * A StoreAdapter on SQLite. Opens (or sets up) the connection in WAL mode and creates the schema if
 * it is missing; a file created by an earlier, incompatible schema is refused with
 * InvalidOptionError. Versions are per key and rise across delete and re-create (a delete keeps a
 * versioned tombstone); other processes may write `lockstep_kv` with plain SQL (leaving `version`
 * alone or not, but never the `writer` column) and the triggers version and journal it.
 *
 * `pruneJournal(before)` also prunes the tombstones of keys deleted before that time. A key whose
 * tombstone is gone starts again at version 1, so the cutoff must lie further back than any cache
 * record can still hold a version of the key: the engine prunes at `now - journal.retention`, and
 * the retention (default 1 h) must exceed its `tombstoneTtl` (default 1 min) and `leaseTtl`
 * (default 5 s), as the defaults do.
 */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const { database: db, owned, synchronous, busyTimeoutMs } = resolve(options);
  const refuseOutdated = () => {
    const outdated = outdatedSchema(db);
    if (outdated === undefined) return;
    throw new InvalidOptionError(
      `the SQLite file ${JSON.stringify(db.name)} was created by an earlier Lockstep schema: ${outdated}. ` +
        'This version keeps versions per key and cannot use it, and there is no migration from that unreleased ' +
        'schema: use a new file, or drop the lockstep_* tables and triggers.',
    );
  };
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    refuseOutdated(); // before switching an old file to WAL
    // WAL: readers never block the writer, and one fsync per commit under synchronous=FULL.
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    // One immediate transaction, so processes opening a new file at once create the schema once.
    db.transaction(() => {
      refuseOutdated();
      db.exec(SQLITE_SCHEMA);
    }).immediate();
  } catch (error) {
    if (owned) db.close();
    throw error;
  }

  // Versions and ids are numbers even on a connection opened with defaultSafeIntegers(true).
  const prepare = (sql: string) => db.prepare(sql).safeIntegers(false);
  // An existing key: one statement, the row's page only. Flipping `writer` keeps the triggers out.
  const bump = prepare(
    `UPDATE lockstep_kv SET value = ?, version = coalesce(version, 0) + 1, updated_at = ?, writer = ${FLIP_WRITER}
     WHERE namespace = ? AND key = ? RETURNING version`,
  ).pluck();
  // A new key: 1 + its tombstone; inserted with the marker, then settled (same page) so no committed row holds it.
  const tombstoneOf = prepare('SELECT version FROM lockstep_tombstones WHERE namespace = ? AND key = ?').pluck();
  const insert = prepare(
    `INSERT INTO lockstep_kv (namespace, key, value, version, updated_at, writer) VALUES (?, ?, ?, ?, ?, '${INSERT_MARKER}')`,
  );
  const settle = prepare('UPDATE lockstep_kv SET writer = 0 WHERE namespace = ? AND key = ?');
  const unbury = prepare('DELETE FROM lockstep_tombstones WHERE namespace = ? AND key = ?');
  // A delete: mark the row (same page) so the DELETE trigger stands aside, delete it, record the tombstone.
  const mark = prepare(`UPDATE lockstep_kv SET writer = '${DELETE_MARKER}' WHERE namespace = ? AND key = ? RETURNING version`).pluck();
  const remove = prepare('DELETE FROM lockstep_kv WHERE namespace = ? AND key = ?');
  const bury = prepare(
    `INSERT INTO lockstep_tombstones (namespace, key, version, deleted_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (namespace, key) DO UPDATE SET version = max(lockstep_tombstones.version + 1, excluded.version), deleted_at = excluded.deleted_at
     RETURNING version`,
  ).pluck();
  // Rows as arrays (raw): better-sqlite3 builds an object row key by key, slower than the literal below.
  const select = prepare('SELECT version, value FROM lockstep_kv WHERE namespace = ? AND key = ?').raw();
  const liveVersion = prepare('SELECT coalesce(version, 0) FROM lockstep_kv WHERE namespace = ? AND key = ?').pluck();
  /** Inside the write transaction (BEGIN IMMEDIATE: no other writer), so the check and the commit are one step. */
  const check = (namespace: string, key: string, precondition: StorePrecondition | undefined): void => {
    if (precondition === undefined) return;
    const live = (liveVersion.get(namespace, key) as Version | undefined) ?? 0;
    if (!preconditionHolds(precondition, live)) throw preconditionFailed(namespace, key, precondition, live);
  };
  const append = prepare('INSERT INTO lockstep_journal (namespace, key, version, reason, created_at) VALUES (?, ?, ?, ?, ?)');
  const journalAfter = prepare(
    'SELECT id, namespace, key, version, reason, created_at AS createdAt FROM lockstep_journal WHERE id > ? ORDER BY id LIMIT ?',
  );
  // The AUTOINCREMENT high-water mark, so the head does not move back when pruning empties the journal.
  const journalName = prepare("SELECT value FROM lockstep_meta WHERE name = 'journal_id'").pluck();
  const head = prepare(
    `SELECT max(coalesce((SELECT max(id) FROM lockstep_journal), 0),
                coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'lockstep_journal'), 0))`,
  ).pluck();
  // A prefix only (below the first row young enough to keep), never past the drainer's cursor: see
  // StoreAdapter.pruneJournal. The first young row is found in id order: the scan stops there.
  const prune = prepare(
    `DELETE FROM lockstep_journal WHERE id <= ? AND id < coalesce((SELECT id FROM lockstep_journal WHERE created_at >= ? ORDER BY id LIMIT 1), ?)`,
  );
  // No index on deleted_at (it would cost deletes a page): the table holds one retention of deletes.
  const pruneTombstones = prepare('DELETE FROM lockstep_tombstones WHERE deleted_at < ?');
  const scanFirst = prepare('SELECT key, version, value AS payload FROM lockstep_kv WHERE namespace = ? ORDER BY key LIMIT ?');
  const scanAfter = prepare(
    'SELECT key, version, value AS payload FROM lockstep_kv WHERE namespace = ? AND key > ? ORDER BY key LIMIT ?',
  );
  const ping = prepare('SELECT 1').pluck();

  const writeTx = db.transaction((namespace: string, key: string, payload: string, journal: boolean, precondition?: StorePrecondition): Version => {
    check(namespace, key, precondition);
    const now = Date.now();
    let version = bump.get(payload, now, namespace, key) as Version | undefined;
    if (version === undefined) {
      const tombstone = tombstoneOf.get(namespace, key) as Version | undefined;
      version = (tombstone ?? 0) + 1;
      insert.run(namespace, key, payload, version, now);
      settle.run(namespace, key);
      if (tombstone !== undefined) unbury.run(namespace, key);
    }
    if (journal) append.run(namespace, key, version, 'repair', now);
    return version;
  });
  const deleteTx = db.transaction((namespace: string, key: string, journal: boolean, precondition?: StorePrecondition): StoreDeleteResult => {
    check(namespace, key, precondition);
    const now = Date.now();
    const old = mark.get(namespace, key) as Version | null | undefined;
    const existed = old !== undefined;
    if (existed) remove.run(namespace, key);
    const version = bury.get(namespace, key, (old ?? 0) + 1, now) as Version;
    if (journal) append.run(namespace, key, version, 'repair', now);
    return { version, existed };
  });
  const pruneTx = db.transaction((beforeEpochMs: number, throughId: number): number => {
    const pruned = prune.run(throughId, beforeEpochMs, Number.MAX_SAFE_INTEGER).changes;
    pruneTombstones.run(beforeEpochMs);
    return pruned;
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

  // A connection passed in (`database`) may be inside a transaction the application opened on it:
  // Lockstep's statements run once it has ended (sqlite-outside-transaction.ts). A connection the
  // store opened is its own: nothing to wait for, and nothing on the path.
  const inside = 'the SQLite connection is inside a transaction Lockstep did not open: call Lockstep outside it';
  const outsideForRead = <T>(run: () => T): T | Promise<T> =>
    owned ? run() : whenOutsideTransaction(db, busyTimeoutMs, 'run', () => new StoreReadError(inside), run);
  /** Waits half the write's deadline at most, so the write keeps time for its own lock wait. */
  const outsideForWrite = <T>(deadlineMs: number, run: (deadlineLeftMs: number) => T, lateEnd: LateEnd = 'refuse'): T | Promise<T> =>
    owned
      ? run(deadlineMs)
      : whenOutsideTransaction(db, Math.min(deadlineMs / 2, busyTimeoutMs), lateEnd, () => new StoreWriteError(inside), (waited) => run(deadlineMs - waited));

  // Synchronous, as better-sqlite3 is: the engine's cold read then fills with no promise in between
  // (StoreAdapter.read). Failures stay rejections. Inside the application's transaction: after it (async).
  const selectRow = (namespace: string, key: string): StoredValue | undefined => {
    const row = select.get(namespace, key) as [Version, string] | undefined;
    return row === undefined ? undefined : { version: row[0], payload: row[1] };
  };
  function read(namespace: string, key: string): StoredValue | undefined | Promise<StoredValue | undefined> {
    try {
      live();
      if (!owned && db.inTransaction) return outsideForRead(() => selectRow(namespace, key));
      return selectRow(namespace, key);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  return {
    name: 'sqlite',
    database: db,
    busyTimeoutMs,
    read,
    // Synchronous outside another transaction, as `read` is: the engine then publishes at once
    // (StoreAdapter.write). Failures stay rejections. Inside the application's transaction: after it (async).
    write(namespace, key, payload, options: StoreWriteOptions): StoreWriteResult | Promise<StoreWriteResult> {
      try {
        live();
        const commit = (left: number): StoreWriteResult => ({
          version: withDeadline(left, () => writeTx.immediate(namespace, key, payload, options.journal, options.precondition)),
        });
        if (!owned && db.inTransaction) return outsideForWrite(options.deadlineMs, commit);
        return commit(options.deadlineMs);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    async delete(namespace, key, options: StoreWriteOptions) {
      live();
      return outsideForWrite(options.deadlineMs, (left) => withDeadline(left, () => deleteTx.immediate(namespace, key, options.journal, options.precondition)));
    },
    async appendJournal(namespace: string, key: string, version: Version, reason: JournalReason) {
      live();
      await outsideForWrite(2 * busyTimeoutMs, () => append.run(namespace, key, version, reason, Date.now()), 'run');
    },
    async readJournal(afterId, limit) {
      live();
      return outsideForRead(() => journalAfter.all(afterId, limit) as JournalEntry[]);
    },
    async journalHead() {
      live();
      return outsideForRead(() => head.get() as number);
    },
    async pruneJournal(beforeEpochMs, throughId = Number.MAX_SAFE_INTEGER) {
      live();
      return outsideForWrite(2 * busyTimeoutMs, () => pruneTx.immediate(beforeEpochMs, throughId));
    },
    async scan(namespace, afterKey, limit) {
      live();
      return outsideForRead(() => (afterKey === undefined ? scanFirst.all(namespace, limit) : scanAfter.all(namespace, afterKey, limit)) as StoreScanRow[]);
    },
    async ping() {
      live();
      ping.get();
    },
    async journalId() {
      live();
      // Drawn once, stored in the file: one journal, one cursor, wherever the file is opened from.
      return `sqlite:${journalName.get() as string}`;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (owned) db.close();
    },
  };
}
