// Repository<T>: save / findById / findMany / delete of the user's own entities, written through to
// their table and the cache with the full protocol. One write-through engine per repository (its
// namespace is the entity name, so cache keys are `<entity>:<id>`, and it has its own TTL) over an
// entity store (createSqliteEntityStore / createPostgresEntityStore), which keeps versions in the
// table's own optimistic-lock column.
import { InvalidOptionError, InvalidValueError, PreconditionFailedError, StoreWriteError, VersionConflictError } from '../errors.js';
import { cacheKeyOf } from '../keys.js';
import type { DeleteResult, WriteOptions } from '../engine/api.js';
import { changesValue, type EntityRow, type EntitySpec } from '../store/entity/spec.js';
import type { StoreAdapter } from '../types.js';
import { type WriteThrough, type WriteThroughOptions, createWriteThrough } from '../compose/write-through.js';

/** What a repository needs of an entity store: a StoreAdapter that knows its table. */
export interface EntityStoreLike extends StoreAdapter {
  readonly spec: EntitySpec;
  /**
   * Whether it takes a changes payload (Repository.update) and returns the row it read back, as
   * Lockstep's entity stores do. Without it, update() is refused before anything is written: a store
   * that wrote the payload as it is would leave it cached as the row.
   */
  readonly updatesColumns?: boolean;
}

export type EntityId = string | number;

/** Between the entities callers see and the rows the store keeps (the version column left out). */
export interface EntityMapper<T> {
  idOf(entity: T): EntityId;
  toRow(entity: T): EntityRow;
  fromRow(row: EntityRow, version: number): T;
}

export interface RepositoryOptions<T> extends Omit<WriteThroughOptions, 'store' | 'namespace'> {
  /** The entity store over the table. */
  entities: EntityStoreLike;
  /** What the engine calls instead of `entities` (a wrapper of it, e.g. a ChaosStore in tests). @default entities */
  store?: StoreAdapter;
  /** @default the row itself, with the version column set from the store */
  mapper?: EntityMapper<T>;
}

export interface SaveOptions {
  /**
   * Optimistic locking: the version the caller read. The UPDATE then also requires it (`AND version
   * = ?`) and a mismatch throws VersionConflictError with nothing written. 0 means "create only".
   */
  expectedVersion?: number;
}

export interface Repository<T> {
  /** The entity name: the namespace of the cache keys. */
  readonly entity: string;
  /** The engine underneath (inspect, drainJournal, counters, metrics). */
  readonly engine: WriteThrough<EntityRow>;
  /** The cache key of an id: `<entity>:<id>`. */
  keyOf(id: EntityId): string;
  /** INSERT or UPDATE by id; resolves with the entity as written, its version column set to the committed version. */
  save(entity: T, options?: SaveOptions): Promise<T>;
  /**
   * UPDATE only the given columns of the row `id` (the version bumped), never an insert; resolves with
   * the row as the table holds it after the write (read back in its transaction: the cache publishes
   * it), or undefined when there is no row. With `expectedVersion`, the UPDATE also requires it, and a
   * mismatch or a missing row throws VersionConflictError with nothing written.
   */
  update(id: EntityId, changes: Partial<T>, options?: SaveOptions): Promise<T | undefined>;
  findById(id: EntityId): Promise<T | undefined>;
  /** In the order of `ids`, undefined where missing. One cache lookup per id; the misses share one store query. */
  findMany(ids: readonly EntityId[]): Promise<Array<T | undefined>>;
  delete(id: EntityId): Promise<DeleteResult>;
  /** Closes the engine (the stores and cache stay open: they are the caller's). */
  close(): Promise<void>;
}

/** The default mapper: entities are the table's rows, keyed by column name. */
export function rowMapper<T extends Record<string, unknown>>(spec: EntitySpec): EntityMapper<T> {
  return {
    idOf: (entity) => entity[spec.idColumn] as EntityId,
    toRow: ({ [spec.versionColumn]: _version, ...row }) => row,
    fromRow: (row, version) => ({ ...row, [spec.versionColumn]: version }) as T,
  };
}

export function createRepository<T = Record<string, unknown>>(options: RepositoryOptions<T>): Repository<T> {
  const { entities, store, mapper: given, ...engineOptions } = options;
  const spec = entities.spec;
  const mapper = given ?? (rowMapper(spec) as unknown as EntityMapper<T>);
  const engine = createWriteThrough<EntityRow>({ ...engineOptions, store: store ?? entities, namespace: spec.entity });
  const keyOf = (id: EntityId) => String(id);

  return {
    entity: spec.entity,
    engine,
    keyOf: (id) => cacheKeyOf(spec.entity, keyOf(id)),
    async save(entity, saveOptions) {
      const row = mapper.toRow(entity);
      const key = keyOf(mapper.idOf(entity));
      try {
        const { version, stored } = await engine.write(key, row, conditionOf(saveOptions?.expectedVersion));
        return mapper.fromRow((stored as EntityRow | undefined) ?? row, version);
      } catch (error) {
        throw callersError(error, key, spec.entity, saveOptions?.expectedVersion);
      }
    },
    async update(id, changes, updateOptions) {
      const key = keyOf(id);
      if (options.entities.updatesColumns !== true) {
        throw new InvalidOptionError(`update() needs an entity store that updates some columns and reads the row back (${options.entities.name} does not); use save()`);
      }
      const expectedVersion = updateOptions?.expectedVersion;
      try {
        // Without an expected version, the row must exist (ifExists): an update of some columns never inserts.
        const condition = conditionOf(expectedVersion) ?? { ifExists: true };
        const { version, stored } = await engine.write(key, changesValue(mapper.toRow(changes as T)), condition);
        // The entity store reads the row back (the changes alone are not the row).
        if (stored === undefined) throw new StoreWriteError(`the store of ${spec.entity} did not read back the row it updated`, { key, namespace: spec.entity });
        return mapper.fromRow(stored as EntityRow, version);
      } catch (error) {
        if (error instanceof PreconditionFailedError && expectedVersion === undefined) return undefined;
        throw callersError(error, key, spec.entity, expectedVersion);
      }
    },
    async findById(id) {
      const entry = await engine.readEntry(keyOf(id));
      return entry.found ? mapper.fromRow(entry.value!, entry.version) : undefined;
    },
    async findMany(ids) {
      const entries = await Promise.all(ids.map((id) => engine.readEntry(keyOf(id))));
      return entries.map((entry) => (entry.found ? mapper.fromRow(entry.value!, entry.version) : undefined));
    },
    delete: (id) => engine.delete(keyOf(id)),
    close: () => engine.close(),
  };
}

/**
 * A failed save or update as the caller sees it: a failed precondition is a VersionConflictError; a
 * version conflict or an entity the table cannot take (unknown or missing columns), which the engine
 * reports as a StoreWriteError's cause, is thrown as such.
 */
function callersError(error: unknown, key: string, namespace: string, expectedVersion: number | undefined): unknown {
  if (error instanceof PreconditionFailedError) {
    const actual = error.currentVersion === 0 ? undefined : error.currentVersion;
    return new VersionConflictError(error.message, expectedVersion!, actual, { key, namespace, cause: error });
  }
  if (error instanceof StoreWriteError && (error.cause instanceof VersionConflictError || error.cause instanceof InvalidValueError)) return error.cause;
  return error;
}

/** Optimistic locking as the engine's write condition: 0 means create-only. */
function conditionOf(expectedVersion: number | undefined): WriteOptions | undefined {
  if (expectedVersion === undefined) return undefined;
  return expectedVersion === 0 ? { ifAbsent: true } : { ifVersion: expectedVersion };
}
