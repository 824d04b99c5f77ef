// Rows of OTHER ids that SQLite's REPLACE conflict resolution deletes. `INSERT OR REPLACE`,
// `UPDATE OR REPLACE`, an upsert-free plain INSERT into a table whose UNIQUE constraint is declared
// `ON CONFLICT REPLACE` (Lockstep's own writes included), or an explicit rowid that is already taken
// delete the row that holds the conflicting value without firing DELETE triggers (unless the writer
// set recursive_triggers): nothing would tombstone or journal that row, and the cache would keep
// serving it. So, per other unique key of the table (read from PRAGMA index_list / index_xinfo when
// the triggers are installed, re-derived on every open), a BEFORE trigger notes the ids of rows that
// hold NEW's values, and an AFTER trigger tombstones and journals the noted ones that are gone.
// A candidate that still exists afterwards (INSERT OR IGNORE, a partial index the row was outside)
// is left alone, so noting too many is harmless; only noting too few would be a hole.
import type Database from 'better-sqlite3';

/**
 * The scratch table: candidates noted for the row being written (`by_key`, its id as text), cleared
 * before and after that row only. Per row, not per entity: a statement that a write sets off on the
 * same table before its AFTER trigger runs (a foreign key's SET NULL on a child row that REPLACE's
 * delete caused, an application trigger) must not clear the notes of the row that caused it.
 */
export const REPLACED_TABLE = 'lockstep_entity_replaced_rows';
/** `id` keeps the id's own value (no affinity), so the check that the row is gone uses the table's index. */
export const REPLACED_TABLE_SQL = `CREATE TABLE IF NOT EXISTS ${REPLACED_TABLE} (entity TEXT NOT NULL, by_key TEXT NOT NULL, key TEXT NOT NULL, id, version INTEGER NOT NULL, PRIMARY KEY (entity, by_key, key)) WITHOUT ROWID`;

/** One unique key a REPLACE can resolve: its columns and the collation each compares with. */
export interface UniqueKey {
  readonly columns: ReadonlyArray<{ readonly name: string; readonly collation: string }>;
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * The unique keys of `table` other than the id: every unique index (partial ones too) that does not
 * contain the id column, and the rowid of a rowid table whose id is not its rowid. Unique indexes on
 * expressions are returned in `expressions` by name: their conflicts cannot be looked up by column.
 */
export function otherUniqueKeys(db: Database.Database, table: string, idColumn: string): { keys: UniqueKey[]; expressions: string[] } {
  const keys: UniqueKey[] = [];
  const expressions: string[] = [];
  const indexes = db.pragma(`index_list(${quote(table)})`) as Array<{ name: string; unique: number }>;
  for (const index of indexes) {
    if (index.unique !== 1) continue;
    const info = (db.pragma(`index_xinfo(${quote(index.name)})`) as Array<{ name: string | null; key: number; coll: string | null }>).filter((c) => c.key === 1);
    if (info.some((c) => c.name === idColumn)) continue; // a row of another id never conflicts on it
    if (info.some((c) => c.name === null)) {
      expressions.push(index.name);
      continue;
    }
    keys.push({ columns: info.map((c) => ({ name: c.name!, collation: c.coll ?? 'BINARY' })) });
  }
  const list = db.pragma(`table_list(${quote(table)})`) as Array<{ name: string; wr: number }>;
  const withoutRowid = list.some((t) => t.name === table && t.wr === 1);
  const pk = (db.pragma(`table_info(${quote(table)})`) as Array<{ name: string; type: string; pk: number }>).filter((c) => c.pk > 0);
  const idIsRowid = pk.length === 1 && pk[0]!.name === idColumn && pk[0]!.type.toUpperCase() === 'INTEGER';
  if (!withoutRowid && !idIsRowid) keys.push({ columns: [{ name: 'rowid', collation: 'BINARY' }] });
  return { keys, expressions };
}

/**
 * The trigger bodies that note and bury replaced rows of one entity table, as [name suffix, DDL
 * after `CREATE TRIGGER <name>`]. None when the table has no other unique key.
 */
export function replacedRowTriggers(
  keys: readonly UniqueKey[],
  names: { table: string; entity: string; id: string; version: string; nowMs: string },
): Array<[string, string]> {
  if (keys.length === 0) return [];
  const { table, entity, id, version, nowMs } = names;
  const t = quote(table);
  const i = quote(id);
  const v = quote(version);
  const mine = (r: string) => `${r}.entity = '${entity}' AND ${r}.by_key = CAST(NEW.${i} AS TEXT)`;
  const clear = `DELETE FROM ${REPLACED_TABLE} WHERE ${mine(REPLACED_TABLE)};`;
  const note = (row: 'insert' | 'update') =>
    keys
      .map((key) => {
        const same = key.columns.map((c) => `${quote(c.name)} = NEW.${quote(c.name)} COLLATE ${quote(c.collation)}`).join(' AND ');
        const notSelf = row === 'update' ? ` AND ${i} IS NOT OLD.${i}` : '';
        return `INSERT OR IGNORE INTO ${REPLACED_TABLE} (entity, by_key, key, id, version)
    SELECT '${entity}', CAST(NEW.${i} AS TEXT), CAST(${i} AS TEXT), ${i}, coalesce(${v}, 0) FROM ${t} WHERE ${same} AND ${i} IS NOT NEW.${i}${notSelf};`;
      })
      .join('\n  ');
  // By the id's own value (its index), not its text.
  const gone = (r: string) => `${mine(r)} AND NOT EXISTS (SELECT 1 FROM ${t} WHERE ${i} = ${r}.id)`;
  const tomb = `(SELECT ts.version FROM lockstep_tombstones ts WHERE ts.namespace = '${entity}' AND ts.key = ${REPLACED_TABLE}.key)`;
  const bury = `INSERT INTO lockstep_tombstones (namespace, key, version, deleted_at)
    SELECT '${entity}', key, 1 + max(version, coalesce(${tomb}, 0)), ${nowMs} FROM ${REPLACED_TABLE} WHERE ${gone(REPLACED_TABLE)}
    ON CONFLICT (namespace, key) DO UPDATE SET version = excluded.version, deleted_at = excluded.deleted_at;
  INSERT INTO lockstep_journal (namespace, key, version, reason, created_at)
    SELECT '${entity}', r.key, ts.version, 'trigger', ${nowMs} FROM ${REPLACED_TABLE} r
    JOIN lockstep_tombstones ts ON ts.namespace = '${entity}' AND ts.key = r.key
    WHERE ${gone('r')};
  ${clear}`;
  // An UPDATE runs them only when a unique column changed (byte-wise: any collation's change is one),
  // so the bypass triggers' own version fix-up (which sets the version alone) does not clear the notes.
  const changed = keys
    .flatMap((key) => key.columns)
    .map((c) => `NEW.${quote(c.name)} IS NOT OLD.${quote(c.name)} COLLATE BINARY`)
    .join(' OR ');
  return [
    ['replaced_note_insert', `BEFORE INSERT ON ${t}\nBEGIN\n  ${clear}\n  ${note('insert')}\nEND`],
    ['replaced_note_update', `BEFORE UPDATE ON ${t} WHEN ${changed}\nBEGIN\n  ${clear}\n  ${note('update')}\nEND`],
    ['replaced_bury_insert', `AFTER INSERT ON ${t}\nBEGIN\n  ${bury}\nEND`],
    ['replaced_bury_update', `AFTER UPDATE ON ${t} WHEN ${changed}\nBEGIN\n  ${bury}\nEND`],
  ];
}
