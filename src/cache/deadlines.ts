// Deadlines for many short calls without a timer each. A setTimeout/clearTimeout pair per Redis
// call was a visible share of a cache hit; here one interval timer, armed only while calls are
// pending, rejects the overdue ones. A deadline fires at most `resolutionMs` late.
//
// Pending calls are kept in one FIFO queue per timeout length, not in a Set: calls of one length
// start, and so fall due, in queue order, and a Set insert + delete per call (its hash table
// likely growing and shrinking with every batch of calls in flight) cost 1-2 µs of CPU per call
// at 64 in flight, next to ~3 µs for the GET it guarded. A settled call is only marked; the queue
// drops marked calls from its head, which keeps it short since one connection's replies come back
// in the order sent.

interface Pending {
  readonly due: number;
  /** Settled, or expired: either way it no longer counts. */
  done: boolean;
  readonly expire: () => void;
}

/** The pending calls of one timeout length, oldest first: their deadlines are in the same order. */
class DueQueue {
  private items: Pending[] = [];
  private head = 0;

  get isEmpty(): boolean {
    return this.head === this.items.length;
  }

  /** Calls not known to be done (done ones behind an older pending one are still counted). */
  get size(): number {
    return this.items.length - this.head;
  }

  push(entry: Pending): void {
    this.items.push(entry);
  }

  /** Drops done calls from the head. */
  trim(): void {
    const { items } = this;
    let head = this.head;
    while (head < items.length && items[head]!.done) head++;
    this.head = head;
    this.compact();
  }

  /** Expires every call due by `now` (they are at the head). */
  expireDue(now: number): void {
    const { items } = this;
    let head = this.head;
    for (; head < items.length; head++) {
      const entry = items[head]!;
      if (entry.done) continue;
      if (entry.due > now) break;
      entry.done = true;
      entry.expire();
    }
    this.head = head;
    this.compact();
  }

  /** Frees the slots before the head once they are most of the array (amortized O(1) per call). */
  private compact(): void {
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

const identity = <T>(value: T): T => value;

export class Deadlines {
  /** One queue per timeout length in use (an adapter uses one or two: its command and connect timeouts). */
  private readonly queues = new Map<number, DueQueue>();
  private timer: NodeJS.Timeout | undefined;
  /** The clock (performance.now()) as the last call started: callers may reuse it instead of reading the clock again. */
  lastStart = 0;

  constructor(private readonly resolutionMs: number) {}

  /** Calls pending (for tests: 0 once every call has settled in order). */
  get pending(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.size;
    return count;
  }

  /** Settles like `work`, or rejects with `onTimeout()` once `ms` have passed; errors go through `onError`. */
  race<T>(work: Promise<T>, ms: number, onTimeout: () => unknown, onError: (error: unknown) => unknown): Promise<T> {
    return this.raceThen(work, ms, onTimeout, onError, identity as (value: T) => T);
  }

  /**
   * Like race, with `next` applied to what `work` gives within the same deadline: a call of two
   * steps (a Redis GET, then a script when it found no value) is one deadline and one promise, not
   * an async body inside a race. When `next` returns a promise, the call settles with it, or expires.
   */
  raceThen<T, R>(work: Promise<T>, ms: number, onTimeout: () => unknown, onError: (error: unknown) => unknown, next: (value: T) => R | Promise<R>): Promise<R> {
    let queue = this.queues.get(ms);
    if (queue === undefined) {
      queue = new DueQueue();
      this.queues.set(ms, queue);
    }
    const now = performance.now();
    this.lastStart = now;
    const due = now + ms;
    this.timer ??= setInterval(() => this.sweep(), this.resolutionMs).unref();
    const calls = queue;
    return new Promise<R>((resolve, reject) => {
      const entry: Pending = { due, done: false, expire: () => reject(onTimeout()) };
      calls.push(entry);
      const settle = (value: R): void => {
        if (entry.done) return;
        entry.done = true;
        calls.trim();
        resolve(value);
      };
      const fail = (error: unknown): void => {
        if (entry.done) return;
        entry.done = true;
        calls.trim();
        reject(onError(error));
      };
      work.then((value) => {
        if (entry.done) return;
        let result: R | Promise<R>;
        try {
          result = next(value);
        } catch (error) {
          fail(error);
          return;
        }
        if (result instanceof Promise) result.then(settle, fail);
        else settle(result);
      }, fail);
    });
  }

  private sweep(): void {
    const now = performance.now();
    let left = false;
    for (const queue of this.queues.values()) {
      queue.expireDue(now);
      if (!queue.isEmpty) left = true;
    }
    if (!left && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
