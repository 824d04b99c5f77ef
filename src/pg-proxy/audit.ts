// `lockstep audit --pg-proxy`: every cached answer of a proxy's tables, compared with PostgreSQL's
// committed version of its key (audit-classify.ts says how), counted A–E in the auditor's report
// shape (one report per table), and with `repair` invalidated with version fencing when D or E.
//
// The walk lists the cache (scan of pgproxy:<scope>:<schema.table>:), not the table: rows never cached
// are not counted (a production table is not scanned). Per page of keys, one statement reads each
// key's committed version and its row in one snapshot. The two sides are not read at one instant,
// so a key found D or E is read again (PostgreSQL first, then the cache) before it is counted: a
// write between its commit and its fence, or a fill in flight, is not taken for a defect.
import { parseUpstream, resolveUpstream } from './upstream-tls.js';
import type { AuditExample, AuditReport, AuditRepair, StateCounts } from '../audit/auditor.js';
import { KEY_STATES } from '../audit/auditor.js';
import type { KeyState } from '../engine/api.js';
import { isIdentifier, quoteIdentifier } from '../store/postgres-schema.js';
import type { CacheAdapter, CacheRecordView } from '../types.js';
import { answerRepairFence, answerRows, classifyAnswer, servableAnswer, type AnswerClassification, type CommittedRow } from './audit-classify.js';
import { keyOfLiteral } from './keys.js';
import type { PgClientBase } from './pg-driver.js';
import { connectUpstream, drop } from './upstream-client.js';
import { describeTable, parseTableName, type CachedTable } from './tables.js';
import { answerPrefix } from './context.js';
import { readCacheScope } from './cache-scope.js';

export interface ProxyAuditOptions {
  /** The proxy's --upstream: the database whose answers are cached (its name is part of every cache key). */
  readonly upstream: string;
  readonly cache: CacheAdapter;
  /** Tables to audit (`items`, `schema.items`); empty or undefined: every table the proxy schema lists. */
  readonly tables?: readonly string[];
  /** The proxy's schema. @default 'lockstep_proxy' */
  readonly schema?: string;
  readonly repair?: boolean;
  readonly onProgress?: (progress: { table: string; phase: 'scan' | 'repair' | 'recheck'; scanned: number; total: number | undefined }) => void;
  /** Keys per statement. @default 500 */
  readonly pageSize?: number;
  /** @default 5 */
  readonly examplesPerState?: number;
  /** @default 100 */
  readonly maxRepairsListed?: number;
}

/** The database name the proxy puts in its cache keys, derived from the URL as the proxy does (upstream-tls.ts). */
export function upstreamDatabase(upstream: string): string {
  return parseUpstream(upstream).database;
}


const CAST: Readonly<Record<number, string>> = { 20: 'pg_catalog.int8', 21: 'pg_catalog.int2', 23: 'pg_catalog.int4', 25: 'pg_catalog.text', 1043: 'pg_catalog.text', 2950: 'pg_catalog.uuid' };

/** Committed version and row of each key, one snapshot (one statement). Keys not in canonical form have no row. */
async function readCommitted(client: PgClientBase, schema: string, table: CachedTable, keys: readonly string[]): Promise<Map<string, CommittedRow>> {
  const canonical = keys.filter((key) => keyOfLiteral(table, key, true) === key);
  const t = `${quoteIdentifier(table.schema)}.${quoteIdentifier(table.name)}`;
  const result = await client.query<{ key: string; version: string; row: string | null }>(
    `SELECT k.key, ${quoteIdentifier(schema)}.version_of($1, k.key)::text AS version,
       (SELECT pg_catalog.to_jsonb(x)::text FROM ${t} x WHERE x.${quoteIdentifier(table.pkColumn)} = c.key::${CAST[table.keyTypeOid]}) AS row
     FROM pg_catalog.unnest($2::text[]) AS k(key) LEFT JOIN pg_catalog.unnest($3::text[]) AS c(key) ON c.key = k.key`,
    [table.qualified, keys, canonical],
  );
  return new Map(result.rows.map((r) => [r.key, { version: Number(r.version), row: r.row }]));
}

/** The tables to audit: those named, or every table the proxy's schema lists that still exists. */
async function resolveTables(client: PgClientBase, schema: string, named: readonly string[] | undefined): Promise<CachedTable[]> {
  const found = await client.query<{ ok: boolean }>('SELECT pg_catalog.to_regnamespace($1) IS NOT NULL AS ok', [quoteIdentifier(schema)]);
  if (!found.rows[0]?.ok) throw new Error(`the database has no schema ${JSON.stringify(schema)}: no proxy has run against it (or it uses another --schema)`);
  let names = named ?? [];
  if (names.length === 0) {
    try {
      const listed = await client.query<{ name: string }>(
        `SELECT t.name FROM ${quoteIdentifier(schema)}.tables t JOIN pg_catalog.pg_class c ON c.oid = t.relid ORDER BY t.name`,
      );
      names = listed.rows.map((r) => r.name);
    } catch (error) {
      throw new Error(`cannot list the proxy's tables (${(error as Error).message}): name them with --table`);
    }
    if (names.length === 0) throw new Error(`the proxy schema ${schema} lists no table`);
  }
  const tables: CachedTable[] = [];
  for (const text of names) {
    const { schema: tableSchema, name } = parseTableName(text);
    tables.push(await describeTable(client, tableSchema, name));
  }
  return tables;
}

interface Seen {
  readonly committed: CommittedRow;
  readonly cached: CacheRecordView | undefined;
}

function isDefect(state: KeyState): state is 'D' | 'E' {
  return state === 'D' || state === 'E';
}

/** The cached side of an example: the answer's wire bytes summarized (they are base64 of PostgreSQL messages). */
function answerView(cached: CacheRecordView | undefined): CacheRecordView | null {
  if (cached?.kind !== 'value' || cached.tombstone) return cached ?? null;
  const rows = answerRows(cached.payload);
  return { ...cached, payload: rows === undefined ? 'an answer the proxy would not serve' : `an answer with ${rows} row${rows === 1 ? '' : 's'}` };
}

function example(key: string, state: KeyState, description: string, { committed, cached }: Seen): AuditExample {
  return { key, state, description, store: committed.row === null ? null : { version: committed.version, payload: committed.row }, cache: answerView(cached) };
}

async function auditTable(client: PgClientBase, options: ProxyAuditOptions, schema: string, scope: string, table: CachedTable): Promise<AuditReport> {
  const { cache } = options;
  const pageSize = options.pageSize ?? 500;
  const perState = options.examplesPerState ?? 5;
  const maxListed = options.maxRepairsListed ?? 100;
  const started = performance.now();
  const prefix = answerPrefix(scope, table.qualified);
  const progress = (phase: 'scan' | 'repair' | 'recheck', scanned: number, total: number | undefined) =>
    options.onProgress?.({ table: table.qualified, phase, scanned, total });
  const observe = async (key: string): Promise<Seen> => {
    const committed = (await readCommitted(client, schema, table, [key])).get(key)!;
    return { committed, cached: (await cache.peek(prefix + key)) ?? undefined };
  };

  /**
   * A key's state, D or E only when proven, by the auditor's rule (auditor.ts): an answer ahead of
   * the committed version read before its peek may be a write that committed (and was fenced and
   * filled) between the two, so PostgreSQL is read again: still below the answer, the cache holds a
   * version PostgreSQL never committed; at it, the write we raced (C, or a proven mismatch at that
   * version); above it, a newer write since: look again. Rewritten during every look: C, nothing proven.
   */
  const confirm = async (key: string): Promise<AnswerClassification & { seen: Seen }> => {
    for (let look = 0; look < CONFIRM_LOOKS; look++) {
      const seen = await observe(key);
      const found = classifyAnswer(seen.committed, seen.cached);
      const answer = servableAnswer(seen.cached);
      if (!isDefect(found.state) || answer === undefined || answer.version <= seen.committed.version) return { ...found, seen };
      const again: Seen = { committed: (await readCommitted(client, schema, table, [key])).get(key)!, cached: seen.cached };
      if (again.committed.version <= answer.version) return { ...classifyAnswer(again.committed, again.cached), seen: again };
    }
    const seen = await observe(key);
    return { state: 'C', description: 'written during every look (the answer was ahead of each committed read): no defect proven', seen };
  };

  const counts: StateCounts = { A: 0, B: 0, C: 0, D: 0, E: 0 };
  const examples: Record<KeyState, AuditExample[]> = { A: [], B: [], C: [], D: [], E: [] };
  const defects: Array<{ key: string; state: 'D' | 'E'; seen: Seen }> = [];
  const record = async (key: string, first: Seen): Promise<void> => {
    let seen = first;
    let { state, description } = classifyAnswer(seen.committed, seen.cached);
    if (isDefect(state)) ({ state, description, seen } = await confirm(key)); // fresh reads: PostgreSQL first, then the cache
    counts[state]++;
    if (examples[state].length < perState) examples[state].push(example(key, state, description, seen));
    if (isDefect(state)) defects.push({ key, state, seen });
  };

  // 1. The cache's records of the table, a page at a time against PostgreSQL.
  const listed = new Set<string>();
  let page: CacheRecordView[] = [];
  let scanned = 0;
  const flush = async (): Promise<void> => {
    if (page.length === 0) return;
    const committed = await readCommitted(client, schema, table, page.map((view) => view.key.slice(prefix.length)));
    for (const view of page) {
      const key = view.key.slice(prefix.length);
      await record(key, { committed: committed.get(key)!, cached: view });
    }
    scanned += page.length;
    page = [];
    progress('scan', scanned, undefined);
  };
  for await (const view of cache.scan(prefix)) {
    if (!view.key.startsWith(prefix) || listed.has(view.key)) continue; // a scan may list a key twice
    listed.add(view.key);
    page.push(view);
    if (page.length >= pageSize) await flush();
  }
  await flush();
  progress('scan', scanned, scanned);

  // 2. Repair D and E with version fencing, then read each repaired key again.
  const repairs: Array<AuditRepair & { seen: Seen }> = [];
  if (options.repair === true) {
    for (const [i, { key, state, seen }] of defects.entries()) {
      const fence = answerRepairFence(seen.committed, seen.cached);
      if (fence === undefined) continue;
      try {
        await cache.invalidateOlder(prefix + key, fence);
        repairs.push({ key, state, fence, after: undefined, seen });
      } catch (error) {
        repairs.push({ key, state, fence, after: undefined, seen, error: (error as Error)?.message ?? String(error) });
      }
      progress('repair', i + 1, defects.length);
    }
  }
  const remaining = { D: 0, E: 0 };
  const remainingExamples: AuditExample[] = [];
  const keep = (key: string, state: 'D' | 'E', description: string, seen: Seen): void => {
    remaining[state]++;
    if (remainingExamples.filter((e) => e.state === state).length < perState) remainingExamples.push(example(key, state, description, seen));
  };
  const listedRepairs: AuditRepair[] = [];
  let fixed = 0;
  if (options.repair === true) {
    for (const [i, { seen: found, ...repair }] of repairs.entries()) {
      let after: KeyState | undefined;
      if (repair.error === undefined) {
        const { state, description, seen } = await confirm(repair.key);
        after = state;
        if (isDefect(state)) keep(repair.key, state, description, seen);
        else fixed++;
      } else {
        keep(repair.key, repair.state, `the repair failed: ${repair.error}`, found);
      }
      if (listedRepairs.length < maxListed) listedRepairs.push({ ...repair, after });
      progress('recheck', i + 1, repairs.length);
    }
    const repaired = new Set(repairs.map((r) => r.key));
    for (const { key, state, seen } of defects) if (!repaired.has(key)) keep(key, state, classifyAnswer(seen.committed, seen.cached).description, seen);
  } else {
    for (const { key, state, seen } of defects) keep(key, state, classifyAnswer(seen.committed, seen.cached).description, seen);
  }

  return {
    namespace: table.qualified,
    keys: KEY_STATES.reduce((sum, state) => sum + counts[state], 0),
    counts,
    examples,
    repair: { requested: options.repair === true, attempted: repairs.length, fixed, repairs: listedRepairs },
    remaining,
    remainingExamples,
    durationMs: performance.now() - started,
  };
}

/** Audits the cached answers of each table (one report per table). PostgreSQL and cache errors reject. */
export async function auditPgProxy(options: ProxyAuditOptions): Promise<AuditReport[]> {
  const schema = options.schema ?? 'lockstep_proxy';
  if (!isIdentifier(schema)) throw new Error(`--schema ${JSON.stringify(schema)}: expected a plain identifier`);
  const pageSize = options.pageSize ?? 500;
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0) throw new RangeError(`pageSize must be a positive integer (got ${pageSize})`);
  // The proxy's URL, TLS included: the audit connects as the proxy's own connections do.
  const upstream = await resolveUpstream(options.upstream);
  const database = upstream.database;
  const client = await connectUpstream(upstream.pg, AUDIT_QUERY_MS);
  try {
    const tables = await resolveTables(client, schema, options.tables);
    const scope = await readCacheScope(client, database, schema);
    const reports: AuditReport[] = [];
    for (const table of tables) reports.push(await auditTable(client, options, schema, scope, table));
    return reports;
  } finally {
    drop(client);
  }
}

/** Looks at a key whose answer keeps running ahead of PostgreSQL before counting it C (auditor.ts does the same). */
const CONFIRM_LOOKS = 3;

/** One page of a table, or one catalog query: a stalled upstream fails the audit instead of hanging it. */
const AUDIT_QUERY_MS = 30_000;
