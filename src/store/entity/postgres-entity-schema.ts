// PostgreSQL DDL for an entity table: the migration helper that adds a version column, and the
// triggers that version and journal writes made to the table outside Lockstep. They reuse the
// key/value store's lockstep_tombstones and lockstep_journal of the same schema (namespace = the
// entity name, key = the id as text), so journal ids keep commit order and appends notify LISTENers.
//
// How the triggers tell Lockstep's writes from others: Lockstep's transaction sets the
// transaction-local setting `lockstep.writing` to its own transaction id, the entity and the id it
// writes (writingMark); a row trigger's WHEN clause skips a row only when the setting names the
// current transaction and that very row, so Lockstep's own write runs no trigger function. The mark
// names the row, not the transaction: what the write does to OTHER rows (an ON DELETE CASCADE or ON
// UPDATE CASCADE into another cached table, the application's own trigger) is versioned and
// journaled like plain SQL. No other session can see that setting, and a mark plain SQL sets by
// mistake (a session-level SET left on a pooled connection, 'on' as earlier releases set it) names
// no transaction that writes after it: those writes are still versioned.
//
// Concurrency: an id is created (INSERT) or removed by Lockstep's delete of a missing row only under
// a transaction-scoped advisory lock on the id (lockstep_entity_lock; past ENTITY_LOCK_ESCALATION ids
// in one transaction, on the whole entity), which the bypass INSERT and rename triggers take too; after taking it, each reads the tombstone in a later statement (a fresh
// snapshot in READ COMMITTED), so a re-created id continues above a delete that committed during the
// wait. Updates of an existing row are ordered by its row lock.
//
// Bypass writes get: INSERT → max(its version, 1 + tombstone); UPDATE → max(its version, old + 1)
// (a rename: above the new id's tombstone too, and the old id is tombstoned); DELETE → a tombstone at
// 1 + max(row, tombstone); TRUNCATE → every row tombstoned first. Plain SQL in REPEATABLE READ or
// SERIALIZABLE: an INSERT or rename onto an id whose tombstone its snapshot cannot see fails with a
// serialization failure, and TRUNCATE is refused (see lockstep_entity_before_truncate). The functions are shared by every
// entity table of the schema; each table's triggers pass (entity, id column, version column).
import { createHash } from 'node:crypto';
import type { PostgresClient, PostgresPool } from '../postgres.js';
import { quoteIdentifier } from '../postgres-schema.js';
import { takeDdlLock } from './postgres-ddl-lock.js';
import { CLIENT_MARGIN_MS } from '../client-timeouts.js';
import { checkoutWithin } from '../postgres-checkout.js';
import { identifier, type EntitySpec } from './spec.js';

/** The transaction-local count of id locks a transaction took (lockstep_entity_lock). */
const ENTITY_LOCKS_SETTING = 'lockstep.entity_locks';
/** How many id locks one transaction takes before it locks the whole entity instead. */
export const ENTITY_LOCK_ESCALATION = 1_000;

/** The transaction-local setting that marks Lockstep's own writes. */
export const WRITING_SETTING = 'lockstep.writing';

/**
 * How long the helpers below wait for a connection and for each catalog query, unless told
 * otherwise (an entity store's open: its statement timeout plus 1 s). A server that accepts and
 * then does not answer fails them, and the connection is destroyed, instead of holding them forever.
 */
export const CATALOG_WAIT_MS = 10_000;
/** The DDL statement's own timeout (set in its transaction; the client waits 1 s more), as the key/value store's DDL. */
const DDL_STATEMENT_MS = 60_000;
/** The transaction's own id, which the mark starts with. */
export const WRITING_MARK = 'pg_catalog.pg_current_xact_id()::text';
/** The mark of one row: `<transaction id>:<entity>:<id as text>` (an entity name holds no colon). */
export const writingMark = (entity: string, id: string): string => `(${WRITING_MARK} || ':' || ${entity} || ':' || ${id})`;

/** The functions of one schema (CREATE OR REPLACE: idempotent). */
export function postgresEntityFunctionsSql(schema: string): string {
  const s = quoteIdentifier(schema);
  const tomb = `${s}.lockstep_tombstones`;
  const journal = `${s}.lockstep_journal`;
  // Dynamic columns: the trigger arguments name them; to_jsonb reads them, jsonb_populate_record sets the version.
  const idOf = (row: string) => `(pg_catalog.to_jsonb(${row}) ->> TG_ARGV[1])`;
  const versionOf = (row: string) => `coalesce((pg_catalog.to_jsonb(${row}) ->> TG_ARGV[2])::bigint, 0)`;
  const tombOf = (key: string) => `(SELECT ts.version FROM ${tomb} ts WHERE ts.namespace = TG_ARGV[0] AND ts.key = ${key})`;
  const bury = (key: string, version: string) => `INSERT INTO ${tomb} AS ts (namespace, key, version, deleted_at)
      VALUES (TG_ARGV[0], ${key}, ${version}, pg_catalog.now())
      ON CONFLICT (namespace, key) DO UPDATE SET version = GREATEST(ts.version + 1, excluded.version), deleted_at = excluded.deleted_at
      RETURNING ts.version`;
  // Plain SQL in REPEATABLE READ / SERIALIZABLE cannot see a tombstone committed after its snapshot,
  // so the BEFORE triggers' read of it (and the DELETE below) would miss it, and the id would land at
  // or below its delete. ON CONFLICT sees it and refuses it (40001: the writer retries); where there
  // is none, the 0 row it inserts is deleted by the DELETE that follows it (as postgres-schema.ts).
  const refuseUnseenTombstone = (key: string) => `
  IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
    INSERT INTO ${tomb} (namespace, key, version, deleted_at) VALUES (TG_ARGV[0], ${key}, 0, pg_catalog.now())
      ON CONFLICT (namespace, key) DO NOTHING;
  END IF;`;
  const append = (key: string, version: string) =>
    `INSERT INTO ${journal} (namespace, key, version, reason) VALUES (TG_ARGV[0], ${key}, ${version}, 'trigger')`;
  return `
-- One advisory lock per id, under a shared lock on the entity. The server's lock table is shared by
-- every session and small (max_locks_per_transaction × max_connections entries: 6,400 by default): a
-- transaction that inserts more ids than ${ENTITY_LOCK_ESCALATION} (a bulk INSERT … SELECT, a logical
-- replication subscription's initial copy) takes the entity's lock exclusively instead, for the rest
-- of it, which excludes every id lock of the entity (one lock per id ran out of shared memory).
CREATE OR REPLACE FUNCTION ${s}.lockstep_entity_lock(p_entity text, p_key text) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  taken int := coalesce(NULLIF(pg_catalog.current_setting('${ENTITY_LOCKS_SETTING}', true), '')::int, 0);
  whole bigint := pg_catalog.hashtextextended(${literal(`lockstep:entity-all:${schema}:`)} || p_entity, 0);
BEGIN
  IF taken >= ${ENTITY_LOCK_ESCALATION} THEN
    PERFORM pg_catalog.pg_advisory_xact_lock(whole);
    RETURN;
  END IF;
  PERFORM pg_catalog.pg_advisory_xact_lock_shared(whole);
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(${literal(`lockstep:entity:${schema}:`)} || p_entity || ':' || p_key, 0));
  PERFORM pg_catalog.set_config('${ENTITY_LOCKS_SETTING}', (taken + 1)::text, true);
END $fn$;

CREATE OR REPLACE FUNCTION ${s}.lockstep_entity_before_insert() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM ${s}.lockstep_entity_lock(TG_ARGV[0], ${idOf('NEW')});
  NEW := pg_catalog.jsonb_populate_record(NEW, pg_catalog.jsonb_build_object(TG_ARGV[2],
    GREATEST(${versionOf('NEW')}, 1 + coalesce(${tombOf(idOf('NEW'))}, 0))));
  RETURN NEW;
END $fn$;

CREATE OR REPLACE FUNCTION ${s}.lockstep_entity_after_insert() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  ${refuseUnseenTombstone(idOf('NEW'))}
  DELETE FROM ${tomb} ts WHERE ts.namespace = TG_ARGV[0] AND ts.key = ${idOf('NEW')};
  ${append(idOf('NEW'), versionOf('NEW'))};
  RETURN NULL;
END $fn$;

CREATE OR REPLACE FUNCTION ${s}.lockstep_entity_before_update() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  v bigint := GREATEST(${versionOf('NEW')}, ${versionOf('OLD')} + 1);
BEGIN
  IF ${idOf('NEW')} IS DISTINCT FROM ${idOf('OLD')} THEN
    PERFORM ${s}.lockstep_entity_lock(TG_ARGV[0], ${idOf('NEW')});
    v := GREATEST(v, 1 + coalesce(${tombOf(idOf('NEW'))}, 0));
  END IF;
  NEW := pg_catalog.jsonb_populate_record(NEW, pg_catalog.jsonb_build_object(TG_ARGV[2], v));
  RETURN NEW;
END $fn$;

CREATE OR REPLACE FUNCTION ${s}.lockstep_entity_after_update() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  gone bigint;
BEGIN
  IF ${idOf('NEW')} IS DISTINCT FROM ${idOf('OLD')} THEN
    ${refuseUnseenTombstone(idOf('NEW'))}
    DELETE FROM ${tomb} ts WHERE ts.namespace = TG_ARGV[0] AND ts.key = ${idOf('NEW')};
    ${bury(idOf('OLD'), versionOf('NEW'))} INTO gone;
    ${append(idOf('OLD'), 'gone')};
  END IF;
  ${append(idOf('NEW'), versionOf('NEW'))};
  RETURN NULL;
END $fn$;

CREATE OR REPLACE FUNCTION ${s}.lockstep_entity_after_delete() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  v bigint;
BEGIN
  ${bury(idOf('OLD'), `${versionOf('OLD')} + 1`)} INTO v;
  ${append(idOf('OLD'), 'v')};
  RETURN NULL;
END $fn$;

-- TRUNCATE fires no row trigger: tombstone and journal every row before it goes. Refused outside
-- READ COMMITTED: it removes rows committed after the snapshot, which the snapshot cannot tombstone.
CREATE OR REPLACE FUNCTION ${s}.lockstep_entity_before_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = pg_catalog.format('lockstep: TRUNCATE of %I.%I needs READ COMMITTED', TG_TABLE_SCHEMA, TG_TABLE_NAME),
      DETAIL = 'Its snapshot cannot see rows committed since it was taken, so they could not be tombstoned and journaled.',
      HINT = 'Run it in a READ COMMITTED transaction, or use DELETE.';
  END IF;
  EXECUTE pg_catalog.format($q$
    WITH buried AS (
      INSERT INTO ${tomb} AS ts (namespace, key, version, deleted_at)
        SELECT %L, t.%I::text, coalesce(t.%I, 0) + 1, pg_catalog.now() FROM %I.%I t
        ON CONFLICT (namespace, key) DO UPDATE SET version = GREATEST(ts.version + 1, excluded.version), deleted_at = excluded.deleted_at
        RETURNING ts.namespace, ts.key, ts.version)
    INSERT INTO ${journal} (namespace, key, version, reason) SELECT namespace, key, version, 'trigger' FROM buried$q$,
    TG_ARGV[0], TG_ARGV[1], TG_ARGV[2], TG_TABLE_SCHEMA, TG_TABLE_NAME);
  RETURN NULL;
END $fn$;
`;
}

/** A SQL string literal of a value that holds no quote (schema and entity names are validated). */
function literal(value: string): string {
  if (value.includes("'")) throw new Error('unexpected quote in a literal');
  return `'${value}'`;
}

/** The triggers of one table (DROP IF EXISTS + CREATE: idempotent). */
export function postgresEntityTriggersSql(schema: string, spec: EntitySpec): string {
  const s = quoteIdentifier(schema);
  const t = `${s}.${quoteIdentifier(spec.table)}`;
  const args = [spec.entity, spec.idColumn, spec.versionColumn].map(literal).join(', ');
  const notOurs = (row: 'NEW' | 'OLD') =>
    ` WHEN (pg_catalog.current_setting('${WRITING_SETTING}', true) IS DISTINCT FROM ${writingMark(literal(spec.entity), `(${row}.${quoteIdentifier(spec.idColumn)})::text`)})`;
  // Lockstep never truncates: TRUNCATE is always someone else's. Enabled ALWAYS: a trigger enabled the
  // default way fires in no session under session_replication_role = replica, which a logical
  // replication subscription's apply worker (and some bulk loaders) run under.
  const trigger = (name: string, timing: string, level: 'ROW' | 'STATEMENT', row?: 'NEW' | 'OLD') => `
DROP TRIGGER IF EXISTS lockstep_${name} ON ${t};
CREATE TRIGGER lockstep_${name} ${timing} ON ${t} FOR EACH ${level}${row === undefined ? '' : notOurs(row)}
  EXECUTE FUNCTION ${s}.lockstep_entity_${name}(${args});
ALTER TABLE ${t} ENABLE ALWAYS TRIGGER lockstep_${name};`;
  return [
    trigger('before_insert', 'BEFORE INSERT', 'ROW', 'NEW'),
    trigger('after_insert', 'AFTER INSERT', 'ROW', 'NEW'),
    trigger('before_update', 'BEFORE UPDATE', 'ROW', 'NEW'),
    trigger('after_update', 'AFTER UPDATE', 'ROW', 'NEW'),
    trigger('after_delete', 'AFTER DELETE', 'ROW', 'OLD'),
    trigger('before_truncate', 'BEFORE TRUNCATE', 'STATEMENT'),
  ].join('\n');
}

/**
 * Whether `column` alone identifies a row of schema.table: a unique index (the primary key's
 * included) on that column alone, not partial and not on an expression. An id that is one column of
 * a composite key would make one read, write or delete by id reach several rows.
 */
export async function isUniqueColumn(pool: PostgresPool, schema: string, table: string, column: string, waitMs = CATALOG_WAIT_MS): Promise<boolean> {
  const client: PostgresClient = await checkoutWithin(pool, waitMs);
  try {
    const { rows } = await client.query({
      text: `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
          WHERE i.indrelid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text))
            AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = $3) AS unique`,
      values: [schema, table, column],
    });
    return rows[0]?.unique === true;
  } finally {
    client.release();
  }
}

/** Waits of one DDL transaction: `lockTimeoutMs` for its table locks (unbounded without), `ddlLockWaitMs` for the schema's DDL advisory lock. */
export interface DdlWaits {
  readonly lockTimeoutMs?: number;
  /** @default DDL_LOCK_WAIT_MS (30 s) */
  readonly ddlLockWaitMs?: number;
  /** For a connection and for each statement other than the DDL itself. @default CATALOG_WAIT_MS (10 s) */
  readonly waitMs?: number;
}

/** Runs `sql` in one transaction under the schema's DDL advisory lock (a bounded wait, postgres-ddl-lock.ts). */
async function ddl(pool: PostgresPool, schema: string, sql: string, waits: DdlWaits = {}): Promise<void> {
  const { lockTimeoutMs, ddlLockWaitMs, waitMs = CATALOG_WAIT_MS } = waits;
  const client: PostgresClient = await checkoutWithin(pool, waitMs);
  try {
    await client.query({ text: 'BEGIN' });
    await takeDdlLock(client, schema, ddlLockWaitMs);
    await client.query({ text: `SELECT pg_catalog.set_config('statement_timeout', $1, true)`, values: [String(DDL_STATEMENT_MS)] });
    if (lockTimeoutMs !== undefined) await client.query({ text: `SELECT pg_catalog.set_config('lock_timeout', $1, true)`, values: [String(lockTimeoutMs)] });
    await client.query({ text: sql, query_timeout: DDL_STATEMENT_MS + CLIENT_MARGIN_MS });
    await client.query({ text: 'COMMIT' });
    client.release();
  } catch (error) {
    await client.query({ text: 'ROLLBACK' }).catch(() => undefined);
    client.release(true);
    throw error;
  }
}

/**
 * Adds a bigint version column (default 1: every existing row counts as written once) unless the
 * table has it. Idempotent (ADD COLUMN IF NOT EXISTS): run it from a migration or at start-up.
 */
export async function addVersionColumn(pool: PostgresPool, table: string, options: { schema?: string; column?: string; ddlLockWaitMs?: number } = {}): Promise<void> {
  const schema = identifier(options.schema ?? 'public', 'schema');
  const column = identifier(options.column ?? 'version', 'column');
  const t = `${quoteIdentifier(schema)}.${quoteIdentifier(identifier(table, 'table'))}`;
  await ddl(pool, schema, `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS ${quoteIdentifier(column)} bigint NOT NULL DEFAULT 1`, options);
}

const TRIGGER_NAMES = ['before_insert', 'after_insert', 'before_update', 'after_update', 'after_delete', 'before_truncate'];

/**
 * The installed triggers of the table: each one's comment (the digest of the DDL that made it), whether
 * it calls its function with these arguments, and whether it fires always (`ALTER TABLE … ENABLE
 * TRIGGER` after a bulk load sets it back to origin sessions only: the next open enables it ALWAYS again).
 */
async function installedTriggers(pool: PostgresPool, schema: string, spec: EntitySpec, waitMs = CATALOG_WAIT_MS): Promise<Array<{ comment: string | null; sameCall: boolean; always: boolean }>> {
  const args = [spec.entity, spec.idColumn, spec.versionColumn].map(literal).join(', ');
  const client: PostgresClient = await checkoutWithin(pool, waitMs);
  try {
    const { rows } = await client.query({
      text: `SELECT t.tgname AS name, pg_catalog.obj_description(t.oid, 'pg_trigger') AS comment, pg_catalog.pg_get_triggerdef(t.oid) AS def, t.tgenabled = 'A' AS always
        FROM pg_catalog.pg_trigger t WHERE t.tgrelid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text)) AND NOT t.tgisinternal`,
      values: [schema, spec.table],
    });
    return TRIGGER_NAMES.flatMap((name) => {
      const row = rows.find((r) => r.name === `lockstep_${name}`);
      if (row === undefined) return [];
      return [{ comment: row.comment as string | null, sameCall: String(row.def).endsWith(`lockstep_entity_${name}(${args})`), always: row.always === true }];
    });
  } finally {
    client.release();
  }
}

/**
 * Installs the bypass triggers of one entity table (and the schema's shared functions). Idempotent.
 * Triggers already made by this DDL (their comment is its digest) are left alone: re-creating them
 * takes the table's ACCESS EXCLUSIVE lock, which queues every query on the table behind any open
 * transaction that read it. With `lockTimeoutMs` (an entity store opening) that lock is waited for
 * at most so long; if it cannot be had and all six triggers of an earlier release are there for the
 * same entity and columns, they stay (they are correct with this release: docs/orm.md) and the next
 * open tries again.
 */
export async function installEntityTriggers(pool: PostgresPool, schema: string, spec: EntitySpec, options: DdlWaits = {}): Promise<void> {
  identifier(schema, 'schema');
  const functions = postgresEntityFunctionsSql(schema);
  const functionsDigest = createHash('sha256').update(functions).digest('hex');
  if (!(await functionsCurrent(pool, schema, functionsDigest, options.waitMs))) {
    await ddl(pool, schema, `${functions}\n${stampFunctionsSql(schema, functionsDigest)}`, { ddlLockWaitMs: options.ddlLockWaitMs, waitMs: options.waitMs });
  }
  const triggers = postgresEntityTriggersSql(schema, spec);
  const digest = createHash('sha256').update(triggers).digest('hex');
  const installed = await installedTriggers(pool, schema, spec, options.waitMs);
  if (installed.length === TRIGGER_NAMES.length && installed.every((t) => t.comment === digest && t.always)) return;
  const t = `${quoteIdentifier(schema)}.${quoteIdentifier(spec.table)}`;
  const comments = TRIGGER_NAMES.map((name) => `COMMENT ON TRIGGER lockstep_${name} ON ${t} IS ${literal(digest)};`).join('\n');
  try {
    await ddl(pool, schema, `${triggers}\n${comments}`, options);
  } catch (error) {
    const lockTimeout = (error as { code?: unknown }).code === LOCK_NOT_AVAILABLE;
    if (lockTimeout && installed.length === TRIGGER_NAMES.length && installed.every((t) => t.sameCall)) return;
    throw error;
  }
}

/**
 * What PostgreSQL holds of the schema's entity functions: one md5 over each one's full definition
 * (pg_get_functiondef: body, language, settings), so a function replaced by hand no longer matches.
 */
const functionsFingerprintSql = (schemaParam: string) => `(SELECT pg_catalog.md5(pg_catalog.string_agg(pg_catalog.pg_get_functiondef(p.oid), E'\\n' ORDER BY p.proname COLLATE "C"))
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname = ${schemaParam} AND p.proname LIKE 'lockstep\\_entity\\_%')`;

/**
 * Stamps the functions just made: the lock function's comment is the digest of this release's DDL
 * and the fingerprint of what PostgreSQL now holds. Run in the DDL's transaction, after the functions.
 */
function stampFunctionsSql(schema: string, digest: string): string {
  return `DO $lockstep$ BEGIN
  EXECUTE pg_catalog.format('COMMENT ON FUNCTION %I.lockstep_entity_lock(text, text) IS %L', ${literal(schema)}, ${literal(digest)} || ' ' || ${functionsFingerprintSql(literal(schema))});
END $lockstep$;`;
}

/**
 * Whether the schema's functions are this release's, untouched since: then an open installs nothing
 * and takes no DDL lock (a migration holding that lock does not hold up every entity store's open).
 */
async function functionsCurrent(pool: PostgresPool, schema: string, digest: string, waitMs = CATALOG_WAIT_MS): Promise<boolean> {
  const client: PostgresClient = await checkoutWithin(pool, waitMs);
  try {
    const { rows } = await client.query({
      text: `SELECT (SELECT pg_catalog.obj_description(p.oid, 'pg_proc') FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = $1 AND p.proname = 'lockstep_entity_lock') AS stamp, ${functionsFingerprintSql('$1')} AS fingerprint`,
      values: [schema],
    });
    const { stamp, fingerprint } = rows[0] ?? {};
    return typeof fingerprint === 'string' && stamp === `${digest} ${fingerprint}`;
  } finally {
    client.release();
  }
}

/** SQLSTATE lock_not_available: lock_timeout expired. */
const LOCK_NOT_AVAILABLE = '55P03';

/** Removes them (a table that no longer goes through Lockstep). */
export async function dropEntityTriggers(pool: PostgresPool, schema: string, table: string, options: { ddlLockWaitMs?: number } = {}): Promise<void> {
  const t = `${quoteIdentifier(identifier(schema, 'schema'))}.${quoteIdentifier(identifier(table, 'table'))}`;
  const names = ['before_insert', 'after_insert', 'before_update', 'after_update', 'after_delete', 'before_truncate'];
  await ddl(pool, schema, names.map((n) => `DROP TRIGGER IF EXISTS lockstep_${n} ON ${t};`).join('\n'), options);
}
