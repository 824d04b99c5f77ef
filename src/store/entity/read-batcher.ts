// Coalesces the store reads of one turn of the event loop into one query: the misses of a
// repository's findMany (each id goes through the engine's own read path, lease and fill) reach the
// entity store as one `WHERE id IN (…)` instead of one query per id.
export type BatchLoad<V> = (keys: readonly string[]) => Promise<Map<string, V>>;

export interface ReadBatcher<V> {
  load(key: string): Promise<V | undefined>;
  /** How many batch queries were issued. */
  readonly batches: number;
}

/** At most this many keys per query (SQLite's default variable limit is 32766; keep well below). */
const MAX_BATCH = 500;

export function createReadBatcher<V>(loadMany: BatchLoad<V>): ReadBatcher<V> {
  let pending: Map<string, Array<{ resolve: (v: V | undefined) => void; reject: (e: unknown) => void }>> | undefined;
  let batches = 0;
  const flush = (waiting: NonNullable<typeof pending>): void => {
    const keys = [...waiting.keys()];
    for (let i = 0; i < keys.length; i += MAX_BATCH) {
      const slice = keys.slice(i, i + MAX_BATCH);
      batches++;
      loadMany(slice).then(
        (found) => slice.forEach((k) => waiting.get(k)!.forEach((w) => w.resolve(found.get(k)))),
        (error: unknown) => slice.forEach((k) => waiting.get(k)!.forEach((w) => w.reject(error))),
      );
    }
  };
  return {
    get batches() {
      return batches;
    },
    load(key) {
      return new Promise((resolve, reject) => {
        if (pending === undefined) {
          const waiting = (pending = new Map());
          // setImmediate: every read path started in this turn has reached its store read by then.
          setImmediate(() => {
            pending = undefined;
            flush(waiting);
          });
        }
        const list = pending.get(key);
        if (list === undefined) pending.set(key, [{ resolve, reject }]);
        else list.push({ resolve, reject });
      });
    },
  };
}
