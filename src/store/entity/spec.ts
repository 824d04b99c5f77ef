// What an entity store needs to know about the user's table: its name, the primary-key column, the
// optimistic-lock (version) column, and the namespace its rows are cached under. Resolved once,
// validated, frozen. Identifiers are interpolated into SQL (they cannot be parameters), so only
// plain identifiers are accepted, and they are always used quoted.
import { InvalidOptionError, InvalidValueError, StoreWriteError } from '../../errors.js';
import { validateNamespace } from '../../keys.js';
import { isIdentifier } from '../postgres-schema.js';
import type { StoreAdapter } from '../../types.js';

export interface EntityTableOptions {
  /** The user's table. An identifier of [A-Za-z_][A-Za-z0-9_]*, at most 63 characters. */
  table: string;
  /** The single-column primary key. @default 'id' */
  idColumn?: string;
  /**
   * The optimistic-lock column: an integer that Lockstep's writes (and, with the triggers, every
   * other write) raise by at least one. `addVersionColumn` adds one to a table that has none.
   * @default 'version'
   */
  versionColumn?: string;
  /** The namespace rows are cached under: cache key `<entity>:<id>`. @default the table name */
  entity?: string;
}

export interface EntitySpec {
  readonly table: string;
  readonly idColumn: string;
  readonly versionColumn: string;
  readonly entity: string;
}

/** A StoreAdapter over one entity table. */
export interface EntityStore extends StoreAdapter {
  readonly spec: EntitySpec;
  /** It takes a changes payload (changesValue): sets those columns only, and returns the row it read back as the write's payload. */
  readonly updatesColumns: true;
  /** Batched read queries issued so far (concurrent misses share one). */
  readonly readBatches: number;
}

/** A row as the driver returns it, keyed by column name, without the version column. */
export type EntityRow = Record<string, unknown>;

export function identifier(value: unknown, option: string): string {
  if (!isIdentifier(value)) {
    throw new InvalidOptionError(`${option} must be an identifier of [A-Za-z_][A-Za-z0-9_]*, at most 63 characters (got ${JSON.stringify(value)})`);
  }
  return value;
}

export function resolveEntitySpec(options: EntityTableOptions): EntitySpec {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('entity table options must be an object');
  const table = identifier(options.table, 'table');
  const idColumn = identifier(options.idColumn ?? 'id', 'idColumn');
  const versionColumn = identifier(options.versionColumn ?? 'version', 'versionColumn');
  if (idColumn === versionColumn) throw new InvalidOptionError('idColumn and versionColumn must be different columns');
  let entity: string;
  try {
    entity = validateNamespace(options.entity ?? table);
  } catch (error) {
    throw new InvalidOptionError(`entity: ${(error as Error).message}`);
  }
  return Object.freeze({ table, idColumn, versionColumn, entity });
}

/**
 * The row a write payload names: a JSON object of every column of the table (the version column
 * left out: the store assigns it), whose id column, if present, is the key. Unknown columns are
 * refused with the list of known ones, so a typo never becomes SQL; missing ones are refused too,
 * since a database default would leave the cached row different from the stored one.
 */
function rowOfValue(spec: EntitySpec, columns: ReadonlySet<string>, key: string, row: unknown): EntityRow {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    throw new InvalidValueError(`an entity of ${spec.table} must be an object of its columns`, { key, namespace: spec.entity });
  }
  const out: EntityRow = {};
  for (const [column, value] of Object.entries(row)) {
    if (column === spec.versionColumn) continue;
    if (!columns.has(column)) {
      throw new InvalidValueError(`${spec.table} has no column ${JSON.stringify(column)} (columns: ${[...columns].join(', ')})`, {
        key,
        namespace: spec.entity,
      });
    }
    out[column] = value;
  }
  // The cache publishes this payload as the row: a column left out would be in the store but not in the cache.
  const missing = [...columns].filter((c) => !(c in out) && c !== spec.idColumn);
  if (missing.length > 0) {
    throw new InvalidValueError(`an entity of ${spec.table} must give every column; missing: ${missing.join(', ')}`, { key, namespace: spec.entity });
  }
  const id = out[spec.idColumn];
  if (id === undefined || id === null) out[spec.idColumn] = key;
  else if (String(id) !== key) {
    throw new InvalidValueError(`the entity's ${spec.idColumn} (${JSON.stringify(id)}) is not its key ${JSON.stringify(key)}`, {
      key,
      namespace: spec.entity,
    });
  }
  return out;
}

/** The tag of a changes payload: `["lockstep:changes", {column: value, …}]` (a row payload is an object, never an array). */
const CHANGES_TAG = 'lockstep:changes';

/**
 * The value to write for an update of some columns of an existing row (Repository.update): encoded
 * as JSON, it is a payload the entity store reads as "set these columns only" (writeOfPayload). The
 * store then never inserts, and publishes the row as it holds it after the write.
 */
export function changesValue(changes: EntityRow): EntityRow {
  return [CHANGES_TAG, changes] as unknown as EntityRow;
}

/** What a write payload asks for: the whole row (an insert or a whole-row update), or some columns of an existing row. */
export interface PayloadWrite {
  readonly row: EntityRow;
  /** Only the columns of `row` are set, on an existing row (never an insert). */
  readonly changesOnly: boolean;
}

/**
 * A write payload: a changes payload (changesValue) names some columns, each a column of the table
 * (unknown ones refused, the version column left out, an id column other than the key refused); any
 * other payload is a whole row (rowOfValue).
 */
export function writeOfPayload(spec: EntitySpec, columns: ReadonlySet<string>, key: string, payload: string): PayloadWrite {
  const parsed = JSON.parse(payload) as unknown;
  if (!Array.isArray(parsed) || parsed.length !== 2 || parsed[0] !== CHANGES_TAG) return { row: rowOfValue(spec, columns, key, parsed), changesOnly: false };
  const changes = parsed[1] as unknown;
  if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) {
    throw new InvalidValueError(`the changes of an entity of ${spec.table} must be an object of its columns`, { key, namespace: spec.entity });
  }
  const row: EntityRow = {};
  for (const [column, value] of Object.entries(changes)) {
    if (column === spec.versionColumn) continue;
    if (!columns.has(column)) {
      throw new InvalidValueError(`${spec.table} has no column ${JSON.stringify(column)} (columns: ${[...columns].join(', ')})`, { key, namespace: spec.entity });
    }
    if (column === spec.idColumn) {
      if (value === undefined || value === null) continue;
      if (String(value) !== key) {
        throw new InvalidValueError(`the entity's ${spec.idColumn} (${JSON.stringify(value)}) is not its key ${JSON.stringify(key)}`, { key, namespace: spec.entity });
      }
    }
    row[column] = value;
  }
  return { row, changesOnly: true };
}

/** The payload a stored row is read as: the same JSON object shape a write takes. */
export function payloadOfRow(spec: EntitySpec, row: EntityRow): string {
  const { [spec.versionColumn]: _version, ...columns } = row;
  return JSON.stringify(columns);
}

/** The id column must identify one row: rows sharing an id would be read, written and deleted as one. */
export function notUnique(spec: EntitySpec): InvalidOptionError {
  return new InvalidOptionError(
    `idColumn: ${spec.table}.${spec.idColumn} is not unique (neither the whole primary key nor alone in a unique index), or the table or column does not exist: rows sharing an id would be read, written and deleted as one`,
  );
}

/**
 * The row an id reaches must be keyed by that same id: the database may take another spelling of it
 * ('01' or '1.0' for the integer 1, an upper-case uuid) for the same row, whose cache key would then
 * keep the row as it was before the write. Throws when `found` (the row `key` reached) has another key.
 */
export function checkSpelling(spec: EntitySpec, key: string, found: { readonly key: string } | undefined): void {
  if (found === undefined || found.key === key) return;
  throw new InvalidValueError(
    `the id ${JSON.stringify(key)} is another spelling of the row ${JSON.stringify(found.key)} of ${spec.table}: write and delete it by that id`,
    { key, namespace: spec.entity },
  );
}

/**
 * The row a write reads back in its own transaction, which the cache publishes: none means the table
 * did not keep it (a BEFORE trigger of the application that returned NULL, a rule, a row-level
 * security policy that hides it), so the write is refused and its transaction rolled back rather
 * than the given values published for a row that no commit holds.
 */
export function storedRow<R extends { readonly key: string }>(spec: EntitySpec, key: string, found: R | undefined): R {
  if (found === undefined) {
    throw new StoreWriteError(`the row ${JSON.stringify(key)} was not kept by ${spec.table} (a trigger, rule or row-level security policy dropped or hid it): nothing was written`, {
      key,
      namespace: spec.entity,
    });
  }
  checkSpelling(spec, key, found);
  return found;
}

/** The entity store serves one namespace: its entity name. */
export function checkNamespace(spec: EntitySpec, namespace: string): void {
  if (namespace !== spec.entity) {
    throw new InvalidOptionError(`this entity store serves the namespace ${JSON.stringify(spec.entity)} only (got ${JSON.stringify(namespace)})`);
  }
}
