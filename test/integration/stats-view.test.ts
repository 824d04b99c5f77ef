// GET /v1/stats?namespace=&window= over the real server (SQLite file, memory cache): one
// namespace's view, the zero view of a namespace without its own series (and that asking for it
// makes no engine and no series), refusals of bad input, the history window, and the audit's D
// examples and history, both bounded.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InvalidNamespaceError, InvalidOptionError } from '../../src/errors.js';
import { EXAMPLES_PER_STATE, HISTORY_RUNS } from '../../src/service/audit-runner.js';
import { STATS_SAMPLES } from '../../src/service/service.js';
import { startDashboardServer, type DashboardServer } from '../helpers/dashboard-fixture.js';

/** Waits for `ok` to hold, polling every 20 ms, for at most `ms`. */
async function until(ok: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`condition still false after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('GET /v1/stats views', () => {
  let server: DashboardServer;
  before(async () => {
    // One namespace gets its own series; the next ones count under _other.
    server = await startDashboardServer({ statsInterval: '50ms', metricsNamespaces: 1 });
  });
  after(() => server?.close());

  it('shows one namespace, and a zero view for one without a series of its own', async () => {
    for (let i = 0; i < 3; i++) await server.send('PUT', `/v1/kv/first/k${i}`, { i });
    await server.send('GET', '/v1/kv/first/k0');
    await server.send('GET', '/v1/kv/first/none');
    await server.send('PUT', '/v1/kv/second/k', 1);

    const { json: first } = await server.send('GET', '/v1/stats?namespace=first');
    assert.deepEqual(first.view, { namespace: 'first', series: 'own' });
    assert.equal(first.writes, 3);
    assert.equal(first.reads, 2);
    assert.equal(first.counters.cache_hits, 1);
    assert.equal(first.counters.cache_misses, 1);
    assert.equal(first.histograms.write_through_total_latency.count, 3);
    assert.deepEqual(first.namespaceList, ['first']);

    // Written, but beyond metricsNamespaces: its counts are in _other, so its own view is zero.
    const { json: second } = await server.send('GET', '/v1/stats?namespace=second');
    assert.deepEqual(second.view, { namespace: 'second', series: 'none' });
    assert.equal(second.writes, 0);
    assert.equal(second.hitRatio, null);

    const { json: all } = await server.send('GET', '/v1/stats');
    assert.deepEqual(all.view, { namespace: null, series: 'all' });
    assert.equal(all.writes, 4);
  });

  it('asking about unknown namespaces makes no engine and no series', async () => {
    const before = await server.service.stats();
    for (let i = 0; i < 50; i++) {
      const { json } = await server.send('GET', `/v1/stats?namespace=ghost${i}`);
      assert.equal(json.view.series, 'none');
      assert.equal(json.writes, 0);
      assert.deepEqual(json.history, []);
    }
    const afterwards = await server.service.stats();
    assert.equal(afterwards.namespaces, before.namespaces);
    assert.deepEqual(afterwards.namespaceList, before.namespaceList);
  });

  it('refuses a malformed namespace and an unknown window', async () => {
    await assert.rejects(server.service.stats({ namespace: '' }), InvalidNamespaceError);
    await assert.rejects(server.service.stats({ namespace: 'x'.repeat(65) }), InvalidNamespaceError);
    await assert.rejects(server.service.stats({ window: '2d' }), InvalidOptionError);
    await assert.rejects(server.service.stats({ window: '__proto__' }), InvalidOptionError);
    for (const query of ['namespace=_other', 'namespace=a%2Fb', 'window=10s', 'window=']) {
      const response = await fetch(`${server.url}/v1/stats?${query}`, { headers: { Authorization: `Bearer ${server.token}` } });
      assert.equal(response.status, 400, query);
    }
  });

  it('answers the samples of the window, kept bounded', async () => {
    await until(async () => (await server.service.stats({ window: '1m' })).history.length >= 5);
    const s = await server.service.stats({ window: '1m' });
    assert.equal(s.window.name, '1m');
    assert.equal(s.window.ms, 60_000);
    assert.equal(s.window.intervalMs, 50);
    assert.equal(s.window.keptMs, 50 * STATS_SAMPLES);
    assert.ok(s.history.length <= STATS_SAMPLES);
    for (const sample of s.history) assert.ok(sample.t >= s.now - 60_000 && sample.t <= s.now);
    const ts = s.history.map((sample) => sample.t);
    assert.deepEqual(ts, [...ts].sort((a, b) => a - b), 'oldest first');
    assert.equal(s.history.at(-1)!.writes, 4);
    // Its own ring for the labelled namespace.
    assert.equal((await server.service.stats({ namespace: 'first', window: '1m' })).history.at(-1)!.writes, 3);
  });

  it('keeps a few D examples per audit (versions, no payload) and the counts of the last runs', async () => {
    const drifted = EXAMPLES_PER_STATE + 2;
    for (let i = 0; i < drifted; i++) {
      await server.send('PUT', `/v1/kv/first/d${i}`, { secret: 'payload' });
      await server.injectDrift('first', `d${i}`);
    }
    const summary = await server.service.audit();
    assert.equal(summary.counts.D, drifted);
    assert.equal(summary.examples.D.length, EXAMPLES_PER_STATE);
    for (const example of summary.examples.D) {
      assert.equal(example.namespace, 'first');
      assert.equal(example.cache?.kind, 'value');
      assert.equal(example.cache!.version, example.storeVersion! + 5);
      assert.doesNotMatch(JSON.stringify(example), /payload/);
    }
    const { json: other } = await server.send('GET', '/v1/stats?namespace=second');
    assert.equal(other.audit.counts.D, 0);
    assert.deepEqual(other.audit.examples, { D: [], E: [] });

    for (let i = 0; i < HISTORY_RUNS + 5; i++) await server.service.audit();
    const s = await server.service.stats();
    assert.equal(s.auditHistory.length, HISTORY_RUNS);
    assert.equal(s.auditHistory.at(-1)!.counts.D, drifted);
    assert.equal((await server.service.stats({ namespace: 'second' })).auditHistory.at(-1)!.counts.C, 1);
  });
});
