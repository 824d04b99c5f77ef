// A throwaway PostgreSQL cluster (initdb as the postgres user, its own port and pg_hba.conf), for
// tests that need what the shared server cannot give: password authentication, restarts.
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where initdb and pg_ctl are ($PG_BIN, default Debian's PostgreSQL 15). */
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const BIN = PG_BIN;

export interface Cluster {
  readonly port: number;
  readonly dir: string;
  stop(): void;
}

function asPostgres(args: string[]): void {
  execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'pipe', timeout: 60_000 });
}

export function startCluster(port: number, hba: string, settings = ''): Cluster {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-pgcluster-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  asPostgres([join(BIN, 'initdb'), '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  writeFileSync(join(data, 'pg_hba.conf'), hba);
  asPostgres([join(BIN, 'pg_ctl'), '-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off ${settings}`, 'start']);
  return {
    port,
    dir,
    stop() {
      try {
        asPostgres([join(BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** An asynchronous streaming replica of a cluster (pg_basebackup -R), for failovers. */
export interface Replica {
  readonly dir: string;
  /** The port it streams on until promoteOn. */
  readonly port: number;
  /** Stops it (it then misses every later commit of the primary). */
  stop(): void;
  /** Starts it on `port` (e.g. the dead primary's: the address a failover moves) and promotes it: a new timeline. */
  promoteOn(port: number): void;
  /** Stops it if running and removes its files. */
  remove(): void;
}

export function startReplica(primary: Cluster, port: number): Replica {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-pgreplica-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  asPostgres([join(BIN, 'pg_basebackup'), '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', data, '-R', '-X', 'stream', '--no-sync']);
  const start = (on: number) =>
    asPostgres([join(BIN, 'pg_ctl'), '-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', `-p ${on} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  const stop = (mode: 'fast' | 'immediate') => asPostgres([join(BIN, 'pg_ctl'), '-D', data, '-m', mode, '-w', 'stop']);
  start(port);
  let running = true;
  return {
    dir,
    port,
    stop() {
      stop('fast');
      running = false;
    },
    promoteOn(on: number) {
      start(on);
      running = true;
      asPostgres([join(BIN, 'pg_ctl'), '-D', data, '-w', '-t', '60', 'promote']);
    },
    remove() {
      try {
        if (running) stop('immediate');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
