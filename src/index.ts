// The public entry. Adapters with heavy drivers have their own subpaths (lockstep/sqlite); the
// in-memory cache is light and exported here too.
export { createWriteThrough, type WriteThrough, type WriteThroughOptions } from './compose/write-through.js';
export { createMetrics, type LockstepMetrics, type MetricsSnapshot, type MetricsSource } from './metrics/recorder.js';
export { createJournalDrainer, type JournalDrainer, type JournalDrainerOptions, type RepairWatch } from './engine/journal-drainer.js';
export {
  writesThrough,
  deletesThrough,
  cachedRead,
  type InlineLockstep,
  type HasLockstep,
  type LocateLockstep,
  type WritesThroughOptions,
  type DeletesThroughOptions,
  type CachedReadOptions,
} from './patterns/decorators.js';
export { createMemoryCache, type MemoryCacheOptions } from './cache/memory.js';
export { classifyKey } from './engine/classify.js';
export { ChaosCache, type CacheOperation } from './chaos/chaos-cache.js';
export { ChaosStore, type StoreOperation } from './chaos/chaos-store.js';
export { createGate, FaultPlan, InjectedFault, type Fault, type Gate } from './chaos/faults.js';
export { jsonCodec, deepFreeze } from './codec.js';
export { systemClock, createManualClock, type ManualClock } from './clock.js';
export { validateKey, validateNamespace, cacheKeyOf } from './keys.js';
export type { Duration } from './duration.js';
export * from './errors.js';
export type * from './types.js';
export type * from './engine/api.js';
export type * from './engine/events.js';
export type { EngineOptions, FailurePolicy, JournalOptions, AlertOptions } from './options.js';
export { createRepository, rowMapper, type Repository, type RepositoryOptions, type EntityMapper, type EntityStoreLike, type EntityId, type SaveOptions } from './patterns/repository.js';
export type { EntitySpec, EntityStore, EntityTableOptions, EntityRow } from './store/entity/spec.js';
