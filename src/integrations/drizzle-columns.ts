// How a Drizzle table maps onto an entity store: the entity spec (database column names), the
// mapper between Drizzle's values (TS keys, JS values such as Date) and the stored row (column names,
// driver values, JSON-ready), and the completion of an insert's row with Drizzle's own defaults.
import { getTableColumns, getTableName, is, SQL, type Column, type Table } from 'drizzle-orm';
import { InvalidOptionError, InvalidValueError } from '../errors.js';
import type { EntityMapper } from '../patterns/repository.js';
import { resolveEntitySpec, type EntityRow, type EntitySpec } from '../store/entity/spec.js';
import { reviveBuffer } from './binary-values.js';

export interface DrizzleColumns {
  readonly spec: EntitySpec;
  /** TS key → column, the version column left out. */
  readonly byKey: ReadonlyMap<string, Column>;
  /** Database column name → [TS key, column], the version column left out. */
  readonly byName: ReadonlyMap<string, readonly [string, Column]>;
  readonly primaryKey: Column;
  readonly primaryKeyName: string;
  readonly version: Column;
  readonly versionKey: string;
  /** Column → its name in the database (the Drizzle database's `casing` applied to columns named by their keys). */
  readonly nameOf: (column: Column) => string;
}

/** How a Drizzle database names a column: its `casing` (snake_case, camelCase) renames the columns declared without a name. */
export type ColumnNamer = (column: Column) => string;

/** The column namer of a Drizzle database (its dialect's casing), or the declared name when it has none. */
export function columnNamerOf(db: unknown): ColumnNamer {
  const casing = (db as { dialect?: { casing?: { getColumnCasing?: unknown } } } | undefined)?.dialect?.casing;
  if (typeof casing?.getColumnCasing !== 'function') return (column) => column.name;
  const getColumnCasing = casing.getColumnCasing as (column: Column) => string;
  return (column) => getColumnCasing.call(casing, column);
}

export function resolveDrizzleColumns(
  table: Table,
  version: Column,
  primaryKey: Column | undefined,
  entity: string | undefined,
  nameOf: ColumnNamer = (column) => column.name,
): DrizzleColumns {
  const columns = getTableColumns(table) as Record<string, Column>;
  const keyOf = (column: Column) => Object.entries(columns).find(([, c]) => c === column)?.[0];
  const versionKey = keyOf(version);
  if (versionKey === undefined) throw new InvalidOptionError(`version must be a column of ${getTableName(table)}`);
  const primaries = Object.values(columns).filter((c) => c.primary);
  const pk = primaryKey ?? (primaries.length === 1 ? primaries[0] : undefined);
  if (pk === undefined || keyOf(pk) === undefined) {
    throw new InvalidOptionError(`${getTableName(table)} needs one primary-key column (pass primaryKey: a column of the table)`);
  }
  const byKey = new Map<string, Column>();
  const byName = new Map<string, readonly [string, Column]>();
  for (const [key, column] of Object.entries(columns)) {
    if (column === version) continue;
    byKey.set(key, column);
    byName.set(nameOf(column), [key, column]);
  }
  const spec = resolveEntitySpec({ table: getTableName(table), idColumn: nameOf(pk), versionColumn: nameOf(version), entity });
  return { spec, byKey, byName, primaryKey: pk, primaryKeyName: keyOf(pk)!, version, versionKey, nameOf };
}

/** A column the database computes (`generatedAlwaysAs`): read and cached as stored, never written. */
export const isGenerated = (column: Column): boolean => column.generated !== undefined;

/** The columns a write sets (database names): the version and generated columns left out. */
export const writableNames = (columns: DrizzleColumns): Set<string> =>
  new Set([...columns.byName].filter(([, [, column]]) => !isGenerated(column)).map(([name]) => name));

/**
 * Drizzle values (TS keys) → the stored row (column names, driver values). A row to write leaves
 * generated columns out: the database computes them, and the write reads the row back.
 */
export function toDriverRow(columns: DrizzleColumns, values: Record<string, unknown>, toWrite = false): EntityRow {
  const row: EntityRow = {};
  for (const [key, column] of columns.byKey) {
    if (!(key in values) || (toWrite && isGenerated(column))) continue;
    const value = values[key];
    row[columns.nameOf(column)] = value === null || value === undefined ? null : driverValue(column, value);
  }
  return row;
}

/**
 * A value as the driver returns it, so that the column's mapFromDriverValue reads it back. PostgreSQL
 * `timestamp` without time zone in mode 'date' is the one column whose mapToDriverValue (an ISO
 * string ending in Z) its mapFromDriverValue cannot read (it appends +0000: an Invalid Date): it is
 * kept as PostgreSQL returns it, `YYYY-MM-DD HH:MM:SS.sss` in UTC.
 */
function driverValue(column: Column, value: unknown): unknown {
  const driver = column.mapToDriverValue(value);
  if (column.columnType === 'PgTimestamp' && (column as { withTimezone?: boolean }).withTimezone !== true && typeof driver === 'string' && driver.endsWith('Z')) {
    return driver.slice(0, -1).replace('T', ' ');
  }
  return driver;
}

/** The stored row → Drizzle values (TS keys), without the version. */
export function fromDriverRow(columns: DrizzleColumns, row: EntityRow): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(row)) {
    const found = columns.byName.get(name);
    if (found === undefined) continue;
    // A binary driver value (a Buffer) comes back from the JSON payload as {type, data}: a Buffer again, for the column's mapper.
    values[found[0]] = value === null || value === undefined ? null : found[1].mapFromDriverValue(reviveBuffer(value));
  }
  return values;
}

export function drizzleMapper<T>(columns: DrizzleColumns): EntityMapper<T> {
  return {
    idOf: (entity) => (entity as Record<string, unknown>)[columns.primaryKeyName] as string | number,
    toRow: (entity) => toDriverRow(columns, entity as Record<string, unknown>, true),
    fromRow: (row, version) => ({ ...fromDriverRow(columns, row), [columns.versionKey]: version }) as T,
  };
}

/**
 * An insert's full row: what was given, then Drizzle's client-side defaults ($defaultFn, literal
 * .default()), then null for nullable columns. A default only the database computes (an SQL
 * expression) must be given: the cached row has to be the stored row.
 */
export function completeInsert(columns: DrizzleColumns, given: Record<string, unknown>): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const [key, column] of columns.byKey) {
    if (isGenerated(column)) continue;
    let value = given[key];
    if (value === undefined && column.defaultFn !== undefined) value = column.defaultFn();
    if (value === undefined && column.default !== undefined) value = column.default;
    if (value === undefined && !column.notNull) value = null;
    if (value === undefined || is(value, SQL)) {
      throw new InvalidValueError(
        `${columns.spec.table}.${columns.nameOf(column)} has no value and no default Lockstep can compute before the write: give it explicitly`,
        { namespace: columns.spec.entity },
      );
    }
    row[key] = value;
  }
  return row;
}

/** An update's changes, plus $onUpdateFn values for columns it does not set. */
export function withUpdateDefaults(columns: DrizzleColumns, changes: Record<string, unknown>): Record<string, unknown> {
  const out = { ...changes };
  for (const [key, column] of columns.byKey) {
    if (out[key] === undefined && column.onUpdateFn !== undefined) {
      const value = column.onUpdateFn();
      if (!is(value, SQL)) out[key] = value;
    }
  }
  return out;
}
