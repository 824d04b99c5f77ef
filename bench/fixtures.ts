// What the suites share: run options, the shape of a prepared case, temp directories that are
// always removed, and the value factory (a small JSON object, the same for every subject).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunOptions {
  /** A short run for smoke tests: smaller key pools and time budgets. */
  readonly quick: boolean;
}

/** One thing measured. `fn` performs `batch` operations; figures are reported per operation. */
export interface BenchSubject {
  readonly name: string;
  readonly batch: number;
  /** Whether `fn` returns a promise (declared, so tinybench never probes by calling it). */
  readonly async: boolean;
  readonly fn: () => unknown;
  /** Untimed work before each iteration (e.g. replacing an exhausted pool of cold keys). */
  readonly beforeEach?: () => void | Promise<void>;
  /** Untimed check after the run; returns a warning when the subject did not do what it claims. */
  readonly verify?: () => string | undefined | Promise<string | undefined>;
}

/** A case ready to measure: every subject, the baseline among them, over prepared data. */
export interface PreparedCase {
  readonly suite: string;
  readonly case: string;
  readonly baseline: string;
  readonly subjects: readonly BenchSubject[];
  close(): Promise<void>;
}

export interface SuiteDefinition {
  readonly name: string;
  prepare(options: RunOptions): Promise<PreparedCase>;
}

/** Operations per timed iteration for the fast cases, the same for every subject of a case. */
export const BATCH = 100;

export interface BenchValue {
  readonly id: number;
  readonly name: string;
  readonly tags: readonly string[];
  readonly n: number;
}

/** The value stored under key `i`: a small JSON object (~70 bytes encoded). */
export function makeValue(i: number): BenchValue {
  return { id: i, name: `user-${i}`, tags: ['alpha', 'beta', 'gamma'], n: (i * 7919) % 1000 };
}

export function makeKeys(count: number, prefix = 'user'): string[] {
  const width = String(count - 1).length;
  return Array.from({ length: count }, (_, i) => `${prefix}:${String(i).padStart(width, '0')}`);
}

/** A copy decoded from JSON and frozen, like the values Lockstep's decoded memory cache holds. */
export function decodedCopy<T>(value: T): T {
  return deepFreezeCopy(JSON.parse(JSON.stringify(value)) as T);
}

function deepFreezeCopy<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreezeCopy(child);
    Object.freeze(value);
  }
  return value;
}

const tempDirs = new Set<string>();

function removeTempDirs(): void {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}
process.once('exit', removeTempDirs);

export interface TempDir {
  readonly dir: string;
  file(name: string): string;
  remove(): void;
}

/** A fresh directory under LOCKSTEP_BENCH_DIR (default: the OS temp dir), removed by remove() or at exit. */
export function createTempDir(label: string): TempDir {
  const dir = mkdtempSync(join(process.env.LOCKSTEP_BENCH_DIR ?? tmpdir(), `lockstep-bench-${label}-`));
  tempDirs.add(dir);
  return {
    dir,
    file: (name) => join(dir, name),
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
  };
}

/** Round-robin cursor over `length` items. */
export function cycle(length: number): () => number {
  let at = -1;
  return () => (at = at + 1 === length ? 0 : at + 1);
}
