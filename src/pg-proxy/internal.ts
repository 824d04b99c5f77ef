// The proxy's own statements on a client's upstream connection, run only while the session is idle
// (or inside the proxy's own read transaction). Extended protocol with named statements (a simple
// Query would destroy the client's unnamed statement), parsed once per session and then only bound
// and executed: the session forgets them (and they are closed and parsed again) after any error in
// the proxy's own statements, and after the client's DISCARD, DEALLOCATE or Close of a reserved
// name (relay.ts). A statement missing anyway fails its Bind: an error, so the caller falls back.
// Asynchronous messages that arrive meanwhile (notifications, notices, parameter changes) are the
// client's: they are relayed.
import { quoteIdentifier } from '../store/postgres-schema.js';
import { build, dataRowTexts, type Message } from './framing.js';
import type { CachedTable } from './tables.js';

export const STATEMENT_PREFIX = 'lockstep_proxy_';

// A handful of names, and the fence runs after nearly every batch: their strings and Execute
// message are made once (an Execute is never written to: each write concatenates or copies it).
const NAMES = new Map<string, { statement: string; portal: string; execute: Buffer }>();

function namesOf(name: string): { statement: string; portal: string; execute: Buffer } {
  let names = NAMES.get(name);
  if (names === undefined) {
    const portal = `${STATEMENT_PREFIX}p_${name}`;
    names = { statement: `${STATEMENT_PREFIX}${name}`, portal, execute: build.execute(portal) };
    NAMES.set(name, names);
  }
  return names;
}

/**
 * Bind + Execute of one statement (no Sync), preceded by Close + Parse unless `prepared` (the
 * session's record of its parsed internal statements, name → text) says it is parsed with this text.
 */
export function statementMessages(prepared: Map<string, string>, name: string, sql: string, values: readonly (string | null)[]): Buffer[] {
  const { statement, portal, execute } = namesOf(name);
  const run = [build.bind(portal, statement, values), execute];
  if (prepared.get(name) === sql) return run;
  prepared.set(name, sql);
  return [build.close('S', statement), build.parse(statement, sql), ...run];
}

/**
 * Settings that change how PostgreSQL renders an answer, and which relation each cached table's name
 * resolves to: its bare name (search_path, temporary tables), then its qualified name (a table swapped
 * in by renames holds it, with no trigger of the proxy's).
 */
export function fingerprintSql(tables: readonly CachedTable[]): string {
  // quote_all_identifiers: how a regclass/regtype/regproc column is rendered (`"items"` or `items`).
  const settings = ['search_path', 'TimeZone', 'DateStyle', 'IntervalStyle', 'extra_float_digits', 'bytea_output', 'client_encoding', 'lc_monetary', 'lc_numeric', 'standard_conforming_strings', 'row_security', 'xmloption', 'quote_all_identifiers'];
  const parts = ['current_user', 'session_user', ...settings.map((s) => `pg_catalog.current_setting('${s}')`), "coalesce(pg_catalog.pg_my_temp_schema()::oid::text, '0')"];
  const regclass = (name: string) => `coalesce(pg_catalog.to_regclass('${name}')::oid::text, '0')`;
  // The qualified name from the catalog, not to_regclass: that raises "permission denied for schema"
  // for a role without USAGE on one cached table's schema, which failed every probe and fill of that
  // role (found by review). Names are plain identifiers (tables.ts), safe in a literal.
  const qualified = (t: CachedTable) =>
    `coalesce((SELECT c.oid::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '${t.schema}' AND c.relname = '${t.name}'), '0')`;
  const regs = [...tables.map((t) => regclass(quoteIdentifier(t.name))), ...tables.map(qualified)];
  return `pg_catalog.concat_ws(E'\\x1f', ${parts.join(', ')}), pg_catalog.concat_ws(',', ${regs.length > 0 ? regs.join(', ') : "''"})`;
}

export interface InternalResult {
  readonly rows: (string | null)[][];
  readonly error: Message | undefined;
}

/** Reads one internal statement's responses up to (and including) its CommandComplete or error. */
export function isAsync(message: Message): boolean {
  return message.type === 'A' || message.type === 'N' || message.type === 'S';
}

export function collectRows(messages: readonly Message[]): (string | null)[][] {
  return messages.filter((m) => m.type === 'D').map((m) => dataRowTexts(m.body));
}
