// Deadlines for many short calls without a timer each. A setTimeout/clearTimeout pair per Redis
// call was a visible share of a cache hit; here one interval timer, armed only while calls are
// pending, rejects the overdue ones. A deadline fires at most `resolutionMs` late (see below for a blocked event loop).
//
// No call reads the clock (performance.now(), ~50 ns, was the largest single step of starting a
// call): the sweep, which runs every half resolution, gives the calls started since its last run
// the deadline `now + ms` of its own reading. They started before that reading, so a deadline is
// never early; they started at most one interval before it, and the sweep that expires them runs
// at most one interval after it is due: at most two intervals, i.e. `resolutionMs`, late, while
// timers run on time. A synchronous stretch that blocks the event loop delays the sweep, so a call
// started just before it is stamped after it: its deadline is pushed back by that stretch (bounded:
// it is the stretch's length; a call never fires early). Per-call clock readings would avoid that
// and cost a hit ~50 ns each (docs/benchmarks.md, "Read path, seventh pass").
//
// Pending calls are kept in one FIFO queue per timeout length, not in a Set: calls of one length
// start, and so fall due, in queue order, and a Set insert + delete per call (its hash table
// likely growing and shrinking with every batch of calls in flight) cost 1-2 µs of CPU per call
// at 64 in flight, next to ~3 µs for the GET it guarded. A settled call is only marked; the queue
// drops marked calls from its head, which keeps it short since one connection's replies come back
// in the order sent.

interface Pending {
  /** Infinity until the first sweep after the call started gives it one. */
  due: number;
  /** Settled, or expired: either way it no longer counts. */
  done: boolean;
  expire(): void;
}

/** The pending calls of one timeout length, oldest first: their deadlines are in the same order. */
export class DueQueue {
  private items: Pending[] = [];
  private head = 0;
  /**
   * Answers the server gave, in time or late (proof that the connection is alive): replies, and
   * errors `countsAsAnswer` says came from the server (not the client's own refusals: a full queue).
   */
  answered = 0;
  /** Items from here on have no deadline yet (started since the last sweep). */
  private unstamped = 0;

  /** @param ms the timeout length of every call in this queue */
  constructor(
    readonly ms: number,
    readonly countsAsAnswer: (error: unknown) => boolean,
  ) {}

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

  /** Gives the calls started since the last stamp the deadline `now + ms` (`now`: the clock, read after they started). */
  stamp(now: number): void {
    const { items } = this;
    const due = now + this.ms;
    for (let at = Math.max(this.head, this.unstamped); at < items.length; at++) items[at]!.due = due;
    this.unstamped = items.length;
  }

  /** Expires every call due by `now` (they are at the head; calls not stamped yet are not due). */
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
      this.unstamped = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.unstamped = Math.max(0, this.unstamped - this.head);
      this.head = 0;
    }
  }
}

// The resolving functions of the promise being made: one shared executor, no closure per call.
let resolveMade: (value: unknown) => void = () => undefined;
let rejectMade: (error: unknown) => void = () => undefined;
function capture(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
  resolveMade = resolve;
  rejectMade = reject;
}

/** The caller's own `then` on a call's result, run in the call's callback (no promise in between). */
export interface Continuation<M, R> {
  answer(value: M): R | Promise<R>;
  failure(error: unknown): R | Promise<R>;
}

/**
 * One call under a deadline, as one object: its queue entry, its promise and the steps after its
 * work (a call used to be a promise and seven closures). `next` maps what the work gives within the
 * same deadline (a Redis GET, then a script when it found no value); `then`, when given, is the
 * caller's own handling of the result, as `promise.then(v => then.answer(v), e => then.failure(e))`.
 */
export abstract class DeadlineCall<T, M, R = M> implements Pending {
  due = Infinity;
  done = false;
  readonly promise: Promise<R>;
  private readonly resolve: (value: R | Promise<R>) => void;
  private readonly reject: (error: unknown) => void;
  private queue: DueQueue | undefined;

  constructor(private readonly then: Continuation<M, R> | undefined) {
    this.promise = new Promise<R>(capture as never);
    this.resolve = resolveMade;
    this.reject = rejectMade;
  }

  /** The error of a call that ran out of time. */
  protected abstract timeoutError(): unknown;
  /** The error the call fails with when its work (or `next`) failed with `error`. */
  protected abstract failure(error: unknown): unknown;
  /** What the call gives for what its work gave (may go on with more work, within the deadline). */
  protected abstract next(value: T): M | Promise<M>;

  /**
   * Deadlines.start: the call is queued, its work observed. Without a work promise, whoever does the
   * work settles the call itself with `reply` or `fail` (the Redis adapter's coalesced write calls:
   * one reply for many calls, no promise per call).
   */
  begin(queue: DueQueue, work: Promise<T> | undefined): Promise<R> {
    this.queue = queue;
    queue.push(this);
    work?.then(
      (value) => this.reply(value),
      (error: unknown) => this.fail(error),
    );
    return this.promise;
  }

  expire(): void {
    this.failed(this.timeoutError());
  }

  /**
   * Expires the call now if its deadline has passed (the sweep may not have run yet: it fires up to
   * the resolution late), by `startedAt`, the caller's own clock reading taken before it started the
   * call (the sweep's deadline may not be set yet). True when the call is done, by this or earlier.
   */
  expireIfDue(now: number, startedAt: number): boolean {
    if (this.done) return true;
    if (startedAt + this.queue!.ms > now) return false;
    this.done = true;
    this.queue!.trim();
    this.expire();
    return true;
  }

  /** The work gave `value`: the call's steps go on with it (ignored once the call is done: settled or expired). */
  reply(value: T): void {
    this.queue!.answered++;
    if (this.done) return;
    let result: M | Promise<M>;
    try {
      result = this.next(value);
    } catch (error) {
      this.fail(error);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (settled) => this.settle(settled),
        (error: unknown) => this.fail(error),
      );
    } else this.settle(result);
  }

  private settle(value: M): void {
    if (this.done) return;
    this.end();
    if (this.then === undefined) {
      this.resolve(value as unknown as R);
      return;
    }
    try {
      this.resolve(this.then.answer(value));
    } catch (error) {
      this.reject(error);
    }
  }

  /** The work failed (ignored once the call is done). */
  fail(error: unknown): void {
    if (this.queue!.countsAsAnswer(error)) this.queue!.answered++;
    if (this.done) return;
    this.end();
    this.failed(this.failure(error));
  }

  private end(): void {
    this.done = true;
    this.queue!.trim();
  }

  private failed(error: unknown): void {
    if (this.then === undefined) {
      this.reject(error);
      return;
    }
    try {
      this.resolve(this.then.failure(error));
    } catch (thrown) {
      this.reject(thrown);
    }
  }
}

/** A call whose steps are functions (the adapter's calls other than a hit). */
class FunctionCall<T, R> extends DeadlineCall<T, R> {
  constructor(
    private readonly onTimeout: () => unknown,
    private readonly onError: (error: unknown) => unknown,
    private readonly step: (value: T) => R | Promise<R>,
  ) {
    super(undefined);
  }

  protected timeoutError(): unknown {
    return this.onTimeout();
  }

  protected failure(error: unknown): unknown {
    return this.onError(error);
  }

  protected next(value: T): R | Promise<R> {
    return this.step(value);
  }
}

const identity = <T>(value: T): T => value;

export class Deadlines {
  /** One queue per timeout length in use (an adapter uses one or two: its command and connect timeouts). */
  private readonly queues = new Map<number, DueQueue>();
  private timer: NodeJS.Timeout | undefined;
  /**
   * The clock (performance.now()) as the sweep last read it, or as the sweep was armed: at most one
   * sweep interval old while calls are pending (callers that need no more may use it instead of reading the clock).
   */
  clock = 0;
  private lastMs = -1;
  private lastQueue: DueQueue | undefined;
  /** The sweep's period: half the resolution (a call's deadline is set by one sweep and acted on by a later one). */
  private readonly intervalMs: number;

  /** `countsAsAnswer`: whether a call's error came from the server (default: every error does). */
  constructor(
    resolutionMs: number,
    private readonly countsAsAnswer: (error: unknown) => boolean = () => true,
  ) {
    this.intervalMs = Math.max(1, Math.floor(resolutionMs / 2));
  }

  /** Answers the server gave so far, in time or late (a Redis connection that answers nothing leaves it unchanged). */
  get answered(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.answered;
    return count;
  }

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
    return this.start(new FunctionCall(onTimeout, onError, next), work, ms);
  }

  /**
   * Starts `call` on `work`: it settles as the call's steps say, or expires once `ms` have passed.
   * Without `work`, the caller settles it with `call.reply` / `call.fail`.
   */
  start<T, M, R>(call: DeadlineCall<T, M, R>, work: Promise<T> | undefined, ms: number): Promise<R> {
    // Nearly every call of an adapter has the same length: its last queue is kept at hand.
    let queue = ms === this.lastMs ? this.lastQueue : this.queues.get(ms);
    if (queue === undefined) {
      queue = new DueQueue(ms, this.countsAsAnswer);
      this.queues.set(ms, queue);
    }
    this.lastMs = ms;
    this.lastQueue = queue;
    if (this.timer === undefined) {
      this.clock = performance.now();
      this.timer = setInterval(() => this.sweep(), this.intervalMs).unref();
    }
    return call.begin(queue, work);
  }

  private sweep(): void {
    const now = performance.now();
    this.clock = now;
    let left = false;
    for (const queue of this.queues.values()) {
      queue.expireDue(now);
      queue.stamp(now);
      if (!queue.isEmpty) left = true;
    }
    if (!left && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
