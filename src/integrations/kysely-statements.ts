// The entity-table statements of the Kysely integration: each built and compiled by the user's own
// Kysely instance (its dialect's SQL, identifier quoting and parameters, and its query-transforming
// plugins), run by compiled-table-ops.ts on the entity store's connection.
import { sql, type Kysely } from 'kysely';
import type { EntitySpec } from '../store/entity/spec.js';
import type { StoredRow } from '../store/entity/table-ops.js';
import { reviveBinaryColumns } from './binary-values.js';
import type { TableStatements } from './compiled-table-ops.js';

/**
 * `isBinary`: the columns whose values may be Buffers kept as JSON by the payload (bytea; every column
 * on SQLite). `isJson`: PostgreSQL json/jsonb columns, whose array values are sent as JSON text (pg would
 * send them as PostgreSQL arrays). `resultTypes`: pg's type parsers of the results.
 */
export function kyselyStatements(
  kysely: Kysely<any>,
  spec: EntitySpec,
  columns: ReadonlySet<string>,
  schema: string | undefined,
  isBinary: (column: string) => boolean = () => false,
  isJson: (column: string) => boolean = () => false,
  resultTypes?: TableStatements['resultTypes'],
): TableStatements {
  const db = schema === undefined ? kysely : kysely.withSchema(schema);
  /** A row's values as they are bound: Buffers again, JSON arrays as JSON text. */
  const bound = (row: Record<string, unknown>) => {
    const out = reviveBinaryColumns(row, isBinary);
    let json: Record<string, unknown> | undefined;
    for (const [column, value] of Object.entries(out)) {
      // pg sends an object as its JSON, but an array as a PostgreSQL array; a string stays JSON text (as Kysely's own insert takes it).
      if (!Array.isArray(value) || !isJson(column)) continue;
      json ??= { ...out };
      json[column] = JSON.stringify(value);
    }
    return json ?? out;
  };
  const { table, idColumn: id, versionColumn: v } = spec;
  const version = sql<number>`coalesce(${sql.ref(v)}, 0)`;
  return {
    columns,
    ...(resultTypes === undefined ? {} : { resultTypes }),
    update(key, row, expected) {
      const { [id]: _id, ...values } = bound(row);
      let query = db
        .updateTable(table)
        .set({ ...values, [v]: sql`${version} + 1` })
        .where(id, '=', key);
      if (expected !== undefined) query = query.where(version, '=', expected);
      return query.returning(version.as('version')).compile();
    },
    insert: (row, v0) => db.insertInto(table).values({ ...bound(row), [v]: v0 }).compile(),
    remove: (key) => db.deleteFrom(table).where(id, '=', key).returning(version.as('version')).compile(),
    versionOf(key, lock) {
      const query = db.selectFrom(table).select(version.as('version')).where(id, '=', key);
      return (lock ? query.forUpdate() : query).compile();
    },
    selectMany: (keys) => db.selectFrom(table).selectAll().where(id, 'in', [...keys]).compile(),
    scan(afterKey, limit) {
      const query = db.selectFrom(table).selectAll();
      return (afterKey === undefined ? query : query.where(id, '>', afterKey)).orderBy(id).limit(limit).compile();
    },
    toStored(raw): StoredRow {
      const { [v]: rowVersion, ...row } = raw;
      return { key: String(raw[id]), version: Number(rowVersion ?? 0), row };
    },
  };
}
