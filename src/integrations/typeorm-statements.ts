// The entity-table statements of the TypeORM integration: each built by TypeORM's query builders for
// the data source's driver and compiled with getQueryAndParameters(), run by compiled-table-ops.ts
// on the entity store's connection (TypeORM's own: its better-sqlite3 database or its pg pool).
// Values are set as entity properties, so TypeORM's own conversions and transformers write them.
import type { DataSource } from 'typeorm';
import type { StoredRow } from '../store/entity/table-ops.js';
import type { CompiledStatement, TableStatements } from './compiled-table-ops.js';
import { fromStoredRow, rawToStoredRow, type TypeormColumns } from './typeorm-columns.js';

const ALIAS = 'lockstep_row';

export function typeormStatements(dataSource: DataSource, c: TypeormColumns): TableStatements {
  const { driver } = dataSource;
  const target = c.metadata.target;
  const e = (name: string) => driver.escape(name);
  const id = e(c.primary.databaseName);
  const v = e(c.version.databaseName);
  const version = `coalesce(${v}, 0)`;
  const aliased = (name: string) => `${e(ALIAS)}.${e(name)}`;
  const returning = { update: driver.isReturningSqlSupported('update'), delete: driver.isReturningSqlSupported('delete') };
  const compile = (query: { getQueryAndParameters(): [string, unknown[]] }): CompiledStatement => {
    const [sql, parameters] = query.getQueryAndParameters();
    return { sql, parameters };
  };
  const select = () => {
    let query = dataSource.createQueryBuilder().select(`coalesce(${aliased(c.version.databaseName)}, 0)`, 'version').from(target, ALIAS);
    for (const column of c.columns) query = query.addSelect(aliased(column.databaseName), column.databaseName);
    return query;
  };
  /** The row's property values (TypeORM converts them back to the driver's on write). */
  const properties = (row: Record<string, unknown>) => fromStoredRow(dataSource, c, row);
  return {
    columns: new Set(c.columns.map((column) => column.databaseName)),
    update(key, row, expected) {
      // Only the columns the row names (an update of some columns): an entity class's own field initializers set the others on create().
      const entity = properties(row);
      const values: Record<string, unknown> = {};
      for (const column of c.columns) if (column !== c.primary && column.databaseName in row) values[column.propertyName] = column.getEntityValue(entity);
      let query = dataSource
        .createQueryBuilder()
        .update(target)
        .set({ ...values, [c.version.propertyName]: () => `${version} + 1` })
        .where(`${id} = :key`, { key })
        .updateEntity(false);
      if (expected !== undefined) query = query.andWhere(`${version} = :expected`, { expected });
      return compile(returning.update ? query.returning(`${version} AS ${e('version')}`) : query);
    },
    insert: (row, rowVersion) =>
      compile(dataSource.createQueryBuilder().insert().into(target).values({ ...properties(row), [c.version.propertyName]: rowVersion }).updateEntity(false)),
    remove(key) {
      const query = dataSource.createQueryBuilder().delete().from(target).where(`${id} = :key`, { key });
      return compile(returning.delete ? query.returning(`${version} AS ${e('version')}`) : query);
    },
    versionOf(key, lock) {
      const query = dataSource
        .createQueryBuilder()
        .select(`coalesce(${aliased(c.version.databaseName)}, 0)`, 'version')
        .from(target, ALIAS)
        .where(`${aliased(c.primary.databaseName)} = :key`, { key });
      return compile(lock ? query.setLock('pessimistic_write') : query);
    },
    selectMany: (keys) => compile(select().where(`${aliased(c.primary.databaseName)} IN (:...keys)`, { keys: [...keys] })),
    scan(afterKey, limit) {
      const query = select();
      const after = afterKey === undefined ? query : query.where(`${aliased(c.primary.databaseName)} > :afterKey`, { afterKey });
      return compile(after.orderBy(aliased(c.primary.databaseName), 'ASC').limit(limit));
    },
    toStored(raw): StoredRow {
      return { key: String(raw[c.primary.databaseName]), version: Number(raw.version ?? 0), row: rawToStoredRow(dataSource, c, raw) };
    },
  };
}
