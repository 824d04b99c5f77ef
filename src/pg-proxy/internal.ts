// The proxy's own statements on a client's upstream connection, run only while the session is idle
// (or inside the proxy's own read transaction). Extended protocol with named statements that are
// closed and parsed again each time: a simple Query would destroy the client's unnamed statement,
// and a client's DISCARD ALL may have dropped ours. Asynchronous messages that arrive meanwhile
// (notifications, notices, parameter changes) are the client's: they are relayed.
import { quoteIdentifier } from '../store/postgres-schema.js';
import { build, dataRowTexts, type Message } from './framing.js';
import type { CachedTable } from './tables.js';

export const STATEMENT_PREFIX = 'lockstep_proxy_';

/** Close + Parse + Bind + Execute of one statement (no Sync). */
export function statementMessages(name: string, sql: string, values: readonly (string | null)[]): Buffer[] {
  const statement = `${STATEMENT_PREFIX}${name}`;
  return [build.close('S', statement), build.parse(statement, sql), build.bind(`${STATEMENT_PREFIX}p_${name}`, statement, values), build.execute(`${STATEMENT_PREFIX}p_${name}`)];
}

/** Settings that change how PostgreSQL renders an answer, and which relation each cached table's bare name resolves to. */
export function fingerprintSql(tables: readonly CachedTable[]): string {
  const settings = ['search_path', 'TimeZone', 'DateStyle', 'IntervalStyle', 'extra_float_digits', 'bytea_output', 'client_encoding', 'lc_monetary', 'lc_numeric', 'standard_conforming_strings', 'row_security', 'xmloption'];
  const parts = ['current_user', 'session_user', ...settings.map((s) => `pg_catalog.current_setting('${s}')`), "coalesce(pg_catalog.pg_my_temp_schema()::oid::text, '0')"];
  const regs = tables.map((t) => `coalesce(pg_catalog.to_regclass('${quoteIdentifier(t.name)}')::oid::text, '0')`);
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
