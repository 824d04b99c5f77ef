// The plain-SQL statements of an entity table on better-sqlite3 (the repository's table ops).
// Statements are prepared once per set of columns written (an update of some columns writes a set of
// its own: at most PREPARED_LIMIT are kept).
import type Database from 'better-sqlite3';
import { InvalidOptionError } from '../../errors.js';
import { tableColumns } from './sqlite-entity-schema.js';
import type { EntityRow, EntitySpec } from './spec.js';
import type { SqliteTableOps, StoredRow } from './table-ops.js';

const q = (name: string) => `"${name}"`;

/** Prepared statements kept, by column set; past it they are prepared again (a bounded map, whatever sets of columns updates name). */
const PREPARED_LIMIT = 256;

export function createSqliteTableOps(db: Database.Database, spec: EntitySpec): SqliteTableOps {
  const all = tableColumns(db, spec.table);
  if (all.length === 0) throw new InvalidOptionError(`table ${JSON.stringify(spec.table)} does not exist`);
  for (const [option, column] of [['idColumn', spec.idColumn], ['versionColumn', spec.versionColumn]] as const) {
    if (!all.includes(column)) {
      const hint = option === 'versionColumn' ? ' (addVersionColumn adds one)' : '';
      throw new InvalidOptionError(`${option}: table ${spec.table} has no column ${JSON.stringify(column)}${hint}`);
    }
  }
  const columns = new Set(all.filter((c) => c !== spec.versionColumn));
  const t = q(spec.table);
  const id = q(spec.idColumn);
  const v = q(spec.versionColumn);
  const prepare = (sql: string) => db.prepare(sql).safeIntegers(false);
  const cached = new Map<string, Database.Statement>();
  const once = (key: string, sql: () => string) => {
    let statement = cached.get(key);
    if (statement === undefined) {
      if (cached.size >= PREPARED_LIMIT) cached.clear();
      cached.set(key, (statement = prepare(sql())));
    }
    return statement;
  };
  const toStored = (raw: Record<string, unknown>): StoredRow => {
    const { [spec.versionColumn]: version, ...row } = raw;
    return { key: String(raw[spec.idColumn]), version: Number(version ?? 0), row };
  };
  const remove = prepare(`DELETE FROM ${t} WHERE ${id} = ? RETURNING coalesce(${v}, 0)`).pluck();
  const versionOf = prepare(`SELECT coalesce(${v}, 0) FROM ${t} WHERE ${id} = ?`).pluck();
  const scanFirst = prepare(`SELECT * FROM ${t} ORDER BY ${id} LIMIT ?`);
  const scanAfter = prepare(`SELECT * FROM ${t} WHERE ${id} > ? ORDER BY ${id} LIMIT ?`);

  return {
    columns,
    update(key, row, expected) {
      const names = Object.keys(row).filter((c) => c !== spec.idColumn);
      const sets = [...names.map((c) => `${q(c)} = ?`), `${v} = coalesce(${v}, 0) + 1`].join(', ');
      const guard = expected === undefined ? '' : ` AND coalesce(${v}, 0) = ?`;
      const statement = once(`u${guard ? '?' : ''}:${names.join(',')}`, () => `UPDATE ${t} SET ${sets} WHERE ${id} = ?${guard} RETURNING ${v}`);
      const values = [...names.map((c) => row[c]), key, ...(expected === undefined ? [] : [expected])];
      return statement.pluck().get(...values) as number | undefined;
    },
    insert(row, version) {
      const names = Object.keys(row);
      const statement = once(
        `i:${names.join(',')}`,
        () => `INSERT INTO ${t} (${[...names, spec.versionColumn].map(q).join(', ')}) VALUES (${names.map(() => '?').join(', ')}, ?)`,
      );
      statement.run(...names.map((c) => row[c]), version);
    },
    remove(key) {
      return remove.get(key) as number | undefined;
    },
    versionOf(key) {
      return versionOf.get(key) as number | undefined;
    },
    selectMany(keys) {
      const statement = once(`s:${keys.length}`, () => `SELECT * FROM ${t} WHERE ${id} IN (${keys.map(() => '?').join(', ')})`);
      return (statement.all(...keys) as Array<Record<string, unknown>>).map(toStored);
    },
    scan(afterKey, limit) {
      const rows = afterKey === undefined ? scanFirst.all(limit) : scanAfter.all(afterKey, limit);
      return (rows as Array<Record<string, unknown>>).map(toStored);
    },
  };
}

export type { EntityRow };
