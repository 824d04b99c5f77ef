// The MariaDB schema's DDL as schema version 2 installed it (main at f312ccd), frozen: the upgrade
// tests install it as a store of that version (the previous release) would, then open a current
// store on it. Only the DDL function is kept, renamed; its comments are cut.
import { PRECONDITION_FAILED_MARKER } from '../../src/store/precondition.js';
/** Version of this DDL, kept as the comment of the write function, created last. */
const MYSQL_SCHEMA_VERSION = 'lockstep:mysql-schema:2';

/**
 * SQLSTATE of the error Lockstep's write and delete functions SIGNAL when a precondition fails; the
 * message ends with PRECONDITION_FAILED_MARKER and the key's live version (0 when not live). The
 * statement, and so its autocommit transaction, rolls back.
 */
const PRECONDITION_SQLSTATE = '45412';

/** `writer` of a row Lockstep inserts, replaced by the BEFORE INSERT trigger. */
const INSERT_MARKER = 'lockstep:insert';
/** `writer` Lockstep sets on UPDATE, replaced by the BEFORE UPDATE trigger. */
const UPDATE_MARKER = 'lockstep:update';
/** `writer` of a key's tombstone while Lockstep's delete of the key runs. */
const DELETE_MARKER = 'lockstep:delete';
/** `writer` of a committed row that Lockstep wrote last (NULL: plain SQL did). */
const LOCKSTEP_WRITER = 'lockstep';

/** Wall-clock ms since the epoch, from the statement's start time (no time zone involved). */
const NOW_MS = 'CAST(FLOOR(@@timestamp * 1000) AS SIGNED)';

const PREFIX = /^[A-Za-z_][A-Za-z0-9_]{0,31}$/;
const DATABASE = /^[A-Za-z0-9_$-]{1,64}$/;

function isTablePrefix(value: unknown): value is string {
  return typeof value === 'string' && PREFIX.test(value);
}

function isDatabaseName(value: unknown): value is string {
  return typeof value === 'string' && DATABASE.test(value);
}

/** A validated name, quoted with backticks. Identifiers cannot be parameters. */
function quote(name: string, valid: (value: string) => boolean): string {
  if (!valid(name)) throw new Error(`not a valid identifier: ${JSON.stringify(name)}`);
  return `\`${name}\``;
}

type TriggerName = 'kv_before_insert' | 'kv_after_insert' | 'kv_before_update' | 'kv_after_update' | 'kv_after_delete' | 'journal_before_insert';
type RoutineName = 'write' | 'delete';

interface MysqlSchema {
  readonly database: string;
  readonly prefix: string;
  /** Qualified, quoted table names. */
  readonly kv: string;
  readonly tombstones: string;
  readonly journal: string;
  readonly journalLock: string;
  /** One row per setting: `journal_id`, the journal's name (drawn once). */
  readonly meta: string;
  /** Qualified, quoted function names. */
  readonly writeFunction: string;
  readonly deleteFunction: string;
  /** Unquoted names, for information_schema. */
  readonly tableNames: readonly string[];
  readonly triggerNames: readonly string[];
  readonly routineNames: readonly string[];
  /** Idempotent DDL, one statement each, tables first and the write function last. */
  readonly ddl: readonly string[];
}

export function mysqlSchemaV2Ddl(database: string, prefix: string): MysqlSchema {
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
  const trigger = (suffix: TriggerName, timing: string, table: string, body: string) =>
    `CREATE TRIGGER IF NOT EXISTS ${name(suffix)} ${timing} ON ${table} FOR EACH ROW\nBEGIN\n${body}\nEND`;

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
  IF NEW.writer <=> '${INSERT_MARKER}' THEN
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
  IF NEW.writer <=> '${UPDATE_MARKER}' THEN
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
  IF NOT (mark <=> '${DELETE_MARKER}') THEN
    ${journalTombstone('OLD')}
  END IF;`),
  ];

  // One statement per call: atomic in autocommit, the version read back in the same round trip.
  const functionDdl = [
    `CREATE OR REPLACE FUNCTION ${name('delete')}(p_namespace VARBINARY(64), p_key VARBINARY(512), p_journal TINYINT,
      p_expect VARCHAR(8) CHARACTER SET ascii, p_expect_version BIGINT)
    RETURNS BIGINT MODIFIES SQL DATA NOT DETERMINISTIC COMMENT '${MYSQL_SCHEMA_VERSION}: returns the version, negated if the key did not exist'
    BEGIN
      DECLARE existed BOOLEAN DEFAULT FALSE;
      DECLARE v BIGINT DEFAULT NULL;
      DECLARE live BIGINT DEFAULT 0;
      DECLARE msg VARCHAR(128) DEFAULT NULL;
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
      RETURN IF(existed, v, -v);
    END`,
    `CREATE OR REPLACE FUNCTION ${name('write')}(p_namespace VARBINARY(64), p_key VARBINARY(512), p_value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, p_journal TINYINT,
      p_expect VARCHAR(8) CHARACTER SET ascii, p_expect_version BIGINT)
    RETURNS BIGINT MODIFIES SQL DATA NOT DETERMINISTIC COMMENT '${MYSQL_SCHEMA_VERSION}: returns the version, or 0 when the caller must retry'
    BEGIN
      DECLARE v BIGINT DEFAULT NULL;
      DECLARE live BIGINT DEFAULT NULL;
      DECLARE msg VARCHAR(128) DEFAULT NULL;
      -- A snapshot read first: an UPDATE that finds no row would take a gap lock, and two such
      -- statements inserting into one gap deadlock.
      IF EXISTS (SELECT 1 FROM ${KV} WHERE ${atArgs}) THEN
        IF p_expect IS NOT NULL THEN
          -- The row lock, and the latest version: no other write of the row until this statement ends.
          SET live = (SELECT version FROM ${KV} WHERE ${atArgs} FOR UPDATE);
          IF live IS NULL THEN
            RETURN 0; -- deleted meanwhile: the caller retries (and sees the key as not live)
          END IF;
          IF ${fails('live')} THEN
            ${refuse('live')}
          END IF;
        END IF;
        UPDATE ${KV} SET value = p_value, version = version + 1, writer = '${UPDATE_MARKER}', updated_at = ${NOW_MS} WHERE ${atArgs};
        IF ROW_COUNT() = 0 THEN
          RETURN 0; -- deleted meanwhile: the caller retries (as an insert above the delete)
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
      RETURN v;
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
    writeFunction: name('write'),
    deleteFunction: name('delete'),
    tableNames: ['kv', 'tombstones', 'journal', 'journal_lock', 'meta'].map((t) => `${prefix}${t}`),
    triggerNames: triggers.map((t) => `${prefix}${t}`),
    routineNames: routines.map((r) => `${prefix}${r}`),
    ddl: [...tables, ...triggerDdl, ...functionDdl],
  };
}
