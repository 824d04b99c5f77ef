// The histograms' series observer (src/metrics/series-observer.ts) must leave prom-client's series
// exactly as prom-client's own observe would: same buckets, sum and count, values on a bound, above
// every bound, and after a reset or remove replaced the series.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { seriesObserver } from '../../src/metrics/series-observer.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const VALUES = [0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 0.5, 1, 2, 1000];

function pair() {
  const registry = new Registry();
  const make = (name: string) => new Histogram<'namespace' | 'operation'>({ name, help: name, labelNames: ['namespace', 'operation'], buckets: BUCKETS, registers: [registry] });
  const reference = make('reference');
  const subject = make('subject');
  const labels = { namespace: 'ns', operation: 'write' };
  reference.zero(labels);
  subject.zero(labels);
  return { registry, reference, subject, labels, observe: seriesObserver(subject, labels) };
}

/** The series' values without the metric name, to compare two histograms. */
async function values(histogram: Histogram<'namespace' | 'operation'>) {
  return (await histogram.get()).values.map((v) => ({ labels: v.labels, value: v.value, suffix: v.metricName?.slice(v.metricName.indexOf('_')) }));
}

describe('metrics: series observer', () => {
  it('updates buckets, sum and count as prom-client observe does', async () => {
    const { reference, subject, labels, observe } = pair();
    for (const v of VALUES) {
      reference.observe(labels, v);
      observe(v);
    }
    assert.deepEqual(await values(subject), await values(reference));
    const count = (await subject.get()).values.find((v) => v.metricName === 'subject_count');
    assert.equal(count?.value, VALUES.length);
  });

  it('keeps counting after a reset or a remove replaced the series', async () => {
    const { registry, reference, subject, labels, observe } = pair();
    observe(0.5);
    reference.observe(labels, 0.5);
    registry.resetMetrics();
    observe(0.05);
    observe(0.005);
    reference.observe(labels, 0.05);
    reference.observe(labels, 0.005);
    assert.deepEqual(await values(subject), await values(reference));
    subject.remove(labels);
    reference.remove(labels);
    observe(0.0001);
    reference.observe(labels, 0.0001);
    assert.deepEqual(await values(subject), await values(reference));
    const sum = (await subject.get()).values.find((v) => v.metricName === 'subject_sum');
    assert.equal(sum?.value, 0.0001);
  });
});
