// The near cache holds its bound under faults on the invalidation path (dropped, delayed, killed
// connection, CLIENT PAUSE), across several engine instances over one Redis; and the checker
// finds the bound broken when the L1 trusts invalidations instead of its copies' age.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { checkVersions } from '../../src/audit/history.js';
import { checkBoundedStaleness, checkReadYourWrites } from '../../src/audit/staleness.js';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { historyNow, type HistoryEntry } from '../../src/audit/history.js';
import { NearCache, type NearCacheOptions } from '../../src/cache/near.js';
import { createTrackingFeed } from '../../src/cache/near-tracking.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import { FaultyFeed } from '../helpers/faulty-feed.js';
import { runNearChaos } from '../helpers/near-chaos.js';
import { needRedisServer, startRedisServer, untilUptime, type RedisServer } from '../helpers/redis-server.js';

const BOUND_MS = 50;

/** The mutant: a copy is served for as long as no invalidation removed it (no age limit). */
class TrustsInvalidationsOnly extends NearCache {
  protected override servable(): boolean {
    return true;
  }
}

/** The mutant: heartbeats renew copies, but one missing from the sequence is not noticed. */
class IgnoresHeartbeatGaps extends NearCache {
  protected override onGap(): void {}
}

/** The mutant: its own writes do not drop the local copy (it waits for Redis's invalidation to come back). */
class ForgetsOwnWrites extends NearCache {
  protected override dropOwn(): void {}
}

describe('near cache: bounded staleness under invalidation faults', () => {
  const { skip } = needRedisServer();
  let redis: RedisServer;
  before(async () => {
    if (skip) return;
    redis = await startRedisServer();
    await untilUptime(redis); // past the first-use quarantine of a freshly started server
  });
  after(async () => {
    await redis?.stop();
  });

  it('0 violations of the bound and of read-your-writes, with the L1 serving and every fault applied', { skip }, async () => {
    const run = await runNearChaos({ redis, maxStalenessMs: BOUND_MS, instances: 3, loops: 2, keys: 4 });
    const reads = run.history.filter((e) => e.kind === 'read' && e.outcome === 'ok').length;
    const stale = checkBoundedStaleness(run.history, { maxStalenessMs: BOUND_MS });
    const ryw = checkReadYourWrites(run.history);
    // Not linearizable (that is the default mode's promise): how many reads the fast check flags.
    const linearizabilityFlags = checkVersions(run.history).length;
    console.log(`near chaos: ${run.history.length} ops, ${reads} reads ok, ${run.nearHits} L1 hits, dropped ${run.dropped}, delayed ${run.delayed}, reconnects ${run.reconnects}, pauses ${run.pauses}, heartbeats ${run.heartbeats}, gaps ${run.gaps}; fast-check flags ${linearizabilityFlags}`);
    assert.deepEqual(stale.slice(0, 3), [], `${stale.length} reads broke the ${BOUND_MS} ms bound`);
    assert.deepEqual(ryw.slice(0, 3), [], `${ryw.length} reads missed their own process's write`);
    assert.ok(run.nearHits > 100, `the L1 served (${run.nearHits} hits)`);
    assert.ok(run.dropped > 0 && run.delayed > 0, 'messages were dropped and delayed');
    assert.ok(run.heartbeats > 0 && run.gaps > 0, 'heartbeats came back, and dropped ones were noticed');
    assert.ok(run.reconnects >= 6, `every feed reconnected after each kill (${run.reconnects})`);
  });

  it('age rule only (heartbeat: false): 0 violations of the bound and of read-your-writes', { skip }, async () => {
    const run = await runNearChaos({ redis, maxStalenessMs: BOUND_MS, instances: 3, loops: 2, keys: 4, makeNear: (options) => new NearCache({ ...options, heartbeat: false }) });
    assert.deepEqual(checkBoundedStaleness(run.history, { maxStalenessMs: BOUND_MS }).slice(0, 3), []);
    assert.deepEqual(checkReadYourWrites(run.history).slice(0, 3), []);
    assert.ok(run.nearHits > 100, `the L1 served (${run.nearHits} hits)`);
    assert.equal(run.heartbeats, 0);
  });

  it('teeth: an L1 that trusts invalidations and ignores its copies\' age breaks the bound, and the checker says so', { skip }, async () => {
    let found = 0;
    for (let attempt = 0; attempt < 3 && found === 0; attempt++) {
      const run = await runNearChaos({
        redis,
        maxStalenessMs: BOUND_MS,
        instances: 3,
        loops: 2,
        keys: 4,
        makeNear: (options) => new TrustsInvalidationsOnly(options),
      });
      found = checkBoundedStaleness(run.history, { maxStalenessMs: BOUND_MS }).length;
    }
    console.log(`mutant trusting invalidations only: ${found} reads past the bound`);
    assert.ok(found > 0, 'the broken L1 served values older than the bound');
  });

  it('teeth: an L1 whose own writes do not drop its copy misses its own writes, and the checker says so', { skip }, async () => {
    let found = 0;
    for (let attempt = 0; attempt < 3 && found === 0; attempt++) {
      const run = await runNearChaos({
        redis,
        maxStalenessMs: BOUND_MS,
        instances: 3,
        loops: 2,
        keys: 4,
        makeNear: (options) => new ForgetsOwnWrites(options),
      });
      found = checkReadYourWrites(run.history).length;
    }
    console.log(`mutant forgetting its own writes: ${found} reads missed their own write`);
    assert.ok(found > 0, 'the broken L1 served a copy older than its own process\'s acknowledged write');
  });

  /** A wider bound here, so a loaded machine's late timers do not age the mutant's copy out first. */
  const GAP_BOUND_MS = 250;

  /**
   * One lost invalidation, deterministically: A holds k=v1; A's feed drops everything (B's write of
   * v2 and at least one heartbeat) and then recovers; once heartbeats come back in A's feed and the
   * bound has passed since v2 was acknowledged, A reads k.
   */
  async function lostInvalidation(makeNear: (options: NearCacheOptions) => NearCache): Promise<HistoryEntry[]> {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-near-gap-'));
    const keyPrefix = `near-gap-${randomUUID().slice(0, 8)}:`;
    const opened: Array<{ near: NearCache; feed: FaultyFeed; engine: ReturnType<typeof createWriteThrough<string>>; close(): Promise<void> }> = [];
    const history: HistoryEntry[] = [];
    const until = async (what: string, check: () => boolean): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await delay(2);
      }
    };
    try {
      for (const name of ['a', 'b']) {
        const feed = new FaultyFeed(createTrackingFeed({ url: redis.url, keyPrefix }));
        const near = makeNear({ redis: createRedisCache({ url: redis.url, keyPrefix }), feed, maxStaleness: GAP_BOUND_MS, maxEntries: 10 });
        await near.start();
        const store = createSqliteStore({ path: join(dir, 's.db') });
        const engine = createWriteThrough<string>({ store, cache: near, namespace: 'n', failurePolicy: 'strict', journal: false, metrics: false });
        const close = async (): Promise<void> => {
          await engine.close();
          await near.close();
          await store.close();
        };
        opened.push({ near, feed, engine, close });
      }
      const [a, b] = opened;
      await until('feeds live', () => a!.near.nearStats().live && b!.near.nearStats().live);
      const read = async () => {
        const invokedAt = historyNow();
        const entry = await a!.engine.readEntry('k');
        history.push({ process: 'a', key: 'k', kind: 'read', value: entry.value, version: entry.version, invokedAt, returnedAt: historyNow(), outcome: 'ok' });
      };
      const write = async (value: string) => {
        const invokedAt = historyNow();
        const { version } = await b!.engine.write('k', value);
        history.push({ process: 'b', key: 'k', kind: 'write', value, version, invokedAt, returnedAt: historyNow(), outcome: 'ok' });
      };
      await write('v1');
      for (let i = 0; a!.near.nearStats().hits === 0; i++) {
        if (i > 1_000) throw new Error('A never served k from its L1');
        await read();
      }
      a!.feed.fault = 'drop';
      const dropStart = performance.now();
      await write('v2');
      const ackedAt = performance.now();
      await until('a heartbeat dropped too', () => a!.feed.dropped >= 2 && performance.now() - dropStart > GAP_BOUND_MS);
      a!.feed.fault = 'pass';
      const beats = a!.near.nearStats().heartbeats;
      await until('heartbeats back, and the bound past v2', () => a!.near.nearStats().heartbeats >= beats + 2 && performance.now() - ackedAt > GAP_BOUND_MS + 5);
      await read();
      return history;
    } finally {
      for (const o of opened) await o.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('a lost invalidation followed by a heartbeat gap flushes the L1; the mutant ignoring the gap serves the lost value and the checker says so', { skip }, async () => {
    const honest = await lostInvalidation((options) => new NearCache(options));
    assert.equal(honest[honest.length - 1]!.value, 'v2');
    assert.deepEqual(checkBoundedStaleness(honest, { maxStalenessMs: GAP_BOUND_MS }), []);
    const mutant = await lostInvalidation((options) => new IgnoresHeartbeatGaps(options));
    assert.equal(mutant[mutant.length - 1]!.value, 'v1', 'the mutant served the copy whose invalidation was lost');
    assert.equal(checkBoundedStaleness(mutant, { maxStalenessMs: GAP_BOUND_MS }).length, 1);
  });
});
