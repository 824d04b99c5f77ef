// The read path of a cacheable point read, Lockstep's protocol on the wire: get → hit (an answer
// filled under the same output settings and request shape) | miss with a fill lease → the client's
// own statement runs upstream inside the proxy's REPEATABLE READ, READ ONLY transaction together with
// the row's version (one snapshot), the answer is relayed and filled with that version (accepted only
// if no write fenced the key meanwhile) | anything else → pass through.
import { createHash } from 'node:crypto';
import { quoteIdentifier } from '../store/postgres-schema.js';
import { build, type Message } from './framing.js';
import { fingerprintSql, isAsync, statementMessages } from './internal.js';
import { readInternal, runInternal } from './internal-run.js';
import { bypassCovered, rowCacheKey, type PassReason, type ProxyContext } from './context.js';
import type { PlannedRead } from './batch.js';
import { encodeAnswer } from './answer-memo.js';
import { proxyTriggerNames } from './schema.js';
import { notRenderedElsewhereSql } from './rendered-columns.js';
import { answerFitsStatement, forgetStatement, noteStatementRan, tableDefinitionSql } from './prepared-definition.js';
import { isThenable } from '../maybe-promise.js';
import { recordParameter, type SessionState } from './state.js';
import type { CacheGetResult, MaybePromise } from '../types.js';

async function ensureFingerprint(state: SessionState): Promise<boolean> {
  if (state.fingerprint !== undefined) return true;
  const result = await runInternal(state, statementMessages(state.preparedInternal, 'probe', `SELECT ${fingerprintSql(state.ctx.tables)}`, []));
  if (result.error !== undefined || result.rows[0] === undefined) return false;
  setFingerprint(state, result.rows[0][0] ?? null, result.rows[0][1] ?? null);
  return true;
}

function setFingerprint(state: SessionState, fingerprint: string | null, resolves: string | null): void {
  state.fingerprint = fingerprint ?? '';
  state.resolves = (resolves ?? '').split(',');
}

/**
 * The table's name as the statement gives it must resolve to the cached table in this session: a bare
 * name (search_path, temp tables), and a qualified one too (a table swapped in by renames holds it, and
 * none of its writes is journaled). The resolutions: fingerprintSql, bare names then qualified ones.
 */
function resolvesToCachedTable(state: SessionState, read: PlannedRead): boolean {
  const { tables } = state.ctx;
  const index = tables.indexOf(read.point.table);
  return state.resolves?.[read.point.unqualified ? index : tables.length + index] === String(read.point.table.oid);
}

/**
 * Whether the cached table's answers may be shared, read in the fill's snapshot: it has no inheritance
 * children (`SELECT … FROM items` returns their rows too, and a write to a child fires no trigger of the
 * parent's); no row-level security (enabled after the proxy started: a policy may depend on anything,
 * a custom setting, a function, so one session's answer is not another's); a primary key of a
 * deterministic collation (with a case-insensitive one, `id = 'ABC'` finds the row 'abc', whose writes
 * invalidate only the key 'abc'); and the proxy's two
 * triggers fire in every session ('A', as the proxy installs them; disabled — `DISABLE TRIGGER ALL`, as
 * bulk loads do — or replica-only, writes append no journal row and no fence sees them; enabled for
 * origin sessions only — `ENABLE TRIGGER ALL` after a bulk load — a logical replication subscription's
 * writes, applied under session_replication_role = replica, append none); and no column rendered from
 * another object's definition (a regclass, a table's row type: rendered-columns.ts). $3: the table's
 * oid; $4, $5: the names of its row and TRUNCATE triggers.
 */
const TABLE_SHAREABLE_SQL = `NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) $3::pg_catalog.oid)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $3::pg_catalog.oid AND c.relrowsecurity)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_index x
    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.indrelid AND a.attnum OPERATOR(pg_catalog.=) ANY (x.indkey)
    JOIN pg_catalog.pg_collation co ON co.oid OPERATOR(pg_catalog.=) a.attcollation
    WHERE x.indrelid OPERATOR(pg_catalog.=) $3::pg_catalog.oid AND x.indisprimary AND NOT co.collisdeterministic)
`;
/** Whether the proxy's two triggers on the table (oid $3, names $4 and $5) fire in every session (TABLE_SHAREABLE_SQL says why). */
const TRIGGERS_FIRE_SQL = `(SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) $3::pg_catalog.oid
    AND t.tgname OPERATOR(pg_catalog.=) ANY (ARRAY[$4::pg_catalog.name, $5::pg_catalog.name]) AND t.tgenabled OPERATOR(pg_catalog.=) 'A'::pg_catalog.char) OPERATOR(pg_catalog.=) 2`;

/** The tables this proxy warned of (their triggers not firing in every session), until a fill finds them firing again. */
const warnedTables = new WeakMap<ProxyContext, Set<string>>();

/**
 * A fill found the proxy's triggers on its table not firing in every session: counted, and said once
 * (a process warning) until they fire again, for nothing else shows why a table stopped being cached.
 */
function noteTriggers(ctx: ProxyContext, table: string, fire: boolean): void {
  let warned = warnedTables.get(ctx);
  if (fire) {
    warned?.delete(table);
    return;
  }
  ctx.metrics.fillsRefusedTriggers++;
  if (warned === undefined) warnedTables.set(ctx, (warned = new Set()));
  if (warned.has(table)) return;
  warned.add(table);
  const [row, truncate] = proxyTriggerNames(ctx.schema);
  process.emitWarning(
    `lockstep pg-proxy: table ${table} is not cached: the proxy's triggers on it do not fire in every session ` +
      `(disabled, or enabled for origin sessions only, as ALTER TABLE … ENABLE TRIGGER ALL or an older proxy's install leaves them). ` +
      `Run ALTER TABLE ${table} ENABLE ALWAYS TRIGGER "${row}", ENABLE ALWAYS TRIGGER "${truncate}", or restart the proxy.`,
    'LockstepWarning',
  );
}

/**
 * Whether the statement's `=` is pg_catalog's in this session: no schema of its search_path but
 * pg_catalog holds an `=` operator taking a type a key or its parameter may have (int2/int4/int8,
 * text, varchar, bpchar, name, uuid) on either side. Such an operator in a schema searched before
 * pg_catalog (`SET search_path = ops, pg_catalog`) is the one `WHERE id = $1` calls, and for a varchar
 * key (no exact varchar `=` in pg_catalog) one anywhere in the path is: the answer is then another
 * row's, cached under a key that row's writes do not invalidate. Rare: such a session is not cached.
 * (Created later, such an operator flushes every cached table: the event trigger, schema.ts.)
 */
const CATALOG_EQUALS_SQL = `NOT EXISTS (SELECT FROM pg_catalog.pg_operator o
    WHERE o.oprname OPERATOR(pg_catalog.=) '=' AND o.oprnamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace
    AND o.oprnamespace OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) ANY (pg_catalog.current_schemas(true))))
    AND (o.oprleft OPERATOR(pg_catalog.=) ANY ('{21,23,20,25,1043,1042,19,2950}'::pg_catalog.oid[])
      OR o.oprright OPERATOR(pg_catalog.=) ANY ('{21,23,20,25,1043,1042,19,2950}'::pg_catalog.oid[])))`;

const MAX_VARIANTS_PER_SESSION = 256;

/** The answer's variant: a hash of the session's settings and the request's shape, kept per session while its settings stay the same. */
function variantOf(state: SessionState, read: PlannedRead): string {
  const fingerprint = state.fingerprint ?? '';
  if (state.variants?.fingerprint !== fingerprint) state.variants = { fingerprint, byShape: new Map() };
  const known = state.variants.byShape.get(read.shape);
  if (known !== undefined) return known;
  const variant = createHash('sha256').update(fingerprint).update('\0').update(read.shape).digest('base64');
  if (state.variants.byShape.size < MAX_VARIANTS_PER_SESSION) state.variants.byShape.set(read.shape, variant);
  return variant;
}

function answerHit(state: SessionState, read: PlannedRead, reply: Buffer): void {
  state.client.socket.write(reply);
  if (read.unnamedParse !== undefined) {
    forgetStatement(state, '');
    // The client now has this unnamed statement; the upstream does not (re-created before its next use).
    state.statements.set('', read.unnamedParse);
    state.unnamedStale = read.unnamedParse;
  } else if (read.shape.startsWith('Q|')) {
    state.statements.delete(''); // a simple Query destroys the unnamed statement
  }
}

/**
 * Answers the batch from the cache or by a fill; returns a pass-through reason when it did neither.
 * A hit on a cache that answers synchronously (memory) with the session's settings known is served
 * without a promise (no turn of the microtask queue between the cache's answer and the reply).
 */
export function readPoint(state: SessionState, batch: readonly Message[], read: PlannedRead): MaybePromise<PassReason | undefined> {
  const { ctx } = state;
  if (!bypassCovered(ctx)) return 'drainer-behind'; // a bypass write may not be invalidated yet: PostgreSQL answers
  if (state.parameters.get('client_encoding') !== 'UTF8') return 'encoding';
  // The parser reads string literals as standard_conforming_strings = on does.
  if (read.shape.startsWith('Q|') && state.parameters.get('standard_conforming_strings') !== 'on') return 'key-form';
  if (state.unnamedStale !== undefined && read.unnamedParse === undefined && !read.shape.startsWith('Q|')) return 'not-cacheable';
  const cacheKey = rowCacheKey(ctx, read.point.table.qualified, read.key);
  let got: MaybePromise<CacheGetResult>;
  try {
    got = ctx.cache.get(cacheKey, ctx.fillLeaseMs);
  } catch {
    return 'cache-error'; // fail open
  }
  if (isThenable(got)) {
    return Promise.resolve(got).then(
      (answer) => afterGet(state, batch, read, cacheKey, answer),
      () => 'cache-error' as const, // fail open
    );
  }
  return afterGet(state, batch, read, cacheKey, got);
}

function afterGet(state: SessionState, batch: readonly Message[], read: PlannedRead, cacheKey: string, got: CacheGetResult): MaybePromise<PassReason | undefined> {
  if (got.kind === 'value') {
    if (state.fingerprint !== undefined) return hitOrCheck(state, batch, read, cacheKey, got.payload);
    return ensureFingerprint(state).then((known) => (known ? hitOrCheck(state, batch, read, cacheKey, got.payload) : 'not-cacheable'));
  }
  if (got.kind !== 'miss' || got.token === undefined) return 'lease';
  state.ctx.metrics.misses++;
  return fill(state, batch, read, cacheKey, got.token);
}

/**
 * A hit, or, when the answer may not have the columns of the statement the read uses (parsed in an
 * earlier batch: prepared-definition.ts), the read run on PostgreSQL as a fill that fills nothing
 * (counted as a pass-through for its variant).
 */
function hitOrCheck(state: SessionState, batch: readonly Message[], read: PlannedRead, cacheKey: string, payload: unknown): MaybePromise<PassReason | undefined> {
  const served = serveHit(state, read, cacheKey, payload);
  if (served !== UNFIT) return served;
  state.ctx.metrics.passThrough.variant++;
  return fill(state, batch, read, cacheKey, undefined);
}

const UNFIT = Symbol('the answer may not have the columns of the statement read');

function serveHit(state: SessionState, read: PlannedRead, cacheKey: string, payload: unknown): PassReason | undefined | typeof UNFIT {
  const { ctx } = state;
  if (!resolvesToCachedTable(state, read)) return 'search-path';
  const answer = ctx.answers.decode(cacheKey, payload);
  if (answer === undefined || answer.variant !== variantOf(state, read)) return 'variant';
  if (!answerFitsStatement(state, read, answer.definition)) return UNFIT;
  ctx.metrics.hits++;
  answerHit(state, read, answer.reply);
  return undefined;
}

/** Runs the read on PostgreSQL in the proxy's read transaction; with a fill lease's `token`, caches its answer. */
async function fill(state: SessionState, batch: readonly Message[], read: PlannedRead, cacheKey: string, token: string | undefined): Promise<PassReason | undefined> {
  const { ctx } = state;
  const s = quoteIdentifier(ctx.schema);
  // One snapshot for the row's version, the settings and the client's own statement.
  const opened = await runInternal(state, [
    ...statementMessages(state.preparedInternal, 'begin', 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY', []),
    ...statementMessages(state.preparedInternal, 'version', `SELECT ${s}.version_of($1, $2)::text, ${fingerprintSql(ctx.tables)}, ${TABLE_SHAREABLE_SQL} AND ${notRenderedElsewhereSql(ctx.schema, '$3::pg_catalog.oid')}, ${TRIGGERS_FIRE_SQL}, ${CATALOG_EQUALS_SQL}, ${tableDefinitionSql('$3::pg_catalog.oid')}`, [read.point.table.qualified, read.key, String(read.point.table.oid), ...proxyTriggerNames(ctx.schema)]),
  ]);
  if (opened.error !== undefined || opened.status !== 'T' || opened.rows[0] === undefined) {
    if (opened.status !== 'I') await runInternal(state, statementMessages(state.preparedInternal, 'end', 'ROLLBACK', []));
    // The proxy's own queries failed (a session's statement_timeout, a role without access): another
    // session may fill, so the lease is given back.
    if (token !== undefined) giveLeaseBack(ctx, cacheKey);
    return 'not-cacheable';
  }
  const [version, fingerprint, resolves, tableShareable, triggersFire, catalogEquals, definition] = opened.rows[0];
  noteTriggers(ctx, read.point.table.qualified, triggersFire === 't');
  const shareable = triggersFire === 't' ? tableShareable : 'f';
  setFingerprint(state, fingerprint ?? null, resolves ?? null);
  // The client's statement, then the end of the proxy's transaction, in one write.
  state.upstream.socket.write(Buffer.concat([...batch.map((m) => m.raw), ...statementMessages(state.preparedInternal, 'end', 'ROLLBACK', []), build.sync()]));
  const answer: Message[] = [];
  // A table with inheritance children answers with their rows too, and their writes fire no trigger
  // of the cached table's (no journal row, no fence); one with row-level security answers each session
  // as its policies say: such an answer is relayed, never cached.
  let cacheable = resolvesToCachedTable(state, read) && shareable === 't' && catalogEquals === 't';
  // Refused for the table's sake (row-level security, inheritance children …), every reader of the key
  // is refused alike: the lease is kept, so they pass through cheaply (reason `lease`) until it expires.
  // A session's own reasons (its search_path, its `=`) refuse only it: the lease is given back.
  const tableRefuses = shareable !== 't';
  for (;;) {
    const m = state.upstream.tryNext() ?? (await state.upstream.next());
    if (m.type === 'Z') break;
    if (isAsync(m)) {
      if (m.type === 'S') {
        recordParameter(state, m);
        cacheable = false;
        state.client.socket.write(m.raw);
        continue;
      }
      if (m.type === 'A') {
        state.client.socket.write(m.raw);
        continue;
      }
      cacheable = false; // a notice belongs to the answer: relay it in place, never cache it
    }
    if (m.type === 'E') cacheable = false;
    answer.push(m);
  }
  const ended = await readInternal(state);
  if (ended.status !== 'I') throw new Error('lockstep pg-proxy: the fill transaction did not end');
  const bytes = Buffer.concat(answer.map((m) => m.raw));
  state.client.socket.write(Buffer.concat([bytes, build.readyForQuery('I')]));
  if (read.unnamedParse !== undefined) {
    state.statements.set('', read.unnamedParse);
    state.unnamedStale = undefined;
    forgetStatement(state, '');
  } else if (read.shape.startsWith('Q|')) {
    state.statements.delete('');
    state.unnamedStale = undefined;
  }
  const last = answer[answer.length - 1];
  const rows = answer.filter((m) => m.type === 'D').length;
  const tag = last?.type === 'C' ? last.body.toString('utf8', 0, last.body.length - 1) : '';
  // Ran without an error under this definition: the statement's columns are the definition's.
  if (!answer.some((m) => m.type === 'E')) noteStatementRan(state, read, definition);
  if (token === undefined) return undefined;
  if (!cacheable || rows > 1 || (tag !== 'SELECT 0' && tag !== 'SELECT 1') || bytes.length > ctx.maxAnswerBytes) {
    if (!tableRefuses) giveLeaseBack(ctx, cacheKey);
    return undefined;
  }
  const payload = encodeAnswer(variantOf(state, read), bytes, definition ?? '');
  try {
    const accepted = await ctx.cache.fill(cacheKey, token, { version: Number(version), payload, tombstone: false, sizeBytes: payload.length }, ctx.ttlMs);
    if (accepted) ctx.metrics.fills++;
    else ctx.metrics.fillsRejected++;
  } catch {
    ctx.metrics.fillsRejected++;
  }
  return undefined;
}

/**
 * Gives the fill lease of an answer not cached, for a reason of its own (over maxAnswerBytes, more than
 * one row, an error, a notice, a setting changed): another reader's statement of the key may well be
 * cached, and held until it expired (fillLeaseMs) the lease made every reader pass through (reason
 * `lease`). A reason of the table's or the session's (row-level security, inheritance children, a
 * session whose `=` is not pg_catalog's, a name resolving elsewhere) keeps the lease instead: every
 * reader would be refused alike, and passing through is cheaper than a fill (a cache round trip, a
 * REPEATABLE READ transaction, the catalog queries).
 *
 * invalidateOlder at version 0 voids a fill and nothing else (no value is older, no write is marked
 * dirty); the port has no call naming the token, so a lease another reader took after ours expired is
 * voided too, which only costs that reader its fill. Not waited for, so a slow cache does not delay
 * the session's next batch. That is safe because the call can only void a fill: arriving late (after
 * the session's next get of the key, which then passes through for the lease once) or never (the cache
 * failed or was closed: the lease expires by itself, as before) costs a fill, never a stale answer.
 * Its failure is swallowed (no unhandled rejection); only a lease given back is counted.
 */
function giveLeaseBack(ctx: ProxyContext, cacheKey: string): void {
  let given: MaybePromise<void>;
  try {
    given = ctx.cache.invalidateOlder(cacheKey, 0);
  } catch {
    return; // the lease expires by itself
  }
  Promise.resolve(given).then(
    () => {
      ctx.metrics.fillsAbandoned++;
    },
    () => {
      // the lease expires by itself
    },
  );
}
