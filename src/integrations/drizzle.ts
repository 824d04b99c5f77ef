// Drizzle ORM integration (lockstep/drizzle): for a configured table, inserts, updates and deletes by
// primary key are written through per row with version fencing (a write lease, the ORM statement
// with RETURNING the new version, publish), and reads by primary key are served from the cache (a
// miss runs the ORM select and fills under a read lease). It is a Repository whose entity store runs
// Drizzle statements, on SQLite (drizzle-orm/better-sqlite3) or PostgreSQL (drizzle-orm/node-postgres).
// Importing the core never loads Drizzle; importing this loads only the dialect in use.
import { getTableName, is, type Column, type InferInsertModel, type InferSelectModel, type Table } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import { SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { Duration } from '../duration.js';
import { InvalidOptionError } from '../errors.js';
import type { WriteThroughOptions } from '../compose/write-through.js';
import { createRepository, type EntityId, type SaveOptions } from '../patterns/repository.js';
import type { EntityStore } from '../store/entity/spec.js';
import type { StoreAdapter } from '../types.js';
import { columnNamerOf, completeInsert, drizzleMapper, resolveDrizzleColumns, withUpdateDefaults } from './drizzle-columns.js';
import { createOrmTable, type OrmTable, type UpdateOptions } from './orm-table.js';

export interface DrizzleTableOptions extends Omit<WriteThroughOptions, 'store' | 'namespace'> {
  /** The table's version column (an integer the integration raises on every write). */
  version: Column;
  /** The single primary-key column. @default the table's primary-key column */
  primaryKey?: Column;
  /** The namespace of the cache keys (`<entity>:<id>`). @default the table name */
  entity?: string;
  /** Install the triggers that version and journal writes made outside Lockstep (plain SQL, other services). @default true */
  bypassTriggers?: boolean;
  /** SQLite busy timeout / PostgreSQL statement timeout of the writes: shorter than the lease. @default '2s' */
  timeout?: Duration;
  /** Wraps the entity store the engine calls (fault injection in tests). */
  wrapStore?: (store: EntityStore) => StoreAdapter;
}

export type DrizzleTable<TTable extends Table> = OrmTable<InferSelectModel<TTable>, InferInsertModel<TTable>, Partial<InferInsertModel<TTable>>>;

interface DrizzleDbLike {
  readonly $client: unknown;
}

/**
 * Puts one Drizzle table behind Lockstep. `db` is the Drizzle database the table lives in: a
 * drizzle-orm/better-sqlite3 database, or a drizzle-orm/node-postgres database over a pg.Pool.
 */
export async function drizzleTable<TTable extends Table>(db: DrizzleDbLike, table: TTable, options: DrizzleTableOptions): Promise<DrizzleTable<TTable>> {
  const { version, primaryKey, entity, bypassTriggers, timeout, wrapStore, ...engineOptions } = options;
  const columns = resolveDrizzleColumns(table, version, primaryKey, entity, columnNamerOf(db));
  const client = (db as { $client?: unknown } | undefined)?.$client;
  let entities: EntityStore;
  if (is(table, SQLiteTable)) {
    const [{ createSqliteEntityStoreWith }, { drizzleSqliteTableOps }, { default: Database }] = await Promise.all([
      import('../store/entity/sqlite-entity-store.js'),
      import('./drizzle-sqlite.js'),
      import('better-sqlite3'),
    ]);
    if (!(client instanceof Database)) throw new InvalidOptionError('db must be a drizzle-orm/better-sqlite3 database');
    const ops = drizzleSqliteTableOps(db as never, table, columns);
    entities = createSqliteEntityStoreWith({ database: client, bypassTriggers, busyTimeout: timeout }, columns.spec, ops);
  } else if (is(table, PgTable)) {
    const pool = client as { connect?: unknown; totalCount?: unknown } | undefined;
    if (typeof pool?.connect !== 'function' || typeof pool.totalCount !== 'number') {
      throw new InvalidOptionError('db must be a drizzle-orm/node-postgres database over a pg.Pool');
    }
    const [{ createPostgresEntityStoreWith }, { drizzlePostgresTableOps }, { getTableConfig }] = await Promise.all([
      import('../store/entity/postgres-entity-store.js'),
      import('./drizzle-postgres.js'),
      import('drizzle-orm/pg-core'),
    ]);
    const schema = getTableConfig(table).schema ?? 'public';
    entities = await createPostgresEntityStoreWith(
      { pool: pool as never, schema, bypassTriggers, statementTimeout: timeout },
      columns.spec,
      drizzlePostgresTableOps(table, columns, (db as { dialect?: { casing?: unknown } }).dialect?.casing),
    );
  } else {
    throw new InvalidOptionError(`${getTableName(table)}: only SQLite and PostgreSQL tables are supported`);
  }

  type Row = InferSelectModel<TTable>;
  const repository = createRepository<Row>({
    ...engineOptions,
    entities,
    store: wrapStore?.(entities),
    mapper: drizzleMapper<Row>(columns),
  });
  const ormTable = createOrmTable<Row, InferInsertModel<TTable>, Partial<InferInsertModel<TTable>>>({
    repository,
    entities,
    versionKey: columns.versionKey,
    idKey: columns.primaryKeyName,
    completeInsert: (values) => completeInsert(columns, values),
  });
  return {
    ...ormTable,
    update: (id, changes, updateOptions) => ormTable.update(id, withUpdateDefaults(columns, changes as Record<string, unknown>) as typeof changes, updateOptions),
  };
}

export type { EntityId, SaveOptions, UpdateOptions };
