// pg-proxy: the PostgreSQL proxy (`lockstep proxy`) side by side with PostgreSQL straight and
// PgBouncer (session mode), on the same table (1000 rows; 200 with --quick) and pool sizes, in one
// run, against a PostgreSQL cluster of the suite's own (initdb on a spare port, fsync off: 64
// connections per subject must not starve a shared server). The proxy and PgBouncer each run as
// their own process; the clients (node-postgres, extended protocol) run in this one, a closed loop
// per connection. Cases, each a suite of its own in the rows:
//   pg-proxy-read-1, -read-64   cached point read (SELECT * FROM items WHERE id = $1): proxy vs raw pg vs pgbouncer
//   pg-proxy-pass-1, -pass-64   an uncached query the proxy passes through: proxy vs pgbouncer
//   pg-proxy-write-1            UPDATE … WHERE id = $1 (autocommit, fenced by the proxy) vs raw pg
// Throughput is measured: ratio = baseline ops/s / subject ops/s (above 1 is slower). Each subject's
// time is split into rounds run in rotation with the case's other subjects (connections opened and
// warmed once per case). Each proxy
// subject is checked afterwards on the proxy's /metrics (hits, pass-throughs, invalidations): a
// proxy row is reported only if the proxy did what the row claims.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { RunOptions } from '../fixtures.js';
import { round, type Row } from '../report.js';
import type { ExternalSuite } from './resp-front.js';
import { findPgBouncer, pgBouncerVersion, startPgBouncer } from './pgbouncer.js';
import { createProxyDatabase } from '../../test/helpers/pg-proxy-fixture.js';
import { freePort, spawnProxy } from '../../test/helpers/pg-proxy-process.js';
import { PG_BIN, startCluster } from '../../test/helpers/pg-cluster.js';

const PROXY = 'lockstep pg-proxy';
const DIRECT = 'raw pg (direct)';

type Op = (client: pg.Client, i: number) => Promise<unknown>;

interface Measured {
  readonly ops: number;
  readonly opsPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

/** `inFlight` connections to `url`, each warmed up with `warmup` ops (enough that every key was read once). */
async function openClients(url: string, inFlight: number, warmup: number, op: Op): Promise<pg.Client[]> {
  const clients = await Promise.all(
    Array.from({ length: inFlight }, async () => {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    }),
  );
  await Promise.all(
    clients.map(async (c, k) => {
      for (let i = 0; i < warmup; i++) await op(c, k * 7919 + i);
    }),
  );
  return clients;
}

/** One timed round: every connection a closed loop of `op` for `ms`; the latencies (ms) are appended to `into`. */
async function timedRound(clients: readonly pg.Client[], ms: number, first: number, op: Op, into: number[]): Promise<number> {
  const started = performance.now();
  const end = started + ms;
  await Promise.all(
    clients.map(async (c, k) => {
      for (let i = 0; performance.now() < end; i++) {
        const t = performance.now();
        await op(c, k * 7919 + first + i);
        into.push(performance.now() - t);
      }
    }),
  );
  return performance.now() - started;
}

function summarizeRounds(latencies: number[], elapsedMs: number): Measured {
  latencies.sort((a, b) => a - b);
  const at = (q: number) => (latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0) * 1000;
  return { ops: latencies.length, opsPerSec: latencies.length / (elapsedMs / 1000), p50Us: at(0.5), p99Us: at(0.99) };
}

/** One counter of the proxy's /metrics (Prometheus text), labels included in `name`. */
async function metric(httpPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`the proxy's /metrics has no ${name}`);
  return Number(line.slice(name.length + 1));
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export const pgProxy: ExternalSuite = {
  name: 'pg-proxy',
  unavailable() {
    const missing: string[] = [];
    if (findPgBouncer() === undefined) missing.push('pgbouncer is not installed (Debian: apt-get install pgbouncer; or set PGBOUNCER to its path)');
    if (!executable(join(PG_BIN, 'initdb')) || !executable(join(PG_BIN, 'pg_ctl'))) missing.push(`initdb and pg_ctl are not in ${PG_BIN} (set PG_BIN to PostgreSQL's bin directory)`);
    if (process.getuid?.() !== 0) missing.push('it must run as root (initdb and pgbouncer run as the postgres user through runuser)');
    else if (spawnSync('id', ['-u', 'postgres'], { stdio: 'ignore' }).status !== 0) missing.push('there is no postgres user to run initdb and pgbouncer as');
    return missing.length === 0 ? undefined : missing.join('; ');
  },
  async run(options: RunOptions, log: (line: string) => void): Promise<Row[]> {
    const seconds = options.quick ? 0.3 : 3;
    /** Rounds each subject's time is split into, run in rotation. */
    const rounds = options.quick ? 1 : 6;
    const rowCount = options.quick ? 200 : 1000;
    const pgbouncerPath = findPgBouncer()!;
    const BOUNCER = `${pgBouncerVersion(pgbouncerPath)} (session mode)`;
    log(`  pg-proxy: a cluster of its own, ${rowCount} rows, ${seconds} s per subject in ${rounds} rotating rounds`);
    const cluster = startCluster(await freePort(), 'local all all trust\nhost all all 127.0.0.1/32 trust\n', '-c max_connections=400');
    const stops: Array<() => Promise<unknown> | unknown> = [() => cluster.stop()];
    try {
      const db = await createProxyDatabase('bench', rowCount, `postgres://postgres@127.0.0.1:${cluster.port}/postgres`);
      stops.push(() => db.drop());
      const upstream = new URL(db.url);
      const proxyPort = await freePort();
      const httpPort = await freePort();
      const proxy = await spawnProxy(['--listen', `127.0.0.1:${proxyPort}`, '--upstream', db.url, '--table', 'items', '--http-port', String(httpPort), '--grace', '1s']);
      stops.push(async () => {
        proxy.child.kill('SIGTERM');
        await proxy.exited;
      });
      const bouncer = await startPgBouncer(pgbouncerPath, upstream, db.name, await freePort());
      stops.push(() => bouncer.stop());
      const proxyUrl = new URL(db.url);
      proxyUrl.host = `127.0.0.1:${proxyPort}`;
      const urls: Record<string, string> = { [DIRECT]: db.url, [BOUNCER]: bouncer.url, [PROXY]: proxyUrl.toString() };

      const key = (i: number) => 1 + (i % rowCount);
      const read: Op = (c, i) => c.query('SELECT * FROM items WHERE id = $1', [key(i)]);
      const pass: Op = (c, i) => c.query('SELECT count(*) FROM items WHERE id < $1', [key(i)]);
      const write: Op = (c, i) => c.query('UPDATE items SET n = n + 1 WHERE id = $1', [key(i)]);
      /** What the proxy's counters must show for each of its timed operations (at least 90 % of them). */
      const checks = {
        read: ['lockstep_pgproxy_hits_total', 'served from its cache'],
        pass: ['lockstep_pgproxy_pass_through_total{reason="not-cacheable"}', 'passed through'],
        write: ['lockstep_pgproxy_invalidations_total', 'fenced (invalidated)'],
      } as const;
      const cases: Array<{ suite: string; name: string; inFlight: number; subjects: string[]; baseline: string; op: Op; check: keyof typeof checks }> = [];
      for (const inFlight of [1, 64]) {
        cases.push({ suite: `pg-proxy-read-${inFlight}`, name: `cached point read, SELECT * FROM items WHERE id = $1 (pg, extended protocol), ${inFlight} in flight, ${rowCount} rows`, inFlight, subjects: [DIRECT, BOUNCER, PROXY], baseline: DIRECT, op: read, check: 'read' });
      }
      for (const inFlight of [1, 64]) {
        cases.push({ suite: `pg-proxy-pass-${inFlight}`, name: `uncached query the proxy passes through, SELECT count(*) … WHERE id < $1, ${inFlight} in flight`, inFlight, subjects: [BOUNCER, PROXY], baseline: BOUNCER, op: pass, check: 'pass' });
      }
      cases.push({ suite: 'pg-proxy-write-1', name: 'write, UPDATE items SET n = n + 1 WHERE id = $1 (autocommit), 1 in flight', inFlight: 1, subjects: [DIRECT, PROXY], baseline: DIRECT, op: write, check: 'write' });

      const rows: Row[] = [];
      for (const c of cases) {
        // Enough warm-up per connection that every key is read once (the proxy's cache is full).
        const warmup = Math.ceil(rowCount / c.inFlight) + 5;
        const measured = new Map<string, Measured>();
        // Each subject's time is split into rounds run in rotation with the other subjects (as the
        // in-process suites do), so load that drifts during the run falls on all of them alike.
        const open = new Map<string, pg.Client[]>();
        try {
          for (const subject of c.subjects) open.set(subject, await openClients(urls[subject]!, c.inFlight, warmup, c.op));
          const [counter, what] = checks[c.check];
          let counted = 0; // over the proxy's own rounds only
          const latencies = new Map<string, number[]>(c.subjects.map((s) => [s, []]));
          const elapsed = new Map<string, number>(c.subjects.map((s) => [s, 0]));
          for (let round = 0; round < rounds; round++) {
            for (let j = 0; j < c.subjects.length; j++) {
              const subject = c.subjects[(j + round) % c.subjects.length]!;
              const into = latencies.get(subject)!;
              const before = subject === PROXY ? await metric(httpPort, counter) : 0;
              const ms = await timedRound(open.get(subject)!, (seconds * 1000) / rounds, warmup + into.length, c.op, into);
              elapsed.set(subject, elapsed.get(subject)! + ms);
              if (subject === PROXY) counted += (await metric(httpPort, counter)) - before;
            }
          }
          for (const subject of c.subjects) measured.set(subject, summarizeRounds(latencies.get(subject)!, elapsed.get(subject)!));
          const proxyOps = measured.get(PROXY)!.ops;
          if (counted < 0.9 * proxyOps) throw new Error(`${c.suite}: the proxy ${what} ${counted} of its ${proxyOps} timed operations (${counter})`);
        } finally {
          for (const clients of open.values()) await Promise.all(clients.map((cl) => cl.end().catch(() => undefined)));
        }
        for (const subject of c.subjects) log(`  ${c.suite}: ${subject} ${Math.round(measured.get(subject)!.opsPerSec)} ops/s`);
        const base = measured.get(c.baseline)!;
        for (const subject of c.subjects) {
          const m = measured.get(subject)!;
          rows.push({ suite: c.suite, case: c.name, subject, opsPerSec: Math.round(m.opsPerSec), p50Us: round(m.p50Us, 1), p99Us: round(m.p99Us, 1), baseline: c.baseline, ratio: round(base.opsPerSec / m.opsPerSec, 3) });
        }
      }
      return rows;
    } finally {
      for (const stop of stops.reverse()) {
        try {
          await stop();
        } catch (error) {
          log(`  pg-proxy: cleanup: ${(error as Error).message}`);
        }
      }
    }
  },
};
