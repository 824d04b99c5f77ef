// The table API every ORM integration offers (Kysely, TypeORM): insert, update by id (a write of the
// columns it changes, guarded by the caller's version if given), delete, and reads by id,
// over a Repository whose entity store runs the ORM's statements.
import type { DeleteResult } from '../engine/api.js';
import { InvalidValueError } from '../errors.js';
import type { EntityId, Repository } from '../patterns/repository.js';
import type { EntityStore } from '../store/entity/spec.js';

export interface UpdateOptions {
  /** Optimistic locking: the version the caller read; a mismatch throws VersionConflictError. */
  expectedVersion?: number;
}

export interface OrmTable<Row, Insert = Partial<Row>, Changes = Partial<Row>> {
  readonly repository: Repository<Row>;
  readonly entities: EntityStore;
  /** INSERT a new row (VersionConflictError if the id exists); resolves with the row as stored. */
  insert(values: Insert): Promise<Row>;
  /**
   * UPDATE the row's given columns (only those, and the version); undefined when there is no row.
   * Resolves with the row as the table holds it after the write, which the cache publishes. Guarded by
   * the version it was read at: without `expectedVersion`, a concurrent change is retried on the fresh
   * row, a few times.
   */
  update(id: EntityId, changes: Changes, options?: UpdateOptions): Promise<Row | undefined>;
  delete(id: EntityId): Promise<DeleteResult>;
  findById(id: EntityId): Promise<Row | undefined>;
  findMany(ids: readonly EntityId[]): Promise<Array<Row | undefined>>;
  /** Closes the engine and the entity store (the ORM's connection and the cache stay open). */
  close(): Promise<void>;
}


export interface OrmTableParts<Row> {
  readonly repository: Repository<Row>;
  readonly entities: EntityStore;
  /** The property that holds the version, and the one that holds the id. */
  readonly versionKey: string;
  readonly idKey: string;
  /** The full row of an insert (the ORM's client-side defaults applied); throws on a missing column. */
  completeInsert(values: Record<string, unknown>): Record<string, unknown>;
}

export function createOrmTable<Row, Insert, Changes>(parts: OrmTableParts<Row>): OrmTable<Row, Insert, Changes> {
  const { repository, entities, versionKey, idKey } = parts;
  const save = (row: Record<string, unknown>, expectedVersion: number) => repository.save(row as Row, { expectedVersion });
  return {
    repository,
    entities,
    insert: async (values) => save(parts.completeInsert(values as Record<string, unknown>), 0),
    async update(id, changes, options) {
      // The id is the row's cache key: an update cannot move the row to another one (it used to be dropped silently).
      const newId = (changes as Record<string, unknown>)[idKey];
      if (newId !== undefined && String(newId) !== String(id)) {
        throw new InvalidValueError(
          `update(${String(id)}, …) cannot change ${idKey} to ${String(newId)}: insert the row under the new id and delete the old one`,
          { key: String(id) },
        );
      }
      // Only the columns given are written (the others stay as the table holds them: a value read back
      // in another form, a jsonb null or string, is never written back); the row cached is the one the
      // table holds after the write, read back in its transaction. Without the caller's version there
      // is nothing to guard: the UPDATE needs the row to exist, no more (guarded by the version read
      // first, concurrent updates of other columns conflicted and ran out of retries).
      const given = Object.fromEntries(Object.entries(changes as Record<string, unknown>).filter(([key, value]) => value !== undefined && key !== versionKey));
      return repository.update(id, given as Partial<Row>, options?.expectedVersion === undefined ? undefined : { expectedVersion: options.expectedVersion });
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
