// SQLite DDL for an entity table: the migration helper that adds a version column, and the triggers
// that version and journal writes to the table made outside Lockstep (plain SQL, other programs).
// They reuse the key/value store's lockstep_tombstones and lockstep_journal tables (namespace = the
// entity name, key = the id as text), so one journal and one drainer cover a whole database.
//
// How the triggers tell Lockstep's writes from others: Lockstep's write transaction inserts the
// (entity, id) it writes in lockstep_entity_writing_key first and deletes it before commit. SQLite
// runs one writer at a time, so while that row exists (only inside such a transaction) a change to
// that row is Lockstep's; a trigger that finds no mark for its own row is looking at someone else's
// write. The mark names the row, not the transaction: a change the write causes to OTHER rows (an
// ON DELETE CASCADE or ON UPDATE CASCADE into another cached table, the application's own trigger)
// is versioned and journaled like plain SQL. The triggers' own fix-up UPDATE marks its row too, so
// it fires no trigger with or without recursive_triggers.
//
// Bypass writes get: INSERT → max(its version, 1 + tombstone); UPDATE → max(its version, old + 1)
// (a rename: above the new id's tombstone too, and the old id is tombstoned); DELETE → a tombstone at
// 1 + max(row, tombstone). INSERT OR REPLACE removes the old row without DELETE triggers, so a BEFORE
// trigger keeps its version as the id's tombstone first (as sqlite-schema.ts does for lockstep_kv);
// rows of other ids that a REPLACE removes are buried by sqlite-replaced-rows.ts.
//
// The triggers are compared with the ones installed on every open and re-created when they differ
// (an earlier release's, or the table's unique indexes changed).
import type Database from 'better-sqlite3';
import { InvalidOptionError } from '../../errors.js';
import { otherUniqueKeys, REPLACED_TABLE_SQL, replacedRowTriggers, type UniqueKey } from './sqlite-replaced-rows.js';
import { identifier, type EntitySpec } from './spec.js';

const NOW_MS = `CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)`;
/** The rows Lockstep's open write transaction is writing: (entity, id as text). */
export const WRITING_TABLE = 'lockstep_entity_writing_key';
const WRITING_TABLE_SQL = `CREATE TABLE IF NOT EXISTS ${WRITING_TABLE} (entity TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (entity, key)) WITHOUT ROWID`;
/** The tables the triggers use besides the key/value store's. */
export const ENTITY_TABLES_SQL = `${WRITING_TABLE_SQL};\n${REPLACED_TABLE_SQL};`;
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

/** The triggers of one entity table: [name, DDL after `CREATE TRIGGER <name>`]. */
function entityTriggers(spec: EntitySpec, uniqueKeys: readonly UniqueKey[]): Array<[string, string]> {
  const { table, idColumn, versionColumn, entity } = spec;
  const t = q(table);
  const id = q(idColumn);
  const v = q(versionColumn);
  const at = (row: 'NEW' | 'OLD') => `namespace = '${entity}' AND key = CAST(${row}.${id} AS TEXT)`;
  const tomb = (row: 'NEW' | 'OLD') => `(SELECT version FROM lockstep_tombstones WHERE ${at(row)})`;
  const mark = (row: 'NEW' | 'OLD') => `entity = '${entity}' AND key = CAST(${row}.${id} AS TEXT)`;
  const notOurs = (row: 'NEW' | 'OLD') => `NOT EXISTS (SELECT 1 FROM ${WRITING_TABLE} WHERE ${mark(row)})`;
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
  /** Sets the row's version with its mark held, so the fix-up fires no trigger. */
  const setVersion = (version: string) => `INSERT OR IGNORE INTO ${WRITING_TABLE} (entity, key) VALUES ('${entity}', CAST(NEW.${id} AS TEXT));
    UPDATE ${t} SET ${v} = ${version} WHERE ${id} = NEW.${id};
    DELETE FROM ${WRITING_TABLE} WHERE ${mark('NEW')};`;
  const bypass: Array<[string, string]> = [
    ['bypass_replace', `BEFORE INSERT ON ${t} WHEN ${notOurs('NEW')}
BEGIN
  ${keepFloor}
END`],
    ['bypass_rename', `BEFORE UPDATE ON ${t} WHEN ${notOurs('NEW')} AND ${renamed}
BEGIN
  ${keepFloor}
END`],
    ['bypass_insert', `AFTER INSERT ON ${t} WHEN ${notOurs('NEW')}
BEGIN
  ${setVersion(`max(coalesce(NEW.${v}, 0), 1 + coalesce(${tomb('NEW')}, 0))`)}
  DELETE FROM lockstep_tombstones WHERE ${at('NEW')};
  ${journal('NEW', v, t, `${id} = NEW.${id}`)}
END`],
    ['bypass_update', `AFTER UPDATE ON ${t} WHEN ${notOurs('NEW')}
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
END`],
    ['bypass_delete', `AFTER DELETE ON ${t} WHEN ${notOurs('OLD')}
BEGIN
  UPDATE lockstep_tombstones SET version = 1 + max(version, coalesce(OLD.${v}, 0)), deleted_at = ${NOW_MS} WHERE ${at('OLD')};
  INSERT INTO lockstep_tombstones (namespace, key, version, deleted_at)
    SELECT '${entity}', CAST(OLD.${id} AS TEXT), 1 + coalesce(OLD.${v}, 0), ${NOW_MS}
    WHERE NOT EXISTS (SELECT 1 FROM lockstep_tombstones WHERE ${at('OLD')});
  ${journal('OLD', 'version', 'lockstep_tombstones', at('OLD'))}
END`],
  ];
  const replaced = replacedRowTriggers(uniqueKeys, { table, entity, id: idColumn, version: versionColumn, nowMs: NOW_MS });
  return [...bypass, ...replaced].map(([what, body]) => [`lockstep_${table}_${what}`, body]);
}

/** Every trigger name suffix this module makes (dropEntityTriggers and re-creation remove exactly these). */
const SUFFIXES = ['bypass_replace', 'bypass_rename', 'bypass_insert', 'bypass_update', 'bypass_delete', 'replaced_note_insert', 'replaced_note_update', 'replaced_bury_insert', 'replaced_bury_update'];

/**
 * The trigger DDL of one entity table (idempotent: CREATE … IF NOT EXISTS). `uniqueKeys`: the table's
 * unique keys besides the id (otherUniqueKeys), whose REPLACE deletes other rows; installEntityTriggers
 * reads them. Required: a migration that left them out (the call of earlier releases) would install
 * no REPLACE triggers and leave rows that a REPLACE deletes served; pass `[]` for a table without any.
 */
export function sqliteEntityTriggersSql(spec: EntitySpec, uniqueKeys: readonly UniqueKey[]): string {
  if (!Array.isArray(uniqueKeys)) {
    throw new InvalidOptionError('sqliteEntityTriggersSql(spec, uniqueKeys): pass otherUniqueKeys(db, table, idColumn).keys (or [] for a table with no unique key besides the id)');
  }
  const triggers = entityTriggers(spec, uniqueKeys).map(([name, body]) => `CREATE TRIGGER IF NOT EXISTS ${q(name)} ${body};`);
  return [ENTITY_TABLES_SQL, ...triggers].join('\n\n');
}

/**
 * Installs the bypass triggers of one entity table, re-creating those that differ from this
 * release's for the table as it is now (its unique indexes). Idempotent; needs the lockstep_*
 * tables (createSqliteStore makes them).
 * @returns the unique indexes on expressions, whose REPLACE conflicts the triggers cannot look up.
 */
export function installEntityTriggers(db: Database.Database, spec: EntitySpec): { expressionIndexes: string[] } {
  return db.transaction(() => {
    db.exec(ENTITY_TABLES_SQL);
    const { keys, expressions } = otherUniqueKeys(db, spec.table, spec.idColumn);
    const wanted = new Map(entityTriggers(spec, keys).map(([name, body]) => [name, `CREATE TRIGGER ${q(name)} ${body}`]));
    // Ours under any table name: ALTER TABLE … RENAME moves a table's triggers along with their old
    // names, and two sets on one table would each fix the version up (the later one below a tombstone).
    const ours = { has: (name: string) => name.startsWith('lockstep_') && SUFFIXES.some((what) => name.endsWith(`_${what}`)) };
    const installed = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?").all(spec.table) as Array<{ name: string; sql: string }>;
    for (const { name, sql } of installed) {
      if (ours.has(name) && wanted.get(name) !== sql) db.exec(`DROP TRIGGER ${q(name)}`);
    }
    const kept = new Set(installed.filter(({ name, sql }) => wanted.get(name) === sql).map(({ name }) => name));
    for (const [name, sql] of wanted) if (!kept.has(name)) db.exec(sql);
    return { expressionIndexes: expressions };
  }).immediate();
}

/** Removes them (a table that no longer goes through Lockstep). */
export function dropEntityTriggers(db: Database.Database, table: string): void {
  identifier(table, 'table');
  for (const what of SUFFIXES) {
    db.exec(`DROP TRIGGER IF EXISTS ${q(`lockstep_${table}_${what}`)}`);
  }
}
