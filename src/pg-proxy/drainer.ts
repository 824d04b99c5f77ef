// The bypass drainer: writes that did not go through this proxy (psql straight to PostgreSQL, another
// service, a migration, a crashed proxy's last commit) are in the journal too. It wakes on NOTIFY and
// polls as a fallback, and applies invalidateOlder to every row committed since its last pass.
//
// Which rows are new: journal ids are drawn at insert, not at commit, so "id > cursor" could skip a
// row of a long transaction. Instead each pass reads, in one snapshot, the rows whose transaction id is
// >= the previous pass's snapshot xmin, and that snapshot's own xmin. A transaction that commits after
// a pass's snapshot was running or not yet started then, so its xid is >= that xmin: nothing is
// skipped, and replaying a row twice is harmless (invalidateOlder is idempotent).
//
// Which server answers: a failover to an asynchronous replica that missed commits (or a restore)
// leaves cached answers of writes the new server never had, at versions and transaction ids it may
// hand out again. Each pass reads the upstream's incarnation (system identifier and timeline, as
// the store adapter does) in its journal query; when it is not the one of the last pass (or of the
// saved cursor, before the first), every cached table is flushed and the journal replayed from the
// start, as for an impossible cursor.
import type { PgConnection } from './upstream-tls.js';
import { pg, type PgClient } from './pg-driver.js';
import { drop } from './upstream-client.js';
import { announcementsInstalledSql, markersInstalledSql, PROXY_CHANNEL } from './schema.js';
import { applyWrites } from './fence.js';
import { quoteIdentifier } from '../store/postgres-schema.js';
import { isClientTimeout } from '../store/client-timeouts.js';
import { INCARNATION_COLUMNS, INCARNATION_SQL, incarnationRefused, incarnationText } from '../store/postgres-incarnation.js';
import { incarnationHash } from '../engine/journal-stamp.js';
import { journalIdOf, type ProxyContext } from './context.js';

export interface DrainerOptions {
  readonly upstreamPg: PgConnection;
  /** Fallback poll interval. @default 50 */
  readonly pollMs?: number;
  /** Wake on NOTIFY. @default true */
  readonly listen?: boolean;
  /** How long journal rows are kept. @default 10 minutes */
  readonly retentionMs?: number;
}

export interface BypassDrainer {
  start(): Promise<void>;
  /** One pass now; rejects with DrainerStopped once stop() was called (a pass then would open a connection nobody ends). */
  drain(): Promise<number>;
  stop(): Promise<void>;
}

/** A pass asked for after stop(): refused, so no drainer connection outlives the proxy. */
export class DrainerStopped extends Error {
  constructor() {
    super('lockstep pg-proxy: the drainer is stopped');
    this.name = 'DrainerStopped';
  }
}

const LAG_SAMPLES = 2048;
/**
 * The longest the drainer waits for a connection or a query. A connection that hangs (a partition,
 * an address moved to another server) is dropped and the next pass opens another; meanwhile the
 * read path stops serving cached answers once the last complete pass is older than its bound.
 */
const DRAINER_WAIT_MS = 2_000;
/** The prune may delete a long outage's worth of rows: it gets longer (reads go to PostgreSQL meanwhile). */
const PRUNE_WAIT_MS = 30_000;

/**
 * A digest of what decides which tables a role may read through other roles: every membership and each
 * role's superuser and inherit attributes (readable by any role). Cheap on clusters of a few hundred roles.
 */
const ROLES_SQL = `pg_catalog.md5(
    coalesce((SELECT pg_catalog.string_agg(r.oid::text || ':' || r.rolsuper::text || ':' || r.rolinherit::text, ',' ORDER BY r.oid) FROM pg_catalog.pg_roles r), '')
    || '|' || coalesce((SELECT pg_catalog.string_agg(m::text, ',' ORDER BY m::text) FROM pg_catalog.pg_auth_members m), ''))`;

export function createDrainer(ctx: ProxyContext, options: DrainerOptions): BypassDrainer {
  const s = quoteIdentifier(ctx.schema);
  const pollMs = options.pollMs ?? 50;
  const retentionMs = options.retentionMs ?? 600_000;
  const journalId = journalIdOf(ctx.cacheScope);
  let client: PgClient | undefined;
  let listener: PgClient | undefined;
  let xmin: string | undefined;
  /** The pruned-xid watermark this drainer last flushed for (or found harmless at start). */
  let prunedSeen: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let pass: Promise<number> | undefined;
  let again = false;
  let lastPrune = Date.now();
  /** The role state (ROLES_SQL) the last pass read; undefined before the first (kept across reconnections). */
  let rolesSeen: string | undefined;
  /**
   * The upstream's incarnation (its hash, as the cursor keeps it) the last pass read, or the saved
   * cursor's before the first pass; kept across reconnections (the first connection to a promoted
   * replica is a new one).
   */
  let incarnationSeen: string | undefined;
  /** Whether this connection's server lets its role read the incarnation (decided at each start). */
  let incarnationReadable = false;
  /** The next cursor save replaces the saved cursor: the upstream went back, its xids are not the cursor's. */
  let replaceCursor = false;
  /** Ids applied by the last pass (the next pass may read them again). */
  const applied = new Set<number>();

  async function connection(): Promise<PgClient> {
    if (client !== undefined) return client;
    const c = new pg.Client({
      ...options.upstreamPg,
      application_name: 'lockstep pg-proxy drainer',
      connectionTimeoutMillis: DRAINER_WAIT_MS,
      query_timeout: DRAINER_WAIT_MS,
    });
    c.on('error', () => {
      if (client === c) client = undefined;
      drop(c); // not queryable after an error: its socket goes too (an error may leave it open)
    });
    await c.connect();
    // Stopped while this one was connecting (stop() waits for a pass only so long): it ends here.
    if (!running) {
      drop(c);
      throw new DrainerStopped();
    }
    client = c;
    // A new connection may reach a different database under the same name (restored, failed over):
    // decide the start again rather than trust an in-memory cursor from before, nor the row ids of
    // the last pass (that database may hand the same ids out again, for other writes).
    xmin = undefined;
    applied.clear();
    return c;
  }

  async function once(): Promise<number> {
    const c = await connection().catch((error: unknown) => {
      client = undefined;
      throw error;
    });
    try {
      return await passOn(c);
    } catch (error) {
      // A timed-out query leaves the connection in an unknown state: the next pass opens another.
      // (A cache that refuses is not the connection's fault: it stays.)
      if (isClientTimeout(error)) {
        if (client === c) client = undefined;
        drop(c);
      }
      throw error;
    }
  }

  /** Every cached table's answers cleared (version-fenced, as one table's fence). */
  async function flushAllTables(): Promise<void> {
    for (const table of ctx.tables) await ctx.flushTable(table.qualified);
  }

  async function passOn(c: PgClient, relocated = false): Promise<number> {
    if (xmin === undefined) xmin = await locateStart(c);
    // Every write committed before this instant is in the snapshot the query below takes.
    const sentAt = performance.now();
    const result = await c.query<{ x: string; pruned: string | null; marked: boolean | null; announced: boolean | null; roles: string; system: string | null; timeline: string | null; rows: { id: number; tbl: string; key: string | null; version: number; lag_ms: number }[] }>(
      `SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text AS x,
              (SELECT p.xid::text FROM ${s}.pruned p) AS pruned,
              ${incarnationReadable ? INCARNATION_COLUMNS : 'NULL::text AS system, NULL::text AS timeline'},
              ${markersInstalledSql(s)} AS marked,
              ${announcementsInstalledSql(s)} AS announced,
              ${ROLES_SQL} AS roles,
              coalesce(pg_catalog.json_agg(json_build_object('id', j.id, 'tbl', j.tbl, 'key', j.key, 'version', j.version,
                'lag_ms', extract(epoch FROM pg_catalog.clock_timestamp() - j.at) * 1000) ORDER BY j.id), '[]') AS rows
       FROM ${s}.journal j WHERE j.xid >= $1::xid8`,
      [xmin],
    );
    const { x, pruned, marked, announced, roles, system, timeline, rows: all } = result.rows[0]!;
    // The upstream is another incarnation than the one the cache was filled from (a replica promoted
    // after a failover, a restore): what it lost may be cached, at versions it will hand out again,
    // which no journal row of it clears, and its transaction ids are not the cursor's. Flush every
    // cached table, then restart as for an impossible cursor: replay every retained row.
    // A role that may not read it cannot tell (undefined): nothing is checked, and the last known
    // incarnation is kept for a later connection that can.
    const incarnation = incarnationReadable ? incarnationHash(incarnationText({ system, timeline })) : undefined;
    if (incarnation !== undefined && incarnationSeen !== undefined && incarnation !== incarnationSeen) {
      // One connection reaches one server: a second change within a pass is no failover (and would loop).
      if (relocated) throw new Error('lockstep pg-proxy: the upstream changed incarnation twice within one drainer pass');
      await flushAllTables();
      incarnationSeen = incarnation;
      xmin = '0';
      prunedSeen = pruned ?? undefined;
      applied.clear();
      replaceCursor = true;
      return passOn(c, true);
    }
    if (incarnation !== undefined) incarnationSeen = incarnation;
    // Role membership or attributes changed since the last pass (made straight on PostgreSQL: no
    // event trigger fires for roles, and a relayed change is flushed by its session): a hit is served
    // without PostgreSQL's privilege check, so every cached table is flushed before this pass counts.
    if (rolesSeen !== undefined && roles !== rolesSeen) {
      await flushAllTables();
    }
    rolesSeen = roles;
    // Another drainer (another proxy's cache) may have pruned rows this one never read: any pruned
    // row at or above our cursor. Checked in the same snapshot as the read, every pass, not only at
    // start: what it cannot replay, it flushes (the journal invariant, docs/protocol.md).
    if (pruned !== null && pruned !== prunedSeen && BigInt(pruned) >= BigInt(xmin)) {
      await flushAllTables();
    }
    if (pruned !== null) prunedSeen = pruned;
    // A long transaction holds xmin back, so the same rows come again: apply each once.
    const rows = all.filter((r) => !applied.has(r.id));
    const started = performance.now();
    await applyWrites(ctx, rows.map((r) => ({ id: r.id, table: r.tbl, key: r.key, version: Number(r.version) })));
    ctx.bypass.coveredAt = Math.max(ctx.bypass.coveredAt, sentAt);
    ctx.bypass.markersAt = marked === true ? Math.max(ctx.bypass.markersAt, sentAt) : -Infinity;
    ctx.bypass.announcedAt = announced === true ? Math.max(ctx.bypass.announcedAt, sentAt) : -Infinity;
    applied.clear();
    for (const r of all) applied.add(r.id);
    const applyMs = performance.now() - started;
    // Rows already fenced by their session count too (harmless); the lag is commit → invalidated here.
    for (const row of rows) {
      ctx.metrics.bypassLagMs.push(row.lag_ms + applyMs);
      if (ctx.metrics.bypassLagMs.length > LAG_SAMPLES) ctx.metrics.bypassLagMs.shift();
    }
    ctx.metrics.bypassRows += rows.length;
    xmin = x;
    // With the incarnation it was reached on: a proxy (re)starting on this cache checks it (above). A
    // cursor saved without one (an earlier release) is passed at the first pass: the proxy's install
    // (its triggers re-created) took a transaction id above it.
    await ctx.cache.saveJournalCursor(journalId, incarnation === undefined ? { id: Number(x) } : { id: Number(x), incarnation }, replaceCursor);
    replaceCursor = false;
    if (Date.now() - lastPrune > 60_000) {
      lastPrune = Date.now();
      await c.query({
        // Only rows this pass's snapshot had committed (xid < x), all read by now: a row of a
        // transaction longer than the retention is "old" the moment it commits, and is kept until read.
        text: `WITH gone AS (DELETE FROM ${s}.journal WHERE at < pg_catalog.clock_timestamp() - $1::int * interval '1 millisecond' AND xid < $2::xid8 RETURNING xid)
         INSERT INTO ${s}.pruned (one, xid) SELECT true, max(xid) FROM gone HAVING count(*) > 0
         ON CONFLICT (one) DO UPDATE SET xid = GREATEST(${s}.pruned.xid, excluded.xid)`,
        values: [retentionMs, x],
        query_timeout: PRUNE_WAIT_MS, // pg reads it per query; its types know it only as a client option
      } as { text: string; values: unknown[] });
    }
    return rows.length;
  }

  /**
   * Where the first pass starts, under the journal invariant (docs/protocol.md): only a cache that
   * proves it holds nothing starts "now"; a saved cursor is trusted only while no row at or above it
   * was pruned; otherwise everything retained is replayed, after a flush if rows were ever pruned
   * (a pruned row may stand for a write this cache never saw).
   */
  async function locateStart(c: PgClient): Promise<string> {
    // Whether the passes on this connection can read the incarnation (a role refused it: it cannot tell).
    // A standby refuses it too (55000, not caught): no pass until it is promoted.
    incarnationReadable = await c.query(INCARNATION_SQL).then(
      () => true,
      (error: unknown) => {
        if (incarnationRefused(error)) return false;
        throw error;
      },
    );
    // The snapshot first, the cache after (as journal-start.ts reads the head first): a cache empty
    // after the snapshot holds no value nor lease from before it, so whatever it holds later was read
    // from PostgreSQL after every write below the snapshot's xmin had committed. Asked the other way
    // round, a read could fill the cache, then a bypass write commit, both before the snapshot: that
    // write's row would lie below the start, never replayed, and its old value stay cached.
    if (ctx.cache.isEmpty !== undefined) {
      const { x } = (await c.query<{ x: string }>('SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text AS x')).rows[0]!;
      if (ctx.cache.isEmpty() === true) return x;
    }
    const cursor = await ctx.cache.loadJournalCursor(journalId);
    const loaded = cursor?.id;
    // Before its first pass, this drainer checks the upstream against the saved cursor's incarnation.
    incarnationSeen ??= cursor?.incarnation;
    const { pruned, next } = (
      await c.query<{ pruned: string | null; next: string }>(
        `SELECT (SELECT xid::text FROM ${s}.pruned) AS pruned, pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text AS next`,
      )
    ).rows[0]!;
    prunedSeen = pruned ?? undefined;
    // A cursor past every transaction id this database handed out (a restore, a dump loaded into a
    // new cluster under the same name) is impossible: it proves nothing, as if there were none.
    // Nor one saved before a failover this drainer found and has not replayed past yet (its replay
    // pass failed): that cursor's transaction ids are the old server's.
    const saved = loaded === undefined || BigInt(loaded) > BigInt(next) || replaceCursor ? undefined : loaded;
    const trusted = saved !== undefined && (pruned === null || BigInt(saved) > BigInt(pruned));
    if (!trusted && pruned !== null) {
      await flushAllTables();
    }
    return saved === undefined ? '0' : String(saved);
  }

  function drain(): Promise<number> {
    // A session's acknowledgement may still ask for a pass after close() (drainAfter): refused.
    if (!running) return Promise.reject(new DrainerStopped());
    if (pass !== undefined) {
      again = true;
      return pass;
    }
    pass = once().finally(() => {
      pass = undefined;
      if (again && running) {
        again = false;
        void drain().catch(() => undefined);
      }
    });
    return pass;
  }

  function schedule(): void {
    if (!running) return;
    timer = setTimeout(() => {
      drain()
        .catch(() => undefined)
        .finally(schedule);
    }, pollMs);
    timer.unref();
  }

  /** Opens the LISTEN connection; once it is in place, a lost one is replaced (the poll covers the gap). */
  async function listen(): Promise<void> {
    if (options.listen === false || !running) return;
    const l = new pg.Client({ ...options.upstreamPg, application_name: 'lockstep pg-proxy listener', connectionTimeoutMillis: DRAINER_WAIT_MS });
    let live = false;
    let replaced = false;
    l.on('notification', (m) => {
      // A write of one of this proxy's own sessions is fenced before its acknowledgement: no need to wake.
      if (running && m.payload === ctx.schema && !ctx.ownBackends.has(m.processId)) void drain().catch(() => undefined);
    });
    l.on('error', () => {
      if (listener === l) listener = undefined;
      // Before LISTEN took, the caller sees the failure. After, one replacement per connection: pg
      // reports a terminated backend twice (its FATAL message, then the socket's end), and a
      // replacement per report doubled the listeners at every loss.
      if (!live || replaced) return;
      replaced = true;
      void l.end().catch(() => undefined); // not queryable after an error: its socket goes too
      relisten();
    });
    try {
      await l.connect();
      await l.query(`LISTEN ${PROXY_CHANNEL}`);
    } catch (error) {
      void l.end().catch(() => undefined);
      throw error;
    }
    // Stopped while this one was connecting (a replacement): stop() could not see it, so it ends here.
    if (!running) {
      drop(l);
      return;
    }
    live = true;
    listener = l;
  }

  /** Another listen in 200 ms, and again while it fails (the server restarting, say). */
  function relisten(): void {
    if (!running) return;
    setTimeout(() => void listen().catch(relisten), 200).unref();
  }

  return {
    async start() {
      running = true;
      await drain();
      await listen();
      schedule();
    },
    drain,
    async stop() {
      running = false;
      if (timer !== undefined) clearTimeout(timer);
      // A pass in flight may finish (2 s at most; a prune could take 30): then its connection is dropped.
      if (pass !== undefined) {
        let waited: NodeJS.Timeout | undefined;
        await Promise.race([pass.catch(() => undefined), new Promise<void>((resolve) => (waited = setTimeout(resolve, DRAINER_WAIT_MS)))]);
        clearTimeout(waited);
      }
      if (listener !== undefined) drop(listener);
      if (client !== undefined) drop(client);
      listener = undefined;
      client = undefined;
    },
  };
}
