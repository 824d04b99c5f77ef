// A StoreAdapter over one of the user's own tables on SQLite: namespace = the entity name, key = the
// id, payload = the row as a JSON object (the version column left out: the store assigns it). Each
// write bumps the row's version column in the same statement; a delete records a tombstone so a
// re-created id continues above it; repair-journal rows are written in the same transaction. The
// journal, tombstones and the reading of the journal are the key/value store's (createSqliteStore on
// the same connection): one journal per database file.
import Database from 'better-sqlite3';
import { toMs, type Duration } from '../../duration.js';
import { ClosedError, InvalidOptionError, StoreReadError, StoreWriteError } from '../../errors.js';
import type { StoreDeleteResult, StoredValue, StorePrecondition, StoreWriteOptions, StoreWriteResult } from '../../types.js';
import { whenOutsideTransaction } from '../sqlite-outside-transaction.js';
import { createSqliteStore, type SqliteSynchronous } from '../sqlite.js';
import { checkPrecondition, expectedOf, refuseChangesWithoutRow } from './precondition.js';
import { createReadBatcher } from './read-batcher.js';
import { ENTITY_TABLES_SQL, installEntityTriggers, isUniqueColumn, tableColumns, WRITING_TABLE } from './sqlite-entity-schema.js';
import { createSqliteTableOps } from './sqlite-table.js';
import { checkNamespace, checkSpelling, notUnique, payloadOfRow, storedRow, resolveEntitySpec, writeOfPayload, type EntitySpec, type EntityStore, type EntityTableOptions } from './spec.js';

export type { EntityStore };
import type { SqliteTableOps } from './table-ops.js';

export interface SqliteEntityStoreOptions extends EntityTableOptions {
  /** The connection that holds the table (WAL mode and busy_timeout are set on it; close() leaves it open). */
  database: Database.Database;
  /**
   * Install the triggers that version and journal writes made to the table outside Lockstep (plain
   * SQL, other programs), so the journal drainer invalidates them. Idempotent. Without them such
   * writes are not seen by the cache until its TTL.
   * @default true
   */
  bypassTriggers?: boolean;
  /** As createSqliteStore's `busyTimeout`: shorter than the engine's lease. @default '2s' */
  busyTimeout?: Duration;
  /** As createSqliteStore's `synchronous`. @default 'FULL' */
  synchronous?: SqliteSynchronous;
}


/** An entity store on SQLite whose table statements are plain SQL. */
export function createSqliteEntityStore(options: SqliteEntityStoreOptions): EntityStore {
  const spec = resolveEntitySpec(options);
  if (!(options.database instanceof Database)) throw new InvalidOptionError('database must be a better-sqlite3 Database');
  return createSqliteEntityStoreWith(options, spec, createSqliteTableOps(options.database, spec));
}

/** The same over table ops of your own (the Drizzle integration runs ORM statements). */
export function createSqliteEntityStoreWith(
  options: Omit<SqliteEntityStoreOptions, keyof EntityTableOptions>,
  spec: EntitySpec,
  table: SqliteTableOps,
): EntityStore {
  const db = options.database;
  // Checked first: an ORM's table that was never created is a clear option error, not a raw SqliteError.
  if (tableColumns(db, spec.table).length === 0) throw new InvalidOptionError(`table ${JSON.stringify(spec.table)} does not exist`);
  if (!isUniqueColumn(db, spec.table, spec.idColumn)) throw notUnique(spec);
  // The key/value store on the same connection: schema (tombstones, journal), pragmas, journal reads.
  const kv = createSqliteStore({ database: db, busyTimeout: options.busyTimeout ?? '2s', synchronous: options.synchronous ?? 'FULL' });
  const busyTimeoutMs = toMs(options.busyTimeout ?? '2s', 'busyTimeout', { allowZero: true });
  db.exec(ENTITY_TABLES_SQL);
  if (options.bypassTriggers ?? true) {
    const { expressionIndexes } = installEntityTriggers(db, spec);
    // The one REPLACE the triggers cannot see (docs/orm.md): said once, at open.
    if (expressionIndexes.length > 0) {
      process.emitWarning(
        `table ${JSON.stringify(spec.table)} has unique indexes on expressions (${expressionIndexes.join(', ')}): a plain-SQL REPLACE that conflicts on one deletes a row that Lockstep neither tombstones nor journals (its cached copy is served until its TTL); see docs/orm.md`,
        'LockstepWarning',
      );
    }
  }

  const prepare = (sql: string) => db.prepare(sql).safeIntegers(false);
  const markOn = prepare(`INSERT INTO ${WRITING_TABLE} (entity, key) VALUES (?, ?)`);
  const markOff = prepare(`DELETE FROM ${WRITING_TABLE} WHERE entity = ? AND key = ?`);
  const tombstoneOf = prepare('SELECT version FROM lockstep_tombstones WHERE namespace = ? AND key = ?').pluck();
  const unbury = prepare('DELETE FROM lockstep_tombstones WHERE namespace = ? AND key = ?');
  const bury = prepare(
    `INSERT INTO lockstep_tombstones (namespace, key, version, deleted_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (namespace, key) DO UPDATE SET version = max(lockstep_tombstones.version + 1, excluded.version), deleted_at = excluded.deleted_at
     RETURNING version`,
  ).pluck();
  const append = prepare("INSERT INTO lockstep_journal (namespace, key, version, reason, created_at) VALUES (?, ?, ?, 'repair', ?)");
  const { entity } = spec;

  /**
   * Runs `work` with the bypass mark of the row `key` held: the table's triggers stand aside for
   * Lockstep's own change of that row, and only of that row (a cascade or an application trigger that
   * changes other rows is versioned and journaled).
   */
  const marked = <R>(key: string, work: () => R): R => {
    markOn.run(entity, key);
    const result = work();
    markOff.run(entity, key);
    return result;
  };
  /** The row as the table holds it now (its types, generated columns, the application's triggers): what the cache publishes. */
  const storedPayload = (key: string): string => payloadOfRow(spec, storedRow(spec, key, table.selectMany([key])[0]).row);
  const writeTx = db.transaction((key: string, payload: string, precondition: StorePrecondition | undefined, journal: boolean): StoreWriteResult =>
    marked(key, () => {
      // A whole row, or (an ORM update) only the columns it changes: the others are left as the table holds them.
      const { row, changesOnly } = writeOfPayload(spec, table.columns, key, payload);
      let version = table.update(key, row, expectedOf(precondition));
      // Some columns are no row to insert: no row to change (or a guard refused) is the precondition's failure.
      if (version === undefined && changesOnly) refuseChangesWithoutRow(precondition, table.versionOf(key), entity, key);
      if (version === undefined) {
        // Nothing updated: either no row (create it, unless the caller wanted one) or a guard refused.
        if (precondition !== undefined) checkPrecondition(precondition, table.versionOf(key), entity, key);
        const tombstone = tombstoneOf.get(entity, key) as number | undefined;
        version = (tombstone ?? 0) + 1;
        table.insert(row, version);
        if (tombstone !== undefined) unbury.run(entity, key);
      }
      if (journal) append.run(entity, key, version, Date.now());
      return { version, payload: storedPayload(key) };
    }),
  );
  const deleteTx = db.transaction((key: string, precondition: StorePrecondition | undefined, journal: boolean): StoreDeleteResult =>
    marked(key, () => {
      if (precondition !== undefined) checkPrecondition(precondition, table.versionOf(key), entity, key);
      checkSpelling(spec, key, table.selectMany([key])[0]);
      const old = table.remove(key);
      const version = bury.get(entity, key, (old ?? 0) + 1, Date.now()) as number;
      if (journal) append.run(entity, key, version, Date.now());
      return { version, existed: old !== undefined };
    }),
  );

  /** A deadline shorter than the busy timeout caps this write's lock wait (as the key/value store does). */
  function withDeadline<T>(deadlineMs: number, run: () => T): T {
    if (!(deadlineMs < busyTimeoutMs)) return run();
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(deadlineMs))}`);
    try {
      return run();
    } finally {
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    }
  }

  /** Runs `run` once the shared connection is outside the application's transactions (sqlite-outside-transaction.ts). */
  /** A read runs however late the wait ends; a (lease-bound) write is refused then. */
  const outside = <T>(waitMs: number, refuse: typeof StoreReadError | typeof StoreWriteError, run: (waitedMs: number) => T): Promise<T> =>
    whenOutsideTransaction(db, waitMs, refuse === StoreWriteError ? 'refuse' : 'run', () => new refuse(`the connection of ${spec.table} is inside a transaction Lockstep did not open: call Lockstep outside it`, { namespace: entity }), run);

  let closed = false;
  const live = (namespace?: string) => {
    if (closed) throw new ClosedError(`the entity store of ${spec.table} was closed`);
    if (namespace !== undefined) checkNamespace(spec, namespace);
  };
  const batcher = createReadBatcher<StoredValue>((keys) =>
    outside(busyTimeoutMs, StoreReadError, () => {
      const found = new Map<string, StoredValue>();
      for (const { key, version, row } of table.selectMany(keys)) found.set(key, { version, payload: payloadOfRow(spec, row) });
      return found;
    }),
  );

  return {
    name: `sqlite-entity(${spec.table})`,
    spec,
    updatesColumns: true,
    get readBatches() {
      return batcher.batches;
    },
    async read(namespace, key) {
      live(namespace);
      return batcher.load(key);
    },
    async write(namespace, key, payload, options: StoreWriteOptions) {
      live(namespace);
      const wait = Math.min(options.deadlineMs / 2, busyTimeoutMs);
      return outside(wait, StoreWriteError, (waited) => withDeadline(options.deadlineMs - waited, () => writeTx.immediate(key, payload, options.precondition, options.journal)));
    },
    async delete(namespace, key, options: StoreWriteOptions) {
      live(namespace);
      const wait = Math.min(options.deadlineMs / 2, busyTimeoutMs);
      return outside(wait, StoreWriteError, (waited) => withDeadline(options.deadlineMs - waited, () => deleteTx.immediate(key, options.precondition, options.journal)));
    },
    async scan(namespace, afterKey, limit) {
      live(namespace);
      const rows = await outside(busyTimeoutMs, StoreReadError, () => table.scan(afterKey, limit));
      return rows.map(({ key, version, row }) => ({ key, version, payload: payloadOfRow(spec, row) }));
    },
    // The key/value store on the same connection runs its journal statements outside the application's transactions itself.
    appendJournal: (namespace, key, version, reason) => (live(), kv.appendJournal(namespace, key, version, reason)),
    readJournal: (afterId, limit) => (live(), kv.readJournal(afterId, limit)),
    journalHead: () => (live(), kv.journalHead()),
    pruneJournal: (before, throughId) => (live(), kv.pruneJournal(before, throughId)),
    journalId: () => (live(), kv.journalId()),
    ping: () => (live(), kv.ping()),
    async close() {
      closed = true;
      await kv.close();
    },
  };
}
