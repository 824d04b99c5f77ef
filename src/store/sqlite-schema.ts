// The SQLite schema: the versioned key-value table, the global version sequence and the change
// journal, with the triggers that version and journal writes made with plain SQL outside Lockstep.
//
// How the triggers tell Lockstep's writes from everyone else's: Lockstep's transaction sets
// `lockstep_sequence.in_write = 1` while it bumps the sequence and writes the row, and sets it back
// to 0 before committing. Any statement that finds `in_write = 0` is a bypass write (another
// connection, the sqlite3 shell, a migration), so the triggers assign it a fresh version and journal
// the key. A trigger body raises the flag around its own fix-up UPDATE so that it does not fire the
// UPDATE trigger again. Comparing versions instead (fire when NEW.version is not the sequence) would
// miss a bypass write that happens to set `version` to the current sequence value, e.g. another
// service's `SET version = version + 1` on the latest row, or a copy of the latest row to a new key.
//
// The triggers run inside whatever SQLite opens the file (the sqlite3 shell may be older than the
// one bundled with better-sqlite3): keep them to old syntax, e.g. no unixepoch('subsec').

/** Wall-clock ms since the epoch, in SQL that SQLite 3.8+ understands. */
const NOW_MS = `CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)`;

/** Bumps the sequence with the flag raised, so the body's own UPDATE of lockstep_kv fires no trigger. */
const BUMP = `UPDATE lockstep_sequence SET version = version + 1, in_write = 1 WHERE id = 1;`;
const LOWER = `UPDATE lockstep_sequence SET in_write = 0 WHERE id = 1;`;
const BYPASS_ONLY = `WHEN (SELECT in_write FROM lockstep_sequence WHERE id = 1) = 0`;

function versionRow(row: 'NEW'): string {
  return `UPDATE lockstep_kv SET version = (SELECT version FROM lockstep_sequence WHERE id = 1), updated_at = ${NOW_MS}
    WHERE namespace = ${row}.namespace AND key = ${row}.key;`;
}

function journalRow(row: 'NEW' | 'OLD', where = ''): string {
  return `INSERT INTO lockstep_journal (namespace, key, version, reason, created_at)
    SELECT ${row}.namespace, ${row}.key, version, 'trigger', ${NOW_MS} FROM lockstep_sequence WHERE id = 1${where};`;
}

/** Idempotent DDL: safe to run on every open, from any number of processes (inside BEGIN IMMEDIATE). */
export const SQLITE_SCHEMA = `
CREATE TABLE IF NOT EXISTS lockstep_sequence (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL,
  in_write INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO lockstep_sequence (id, version, in_write) VALUES (1, 0, 0);

CREATE TABLE IF NOT EXISTS lockstep_kv (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  version INTEGER DEFAULT NULL,
  updated_at INTEGER,
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

CREATE TRIGGER IF NOT EXISTS lockstep_kv_bypass_insert AFTER INSERT ON lockstep_kv ${BYPASS_ONLY}
BEGIN
  ${BUMP}
  ${versionRow('NEW')}
  ${journalRow('NEW')}
  ${LOWER}
END;

CREATE TRIGGER IF NOT EXISTS lockstep_kv_bypass_update AFTER UPDATE ON lockstep_kv ${BYPASS_ONLY}
BEGIN
  ${BUMP}
  ${versionRow('NEW')}
  ${journalRow('NEW')}
  -- An UPDATE that renames the key also deletes the old one: journal it with the same version.
  ${journalRow('OLD', ' AND (OLD.namespace <> NEW.namespace OR OLD.key <> NEW.key)')}
  ${LOWER}
END;

CREATE TRIGGER IF NOT EXISTS lockstep_kv_bypass_delete AFTER DELETE ON lockstep_kv ${BYPASS_ONLY}
BEGIN
  ${BUMP}
  ${journalRow('OLD')}
  ${LOWER}
END;
`;
