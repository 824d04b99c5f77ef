// The entity-table statements of the Drizzle integration on PostgreSQL (drizzle-orm/node-postgres):
// ORM statements, run on the entity store's transaction client (a Drizzle instance per connection).
import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm';
import { toCamelCase, toSnakeCase } from 'drizzle-orm/casing';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import type { PostgresClient } from '../store/postgres.js';
import type { PostgresTableOps, StoredRow } from '../store/entity/table-ops.js';
import { fromDriverRow, toDriverRow, writableNames, type DrizzleColumns } from './drizzle-columns.js';

/** The `casing` option a Drizzle database was made with, read back from its dialect's casing cache. */
function casingOption(casing: unknown): 'snake_case' | 'camelCase' | undefined {
  const convert = (casing as { convert?: unknown } | undefined)?.convert;
  return convert === toSnakeCase ? 'snake_case' : convert === toCamelCase ? 'camelCase' : undefined;
}

/** `casing`: the user's database's dialect casing, so the statements name the columns as the user's queries do. */
export function drizzlePostgresTableOps(table: PgTable, columns: DrizzleColumns, casing?: unknown): PostgresTableOps<PostgresClient> {
  const { primaryKey: pk, versionKey } = columns;
  const version = columns.version as PgColumn;
  const instances = new WeakMap<PostgresClient, NodePgDatabase>();
  const on = (client: PostgresClient): NodePgDatabase => {
    let db = instances.get(client);
    if (db === undefined) instances.set(client, (db = drizzle({ client: client as unknown as pg.PoolClient, casing: casingOption(casing) })));
    return db;
  };
  const stored = (values: Record<string, unknown>): StoredRow => {
    const row = toDriverRow(columns, values);
    return { key: String(row[columns.spec.idColumn]), version: Number(values[versionKey] ?? 0), row };
  };
  const byId = (key: string, expected?: number) =>
    expected === undefined ? eq(pk, key) : and(eq(pk, key), sql`coalesce(${version}, 0) = ${expected}`);
  return {
    columns: writableNames(columns),
    async update(client, key, row, expected) {
      const { [columns.primaryKeyName]: _id, ...values } = fromDriverRow(columns, row);
      const [hit] = await on(client)
        .update(table)
        .set({ ...values, [versionKey]: sql`coalesce(${version}, 0) + 1` })
        .where(byId(key, expected))
        .returning({ version });
      return hit === undefined ? undefined : Number(hit.version);
    },
    async insert(client, row, v) {
      await on(client).insert(table).values({ ...fromDriverRow(columns, row), [versionKey]: v });
    },
    async remove(client, key) {
      const [hit] = await on(client).delete(table).where(eq(pk, key)).returning({ version });
      return hit === undefined ? undefined : Number(hit.version ?? 0);
    },
    async versionOf(client, key) {
      const [hit] = await on(client).select({ version }).from(table).where(eq(pk, key));
      return hit === undefined ? undefined : Number(hit.version ?? 0);
    },
    async selectMany(client, keys) {
      return ((await on(client).select().from(table).where(inArray(pk, [...keys]))) as Array<Record<string, unknown>>).map(stored);
    },
    async scan(client, afterKey, limit) {
      const query = on(client).select().from(table);
      const rows = afterKey === undefined ? await query.orderBy(asc(pk)).limit(limit) : await query.where(gt(pk, afterKey)).orderBy(asc(pk)).limit(limit);
      return (rows as Array<Record<string, unknown>>).map(stored);
    },
  };
}
