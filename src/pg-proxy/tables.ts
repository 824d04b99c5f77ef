// The cached tables as the catalog describes them: the single-column primary key and its type (which
// decides how a key parameter is read), and the column names (a select list may name only these).
import type { PgConnection } from './upstream-tls.js';
import type { PgClient, PgClientBase } from './pg-driver.js';
import { isIdentifier } from '../store/postgres-schema.js';
import { proxySchemaSql, proxyTriggersSql } from './schema.js';
import { connectUpstream, drop } from './upstream-client.js';
import { isClientTimeout } from '../store/client-timeouts.js';

/** Key types whose text form the proxy can put in canonical form without asking the database. */
export type KeyKind = 'int' | 'text' | 'uuid';

export interface CachedTable {
  readonly schema: string;
  readonly name: string;
  /** schema.name: the table's name in cache keys and in the journal. */
  readonly qualified: string;
  readonly oid: number;
  readonly pkColumn: string;
  readonly keyKind: KeyKind;
  /** OID of the primary key's type (int2/int4/int8/text/varchar/uuid). */
  readonly keyTypeOid: number;
  readonly columns: ReadonlySet<string>;
}

const KEY_KINDS: Readonly<Record<number, KeyKind>> = { 20: 'int', 21: 'int', 23: 'int', 25: 'text', 1043: 'text', 2950: 'uuid' };

export function parseTableName(text: string): { schema: string; name: string } {
  const parts = text.split('.');
  const [schema, name] = parts.length === 1 ? ['public', parts[0]!] : parts.length === 2 ? [parts[0]!, parts[1]!] : ['', ''];
  if (!isIdentifier(schema) || !isIdentifier(name)) throw new Error(`--table ${JSON.stringify(text)}: expected table or schema.table (plain identifiers)`);
  return { schema, name };
}

export async function describeTable(client: PgClientBase, schema: string, name: string): Promise<CachedTable> {
  const rel = await client.query<{ oid: number; rls: boolean }>(
    `SELECT c.oid::int AS oid, c.relrowsecurity AS rls FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r'`,
    [schema, name],
  );
  if (rel.rows.length === 0) throw new Error(`table ${schema}.${name} not found (an ordinary table is required)`);
  const oid = rel.rows[0]!.oid;
  // Row-level security can depend on anything (custom settings, functions): one session's answer is not another's.
  if (rel.rows[0]!.rls) throw new Error(`table ${schema}.${name} has row-level security enabled: its answers cannot be shared between sessions`);
  const pk = await client.query<{ attname: string; atttypid: number }>(
    `SELECT a.attname, a.atttypid::int AS atttypid FROM pg_catalog.pg_index i
     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = $1 AND i.indisprimary`,
    [oid],
  );
  if (pk.rows.length !== 1) throw new Error(`table ${schema}.${name}: a single-column primary key is required`);
  const { attname, atttypid } = pk.rows[0]!;
  const keyKind = KEY_KINDS[atttypid];
  if (keyKind === undefined || !isIdentifier(attname)) throw new Error(`table ${schema}.${name}: primary key type ${atttypid} is not cacheable (int2/int4/int8/text/varchar/uuid)`);
  const cols = await client.query<{ attname: string }>(
    'SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped',
    [oid],
  );
  return { schema, name, qualified: `${schema}.${name}`, oid, pkColumn: attname, keyKind, keyTypeOid: atttypid, columns: new Set(cols.rows.map((r) => r.attname)) };
}

/** Installs the proxy's schema and each table's triggers (idempotent, under an advisory lock) and describes the tables. */
export async function installAndDescribe(upstream: string | PgConnection, schema: string, tableNames: readonly string[]): Promise<CachedTable[]> {
  const client = await connectUpstream(typeof upstream === 'string' ? { connectionString: upstream } : upstream, INSTALL_STATEMENT_MS + INSTALL_CLIENT_MARGIN_MS);
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query('BEGIN');
        // Its lock waits (another proxy's install, a writer holding a cached table) end on the server too.
        await client.query(`SELECT pg_catalog.set_config('statement_timeout', $1, true)`, [String(INSTALL_STATEMENT_MS)]);
        await client.query("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('lockstep:pg-proxy:ddl:' || $1, 0))", [schema]);
        await client.query(proxySchemaSql(schema));
        const tables: CachedTable[] = [];
        for (const text of tableNames) {
          const { schema: tableSchema, name } = parseTableName(text);
          const table = await describeTable(client, tableSchema, name);
          await client.query(proxyTriggersSql(schema, table));
          tables.push(table);
        }
        await client.query('COMMIT');
        return tables;
      } catch (error) {
        if (isClientTimeout(error)) throw error; // the connection is in an unknown state: dropped below
        await client.query('ROLLBACK').catch(() => undefined);
        // The install holds the journal's lock (CREATE INDEX IF NOT EXISTS takes it) when it asks for a
        // cached table's (its triggers), and a writer holding the table's asks for the journal's: when
        // PostgreSQL breaks that cycle by failing the install, it is run again (it is idempotent).
        if ((error as { code?: string }).code !== DEADLOCK_DETECTED || attempt >= MAX_INSTALL_ATTEMPTS) throw error;
      }
    }
  } finally {
    drop(client);
  }
}

/** Each statement of the install, on the server (it may wait for locks); the client waits a little longer. */
const INSTALL_STATEMENT_MS = 60_000;
const INSTALL_CLIENT_MARGIN_MS = 1_000;
const DEADLOCK_DETECTED = '40P01';
const MAX_INSTALL_ATTEMPTS = 5;
