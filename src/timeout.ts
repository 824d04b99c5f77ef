// One promise raced against one timer: what the engine's deadlines and the SQL stores' client-side
// timeouts share. The timer is cleared as soon as the work settles; work that settles after the
// timer fired is handed to `onLate` (e.g. a connection to destroy), never silently dropped.
// (The Redis adapter's calls use src/cache/deadlines.ts instead: no timer per call on a hot path.)

/** Settles like `work`, or rejects with `onTimeout()` once `ms` have passed. */
export function settleWithin<T>(work: Promise<T>, ms: number, onTimeout: () => unknown, onLate?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(onTimeout());
    }, ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        if (late) onLate?.(value);
        else resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (!late) reject(error);
      },
    );
  });
}
