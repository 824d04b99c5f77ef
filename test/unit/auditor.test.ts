// The auditor (src/audit/auditor.ts) and online consistency sampling (src/audit/sampler.ts), over
// the engine fixture: a real SQLite store and a real memory cache. D and E are made the way they
// happen in production: plain SQL that bypasses Lockstep, with the journal left undrained.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { auditNamespace, repairFence, type AuditProgress } from '../../src/audit/auditor.js';
import { createGate } from '../../src/chaos/faults.js';
import { InvalidOptionError } from '../../src/errors.js';
import type { CacheRecordView } from '../../src/types.js';
import { createEngineFixture, type EngineFixture } from '../helpers/engine-fixture.js';
import { type WriteThrough } from '../../src/compose/write-through.js';

const NS = 'test';

/** Plain SQL on a second connection: the triggers version and journal it; nothing drains the journal. */
function sql(f: EngineFixture, statement: string, ...params: unknown[]): void {
  f.rawConnection().prepare(statement).run(...params);
}

/** Makes the cache serve `version` of `key` (above anything the store committed): a restored store, say. */
async function cacheAhead(f: EngineFixture, key: string, version: number, value: unknown): Promise<void> {
  const cacheKey = `${NS}:${key}`;
  await f.cache.invalidateOlder(cacheKey, Number.MAX_SAFE_INTEGER);
  const miss = await f.cache.get(cacheKey, 5_000);
  assert.equal(miss.kind, 'miss');
  const token = (miss as { token: string | undefined }).token;
  assert.ok(token !== undefined);
  assert.equal(await f.cache.fill(cacheKey, token, { version, payload: value, tombstone: false, sizeBytes: 8 }, 60_000), true);
}

async function eventually(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('auditNamespace', () => {
  let f: EngineFixture<string>;
  beforeEach(async () => {
    f = await createEngineFixture<string>();
  });
  afterEach(() => f.close());

  /** One or more keys in every state A–E; returns the versions involved. */
  async function seedAllStates(): Promise<void> {
    // A: a tombstone over no row, and a write lease over no row.
    await f.engine.write('a-deleted', 'x');
    await f.engine.delete('a-deleted');
    await f.cache.beginWrite(`${NS}:a-leased`, 'writer-1', 60_000);
    // B: in the store, not cached.
    await f.sqlite.write(NS, 'b', JSON.stringify('store only'), { journal: false, deadlineMs: 1_000 });
    // C: written through Lockstep; one read to show it is a hit.
    await f.engine.write('c', 'synced');
    assert.equal((await f.engine.readEntry('c')).source, 'hit');
    // D (stale value): the cache holds v1, plain SQL moved the store to v2.
    await f.engine.write('d-stale', 'old');
    sql(f, `UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?`, JSON.stringify('new'), NS, 'd-stale');
    // D (tombstone over a row): deleted through Lockstep, re-created with plain SQL.
    await f.engine.write('d-tomb', 'x');
    await f.engine.delete('d-tomb');
    sql(f, `INSERT INTO lockstep_kv (namespace, key, value) VALUES (?, ?, ?)`, NS, 'd-tomb', JSON.stringify('back'));
    // D (the cache ahead of the store): a version the store never committed.
    await f.engine.write('d-ahead', 'real');
    await cacheAhead(f, 'd-ahead', 99, 'bogus');
    // E: cached through Lockstep, deleted with plain SQL.
    await f.engine.write('e', 'ghost');
    sql(f, `DELETE FROM lockstep_kv WHERE namespace = ? AND key = ?`, NS, 'e');
  }

  it('classifies every key A–E, counts them and keeps examples with both sides', async () => {
    await seedAllStates();
    // The same answers as inspect(), key by key.
    for (const [key, state] of [['a-deleted', 'A'], ['a-leased', 'A'], ['b', 'B'], ['c', 'C'], ['d-stale', 'D'], ['d-tomb', 'D'], ['d-ahead', 'D'], ['e', 'E']] as const) {
      assert.equal((await f.engine.inspect(key)).state, state, key);
    }
    const report = await auditNamespace({ store: f.store, cache: f.cache, namespace: NS });
    assert.deepEqual(report.counts, { A: 2, B: 1, C: 1, D: 3, E: 1 });
    assert.equal(report.keys, 8);
    assert.deepEqual(report.remaining, { D: 3, E: 1 });
    assert.equal(report.repair.requested, false);
    assert.equal(report.repair.attempted, 0);

    const d = new Map(report.examples.D.map((ex) => [ex.key, ex]));
    assert.deepEqual([...d.keys()].sort(), ['d-ahead', 'd-stale', 'd-tomb']);
    const stale = d.get('d-stale')!;
    assert.deepEqual(stale.store, { version: 2, payload: JSON.stringify('new') });
    assert.equal(stale.cache?.kind, 'value');
    assert.equal((stale.cache as Extract<CacheRecordView, { kind: 'value' }>).version, 1);
    assert.equal((stale.cache as Extract<CacheRecordView, { kind: 'value' }>).payload, 'old');
    assert.match(stale.description, /serves version 1, the store holds 2/);
    assert.match(d.get('d-tomb')!.description, /tombstone/);
    assert.equal((d.get('d-ahead')!.cache as Extract<CacheRecordView, { kind: 'value' }>).version, 99);
    const [e] = report.examples.E;
    assert.equal(e?.key, 'e');
    assert.equal(e?.store, null);
    assert.equal((e?.cache as Extract<CacheRecordView, { kind: 'value' }>).payload, 'ghost');
    assert.deepEqual(report.examples.B.map((ex) => ex.key), ['b']);
    assert.deepEqual(report.examples.C.map((ex) => ex.key), ['c']);
    assert.deepEqual(report.examples.A.map((ex) => ex.key).sort(), ['a-deleted', 'a-leased']);
    assert.equal(report.remainingExamples.length, 4);
  });

  it('keeps at most examplesPerState examples but counts every key; pages through the store', async () => {
    for (let i = 0; i < 9; i++) {
      await f.engine.write(`k${i}`, `v${i}`);
      sql(f, `UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?`, JSON.stringify(`w${i}`), NS, `k${i}`);
    }
    for (let i = 0; i < 4; i++) await f.sqlite.write(NS, `s${i}`, '"s"', { journal: false, deadlineMs: 1_000 });
    const progress: AuditProgress[] = [];
    const report = await auditNamespace({ store: f.store, cache: f.cache, namespace: NS, pageSize: 2, examplesPerState: 3, onProgress: (p) => progress.push(p) });
    assert.deepEqual(report.counts, { A: 0, B: 4, C: 0, D: 9, E: 0 });
    assert.equal(report.examples.D.length, 3);
    assert.equal(report.remainingExamples.length, 3);
    // The store scan reported page by page, then the cache scan, with the running total.
    const storeSteps = progress.filter((p) => p.phase === 'store').map((p) => p.scanned);
    assert.deepEqual(storeSteps, [2, 4, 6, 8, 10, 12, 13]);
    const last = progress.at(-1)!;
    assert.deepEqual(last, { namespace: NS, phase: 'cache', scanned: 13, total: 13 });
  });

  it('repair turns D and E into A, B or C, never touching A, B and C, and reports nothing remaining', async () => {
    await seedAllStates();
    const before = await f.cache.peek(`${NS}:c`);
    const progress: AuditProgress[] = [];
    const report = await auditNamespace({ store: f.store, cache: f.cache, namespace: NS, repair: true, onProgress: (p) => progress.push(p) });
    assert.deepEqual(report.counts, { A: 2, B: 1, C: 1, D: 3, E: 1 }, 'counts are as found');
    assert.deepEqual(report.remaining, { D: 0, E: 0 });
    assert.equal(report.remainingExamples.length, 0);
    assert.equal(report.repair.attempted, 4);
    assert.equal(report.repair.fixed, 4);
    const fences = Object.fromEntries(report.repair.repairs.map((r) => [r.key, [r.state, r.fence, r.after]]));
    assert.deepEqual(fences, {
      'd-stale': ['D', 2, 'B'], // fenced at the store's version: v1 goes
      'd-tomb': ['D', 3, 'B'], // the tombstone v2 under the re-created row v3
      'd-ahead': ['D', 100, 'B'], // the cache's v99 is above the store's v1: fenced above it
      e: ['E', 2, 'A'], // fenced above the cached version
    });
    // C is untouched (the same record), and every key now reads what the store holds.
    assert.deepEqual(await f.cache.peek(`${NS}:c`), before);
    assert.equal((await f.engine.readEntry('c')).source, 'hit');
    assert.equal(await f.engine.read('d-stale'), 'new');
    assert.equal(await f.engine.read('d-tomb'), 'back');
    assert.equal(await f.engine.read('d-ahead'), 'real');
    assert.equal(await f.engine.read('e'), undefined);
    for (const key of ['d-stale', 'd-tomb', 'd-ahead']) assert.equal((await f.engine.inspect(key)).state, 'C', key);
    assert.equal((await f.engine.inspect('e')).state, 'A');
    assert.ok(progress.some((p) => p.phase === 'repair' && p.total === 4 && p.scanned === 4));
    assert.ok(progress.some((p) => p.phase === 'recheck' && p.total === 4 && p.scanned === 4));
    // A second audit finds nothing to repair.
    const again = await auditNamespace({ store: f.store, cache: f.cache, namespace: NS, repair: true });
    assert.equal(again.counts.D + again.counts.E, 0);
    assert.equal(again.repair.attempted, 0);
  });

  it('repair keeps a newer version written concurrently (version fencing)', async () => {
    await f.engine.write('k', 'old');
    sql(f, `UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?`, JSON.stringify('bypass'), NS, 'k');
    // Hold the auditor's invalidation until a Lockstep write of v3 has been published.
    const gate = createGate();
    f.cache.faults.next('invalidateOlder', { kind: 'pause', when: 'before', gate });
    const audit = auditNamespace({ store: f.store, cache: f.cache, namespace: NS, repair: true });
    await gate.reached;
    const { version } = await f.engine.write('k', 'newest');
    assert.equal(version, 3);
    gate.release();
    const report = await audit;
    assert.deepEqual(report.repair.repairs.map((r) => [r.key, r.fence, r.after]), [['k', 2, 'C']]);
    assert.deepEqual(report.remaining, { D: 0, E: 0 });
    const cached = await f.cache.peek(`${NS}:k`);
    assert.equal(cached?.kind, 'value');
    assert.equal((cached as Extract<CacheRecordView, { kind: 'value' }>).version, 3);
    assert.deepEqual(await f.engine.readEntry('k'), { found: true, value: 'newest', version: 3, source: 'hit' });
  });

  it('a key that looks D in the walk but is consistent when confirmed is counted as it is', async () => {
    await f.engine.write('k', 'v1');
    sql(f, `UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?`, JSON.stringify('v2'), NS, 'k');
    // The walk's peek sees the stale v1; by the confirming read the journal has been replayed and
    // the key refilled (C).
    const gate = createGate();
    f.cache.faults.next('peek', { kind: 'pause', when: 'after', gate });
    const audit = auditNamespace({ store: f.store, cache: f.cache, namespace: NS });
    await gate.reached;
    await f.engine.drainJournal();
    assert.equal(await f.engine.read('k'), 'v2');
    gate.release();
    const report = await audit;
    assert.deepEqual(report.counts, { A: 0, B: 0, C: 1, D: 0, E: 0 });
  });

  it('reports a repair the cache refused as remaining', async () => {
    await f.engine.write('k', 'old');
    sql(f, `UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?`, JSON.stringify('new'), NS, 'k');
    f.cache.faults.next('invalidateOlder', { kind: 'throw', when: 'before' });
    const report = await auditNamespace({ store: f.store, cache: f.cache, namespace: NS, repair: true });
    assert.deepEqual(report.remaining, { D: 1, E: 0 });
    assert.equal(report.repair.fixed, 0);
    assert.match(report.repair.repairs[0]?.error ?? '', /injected fault/);
    assert.match(report.remainingExamples[0]?.description ?? '', /the repair failed/);
  });

  it('only audits its own namespace', async () => {
    const other = f.another({ namespace: 'test2', journal: false });
    await other.write('x', 'elsewhere');
    sql(f, `DELETE FROM lockstep_kv WHERE namespace = ? AND key = ?`, 'test2', 'x'); // E in test2
    await f.engine.write('c', 'here');
    const report = await auditNamespace({ store: f.store, cache: f.cache, namespace: NS });
    assert.deepEqual(report.counts, { A: 0, B: 0, C: 1, D: 0, E: 0 });
    const theirs = await auditNamespace({ store: f.store, cache: f.cache, namespace: 'test2' });
    assert.deepEqual(theirs.counts, { A: 0, B: 0, C: 0, D: 0, E: 1 });
  });
});

describe('repairFence', () => {
  const value = (version: number, tombstone = false): CacheRecordView => ({ key: 'k', kind: 'value', version, payload: 'p', tombstone, expiresAt: Infinity });
  const row = (version: number) => ({ version, payload: 'p' });
  it('fences below the store for a stale cache, above the cache when it is ahead or the key is cache only', () => {
    assert.equal(repairFence(row(5), value(3)), 5);
    assert.equal(repairFence(row(5), value(3, true)), 5);
    assert.equal(repairFence(row(5), value(9)), 10);
    assert.equal(repairFence(row(5), value(5, true)), 6);
    assert.equal(repairFence(undefined, value(4)), 5);
  });
  it('leaves consistent keys and leases alone', () => {
    assert.equal(repairFence(row(5), value(5)), undefined);
    assert.equal(repairFence(undefined, value(4, true)), undefined);
    assert.equal(repairFence(row(5), { key: 'k', kind: 'fill', expiresAt: 1 }), undefined);
    assert.equal(repairFence(row(5), undefined), undefined);
  });
});

describe('online consistency sampling', () => {
  let f: EngineFixture<string>;
  beforeEach(async () => {
    f = await createEngineFixture<string>();
  });
  afterEach(() => f.close());

  const sampled = (overrides: { rate?: number; recheckDelay?: string | number } = {}): WriteThrough<string> =>
    f.another({ journal: false, consistencySampling: { rate: overrides.rate ?? 1, recheckDelay: overrides.recheckDelay ?? 0 } });

  it('rate 1 on a healthy engine under concurrent writes, deletes and reads: checks, no violations', async () => {
    const engine = sampled();
    const keys = ['k0', 'k1'];
    for (const key of keys) await engine.write(key, 'seed');
    // Store reads answer late now and then (as over a network): a check's reads straddle writes.
    f.store.faults.always('read', { kind: 'delay', when: 'after', ms: () => (Math.random() < 0.3 ? 3 : 0) });
    let n = 0;
    // Every step yields to the event loop, so that checks run between (and during) writes.
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const writer = async (w: WriteThrough<string>) => {
      for (let i = 0; i < 150; i++) {
        const key = keys[i % keys.length]!;
        if (i % 7 === 3) await w.delete(key);
        else await w.write(key, `v${n++}`);
        await turn();
      }
    };
    const reader = async () => {
      for (let i = 0; i < 300; i++) {
        const key = keys[i % keys.length]!;
        if (i % 2 === 0) await engine.read(key);
        else await engine.readEntry(key);
        if (i % 3 === 0) await turn();
      }
    };
    await Promise.all([writer(engine), writer(f.engine), writer(f.another({ journal: false })), reader(), reader(), reader()]);
    assert.ok(engine.counters.cacheHits > 0);
    await engine.close(); // waits for the checks in flight
    assert.ok(engine.counters.consistencyChecks > 20, `checks: ${engine.counters.consistencyChecks}`);
    assert.equal(engine.counters.consistencyViolations, 0);
  });

  it('a hit on a D made by plain SQL (journal not drained) is a violation, in the counters and the metrics', async () => {
    const engine = sampled();
    await engine.write('k', 'old');
    sql(f, `UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?`, JSON.stringify('new'), NS, 'k');
    assert.equal(await engine.read('k'), 'old'); // the stale hit, served at once
    await eventually(() => engine.counters.consistencyChecks === 1, 'the check');
    assert.equal(engine.counters.consistencyViolations, 1);
    const snapshot = await engine.metrics();
    assert.equal(snapshot.counters.consistency_checks, 1);
    assert.equal(snapshot.counters.consistency_violations, 1);
    const text = await engine.metricsText();
    assert.match(text, /^lockstep_consistency_checks_total\{namespace="test"\} 1$/m);
    assert.match(text, /^lockstep_consistency_violations_total\{namespace="test"\} 1$/m);
    await engine.close();
  });

  it('a hit on an E made by plain SQL, and a cache ahead of the store, are violations', async () => {
    const engine = sampled();
    await engine.write('e', 'ghost');
    sql(f, `DELETE FROM lockstep_kv WHERE namespace = ? AND key = ?`, NS, 'e');
    assert.equal((await engine.readEntry('e')).source, 'hit');
    await engine.write('ahead', 'real');
    await cacheAhead(f, 'ahead', 50, 'bogus');
    assert.equal(await engine.read('ahead'), 'bogus');
    await engine.close();
    assert.equal(engine.counters.consistencyChecks, 2);
    assert.equal(engine.counters.consistencyViolations, 2);
  });

  it('an inconsistency the journal repairs within the recheck delay is not counted', async () => {
    const engine = sampled({ recheckDelay: '200ms' });
    await engine.write('k', 'old');
    sql(f, `UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?`, JSON.stringify('new'), NS, 'k');
    assert.equal(await engine.read('k'), 'old');
    assert.equal(await f.engine.drainJournal(), 1); // well within the delay
    await eventually(() => engine.counters.consistencyChecks === 1, 'the check');
    assert.equal(engine.counters.consistencyViolations, 0);
    await engine.close();
  });

  it('closing drops checks still waiting out their delay', async () => {
    const engine = sampled({ recheckDelay: '1h' });
    await engine.write('k', 'old');
    sql(f, `UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?`, JSON.stringify('new'), NS, 'k');
    await engine.read('k');
    await sleep(20);
    const started = Date.now();
    await engine.close();
    assert.ok(Date.now() - started < 1_000);
    assert.equal(engine.counters.consistencyChecks, 0);
  });

  it('rate 0 (the default) checks nothing', async () => {
    const engine = f.another({ journal: false });
    await engine.write('k', 'v');
    sql(f, `UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?`, JSON.stringify('new'), NS, 'k');
    for (let i = 0; i < 20; i++) await engine.read('k');
    await sleep(20);
    await engine.close();
    assert.equal(engine.counters.cacheHits, 20);
    assert.equal(engine.counters.consistencyChecks, 0);
    assert.equal(engine.counters.consistencyViolations, 0);
  });

  it('refuses a rate outside [0, 1]', () => {
    for (const rate of [-0.1, 1.5, Number.NaN]) {
      assert.throws(() => f.another({ consistencySampling: { rate } }), InvalidOptionError);
    }
  });
});
