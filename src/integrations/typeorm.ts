// TypeORM integration (lockstep/typeorm): for one entity, inserts, updates and deletes by primary key
// are written through per row with version fencing (a write lease, TypeORM's UPDATE with the version
// bump, publish), and reads by primary key are served from the cache (a miss runs TypeORM's select
// and fills under a read lease). The entity's @VersionColumn (EntitySchema: `version: true`) is the
// version. Statements are built by TypeORM's query builders and run on the data source's own
// connection (better-sqlite3 database, or pg pool) inside the entity store's transaction. Drivers:
// 'better-sqlite3' and 'postgres'. Importing the core never loads TypeORM.
import type { DataSource, EntityTarget, ObjectLiteral } from 'typeorm';
import type { Duration } from '../duration.js';
import { InvalidOptionError } from '../errors.js';
import type { WriteThroughOptions } from '../compose/write-through.js';
import { createRepository, type EntityId } from '../patterns/repository.js';
import type { PostgresPool } from '../store/postgres.js';
import type { EntityStore } from '../store/entity/spec.js';
import type { StoreAdapter } from '../types.js';
import { compiledPostgresOps, compiledSqliteOps } from './compiled-table-ops.js';
import { createOrmTable, type OrmTable, type UpdateOptions } from './orm-table.js';
import { completeTypeormInsert, resolveTypeormColumns, typeormMapper, withTypeormUpdateDefaults } from './typeorm-columns.js';
import { typeormStatements } from './typeorm-statements.js';

export interface TypeormTableOptions extends Omit<WriteThroughOptions, 'store' | 'namespace'> {
  /** The version property, when the entity has no @VersionColumn / `version: true` column. */
  version?: string;
  /** The namespace of the cache keys (`<entity>:<id>`). @default the table name */
  entity?: string;
  /** Install the triggers that version and journal writes made outside Lockstep (TypeORM's own save(), plain SQL). @default true */
  bypassTriggers?: boolean;
  /** SQLite busy timeout / PostgreSQL statement timeout of the writes: shorter than the lease. @default '2s' */
  timeout?: Duration;
  /** Wraps the entity store the engine calls (fault injection in tests). */
  wrapStore?: (store: EntityStore) => StoreAdapter;
}

export type TypeormTable<T> = OrmTable<T, Partial<T>, Partial<T>>;

/** Puts one entity of an initialized DataSource ('better-sqlite3' or 'postgres') behind Lockstep. */
export async function typeormTable<T extends ObjectLiteral>(dataSource: DataSource, target: EntityTarget<T>, options: TypeormTableOptions): Promise<TypeormTable<T>> {
  const { version, entity, bypassTriggers, timeout, wrapStore, ...engineOptions } = options;
  if (dataSource?.isInitialized !== true) throw new InvalidOptionError('dataSource must be an initialized TypeORM DataSource (await dataSource.initialize() first)');
  const columns = resolveTypeormColumns(dataSource, dataSource.getMetadata(target), version, entity);
  const statements = typeormStatements(dataSource, columns);
  const driver = dataSource.driver as unknown as { databaseConnection?: unknown; master?: unknown; schema?: string };
  let entities: EntityStore;
  if (dataSource.options.type === 'better-sqlite3') {
    const [{ default: Database }, { createSqliteEntityStoreWith }] = await Promise.all([import('better-sqlite3'), import('../store/entity/sqlite-entity-store.js')]);
    const database = driver.databaseConnection;
    if (!(database instanceof Database)) throw new InvalidOptionError('the better-sqlite3 DataSource has no open database');
    entities = createSqliteEntityStoreWith({ database, bypassTriggers, busyTimeout: timeout }, columns.spec, compiledSqliteOps(database, statements));
  } else if (dataSource.options.type === 'postgres') {
    const pool = driver.master as PostgresPool | undefined;
    if (typeof pool?.connect !== 'function') throw new InvalidOptionError('the postgres DataSource has no pool (replication set-ups are not supported)');
    const schema = columns.metadata.schema ?? driver.schema ?? 'public';
    const { createPostgresEntityStoreWith } = await import('../store/entity/postgres-entity-store.js');
    entities = await createPostgresEntityStoreWith({ pool, schema, bypassTriggers, statementTimeout: timeout }, columns.spec, compiledPostgresOps(statements));
  } else {
    throw new InvalidOptionError(`${columns.metadata.name}: only the 'better-sqlite3' and 'postgres' drivers are supported (got '${dataSource.options.type}')`);
  }

  const repository = createRepository<T>({ ...engineOptions, entities, store: wrapStore?.(entities), mapper: typeormMapper<T>(dataSource, columns) });
  const table = createOrmTable<T, Partial<T>, Partial<T>>({
    repository,
    entities,
    versionKey: columns.version.propertyName,
    idKey: columns.primary.propertyName,
    completeInsert: (values) => completeTypeormInsert(columns, values),
  });
  return { ...table, update: (id, changes, updateOptions) => table.update(id, withTypeormUpdateDefaults(columns, changes) as Partial<T>, updateOptions) };
}

export type { EntityId, UpdateOptions };
