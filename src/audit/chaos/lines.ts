// What a chaos worker tells the parent, one JSON object per line on file descriptor 4, written
// synchronously (fs.writeSync): a line is in the pipe before the operation it announces starts, so
// a worker killed with SIGKILL loses nothing it announced. An `invoke` without its `return` is an
// operation whose outcome is unknown. The parent rebuilds the history from these lines.
import type { HistoryEntry, OperationKind, Outcome } from '../history.js';
import type { ConvergenceResult } from './converge.js';
import type { WorkerFaultKind } from './faults.js';

/** The file descriptor the history lines go to (stdio index 4 of the child; 3 is the IPC channel). */
export const HISTORY_FD = 4;

export type OpCode = 'w' | 'd' | 'r';

export type WorkerLine =
  /** The process has loaded its modules and waits for a plan. */
  | { readonly t: 'ready'; readonly pid: number }
  /** The plan's adapters are open; operations follow. */
  | { readonly t: 'start' }
  | { readonly t: 'i'; readonly n: number; readonly op: OpCode; readonly k: string; readonly v?: string; readonly at: number }
  /** `s`: for a read, where its answer came from; for a write or delete, the engine's outcome (or the error's code). */
  | { readonly t: 'r'; readonly n: number; readonly o: Outcome; readonly v?: string; readonly ver?: number; readonly s?: string; readonly at: number }
  | { readonly t: 'f'; readonly f: WorkerFaultKind }
  /** The worker's journal drainer applied a row (invalidateOlder of cache key `k` at version `ver`). */
  | { readonly t: 'j'; readonly k: string; readonly ver: number; readonly at: number }
  /** A single-process run over an in-process cache checks convergence in the worker (nobody else sees that cache). */
  | { readonly t: 'converge'; readonly result: ConvergenceResult }
  | { readonly t: 'done'; readonly counters: Readonly<Record<string, number>> }
  | { readonly t: 'error'; readonly message: string };

const KIND: Readonly<Record<OpCode, OperationKind>> = { w: 'write', d: 'delete', r: 'read' };

/**
 * The note of a write or delete acknowledged without a lease (journaled for replay) whose fencing
 * invalidateOlder failed too: its key may read stale until the journal is replayed.
 */
export const JOURNALED = 'journaled';

/** A history entry with the worker's note on it (a read's source, a write's engine outcome): for excerpts and saved histories. */
export type NotedEntry = HistoryEntry & { readonly note?: string | undefined };

/**
 * The operations of one worker incarnation (one process running one plan), rebuilt from its lines.
 * Operations still open when the process died, or when the run ended, end as `unknown` (writes and
 * deletes) or are dropped (reads: they change nothing and answered nobody).
 */
export class IncarnationLog {
  private readonly invoked = new Map<number, Extract<WorkerLine, { t: 'i' }>>();
  private readonly entries: NotedEntry[] = [];
  /** Read answers by source (hit, miss, bypass, store-fallback). */
  readonly sources = new Map<string, number>();
  invokes = 0;

  constructor(readonly process: string) {}

  add(line: WorkerLine): void {
    if (line.t === 'i') {
      this.invoked.set(line.n, line);
      this.invokes++;
    } else if (line.t === 'r') {
      const invoke = this.invoked.get(line.n);
      if (invoke === undefined) return;
      this.invoked.delete(line.n);
      const kind = KIND[invoke.op];
      if (kind === 'read' && line.s !== undefined) this.sources.set(line.s, (this.sources.get(line.s) ?? 0) + 1);
      this.entries.push({
        process: this.process,
        key: invoke.k,
        kind,
        invokedAt: invoke.at,
        returnedAt: line.at,
        outcome: line.o,
        // a write's value is what it wrote, whatever the outcome; a read's is what it returned
        value: kind === 'write' ? invoke.v : line.v,
        version: line.ver,
        note: line.s,
      });
    }
  }

  /** Whether a write or delete is in flight: the moment to kill the process "in the middle of writes". */
  writing(): boolean {
    for (const invoke of this.invoked.values()) if (invoke.op !== 'r') return true;
    return false;
  }

  /** The finished history; open writes and deletes become `unknown`, returned at `endedAt`. */
  close(endedAt: number): NotedEntry[] {
    for (const invoke of this.invoked.values()) {
      if (invoke.op === 'r') continue;
      this.entries.push({
        process: this.process,
        key: invoke.k,
        kind: KIND[invoke.op],
        invokedAt: invoke.at,
        returnedAt: endedAt,
        outcome: 'unknown',
        value: invoke.v,
        version: undefined,
        note: 'no return (process killed)',
      });
    }
    this.invoked.clear();
    return this.entries;
  }
}

/** Splits a byte stream into parsed lines. */
export function lineReader(onLine: (line: WorkerLine) => void): (chunk: Buffer | string) => void {
  let rest = '';
  return (chunk) => {
    const text = rest + chunk.toString();
    const parts = text.split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) if (part.length > 0) onLine(JSON.parse(part) as WorkerLine);
  };
}
