// Fault plans for the chaos wrappers: per operation, a queue of faults applied to the next calls
// (or one applied to every call). Faults act before the wrapped operation applies, or after it
// applied (the caller then cannot tell that it did) — the two failure shapes a network gives.

export type FaultTiming = 'before' | 'after';

export type Fault =
  /** Throw `error` (a generic one by default). */
  | { readonly kind: 'throw'; readonly when: FaultTiming; readonly error?: Error }
  /** Wait `ms` of real time (a function draws a new delay for every call). */
  | { readonly kind: 'delay'; readonly when: FaultTiming; readonly ms: number | (() => number) }
  /** Wait until the gate is released: for exact interleavings in tests. */
  | { readonly kind: 'pause'; readonly when: FaultTiming; readonly gate: Gate }
  /** Never settle: the caller is stuck as if its process died at this step. */
  | { readonly kind: 'hang'; readonly when: FaultTiming };

export interface Gate {
  /** Resolves when a call has reached the gate. */
  readonly reached: Promise<void>;
  release(): void;
  /** Used by the wrapper: marks the gate reached and waits for release. */
  wait(): Promise<void>;
}

export function createGate(): Gate {
  let markReached!: () => void;
  let open!: () => void;
  const reached = new Promise<void>((resolve) => (markReached = resolve));
  const released = new Promise<void>((resolve) => (open = resolve));
  return {
    reached,
    release: () => open(),
    wait: () => {
      markReached();
      return released;
    },
  };
}

export class InjectedFault extends Error {
  constructor(operation: string, when: FaultTiming) {
    super(`injected fault: ${operation} failed ${when === 'after' ? 'after applying' : 'before applying'}`);
    this.name = 'InjectedFault';
  }
}

type Scoped = Fault & { readonly onlyKey?: string };

export class FaultPlan<Op extends string> {
  private readonly queued = new Map<Op, Scoped[]>();
  private readonly standing = new Map<Op, Fault>();
  /** Faults injected so far, per operation. */
  readonly injected = new Map<Op, number>();

  /**
   * Applies `fault` to the next `times` calls of `operation`; with `onlyKey`, to the next calls for
   * that key only (a test whose calls run concurrently then does not depend on their order).
   */
  next(operation: Op, fault: Fault, times = 1, onlyKey?: string): this {
    const queue = this.queued.get(operation) ?? [];
    for (let i = 0; i < times; i++) queue.push(onlyKey === undefined ? fault : { ...fault, onlyKey });
    this.queued.set(operation, queue);
    return this;
  }

  /** Applies `fault` to every call of `operation` until cleared. */
  always(operation: Op, fault: Fault): this {
    this.standing.set(operation, fault);
    return this;
  }

  clear(operation?: Op): this {
    if (operation === undefined) {
      this.queued.clear();
      this.standing.clear();
    } else {
      this.queued.delete(operation);
      this.standing.delete(operation);
    }
    return this;
  }

  /** Runs `apply` under the planned fault for `operation`, if any. */
  async run<T>(operation: Op, apply: () => T | Promise<T>, key?: string): Promise<T> {
    const fault = this.takeQueued(operation, key) ?? this.standing.get(operation);
    if (fault === undefined) return apply();
    this.injected.set(operation, (this.injected.get(operation) ?? 0) + 1);
    if (fault.when === 'before') await act(fault, operation);
    const result = await apply();
    if (fault.when === 'after') await act(fault, operation);
    return result;
  }

  /** The first queued fault for `operation` that applies to `key` (unscoped, or scoped to it). */
  private takeQueued(operation: Op, key: string | undefined): Fault | undefined {
    const queue = this.queued.get(operation);
    if (queue === undefined) return undefined;
    const index = queue.findIndex((fault) => fault.onlyKey === undefined || fault.onlyKey === key);
    return index < 0 ? undefined : queue.splice(index, 1)[0];
  }
}

async function act(fault: Fault, operation: string): Promise<void> {
  switch (fault.kind) {
    case 'throw':
      throw fault.error ?? new InjectedFault(operation, fault.when);
    case 'delay':
      await new Promise((resolve) => setTimeout(resolve, typeof fault.ms === 'function' ? fault.ms() : fault.ms));
      return;
    case 'pause':
      await fault.gate.wait();
      return;
    case 'hang':
      await new Promise<never>(() => undefined);
  }
}
