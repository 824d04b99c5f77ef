// The proxy's own tables in the upstream database, and the triggers that fill them. The user's
// tables get no column: per-row versions live in <schema>.versions, and every committed change of a
// cached table appends (table, key, version, xid, backend pid) to <schema>.journal. The proxy finds
// the keys a session's transaction wrote by its backend pid (one upstream backend per client session),
// and the bypass drainer finds every change by transaction id (see drainer.ts).
//
// Versions: a global sequence, and per key GREATEST(old + 1, next value) under the row lock of the
// versions row (INSERT … ON CONFLICT DO UPDATE sees the latest committed row), so per key they grow in
// commit order, across delete and re-create. A journal row with key NULL flushes the whole table
// (TRUNCATE, DDL). Trigger functions are SECURITY DEFINER with a fixed search_path, so any role that may
// write the table may append to the journal, and no role needs rights on the proxy's tables.
import { quoteIdentifier } from '../store/postgres-schema.js';
import { rendersElsewhereFunctionSql } from './rendered-columns.js';
import { WRITE_ANNOUNCEMENT_CODE, WRITE_ANNOUNCEMENT_TEXT, WRITE_MARKER_CODE, WRITE_MARKER_SETTING, WRITE_MARKER_TEXT } from './write-marker.js';

/** The channel every journal append notifies (payload: the schema), but those of a proxy's sessions (see bump). */
export const PROXY_CHANNEL = 'lockstep_proxy';

export function proxySchemaSql(schema: string): string {
  const s = quoteIdentifier(schema);
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE SEQUENCE IF NOT EXISTS ${s}.version_seq;
CREATE TABLE IF NOT EXISTS ${s}.versions (
  tbl text NOT NULL, key text NOT NULL, version bigint NOT NULL, PRIMARY KEY (tbl, key));
CREATE TABLE IF NOT EXISTS ${s}.journal (
  id bigserial PRIMARY KEY, tbl text NOT NULL, key text, version bigint NOT NULL,
  xid xid8 NOT NULL, backend_pid int NOT NULL, at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp());
CREATE INDEX IF NOT EXISTS journal_backend ON ${s}.journal (backend_pid, id);
CREATE INDEX IF NOT EXISTS journal_xid ON ${s}.journal (xid);
CREATE INDEX IF NOT EXISTS journal_at ON ${s}.journal (at);
-- The highest transaction id whose journal rows were pruned: a drainer whose cursor is not above it
-- (or that has none) may have missed rows, so it flushes its cache instead of trusting it.
CREATE TABLE IF NOT EXISTS ${s}.pruned (one boolean PRIMARY KEY DEFAULT true CHECK (one), xid xid8 NOT NULL);
-- Earlier development versions of the write marker kept a sessions table (never released).
DROP FUNCTION IF EXISTS ${s}.session_start();
DROP TABLE IF EXISTS ${s}.sessions;
REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM PUBLIC;
GRANT USAGE ON SCHEMA ${s} TO PUBLIC;

-- The write marker (write-marker.ts): a NOTICE raised whatever the client's client_min_messages
-- (the SET clause). Called by the journal's writers when the session's setting ${WRITE_MARKER_SETTING}
-- is 'armed' (the proxy's sessions start with it: a startup parameter), which they make 'quiet'.
CREATE OR REPLACE FUNCTION ${s}.mark_write() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET client_min_messages = notice AS $fn$
BEGIN
  RAISE NOTICE USING MESSAGE = '${WRITE_MARKER_TEXT}', ERRCODE = '${WRITE_MARKER_CODE}';
END $fn$;

-- Run by the session's fence after a batch of SELECTs: the next write raises the marker again.
CREATE OR REPLACE PROCEDURE ${s}.rearm()
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
  PERFORM set_config('${WRITE_MARKER_SETTING}', 'armed', false);
END $fn$;
GRANT EXECUTE ON PROCEDURE ${s}.rearm() TO PUBLIC;

-- Write announcements (write-marker.ts): in a session that carries the proxy's startup setting
-- ${WRITE_MARKER_SETTING} (a proxy's session: the setting cannot be removed, only changed; RESET and
-- DISCARD go back to the startup value) every journal row raises a NOTICE with the row, in the writing
-- transaction, before its ReadyForQuery, whatever the client's client_min_messages (the SET clause).
-- The session applies them when the transaction ends instead of reading the journal (docs/pg-proxy.md,
-- "Announced writes"). The detail is base64 of UTF-8 JSON: the session's client_encoding cannot
-- change the key the proxy reads. (Raised here, not by a trigger on the journal: a trigger cost a
-- write about 30 µs more. An older proxy's install replaces bump and flush without it: the drainer
-- checks at each pass that both announce, and until then sessions fence with the fence statement.)
CREATE OR REPLACE FUNCTION ${s}.bump(p_tbl text, p_key text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET client_min_messages = notice SET search_path = pg_catalog AS $fn$
DECLARE v bigint; x xid8 := pg_current_xact_id(); j bigint; mark text := current_setting('${WRITE_MARKER_SETTING}', true);
BEGIN
  IF mark = 'armed' THEN
    PERFORM set_config('${WRITE_MARKER_SETTING}', 'quiet', false); -- rolled back with the write, if it is
    PERFORM ${s}.mark_write();
  END IF;
  INSERT INTO ${s}.versions AS vt (tbl, key, version) VALUES (p_tbl, p_key, nextval('${schema}.version_seq'))
    ON CONFLICT (tbl, key) DO UPDATE SET version = GREATEST(vt.version + 1, excluded.version)
    RETURNING vt.version INTO v;
  INSERT INTO ${s}.journal (tbl, key, version, xid, backend_pid)
    VALUES (p_tbl, p_key, v, x, pg_backend_pid()) RETURNING id INTO j;
  IF mark IS NOT NULL THEN
    RAISE NOTICE USING MESSAGE = '${WRITE_ANNOUNCEMENT_TEXT}', ERRCODE = '${WRITE_ANNOUNCEMENT_CODE}',
      DETAIL = encode(convert_to(json_build_array('${schema}', j, v, p_tbl, p_key)::text, 'UTF8'), 'base64');
  END IF;
  -- A write straight to PostgreSQL wakes the drainers. A proxy's session (the setting defined) fences
  -- its own writes and notifies no one: a NOTIFY would wake every listening backend of the database
  -- at each commit. (Its transaction may be prepared: the proxy fences a COMMIT PREPARED it relays
  -- with a pass of its drainer, relay.ts; made straight on PostgreSQL it is a bypass write.)
  IF mark IS NULL THEN PERFORM pg_notify('${PROXY_CHANNEL}', '${schema}'); END IF;
END $fn$;

CREATE OR REPLACE FUNCTION ${s}.flush(p_tbl text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET client_min_messages = notice SET search_path = pg_catalog AS $fn$
DECLARE x xid8 := pg_current_xact_id(); j bigint; v bigint; mark text := current_setting('${WRITE_MARKER_SETTING}', true);
BEGIN
  IF mark = 'armed' THEN
    PERFORM set_config('${WRITE_MARKER_SETTING}', 'quiet', false); -- rolled back with the write, if it is
    PERFORM ${s}.mark_write();
  END IF;
  INSERT INTO ${s}.journal (tbl, key, version, xid, backend_pid)
    VALUES (p_tbl, NULL, nextval('${schema}.version_seq'), x, pg_backend_pid()) RETURNING id, version INTO j, v;
  IF mark IS NOT NULL THEN
    RAISE NOTICE USING MESSAGE = '${WRITE_ANNOUNCEMENT_TEXT}', ERRCODE = '${WRITE_ANNOUNCEMENT_CODE}',
      DETAIL = encode(convert_to(json_build_array('${schema}', j, v, p_tbl, NULL::text)::text, 'UTF8'), 'base64');
  END IF;
  IF mark IS NULL THEN PERFORM pg_notify('${PROXY_CHANNEL}', '${schema}'); END IF;
END $fn$;

-- AFTER ROW: TG_ARGV[0] = primary-key column, TG_ARGV[1] = the table's name in the cache (schema.table).
CREATE OR REPLACE FUNCTION ${s}.on_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE old_key text; new_key text;
BEGIN
  IF TG_OP <> 'INSERT' THEN old_key := to_jsonb(OLD) ->> TG_ARGV[0]; END IF;
  IF TG_OP <> 'DELETE' THEN new_key := to_jsonb(NEW) ->> TG_ARGV[0]; END IF;
  IF old_key IS NOT NULL AND old_key IS DISTINCT FROM new_key THEN PERFORM ${s}.bump(TG_ARGV[1], old_key); END IF;
  IF new_key IS NOT NULL THEN PERFORM ${s}.bump(TG_ARGV[1], new_key); END IF;
  RETURN NULL;
END $fn$;

CREATE OR REPLACE FUNCTION ${s}.on_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
BEGIN
  PERFORM ${s}.flush(TG_ARGV[1]);
  RETURN NULL;
END $fn$;

-- (Kept for proxies of earlier versions sharing the database: this one's fence reads my_journal, below.)
-- The keys this backend's transactions wrote after journal id p_after (committed ones only: a
-- rolled-back row is invisible). Called by the proxy between the commit and its acknowledgement,
-- after nearly every batch: PL/pgSQL keeps the query's plan for the session, where a SQL function
-- (not inlined: SECURITY DEFINER) would plan it again on every call (about 3x the cost). Kept only
-- if generic: with a cursor near the newest id, the plan cache judges a custom plan cheaper and
-- planned the query again on every call anyway (about half the fence's server time); the generic
-- plan walks journal_backend (backend_pid, id) from the cursor, never a scan of the journal
-- (enable_seqscan off: a plan made while the journal was tiny stays a plan for a large one).
CREATE OR REPLACE FUNCTION ${s}.my_writes(p_after bigint) RETURNS TABLE (id bigint, tbl text, key text, version bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog
  SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
BEGIN
  RETURN QUERY SELECT j.id, j.tbl, j.key, j.version FROM ${s}.journal j
    WHERE j.backend_pid = pg_backend_pid() AND j.id > p_after ORDER BY j.id;
END $fn$;

-- The same rows as my_writes, as a view: what the fence reads after nearly every batch. A plain query
-- on a view costs PostgreSQL far less than the PL/pgSQL call with its SET clauses (about 25-50 µs of
-- server CPU per fence at 64 sessions). The view runs with its owner's rights on the journal, so
-- no role needs rights on the journal; security_barrier keeps a caller's own (leaky) conditions from
-- seeing other backends' rows. Its plan is the session's: the proxy prepares it again every few
-- second (session-fence.ts), so a plan made while the journal was small (a sequential scan) does
-- not outlive the journal's growth. Every name is qualified: the caller's search_path resolves none.
-- Created only when missing: replacing a view takes an exclusive lock on it until the install
-- commits, which would stall every other proxy's fences meanwhile (a new definition needs a new name).
DO $do$
BEGIN
  IF pg_catalog.to_regclass('${s}.my_journal') IS NULL THEN
    CREATE VIEW ${s}.my_journal WITH (security_barrier) AS
      SELECT j.id, j.tbl, j.key, j.version FROM ${s}.journal j
      WHERE j.backend_pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid();
  END IF;
END $do$;
GRANT SELECT ON ${s}.my_journal TO PUBLIC;

-- Where a new session's cursor starts: every journal id drawn later is greater.
CREATE OR REPLACE FUNCTION ${s}.journal_mark() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $fn$
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ${s}.journal_id_seq
$fn$;

CREATE OR REPLACE FUNCTION ${s}.version_of(p_tbl text, p_key text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $fn$
  SELECT coalesce((SELECT version FROM ${s}.versions WHERE tbl = p_tbl AND key = p_key), 0)
$fn$;
${rendersElsewhereFunctionSql(s)}
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${s} TO PUBLIC;

-- DDL made anywhere (not only through the proxy): an event trigger journals a whole-table flush for
-- every cached table a command touched, and for every GRANT/REVOKE. Event triggers need a
-- superuser: without one the proxy still detects DDL it relays, and says so at start.
CREATE TABLE IF NOT EXISTS ${s}.tables (relid oid PRIMARY KEY, name text NOT NULL);
CREATE OR REPLACE FUNCTION ${s}.on_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE t record;
BEGIN
  -- GRANT/REVOKE may change who reads a cached table; ALTER TYPE an enum's labels or a composite
  -- type's attributes, the bytes of a cached column of that type; DROP OWNED revokes a role's privileges.
  -- An = operator created or moved (or brought by an extension) into a session's search_path may be
  -- what that session's 'WHERE id = $1' now calls (read-path.ts, CATALOG_EQUALS_SQL).
  IF tg_tag IN ('GRANT', 'REVOKE', 'ALTER TYPE', 'DROP OWNED', 'CREATE OPERATOR', 'ALTER OPERATOR', 'CREATE EXTENSION', 'ALTER EXTENSION') THEN
    FOR t IN SELECT name FROM ${s}.tables LOOP PERFORM ${s}.flush(t.name); END LOOP;
    RETURN;
  END IF;
  -- A command that makes a table a child of a cached one (CREATE TABLE … INHERITS, ALTER TABLE … INHERIT)
  -- flushes it too: the cached table's answers now include the child's rows, whose writes fire none of
  -- its triggers (the proxy caches no answer of a table with children from then on: read-path.ts).
  -- And a command that gives a relation in another schema a cached table's name (CREATE, RENAME, SET
  -- SCHEMA, a schema renamed): in a session whose search_path puts it first, the cached table's bare name
  -- now means it. The flush makes that session's next read a miss, whose fill reads the name's
  -- resolution again (a temporary relation is seen by its own session only, which reads it again anyway).
  FOR t IN SELECT DISTINCT ct.name FROM pg_event_trigger_ddl_commands() c JOIN ${s}.tables ct
      ON ct.relid = c.objid
      OR ct.relid IN (SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.objid)
      OR EXISTS (SELECT FROM pg_catalog.pg_class r JOIN pg_catalog.pg_class cr ON cr.oid = ct.relid
        WHERE r.relname = cr.relname AND r.relpersistence <> 't'
          AND ((c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND r.oid = c.objid)
            OR (c.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND r.relnamespace = c.objid))) LOOP
    PERFORM ${s}.flush(t.name);
  END LOOP;
END $fn$;
CREATE OR REPLACE FUNCTION ${s}.on_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE t record;
BEGIN
  FOR t IN SELECT DISTINCT ct.name FROM pg_event_trigger_dropped_objects() d JOIN ${s}.tables ct ON ct.relid = d.objid LOOP
    PERFORM ${s}.flush(t.name);
  END LOOP;
END $fn$;
DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'lockstep_proxy_${schema}_ddl') THEN
    CREATE EVENT TRIGGER "lockstep_proxy_${schema}_ddl" ON ddl_command_end EXECUTE FUNCTION ${s}.on_ddl();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'lockstep_proxy_${schema}_drop') THEN
    CREATE EVENT TRIGGER "lockstep_proxy_${schema}_drop" ON sql_drop EXECUTE FUNCTION ${s}.on_drop();
  END IF;
  -- DDL in a session under session_replication_role = replica fires only event triggers enabled ALWAYS.
  BEGIN
    ALTER EVENT TRIGGER "lockstep_proxy_${schema}_ddl" ENABLE ALWAYS;
    ALTER EVENT TRIGGER "lockstep_proxy_${schema}_drop" ENABLE ALWAYS;
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'lockstep pg-proxy: the event triggers are another role''s and cannot be enabled ALWAYS: DDL under session_replication_role = replica is not detected';
  END;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'lockstep pg-proxy: no event trigger (needs a superuser): DDL made straight on PostgreSQL is not detected';
END $do$;
`;
}

/** The names of the row and TRUNCATE triggers the proxy installs on each cached table. */
export function proxyTriggerNames(schema: string): readonly [row: string, truncate: string] {
  return [`lockstep_proxy_${schema}_row`, `lockstep_proxy_${schema}_truncate`];
}

/**
 * The triggers of one cached table (DROP IF EXISTS + CREATE: idempotent), enabled ALWAYS: a trigger
 * enabled the default way fires in no session under session_replication_role = replica, which a logical
 * replication subscription's apply worker (and some bulk loaders) run under.
 */
export function proxyTriggersSql(schema: string, table: { schema: string; name: string; pkColumn: string }): string {
  const s = quoteIdentifier(schema);
  const t = `${quoteIdentifier(table.schema)}.${quoteIdentifier(table.name)}`;
  quoteIdentifier(table.pkColumn); // validates: the names below are literals
  const args = `'${table.pkColumn}', '${table.schema}.${table.name}'`;
  const [rowTrigger, truncateTrigger] = proxyTriggerNames(schema);
  return `
INSERT INTO ${s}.tables (relid, name) VALUES ('${t}'::regclass, '${table.schema}.${table.name}')
  ON CONFLICT (relid) DO UPDATE SET name = excluded.name;
DROP TRIGGER IF EXISTS ${quoteIdentifier(rowTrigger)} ON ${t};
CREATE TRIGGER ${quoteIdentifier(rowTrigger)} AFTER INSERT OR UPDATE OR DELETE ON ${t}
  FOR EACH ROW EXECUTE FUNCTION ${s}.on_row(${args});
DROP TRIGGER IF EXISTS ${quoteIdentifier(truncateTrigger)} ON ${t};
CREATE TRIGGER ${quoteIdentifier(truncateTrigger)} BEFORE TRUNCATE ON ${t}
  FOR EACH STATEMENT EXECUTE FUNCTION ${s}.on_truncate(${args});
ALTER TABLE ${t} ENABLE ALWAYS TRIGGER ${quoteIdentifier(rowTrigger)}, ENABLE ALWAYS TRIGGER ${quoteIdentifier(truncateTrigger)};
`;
}

/**
 * One boolean: whether the installed journal writers (bump, flush) raise the write marker. An older
 * proxy's install sharing the database replaces them with versions that do not; until this is true
 * again, no fence is skipped (fence-pipeline.ts). `s` is the quoted schema.
 */
export function markersInstalledSql(s: string): string {
  const writers = [`${s}.bump(text,text)`, `${s}.flush(text)`].map((name) => `pg_catalog.to_regprocedure('${name}')`);
  return `(SELECT pg_catalog.count(*) = 2 FROM pg_catalog.pg_proc p WHERE p.oid IN (${writers.join(', ')}) AND pg_catalog.strpos(p.prosrc, '.mark_write(') > 0)`;
}

/**
 * One boolean: whether the installed journal writers (bump, flush) announce their rows. An older
 * proxy's install sharing the database replaces them with versions that do not; until a pass of the
 * drainer finds them doing so again, recently, sessions fence with the fence statement (context.ts).
 * `s` is the quoted schema.
 */
export function announcementsInstalledSql(s: string): string {
  const writers = [`${s}.bump(text,text)`, `${s}.flush(text)`].map((name) => `pg_catalog.to_regprocedure('${name}')`);
  return `(SELECT pg_catalog.count(*) = 2 FROM pg_catalog.pg_proc p WHERE p.oid IN (${writers.join(', ')}) AND pg_catalog.strpos(p.prosrc, '${WRITE_ANNOUNCEMENT_CODE}') > 0)`;
}
