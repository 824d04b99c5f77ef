// The near cache holds its bound under faults on the invalidation path (dropped, delayed, killed
// connection, CLIENT PAUSE), across several engine instances over one Redis; and the checker
// finds the bound broken when the L1 trusts invalidations instead of its copies' age.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { checkVersions } from '../../src/audit/history.js';
import { checkBoundedStaleness, checkReadYourWrites } from '../../src/audit/staleness.js';
import { NearCache } from '../../src/cache/near.js';
import { runNearChaos } from '../helpers/near-chaos.js';
import { needRedisServer, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const BOUND_MS = 50;

/** The mutant: a copy is served for as long as no invalidation removed it (no age limit). */
class TrustsInvalidationsOnly extends NearCache {
  protected override servable(): boolean {
    return true;
  }
}

/** The mutant: its own writes do not drop the local copy (it waits for Redis's invalidation to come back). */
class ForgetsOwnWrites extends NearCache {
  protected override dropOwn(): void {}
}

describe('near cache: bounded staleness under invalidation faults', () => {
  const { skip } = needRedisServer();
  let redis: RedisServer;
  before(async () => {
    if (!skip) redis = await startRedisServer();
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
    console.log(`near chaos: ${run.history.length} ops, ${reads} reads ok, ${run.nearHits} L1 hits, dropped ${run.dropped}, delayed ${run.delayed}, reconnects ${run.reconnects}, pauses ${run.pauses}; fast-check flags ${linearizabilityFlags}`);
    assert.deepEqual(stale.slice(0, 3), [], `${stale.length} reads broke the ${BOUND_MS} ms bound`);
    assert.deepEqual(ryw.slice(0, 3), [], `${ryw.length} reads missed their own process's write`);
    assert.ok(run.nearHits > 100, `the L1 served (${run.nearHits} hits)`);
    assert.ok(run.dropped > 0 && run.delayed > 0, 'messages were dropped and delayed');
    assert.ok(run.reconnects >= 6, `every feed reconnected after each kill (${run.reconnects})`);
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
});
