// The plain-SQL statements of an entity table on PostgreSQL (the repository's table ops). Ids are
// sent as text and cast by the server to the id column's type.
import { InvalidOptionError } from '../../errors.js';
import type { PostgresClient, PostgresPool } from '../postgres.js';
import { checkoutWithin } from '../postgres-checkout.js';
import { quoteIdentifier } from '../postgres-schema.js';
import { CATALOG_WAIT_MS } from './postgres-entity-schema.js';
import type { EntityRow, EntitySpec } from './spec.js';
import type { PostgresTableOps, StoredRow } from './table-ops.js';

/** The table's columns, in order; checks that the id and version columns exist. A server that does not answer within `waitMs` fails it. */
export async function postgresTableColumns(pool: PostgresPool, schema: string, spec: EntitySpec, waitMs = CATALOG_WAIT_MS): Promise<string[]> {
  const client = await checkoutWithin(pool, waitMs);
  let rows: Array<Record<string, unknown>>;
  try {
    ({ rows } = await client.query({
      text: 'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position',
      values: [schema, spec.table],
    }));
  } finally {
    client.release();
  }
  const all = rows.map((r) => r.column_name as string);
  if (all.length === 0) throw new InvalidOptionError(`table ${schema}.${spec.table} does not exist`);
  for (const [option, column] of [['idColumn', spec.idColumn], ['versionColumn', spec.versionColumn]] as const) {
    if (!all.includes(column)) {
      const hint = option === 'versionColumn' ? ' (addVersionColumn adds one)' : '';
      throw new InvalidOptionError(`${option}: table ${schema}.${spec.table} has no column ${JSON.stringify(column)}${hint}`);
    }
  }
  return all;
}

export function createPostgresTableOps(schema: string, spec: EntitySpec, allColumns: readonly string[]): PostgresTableOps<PostgresClient> {
  const q = quoteIdentifier;
  const t = `${q(schema)}.${q(spec.table)}`;
  const id = q(spec.idColumn);
  const v = q(spec.versionColumn);
  const columns = new Set(allColumns.filter((c) => c !== spec.versionColumn));
  const toStored = (raw: Record<string, unknown>): StoredRow => {
    const { [spec.versionColumn]: version, ...row } = raw;
    return { key: String(raw[spec.idColumn]), version: Number(version ?? 0), row };
  };
  const rows = async (on: PostgresClient, text: string, values: unknown[]) => (await on.query({ text, values })).rows;
  return {
    columns,
    async update(on, key, row, expected) {
      const names = Object.keys(row).filter((c) => c !== spec.idColumn);
      const sets = [...names.map((c, i) => `${q(c)} = $${i + 2}`), `${v} = coalesce(${v}, 0) + 1`].join(', ');
      const guard = expected === undefined ? '' : ` AND coalesce(${v}, 0) = $${names.length + 2}`;
      const values = [key, ...names.map((c) => row[c]), ...(expected === undefined ? [] : [expected])];
      const [hit] = await rows(on, `UPDATE ${t} SET ${sets} WHERE ${id} = $1${guard} RETURNING ${v} AS version`, values);
      return hit === undefined ? undefined : Number(hit.version);
    },
    async insert(on, row, version) {
      const names = Object.keys(row);
      const list = [...names, spec.versionColumn].map(q).join(', ');
      const params = [...names, spec.versionColumn].map((_, i) => `$${i + 1}`).join(', ');
      await rows(on, `INSERT INTO ${t} (${list}) VALUES (${params})`, [...names.map((c) => row[c]), version]);
    },
    async remove(on, key) {
      const [hit] = await rows(on, `DELETE FROM ${t} WHERE ${id} = $1 RETURNING coalesce(${v}, 0) AS version`, [key]);
      return hit === undefined ? undefined : Number(hit.version);
    },
    async versionOf(on, key, options) {
      const lock = options?.lock === true ? ' FOR UPDATE' : '';
      const [hit] = await rows(on, `SELECT coalesce(${v}, 0) AS version FROM ${t} WHERE ${id} = $1${lock}`, [key]);
      return hit === undefined ? undefined : Number(hit.version);
    },
    async selectMany(on, keys) {
      // The array parameter takes the id column's array type from the comparison.
      return (await rows(on, `SELECT * FROM ${t} WHERE ${id} = ANY($1)`, [keys])).map(toStored);
    },
    async scan(on, afterKey, limit) {
      const found =
        afterKey === undefined
          ? await rows(on, `SELECT * FROM ${t} ORDER BY ${id} LIMIT $1`, [limit])
          : await rows(on, `SELECT * FROM ${t} WHERE ${id} > $1 ORDER BY ${id} LIMIT $2`, [afterKey, limit]);
      return found.map(toStored);
    },
  };
}

export type { EntityRow };
