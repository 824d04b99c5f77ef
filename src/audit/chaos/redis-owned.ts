// A redis-server owned by the harness (`--cache redis-owned`): started on a spare local port without
// persistence, so that a restart (kill -9, start again on the same port) loses every record and
// lease, as a crashed cache node does; or, on purpose, restarted from a snapshot it saved earlier (a
// cache that rolls back). Removed with its temp dir on stop() or process exit.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface OwnedRedis {
  readonly url: string;
  /** SIGKILL, then a fresh process on the same port: every key is gone. */
  restart(): Promise<void>;
  /** `SHUTDOWN NOSAVE` (a clean stop that keeps nothing), then a fresh process on the same port. */
  shutdownAndRestart(): Promise<void>;
  /**
   * `SAVE`, then `meanwhile` (writes go on past the snapshot), then kill -9 and a fresh process that
   * loads the snapshot: every record and lease written since is gone and the older ones are back. The
   * snapshot is deleted once loaded, so later restarts start empty again.
   */
  restartFromSnapshot(meanwhile: () => Promise<void>): Promise<void>;
  /** Runs one command through redis-cli (its own connection) and resolves to its output; rejects on an error reply. */
  command(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function cli(port: number, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 5000 }, (error, stdout) => {
      const out = stdout.trim();
      if (error) reject(error);
      else if (/^(ERR|WRONGTYPE|OOM|NOSCRIPT|READONLY)/.test(out)) reject(new Error(`redis-cli ${args.join(' ')}: ${out}`));
      else resolve(out);
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'PING'], { timeout: 1000 }, (error, stdout) => resolve(!error && stdout.trim() === 'PONG'));
  });
}

export async function startOwnedRedis(): Promise<OwnedRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-chaos-redis-'));
  let child: ChildProcess | undefined;
  let port = 0;
  const cleanup = () => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);

  const launch = async (): Promise<void> => {
    const started = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', join(dir, 'redis.log'), '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
    child = started;
    let failed: Error | undefined;
    started.once('error', (error) => (failed = error));
    started.once('exit', () => (failed ??= new Error(`redis-server on port ${port} exited (see ${dir}/redis.log)`)));
    for (const until = Date.now() + 5000; Date.now() < until; await sleep(20)) {
      if (failed) throw failed;
      if (await ping(port)) return;
    }
    throw new Error(`redis-server on port ${port} did not answer PING within 5 s`);
  };
  const kill = async (): Promise<void> => {
    const current = child;
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.kill('SIGKILL');
    await exited;
  };

  for (let attempt = 0; ; attempt++) {
    port = 20_000 + Math.floor(Math.random() * 10_000);
    if (!(await portFree(port))) continue;
    try {
      await launch();
      break;
    } catch (error) {
      await kill();
      if (attempt >= 3) {
        cleanup();
        throw error;
      }
    }
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    async restart() {
      await kill();
      await launch();
    },
    async shutdownAndRestart() {
      const current = child;
      const exited = current === undefined || current.exitCode !== null ? Promise.resolve() : new Promise((resolve) => current.once('exit', resolve));
      // redis-cli reports the closed connection as an error: the exit is what counts
      await cli(port, ['SHUTDOWN', 'NOSAVE']).catch(() => undefined);
      await Promise.race([exited, sleep(5000)]);
      await kill();
      await launch();
    },
    async restartFromSnapshot(meanwhile) {
      const snapshot = join(dir, 'dump.rdb');
      await cli(port, ['SAVE']);
      if (!existsSync(snapshot)) throw new Error(`redis-server on port ${port} saved no snapshot at ${snapshot}`);
      try {
        await meanwhile();
        await kill();
        await launch(); // loads dump.rdb from --dir before it answers PING
      } finally {
        rmSync(snapshot, { force: true });
      }
    },
    // The parent may be restarting this server (its own kill -9 schedule): retry a refused connection for a while.
    async command(...args) {
      for (const until = Date.now() + 10_000; ; await sleep(50)) {
        try {
          return await cli(port, args);
        } catch (error) {
          // Also a redis-cli that timed out (killed) or lost its connection mid-command: the server was
          // being restarted, or the machine is loaded; an error reply is not retried.
          const { killed, message } = error as { killed?: boolean; message?: string };
          const transient = killed === true || /Could not connect|Connection refused|Connection reset|Server closed|LOADING|I\/O error/i.test(String(message));
          if (Date.now() > until || !transient) throw error;
        }
      }
    },
    async stop() {
      await kill();
      process.off('exit', cleanup);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
