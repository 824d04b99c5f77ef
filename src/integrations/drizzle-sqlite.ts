// The entity-table statements of the Drizzle integration on SQLite (drizzle-orm/better-sqlite3):
// ORM statements, run on the same connection inside the entity store's transaction.
import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import type { SQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { SqliteTableOps, StoredRow } from '../store/entity/table-ops.js';
import { fromDriverRow, toDriverRow, writableNames, type DrizzleColumns } from './drizzle-columns.js';

type Db = BetterSQLite3Database<Record<string, unknown>>;

export function drizzleSqliteTableOps(db: Db, table: SQLiteTable, columns: DrizzleColumns): SqliteTableOps {
  const { primaryKey: pk, versionKey } = columns;
  const version = columns.version as SQLiteColumn;
  const stored = (values: Record<string, unknown>): StoredRow => {
    const row = toDriverRow(columns, values);
    return { key: String(row[columns.spec.idColumn]), version: Number(values[versionKey] ?? 0), row };
  };
  const byId = (key: string, expected?: number) =>
    expected === undefined ? eq(pk, key) : and(eq(pk, key), sql`coalesce(${version}, 0) = ${expected}`);
  return {
    columns: writableNames(columns),
    update(key, row, expected) {
      const { [columns.primaryKeyName]: _id, ...values } = fromDriverRow(columns, row);
      const hit = db
        .update(table)
        .set({ ...values, [versionKey]: sql`coalesce(${version}, 0) + 1` })
        .where(byId(key, expected))
        .returning({ version })
        .get() as { version: number } | undefined;
      return hit?.version;
    },
    insert(row, v) {
      db.insert(table).values({ ...fromDriverRow(columns, row), [versionKey]: v }).run();
    },
    remove(key) {
      const hit = db.delete(table).where(eq(pk, key)).returning({ version }).get() as { version: number | null } | undefined;
      return hit === undefined ? undefined : (hit.version ?? 0);
    },
    versionOf(key) {
      const hit = db.select({ version }).from(table).where(eq(pk, key)).get() as { version: number | null } | undefined;
      return hit === undefined ? undefined : (hit.version ?? 0);
    },
    selectMany(keys) {
      return (db.select().from(table).where(inArray(pk, [...keys])).all() as Array<Record<string, unknown>>).map(stored);
    },
    scan(afterKey, limit) {
      const query = db.select().from(table);
      const rows = afterKey === undefined ? query.orderBy(asc(pk)).limit(limit).all() : query.where(gt(pk, afterKey)).orderBy(asc(pk)).limit(limit).all();
      return (rows as Array<Record<string, unknown>>).map(stored);
    },
  };
}
