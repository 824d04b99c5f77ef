// A StoreAdapter over one of the user's own tables on PostgreSQL: namespace = the entity name, key =
// the id, payload = the row as a JSON object (the version column left out: the store assigns it).
// Each write is one READ COMMITTED transaction that bumps the row's version column in its UPDATE (or
// INSERTs above the id's tombstone), records a tombstone on delete, and writes repair-journal rows
// in the same transaction. Tombstones, the journal, its commit-order ids, LISTEN/NOTIFY and journal
// reads are the key/value store's (createPostgresStore on the same pool and schema). Rules and
// concurrency: postgres-entity-schema.ts.
import { toMs, type Duration } from '../../duration.js';
import { ClosedError, InvalidOptionError, isLockstepError, StoreOutcomeUnknownError } from '../../errors.js';
import type { StoreDeleteResult, StoreStats, StoredValue, StorePrecondition, StoreWriteOptions } from '../../types.js';
import { CLIENT_MARGIN_MS, isClientTimeout, readTimedOut } from '../client-timeouts.js';
import { checkoutWithin } from '../postgres-checkout.js';
import { createSessionSettler, markIf, newSessionMark, settling, type SessionMark } from '../postgres-settle.js';
import { listenToNewConnections } from '../postgres-connection-errors.js';
import { warningReceiver } from '../settle-loop.js';
import { createPostgresStore, outcomeUnknown, type PostgresClient, type PostgresPool } from '../postgres.js';
import { inTransaction } from '../postgres-transaction.js';
import { quoteIdentifier } from '../postgres-schema.js';
import { checkPrecondition, expectedOf, refuseChangesWithoutRow } from './precondition.js';
import { installEntityTriggers, isUniqueColumn, WRITING_SETTING, writingMark } from './postgres-entity-schema.js';
import { createPostgresTableOps, postgresTableColumns } from './postgres-table.js';
import { createReadBatcher } from './read-batcher.js';
import { checkNamespace, checkSpelling, identifier, notUnique, payloadOfRow, storedRow, resolveEntitySpec, writeOfPayload, type EntitySpec, type EntityStore, type EntityTableOptions } from './spec.js';
import type { PostgresTableOps } from './table-ops.js';

export interface PostgresEntityStoreOptions extends EntityTableOptions {
  /** A pg.Pool (close() leaves it open). */
  pool: PostgresPool;
  /** The schema of the table, and of Lockstep's tombstones and journal (created if missing). @default 'public' */
  schema?: string;
  /** Statement timeout of Lockstep's writes: shorter than the engine's lease. @default '2s' */
  statementTimeout?: Duration;
  /** Install the triggers that version and journal writes made outside Lockstep. Idempotent. @default true */
  bypassTriggers?: boolean;
  /** LISTEN for journal appends (as createPostgresStore's `notify`). @default true */
  notify?: boolean;
  /**
   * Receives warnings: polls of the settlement of writes given up on that failed (the database could
   * not be asked), at most one per minute, as createPostgresStore's `onWarning`. @default process.emitWarning
   */
  onWarning?: (message: string) => void;
}

export type PostgresEntityStore = EntityStore & {
  readonly schema: string;
  /** Its own counters: failed polls of the settlement of writes given up on (its own and its journal's). */
  stats(): StoreStats;
};

/** How long an open waits for a connection and for each catalog statement: the statement timeout plus the client's margin, as every later call. */
export function openWaitMs(statementTimeout: Duration | undefined): number {
  return toMs(statementTimeout ?? '2s', 'statementTimeout') + CLIENT_MARGIN_MS;
}

/** An entity store on PostgreSQL whose table statements are plain SQL. Checks the table and installs the triggers first. */
export async function createPostgresEntityStore(options: PostgresEntityStoreOptions): Promise<PostgresEntityStore> {
  const spec = resolveEntitySpec(options);
  const schema = identifier(options.schema ?? 'public', 'schema');
  const columns = await postgresTableColumns(options.pool, schema, spec, openWaitMs(options.statementTimeout));
  return createPostgresEntityStoreWith(options, spec, createPostgresTableOps(schema, spec, columns));
}

/** The same over table ops of your own (the Drizzle integration runs ORM statements on the transaction's client). */
export async function createPostgresEntityStoreWith(
  options: Omit<PostgresEntityStoreOptions, keyof EntityTableOptions>,
  spec: EntitySpec,
  table: PostgresTableOps<PostgresClient>,
): Promise<PostgresEntityStore> {
  const { pool } = options;
  if (typeof pool?.connect !== 'function') throw new InvalidOptionError('pool must be a pg.Pool');
  const warn = warningReceiver(options.onWarning);
  listenToNewConnections(pool);
  const schema = identifier(options.schema ?? 'public', 'schema');
  const statementTimeoutMs = toMs(options.statementTimeout ?? '2s', 'statementTimeout');
  const waitMs = openWaitMs(options.statementTimeout);
  if (!(await isUniqueColumn(pool, schema, spec.table, spec.idColumn, waitMs))) throw notUnique(spec);
  const kv = createPostgresStore({ pool, schema, statementTimeout: statementTimeoutMs, notify: options.notify ?? true, onWarning: warn });
  await kv.ready();
  // Re-created triggers (another release's) wait for the table's lock at most half the statement timeout, 1 s at most.
  if (options.bypassTriggers ?? true) await installEntityTriggers(pool, schema, spec, { lockTimeoutMs: Math.max(1, Math.min(1000, Math.floor(statementTimeoutMs / 2))), waitMs });
  const s = quoteIdentifier(schema);
  const { entity } = spec;
  const sql = {
    begin: (timeoutMs: number) => `BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL statement_timeout = ${timeoutMs}`,
    // The row's mark: the triggers stand aside for this row alone (a cascade into other rows is journaled).
    // And the transaction's advisory lock on a random key, by which a COMMIT given up on is settled.
    mark: `SELECT pg_catalog.set_config('${WRITING_SETTING}', ${writingMark('$1::text', '$2::text')}, true),
                  pg_catalog.pg_try_advisory_xact_lock($3::int8) AS marked`,
    lock: `SELECT ${s}.lockstep_entity_lock($1, $2)`,
    unbury: `DELETE FROM ${s}.lockstep_tombstones WHERE namespace = $1 AND key = $2 RETURNING version`,
    bury: `INSERT INTO ${s}.lockstep_tombstones AS ts (namespace, key, version, deleted_at) VALUES ($1, $2, $3, pg_catalog.now())
      ON CONFLICT (namespace, key) DO UPDATE SET version = GREATEST(ts.version + 1, excluded.version), deleted_at = excluded.deleted_at
      RETURNING ts.version`,
    append: `INSERT INTO ${s}.lockstep_journal (namespace, key, version, reason) VALUES ($1, $2, $3, 'repair')`,
  };

  // A checked-out connection has an 'error' listener (a dropped one must not crash the process) and
  // client-side deadlines: the server's statement timeout plus a margin, as the key/value store's.
  const checkout = (timeoutMs: number): Promise<PostgresClient> => checkoutWithin(pool, timeoutMs + CLIENT_MARGIN_MS);

  // A COMMIT the network held back would still land once delivered, with no confirmation left for
  // the engine: the transaction that sent it is ended from another connection, and the engine told
  // once it is gone (postgres-settle.ts).
  const settler = createSessionSettler((config) => withClient((client) => client.query(config)), undefined, undefined, warn);

  /** One transaction with Lockstep's mark set on the row `key`; a lost connection during COMMIT is an unknown outcome, settled later. */
  async function transaction<R>(deadlineMs: number, key: string, work: (client: PostgresClient) => Promise<R>): Promise<R> {
    const timeoutMs = Math.max(1, Math.floor(Math.min(deadlineMs, statementTimeoutMs)));
    const client = await checkout(timeoutMs);
    let marked: SessionMark | undefined;
    const marking = async () => {
      const mark = newSessionMark();
      marked = markIf(mark, (await client.query({ text: sql.mark, values: [entity, key, mark] })).rows[0]?.marked);
      return work(client);
    };
    try {
      // Lockstep's own refusals (a version conflict, an unknown column) are clean failures.
      return await inTransaction(client, [{ text: sql.begin(timeoutMs) }], marking, (error) => !isLockstepError(error) && outcomeUnknown(error));
    } catch (error) {
      throw error instanceof StoreOutcomeUnknownError ? settling(settler, error, marked) : error;
    }
  }

  const one = async (client: PostgresClient, text: string, values: unknown[]) => (await client.query({ text, values })).rows[0];

  async function write(client: PostgresClient, key: string, payload: string, precondition: StorePrecondition | undefined, journal: boolean) {
    // A whole row, or (an ORM update) only the columns it changes: the others are left as the table holds them.
    const { row, changesOnly } = writeOfPayload(spec, table.columns, key, payload);
    const expected = expectedOf(precondition);
    let version = await table.update(client, key, row, expected);
    // Some columns are no row to insert: no row to change (or a guard refused) is the precondition's
    // failure, at once (the id's lock below is for writes that may create it).
    if (version === undefined && changesOnly) refuseChangesWithoutRow(precondition, await table.versionOf(client, key), entity, key);
    if (version === undefined) {
      // No row: hold the id (creators and deleters of a missing row queue here), then look again.
      await one(client, sql.lock, [entity, key]);
      version = await table.update(client, key, row, expected);
    }
    if (version === undefined) {
      // Nothing updated: either no row (create it, unless the caller wanted one) or a guard refused.
      if (precondition !== undefined) checkPrecondition(precondition, await table.versionOf(client, key), entity, key);
      const tombstone = await one(client, sql.unbury, [entity, key]);
      version = Number(tombstone?.version ?? 0) + 1;
      await table.insert(client, row, version);
    }
    if (journal) await one(client, sql.append, [entity, key, version]);
    // The row as the table holds it now (its types, generated columns, the application's triggers): what the cache publishes.
    const stored = storedRow(spec, key, (await table.selectMany(client, [key]))[0]);
    return { version, payload: payloadOfRow(spec, stored.row) };
  }

  async function remove(client: PostgresClient, key: string, precondition: StorePrecondition | undefined, journal: boolean): Promise<StoreDeleteResult> {
    await one(client, sql.lock, [entity, key]);
    // Under the id's lock (and, for a live row, the row lock the check takes): no writer slips in between.
    if (precondition !== undefined) checkPrecondition(precondition, await table.versionOf(client, key, { lock: true }), entity, key);
    checkSpelling(spec, key, (await table.selectMany(client, [key]))[0]);
    const old = await table.remove(client, key);
    const version = Number((await one(client, sql.bury, [entity, key, (old ?? 0) + 1]))!.version);
    if (journal) await one(client, sql.append, [entity, key, version]);
    return { version, existed: old !== undefined };
  }

  let closed = false;
  const live = (namespace?: string) => {
    if (closed) throw new ClosedError(`the entity store of ${spec.table} was closed`);
    if (namespace !== undefined) checkNamespace(spec, namespace);
  };
  /** Reads: a client-side timeout is the engine's E_STORE_TIMEOUT. */
  const withClient = async <R>(work: (client: PostgresClient) => Promise<R>): Promise<R> => {
    let client: PostgresClient | undefined;
    try {
      client = await checkout(statementTimeoutMs);
      const result = await work(client);
      client.release();
      return result;
    } catch (error) {
      client?.release(outcomeUnknown(error) ? true : undefined);
      throw isClientTimeout(error) ? readTimedOut('PostgreSQL', error) : error;
    }
  };
  const batcher = createReadBatcher<StoredValue>((keys) =>
    withClient(async (client) => {
      const found = new Map<string, StoredValue>();
      for (const { key, version, row } of await table.selectMany(client, keys)) found.set(key, { version, payload: payloadOfRow(spec, row) });
      return found;
    }),
  );

  const store: PostgresEntityStore = {
    name: `postgres-entity(${spec.table})`,
    spec,
    updatesColumns: true,
    schema,
    get readBatches() {
      return batcher.batches;
    },
    async read(namespace, key) {
      live(namespace);
      return batcher.load(key);
    },
    async write(namespace, key, payload, options: StoreWriteOptions) {
      live(namespace);
      return transaction(options.deadlineMs, key, (client) => write(client, key, payload, options.precondition, options.journal));
    },
    async delete(namespace, key, options: StoreWriteOptions) {
      live(namespace);
      return transaction(options.deadlineMs, key, (client) => remove(client, key, options.precondition, options.journal));
    },
    async scan(namespace, afterKey, limit) {
      live(namespace);
      const rows = await withClient((client) => table.scan(client, afterKey, limit));
      return rows.map(({ key, version, row }) => ({ key, version, payload: payloadOfRow(spec, row) }));
    },
    appendJournal: (namespace, key, version, reason) => (live(), kv.appendJournal(namespace, key, version, reason)),
    readJournal: (afterId, limit) => (live(), kv.readJournal(afterId, limit)),
    journalHead: () => (live(), kv.journalHead()),
    pruneJournal: (before, throughId) => (live(), kv.pruneJournal(before, throughId)),
    journalId: () => (live(), kv.journalId()),
    incarnation: () => (live(), kv.incarnation()),
    ping: () => (live(), kv.ping()),
    stats: () => ({ settlePollErrors: settler.pollErrors + kv.stats().settlePollErrors }),
    async close() {
      closed = true;
      settler.stop();
      await kv.close();
    },
  };
  if (kv.onJournal !== undefined) store.onJournal = kv.onJournal.bind(kv);
  return store;
}

export type { EntitySpec };
