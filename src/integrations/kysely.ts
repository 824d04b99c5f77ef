// Kysely integration (lockstep/kysely): for one table, inserts, updates and deletes by primary key
// are written through per row with version fencing (a write lease, the Kysely statement with
// RETURNING the new version, publish), and reads by primary key are served from the cache (a miss
// runs the Kysely select and fills under a read lease). Statements are compiled by your Kysely
// instance and run on the connection its dialect uses (given here: Kysely does not expose it), inside
// the entity store's transaction. SQLite (SqliteDialect over better-sqlite3) and PostgreSQL
// (PostgresDialect over a pg.Pool). Importing the core never loads Kysely.
import type { Insertable, Kysely, Selectable, Updateable } from 'kysely';
import type BetterSqlite3 from 'better-sqlite3';
import type { Duration } from '../duration.js';
import { InvalidOptionError } from '../errors.js';
import type { WriteThroughOptions } from '../compose/write-through.js';
import { createRepository, type EntityId, type EntityMapper } from '../patterns/repository.js';
import type { PostgresClient, PostgresPool } from '../store/postgres.js';
import { identifier, resolveEntitySpec, type EntityRow, type EntitySpec, type EntityStore } from '../store/entity/spec.js';
import type { StoreAdapter } from '../types.js';
import { compiledPostgresOps, compiledSqliteOps, type TableStatements } from './compiled-table-ops.js';
import { kyselyStatements } from './kysely-statements.js';
import { NO_BINARY_COLUMNS, reviveBinaryColumns } from './binary-values.js';
import { createOrmTable, type OrmTable, type UpdateOptions } from './orm-table.js';

export interface KyselyTableOptions extends Omit<WriteThroughOptions, 'store' | 'namespace'> {
  /** SQLite: the better-sqlite3 Database your SqliteDialect runs on. */
  database?: BetterSqlite3.Database;
  /** PostgreSQL: the pg.Pool your PostgresDialect runs on. */
  pool?: PostgresPool;
  /** PostgreSQL schema of the table (and of Lockstep's journal and tombstones). @default 'public' */
  schema?: string;
  /** The single primary-key column. @default 'id' */
  idColumn?: string;
  /** The integer version column the integration raises on every write. @default 'version' */
  versionColumn?: string;
  /** The namespace of the cache keys (`<entity>:<id>`). @default the table name */
  entity?: string;
  /** Install the triggers that version and journal writes made outside Lockstep (plain SQL, other services). @default true */
  bypassTriggers?: boolean;
  /** SQLite busy timeout / PostgreSQL statement timeout of the writes: shorter than the lease. @default '2s' */
  timeout?: Duration;
  /** Wraps the entity store the engine calls (fault injection in tests). */
  wrapStore?: (store: EntityStore) => StoreAdapter;
}

export type KyselyTable<DB, TB extends keyof DB> = OrmTable<Selectable<DB[TB]>, Insertable<DB[TB]>, Updateable<DB[TB]>>;

/**
 * Puts one table of a Kysely database behind Lockstep. Rows are cached as JSON: a value that JSON
 * does not keep (a Date) is read back as JSON gives it (an ISO string), from the cache and from the
 * table alike, and an insert resolves with the row in that form too.
 */
export async function kyselyTable<DB, TB extends keyof DB & string>(db: Kysely<DB>, table: TB, options: KyselyTableOptions): Promise<KyselyTable<DB, TB>> {
  const { database, pool, schema: givenSchema, idColumn, versionColumn, entity, bypassTriggers, timeout, wrapStore, ...engineOptions } = options;
  if (typeof (db as { selectFrom?: unknown } | undefined)?.selectFrom !== 'function') throw new InvalidOptionError('db must be a Kysely instance');
  if ((database === undefined) === (pool === undefined)) {
    throw new InvalidOptionError('give the connection your Kysely dialect runs on: database (a better-sqlite3 Database) or pool (a pg.Pool)');
  }
  const spec = resolveEntitySpec({ table, idColumn, versionColumn, entity });
  const kysely = db as unknown as Kysely<any>;
  let entities: EntityStore;
  let isBinary: (column: string) => boolean;
  if (database !== undefined) {
    const [{ default: Database }, { createSqliteEntityStoreWith }, { tableColumns }] = await Promise.all([
      import('better-sqlite3'),
      import('../store/entity/sqlite-entity-store.js'),
      import('../store/entity/sqlite-entity-schema.js'),
    ]);
    if (!(database instanceof Database)) throw new InvalidOptionError('database must be a better-sqlite3 Database');
    // SQLite: any column may hold a BLOB (and no column type gives an object otherwise).
    isBinary = () => true;
    const statements = kyselyStatements(kysely, spec, checkColumns(spec, tableColumns(database, spec.table)), undefined, isBinary);
    await probe(spec, statements, (c) => database.prepare(c.sql).all(...c.parameters));
    entities = createSqliteEntityStoreWith({ database, bypassTriggers, busyTimeout: timeout }, spec, compiledSqliteOps(database, statements));
  } else {
    if (typeof pool?.connect !== 'function') throw new InvalidOptionError('pool must be a pg.Pool');
    const schema = identifier(givenSchema ?? 'public', 'schema');
    const [{ createPostgresEntityStoreWith, openWaitMs }, { postgresTableColumns }, { checkoutWithin }] = await Promise.all([
      import('../store/entity/postgres-entity-store.js'),
      import('../store/entity/postgres-table.js'),
      import('../store/postgres-checkout.js'),
    ]);
    const waitMs = openWaitMs(timeout);
    const columns = checkColumns(spec, await postgresTableColumns(pool, schema, spec, waitMs));
    const types = await columnTypes(pool, schema, spec.table, waitMs, checkoutWithin);
    const { default: pgLib } = await import('pg');
    const ofType = (wanted: readonly string[]) => {
      const names = new Set([...types].filter(([, type]) => wanted.includes(type)).map(([name]) => name));
      return (column: string) => names.has(column);
    };
    const binary = new Set([...types].filter(([, type]) => type === 'bytea').map(([name]) => name));
    isBinary = binary.size === 0 ? NO_BINARY_COLUMNS : (column: string) => binary.has(column);
    const statements = kyselyStatements(kysely, spec, columns, schema, isBinary, ofType(['json', 'jsonb']), textResults(pool, pgLib.types));
    await probe(spec, statements, (c) => checkoutWithin(pool, waitMs).then((client) => client.query({ text: c.sql, values: [...c.parameters] }).finally(() => client.release())));
    entities = await createPostgresEntityStoreWith({ pool, schema, bypassTriggers, statementTimeout: timeout }, spec, compiledPostgresOps(statements));
  }

  type Row = Selectable<DB[TB]>;
  const repository = createRepository<Row>({ ...engineOptions, entities, store: wrapStore?.(entities), mapper: jsonRowMapper<Row>(spec, isBinary) });
  return createOrmTable<Row, Insertable<DB[TB]>, Updateable<DB[TB]>>({
    repository,
    entities,
    versionKey: spec.versionColumn,
    idKey: spec.idColumn,
    completeInsert: (values) => values, // Kysely has no client-side defaults: the entity store names any missing column
  });
}

/** The table's columns without the version column; refuses a table without the id or version column. */
function checkColumns(spec: EntitySpec, all: readonly string[]): ReadonlySet<string> {
  if (all.length === 0) throw new InvalidOptionError(`table ${spec.table} does not exist`);
  for (const [option, column] of [['idColumn', spec.idColumn], ['versionColumn', spec.versionColumn]] as const) {
    if (!all.includes(column)) throw new InvalidOptionError(`${option}: table ${spec.table} has no column ${JSON.stringify(column)}`);
  }
  return new Set(all.filter((c) => c !== spec.versionColumn));
}

/** Runs one compiled read on the given connection: a Kysely of another dialect, or another database, fails here and not on the first write. */
async function probe(spec: EntitySpec, statements: TableStatements, run: (c: { sql: string; parameters: readonly unknown[] }) => unknown): Promise<void> {
  try {
    await run(statements.versionOf('0', false));
  } catch (error) {
    throw new InvalidOptionError(`the Kysely instance's SQL does not run on the given connection (is its dialect the connection's?): ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Column name → information_schema data_type (bytea Buffers come back from the JSON payload as objects; json values are sent as JSON text). */
async function columnTypes(
  pool: PostgresPool,
  schema: string,
  table: string,
  waitMs: number,
  checkoutWithin: (pool: PostgresPool, waitMs: number) => Promise<PostgresClient>,
): Promise<Map<string, string>> {
  const client = await checkoutWithin(pool, waitMs);
  try {
    const { rows } = await client.query({
      text: 'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
      values: [schema, table],
    });
    return new Map((rows as Array<{ column_name: string; data_type: string }>).map((r) => [r.column_name, r.data_type]));
  } finally {
    client.release();
  }
}

/**
 * Types pg parses into values whose JSON PostgreSQL reads back as another value: a `date` or a
 * `timestamp` (a Date at local time, whose ISO form in UTC shifts the day or the hour east of UTC), an
 * `interval` (an object), the geometric types (objects), and arrays of them. Their results are kept as
 * PostgreSQL prints them, which it reads back exactly; every other type is parsed as the pool does.
 */
const TEXT_RESULT_OIDS: ReadonlySet<number> = new Set([
  1082, 1182, // date, date[]
  1114, 1115, // timestamp, timestamp[]
  1186, 1187, // interval, interval[]
  600, 601, 602, 603, 604, 628, 718, // point, lseg, path, box, polygon, line, circle
  1017, 1018, 1019, 1020, 1027, 629, 719, // their arrays
]);

type PgTypes = { getTypeParser(oid: number, format?: string): unknown };

/**
 * Per checked-out connection (made once per checkout): those types as text, every other as the connection parses it (its
 * own getTypeParser, so parsers set on it with setTypeParser apply), or as the pool's options say.
 */
function textResults(pool: PostgresPool, defaults: PgTypes): (on: PostgresClient) => PgTypes {
  const fallback = (pool as { options?: { types?: PgTypes } }).options?.types ?? defaults;
  const asText = (value: unknown) => value;
  const made = new WeakMap<PostgresClient, PgTypes>();
  return (on) => {
    let types = made.get(on);
    if (types === undefined) {
      const own = typeof (on as Partial<PgTypes>).getTypeParser === 'function' ? (on as unknown as PgTypes) : fallback;
      types = { getTypeParser: (oid, format) => (TEXT_RESULT_OIDS.has(oid) && (format === undefined || format === 'text') ? asText : own.getTypeParser(oid, format)) };
      made.set(on, types);
    }
    return types;
  };
}

/**
 * Rows keyed by column name, kept in their JSON form so a row reads the same from the cache, the table,
 * and a write; binary values (Buffers, which JSON keeps as {type, data}) are Buffers again.
 */
function jsonRowMapper<T>(spec: EntitySpec, isBinary: (column: string) => boolean): EntityMapper<T> {
  return {
    idOf: (entity) => (entity as Record<string, unknown>)[spec.idColumn] as EntityId,
    toRow: (entity) => {
      const { [spec.versionColumn]: _version, ...row } = entity as Record<string, unknown>;
      return JSON.parse(JSON.stringify(row)) as EntityRow;
    },
    fromRow: (row, version) => ({ ...reviveBinaryColumns(row, isBinary), [spec.versionColumn]: version }) as T,
  };
}

export type { EntityId, UpdateOptions };
