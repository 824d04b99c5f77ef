// lockstep/sqlite-entity: entity stores over your own SQLite tables, for createRepository.
export { createSqliteEntityStore, createSqliteEntityStoreWith, type SqliteEntityStoreOptions } from './entity/sqlite-entity-store.js';
export { addVersionColumn, installEntityTriggers, dropEntityTriggers, sqliteEntityTriggersSql } from './entity/sqlite-entity-schema.js';
export { otherUniqueKeys, type UniqueKey } from './entity/sqlite-replaced-rows.js';
export { resolveEntitySpec, type EntitySpec, type EntityStore, type EntityTableOptions, type EntityRow } from './entity/spec.js';
