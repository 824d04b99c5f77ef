// The PostgreSQL schema: the versioned key-value table, the tombstones of deleted keys and the change
// journal, Lockstep's write and delete functions, and the triggers that version and journal writes
// made with plain SQL outside Lockstep. Same data model and rules as sqlite-schema.ts.
//
// Versions are per key: a write of an existing row takes `version + 1`; a new key takes 1 + the
// version of its tombstone (0 without one); a delete records a tombstone at 1 + max(row, tombstone).
//
// Concurrency. SQLite runs one writer at a time; PostgreSQL does not, so every path that creates or
// removes a key first holds the key's entry in lockstep_kv's primary key, then touches its tombstone:
// - an existing row: its row lock (INSERT … ON CONFLICT DO UPDATE, UPDATE, DELETE all take it);
// - a new key: its uncommitted index entry (any other inserter of the key waits for this one);
// - Lockstep's delete of a missing key inserts a placeholder row and deletes it in the same
//   transaction, only so that a concurrent insert of the key commits wholly before or after it.
// One order everywhere (key entry, then tombstone) means no deadlock between single-key writes. A
// writer that waited for the key entry reads the tombstone in a later statement (a fresh snapshot in
// READ COMMITTED) and, if a delete committed meanwhile, continues above it. That is why Lockstep's
// write is a function: one statement per call, but the tombstone is read after the key is held. A
// single INSERT … ON CONFLICT with the tombstone in a CTE reads it in the statement's snapshot, taken
// before the wait, and a delete committed during the wait would be missed (re-create below its
// delete). The session must be READ COMMITTED: the adapter sets default_transaction_isolation.
//
// How the triggers tell Lockstep's writes from everyone else's: by the `writer` column, which is
// Lockstep's alone (plain SQL must leave it alone, as in SQLite). Every Lockstep write sets it to a
// token minted from the current transaction id, `lockstep:<xid>:` + a letter, that no committed row
// of another transaction can carry:
// - INSERT is Lockstep's when NEW.writer is this transaction's 'w' (write) or 'd' (delete placeholder).
// - UPDATE is Lockstep's when it changed `writer` to a token of this transaction. A plain UPDATE
//   leaves `writer` as it was (a token of an older transaction, or NULL), so it is a bypass whatever
//   else it changed: `SET version = version + 1`, a rename, nothing at all. The UPDATE trigger's own
//   versioning UPDATE leaves it as it was too, and the INSERT trigger's lift above a tombstone
//   leaves it NULL (no token of a plain transaction is ever left in a row by the triggers): the
//   UPDATE trigger skips those UPDATEs by a mark, see lockstep_kv_bypass_after_update.
// - DELETE is Lockstep's when the row holds this transaction's 'd' mark (set just before, as SQLite).
// The checks are trigger WHEN clauses, so Lockstep's own writes run no PL/pgSQL trigger at all.
//
// Bypass writes get: INSERT → 1 + tombstone; UPDATE → 1 + old version (a rename: above the new key's
// tombstone too), DELETE → a tombstone at 1 + max(row, tombstone). Each appends the key to the journal
// with reason 'trigger'. A rename also deletes the old key: tombstone and journal it with the new
// row's version. An UPDATE is versioned at the end of its statement, by a second UPDATE of the row
// in its AFTER trigger (no BEFORE UPDATE trigger: see lockstep_kv_bypass_after_update), so its
// RETURNING shows the row as the statement left it: read the version back after the statement, in
// the same transaction. TRUNCATE fires no row trigger: a statement trigger tombstones and journals every row
// first. The bypass triggers are enabled ALWAYS (schema 7): they fire under session_replication_role =
// replica too, which logical replication's apply workers and some bulk loaders run under, so those
// writes are versioned and journaled like any other plain SQL. Only ALTER TABLE … DISABLE TRIGGER
// (pg_restore --disable-triggers) still stops them.
//
// Plain SQL may run in REPEATABLE READ or SERIALIZABLE, whose snapshot (taken at the transaction's
// first statement) cannot see a tombstone committed after it: an INSERT or a rename onto that key
// is refused with a serialization failure (refuseUnseenTombstone) instead of landing at or below the
// delete, and TRUNCATE is refused outside READ COMMITTED (schema 6).
//
// Journal ids in commit order: a BIGSERIAL id is drawn at INSERT time, so a transaction that drew a
// lower id can commit after one that drew a higher id, and a drainer reading `id > cursor` would
// already have moved past it. Here a journal row is inserted with a negative placeholder id, and a
// deferred constraint trigger stamps its real id just before COMMIT, under a transaction-scoped
// advisory lock that is released only after the commit is visible. Ids are therefore drawn in commit
// order: when a reader sees id n, every id below n is committed and visible (or rolled back). The
// lock is held only from the stamp to the end of COMMIT, never across a long migration, and only by
// transactions that journal (bypass writes and cache-outage repairs). A safety window instead
// (read only rows older than t) would lose rows of any transaction that runs longer than t.
// journalHead takes the same lock, so the head it reports never hides a row still committing.

/** Version of this DDL, kept as a comment on lockstep_kv: a process that finds it skips the DDL. */
export const POSTGRES_SCHEMA_VERSION = 'lockstep:postgres-schema:7';

/**
 * SQLSTATE of the error Lockstep's write and delete functions raise when a precondition fails; its
 * DETAIL is the key's live version (0 when not live). The statement, and so its transaction, rolls back.
 */
export const PRECONDITION_SQLSTATE = 'LS412';

/** The transaction-local setting by which the bypass UPDATE trigger recognizes its own versioning UPDATE. */
const VERSIONING_SETTING = 'lockstep.kv_versioning';

/** The channel every journal append notifies; the payload is the schema name. */
export const JOURNAL_CHANNEL = 'lockstep_journal';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function isIdentifier(value: unknown): value is string {
  return typeof value === 'string' && IDENTIFIER.test(value);
}

/** A validated identifier, quoted. Throws on anything else: identifiers cannot be parameters. */
export function quoteIdentifier(name: string): string {
  if (!isIdentifier(name)) throw new Error(`not a valid identifier: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** FNV-1a 64 of a string, as a signed bigint literal: an advisory-lock key that names its purpose. */
export function advisoryKey(purpose: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(purpose, 'utf8')) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return BigInt.asIntN(64, hash).toString();
}

export interface PostgresSchemaSql {
  readonly ddlLockKey: string;
  readonly journalLockKey: string;
  /** Idempotent DDL for one transaction that already holds the DDL advisory lock. */
  readonly ddl: string;
  /**
   * By the marker of an earlier schema version: DDL that brings it to this one (for one transaction
   * that holds the DDL advisory lock), its first statement the lock on lockstep_kv. Lockstep's
   * statements are the same for each of them, so a store may also run on one it could not upgrade.
   */
  readonly upgrades: ReadonlyMap<string, string>;
  /**
   * Lockstep's write of an existing key as one plain statement ($1 namespace, $2 key, $3 value;
   * returns the row's new `version`, or no row): the statement `lockstep_write` runs first, taken
   * out of the function so the common case costs no PL/pgSQL call. No row updated (a new key, a
   * row deleted meanwhile) means nothing was written: the function then handles the key.
   */
  readonly updateExisting: string;
}

/** The DDL of one schema. `schema` must be a valid identifier (checked). */
export function postgresSchemaSql(schema: string): PostgresSchemaSql {
  const s = quoteIdentifier(schema);
  const kv = `${s}.lockstep_kv`;
  const tomb = `${s}.lockstep_tombstones`;
  const journal = `${s}.lockstep_journal`;
  const ddlLockKey = advisoryKey(`lockstep:ddl:${schema}`);
  const journalLockKey = advisoryKey(`lockstep:journal:${schema}`);
  const token = `('lockstep:' || pg_catalog.pg_current_xact_id()::text || ':')`;
  const oursInsert = `NEW.writer IN (${token} || 'w', ${token} || 'd')`;
  const oursUpdate = `NEW.writer IS DISTINCT FROM OLD.writer AND pg_catalog.starts_with(NEW.writer, ${token})`;
  const oursDelete = `OLD.writer = ${token} || 'd'`;
  // Lockstep's functions' fix-up of a row: a token of this transaction, different from the row's
  // (never in a trigger: a plain transaction's token left in a row could be copied, see above).
  const fixup = (column: string) => `CASE WHEN ${column} = ${token} || 'f' THEN ${token} || 'g' ELSE ${token} || 'f' END`;
  const renamed = `(NEW.namespace, NEW.key) IS DISTINCT FROM (OLD.namespace, OLD.key)`;
  /** Names one versioning UPDATE of the bypass UPDATE trigger: its trigger depth, the version it sets, the key. */
  const versioningMark = (depth: string, version: string) =>
    `pg_catalog.format('%s/%s/%L/%L', ${depth}, ${version}, NEW.namespace, NEW.key)`;
  const bury = (ns: string, key: string, version: string) =>
    `INSERT INTO ${tomb} AS ts (namespace, key, version, deleted_at) VALUES (${ns}, ${key}, ${version}, pg_catalog.now())
      ON CONFLICT (namespace, key) DO UPDATE
        SET version = GREATEST(ts.version + 1, excluded.version), deleted_at = excluded.deleted_at
      RETURNING ts.version`;
  const refuse = (live: string) =>
    `RAISE EXCEPTION USING ERRCODE = '${PRECONDITION_SQLSTATE}', MESSAGE = 'lockstep: precondition failed', DETAIL = (${live})::text`;
  /** Whether the precondition (p_expect, p_expect_version) fails for live version `live` (0: not live). */
  const fails = (live: string) =>
    `(p_expect = 'absent' AND ${live} <> 0) OR (p_expect = 'present' AND ${live} = 0) OR (p_expect = 'version' AND ${live} IS DISTINCT FROM p_expect_version)`;
  const appendJournal = (ns: string, key: string, version: string, reason: 'trigger' | 'repair') =>
    `INSERT INTO ${journal} (namespace, key, version, reason) VALUES (${ns}, ${key}, ${version}, '${reason}')`;
  /**
   * For plain SQL in a REPEATABLE READ or SERIALIZABLE transaction: its snapshot (taken at its first
   * statement) cannot see a tombstone committed after it, so the DELETE … RETURNING below would read
   * none and the key would come back at or below its delete. ON CONFLICT does see it, and refuses it
   * with a serialization failure (40001: the application retries, in a newer snapshot). Where
   * there is no tombstone, the 0 row this inserts is deleted by the read that follows; READ
   * COMMITTED (Lockstep's sessions, most plain SQL) reads the latest tombstone anyway and skips it.
   */
  const refuseUnseenTombstone = (ns: string, key: string) => `
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
      INSERT INTO ${tomb} (namespace, key, version, deleted_at) VALUES (${ns}, ${key}, 0, pg_catalog.now())
        ON CONFLICT (namespace, key) DO NOTHING;
    END IF;`;
  /** After a new key entry is held: take its tombstone (fresh snapshot) and continue above it. */
  const settleNewKey = (ns: string, key: string) => `
    DELETE FROM ${tomb} ts WHERE ts.namespace = ${ns} AND ts.key = ${key} RETURNING ts.version INTO t;
    IF t >= v THEN
      UPDATE ${kv} kv SET version = t + 1, writer = ${fixup('kv.writer')}
        WHERE kv.namespace = ${ns} AND kv.key = ${key} RETURNING kv.version INTO v;
    END IF;`;

  const bypassUpdateFunction = `
-- Bypass UPDATE. There is no BEFORE UPDATE trigger: a BEFORE ROW trigger makes PostgreSQL lock the
-- row before every UPDATE, Lockstep's own included, although its WHEN clause is false for them. So
-- the statement left the row's version (and writer) as it found or set them, and this trigger, at the
-- end of the same statement and under the row lock it took, versions the row with a second UPDATE:
-- 1 + the old version (a rename: above the new key's tombstone too, read in a fresh snapshot now
-- that the key entry is held), the writer the row had before the statement (as schema 4's BEFORE
-- trigger left it: no token of this transaction is left behind for plain SQL to copy), then journals
-- (a rename also tombstones the old key). That UPDATE leaves the writer as a plain one would, so it
-- fires this trigger again, one level deeper; the setting lockstep.kv_versioning names it (trigger
-- depth, version, key) for exactly that call, which returns at once. A plain UPDATE made by any other
-- trigger meanwhile runs deeper still, so it cannot match.
CREATE OR REPLACE FUNCTION ${s}.lockstep_kv_bypass_after_update() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  v bigint := 1 + coalesce(OLD.version, 0);
  t bigint;
  gone bigint;
  outer_mark text;
BEGIN
  -- A versioning UPDATE always runs from a trigger, so its own call is at least two levels deep: a
  -- mark met at the first level was set by plain SQL (a copied snippet, a session-level SET), not by us.
  IF pg_catalog.pg_trigger_depth() > 1 AND pg_catalog.current_setting('${VERSIONING_SETTING}', true)
       = ${versioningMark('pg_catalog.pg_trigger_depth() - 1', 'NEW.version')} THEN
    RETURN NULL; -- the versioning UPDATE below (or the INSERT trigger's lift), made by a trigger one level up
  END IF;
  IF ${renamed} THEN
    ${refuseUnseenTombstone('NEW.namespace', 'NEW.key')}
    DELETE FROM ${tomb} ts WHERE ts.namespace = NEW.namespace AND ts.key = NEW.key RETURNING ts.version INTO t;
    IF t >= v THEN
      v := t + 1;
    END IF;
  END IF;
  outer_mark := pg_catalog.current_setting('${VERSIONING_SETTING}', true);
  PERFORM pg_catalog.set_config('${VERSIONING_SETTING}', ${versioningMark('pg_catalog.pg_trigger_depth()', 'v')}, true);
  UPDATE ${kv} kv SET version = v, writer = OLD.writer, updated_at = pg_catalog.now()
    WHERE kv.namespace = NEW.namespace AND kv.key = NEW.key;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'lockstep: the row a bypass UPDATE wrote (%, %) is gone before its version was set', NEW.namespace, NEW.key;
  END IF;
  PERFORM pg_catalog.set_config('${VERSIONING_SETTING}', coalesce(outer_mark, ''), true);
  IF ${renamed} THEN
    ${bury('OLD.namespace', 'OLD.key', 'v')} INTO gone;
    ${appendJournal('NEW.namespace', 'NEW.key', 'v', 'trigger')};
    ${appendJournal('OLD.namespace', 'OLD.key', 'gone', 'trigger')};
  ELSE
    ${appendJournal('NEW.namespace', 'NEW.key', 'v', 'trigger')};
  END IF;
  RETURN NULL;
END $fn$;`;
  const bypassAfterInsertFunction = `
-- Bypass INSERT, after (the key entry is held): settle above the tombstone, journal. A tombstone at
-- or above the version the BEFORE trigger chose (a delete that committed while the INSERT waited for
-- the key, or one made by the same statement, whose AFTER trigger ran after that BEFORE trigger)
-- lifts the row with a second UPDATE. Not settleNewKey's, which marks the row with a writer token
-- of this transaction: a later UPDATE of this plain transaction copying the row's writer onto
-- another row would pass off as Lockstep's. This one leaves the writer NULL and is named by the
-- mark, as lockstep_kv_bypass_after_update's own UPDATE is, so that trigger skips it.
CREATE OR REPLACE FUNCTION ${s}.lockstep_kv_bypass_after_insert() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  v bigint := NEW.version;
  t bigint;
  outer_mark text;
BEGIN
  ${refuseUnseenTombstone('NEW.namespace', 'NEW.key')}
  DELETE FROM ${tomb} ts WHERE ts.namespace = NEW.namespace AND ts.key = NEW.key RETURNING ts.version INTO t;
  IF t >= v THEN
    v := t + 1;
    outer_mark := pg_catalog.current_setting('${VERSIONING_SETTING}', true);
    PERFORM pg_catalog.set_config('${VERSIONING_SETTING}', ${versioningMark('pg_catalog.pg_trigger_depth()', 'v')}, true);
    UPDATE ${kv} kv SET version = v WHERE kv.namespace = NEW.namespace AND kv.key = NEW.key;
    PERFORM pg_catalog.set_config('${VERSIONING_SETTING}', coalesce(outer_mark, ''), true);
  END IF;
  ${appendJournal('NEW.namespace', 'NEW.key', 'v', 'trigger')};
  RETURN NULL;
END $fn$;`;
  const bypassTruncateFunction = `
-- TRUNCATE fires no row trigger: tombstone and journal every row before it goes. TRUNCATE is not
-- MVCC-safe: it removes every committed row, also those a REPEATABLE READ or SERIALIZABLE snapshot
-- (taken before the table's lock) cannot see, which this function could then neither tombstone nor
-- journal, so it is refused there (DELETE is MVCC-safe; or TRUNCATE in READ COMMITTED).
CREATE OR REPLACE FUNCTION ${s}.lockstep_kv_bypass_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = 'lockstep: TRUNCATE of lockstep_kv needs READ COMMITTED',
      DETAIL = 'Its snapshot cannot see rows committed since it was taken, so they could not be tombstoned and journaled.',
      HINT = 'Run it in a READ COMMITTED transaction, or use DELETE.';
  END IF;
  WITH buried AS (
    INSERT INTO ${tomb} AS ts (namespace, key, version, deleted_at)
      SELECT namespace, key, coalesce(version, 0) + 1, pg_catalog.now() FROM ${kv}
      ON CONFLICT (namespace, key) DO UPDATE
        SET version = GREATEST(ts.version + 1, excluded.version), deleted_at = excluded.deleted_at
      RETURNING ts.namespace, ts.key, ts.version
  )
  INSERT INTO ${journal} (namespace, key, version, reason) SELECT namespace, key, version, 'trigger' FROM buried;
  RETURN NULL;
END $fn$;
`;
  // Schema 4 versioned bypass UPDATEs in a BEFORE trigger; see lockstep_kv_bypass_after_update.
  const dropBeforeUpdate = `
DROP TRIGGER IF EXISTS lockstep_kv_bypass_before_update ON ${kv};
DROP FUNCTION IF EXISTS ${s}.lockstep_kv_bypass_before_update();`;
  // A trigger enabled the default way (origin) fires in no session under session_replication_role =
  // replica: a logical replication subscription's apply worker would write lockstep_kv unjournaled.
  const bypassTriggers = ['before_insert', 'after_insert', 'after_update', 'delete', 'truncate'];
  const enableAlways = bypassTriggers.map((name) => `ALTER TABLE ${kv} ENABLE ALWAYS TRIGGER lockstep_kv_bypass_${name};`).join('\n');

  const ddl = `
CREATE TABLE IF NOT EXISTS ${kv} (
  namespace text COLLATE "C" NOT NULL,
  key text COLLATE "C" NOT NULL,
  value text NOT NULL,
  version bigint,
  writer text,
  updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  PRIMARY KEY (namespace, key)
) WITH (fillfactor = 90);

CREATE TABLE IF NOT EXISTS ${tomb} (
  namespace text COLLATE "C" NOT NULL,
  key text COLLATE "C" NOT NULL,
  version bigint NOT NULL,
  deleted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  PRIMARY KEY (namespace, key)
);

CREATE SEQUENCE IF NOT EXISTS ${s}.lockstep_journal_id_seq;
CREATE SEQUENCE IF NOT EXISTS ${s}.lockstep_journal_pending_seq;
CREATE TABLE IF NOT EXISTS ${journal} (
  id bigint PRIMARY KEY DEFAULT -pg_catalog.nextval('${s}.lockstep_journal_pending_seq'),
  namespace text NOT NULL,
  key text NOT NULL,
  version bigint NOT NULL,
  reason text NOT NULL CHECK (reason IN ('trigger', 'repair')),
  created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
ALTER SEQUENCE ${s}.lockstep_journal_id_seq OWNED BY ${journal}.id;
ALTER SEQUENCE ${s}.lockstep_journal_pending_seq OWNED BY ${journal}.id;
CREATE INDEX IF NOT EXISTS lockstep_journal_created_at ON ${journal} (created_at);

-- The journal's name, drawn once when the schema is created: every instance keys its replay cursor
-- by it, however it reaches the server (socket, TCP, a pooler), see StoreAdapter.journalId.
CREATE TABLE IF NOT EXISTS ${s}.lockstep_meta (name text PRIMARY KEY, value text NOT NULL);
INSERT INTO ${s}.lockstep_meta (name, value)
  VALUES ('journal_id', pg_catalog.md5(pg_catalog.random()::text || pg_catalog.clock_timestamp()::text || pg_catalog.pg_backend_pid()::text))
  ON CONFLICT (name) DO NOTHING;

-- Stamps a journal row's real id just before COMMIT, in commit order (see postgres-schema.ts).
CREATE OR REPLACE FUNCTION ${s}.lockstep_journal_stamp() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(${journalLockKey});
  UPDATE ${journal} SET id = pg_catalog.nextval('${s}.lockstep_journal_id_seq'), created_at = pg_catalog.clock_timestamp()
    WHERE id = NEW.id;
  PERFORM pg_catalog.pg_notify('${JOURNAL_CHANNEL}', '${schema}');
  RETURN NULL;
END $fn$;
DROP TRIGGER IF EXISTS lockstep_journal_stamp ON ${journal};
CREATE CONSTRAINT TRIGGER lockstep_journal_stamp AFTER INSERT ON ${journal}
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${s}.lockstep_journal_stamp();
ALTER TABLE ${journal} ENABLE ALWAYS TRIGGER lockstep_journal_stamp;

-- The highest journal id whose row is visible (or rolled back): waits for a commit being stamped.
CREATE OR REPLACE FUNCTION ${s}.lockstep_journal_head() RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE head bigint;
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(${journalLockKey});
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO head FROM ${s}.lockstep_journal_id_seq;
  RETURN head;
END $fn$;

-- Lockstep's write: one call, one round trip. Returns the version committed. With a precondition
-- (p_expect 'version' | 'absent' | 'present'), the key is held first (its row lock, or for a create
-- its new key entry) and checked while held; a failure raises ${PRECONDITION_SQLSTATE} before anything is written.
DROP FUNCTION IF EXISTS ${s}.lockstep_write(text, text, text, boolean);
CREATE OR REPLACE FUNCTION ${s}.lockstep_write(p_namespace text, p_key text, p_value text, p_journal boolean,
  p_expect text, p_expect_version bigint)
RETURNS bigint LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v bigint;
  t bigint;
  live bigint;
BEGIN
  IF p_expect IS NOT NULL THEN
    LOOP
      SELECT coalesce(kv.version, 0) INTO live FROM ${kv} kv WHERE kv.namespace = p_namespace AND kv.key = p_key FOR UPDATE;
      IF NOT FOUND THEN
        live := 0;
      END IF;
      IF ${fails('live')} THEN
        ${refuse('live')};
      END IF;
      -- A live row is locked now: the upsert below updates it.
      EXIT WHEN live <> 0 OR p_expect <> 'absent';
      -- Create-only: insert the key, or find that a create committed meanwhile (then check again).
      INSERT INTO ${kv} AS kv (namespace, key, value, version, writer, updated_at)
        VALUES (p_namespace, p_key, p_value,
                1 + coalesce((SELECT ts.version FROM ${tomb} ts WHERE ts.namespace = p_namespace AND ts.key = p_key), 0),
                ${token} || 'w', pg_catalog.now())
        ON CONFLICT DO NOTHING
        RETURNING kv.version INTO v;
      IF FOUND THEN
        ${settleNewKey('p_namespace', 'p_key')}
        IF p_journal THEN
          ${appendJournal('p_namespace', 'p_key', 'v', 'repair')};
        END IF;
        RETURN v;
      END IF;
    END LOOP;
  END IF;
  -- The common case, an existing row: version + 1 under its row lock. A live row has no tombstone
  -- (whatever creates a row settles its tombstone in the same transaction), so this path reads
  -- none. A row deleted while we waited for its lock is not updated: the insert below handles it.
  IF p_expect IS NULL THEN
    UPDATE ${kv} kv SET value = p_value, version = coalesce(kv.version, 0) + 1, writer = ${token} || 'w', updated_at = pg_catalog.now()
      WHERE kv.namespace = p_namespace AND kv.key = p_key
      RETURNING kv.version INTO v;
    IF FOUND THEN
      IF p_journal THEN
        ${appendJournal('p_namespace', 'p_key', 'v', 'repair')};
      END IF;
      RETURN v;
    END IF;
  END IF;
  -- A new key (or a precondition's held row): an existing row takes version + 1 under its row
  -- lock; a new key 1 + its tombstone as this snapshot sees it.
  INSERT INTO ${kv} AS kv (namespace, key, value, version, writer, updated_at)
    VALUES (p_namespace, p_key, p_value,
            1 + coalesce((SELECT ts.version FROM ${tomb} ts WHERE ts.namespace = p_namespace AND ts.key = p_key), 0),
            ${token} || 'w', pg_catalog.now())
    ON CONFLICT (namespace, key) DO UPDATE
      SET value = excluded.value, version = coalesce(kv.version, 0) + 1, writer = excluded.writer, updated_at = excluded.updated_at
    RETURNING kv.version INTO v;
  -- Nothing to delete for an existing row (it has no tombstone) but an index probe; for a new key,
  -- a delete that committed while the insert waited for the key is seen here.
  ${settleNewKey('p_namespace', 'p_key')}
  IF p_journal THEN
    ${appendJournal('p_namespace', 'p_key', 'v', 'repair')};
  END IF;
  RETURN v;
END $fn$;

-- Lockstep's delete: one call, one round trip. A delete of a missing key also commits a version.
-- A precondition is checked once the key is held (the row marked, or the placeholder inserted).
DROP FUNCTION IF EXISTS ${s}.lockstep_delete(text, text, boolean);
CREATE OR REPLACE FUNCTION ${s}.lockstep_delete(p_namespace text, p_key text, p_journal boolean,
  p_expect text, p_expect_version bigint,
  OUT out_version bigint, OUT out_existed boolean) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  old_version bigint;
BEGIN
  LOOP
    -- Mark the row (its row lock) so the DELETE trigger stands aside.
    UPDATE ${kv} kv SET writer = ${token} || 'd'
      WHERE kv.namespace = p_namespace AND kv.key = p_key RETURNING kv.version INTO old_version;
    out_existed := FOUND;
    IF p_expect IS NOT NULL AND (${fails("CASE WHEN out_existed THEN coalesce(old_version, 0) ELSE 0 END")}) THEN
      ${refuse("CASE WHEN out_existed THEN coalesce(old_version, 0) ELSE 0 END")};
    END IF;
    EXIT WHEN out_existed;
    -- Missing: hold the key's entry with a placeholder (deleted below), so that an insert of the key
    -- running now commits wholly before this delete (then it is deleted) or after it (above it).
    INSERT INTO ${kv} (namespace, key, value, version, writer) VALUES (p_namespace, p_key, '', 0, ${token} || 'd')
      ON CONFLICT DO NOTHING;
    EXIT WHEN FOUND;
    -- A row was committed meanwhile: delete it.
  END LOOP;
  DELETE FROM ${kv} kv WHERE kv.namespace = p_namespace AND kv.key = p_key;
  ${bury('p_namespace', 'p_key', 'coalesce(old_version, 0) + 1')} INTO out_version;
  IF p_journal THEN
    ${appendJournal('p_namespace', 'p_key', 'out_version', 'repair')};
  END IF;
END $fn$;

-- Bypass INSERT, before: a first version from the tombstone; the writer column is Lockstep's.
CREATE OR REPLACE FUNCTION ${s}.lockstep_kv_bypass_before_insert() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  NEW.writer := NULL;
  NEW.version := 1 + coalesce((SELECT ts.version FROM ${tomb} ts WHERE ts.namespace = NEW.namespace AND ts.key = NEW.key), 0);
  NEW.updated_at := pg_catalog.now();
  RETURN NEW;
END $fn$;

${bypassAfterInsertFunction}

${bypassUpdateFunction}
-- Bypass DELETE: a tombstone above the row and any earlier tombstone; journal.
CREATE OR REPLACE FUNCTION ${s}.lockstep_kv_bypass_delete() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  v bigint;
BEGIN
  ${bury('OLD.namespace', 'OLD.key', 'coalesce(OLD.version, 0) + 1')} INTO v;
  ${appendJournal('OLD.namespace', 'OLD.key', 'v', 'trigger')};
  RETURN NULL;
END $fn$;

${bypassTruncateFunction}
DROP TRIGGER IF EXISTS lockstep_kv_bypass_before_insert ON ${kv};
CREATE TRIGGER lockstep_kv_bypass_before_insert BEFORE INSERT ON ${kv}
  FOR EACH ROW WHEN (NOT coalesce(${oursInsert}, false)) EXECUTE FUNCTION ${s}.lockstep_kv_bypass_before_insert();
DROP TRIGGER IF EXISTS lockstep_kv_bypass_after_insert ON ${kv};
CREATE TRIGGER lockstep_kv_bypass_after_insert AFTER INSERT ON ${kv}
  FOR EACH ROW WHEN (NOT coalesce(${oursInsert}, false)) EXECUTE FUNCTION ${s}.lockstep_kv_bypass_after_insert();
${dropBeforeUpdate}
DROP TRIGGER IF EXISTS lockstep_kv_bypass_after_update ON ${kv};
CREATE TRIGGER lockstep_kv_bypass_after_update AFTER UPDATE ON ${kv}
  FOR EACH ROW WHEN (NOT coalesce(${oursUpdate}, false)) EXECUTE FUNCTION ${s}.lockstep_kv_bypass_after_update();
DROP TRIGGER IF EXISTS lockstep_kv_bypass_delete ON ${kv};
CREATE TRIGGER lockstep_kv_bypass_delete AFTER DELETE ON ${kv}
  FOR EACH ROW WHEN (NOT coalesce(${oursDelete}, false)) EXECUTE FUNCTION ${s}.lockstep_kv_bypass_delete();
DROP TRIGGER IF EXISTS lockstep_kv_bypass_truncate ON ${kv};
CREATE TRIGGER lockstep_kv_bypass_truncate BEFORE TRUNCATE ON ${kv}
  FOR EACH STATEMENT EXECUTE FUNCTION ${s}.lockstep_kv_bypass_truncate();
${enableAlways}

COMMENT ON TABLE ${kv} IS '${POSTGRES_SCHEMA_VERSION}';
`;
  // The same UPDATE as the function's common case below (same writer token, so no trigger fires).
  const updateExisting = `UPDATE ${kv} kv SET value = $3, version = coalesce(kv.version, 0) + 1, writer = ${token} || 'w', updated_at = pg_catalog.now()
    WHERE kv.namespace = $1 AND kv.key = $2
    RETURNING kv.version AS version`;
  // From schema 4, the UPDATE trigger changed (schema 5); from 5, the INSERT and TRUNCATE triggers'
  // functions and the rename in the UPDATE trigger's (plain SQL in REPEATABLE READ / SERIALIZABLE,
  // schema 6); from 6, the triggers enabled ALWAYS (schema 7). The upgrade takes lockstep_kv's lock before
  // anything else, so it holds nothing that a transaction it waits for could want (the whole DDL
  // also locks the journal's sequences, and a plain-SQL transaction that journaled and is about to
  // commit wants one of them: a deadlock). Replacing a function takes no table lock, and running
  // transactions that fire the old triggers hold lockstep_kv's lock, so none sees a mix.
  const upgrade = `LOCK TABLE ${kv} IN ACCESS EXCLUSIVE MODE;
${bypassUpdateFunction}
${bypassAfterInsertFunction}
${bypassTruncateFunction}
${dropBeforeUpdate}
${enableAlways}
COMMENT ON TABLE ${kv} IS '${POSTGRES_SCHEMA_VERSION}';`;
  const upgrades = new Map<string, string>([
    ['lockstep:postgres-schema:4', upgrade],
    ['lockstep:postgres-schema:5', upgrade],
    ['lockstep:postgres-schema:6', upgrade],
  ]);
  return { ddlLockKey, journalLockKey, ddl, upgrades, updateExisting };
}
