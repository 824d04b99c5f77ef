// The near cache's bound across OS processes: three worker processes (each an engine over its own
// near cache) over one test-owned redis-server and one SQLite file, while the parent hits every
// invalidation path: drops and delays messages in every worker, kills every invalidation
// connection (found by name in CLIENT LIST; they reconnect) and pauses every client (CLIENT PAUSE).
// Histories are on one monotonic clock (historyNow), so they are checked together.
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { HistoryEntry } from '../../src/audit/history.js';
import { checkBoundedStaleness, checkReadYourWrites } from '../../src/audit/staleness.js';
import type { NearWorkerCommand, NearWorkerPlan, NearWorkerReport } from '../helpers/near-worker.js';
import { needRedisServer, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const BOUND_MS = 50;
const PROCESSES = 3;

describe('near cache: bounded staleness across processes', () => {
  const { skip } = needRedisServer();
  let redis: RedisServer;
  before(async () => {
    if (!skip) redis = await startRedisServer();
  });
  after(async () => {
    await redis?.stop();
  });

  /** Runs the workers under the fault schedule; returns their merged history and stats. */
  async function runProcesses(mutant?: NearWorkerPlan['mutant']): Promise<{ history: HistoryEntry[]; stats: NearWorkerReport['stats'][]; kills: number }> {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-near-proc-'));
    const keyPrefix = `near-proc-${randomUUID().slice(0, 8)}:`;
    const children: ChildProcess[] = [];
    try {
      const reports = new Map<ChildProcess, Promise<NearWorkerReport>>();
      for (let i = 0; i < PROCESSES; i++) {
        const plan: NearWorkerPlan = { name: `p${i}`, redisUrl: redis.url, keyPrefix, dbPath: join(dir, 's.db'), maxStalenessMs: BOUND_MS, keys: 4, loops: 2, ...(mutant === undefined ? {} : { mutant }) };
        const child = fork('test/helpers/near-worker.ts', [JSON.stringify(plan)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        children.push(child);
        const ready = new Promise<void>((resolve, reject) => {
          child.once('exit', (code) => reject(new Error(`worker ${plan.name} exited with ${code} before it was ready`)));
          child.once('message', () => resolve());
        });
        reports.set(child, ready.then(() => new Promise<NearWorkerReport>((resolve) => child.on('message', (m) => 'history' in (m as object) && resolve(m as NearWorkerReport)))));
        await ready;
      }
      const send = (command: NearWorkerCommand) => children.forEach((child) => child.send(command));
      const progress = (child: ChildProcess) =>
        new Promise<number>((resolve) => {
          const listener = (m: unknown) => {
            if (typeof m === 'object' && m !== null && 'ops' in m) {
              child.off('message', listener);
              resolve((m as { ops: number }).ops);
            }
          };
          child.on('message', listener);
          child.send({ progress: true } satisfies NearWorkerCommand);
        });
      /** A phase lasts until every worker ran 100 more operations in it and several bounds passed. */
      const phase = async () => {
        const start = await Promise.all(children.map(progress));
        const startedAt = performance.now();
        const deadline = Date.now() + 30_000;
        for (;;) {
          const now = await Promise.all(children.map(progress));
          if (now.every((ops, i) => ops - start[i]! >= 100) && performance.now() - startedAt >= 6 * BOUND_MS) return;
          if (Date.now() > deadline) throw new Error(`workers stalled: ops ${now.join(', ')}`);
          await delay(10);
        }
      };
      const feeds = async () => (await redis.cli('CLIENT', 'LIST')).split('\n').filter((line) => line.includes('name=lockstep-near-invalidations'));
      let kills = 0;
      for (let round = 0; round < 2; round++) {
        await phase();
        send({ fault: 'drop' });
        await phase();
        send({ fault: 'delay', delayMs: 3 * BOUND_MS });
        await phase();
        send({ fault: 'pass' });
        for (const line of await feeds()) {
          await redis.cli('CLIENT', 'KILL', 'ID', /\bid=(\d+)/.exec(line)![1]!);
          kills++;
        }
        await phase();
        await redis.cli('CLIENT', 'PAUSE', String(3 * BOUND_MS), 'ALL');
        await phase();
      }
      send({ stop: true });
      const done = await Promise.all(children.map((child) => reports.get(child)!));
      const history: HistoryEntry[] = done.flatMap((r) => r.history);
      const stats = done.map((r) => r.stats);
      return { history, stats, kills };
    } finally {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }


  it('0 violations of the bound and of read-your-writes across 3 processes with faults on every invalidation path', { skip, timeout: 180_000 }, async () => {
    const { history, stats, kills } = await runProcesses();
    const stale = checkBoundedStaleness(history, { maxStalenessMs: BOUND_MS });
    const ryw = checkReadYourWrites(history);
    console.log(`near processes: ${history.length} ops, kills ${kills}, ${JSON.stringify(stats)}`);
    assert.deepEqual(stale.slice(0, 3), [], `${stale.length} reads broke the bound`);
    assert.deepEqual(ryw.slice(0, 3), [], `${ryw.length} reads missed their own process's write`);
    assert.ok(history.filter((e) => e.kind === 'read' && e.outcome === 'ok').length > 300, 'the workers read');
    assert.ok(stats.every((s) => s.hits > 0 && s.dropped > 0 && s.delayed > 0 && s.heartbeats > 0), 'every worker served from its L1 and met every feed fault');
    assert.ok(kills >= 2 * PROCESSES && stats.every((s) => s.wentLive >= 2), 'every invalidation connection was killed and came back');
  });

  it('teeth: the same run with workers whose L1 ignores its copies\' age breaks the bound, and the checker says so', { skip, timeout: 180_000 }, async () => {
    const { history } = await runProcesses('ignore-age');
    const stale = checkBoundedStaleness(history, { maxStalenessMs: BOUND_MS });
    console.log(`near processes, mutant ignoring age: ${stale.length} reads past the bound`);
    assert.ok(stale.length > 0, 'the broken L1 served values older than the bound');
  });
});
