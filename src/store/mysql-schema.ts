// The MariaDB schema: the versioned key-value table, the tombstones of deleted keys, the change
// journal and its lock row, Lockstep's write and delete functions, and the triggers that version and
// journal writes made with plain SQL outside Lockstep. Same data model and rules as sqlite-schema.ts.
//
// Versions are per key: a write of an existing row takes `version + 1`; a new key takes 1 + the
// version of its tombstone (0 without one); a delete records a tombstone at 1 + max(row, tombstone).
// Keys and namespaces are VARBINARY: exact bytes, no collation, no PAD SPACE, scan order = byte order.
//
// Concurrency: the tombstone row is the key's anchor. Every statement that creates or removes a
// key's row first upserts (and so locks) the key's tombstone row, then touches `lockstep_kv`: an
// INSERT in its BEFORE INSERT trigger, Lockstep's delete in its function, a rename for its new key.
// While one transaction holds the anchor, no one else can create or remove the row, so it reads
// the tombstone with a locking read (the latest committed version, not its snapshot) and a new row
// continues above it. An overwrite of an existing row takes only the row lock: while a row exists,
// its tombstone (a leftover anchor, if any) is never above the row's version. Two paths lock the row
// first and the anchor second, because the row is locked by the statement before any trigger runs:
// a plain-SQL DELETE and a plain-SQL rename. Racing a create of the same key, they can deadlock;
// InnoDB then rolls one back (errno 1213), and Lockstep retries its own statements.
// Why not `INSERT … ON DUPLICATE KEY UPDATE` for Lockstep's write: BEFORE INSERT triggers fire for
// every such statement, so every overwrite would take (and leave) an anchor; and MariaDB does not
// report LAST_INSERT_ID(expr) in the OK packet of a statement on a table with triggers (measured on
// 10.11: insertId 0), so the version would cost a second round trip. A function does it in one.
//
// How the triggers tell Lockstep's writes from everyone else's: Lockstep's statements set `writer`
// to a marker ('lockstep:insert', 'lockstep:update') that the BEFORE trigger recognises and replaces
// with 'lockstep', so no committed row holds a marker; plain SQL that leaves `writer` alone (or sets
// anything else) is a bypass write and gets `writer` NULL. The AFTER triggers journal rows whose
// `writer` is NULL. A DELETE has no NEW row: Lockstep's delete marks the key's anchor
// ('lockstep:delete') before it deletes the row and clears the mark in the same statement.
// A marker is honoured only while Lockstep's own call runs (since triggers version 3): Lockstep's
// write and delete are functions of a package (`lockstep_own`) whose private variable holds the start
// time of the statement running them (NOW(6), the same in every sub-statement of one statement), and
// the triggers ask the package's `owns()` whether that is the current statement. Plain SQL cannot set a
// package's private variable, so a marker it writes itself (into `writer`, or into a tombstone) is a
// bypass write like any other: versioned and journaled. (A package needs sql_mode ORACLE to be
// created in MariaDB 10.11; it is called from any mode. The variable is cleared when the call ends,
// with an error too, before the error reaches a handler of the caller that could go on in the same
// statement; a call killed outright leaves a start time that no later statement has, unless its
// session fixes `timestamp`.)
//
// Bypass writes get: INSERT → 1 + tombstone (a REPLACE: above the row it replaced, and its delete);
// UPDATE → 1 + old version (a rename: above the new key's tombstone too, and the old key gets a
// tombstone at the new row's version and its own journal row); DELETE → a tombstone at
// 1 + max(row, tombstone). Each appends a journal row with reason 'trigger'. A trigger's read of the
// table its statement writes is a current read, not the transaction's snapshot (measured: a REPLACE
// in a REPEATABLE READ transaction that read the row long before still lands above its latest
// version). The AFTER INSERT trigger also refuses (SQLSTATE 45000) any row at or below its key's
// tombstone: the invariant the rules above keep, checked where it is cheap (the anchor is read anyway).
// A trigger's read is a locking read (inside a data-changing statement), so a plain INSERT keeps a
// shared lock on the gap above its key until its transaction ends (docs/operations.md).
// Not seen by any trigger: TRUNCATE, DROP, foreign-key cascades, and writes with triggers disabled
// (e.g. replication with slave_run_triggers_for_rbr=NO applying row events is fine: the primary's
// triggers ran there).
// TRUNCATE and DROP of `lockstep_kv`, `lockstep_tombstones` and `lockstep_journal` are refused by
// the guard: an empty table whose foreign keys reference all three (InnoDB refuses to TRUNCATE or
// DROP a table that a foreign key references: errno 1701 and 1451). TRUNCATE of the kv table would
// remove rows without tombstones or journal rows, of the tombstones let a re-created key go at or
// below its cached delete, of the journal lose invalidations the drainer has not read. Its cost: a
// Lockstep delete, and the deletion of an anchor when a new key is written, look up the guard's
// empty index (no rows, so no lock conflicts). Not refused with foreign_key_checks = 0.
//
// Journal ids in commit order. An AUTO_INCREMENT id is drawn when the row is inserted, so under
// concurrency a transaction holding a lower id can commit after one holding a higher id, and a
// drainer reading `id > cursor` would already have moved past the lower one. Here the journal's
// BEFORE INSERT trigger takes the id from `lockstep_journal_lock` (one row) with a locking read and
// updates it, so every journal-writing transaction holds that row's lock from its first journal
// row until it commits: ids are handed out in commit order, and when a reader sees id n, every
// lower id is committed and visible, or was rolled back and is handed out again (never seen). The
// row's `head` is the highest committed id, so journalHead needs no lock and never moves back when
// rows are pruned. The cost: journal-writing transactions run one at a time. Lockstep journals only
// during a cache outage; a long plain-SQL transaction that journals early (a migration) holds the
// lock until it commits, and a Lockstep write journaled meanwhile waits up to its statement timeout.
// (PostgreSQL stamps ids in a deferred trigger at COMMIT; MariaDB has no deferred triggers. A
// safety window when reading instead would lose the rows of any transaction longer than the window.)

import { PRECONDITION_FAILED_MARKER } from './precondition.js';

/** Version of this DDL, kept as the comment of the write function, created last. */
export const MYSQL_SCHEMA_VERSION = 'lockstep:mysql-schema:2';
/** Earlier versions whose functions are replaced in place (their tables and triggers are the same). */
export const REPLACEABLE_SCHEMA_VERSIONS: readonly string[] = ['lockstep:mysql-schema:1'];

/**
 * SQLSTATE of the error Lockstep's write and delete functions SIGNAL when a precondition fails; the
 * message ends with PRECONDITION_FAILED_MARKER and the key's live version (0 when not live). The
 * statement, and so its autocommit transaction, rolls back.
 */
export const PRECONDITION_SQLSTATE = '45412';

/** `writer` of a row Lockstep inserts, replaced by the BEFORE INSERT trigger. */
export const INSERT_MARKER = 'lockstep:insert';
/** `writer` Lockstep sets on UPDATE, replaced by the BEFORE UPDATE trigger. */
export const UPDATE_MARKER = 'lockstep:update';
/** `writer` of a key's tombstone while Lockstep's delete of the key runs. */
export const DELETE_MARKER = 'lockstep:delete';
/** `writer` of a committed row that Lockstep wrote last (NULL: plain SQL did). */
export const LOCKSTEP_WRITER = 'lockstep';
/**
 * Version of the triggers (and the guard table), kept in the meta table under the name 'triggers':
 * 3 honours a marker only from Lockstep's own function (the package's `owns()`). Schema 2's
 * triggers honour any marker, so a store that opens them replaces them (mysql.ts, upgrade).
 */
export const MYSQL_TRIGGERS_VERSION = 'lockstep:mysql-triggers:3';
/**
 * Version of the package body, its COMMENT: a store replaces the body (alone: CREATE OR REPLACE
 * PACKAGE would drop the body too, failing every call until it is created again) only when it is
 * missing or of another version. A body without this comment (the first release of the package) is
 * the same code.
 */
export const MYSQL_PACKAGE_VERSION = 'lockstep:mysql-package:1';

/** Wall-clock ms since the epoch, from the statement's start time (no time zone involved). */
const NOW_MS = 'CAST(FLOOR(@@timestamp * 1000) AS SIGNED)';

const PREFIX = /^[A-Za-z_][A-Za-z0-9_]{0,31}$/;
const DATABASE = /^[A-Za-z0-9_$-]{1,64}$/;

export function isTablePrefix(value: unknown): value is string {
  return typeof value === 'string' && PREFIX.test(value);
}

export function isDatabaseName(value: unknown): value is string {
  return typeof value === 'string' && DATABASE.test(value);
}

/** A validated name, quoted with backticks. Identifiers cannot be parameters. */
function quote(name: string, valid: (value: string) => boolean): string {
  if (!valid(name)) throw new Error(`not a valid identifier: ${JSON.stringify(name)}`);
  return `\`${name}\``;
}

export type TriggerName = 'kv_before_insert' | 'kv_after_insert' | 'kv_before_update' | 'kv_after_update' | 'kv_after_delete' | 'journal_before_insert';
export type RoutineName = 'write' | 'delete';

export interface MysqlSchema {
  readonly database: string;
  readonly prefix: string;
  /** Qualified, quoted table names. */
  readonly kv: string;
  readonly tombstones: string;
  readonly journal: string;
  readonly journalLock: string;
  /** One row per setting: `journal_id`, the journal's name (drawn once). */
  readonly meta: string;
  /** Unquoted name of the guard table (no rows; its foreign keys refuse TRUNCATE and DROP). */
  readonly guardName: string;
  /** Its DDL (idempotent), run after the others; an open that finds it missing adds it. */
  readonly guardDdl: string;
  /** Qualified, quoted function names: the functions themselves (a call is a bypass write since triggers version 3)... */
  readonly writeFunction: string;
  readonly deleteFunction: string;
  /** ...and the package functions that call them as Lockstep's own writes. */
  readonly ownWriteFunction: string;
  readonly ownDeleteFunction: string;
  /** Unquoted name of the package. */
  readonly packageName: string;
  /**
   * The package (CREATE PACKAGE IF NOT EXISTS: never replaced, which would drop its body) and its
   * body (CREATE OR REPLACE PACKAGE BODY, COMMENT MYSQL_PACKAGE_VERSION): to run with sql_mode
   * ORACLE, before any trigger that calls it.
   */
  readonly packageDdl: readonly [spec: string, body: string];
  /** CREATE OR REPLACE of every trigger: an upgrade of older triggers, one statement each. */
  readonly triggerReplaceDdl: readonly string[];
  /** Unquoted names, for information_schema. */
  readonly tableNames: readonly string[];
  readonly triggerNames: readonly string[];
  readonly routineNames: readonly string[];
  /** Idempotent DDL, one statement each, tables first and the write function last. */
  readonly ddl: readonly string[];
}

export function mysqlSchema(database: string, prefix: string): MysqlSchema {
  const db = quote(database, isDatabaseName);
  quote(prefix, isTablePrefix);
  const name = (suffix: string) => `${db}.\`${prefix}${suffix}\``;
  const KV = name('kv');
  const T = name('tombstones');
  const J = name('journal');
  const L = name('journal_lock');
  const M = name('meta');
  const triggers: TriggerName[] = ['kv_before_insert', 'kv_after_insert', 'kv_before_update', 'kv_after_update', 'kv_after_delete', 'journal_before_insert'];
  const routines: RoutineName[] = ['delete', 'write'];

  const at = (row: string) => `namespace = ${row}.namespace AND \`key\` = ${row}.\`key\``;
  const atArgs = 'namespace = p_namespace AND `key` = p_key';
  const renamed = 'NOT (NEW.namespace <=> OLD.namespace AND NEW.`key` <=> OLD.`key`)';
  /** Creates or locks the key's anchor (its tombstone row), leaving its version as it was. */
  const anchor = (row: string) =>
    `INSERT INTO ${T} (namespace, \`key\`, version, deleted_at, writer) VALUES (${row}.namespace, ${row}.\`key\`, 0, ${NOW_MS}, NULL)
      ON DUPLICATE KEY UPDATE version = version;`;
  /** Records a delete of the key: a tombstone above the row's version and above its earlier tombstone. */
  const bury = (row: string, version: string) =>
    `INSERT INTO ${T} (namespace, \`key\`, version, deleted_at, writer) VALUES (${row}.namespace, ${row}.\`key\`, ${version}, ${NOW_MS}, NULL)
      ON DUPLICATE KEY UPDATE version = GREATEST(version + 1, VALUES(version)), deleted_at = VALUES(deleted_at);`;
  const journalTombstone = (row: string) =>
    `INSERT INTO ${J} (namespace, \`key\`, version, reason, created_at)
      SELECT ${row}.namespace, ${row}.\`key\`, version, 'trigger', ${NOW_MS} FROM ${T} WHERE ${at(row)};`;
  const journalRow = `INSERT INTO ${J} (namespace, \`key\`, version, reason, created_at) VALUES (NEW.namespace, NEW.\`key\`, NEW.version, 'trigger', ${NOW_MS});`;
  /** Whether the precondition (p_expect, p_expect_version) fails for live version `live` (0: not live). */
  const fails = (live: string) =>
    `(p_expect = 'absent' AND ${live} <> 0) OR (p_expect = 'present' AND ${live} = 0) OR (p_expect = 'version' AND NOT (${live} <=> p_expect_version))`;
  /** SIGNAL takes a variable, not an expression, as its message. */
  const refuse = (live: string) =>
    `SET msg = CONCAT('${PRECONDITION_FAILED_MARKER}', ${live});
        SIGNAL SQLSTATE '${PRECONDITION_SQLSTATE}' SET MESSAGE_TEXT = msg;`;
  const triggers_: { suffix: TriggerName; timing: string; table: string; body: string }[] = [];
  const trigger = (suffix: TriggerName, timing: string, table: string, body: string) => {
    triggers_.push({ suffix, timing, table, body });
    return `CREATE TRIGGER IF NOT EXISTS ${name(suffix)} ${timing} ON ${table} FOR EACH ROW\nBEGIN\n${body}\nEND`;
  };
  const P = name('own');
  /** Whether the statement running now is one of Lockstep's own function calls (see the top). */
  const OWNS = `${P}.\`owns\`()`;

  const tables = [
    `CREATE TABLE IF NOT EXISTS ${KV} (
      namespace VARBINARY(64) NOT NULL,
      \`key\` VARBINARY(512) NOT NULL,
      value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      version BIGINT NOT NULL DEFAULT 0,
      writer VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL DEFAULT NULL,
      updated_at BIGINT NULL DEFAULT NULL,
      PRIMARY KEY (namespace, \`key\`)
    ) ENGINE = InnoDB ROW_FORMAT = DYNAMIC`,
    `CREATE TABLE IF NOT EXISTS ${T} (
      namespace VARBINARY(64) NOT NULL,
      \`key\` VARBINARY(512) NOT NULL,
      version BIGINT NOT NULL,
      deleted_at BIGINT NOT NULL,
      writer VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL DEFAULT NULL,
      PRIMARY KEY (namespace, \`key\`)
    ) ENGINE = InnoDB ROW_FORMAT = DYNAMIC`,
    `CREATE TABLE IF NOT EXISTS ${J} (
      id BIGINT NOT NULL AUTO_INCREMENT,
      namespace VARBINARY(64) NOT NULL,
      \`key\` VARBINARY(512) NOT NULL,
      version BIGINT NOT NULL,
      reason ENUM('trigger', 'repair') NOT NULL,
      created_at BIGINT NOT NULL,
      PRIMARY KEY (id),
      KEY ${'`'}${prefix}journal_created_at${'`'} (created_at)
    ) ENGINE = InnoDB ROW_FORMAT = DYNAMIC`,
    `CREATE TABLE IF NOT EXISTS ${L} (
      id TINYINT UNSIGNED NOT NULL,
      head BIGINT NOT NULL,
      PRIMARY KEY (id)
    ) ENGINE = InnoDB`,
    `INSERT IGNORE INTO ${L} (id, head) VALUES (1, 0)`,
    // The journal's name, drawn once: every instance keys its replay cursor by it, however it
    // reaches the server (StoreAdapter.journalId).
    `CREATE TABLE IF NOT EXISTS ${M} (
      name VARCHAR(64) NOT NULL,
      value VARCHAR(64) NOT NULL,
      PRIMARY KEY (name)
    ) ENGINE = InnoDB`,
    `INSERT IGNORE INTO ${M} (name, value) VALUES ('journal_id', REPLACE(UUID(), '-', ''))`,
  ];

  // No rows (the CHECK admits only a row of NULLs, which references nothing): its foreign keys only
  // make InnoDB refuse TRUNCATE and DROP of the tables they reference.
  const constraint = (suffix: string) => `\`${prefix}guard_${suffix}\``;
  const guardDdl = `CREATE TABLE IF NOT EXISTS ${name('guard')} (
      id TINYINT UNSIGNED NOT NULL,
      kv_namespace VARBINARY(64) NULL,
      kv_key VARBINARY(512) NULL,
      tombstone_namespace VARBINARY(64) NULL,
      tombstone_key VARBINARY(512) NULL,
      journal_id BIGINT NULL,
      PRIMARY KEY (id),
      CONSTRAINT ${constraint('empty')} CHECK (kv_key IS NULL AND tombstone_key IS NULL AND journal_id IS NULL),
      CONSTRAINT ${constraint('kv')} FOREIGN KEY (kv_namespace, kv_key) REFERENCES ${KV} (namespace, \`key\`),
      CONSTRAINT ${constraint('tombstones')} FOREIGN KEY (tombstone_namespace, tombstone_key) REFERENCES ${T} (namespace, \`key\`),
      CONSTRAINT ${constraint('journal')} FOREIGN KEY (journal_id) REFERENCES ${J} (id)
    ) ENGINE = InnoDB ROW_FORMAT = DYNAMIC COMMENT 'lockstep: no rows; its foreign keys refuse TRUNCATE and DROP of kv, tombstones and journal'`;

  const triggerDdl = [
    trigger('journal_before_insert', 'BEFORE INSERT', J, `
  DECLARE next_id BIGINT DEFAULT NULL;
  -- Held until this transaction ends: journal ids are handed out in commit order.
  SET next_id = (SELECT head + 1 FROM ${L} WHERE id = 1 FOR UPDATE);
  IF next_id IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'lockstep: the journal lock row is missing (${prefix}journal_lock id 1)';
  END IF;
  UPDATE ${L} SET head = next_id WHERE id = 1;
  SET NEW.id = next_id;`),
    trigger('kv_before_insert', 'BEFORE INSERT', KV, `
  DECLARE below BIGINT DEFAULT 0;
  DECLARE existing BIGINT DEFAULT NULL;
  ${anchor('NEW')}
  SET below = COALESCE((SELECT version FROM ${T} WHERE ${at('NEW')} FOR UPDATE), 0);
  -- A row that is already there is updated instead (ON DUPLICATE KEY UPDATE), or kept (IGNORE), or
  -- replaced (REPLACE: its delete leaves a tombstone at 1 + max(below, existing), the new row goes above).
  SET existing = (SELECT version FROM ${KV} WHERE ${at('NEW')});
  SET NEW.version = 1 + IF(existing IS NULL, below, GREATEST(below, existing) + 1);
  IF NEW.writer <=> '${INSERT_MARKER}' AND ${OWNS} THEN
    SET NEW.writer = '${LOCKSTEP_WRITER}';
  ELSE
    SET NEW.writer = NULL, NEW.updated_at = ${NOW_MS};
  END IF;`),
    trigger('kv_after_insert', 'AFTER INSERT', KV, `
  IF (SELECT version FROM ${T} WHERE ${at('NEW')} FOR UPDATE) >= NEW.version THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'lockstep: this INSERT would commit a row at or below its key''s tombstone: were the lockstep triggers or tombstones changed by hand?';
  END IF;
  DELETE FROM ${T} WHERE ${at('NEW')};
  IF NEW.writer IS NULL THEN
    ${journalRow}
  END IF;`),
    trigger('kv_before_update', 'BEFORE UPDATE', KV, `
  DECLARE below BIGINT DEFAULT 0;
  IF NEW.writer <=> '${UPDATE_MARKER}' AND ${OWNS} THEN
    SET NEW.writer = '${LOCKSTEP_WRITER}';
  ELSE
    IF ${renamed} THEN
      ${anchor('NEW')}
      SET below = COALESCE((SELECT version FROM ${T} WHERE ${at('NEW')} FOR UPDATE), 0);
    END IF;
    SET NEW.version = 1 + GREATEST(OLD.version, below), NEW.writer = NULL, NEW.updated_at = ${NOW_MS};
  END IF;`),
    trigger('kv_after_update', 'AFTER UPDATE', KV, `
  IF NEW.writer IS NULL THEN
    IF ${renamed} THEN
      DELETE FROM ${T} WHERE ${at('NEW')};
    END IF;
    ${journalRow}
    -- A rename also deletes the old key: tombstone and journal it with the new row's version.
    IF ${renamed} THEN
      ${bury('OLD', 'NEW.version')}
      ${journalTombstone('OLD')}
    END IF;
  END IF;`),
    trigger('kv_after_delete', 'AFTER DELETE', KV, `
  DECLARE mark VARCHAR(32) DEFAULT NULL;
  SET mark = (SELECT writer FROM ${T} WHERE ${at('OLD')} FOR UPDATE);
  ${bury('OLD', 'OLD.version + 1')}
  IF NOT (mark <=> '${DELETE_MARKER}' AND ${OWNS}) THEN
    ${journalTombstone('OLD')}
  END IF;`),
  ];

  const writeParams = `p_namespace VARBINARY(64), p_key VARBINARY(512), p_value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, p_journal TINYINT,
      p_expect VARCHAR(8) CHARACTER SET ascii, p_expect_version BIGINT`;
  const deleteParams = `p_namespace VARBINARY(64), p_key VARBINARY(512), p_journal TINYINT,
      p_expect VARCHAR(8) CHARACTER SET ascii, p_expect_version BIGINT`;
  // The bodies of the write and delete, the same in the functions (a call is a bypass write since
  // triggers version 3; kept for a process of the previous release) and in the package (Lockstep's
  // own writes). `done(expr)` returns: the package clears its running mark first.
  const deleteBody = (done: (value: string) => string) => `
      -- The anchor first, marked so that the DELETE trigger does not journal this delete.
      INSERT INTO ${T} (namespace, \`key\`, version, deleted_at, writer) VALUES (p_namespace, p_key, 0, ${NOW_MS}, '${DELETE_MARKER}')
        ON DUPLICATE KEY UPDATE writer = VALUES(writer), deleted_at = VALUES(deleted_at);
      -- A precondition: the anchor keeps the row from being created or removed (so the snapshot read
      -- of its existence is current, and takes no gap lock); the locking read sees the latest
      -- overwrite and keeps others out until this statement ends.
      IF p_expect IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM ${KV} WHERE ${atArgs}) THEN
          SET live = COALESCE((SELECT version FROM ${KV} WHERE ${atArgs} FOR UPDATE), 0);
        END IF;
        IF ${fails('live')} THEN
          ${refuse('live')}
        END IF;
      END IF;
      -- Holding the anchor, nobody can create or remove the row: this snapshot read is current.
      IF EXISTS (SELECT 1 FROM ${KV} WHERE ${atArgs}) THEN
        DELETE FROM ${KV} WHERE ${atArgs};
        SET existed = ROW_COUNT() > 0;
      END IF;
      -- The DELETE trigger already raised the tombstone above the row; a missing key goes one up.
      UPDATE ${T} SET version = IF(existed, version, version + 1), writer = NULL WHERE ${atArgs};
      SET v = (SELECT version FROM ${T} WHERE ${atArgs});
      IF p_journal THEN
        INSERT INTO ${J} (namespace, \`key\`, version, reason, created_at) VALUES (p_namespace, p_key, v, 'repair', ${NOW_MS});
      END IF;
      ${done('IF(existed, v, -v)')}`;
  const writeBody = (done: (value: string) => string) => `
      -- A snapshot read first: an UPDATE that finds no row would take a gap lock, and two such
      -- statements inserting into one gap deadlock.
      IF EXISTS (SELECT 1 FROM ${KV} WHERE ${atArgs}) THEN
        IF p_expect IS NOT NULL THEN
          -- The row lock, and the latest version: no other write of the row until this statement ends.
          SET live = (SELECT version FROM ${KV} WHERE ${atArgs} FOR UPDATE);
          IF live IS NULL THEN
            ${done('0')} -- deleted meanwhile: the caller retries (and sees the key as not live)
          END IF;
          IF ${fails('live')} THEN
            ${refuse('live')}
          END IF;
        END IF;
        UPDATE ${KV} SET value = p_value, version = version + 1, writer = '${UPDATE_MARKER}', updated_at = ${NOW_MS} WHERE ${atArgs};
        IF ROW_COUNT() = 0 THEN
          ${done('0')} -- deleted meanwhile: the caller retries (as an insert above the delete)
        END IF;
      ELSE
        -- Not live as of this snapshot: a create committed since then makes the INSERT below fail
        -- with a duplicate key, retried by the caller, so a refusal here never hides a live row.
        IF p_expect IS NOT NULL AND (${fails('0')}) THEN
          ${refuse('0')}
        END IF;
        -- The BEFORE INSERT trigger takes the anchor and the version; a duplicate (errno 1062) is retried.
        INSERT INTO ${KV} (namespace, \`key\`, value, writer, updated_at) VALUES (p_namespace, p_key, p_value, '${INSERT_MARKER}', ${NOW_MS});
      END IF;
      SET v = (SELECT version FROM ${KV} WHERE ${atArgs});
      IF p_journal THEN
        INSERT INTO ${J} (namespace, \`key\`, version, reason, created_at) VALUES (p_namespace, p_key, v, 'repair', ${NOW_MS});
      END IF;
      ${done('v')}`;
  const plainReturn = (value: string) => `RETURN ${value};`;
  const packageReturn = (value: string) => `running := NULL; RETURN ${value};`;

  // sql_mode ORACLE syntax. `running`: the start of the statement running a call (NULL between calls).
  const packageDdl: [string, string] = [
    `CREATE PACKAGE IF NOT EXISTS ${P} AS
      FUNCTION \`owns\` RETURN INT;
      FUNCTION \`write\`(${writeParams}) RETURN BIGINT;
      FUNCTION \`delete\`(${deleteParams}) RETURN BIGINT;
    END`,
    `CREATE OR REPLACE PACKAGE BODY ${P} COMMENT '${MYSQL_PACKAGE_VERSION}' AS
      running DATETIME(6) := NULL;
      FUNCTION \`owns\` RETURN INT AS
      BEGIN
        RETURN running <=> NOW(6);
      END;
      FUNCTION \`write\`(${writeParams}) RETURN BIGINT AS
        v BIGINT := NULL;
        live BIGINT := NULL;
        msg VARCHAR(128) := NULL;
      BEGIN
        running := NOW(6);
        ${writeBody(packageReturn)}
      EXCEPTION
        WHEN OTHERS THEN
          running := NULL; -- a caller's handler that goes on must not find it set
          RAISE;
      END;
      FUNCTION \`delete\`(${deleteParams}) RETURN BIGINT AS
        existed BOOLEAN := FALSE;
        v BIGINT := NULL;
        live BIGINT := 0;
        msg VARCHAR(128) := NULL;
      BEGIN
        running := NOW(6);
        ${deleteBody(packageReturn)}
      EXCEPTION
        WHEN OTHERS THEN
          running := NULL; -- as in write
          RAISE;
      END;
    END`,
  ];

  // One statement per call: atomic in autocommit, the version read back in the same round trip.
  const functionDdl = [
    `CREATE OR REPLACE FUNCTION ${name('delete')}(${deleteParams})
    RETURNS BIGINT MODIFIES SQL DATA NOT DETERMINISTIC COMMENT '${MYSQL_SCHEMA_VERSION}: returns the version, negated if the key did not exist'
    BEGIN
      DECLARE existed BOOLEAN DEFAULT FALSE;
      DECLARE v BIGINT DEFAULT NULL;
      DECLARE live BIGINT DEFAULT 0;
      DECLARE msg VARCHAR(128) DEFAULT NULL;${deleteBody(plainReturn)}
    END`,
    `CREATE OR REPLACE FUNCTION ${name('write')}(${writeParams})
    RETURNS BIGINT MODIFIES SQL DATA NOT DETERMINISTIC COMMENT '${MYSQL_SCHEMA_VERSION}: returns the version, or 0 when the caller must retry'
    BEGIN
      DECLARE v BIGINT DEFAULT NULL;
      DECLARE live BIGINT DEFAULT NULL;
      DECLARE msg VARCHAR(128) DEFAULT NULL;${writeBody(plainReturn)}
    END`,
  ];

  return {
    database,
    prefix,
    kv: KV,
    tombstones: T,
    journal: J,
    journalLock: L,
    meta: M,
    guardName: `${prefix}guard`,
    guardDdl,
    writeFunction: name('write'),
    deleteFunction: name('delete'),
    ownWriteFunction: `${P}.\`write\``,
    ownDeleteFunction: `${P}.\`delete\``,
    packageName: `${prefix}own`,
    packageDdl,
    triggerReplaceDdl: triggers_.map((t) => `CREATE OR REPLACE TRIGGER ${name(t.suffix)} ${t.timing} ON ${t.table} FOR EACH ROW\nBEGIN\n${t.body}\nEND`),
    tableNames: ['kv', 'tombstones', 'journal', 'journal_lock', 'meta'].map((t) => `${prefix}${t}`),
    triggerNames: triggers.map((t) => `${prefix}${t}`),
    routineNames: routines.map((r) => `${prefix}${r}`),
    ddl: [...tables, ...triggerDdl, ...functionDdl],
  };
}
