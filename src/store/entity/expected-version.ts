// The version a caller expects an entity to have (optimistic locking), carried from the repository
// to the entity store's write without changing the engine or the StoreAdapter port: the engine
// calls store.write inside the async context of repository.save, which AsyncLocalStorage follows.
import { AsyncLocalStorage } from 'node:async_hooks';

const expected = new AsyncLocalStorage<number>();

/** Runs `work` with `version` as the expected version of the entity it writes. */
export function withExpectedVersion<R>(version: number | undefined, work: () => R): R {
  return version === undefined ? work() : expected.run(version, work);
}

/** The expected version set by the caller of this write, if any. 0 means "must not exist". */
export function expectedVersion(): number | undefined {
  return expected.getStore();
}
