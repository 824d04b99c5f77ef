// How a TypeORM entity maps onto an entity store: the entity spec (database column names), the mapper
// between entities (property names, JS values, value transformers) and the stored row (column names,
// the driver's values, JSON-ready) through TypeORM's own driver conversions, and the values TypeORM
// would fill in itself on insert and update (create/update dates, literal defaults, generated uuids).
import { randomUUID } from 'node:crypto';
import type { DataSource, EntityMetadata } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import { InvalidOptionError, InvalidValueError } from '../errors.js';
import type { EntityId, EntityMapper } from '../patterns/repository.js';
import { resolveEntitySpec, type EntityRow, type EntitySpec } from '../store/entity/spec.js';
import { reviveBuffer } from './binary-values.js';

export interface TypeormColumns {
  readonly spec: EntitySpec;
  readonly metadata: EntityMetadata;
  /** Every column but the version column. */
  readonly columns: readonly ColumnMetadata[];
  readonly primary: ColumnMetadata;
  readonly version: ColumnMetadata;
}

export function resolveTypeormColumns(dataSource: DataSource, metadata: EntityMetadata, versionProperty: string | undefined, entity: string | undefined): TypeormColumns {
  const name = metadata.name;
  const version = versionProperty === undefined ? metadata.versionColumn : metadata.findColumnWithPropertyName(versionProperty);
  if (version === undefined) {
    throw new InvalidOptionError(`${name} needs a version column: mark one with version: true (EntitySchema) or @VersionColumn(), or pass version: '<property>'`);
  }
  if (metadata.primaryColumns.length !== 1) throw new InvalidOptionError(`${name} needs exactly one primary-key column (it has ${metadata.primaryColumns.length})`);
  const unsupported = metadata.columns.find((c) => c.relationMetadata !== undefined || c.embeddedMetadata !== undefined);
  if (unsupported !== undefined) {
    throw new InvalidOptionError(`${name}.${unsupported.propertyPath}: relation and embedded columns are not supported; cache the entity without them`);
  }
  const columns = metadata.columns.filter((c) => c !== version);
  const spec = resolveEntitySpec({ table: metadata.tableName, idColumn: metadata.primaryColumns[0]!.databaseName, versionColumn: version.databaseName, entity });
  void dataSource;
  return { spec, metadata, columns, primary: metadata.primaryColumns[0]!, version };
}

/** PostgreSQL json and jsonb: TypeORM's persistent form is the JSON text, which it would encode once more when given back. */
const JSON_TYPES: ReadonlySet<unknown> = new Set(['json', 'jsonb']);

/**
 * A property value → its stored form: TypeORM's persistence conversion (transformers included), except
 * that a json/jsonb value is kept as the JSON value the driver reads (not the text TypeORM sends): the
 * stored row is hydrated and written again by update, which would encode that text as a JSON string.
 */
export function storedValue(dataSource: DataSource, column: ColumnMetadata, value: unknown): unknown {
  const persisted = dataSource.driver.preparePersistentValue(value, column) ?? null;
  if (JSON_TYPES.has(column.type) && typeof persisted === 'string') return JSON.parse(persisted) as unknown;
  // A value pg parsed into an object that says how PostgreSQL spells it (an interval): that spelling, not its JSON ({"days":1} reads back as one second).
  const toPostgres = (persisted as { toPostgres?: unknown } | null)?.toPostgres;
  if (typeof persisted === 'object' && persisted !== null && !Buffer.isBuffer(persisted) && typeof toPostgres === 'function') return toPostgres.call(persisted) as unknown;
  return persisted;
}

/** Entity → stored row: TypeORM's persistence conversion per column (transformers included), then JSON-ready. */
export function toStoredRow(dataSource: DataSource, c: TypeormColumns, entity: Record<string, unknown>): EntityRow {
  const row: EntityRow = {};
  for (const column of c.columns) {
    const value = column.getEntityValue(entity);
    if (value === undefined) continue;
    row[column.databaseName] = storedValue(dataSource, column, value);
  }
  return JSON.parse(JSON.stringify(row)) as EntityRow;
}

/**
 * A row as the driver returned it (a select) → the stored row: each value hydrated as TypeORM would, then
 * in its stored form, so a row read from the table and a row written are cached alike (a PostgreSQL
 * `date`, which pg parses as a local-midnight Date, is cached as the YYYY-MM-DD TypeORM hydrates).
 */
export function rawToStoredRow(dataSource: DataSource, c: TypeormColumns, raw: Record<string, unknown>): EntityRow {
  const row: EntityRow = {};
  for (const column of c.columns) {
    if (!(column.databaseName in raw)) continue;
    const value = raw[column.databaseName];
    row[column.databaseName] = value === null || value === undefined ? null : storedValue(dataSource, column, dataSource.driver.prepareHydratedValue(value, column));
  }
  return JSON.parse(JSON.stringify(row)) as EntityRow;
}

/** Stored row → entity (an instance of the entity's class, or a plain object for an EntitySchema), without the version. */
export function fromStoredRow(dataSource: DataSource, c: TypeormColumns, row: EntityRow): Record<string, unknown> {
  const entity = c.metadata.create() as Record<string, unknown>;
  for (const column of c.columns) {
    if (!(column.databaseName in row)) continue;
    // A Buffer (bytea, blob) comes back from the JSON payload as {type, data}: a Buffer again (a json column's value is the user's).
    const stored = row[column.databaseName];
    const raw = JSON_TYPES.has(column.type) ? stored : reviveBuffer(stored);
    column.setEntityValue(entity, raw === null || raw === undefined ? null : dataSource.driver.prepareHydratedValue(raw, column));
  }
  return entity;
}

export function typeormMapper<T>(dataSource: DataSource, c: TypeormColumns): EntityMapper<T> {
  return {
    idOf: (entity) => c.primary.getEntityValue(entity as Record<string, unknown>) as EntityId,
    toRow: (entity) => toStoredRow(dataSource, c, entity as Record<string, unknown>),
    fromRow: (row, version) => {
      const entity = fromStoredRow(dataSource, c, row);
      c.version.setEntityValue(entity, version);
      return entity as T;
    },
  };
}

/**
 * An insert's full entity: what was given, then what TypeORM fills in itself (create/update dates,
 * generated uuids, literal defaults), then null for nullable columns. A default only the database
 * computes (an SQL expression, an auto-increment id) must be given: the cached row has to be the stored row.
 */
export function completeTypeormInsert(c: TypeormColumns, given: Record<string, unknown>): Record<string, unknown> {
  const entity: Record<string, unknown> = { ...given };
  const now = new Date();
  for (const column of c.columns) {
    let value = column.getEntityValue(given);
    if (value === undefined && (column.isCreateDate || column.isUpdateDate)) value = now;
    if (value === undefined && column.isGenerated && column.generationStrategy === 'uuid') value = randomUUID();
    if (value === undefined && column.default !== undefined && typeof column.default !== 'function') value = column.default;
    if (value === undefined && column.isNullable) value = null;
    if (value === undefined) {
      const why = column.isGenerated ? 'a value the database generates' : 'no value and no default Lockstep can compute before the write';
      throw new InvalidValueError(`${c.spec.table}.${column.databaseName} has ${why}: give it explicitly`, { namespace: c.spec.entity });
    }
    column.setEntityValue(entity, value);
  }
  return entity;
}

/** An update's changes, plus a fresh update date unless the changes set it (as TypeORM's save does). */
export function withTypeormUpdateDefaults(c: TypeormColumns, changes: Record<string, unknown>): Record<string, unknown> {
  const out = { ...changes };
  for (const column of c.columns) if (column.isUpdateDate && column.getEntityValue(out) === undefined) column.setEntityValue(out, new Date());
  return out;
}
