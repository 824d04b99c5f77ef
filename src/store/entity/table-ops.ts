// The statements an entity store runs on the user's table, as a port: plain SQL for the repository
// (sqlite-table.ts, postgres-table.ts) or ORM statements for the Drizzle integration. The entity
// store around them owns transactions, versions, tombstones, the journal and the bypass mark.
import type { EntityRow } from './spec.js';

export interface StoredRow {
  readonly key: string;
  readonly version: number;
  /** The row's columns (the version column left out), as JSON-ready values. */
  readonly row: EntityRow;
}

/** Runs inside the entity store's transaction, on its connection (SQLite: synchronous). */
export interface SqliteTableOps {
  /** Columns a write may set (the version column left out). */
  readonly columns: ReadonlySet<string>;
  /** UPDATE … SET row, version = version + 1 WHERE id = key [AND version = expected] RETURNING version. */
  update(key: string, row: EntityRow, expected: number | undefined): number | undefined;
  /** INSERT the row with this version. */
  insert(row: EntityRow, version: number): void;
  /** DELETE … WHERE id = key RETURNING version: the removed row's version (0 when NULL), or undefined. */
  remove(key: string): number | undefined;
  /** The row's version, or undefined when there is no row. */
  versionOf(key: string): number | undefined;
  selectMany(keys: readonly string[]): StoredRow[];
  /** Rows in id order after `afterKey` (exclusive). */
  scan(afterKey: string | undefined, limit: number): StoredRow[];
}

/** The same for PostgreSQL: every call runs on the transaction's client `on`. */
export interface PostgresTableOps<Client> {
  readonly columns: ReadonlySet<string>;
  update(on: Client, key: string, row: EntityRow, expected: number | undefined): Promise<number | undefined>;
  insert(on: Client, row: EntityRow, version: number): Promise<void>;
  remove(on: Client, key: string): Promise<number | undefined>;
  /** With `lock`, the row stays locked until the transaction ends (a guarded delete checks, then deletes). */
  versionOf(on: Client, key: string, options?: { readonly lock: boolean }): Promise<number | undefined>;
  selectMany(on: Client, keys: readonly string[]): Promise<StoredRow[]>;
  scan(on: Client, afterKey: string | undefined, limit: number): Promise<StoredRow[]>;
}
