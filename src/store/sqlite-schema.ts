// The SQLite schema: the versioned key-value table, the tombstones of deleted keys and the change
// journal, with the triggers that version and journal writes made with plain SQL outside Lockstep.
//
// Versions are per key: a write of an existing row takes `version + 1`; a write of a new key takes
// 1 + the version of the key's tombstone (0 without one), so versions keep rising across delete and
// re-create; a delete records the tombstone. No row is shared by all writes, so a Lockstep write of
// an existing key writes one page: the row's own.
//
// How the triggers tell Lockstep's writes from everyone else's, without writing another page: by
// the `writer` column of the row itself, which is Lockstep's alone (plain SQL must leave it alone).
// - UPDATE: every Lockstep UPDATE flips `writer` (1 → 0, anything else → 1). A plain-SQL UPDATE does
//   not touch it, so the UPDATE trigger fires when `NEW.writer IS OLD.writer` (whatever else the
//   statement changed: `SET version = version + 1`, a rename, nothing at all).
// - INSERT: Lockstep inserts a new key with `writer = 'lockstep:insert'` and flips it to 0 in the same
//   transaction (the same page), so no committed row ever carries that marker: a plain INSERT (the
//   column left NULL, or copied from another row or from a backup) fires the INSERT trigger.
// - DELETE: there is no NEW row. Lockstep first sets `writer = 'lockstep:delete'` (the same page) and
//   deletes in the same transaction; the DELETE trigger fires for any other deleted row.
// The triggers' own UPDATE of the row flips `writer` too, so it fires no UPDATE trigger, with or
// without recursive_triggers.
//
// Bypass writes get: UPDATE → 1 + max(old version, tombstone of the key it now has); INSERT → 1 +
// tombstone; DELETE → a tombstone at 1 + max(old version, tombstone). Each is journaled with reason
// 'trigger'. A rename (namespace or key changed by UPDATE) also deletes the old key: it gets a
// tombstone and a journal row with the new row's version. INSERT OR REPLACE deletes the row it
// replaces without firing DELETE triggers (unless recursive_triggers is on), so a BEFORE INSERT
// trigger keeps that row's version as the key's tombstone first: the new row continues above it
// (and a BEFORE UPDATE trigger does the same for UPDATE OR REPLACE renaming onto a live key).
// Invariant: while a row exists, its key's tombstone (if any is left, e.g. by INSERT OR IGNORE) is
// not above the row's version; Lockstep's own UPDATE therefore never reads the tombstone table.
//
// The triggers run inside whatever SQLite opens the file (the sqlite3 shell may be older than the
// one bundled with better-sqlite3): keep them to old syntax, e.g. no unixepoch('subsec'), no UPSERT,
// no RETURNING. Nor INSERT OR REPLACE in a body: the outer statement's conflict clause (OR IGNORE,
// OR ABORT …) would override it, so tombstones are written as UPDATE, then INSERT … WHERE NOT EXISTS.

/** Set on a row by Lockstep's INSERT and flipped to 0 before commit: a committed row never holds it. */
export const INSERT_MARKER = 'lockstep:insert';
/** Set on a row by Lockstep just before its DELETE, in the same transaction. */
export const DELETE_MARKER = 'lockstep:delete';
/** The next `writer` value of a row: always differs from the current one. */
export const FLIP_WRITER = 'CASE writer WHEN 1 THEN 0 ELSE 1 END';

/** Wall-clock ms since the epoch, in SQL that SQLite 3.8+ understands. */
const NOW_MS = `CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)`;

const at = (row: 'NEW' | 'OLD') => `namespace = ${row}.namespace AND key = ${row}.key`;
const tombstoneOf = (row: 'NEW' | 'OLD') => `(SELECT version FROM lockstep_tombstones WHERE ${at(row)})`;
const RENAMED = `(OLD.namespace <> NEW.namespace OR OLD.key <> NEW.key)`;

/** Before a bypass INSERT or rename: the version of the row at NEW's key, if any, becomes (at least) its tombstone. */
const KEEP_FLOOR = `UPDATE lockstep_tombstones
    SET version = max(version, (SELECT coalesce(version, 0) FROM lockstep_kv WHERE ${at('NEW')}))
    WHERE ${at('NEW')} AND EXISTS (SELECT 1 FROM lockstep_kv WHERE ${at('NEW')});
  INSERT INTO lockstep_tombstones (namespace, key, version, deleted_at)
    SELECT namespace, key, coalesce(version, 0), ${NOW_MS} FROM lockstep_kv
    WHERE ${at('NEW')} AND NOT EXISTS (SELECT 1 FROM lockstep_tombstones WHERE ${at('NEW')});`;

function journal(row: 'NEW' | 'OLD', from: 'lockstep_kv' | 'lockstep_tombstones', where = ''): string {
  return `INSERT INTO lockstep_journal (namespace, key, version, reason, created_at)
    SELECT ${row}.namespace, ${row}.key, version, 'trigger', ${NOW_MS} FROM ${from} WHERE ${at(row)}${where};`;
}

/** Idempotent DDL: safe to run on every open, from any number of processes (inside BEGIN IMMEDIATE). */
export const SQLITE_SCHEMA = `
CREATE TABLE IF NOT EXISTS lockstep_kv (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  version INTEGER DEFAULT NULL,
  updated_at INTEGER,
  writer DEFAULT NULL,
  PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS lockstep_tombstones (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  version INTEGER NOT NULL,
  deleted_at INTEGER NOT NULL,
  PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS lockstep_journal (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  version INTEGER NOT NULL,
  reason TEXT NOT NULL CHECK (reason IN ('trigger', 'repair')),
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS lockstep_journal_created_at ON lockstep_journal (created_at);

-- The journal's name, drawn once when the file is created: every instance that opens this file,
-- by whatever path, keys its replay cursor by it (StoreAdapter.journalId).
CREATE TABLE IF NOT EXISTS lockstep_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO lockstep_meta (name, value) VALUES ('journal_id', lower(hex(randomblob(16))));

-- INSERT OR REPLACE (and an upsert or INSERT OR IGNORE that meets a row): keep the existing row's
-- version as the key's tombstone, so the row that replaces it continues above.
CREATE TRIGGER IF NOT EXISTS lockstep_kv_bypass_replace BEFORE INSERT ON lockstep_kv
WHEN NEW.writer IS NOT '${INSERT_MARKER}'
BEGIN
  ${KEEP_FLOOR}
END;

-- The same for UPDATE OR REPLACE renaming a row onto a key that has a row.
CREATE TRIGGER IF NOT EXISTS lockstep_kv_bypass_rename BEFORE UPDATE ON lockstep_kv
WHEN NEW.writer IS OLD.writer AND ${RENAMED}
BEGIN
  ${KEEP_FLOOR}
END;

CREATE TRIGGER IF NOT EXISTS lockstep_kv_bypass_insert AFTER INSERT ON lockstep_kv
WHEN NEW.writer IS NOT '${INSERT_MARKER}'
BEGIN
  UPDATE lockstep_kv SET version = 1 + coalesce(${tombstoneOf('NEW')}, 0), updated_at = ${NOW_MS}, writer = ${FLIP_WRITER}
    WHERE ${at('NEW')};
  DELETE FROM lockstep_tombstones WHERE ${at('NEW')};
  ${journal('NEW', 'lockstep_kv')}
END;

CREATE TRIGGER IF NOT EXISTS lockstep_kv_bypass_update AFTER UPDATE ON lockstep_kv
WHEN NEW.writer IS OLD.writer
BEGIN
  UPDATE lockstep_kv
    SET version = 1 + max(coalesce(OLD.version, 0), coalesce(${tombstoneOf('NEW')}, 0)), updated_at = ${NOW_MS}, writer = ${FLIP_WRITER}
    WHERE ${at('NEW')};
  DELETE FROM lockstep_tombstones WHERE ${at('NEW')};
  ${journal('NEW', 'lockstep_kv')}
  -- A rename also deletes the old key: tombstone and journal it with the new row's version.
  UPDATE lockstep_tombstones
    SET version = max(version + 1, (SELECT version FROM lockstep_kv WHERE ${at('NEW')})), deleted_at = ${NOW_MS}
    WHERE ${at('OLD')} AND ${RENAMED};
  INSERT INTO lockstep_tombstones (namespace, key, version, deleted_at)
    SELECT OLD.namespace, OLD.key, version, ${NOW_MS} FROM lockstep_kv
    WHERE ${at('NEW')} AND ${RENAMED} AND NOT EXISTS (SELECT 1 FROM lockstep_tombstones WHERE ${at('OLD')});
  ${journal('OLD', 'lockstep_tombstones', ` AND ${RENAMED}`)}
END;

CREATE TRIGGER IF NOT EXISTS lockstep_kv_bypass_delete AFTER DELETE ON lockstep_kv
WHEN OLD.writer IS NOT '${DELETE_MARKER}'
BEGIN
  UPDATE lockstep_tombstones SET version = 1 + max(version, coalesce(OLD.version, 0)), deleted_at = ${NOW_MS}
    WHERE ${at('OLD')};
  INSERT INTO lockstep_tombstones (namespace, key, version, deleted_at)
    SELECT OLD.namespace, OLD.key, 1 + coalesce(OLD.version, 0), ${NOW_MS}
    WHERE NOT EXISTS (SELECT 1 FROM lockstep_tombstones WHERE ${at('OLD')});
  ${journal('OLD', 'lockstep_tombstones')}
END;
`;
