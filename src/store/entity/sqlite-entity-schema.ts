// SQLite DDL for an entity table: the migration helper that adds a version column, and the triggers
// that version and journal writes to the table made outside Lockstep (plain SQL, other programs).
// They reuse the key/value store's lockstep_tombstones and lockstep_journal tables (namespace = the
// entity name, key = the id as text), so one journal and one drainer cover a whole database.
//
// How the triggers tell Lockstep's writes from others: Lockstep's write transaction inserts a row in
// lockstep_entity_writing first and deletes it before commit. SQLite runs one writer at a time, so
// while that row exists (only inside such a transaction) every statement is Lockstep's; a trigger
// whose WHEN finds the table empty is looking at someone else's write. The triggers' own fix-up
// UPDATE sets the mark too, so it fires no trigger with or without recursive_triggers.
//
// Bypass writes get: INSERT → max(its version, 1 + tombstone); UPDATE → max(its version, old + 1)
// (a rename: above the new id's tombstone too, and the old id is tombstoned); DELETE → a tombstone at
// 1 + max(row, tombstone). INSERT OR REPLACE removes the old row without DELETE triggers, so a BEFORE
// trigger keeps its version as the id's tombstone first (as sqlite-schema.ts does for lockstep_kv).
import type Database from 'better-sqlite3';
import { InvalidOptionError } from '../../errors.js';
import { identifier, type EntitySpec } from './spec.js';

const NOW_MS = `CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)`;
export const WRITING_TABLE = 'lockstep_entity_writing';
const q = (name: string) => `"${name}"`;

/** The columns of a table, or an empty list when it does not exist. */
export function tableColumns(db: Database.Database, table: string): string[] {
  return (db.pragma(`table_info(${q(identifier(table, 'table'))})`) as Array<{ name: string }>).map((c) => c.name);
}

/**
 * Whether `column` alone identifies a row: the table's single-column primary key, or a unique index
 * (not partial) on that column alone. An id that is one column of a composite key would make one
 * read, write or delete by id reach several rows.
 */
export function isUniqueColumn(db: Database.Database, table: string, column: string): boolean {
  const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
  const key = (db.pragma(`table_info(${quote(table)})`) as Array<{ name: string; pk: number }>).filter((c) => c.pk > 0);
  if (key.length === 1 && key[0]!.name === column) return true;
  const indexes = db.pragma(`index_list(${quote(table)})`) as Array<{ name: string; unique: number; partial: number }>;
  return indexes.some((index) => {
    if (index.unique !== 1 || index.partial !== 0) return false;
    const columns = db.pragma(`index_info(${quote(index.name)})`) as Array<{ name: string | null }>;
    return columns.length === 1 && columns[0]!.name === column;
  });
}

/**
 * Adds an integer version column (default 1: every existing row counts as written once) unless the
 * table already has it. Idempotent: run it from a migration or at start-up.
 * @returns whether the column was added.
 */
export function addVersionColumn(db: Database.Database, table: string, column = 'version'): boolean {
  identifier(column, 'column');
  return db.transaction(() => {
    const columns = tableColumns(db, table);
    if (columns.length === 0) throw new InvalidOptionError(`table ${JSON.stringify(table)} does not exist`);
    if (columns.includes(column)) return false;
    db.exec(`ALTER TABLE ${q(table)} ADD COLUMN ${q(column)} INTEGER NOT NULL DEFAULT 1`);
    return true;
  }).immediate();
}

/** The trigger DDL of one entity table (idempotent: CREATE … IF NOT EXISTS). */
export function sqliteEntityTriggersSql(spec: EntitySpec): string {
  const { table, idColumn, versionColumn, entity } = spec;
  const t = q(table);
  const id = q(idColumn);
  const v = q(versionColumn);
  const name = (what: string) => q(`lockstep_${table}_${what}`);
  const at = (row: 'NEW' | 'OLD') => `namespace = '${entity}' AND key = CAST(${row}.${id} AS TEXT)`;
  const tomb = (row: 'NEW' | 'OLD') => `(SELECT version FROM lockstep_tombstones WHERE ${at(row)})`;
  const notOurs = `NOT EXISTS (SELECT 1 FROM ${WRITING_TABLE})`;
  const renamed = `OLD.${id} IS NOT NEW.${id}`;
  const journal = (row: 'NEW' | 'OLD', version: string, from: string, where: string) =>
    `INSERT INTO lockstep_journal (namespace, key, version, reason, created_at)
      SELECT '${entity}', CAST(${row}.${id} AS TEXT), ${version}, 'trigger', ${NOW_MS} FROM ${from} WHERE ${where};`;
  const keepFloor = `UPDATE lockstep_tombstones
      SET version = max(version, (SELECT coalesce(${v}, 0) FROM ${t} WHERE ${id} = NEW.${id}))
      WHERE ${at('NEW')} AND EXISTS (SELECT 1 FROM ${t} WHERE ${id} = NEW.${id});
    INSERT INTO lockstep_tombstones (namespace, key, version, deleted_at)
      SELECT '${entity}', CAST(NEW.${id} AS TEXT), coalesce(${v}, 0), ${NOW_MS} FROM ${t}
      WHERE ${id} = NEW.${id} AND NOT EXISTS (SELECT 1 FROM lockstep_tombstones WHERE ${at('NEW')});`;
  /** Sets the row's version with the mark held, so the fix-up fires no trigger. */
  const setVersion = (version: string) => `INSERT INTO ${WRITING_TABLE} (id) VALUES (1);
    UPDATE ${t} SET ${v} = ${version} WHERE ${id} = NEW.${id};
    DELETE FROM ${WRITING_TABLE};`;
  return `
CREATE TABLE IF NOT EXISTS ${WRITING_TABLE} (id INTEGER PRIMARY KEY);

CREATE TRIGGER IF NOT EXISTS ${name('bypass_replace')} BEFORE INSERT ON ${t} WHEN ${notOurs}
BEGIN
  ${keepFloor}
END;

CREATE TRIGGER IF NOT EXISTS ${name('bypass_rename')} BEFORE UPDATE ON ${t} WHEN ${notOurs} AND ${renamed}
BEGIN
  ${keepFloor}
END;

CREATE TRIGGER IF NOT EXISTS ${name('bypass_insert')} AFTER INSERT ON ${t} WHEN ${notOurs}
BEGIN
  ${setVersion(`max(coalesce(NEW.${v}, 0), 1 + coalesce(${tomb('NEW')}, 0))`)}
  DELETE FROM lockstep_tombstones WHERE ${at('NEW')};
  ${journal('NEW', v, t, `${id} = NEW.${id}`)}
END;

CREATE TRIGGER IF NOT EXISTS ${name('bypass_update')} AFTER UPDATE ON ${t} WHEN ${notOurs}
BEGIN
  ${setVersion(`max(coalesce(NEW.${v}, 0), 1 + coalesce(OLD.${v}, 0), 1 + coalesce(${tomb('NEW')}, 0))`)}
  DELETE FROM lockstep_tombstones WHERE ${at('NEW')};
  ${journal('NEW', v, t, `${id} = NEW.${id}`)}
  -- A rename also deletes the old id: tombstone and journal it with the new row's version.
  UPDATE lockstep_tombstones SET version = max(version + 1, (SELECT ${v} FROM ${t} WHERE ${id} = NEW.${id})), deleted_at = ${NOW_MS}
    WHERE ${at('OLD')} AND ${renamed};
  INSERT INTO lockstep_tombstones (namespace, key, version, deleted_at)
    SELECT '${entity}', CAST(OLD.${id} AS TEXT), ${v}, ${NOW_MS} FROM ${t}
    WHERE ${id} = NEW.${id} AND ${renamed} AND NOT EXISTS (SELECT 1 FROM lockstep_tombstones WHERE ${at('OLD')});
  ${journal('OLD', 'version', 'lockstep_tombstones', `${at('OLD')} AND ${renamed}`)}
END;

CREATE TRIGGER IF NOT EXISTS ${name('bypass_delete')} AFTER DELETE ON ${t} WHEN ${notOurs}
BEGIN
  UPDATE lockstep_tombstones SET version = 1 + max(version, coalesce(OLD.${v}, 0)), deleted_at = ${NOW_MS} WHERE ${at('OLD')};
  INSERT INTO lockstep_tombstones (namespace, key, version, deleted_at)
    SELECT '${entity}', CAST(OLD.${id} AS TEXT), 1 + coalesce(OLD.${v}, 0), ${NOW_MS}
    WHERE NOT EXISTS (SELECT 1 FROM lockstep_tombstones WHERE ${at('OLD')});
  ${journal('OLD', 'version', 'lockstep_tombstones', at('OLD'))}
END;
`;
}

/** Installs the bypass triggers of one entity table. Idempotent; needs the lockstep_* tables (createSqliteStore makes them). */
export function installEntityTriggers(db: Database.Database, spec: EntitySpec): void {
  db.transaction(() => db.exec(sqliteEntityTriggersSql(spec))).immediate();
}

/** Removes them (a table that no longer goes through Lockstep). */
export function dropEntityTriggers(db: Database.Database, table: string): void {
  identifier(table, 'table');
  for (const what of ['bypass_replace', 'bypass_rename', 'bypass_insert', 'bypass_update', 'bypass_delete']) {
    db.exec(`DROP TRIGGER IF EXISTS ${q(`lockstep_${table}_${what}`)}`);
  }
}
