// Deadlines for many short calls without a timer each. A setTimeout/clearTimeout pair per Redis
// call was a visible share of a cache hit; here a call costs a Set insert and delete, and one
// interval timer, armed only while calls are pending, rejects the overdue ones. A deadline fires
// at most `resolutionMs` late.

interface Pending {
  readonly due: number;
  readonly expire: () => void;
}

export class Deadlines {
  private readonly pending = new Set<Pending>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly resolutionMs: number) {}

  /** Settles like `work`, or rejects with `onTimeout()` once `ms` have passed; errors go through `onError`. */
  race<T>(work: Promise<T>, ms: number, onTimeout: () => unknown, onError: (error: unknown) => unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { due: performance.now() + ms, expire: () => reject(onTimeout()) };
      this.pending.add(entry);
      this.timer ??= setInterval(() => this.sweep(), this.resolutionMs).unref();
      work.then(
        (value) => {
          if (this.pending.delete(entry)) resolve(value);
        },
        (error: unknown) => {
          if (this.pending.delete(entry)) reject(onError(error));
        },
      );
    });
  }

  private sweep(): void {
    const now = performance.now();
    for (const entry of this.pending) {
      if (entry.due > now) continue;
      this.pending.delete(entry);
      entry.expire();
    }
    if (this.pending.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
