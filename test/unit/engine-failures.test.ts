// Every failure path of the write and read protocol, injected with the chaos wrappers around a
// real SQLite store and a real memory cache.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { AlertEvent } from '../../src/engine/events.js';
import {
  CacheUnavailableError,
  CacheWriteError,
  StoreOutcomeUnknownError,
  StoreReadError,
  StoreWriteError,
} from '../../src/errors.js';
import { createEngineFixture, LEASE_MS, type EngineFixture } from '../helpers/engine-fixture.js';

let f: EngineFixture<string>;
afterEach(() => f.close());
const setup = async (failurePolicy: 'pragmatic' | 'strict' = 'pragmatic') => {
  f = await createEngineFixture<string>({ engine: { failurePolicy } });
  return f;
};
const throwing = (when: 'before' | 'after') => ({ kind: 'throw', when }) as const;
const journalRows = () => f.sqlite.readJournal(0, 100);

describe('Scenario 1: the store fails the write', () => {
  for (const policy of ['pragmatic', 'strict'] as const) {
    it(`${policy}: the error is returned with the cause, nothing is committed, the old value stays readable`, async () => {
      await setup(policy);
      await f.engine.write('k', 'old');
      const cause = new Error('disk full');
      f.store.faults.next('write', { kind: 'throw', when: 'before', error: cause });
      await assert.rejects(f.engine.write('k', 'new'), (e: unknown) => e instanceof StoreWriteError && e.cause === cause && e.key === 'k');
      assert.equal((await f.sqlite.read('test', 'k'))?.payload, '"old"');
      // the lease was aborted, so the key is not left blocked and no new value reached the cache
      assert.notEqual((await f.cache.inner.peek('test:k'))?.kind, 'write');
      assert.equal(await f.engine.read('k'), 'old');
      assert.equal(f.engine.counters.dbFailures, 1);
      assert.equal(f.engine.counters.failures, 1);
      assert.equal(f.engine.counters.cacheFailures, 0);
    });
  }

  it('the abort fails too: the lease expires and readers use the store meanwhile', async () => {
    await setup();
    await f.engine.write('k', 'old');
    f.store.faults.next('write', throwing('before'));
    f.cache.faults.next('abortWrite', throwing('before'));
    await assert.rejects(f.engine.write('k', 'new'), StoreWriteError);
    assert.deepEqual(await f.engine.readEntry('k'), { found: true, value: 'old', version: 1, source: 'bypass' });
    f.clock.advance(LEASE_MS + 1);
    assert.equal((await f.engine.readEntry('k')).source, 'miss');
    assert.equal((await f.engine.inspect('k')).state, 'C');
  });

  it('an unknown outcome (timeout) leaves the lease: no reader fills around it until it expires', async () => {
    await setup();
    await f.engine.write('k', 'old');
    f.store.faults.next('write', { kind: 'throw', when: 'after', error: new StoreOutcomeUnknownError('timeout') });
    await assert.rejects(f.engine.write('k', 'new'), StoreOutcomeUnknownError);
    // it did commit: readers must see it, and never the cached 'old'
    assert.deepEqual(await f.engine.readEntry('k'), { found: true, value: 'new', version: 2, source: 'bypass' });
    f.clock.advance(LEASE_MS + 1);
    assert.equal(await f.engine.read('k'), 'new');
    assert.equal((await f.engine.inspect('k')).state, 'C');
  });
});

describe('Scenario 2: the cache fails after the store committed', () => {
  for (const when of ['before', 'after'] as const) {
    it(`pragmatic (option B): completeWrite fails ${when} applying; the write is acknowledged, counted, and no stale value is served`, async () => {
      await setup('pragmatic');
      await f.engine.write('k', 'old');
      f.cache.faults.next('completeWrite', throwing(when));
      const { version } = await f.engine.write('k', 'new');
      assert.equal(version, 2);
      assert.equal(f.engine.counters.cacheFailures, 1);
      assert.equal(f.engine.counters.failures, 1);
      assert.equal(await f.engine.read('k'), 'new');
      f.clock.advance(LEASE_MS + 1);
      assert.equal(await f.engine.read('k'), 'new');
      await f.engine.drainJournal();
      assert.equal((await f.engine.inspect('k')).state, 'C');
    });

    it(`strict (option A): completeWrite fails ${when} applying; E_CACHE_WRITE carries the committed version`, async () => {
      await setup('strict');
      await f.engine.write('k', 'old');
      f.cache.faults.next('completeWrite', throwing(when));
      await assert.rejects(f.engine.write('k', 'new'), (e: unknown) => e instanceof CacheWriteError && e.committedVersion === 2);
      assert.equal((await f.sqlite.read('test', 'k'))?.version, 2);
      assert.equal(await f.engine.read('k'), 'new');
    });
  }

  it('pragmatic: beginWrite fails; the write commits with a repair-journal row, which the drainer replays', async () => {
    await setup('pragmatic');
    await f.engine.write('k', 'old');
    f.cache.faults.next('beginWrite', throwing('before'));
    f.cache.faults.next('invalidateOlder', throwing('before')); // and the cache is still down right after
    const { version } = await f.engine.write('k', 'new');
    const rows = await journalRows();
    assert.deepEqual(rows.map((r) => [r.key, r.version, r.reason]), [['k', version, 'repair']]);
    // the documented pragmatic window: this instance's cache still holds the old value
    assert.equal(await f.engine.read('k'), 'old');
    assert.equal(await f.engine.drainJournal(), 1);
    assert.equal(await f.engine.read('k'), 'new');
    assert.equal(f.engine.counters.journalRepairs, 1);
    assert.equal(f.engine.counters.journaledAcks, 1, 'the documented window was used once');
    assert.match(await f.engine.metricsText(), /lockstep_write_through_journaled_acks_total\{namespace="test"\} 1/);
    assert.equal((await f.engine.metrics()).counters.write_through_journaled_acks, 1);
  });

  it('pragmatic: beginWrite fails but the cache answers again right after: invalidated at once', async () => {
    await setup('pragmatic');
    await f.engine.write('k', 'old');
    f.cache.faults.next('beginWrite', throwing('before'));
    await f.engine.write('k', 'new');
    assert.equal(await f.engine.read('k'), 'new');
  });

  it('pragmatic: beginWrite applied but reported failure; the stray lease never publishes and readers stay correct', async () => {
    await setup('pragmatic');
    await f.engine.write('k', 'old');
    f.cache.faults.next('beginWrite', throwing('after'));
    await f.engine.write('k', 'new');
    assert.equal(await f.engine.read('k'), 'new');
    f.clock.advance(LEASE_MS + 1);
    assert.equal(await f.engine.read('k'), 'new');
    assert.equal((await f.engine.inspect('k')).state, 'C');
  });

  it('strict: beginWrite fails; E_CACHE_UNAVAILABLE and nothing is written', async () => {
    await setup('strict');
    await f.engine.write('k', 'old');
    f.cache.faults.next('beginWrite', throwing('before'));
    await assert.rejects(f.engine.write('k', 'new'), CacheUnavailableError);
    assert.equal((await f.sqlite.read('test', 'k'))?.payload, '"old"');
    assert.deepEqual(await journalRows(), []);
    assert.equal(f.engine.counters.failures, 1);
  });

  it('a cache slower than half the lease counts as failing: pragmatic journals the key instead of trusting the lease', async () => {
    f = await createEngineFixture<string>({ engine: { leaseTtl: 100, clock: { now: () => performance.now() }, tombstoneTtl: 1000 } });
    f.cache.faults.next('beginWrite', { kind: 'delay', when: 'before', ms: 70 });
    await f.engine.write('slow', 'v');
    assert.equal((await journalRows()).length, 1);
    assert.equal(f.engine.counters.cacheFailures, 1);
  });
});

describe('reads fail open', () => {
  it('a cache error on get falls back to the store and is counted', async () => {
    await setup();
    await f.engine.write('k', 'v');
    f.cache.faults.next('get', throwing('before'));
    assert.deepEqual(await f.engine.readEntry('k'), { found: true, value: 'v', version: 1, source: 'store-fallback' });
    assert.equal(f.engine.counters.cacheReadFailures, 1);
  });

  it('a failed fill still answers the read; the fill lease expires and the next reader fills', async () => {
    await setup();
    await f.sqlite.write('test', 'k', '"v"', { journal: false, deadlineMs: 1000 });
    f.cache.faults.next('fill', throwing('before'));
    assert.equal(await f.engine.read('k'), 'v');
    f.clock.advance(LEASE_MS + 1);
    assert.equal((await f.engine.readEntry('k')).source, 'miss');
    assert.equal((await f.engine.readEntry('k')).source, 'hit');
  });

  it('a store error on a miss is E_STORE_READ with the cause', async () => {
    await setup();
    f.store.faults.next('read', throwing('before'));
    await assert.rejects(f.engine.read('k'), (e: unknown) => e instanceof StoreReadError && e.cause instanceof Error);
  });
});

describe('metrics and the alert', () => {
  it('the seed counters and latencies are recorded, in the snapshot and the Prometheus text alike', async () => {
    await setup();
    await f.engine.write('a', '1');
    await f.engine.read('a');
    await f.engine.read('b');
    f.store.faults.next('write', throwing('before'));
    await assert.rejects(f.engine.write('a', '2'));
    f.cache.faults.next('completeWrite', throwing('before'));
    await f.engine.write('a', '3');
    const m = await f.engine.metrics();
    assert.equal(m.counters.cache_hits, 1);
    assert.equal(m.counters.cache_misses, 1);
    assert.equal(m.counters.write_through_db_failures, 1);
    assert.equal(m.counters.write_through_cache_failures, 1);
    assert.equal(m.counters.write_through_failures, 2);
    assert.equal(m.histograms.db_write_latency?.count, 3);
    assert.equal(m.histograms.write_through_total_latency?.count, 3);
    const text = await f.engine.metricsText();
    assert.match(text, /lockstep_write_through_cache_failures_total\{namespace="test"\} 1/);
    assert.match(text, /lockstep_db_write_latency_seconds_count\{[^}]*namespace="test"[^}]*\} 3/);
  });

  it('the cache-failure rate over the threshold fires an alert event and the gauge, and clears after', async () => {
    f = await createEngineFixture<string>({ engine: { alert: { cacheFailureRate: 0.5, minSamples: 4, window: '10s' } } });
    const alerts: AlertEvent[] = [];
    f.engine.on('alert', (e) => alerts.push(e));
    await f.engine.write('a', '1');
    await f.engine.write('a', '2');
    f.cache.faults.next('completeWrite', throwing('before'), 2);
    await f.engine.write('a', '3');
    await f.engine.write('a', '4');
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]?.firing, true);
    assert.equal(alerts[0]?.rate, 0.5);
    assert.match(await f.engine.metricsText(), /lockstep_cache_failure_alert\{namespace="test"\} 1/);
    f.clock.advance(20_000);
    await f.engine.metricsText(); // a scrape moves the window on
    assert.equal(alerts.at(-1)?.firing, false);
  });
});
