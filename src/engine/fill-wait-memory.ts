// Which keys this process recently gave up waiting on (fill-wait.ts): kept apart so the engine's
// context can hold it without importing the wait itself.

/** Keys remembered as "gave up waiting" (a bound on memory: the oldest is forgotten first). */
const MAX_GAVE_UP_KEYS = 10_000;

/**
 * Per engine: which keys this process gave up waiting on. A lease whose holder died stays live for
 * up to leaseTtl; readers of such a key then go to the store at once instead of each waiting out
 * `fillWait` again. Forgetting early only costs a wait; remembering too long only costs store reads.
 */
export class FillWaitMemory {
  private readonly gaveUpUntil = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  /** True while a wait for this key timed out less than a lease's lifetime ago. */
  recentlyGaveUp(cacheKey: string): boolean {
    const until = this.gaveUpUntil.get(cacheKey);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.gaveUpUntil.delete(cacheKey);
    return false;
  }

  gaveUp(cacheKey: string, forMs: number): void {
    this.gaveUpUntil.delete(cacheKey);
    this.gaveUpUntil.set(cacheKey, this.now() + forMs);
    if (this.gaveUpUntil.size > MAX_GAVE_UP_KEYS) this.gaveUpUntil.delete(this.gaveUpUntil.keys().next().value!);
  }
}
