// Servers under load run as child processes, so that the load generator (autocannon, in the
// parent) and the server never share an event loop. stdout goes to a file (the server's JSON logs
// stay out of the parent's way); the `listening on URL` line is read back from it.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TSX = import.meta.resolve('tsx');
const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const BASELINE = fileURLToPath(new URL('./baseline-server.ts', import.meta.url));

export type ServerKind = 'lockstep' | 'baseline';

export interface ChildServer {
  readonly kind: ServerKind;
  readonly url: string;
  readonly pid: number;
  readonly logPath: string;
  /** SIGTERM, then waits for the exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface ChildOptions {
  readonly store: string;
  /** lockstep only. */
  readonly cache?: string;
  /** lockstep only. @default 'info' (one JSON line per request, to the log file) */
  readonly logLevel?: string;
  /** Directory for the log file. */
  readonly dir: string;
  /** @default 30000 */
  readonly startTimeoutMs?: number;
}

export async function startChild(kind: ServerKind, options: ChildOptions): Promise<ChildServer> {
  const logPath = join(options.dir, `${kind}-${Date.now()}.log`);
  const out = openSync(logPath, 'w');
  const args =
    kind === 'lockstep'
      ? [CLI, 'serve', '--port', '0', '--store', options.store, '--cache', options.cache ?? 'memory', '--log-level', options.logLevel ?? 'info']
      : [BASELINE, '--store', options.store];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOCKSTEP_') && k !== 'NODE_TEST_CONTEXT'));
  const child = spawn(process.execPath, ['--import', TSX, ...args], { env, stdio: ['ignore', out, 'pipe'] });
  closeSync(out);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const url = await waitForUrl(logPath, child, () => stderr, options.startTimeoutMs ?? 30_000);
    return {
      kind,
      url,
      pid: child.pid!,
      logPath,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        return exited;
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

async function waitForUrl(logPath: string, child: ChildProcess, stderr: () => string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = /listening on (http:\/\/\S+)/.exec(readFileSync(logPath, 'utf8'));
    if (match !== null) return match[1]!;
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}) before listening: ${stderr()}`);
    if (Date.now() > deadline) throw new Error(`the server did not listen within ${timeoutMs} ms: ${stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
