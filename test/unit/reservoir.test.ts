import assert from 'node:assert/strict';
import { it } from 'node:test';
import { LatencyReservoir } from '../../src/metrics/reservoir.js';

it('gives nearest-rank p50 and p99 over the samples held', () => {
  const r = new LatencyReservoir(1000);
  assert.deepEqual(r.quantiles(), { p50: null, p99: null, samples: 0 });
  for (let i = 100; i >= 1; i--) r.record(i);
  assert.deepEqual(r.quantiles(), { p50: 50, p99: 99, samples: 100 });
  r.record(0.5);
  assert.equal(r.quantiles().p50, 50);
});

it('keeps only the newest `capacity` samples', () => {
  const r = new LatencyReservoir(4);
  for (const ms of [1000, 1000, 1000, 1000, 1, 2, 3]) r.record(ms);
  assert.equal(r.recorded, 7);
  assert.deepEqual(r.quantiles(), { p50: 2, p99: 1000, samples: 4 });
  r.record(4);
  assert.deepEqual(r.quantiles(), { p50: 2, p99: 4, samples: 4 });
});

it('drops samples that are not latencies, and refuses a bad capacity', () => {
  const r = new LatencyReservoir(8);
  for (const ms of [undefined, -1, Number.NaN, Number.POSITIVE_INFINITY]) r.record(ms);
  assert.equal(r.recorded, 0);
  assert.throws(() => new LatencyReservoir(0), RangeError);
  assert.throws(() => new LatencyReservoir(1.5), RangeError);
});
