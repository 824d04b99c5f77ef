// The entity-table statements of an ORM integration whose builder compiles SQL without running it
// (Kysely's compile(), TypeORM's getQueryAndParameters()): the ORM writes each statement, and this
// file runs it on the entity store's own connection inside its transaction (SQLite: synchronously,
// inside better-sqlite3's transaction; PostgreSQL: on the transaction's client), so the ORM's own
// connection handling never splits a write from its version bump, tombstone and journal row.
import type Database from 'better-sqlite3';
import type { PostgresClient, PostgresQueryConfig } from '../store/postgres.js';
import type { EntityRow } from '../store/entity/spec.js';
import type { PostgresTableOps, SqliteTableOps, StoredRow } from '../store/entity/table-ops.js';

export interface CompiledStatement {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

/** The statements, as the ORM compiles them for its dialect. Versions are read from a column named `version`. */
export interface TableStatements {
  /** Columns a write may set (database names, the version column left out). */
  readonly columns: ReadonlySet<string>;
  /**
   * UPDATE … SET row, version = coalesce(version, 0) + 1 WHERE id = key [AND coalesce(version, 0) = expected],
   * with `RETURNING version AS "version"` where the ORM can say it (required on PostgreSQL).
   */
  update(key: string, row: EntityRow, expected: number | undefined): CompiledStatement;
  insert(row: EntityRow, version: number): CompiledStatement;
  /** DELETE … WHERE id = key, with RETURNING coalesce(version, 0) AS "version" where the ORM can (required on PostgreSQL). */
  remove(key: string): CompiledStatement;
  /** SELECT coalesce(version, 0) AS "version" … WHERE id = key [FOR UPDATE]. */
  versionOf(key: string, lock: boolean): CompiledStatement;
  selectMany(keys: readonly string[]): CompiledStatement;
  /** Rows in id order after `afterKey` (exclusive), at most `limit`. */
  scan(afterKey: string | undefined, limit: number): CompiledStatement;
  /** A row as the driver returned it → the stored row (version split off, JSON-ready values). */
  toStored(raw: Record<string, unknown>): StoredRow;
  /**
   * PostgreSQL: the type parsers of every statement's results on a connection (pg's `types`), when not
   * the connection's own; made from that connection's, so parsers it was given (setTypeParser) still apply.
   */
  readonly resultTypes?: (on: PostgresClient) => PostgresQueryConfig['types'];
}

const versionIn = (row: Record<string, unknown> | undefined) => (row === undefined ? undefined : Number(row.version ?? 0));

/** Prepared statements, by SQL text; a bounded set (an ORM compiles one text per set of columns written). */
const PREPARED_LIMIT = 256;

export function compiledSqliteOps(db: Database.Database, statements: TableStatements): SqliteTableOps {
  const prepared = new Map<string, Database.Statement>();
  const prepare = (sql: string) => {
    let statement = prepared.get(sql);
    if (statement === undefined) {
      if (prepared.size >= PREPARED_LIMIT) prepared.clear();
      prepared.set(sql, (statement = db.prepare(sql).safeIntegers(false)));
    }
    return statement;
  };
  // better-sqlite3 binds numbers, strings, bigints, buffers and null; the ORM's builders pass booleans as they are.
  const bind = (parameters: readonly unknown[]) => parameters.map((p) => (typeof p === 'boolean' ? Number(p) : p));
  const all = (c: CompiledStatement) => prepare(c.sql).all(...bind(c.parameters)) as Array<Record<string, unknown>>;
  const versionOf = (key: string) => versionIn(all(statements.versionOf(key, false))[0]);
  return {
    columns: statements.columns,
    update(key, row, expected) {
      const c = statements.update(key, row, expected);
      const statement = prepare(c.sql);
      if (statement.reader) return versionIn(statement.get(...bind(c.parameters)) as Record<string, unknown> | undefined);
      // No RETURNING: one writer at a time inside this transaction, so the row's version now is ours.
      return statement.run(...bind(c.parameters)).changes === 0 ? undefined : versionOf(key);
    },
    insert(row, version) {
      const c = statements.insert(row, version);
      prepare(c.sql).run(...bind(c.parameters));
    },
    remove(key) {
      const c = statements.remove(key);
      const statement = prepare(c.sql);
      if (statement.reader) return versionIn(statement.get(...bind(c.parameters)) as Record<string, unknown> | undefined);
      const old = versionOf(key);
      if (old !== undefined) statement.run(...bind(c.parameters));
      return old;
    },
    versionOf,
    selectMany: (keys) => all(statements.selectMany(keys)).map(statements.toStored),
    scan: (afterKey, limit) => all(statements.scan(afterKey, limit)).map(statements.toStored),
  };
}

export function compiledPostgresOps(statements: TableStatements): PostgresTableOps<PostgresClient> {
  const { resultTypes } = statements;
  const rows = async (on: PostgresClient, c: CompiledStatement) =>
    (await on.query(resultTypes === undefined ? { text: c.sql, values: [...c.parameters] } : { text: c.sql, values: [...c.parameters], types: resultTypes(on) })).rows;
  return {
    columns: statements.columns,
    update: async (on, key, row, expected) => versionIn((await rows(on, statements.update(key, row, expected)))[0]),
    async insert(on, row, version) {
      await rows(on, statements.insert(row, version));
    },
    remove: async (on, key) => versionIn((await rows(on, statements.remove(key)))[0]),
    versionOf: async (on, key, options) => versionIn((await rows(on, statements.versionOf(key, options?.lock === true)))[0]),
    selectMany: async (on, keys) => (await rows(on, statements.selectMany(keys))).map(statements.toStored),
    scan: async (on, afterKey, limit) => (await rows(on, statements.scan(afterKey, limit))).map(statements.toStored),
  };
}
