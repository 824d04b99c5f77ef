// Store waits of every engine in the process, without a timer each. A cold read used to arm and
// clear two timers (the journal's readiness, the store read): a setTimeout/clearTimeout pair costs
// about a third of an in-process SQLite read. Waits of one budget length are queued in the order of
// their due times (operations start in order, and their store calls follow), under one timer armed
// for the oldest; a settled wait is only marked, and dropped once it reaches the head. The timer is
// ref'd only while a wait is pending, so an idle process is not kept alive by it. A wait whose due
// time is earlier than the last one queued (a read that waited for a fill before its store call)
// takes a timer of its own: every wait still ends at its own due time, whatever the others do.
import { settleWithin } from '../timeout.js';

interface Waiting {
  readonly due: number;
  /** Settled or expired: it no longer counts. */
  done: boolean;
  readonly expire: () => void;
}

/** A timer fires on the event loop's millisecond clock: a wait this close to its due time is due. */
const TOLERANCE_MS = 1;

class DueQueue {
  private items: Waiting[] = [];
  private head = 0;
  /** The latest due time queued: a wait due earlier cannot be queued behind it. */
  private lastDue = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (performance.now() time). */
  private armedFor = Infinity;

  get pending(): number {
    let count = 0;
    for (let i = this.head; i < this.items.length; i++) if (!this.items[i]!.done) count++;
    return count;
  }

  race<T>(work: Promise<T>, due: number, onTimeout: () => unknown, onError?: (error: unknown) => unknown): Promise<T> {
    if (due < this.lastDue) {
      const mapped = onError === undefined ? work : work.catch((error: unknown) => Promise.reject(onError(error)));
      return settleWithin(mapped, Math.max(0, due - performance.now()), onTimeout);
    }
    this.lastDue = due;
    const wasEmpty = this.head === this.items.length;
    return new Promise<T>((resolve, reject) => {
      const entry: Waiting = { due, done: false, expire: () => reject(onTimeout()) };
      this.items.push(entry);
      if (this.timer === undefined || due < this.armedFor) this.arm(due);
      else if (wasEmpty) this.timer.ref();
      work.then(
        (value) => {
          if (entry.done) return;
          entry.done = true;
          this.trim();
          resolve(value);
        },
        (error: unknown) => {
          if (entry.done) return;
          entry.done = true;
          this.trim();
          reject(onError === undefined ? error : onError(error));
        },
      );
    });
  }

  private arm(due: number, now = performance.now()): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedFor = due;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, due - now));
  }

  /** Drops settled waits from the head; none pending: the timer no longer keeps the process alive. */
  private trim(): void {
    const { items } = this;
    let head = this.head;
    while (head < items.length && items[head]!.done) head++;
    this.head = head;
    if (head === items.length) {
      this.reset();
      this.timer?.unref();
    } else if (head >= 1024 && head * 2 >= items.length) {
      this.items = items.slice(head);
      this.head = 0;
    }
  }

  private reset(): void {
    this.items.length = 0;
    this.head = 0;
    this.lastDue = -Infinity;
  }

  /** Expires every wait that is due, then waits for the next one. */
  private sweep(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = performance.now();
    const { items } = this;
    let head = this.head;
    for (; head < items.length; head++) {
      const entry = items[head]!;
      if (entry.done) continue;
      if (entry.due > now + TOLERANCE_MS) break;
      entry.done = true;
      entry.expire();
    }
    this.head = head;
    if (head === items.length) this.reset();
    else this.arm(items[head]!.due, now);
  }
}

/** One queue per budget length (an engine's leaseTtl; engines of one process mostly share one). */
const queues = new Map<number, DueQueue>();

/**
 * Settles like `work`, or rejects with `onTimeout()` at `due` (performance.now() time). `budgetMs`
 * names the queue: waits that start with one budget fall due in the order they start. `onError`,
 * when given, maps what `work` rejects with (not the timeout).
 */
export function raceUntil<T>(work: Promise<T>, budgetMs: number, due: number, onTimeout: () => unknown, onError?: (error: unknown) => unknown): Promise<T> {
  let queue = queues.get(budgetMs);
  if (queue === undefined) {
    queue = new DueQueue();
    queues.set(budgetMs, queue);
  }
  return queue.race(work, due, onTimeout, onError);
}

/** Waits queued and not settled, over every budget (for tests). */
export function pendingWaits(): number {
  let count = 0;
  for (const queue of queues.values()) count += queue.pending;
  return count;
}
