// PgBouncer (Debian's package, 1.18 on this machine) as a peer of the PostgreSQL proxy: started by
// the pg-proxy suite in session pool mode (1.18 keeps no named prepared statements in transaction
// mode) in front of the suite's own cluster, as the postgres user (PgBouncer refuses to run as root).
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';

/** The pgbouncer program: $PGBOUNCER, else the first on PATH, else Debian's /usr/sbin/pgbouncer. */
export function findPgBouncer(): string | undefined {
  const explicit = process.env.PGBOUNCER;
  const candidates = explicit !== undefined && explicit !== '' ? [explicit] : [...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'pgbouncer')), '/usr/sbin/pgbouncer'];
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** "pgbouncer 1.18.0", from the program itself. */
export function pgBouncerVersion(path: string): string {
  const out = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  const version = /PgBouncer ([0-9][0-9.]*)/.exec(out)?.[1];
  return version === undefined ? 'pgbouncer' : `pgbouncer ${version}`;
}

export interface PgBouncer {
  readonly url: string;
  /** The `runuser` process that started PgBouncer (PgBouncer itself is its child). */
  readonly runnerPid: number | undefined;
  stop(): Promise<void>;
}

/** Starts PgBouncer on `port` for database `dbName` of `upstream`, and waits until it answers. */
export async function startPgBouncer(path: string, upstream: URL, dbName: string, port: number): Promise<PgBouncer> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-pgbouncer-'));
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, 'users.txt'), '"postgres" ""\n');
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${dbName} = host=${upstream.hostname} port=${upstream.port || 5432} dbname=${dbName}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = session',
      'max_client_conn = 500',
      'default_pool_size = 100',
      'unix_socket_dir =',
      `logfile = ${join(dir, 'log')}`,
      `pidfile = ${join(dir, 'pid')}`,
      '',
    ].join('\n'),
  );
  const child = spawn('runuser', ['-u', 'postgres', '--', path, join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `postgres://postgres@127.0.0.1:${port}/${dbName}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return { url, stop, runnerPid: child.pid };
    } catch (error) {
      await client.end().catch(() => undefined);
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`pgbouncer did not start (${(error as Error).message})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
