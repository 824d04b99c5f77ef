// The dashboard's history rings (src/service/stats-history.ts): bounded per ring, one ring for all
// namespaces and one per series group, windows cut by time, nulls kept as nulls.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createCounters, type EngineCounters } from '../../src/engine/events.js';
import { createStatsHistory, MAX_ANSWER_SAMPLES } from '../../src/service/stats-history.js';

function bench(capacity: number) {
  let now = 1_000_000;
  const groups: Array<{ namespace: string; counters: EngineCounters }> = [
    { namespace: 'a', counters: createCounters() },
    { namespace: '_other', counters: createCounters() },
  ];
  let p99: { read: number | null; write: number | null } = { read: null, write: null };
  const history = createStatsHistory({ groups: () => groups, p99: () => p99 }, { intervalMs: 1000, capacity, now: () => now });
  return {
    history,
    groups,
    tick(ms = 1000) {
      now += ms;
      history.sample();
    },
    setP99(value: typeof p99) {
      p99 = value;
    },
    get now() {
      return now;
    },
  };
}

describe('stats history', () => {
  it('keeps at most `capacity` samples per ring, the newest', () => {
    const b = bench(5);
    try {
      for (let i = 0; i < 12; i++) {
        b.groups[0]!.counters.writes = i;
        b.tick();
      }
      const all = b.history.window(undefined, 3_600_000);
      assert.equal(all.length, 5);
      assert.deepEqual(all.map((s) => s.writes), [7, 8, 9, 10, 11]);
      assert.equal(b.history.window('a', 3_600_000).length, 5);
      assert.equal(b.history.keptMs, 5000);
    } finally {
      b.history.stop();
    }
  });

  it('sums the groups for all namespaces, keeps each group apart, and cuts by the window', () => {
    const b = bench(100);
    try {
      for (let i = 1; i <= 10; i++) {
        const [a, other] = b.groups;
        a!.counters.cacheHits = i;
        a!.counters.cacheBypasses = 1;
        other!.counters.cacheMisses = 2 * i;
        other!.counters.dbFailures = 1;
        other!.counters.failures = 1;
        b.tick();
      }
      const last = b.history.window(undefined, 60_000).at(-1)!;
      assert.equal(last.t, b.now);
      assert.equal(last.cache_hits, 10);
      assert.equal(last.cache_misses, 20);
      assert.equal(last.reads, 10 + 1 + 20);
      assert.equal(last.write_through_db_failures, 1);
      assert.equal(last.write_through_failures, 1);
      assert.equal(b.history.window('a', 60_000).at(-1)!.cache_misses, 0);
      // The last 3.5 s hold the samples at now, now − 1 s, now − 2 s and now − 3 s.
      assert.equal(b.history.window(undefined, 3_500).length, 4);
      assert.deepEqual(b.history.window('never-seen', 60_000), []);
    } finally {
      b.history.stop();
    }
  });

  it('thins a long window to at most MAX_ANSWER_SAMPLES, keeping the newest and the counts cumulative', () => {
    const b = bench(1000);
    try {
      for (let i = 1; i <= 1000; i++) {
        b.groups[0]!.counters.writes = i;
        b.tick();
      }
      const thinned = b.history.window(undefined, 3_600_000);
      assert.ok(thinned.length <= MAX_ANSWER_SAMPLES && thinned.length >= MAX_ANSWER_SAMPLES / 2, `${thinned.length} samples`);
      assert.equal(thinned.at(-1)!.writes, 1000, 'the newest is kept');
      const steps = new Set(thinned.slice(1).map((s, i) => s.writes - thinned[i]!.writes));
      assert.deepEqual([...steps], [3], 'every third sample: 1000 / 360 rounded up');
      assert.equal(b.history.window(undefined, 100_500).length, 101, 'a short window is not thinned');
    } finally {
      b.history.stop();
    }
  });

  it('keeps a missing p99 as null and a present one as a number', () => {
    const b = bench(10);
    try {
      b.tick();
      b.setP99({ read: 0.25, write: 12 });
      b.tick();
      const [first, second] = b.history.window('a', 60_000);
      assert.equal(first!.read_p99, null);
      assert.equal(second!.read_p99, 0.25);
      assert.equal(second!.write_p99, 12);
    } finally {
      b.history.stop();
    }
  });
});
