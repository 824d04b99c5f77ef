// The consistency test of the HTTP service, against the RESP front: two `lockstep serve --resp`
// instances over one PostgreSQL and one Redis (child processes), 8 ioredis clients spread over them
// on three keys, a kill -9 and a restart of one instance in the middle. Then the protocol's checks over what the clients saw: no
// phantom value (a read of something never written) and per-key linearizability (no stale read,
// no lost acknowledged write), also with store reads delayed to widen the fill races. Teeth: the
// same harness must find violations in the naive write-through behind the same front, and in a
// front that acknowledges a SET before its write ran (test/helpers/resp-mutant-server.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { checkVersions, type HistoryEntry } from '../../src/audit/history.js';
import { checkLinearizable } from '../../src/audit/linearizability.js';
import { freePort, runWorkload, startServer, type ServerProcess } from '../helpers/resp-history.js';
import { DATABASE_URL, needService, REDIS_URL } from '../helpers/services.js';

const redis = await needService('Redis', REDIS_URL);
const postgres = await needService('PostgreSQL', DATABASE_URL);
const schema = `lockstep_respc_${randomBytes(4).toString('hex')}`;
const storeSpec = `${DATABASE_URL}?schema=${schema}`;
const keys = ['hot-1', 'hot-2', 'hot-3'];

const serveArgs = (port: number): string[] => [
  'src/cli/main.ts', 'serve', '--port', '0', '--resp', `127.0.0.1:${port}`, '--store', storeSpec, '--cache', REDIS_URL, '--log-level', 'warn', '--audit-interval', '0',
];
const tag = randomBytes(3).toString('hex');
const mutantArgs = (mode: string) => (port: number): string[] => ['test/helpers/resp-mutant-server.ts', mode, storeSpec, REDIS_URL, String(port), tag];

/** Two instances over one PostgreSQL and one Redis; instance 0 is killed with SIGKILL and restarted mid-run. */
async function killedAndRestarted(args: (port: number) => string[], namespace: string): Promise<HistoryEntry[]> {
  const ports = [await freePort(), await freePort()];
  const servers: ServerProcess[] = await Promise.all(ports.map((port) => startServer(args(port))));
  try {
    return await runWorkload({
      ports,
      namespace,
      keys,
      clients: 8,
      before: 500,
      after: 500,
      restart: async () => {
        await servers[0]!.kill9();
        servers[0] = await startServer(args(ports[0]!));
      },
    });
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

function summary(history: readonly HistoryEntry[]): string {
  const count = (kind: string, outcome: string) => history.filter((e) => e.kind === kind && e.outcome === outcome).length;
  return `writes ok ${count('write', 'ok')}, unknown ${count('write', 'unknown')}; reads ok ${count('read', 'ok')}, failed ${count('read', 'fail')}; deletes ok ${count('delete', 'ok')}`;
}

describe('RESP front: two instances, many clients, few keys, kill -9 and restart', { skip: redis.skip || postgres.skip }, () => {
  before(async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.end();
  });
  after(async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it('lockstep serve --resp: 0 phantom values, 0 stale reads (linearizable per key)', { timeout: 240_000 }, async (t) => {
    const history = await killedAndRestarted(serveArgs, `respc-${randomBytes(3).toString('hex')}`);
    const info = summary(history);
    t.diagnostic(info);
    assert.ok(history.filter((e) => e.kind === 'read' && e.outcome === 'ok').length > 200, info);
    assert.ok(history.filter((e) => e.kind === 'write' && e.outcome === 'ok').length > 200, info);
    assert.deepEqual(checkVersions(history), [], info);
    const report = checkLinearizable(history, { deadlineMs: 30_000 });
    assert.equal(report.result, 'ok', `${info}\n${JSON.stringify(report.keys.find((k) => k.result !== 'ok')?.counterexample?.reason)}`);
  });

  it('the same with up to 15 ms of delay after every store read and before every cache publish (wider races): still 0 stale reads', { timeout: 240_000 }, async (t) => {
    const history = await killedAndRestarted(mutantArgs('jitter'), `respj-${randomBytes(3).toString('hex')}`);
    t.diagnostic(summary(history));
    assert.deepEqual(checkVersions(history), []);
    const report = checkLinearizable(history, { deadlineMs: 30_000 });
    assert.equal(report.result, 'ok', `${summary(history)}\n${JSON.stringify(report.keys.find((k) => k.result !== 'ok')?.counterexample?.reason)}`);
  });

  it('teeth: the naive write-through behind the same front, with the same delays, is caught', { timeout: 480_000 }, async (t) => {
    // Its races need an unlucky interleaving: up to 3 runs (new namespaces), it must be caught in one.
    const attempts: string[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const history = await killedAndRestarted(mutantArgs('naive'), `respn-${randomBytes(3).toString('hex')}`);
      const report = checkLinearizable(history, { deadlineMs: 30_000 });
      attempts.push(`run ${attempt}: ${report.result} (${report.keys.filter((k) => k.result === 'violation').length} of ${keys.length} keys; ${summary(history)})`);
      if (report.result === 'violation') break;
    }
    t.diagnostic(attempts.join('; '));
    assert.match(attempts.at(-1)!, /: violation/, `the harness missed the naive write-through in 3 runs: ${attempts.join('; ')}`);
  });

  it('teeth: a front that acknowledges SET before the write ran is caught', { timeout: 240_000 }, async (t) => {
    const history = await killedAndRestarted(mutantArgs('ack-before-write'), `respm-${randomBytes(3).toString('hex')}`);
    const report = checkLinearizable(history, { deadlineMs: 30_000 });
    t.diagnostic(`${summary(history)}; ${report.keys.filter((k) => k.result === 'violation').length} of ${keys.length} keys violate: ${report.keys.find((k) => k.counterexample)?.counterexample?.reason ?? ''}`);
    assert.equal(report.result, 'violation', `the harness missed the broken front (${summary(history)})`);
  });
});
