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
import type { DeleteResult } from '../engine/api.js';
import { InvalidOptionError, VersionConflictError } from '../errors.js';
import { createRepository, type EntityId, type Repository, type SaveOptions } from '../patterns/repository.js';
import type { EntityStore } from '../store/entity/spec.js';
import type { StoreAdapter } from '../types.js';
import { completeInsert, drizzleMapper, resolveDrizzleColumns, withUpdateDefaults } from './drizzle-columns.js';
import { type WriteThroughOptions } from '../compose/write-through.js';

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

export interface UpdateOptions {
  /** Optimistic locking: the version the caller read; a mismatch throws VersionConflictError. */
  expectedVersion?: number;
}

export interface DrizzleTable<TTable extends Table> {
  readonly repository: Repository<InferSelectModel<TTable>>;
  readonly entities: EntityStore;
  /** INSERT a new row (VersionConflictError if the id exists); resolves with the row as stored. */
  insert(values: InferInsertModel<TTable>): Promise<InferSelectModel<TTable>>;
  /**
   * UPDATE the row's given columns; undefined when there is no row. The whole row is written (the
   * cache publishes it), guarded by the version it was read at: without `expectedVersion`, a
   * concurrent change is retried on the fresh row, a few times.
   */
  update(id: EntityId, changes: Partial<InferInsertModel<TTable>>, options?: UpdateOptions): Promise<InferSelectModel<TTable> | undefined>;
  delete(id: EntityId): Promise<DeleteResult>;
  findById(id: EntityId): Promise<InferSelectModel<TTable> | undefined>;
  findMany(ids: readonly EntityId[]): Promise<Array<InferSelectModel<TTable> | undefined>>;
  /** Closes the engine and the entity store (the Drizzle database and the cache stay open). */
  close(): Promise<void>;
}

/** Read-merge-write attempts of an update without an expected version before the conflict is the caller's. */
const UPDATE_ATTEMPTS = 5;

interface DrizzleDbLike {
  readonly $client: unknown;
}

/**
 * Puts one Drizzle table behind Lockstep. `db` is the Drizzle database the table lives in: a
 * drizzle-orm/better-sqlite3 database, or a drizzle-orm/node-postgres database over a pg.Pool.
 */
export async function drizzleTable<TTable extends Table>(db: DrizzleDbLike, table: TTable, options: DrizzleTableOptions): Promise<DrizzleTable<TTable>> {
  const { version, primaryKey, entity, bypassTriggers, timeout, wrapStore, ...engineOptions } = options;
  const columns = resolveDrizzleColumns(table, version, primaryKey, entity);
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
      drizzlePostgresTableOps(table, columns),
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
  const versionOf = (row: Row) => Number((row as Record<string, unknown>)[columns.versionKey]);
  const save = (row: Record<string, unknown>, saveOptions: SaveOptions) => repository.save(row as Row, saveOptions);

  return {
    repository,
    entities,
    insert: async (values) => save(completeInsert(columns, values as Record<string, unknown>), { expectedVersion: 0 }),
    async update(id, changes, updateOptions) {
      for (let attempt = 1; ; attempt++) {
        const current = await repository.findById(id);
        if (current === undefined) return undefined;
        const expectedVersion = updateOptions?.expectedVersion ?? versionOf(current);
        const { [columns.versionKey]: _v, ...base } = current as Record<string, unknown>;
        const merged = { ...base, ...withUpdateDefaults(columns, changes as Record<string, unknown>), [columns.primaryKeyName]: base[columns.primaryKeyName] };
        try {
          return await save(merged, { expectedVersion });
        } catch (error) {
          const retry = error instanceof VersionConflictError && updateOptions?.expectedVersion === undefined && attempt < UPDATE_ATTEMPTS;
          if (!retry) throw error;
        }
      }
    },
    delete: (id) => repository.delete(id),
    findById: (id) => repository.findById(id),
    findMany: (ids) => repository.findMany(ids),
    async close() {
      await repository.close();
      await entities.close();
    },
  };
}

export type { EntityId, SaveOptions };
