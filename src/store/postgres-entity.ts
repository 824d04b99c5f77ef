// lockstep/postgres-entity: entity stores over your own PostgreSQL tables, for createRepository.
export {
  createPostgresEntityStore,
  createPostgresEntityStoreWith,
  type PostgresEntityStore,
  type PostgresEntityStoreOptions,
} from './entity/postgres-entity-store.js';
export { addVersionColumn, installEntityTriggers, dropEntityTriggers } from './entity/postgres-entity-schema.js';
export { resolveEntitySpec, type EntitySpec, type EntityStore, type EntityTableOptions, type EntityRow } from './entity/spec.js';
