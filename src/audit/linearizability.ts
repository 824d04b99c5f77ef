// The protocol's full check (docs/protocol.md, "The test oracle", step 3): per-key
// linearizability of a history against a register model, by Wing & Gong's search with Lowe's
// memoization, the approach of Porcupine's `checkSingle`.
//
// Model: one register per key, absent (undefined) or a string. A write sets it, a delete makes it
// absent, a read returns it (`value` undefined = not found). Linearizability is local (Herlihy &
// Wing), so every key is checked on its own.
//
// Outcomes: an `ok` operation takes effect once between its invoke and its return. A `fail`
// operation never took effect and is dropped. An `unknown` write or delete may take effect at any
// time after its invoke, or never: it gets no return event, so the search may place it anywhere
// after its call and may leave it out. A read that did not return `ok` tells nothing and is dropped.
//
// Search: the operations become a time-ordered list of call and return events. The search walks the
// list, linearizing a call whose model step is legal (and lifting it and its return out of the list),
// and backtracks when it reaches the return of an operation it has not placed yet. Configurations
// (set of linearized operations, register state) already explored are skipped: the subtree below
// one depends only on that pair, not on the order that reached it.

import type { HistoryEntry } from './history.js';

export type LinearizabilityResult = 'ok' | 'violation' | 'unknown';

/** What a human needs to see a violation: how far a legal order gets, and what cannot follow it. */
export interface Counterexample {
  /** The longest legal linearization the search found, in linearization order. */
  readonly linearized: readonly HistoryEntry[];
  /** The register after that prefix (undefined = absent). */
  readonly state: string | undefined;
  /** The operation that had to take effect next (its return came first) and could not. */
  readonly failed: HistoryEntry;
  readonly reason: string;
}

export interface KeyReport {
  readonly key: string;
  readonly result: LinearizabilityResult;
  /** Operations checked (after dropping `fail` operations and reads that did not return `ok`). */
  readonly operations: number;
  /** Distinct (linearized set, state) configurations the search visited. */
  readonly explored: number;
  readonly counterexample?: Counterexample;
}

export interface LinearizabilityReport {
  /** `violation` if any key has one, else `unknown` if any key ran out of time, else `ok`. */
  readonly result: LinearizabilityResult;
  readonly keys: KeyReport[];
}

export interface LinearizabilityOptions {
  /** Search budget per key; a key that exceeds it reports `unknown`, never a pass. @default 10_000 */
  readonly deadlineMs?: number;
  /** The register of a key before the history begins. @default absent for every key */
  readonly initial?: ReadonlyMap<string, string | undefined>;
}

const DEFAULT_DEADLINE_MS = 10_000;
/** Look at the clock only every this many search steps: a step is far cheaper than a clock read. */
const CLOCK_EVERY = 1024;

export function checkLinearizable(history: readonly HistoryEntry[], options: LinearizabilityOptions = {}): LinearizabilityReport {
  const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const keys: KeyReport[] = [];
  for (const [key, entries] of groupByKey(history)) {
    keys.push(checkKey(key, entries, options.initial?.get(key), deadlineMs));
  }
  return { result: overall(keys), keys };
}

function overall(keys: readonly KeyReport[]): LinearizabilityResult {
  if (keys.some((k) => k.result === 'violation')) return 'violation';
  if (keys.some((k) => k.result === 'unknown')) return 'unknown';
  return 'ok';
}

function groupByKey(history: readonly HistoryEntry[]): Map<string, HistoryEntry[]> {
  const byKey = new Map<string, HistoryEntry[]>();
  for (const entry of history) {
    const list = byKey.get(entry.key);
    if (list === undefined) byKey.set(entry.key, [entry]);
    else list.push(entry);
  }
  return byKey;
}

// ---------------------------------------------------------------------------------------------
// The register model, over interned values: state 0 is absent, every distinct string gets an id,
// so a state is a small integer that is cheap to compare and to hash.

const ABSENT = 0;
const REJECT = -1;

interface Operation {
  readonly entry: HistoryEntry;
  /** write: the id of the value written; read: the id of the value returned; delete: ABSENT. */
  readonly valueId: number;
}

/** The state after `op` runs in `state`, or REJECT if a read saw something else. */
function step(state: number, op: Operation): number {
  switch (op.entry.kind) {
    case 'write':
    case 'delete':
      return op.valueId;
    case 'read':
      return op.valueId === state ? state : REJECT;
  }
}

class ValueTable {
  private readonly ids = new Map<string, number>();
  private readonly values: Array<string | undefined> = [undefined];

  id(value: string | undefined): number {
    if (value === undefined) return ABSENT;
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.values.length;
      this.ids.set(value, id);
      this.values.push(value);
    }
    return id;
  }

  value(id: number): string | undefined {
    return this.values[id];
  }
}

/** Keeps the operations that can tell something, as the model sees them. */
function toOperations(entries: readonly HistoryEntry[], table: ValueTable): Operation[] {
  const ops: Operation[] = [];
  for (const entry of entries) {
    if (entry.outcome === 'fail') continue; // never took effect
    if (entry.kind === 'read' && entry.outcome !== 'ok') continue; // an unanswered read constrains nothing
    validate(entry);
    ops.push({ entry, valueId: entry.kind === 'delete' ? ABSENT : table.id(entry.value) });
  }
  return ops;
}

function validate(entry: HistoryEntry): void {
  const bad = (what: string) => new RangeError(`history entry of ${entry.process} on ${JSON.stringify(entry.key)}: ${what}`);
  if (!Number.isFinite(entry.invokedAt)) throw bad('invokedAt is not a finite number');
  if (entry.outcome !== 'ok') return; // an unknown operation's return time is not used
  if (!Number.isFinite(entry.returnedAt)) throw bad('returnedAt is not a finite number');
  if (entry.returnedAt < entry.invokedAt) throw bad('returned before it was invoked');
}

// ---------------------------------------------------------------------------------------------
// The event list: a doubly linked list with a head sentinel, so that a linearized call and its
// return can be lifted out and put back in O(1) (dancing links: a lifted node keeps its pointers).

interface EventNode {
  /** Index into the operations; -1 for the head sentinel. */
  readonly op: number;
  readonly isCall: boolean;
  /** On a call: its return, or undefined for an open-ended (unknown) operation. */
  match: EventNode | undefined;
  prev: EventNode | undefined;
  next: EventNode | undefined;
}

function node(op: number, isCall: boolean): EventNode {
  return { op, isCall, match: undefined, prev: undefined, next: undefined };
}

/** Builds the list in time order. On equal times calls go first: touching intervals are concurrent. */
function buildEventList(ops: readonly Operation[]): EventNode {
  const events: Array<{ time: number; node: EventNode }> = [];
  ops.forEach((op, i) => {
    const call = node(i, true);
    events.push({ time: op.entry.invokedAt, node: call });
    if (op.entry.outcome === 'ok') {
      call.match = node(i, false);
      events.push({ time: op.entry.returnedAt, node: call.match });
    }
  });
  events.sort((a, b) => a.time - b.time || Number(b.node.isCall) - Number(a.node.isCall));
  const head = node(-1, false);
  let last = head;
  for (const { node: n } of events) {
    last.next = n;
    n.prev = last;
    last = n;
  }
  return head;
}

function unlink(n: EventNode): void {
  n.prev!.next = n.next;
  if (n.next) n.next.prev = n.prev;
}

function relink(n: EventNode): void {
  n.prev!.next = n;
  if (n.next) n.next.prev = n;
}

/** Takes a linearized call (and its return) out of the list. */
function lift(call: EventNode): void {
  unlink(call);
  if (call.match) unlink(call.match);
}

/** Undoes `lift`, in the reverse order. */
function unlift(call: EventNode): void {
  if (call.match) relink(call.match);
  relink(call);
}

// ---------------------------------------------------------------------------------------------
// The memo: a bitset of linearized operations with an incrementally maintained Zobrist hash (XOR of
// a fixed random word per set bit), so hashing a configuration is O(1); buckets compare exactly.

/** A well-mixed 32-bit word per integer (the murmur3 finalizer). */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

class Bitset {
  private readonly words: Uint32Array;
  hash = 0;

  constructor(size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  /** Both `set` and `clear` flip the bit: callers only set clear bits and clear set ones. */
  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
    this.hash ^= mix32(i + 1);
  }

  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
    this.hash ^= mix32(i + 1);
  }

  snapshot(): Uint32Array {
    return this.words.slice();
  }

  equals(words: Uint32Array): boolean {
    for (let i = 0; i < words.length; i++) if (words[i] !== this.words[i]) return false;
    return true;
  }
}

class ConfigurationCache {
  private readonly buckets = new Map<number, Array<{ words: Uint32Array; state: number }>>();
  size = 0;

  /** Records (bits, state); false if it was recorded before, i.e. its subtree is already explored. */
  add(bits: Bitset, state: number): boolean {
    const hash = (bits.hash ^ mix32(state + 0x9e3779b9)) >>> 0;
    let bucket = this.buckets.get(hash);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(hash, bucket);
    } else if (bucket.some((c) => c.state === state && bits.equals(c.words))) {
      return false;
    }
    bucket.push({ words: bits.snapshot(), state });
    this.size++;
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// The search for one key.

interface Frame {
  readonly call: EventNode;
  /** The state before this call was linearized, to restore on backtracking. */
  readonly stateBefore: number;
}

function checkKey(key: string, entries: readonly HistoryEntry[], initial: string | undefined, deadlineMs: number): KeyReport {
  const table = new ValueTable();
  const initialState = table.id(initial);
  const ops = toOperations(entries, table);
  const head = buildEventList(ops);
  const bits = new Bitset(ops.length);
  const cache = new ConfigurationCache();
  const stack: Frame[] = [];
  const deadline = performance.now() + deadlineMs;
  let state = initialState;
  let deepest: { linearized: number[]; state: number; failed: number } | undefined;
  let steps = 0;
  const report = (result: LinearizabilityResult): KeyReport => ({ key, result, operations: ops.length, explored: cache.size });

  cache.add(bits, state);
  let entry = head.next;
  for (;;) {
    if (++steps % CLOCK_EVERY === 0 && performance.now() > deadline) return report('unknown');
    // Past the last return: every `ok` operation is placed, and unknown ones left over never happened.
    if (entry === undefined) return report('ok');
    if (entry.isCall) {
      const next = step(state, ops[entry.op]!);
      if (next !== REJECT && tryLinearize(entry.op, next)) {
        stack.push({ call: entry, stateBefore: state });
        state = next;
        lift(entry);
        entry = head.next; // the set of callable operations changed: start over from the front
      } else {
        entry = entry.next;
      }
      continue;
    }
    // A return whose operation is still unplaced: nothing tried from here can place it. Backtrack.
    if (deepest === undefined || stack.length > deepest.linearized.length) {
      deepest = { linearized: stack.map((f) => f.call.op), state, failed: entry.op };
    }
    const frame = stack.pop();
    if (frame === undefined) return { ...report('violation'), counterexample: counterexample(ops, table, deepest) };
    state = frame.stateBefore;
    bits.clear(frame.call.op);
    unlift(frame.call);
    entry = frame.call.next; // try the calls after the one just undone
  }

  /** Marks `op` linearized unless that configuration was explored already. */
  function tryLinearize(op: number, next: number): boolean {
    bits.set(op);
    if (cache.add(bits, next)) return true;
    bits.clear(op);
    return false;
  }
}

function counterexample(
  ops: readonly Operation[],
  table: ValueTable,
  deepest: { linearized: number[]; state: number; failed: number },
): Counterexample {
  const failed = ops[deepest.failed]!.entry;
  const state = table.value(deepest.state);
  const linearized = deepest.linearized.map((i) => ops[i]!.entry);
  const shown = (v: string | undefined) => (v === undefined ? 'absent' : JSON.stringify(v));
  const what = failed.kind === 'read' ? `read by ${failed.process} returned ${shown(failed.value)}` : `${failed.kind} by ${failed.process}`;
  const reason =
    `after the longest legal order found (${linearized.length} operations) the register is ${shown(state)}; ` +
    `the ${what} [${failed.invokedAt}, ${failed.returnedAt}] must take effect before it returned, and no order of the pending operations allows it`;
  return { linearized, state, failed, reason };
}
