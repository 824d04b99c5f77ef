// Worker processes for chaos runs. Starting one costs about a second (module loading, and TypeScript
// transpiling under tsx), so processes are reused from seed to seed and a warm spare waits for the
// next kill -9: the restarted worker picks up its remaining operations at once.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lineReader, type WorkerLine } from './lines.js';
import type { WorkerPlan } from './plan.js';
import type { WorkerMessage } from './worker.js';

export interface WorkerProcess {
  readonly pid: number;
  /** Receives every line the process writes from now on (one listener: the plan it runs). */
  listen(listener: (line: WorkerLine) => void): void;
  run(plan: WorkerPlan): void;
  /** SIGKILL. */
  kill(): void;
  /** SIGTERM: the worker stops taking operations, closes its engine (bounded) and exits, as a redeploy does. */
  terminate(): void;
  /** SIGSTOP, and SIGCONT `ms` later: the process freezes mid-operation, as in a long GC pause. */
  freeze(ms: number): Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  readonly alive: boolean;
}

/** How to start a worker: the .ts source under tsx (from the repo) or the built .js. */
function workerCommand(): { file: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.ts')) return { file: join(dirname(here), 'worker.js'), execArgv: [] };
  let tsx = 'tsx';
  try {
    tsx = import.meta.resolve('tsx'); // works from any cwd
  } catch {
    // fall back to resolution from the cwd
  }
  return { file: join(dirname(here), 'worker.ts'), execArgv: ['--import', tsx] };
}

function start(preload: readonly string[]): Promise<WorkerProcess> {
  const { file, execArgv } = workerCommand();
  const child: ChildProcess = spawn(process.execPath, [...execArgv, file], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc', 'pipe'],
    env: { ...process.env, LOCKSTEP_CHAOS_PRELOAD: preload.join(',') },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
  });
  let listener: (line: WorkerLine) => void = () => undefined;
  let alive = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      // let the history pipe deliver what the process wrote before it died
      const lines = child.stdio[4] as Readable;
      if (lines.readableEnded || lines.destroyed) resolve({ code, signal, stderr });
      else lines.once('close', () => resolve({ code, signal, stderr }));
    });
  });
  const worker: WorkerProcess = {
    pid: child.pid ?? -1,
    listen: (next) => {
      listener = next;
    },
    run: (plan) => {
      child.send({ type: 'plan', plan } satisfies WorkerMessage);
    },
    kill: () => {
      child.kill('SIGKILL');
    },
    terminate: () => {
      child.kill('SIGTERM');
    },
    freeze: async (ms) => {
      if (!alive) return;
      child.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, ms));
      if (alive) child.kill('SIGCONT');
    },
    exited,
    get alive() {
      return alive;
    },
  };
  return new Promise((resolve, reject) => {
    listener = (line) => {
      if (line.t === 'ready') resolve(worker);
    };
    child.stdio[4]!.on('data', lineReader((line) => listener(line)));
    child.once('error', reject);
    void exited.then(({ code, signal }) => reject(new Error(`a chaos worker exited at start (${signal ?? code}): ${stderr}`)));
  });
}

export class WorkerPool {
  private readonly idle: Array<Promise<WorkerProcess>> = [];
  private readonly all = new Set<Promise<WorkerProcess>>();
  private closed = false;

  /** `preload`: adapter modules to load at start (postgres, sqlite, mysql, redis, memory). */
  constructor(
    private readonly preload: readonly string[],
    private readonly spares = 1,
  ) {}

  /** Starts processes so that `count` plus the spares are ready or starting. */
  warm(count: number): void {
    while (this.idle.length < count + this.spares) this.idle.push(this.spawn());
  }

  /** A process ready for a plan; a spare is started in its place. */
  async acquire(): Promise<WorkerProcess> {
    for (;;) {
      const next = this.idle.shift() ?? this.spawn();
      this.warm(0);
      const worker = await next;
      if (worker.alive) return worker;
      this.all.delete(next);
    }
  }

  /** Back to the pool after a plan ended normally. */
  release(worker: WorkerProcess): void {
    if (worker.alive && !this.closed) this.idle.unshift(Promise.resolve(worker));
  }

  async close(): Promise<void> {
    this.closed = true;
    const workers = await Promise.allSettled([...this.all]);
    for (const result of workers) {
      if (result.status === 'fulfilled' && result.value.alive) result.value.kill();
    }
    await Promise.allSettled(workers.map((r) => (r.status === 'fulfilled' ? r.value.exited : undefined)));
  }

  private spawn(): Promise<WorkerProcess> {
    const worker = start(this.preload);
    worker.catch(() => undefined);
    this.all.add(worker);
    return worker;
  }
}
