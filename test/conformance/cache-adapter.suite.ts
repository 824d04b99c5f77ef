// The cache-adapter conformance suite: every row of the transition table in
// docs/protocol.md, written from that page (the authority), not from any
// adapter. Each adapter's test file calls runCacheAdapterSuite with a factory; the same suite runs
// against the memory adapter (manual clock) and Redis / Redis Cluster (the server's clock: `advance`
// really sleeps, so lease and TTL values stay small). Keys are unique per test, so a shared Redis
// can run it. Payloads are plain strings, valid whether or not the adapter holds decoded values.
import { itChecksTheKeyRule, STORABLE_KEYS } from './key-rule.suite.js';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type {
  CacheAdapter,
  CacheEntry,
  CacheGetResult,
  CacheRecordView,
  LeaseToken,
  ValueRecord,
  Version,
} from '../../src/types.js';

export interface CacheUnderTest {
  cache: CacheAdapter;
  /** Moves the adapter's clock forward: a manual clock for memory, a real sleep for Redis. */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export interface CacheSuiteOptions {
  /** Lease used for fills and writes that are meant to expire. @default 200 */
  leaseMs?: number;
  /** TTL of values in the TTL tests. @default 400 */
  ttlMs?: number;
}

/** A published string value. */
export function stringEntry(version: Version, payload: string): CacheEntry {
  return { version, payload, tombstone: false, sizeBytes: Buffer.byteLength(payload) };
}

/** A published delete: "not found", with the version of the delete. */
export function tombstoneEntry(version: Version): CacheEntry {
  return { version, payload: undefined, tombstone: true, sizeBytes: 0 };
}

export function runCacheAdapterSuite(
  name: string,
  open: () => Promise<CacheUnderTest>,
  options: CacheSuiteOptions = {},
): void {
  const leaseMs = options.leaseMs ?? 200;
  const ttlMs = options.ttlMs ?? 400;
  /** An advance that outlives a lease of `leaseMs` with a margin (250 ms for the default 200). */
  const pastLease = Math.ceil(leaseMs * 1.25);
  /** A lease that survives one `pastLease` advance with a wide margin. */
  const longLeaseMs = leaseMs * 5;
  /** TTL of values that must not expire during a test. */
  const longTtlMs = 60_000;
  const runId = randomUUID().slice(0, 8);
  let counter = 0;

  /** Runs `body` against a freshly opened adapter with a unique key prefix, and always closes it. */
  function test(title: string, body: (t: Ctx) => Promise<void>): void {
    it(title, async () => {
      const under = await open();
      const prefix = `lockstep-conformance:${runId}:${++counter}:`;
      try {
        await body(makeCtx(under, prefix));
      } finally {
        await under.close();
      }
    });
  }

  interface Ctx {
    cache: CacheAdapter;
    advance(ms: number): Promise<void>;
    /** A unique key for this test. */
    key(suffix?: string): string;
    /** A unique writer token. */
    writer(label?: string): LeaseToken;
    /** get → miss with token → fill: leaves a value record (state C). */
    seed(key: string, version: Version, payload: string, ttl?: number): Promise<void>;
    expectHit(key: string, version: Version, payload: string): Promise<ValueRecord>;
    expectTombstone(key: string, version: Version): Promise<ValueRecord>;
    expectMissWithToken(key: string, lease?: number): Promise<LeaseToken>;
    expectMissWithoutToken(key: string): Promise<void>;
    expectBypass(key: string): Promise<void>;
    peek(key: string): Promise<CacheRecordView | undefined>;
  }

  function makeCtx(under: CacheUnderTest, prefix: string): Ctx {
    const { cache } = under;
    let keys = 0;
    const ctx: Ctx = {
      cache,
      advance: (ms) => under.advance(ms),
      key: (suffix = '') => `${prefix}k${++keys}${suffix}`,
      writer: (label = 'w') => `${label}-${randomUUID()}`,
      async seed(key, version, payload, ttl = longTtlMs) {
        const token = await ctx.expectMissWithToken(key);
        assert.equal(await cache.fill(key, token, stringEntry(version, payload), ttl), true, `seed fill of ${key} accepted`);
      },
      async expectHit(key, version, payload) {
        const got = await cache.get(key, leaseMs);
        assertKind(got, 'value', key);
        assert.equal(got.version, version, `version of ${key}`);
        assert.equal(got.tombstone, false, `tombstone flag of ${key}`);
        assert.deepEqual(got.payload, payload, `payload of ${key}`);
        return got;
      },
      async expectTombstone(key, version) {
        const got = await cache.get(key, leaseMs);
        assertKind(got, 'value', key);
        assert.equal(got.version, version, `version of ${key}`);
        assert.equal(got.tombstone, true, `tombstone flag of ${key}`);
        return got;
      },
      async expectMissWithToken(key, lease = leaseMs) {
        const got = await cache.get(key, lease);
        assertKind(got, 'miss', key);
        assert.equal(typeof got.token, 'string', `${key}: a miss that grants the fill lease carries a token, got ${JSON.stringify(got)}`);
        assert.notEqual(got.token, '', 'the fill token is not empty');
        return got.token as LeaseToken;
      },
      async expectMissWithoutToken(key) {
        const got = await cache.get(key, leaseMs);
        assertKind(got, 'miss', key);
        assert.equal(got.token, undefined, `${key}: another reader holds the fill lease, no token expected, got ${JSON.stringify(got)}`);
      },
      async expectBypass(key) {
        const got = await cache.get(key, leaseMs);
        assertKind(got, 'bypass', key);
      },
      peek: async (key) => await cache.peek(key),
    };
    return ctx;
  }

  describe(`cache adapter conformance: ${name}`, () => {
    describe('the key rule (src/keys.ts)', () => {
      itChecksTheKeyRule();
      test('holds every key the rule accepts as a record of its own, under its own key', async (t) => {
        const base = t.key(':');
        for (const [i, key] of STORABLE_KEYS.entries()) await t.seed(base + key, i + 1, JSON.stringify(i));
        for (const [i, key] of STORABLE_KEYS.entries()) {
          await t.expectHit(base + key, i + 1, JSON.stringify(i));
          assert.equal((await t.peek(base + key))?.key, base + key, `peek of key #${i}`);
        }
      });
    });

    test('peek gives expiresAt in epoch ms (wall time), for values and leases alike', async (t) => {
      const key = t.key();
      const before = Date.now();
      await t.seed(key, 1, '"v"', longTtlMs);
      const value = await t.peek(key);
      assert.ok(value !== undefined && value.expiresAt >= before + longTtlMs - 5_000 && value.expiresAt <= Date.now() + longTtlMs + 5_000, `value expiresAt ${value?.expiresAt}`);
      const leased = t.key();
      await t.cache.beginWrite(leased, t.writer(), longLeaseMs);
      const lease = await t.peek(leased);
      assert.ok(lease !== undefined && lease.expiresAt >= before + longLeaseMs - 5_000 && lease.expiresAt <= Date.now() + longLeaseMs + 5_000, `lease expiresAt ${lease?.expiresAt}`);
    });

    // ---------------------------------------------------------------------------------------------
    describe('get', () => {
      test('get | value → hit returning version, payload and tombstone flag', async (t) => {
        const k = t.key();
        await t.seed(k, 5, 'five');
        await t.expectHit(k, 5, 'five');
        // a hit changes nothing: still served
        await t.expectHit(k, 5, 'five');
      });

      test('get | nothing → becomes fill(t): the caller gets a miss with token t', async (t) => {
        const k = t.key();
        await t.expectMissWithToken(k);
        const view = await t.peek(k);
        assert.equal(view?.kind, 'fill', `after a miss with token the record is a fill lease, got ${JSON.stringify(view)}`);
      });

      test('get | live fill of another → miss without token', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k);
        await t.expectMissWithoutToken(k);
        await t.expectMissWithoutToken(k);
        // the first reader still holds the lease
        assert.equal(await t.cache.fill(k, token, stringEntry(1, 'one'), longTtlMs), true);
        await t.expectHit(k, 1, 'one');
      });

      test('get | expired fill → becomes fill(t2): the new caller gets a new token', async (t) => {
        const k = t.key();
        const first = await t.expectMissWithToken(k);
        await t.advance(pastLease);
        const second = await t.expectMissWithToken(k);
        assert.notEqual(second, first, 'the new fill lease has a new token');
        // and it is live again for others
        await t.expectMissWithoutToken(k);
      });

      test('get | live write → bypass (read the store, do not fill)', async (t) => {
        const k = t.key();
        await t.cache.beginWrite(k, t.writer(), longLeaseMs);
        await t.expectBypass(k);
        await t.expectBypass(k);
      });

      test('get | live write on a former value → bypass, the old value is not served', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one');
        await t.cache.beginWrite(k, t.writer(), longLeaseMs);
        await t.expectBypass(k);
      });

      test('get | expired write (lone writer) → becomes fill(t): miss with token', async (t) => {
        const k = t.key();
        await t.cache.beginWrite(k, t.writer(), leaseMs);
        await t.expectBypass(k);
        await t.advance(pastLease);
        const token = await t.expectMissWithToken(k);
        await t.expectMissWithoutToken(k);
        assert.equal(await t.cache.fill(k, token, stringEntry(3, 'three'), longTtlMs), true);
        await t.expectHit(k, 3, 'three');
      });

      test('get | value whose TTL passed → becomes fill(t): miss with token', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one', ttlMs);
        await t.advance(Math.floor(ttlMs / 2));
        await t.expectHit(k, 1, 'one');
        await t.advance(ttlMs);
        await t.expectMissWithToken(k);
        await t.expectMissWithoutToken(k);
      });
    });

    // ---------------------------------------------------------------------------------------------
    describe('fill', () => {
      test('fill(t) | fill(t) → value: accepted, a later get hits', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k);
        assert.equal(await t.cache.fill(k, token, stringEntry(7, 'seven'), longTtlMs), true);
        await t.expectHit(k, 7, 'seven');
      });

      test('fill(t) | fill of another token → rejected, no change', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k);
        assert.equal(await t.cache.fill(k, `${token}-not-mine`, stringEntry(1, 'stale'), longTtlMs), false);
        assert.equal(await t.cache.fill(k, 'some-other-token', stringEntry(1, 'stale'), longTtlMs), false);
        assert.equal((await t.peek(k))?.kind, 'fill', 'the fill lease is still there');
        await t.expectMissWithoutToken(k);
        assert.equal(await t.cache.fill(k, token, stringEntry(2, 'two'), longTtlMs), true, 'the lease holder can still fill');
        await t.expectHit(k, 2, 'two');
      });

      test('fill(t) | nothing (no lease at all) → rejected, no change', async (t) => {
        const k = t.key();
        assert.equal(await t.cache.fill(k, 'never-granted', stringEntry(1, 'one'), longTtlMs), false);
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('fill(t) | value (t already filled) → rejected, the value is unchanged', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k);
        assert.equal(await t.cache.fill(k, token, stringEntry(2, 'two'), longTtlMs), true);
        assert.equal(await t.cache.fill(k, token, stringEntry(1, 'one'), longTtlMs), false);
        await t.expectHit(k, 2, 'two');
      });

      test('fill(t) | write (a beginWrite voided the fill) → rejected, no change (race b)', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k); // the reader read v1 from the store
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        assert.equal(await t.cache.fill(k, token, stringEntry(1, 'old'), longTtlMs), false, 'the fill lost to the write');
        await t.expectBypass(k);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(2, 'new'), longTtlMs), 'published');
        assert.equal(await t.cache.fill(k, token, stringEntry(1, 'old'), longTtlMs), false, 'a late fill cannot overwrite the write');
        await t.expectHit(k, 2, 'new');
      });

      test('fill(t) | after invalidateOlder voided the fill → rejected, nothing left', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k);
        await t.cache.invalidateOlder(k, 9);
        assert.equal(await t.cache.fill(k, token, stringEntry(8, 'eight'), longTtlMs), false);
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('fill(t) | the fill lease expired and another reader took it → rejected, the new holder fills', async (t) => {
        const k = t.key();
        const first = await t.expectMissWithToken(k);
        await t.advance(pastLease);
        const second = await t.expectMissWithToken(k);
        assert.equal(await t.cache.fill(k, first, stringEntry(1, 'slow'), longTtlMs), false, 'the expired holder is rejected');
        await t.expectMissWithoutToken(k);
        assert.equal(await t.cache.fill(k, second, stringEntry(2, 'fresh'), longTtlMs), true);
        await t.expectHit(k, 2, 'fresh');
      });

      test('fill(t) | tombstone after a delete (race d) → the slow fill of the pre-delete value is rejected', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k); // read v1 before the delete
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, w, tombstoneEntry(2), longTtlMs), 'published');
        assert.equal(await t.cache.fill(k, token, stringEntry(1, 'resurrected'), longTtlMs), false);
        await t.expectTombstone(k, 2);
      });
    });

    // ---------------------------------------------------------------------------------------------
    describe('beginWrite', () => {
      test('beginWrite(w) | nothing → write holding w', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        const view = await t.peek(k);
        assert.equal(view?.kind, 'write', JSON.stringify(view));
        assert.equal(view.writers, 1);
        assert.equal(view.dirty, false);
        await t.expectBypass(k);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(1, 'one'), longTtlMs), 'published');
        await t.expectHit(k, 1, 'one');
      });

      test('beginWrite(w) | value v5 → write keeping maxVersion 5; completing v6 publishes v6', async (t) => {
        const k = t.key();
        await t.seed(k, 5, 'five');
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        const view = await t.peek(k);
        assert.equal(view?.kind, 'write', JSON.stringify(view));
        assert.equal(view.writers, 1);
        assert.equal(view.maxVersion, 5, 'beginWrite keeps the highest version seen');
        await t.expectBypass(k);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(6, 'six'), longTtlMs), 'published');
        await t.expectHit(k, 6, 'six');
      });

      test('beginWrite(w) | fill → write: the fill is voided, the pending fill is rejected', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k);
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        assert.equal((await t.peek(k))?.kind, 'write');
        await t.expectBypass(k);
        assert.equal(await t.cache.fill(k, token, stringEntry(1, 'one'), longTtlMs), false);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(2, 'two'), longTtlMs), 'published');
        await t.expectHit(k, 2, 'two');
      });

      test('beginWrite(w2) | write holding w1 → write holding w1 and w2', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, longLeaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        const view = await t.peek(k);
        assert.equal(view?.kind, 'write', JSON.stringify(view));
        assert.equal(view.writers, 2);
        assert.equal(await t.cache.completeWrite(k, w1, stringEntry(1, 'one'), longTtlMs), 'pending');
        await t.expectBypass(k);
        assert.equal(await t.cache.completeWrite(k, w2, stringEntry(2, 'two'), longTtlMs), 'published');
        await t.expectHit(k, 2, 'two');
      });
    });

    // ---------------------------------------------------------------------------------------------
    describe('completeWrite with a lease', () => {
      test('completeWrite(w) | write holding only w → published: the value is served', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(4, 'four'), longTtlMs), 'published');
        await t.expectHit(k, 4, 'four');
        const view = await t.peek(k);
        assert.equal(view?.kind, 'value');
        assert.equal(view.version, 4);
      });

      test('completeWrite(w1) | write holding w1 and w2 → pending, readers still bypass', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, longLeaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, w1, stringEntry(1, 'one'), longTtlMs), 'pending');
        await t.expectBypass(k);
        const view = await t.peek(k);
        assert.equal(view?.kind, 'write', JSON.stringify(view));
        assert.equal(view.writers, 1);
        assert.equal(view.maxVersion, 1);
      });

      test('completeWrite out of order (v2 completes first, then v1) → the record ends at v2 (race a)', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, longLeaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        // the store committed w1 as v1, then w2 as v2; the cache hears v2 first
        assert.equal(await t.cache.completeWrite(k, w2, stringEntry(2, 'two'), longTtlMs), 'pending');
        assert.equal(await t.cache.completeWrite(k, w1, stringEntry(1, 'one'), longTtlMs), 'published');
        await t.expectHit(k, 2, 'two');
      });

      test('completeWrite in order (v1 then v2) → the record ends at v2', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, longLeaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, w1, stringEntry(1, 'one'), longTtlMs), 'pending');
        assert.equal(await t.cache.completeWrite(k, w2, stringEntry(2, 'two'), longTtlMs), 'published');
        await t.expectHit(k, 2, 'two');
      });

      test('completeWrite(w) | dirty write (invalidateOlder with a higher version) → cleared, nothing left', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        await t.cache.invalidateOlder(k, 5); // a bypass write committed v5
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(3, 'three'), longTtlMs), 'cleared');
        assert.equal(await t.peek(k), undefined, 'nothing left');
        await t.expectMissWithToken(k);
      });

      test('completeWrite(w) | dirty write, even when w completes a higher version → cleared', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        await t.cache.invalidateOlder(k, 5);
        assert.equal((await t.peek(k))?.kind, 'write');
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(6, 'six'), longTtlMs), 'cleared');
        assert.equal(await t.peek(k), undefined, 'nothing left');
        await t.expectMissWithToken(k);
      });

      test('completeWrite with a tombstone → get returns a value record with tombstone true', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one');
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, w, tombstoneEntry(2), longTtlMs), 'published');
        await t.expectTombstone(k, 2);
        const view = await t.peek(k);
        assert.equal(view?.kind, 'value');
        assert.equal(view.tombstone, true);
        assert.equal(view.version, 2);
      });

      test('completeWrite out of order with a delete (tombstone v2 first, then v1) → tombstone v2', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, longLeaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, w2, tombstoneEntry(2), longTtlMs), 'pending');
        assert.equal(await t.cache.completeWrite(k, w1, stringEntry(1, 'one'), longTtlMs), 'published');
        await t.expectTombstone(k, 2);
      });
    });

    // ---------------------------------------------------------------------------------------------
    describe('completeWrite without a lease → fenced: never publishes, acts as invalidateOlder', () => {
      test('completeWrite(w) | nothing (no beginWrite) → fenced, nothing published', async (t) => {
        const k = t.key();
        assert.equal(await t.cache.completeWrite(k, t.writer(), stringEntry(3, 'three'), longTtlMs), 'fenced');
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('completeWrite(w) | older value (no beginWrite) → fenced, the older value is removed', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one');
        assert.equal(await t.cache.completeWrite(k, t.writer(), stringEntry(2, 'two'), longTtlMs), 'fenced');
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('completeWrite(w) | newer value (no beginWrite) → fenced, the newer value is kept', async (t) => {
        const k = t.key();
        await t.seed(k, 3, 'three');
        assert.equal(await t.cache.completeWrite(k, t.writer(), stringEntry(2, 'two'), longTtlMs), 'fenced');
        await t.expectHit(k, 3, 'three');
      });

      test('completeWrite(w) | equal value (no beginWrite) → fenced, the value is kept', async (t) => {
        const k = t.key();
        await t.seed(k, 3, 'three');
        assert.equal(await t.cache.completeWrite(k, t.writer(), stringEntry(3, 'three'), longTtlMs), 'fenced');
        await t.expectHit(k, 3, 'three');
      });

      test('completeWrite(w) | fill of a reader (no beginWrite) → fenced, the fill is voided', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k);
        assert.equal(await t.cache.completeWrite(k, t.writer(), stringEntry(2, 'two'), longTtlMs), 'fenced');
        assert.equal(await t.cache.fill(k, token, stringEntry(1, 'one'), longTtlMs), false);
        await t.expectMissWithToken(k);
      });

      test('completeWrite(w) | write of other writers with a lower maxVersion → fenced, the record is dirty (their completion clears)', async (t) => {
        const k = t.key();
        const other = t.writer('other');
        await t.cache.beginWrite(k, other, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, t.writer('unleased'), stringEntry(2, 'two'), longTtlMs), 'fenced');
        const view = await t.peek(k);
        assert.equal(view?.kind, 'write', JSON.stringify(view));
        assert.equal(view.dirty, true);
        assert.equal(view.writers, 1, 'the fenced writer was not added');
        assert.equal(await t.cache.completeWrite(k, other, stringEntry(1, 'one'), longTtlMs), 'cleared');
        await t.expectMissWithToken(k);
      });

      test('completeWrite(w) | after its own write lease expired (lone writer) → fenced, nothing published', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, leaseMs);
        await t.advance(pastLease);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(2, 'two'), longTtlMs), 'fenced');
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('completeWrite(w) | after its lease expired and a reader filled an older value → fenced, the older value is removed', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one');
        const w = t.writer();
        await t.cache.beginWrite(k, w, leaseMs);
        await t.advance(pastLease);
        // readers stop bypassing; one refills v1 (w's commit of v2 is not yet visible to it)
        await t.seed(k, 1, 'one');
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(2, 'two'), longTtlMs), 'fenced');
        assert.equal(await t.peek(k), undefined, 'v1 removed');
        await t.expectMissWithToken(k);
      });

      test('completeWrite(w) | after its lease expired and a newer value was filled → fenced, the newer value is kept', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, leaseMs);
        await t.advance(pastLease);
        await t.seed(k, 3, 'three');
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(2, 'two'), longTtlMs), 'fenced');
        await t.expectHit(k, 3, 'three');
      });

      test('completeWrite(w) | after its lease expired while another writer holds the record → fenced, the survivor clears', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, leaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        await t.advance(pastLease);
        assert.equal(await t.cache.completeWrite(k, w1, stringEntry(2, 'two'), longTtlMs), 'fenced');
        await t.expectBypass(k);
        assert.equal(await t.cache.completeWrite(k, w2, stringEntry(1, 'one'), longTtlMs), 'cleared');
        await t.expectMissWithToken(k);
      });

      test('completeWrite(w) twice → the second completion is fenced and publishes nothing', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(2, 'two'), longTtlMs), 'published');
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(1, 'one'), longTtlMs), 'fenced');
        await t.expectHit(k, 2, 'two');
      });
    });

    // ---------------------------------------------------------------------------------------------
    describe('abortWrite', () => {
      test('abortWrite(w) | write holding only w → nothing', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        await t.cache.abortWrite(k, w);
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('abortWrite(w) | write holding only w, begun on a value → nothing (the old value is not restored)', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one');
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        await t.cache.abortWrite(k, w);
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('abortWrite(w1) | write holding w1 and w2 → w2 still holds it; its completion publishes', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, longLeaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        await t.cache.abortWrite(k, w1);
        await t.expectBypass(k);
        const view = await t.peek(k);
        assert.equal(view?.kind, 'write', JSON.stringify(view));
        assert.equal(view.writers, 1);
        assert.equal(view.dirty, false, 'a clean abort does not make the record dirty');
        assert.equal(await t.cache.completeWrite(k, w2, stringEntry(2, 'two'), longTtlMs), 'published');
        await t.expectHit(k, 2, 'two');
      });

      test('abortWrite(w1) | last writer of a dirty record after w2 completed → nothing: w2\'s value is not published', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        const w3 = t.writer('w3');
        await t.cache.beginWrite(k, w1, longLeaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        await t.cache.beginWrite(k, w3, leaseMs);
        await t.advance(pastLease); // w3's outcome is unknown (it may have committed v3): dirty
        assert.equal(await t.cache.completeWrite(k, w2, stringEntry(2, 'two'), longTtlMs), 'pending');
        await t.cache.abortWrite(k, w1);
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('abortWrite(w) | anything else (w holds no lease) → no change', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one');
        await t.cache.abortWrite(k, t.writer());
        await t.expectHit(k, 1, 'one');
        const k2 = t.key();
        await t.cache.abortWrite(k2, t.writer());
        assert.equal(await t.peek(k2), undefined);
      });
    });

    // ---------------------------------------------------------------------------------------------
    describe('lease of w expires', () => {
      test('lease of w1 expires | write holding w1 and w2 → dirty: the survivor w2 does not publish (cleared)', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, leaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        await t.advance(pastLease);
        // w2 is still alive: readers keep bypassing
        await t.expectBypass(k);
        // w1's outcome is unknown (it may have committed v3): w2 must not publish v2
        assert.equal(await t.cache.completeWrite(k, w2, stringEntry(2, 'two'), longTtlMs), 'cleared');
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('lease of w1 expires | write holding w1 and w2, observed by peek → dirty with one writer', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, leaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        await t.advance(pastLease);
        await t.expectBypass(k);
        const view = await t.peek(k);
        assert.equal(view?.kind, 'write', JSON.stringify(view));
        assert.equal(view.writers, 1);
        assert.equal(view.dirty, true);
      });

      test('lease of w1 expires | survivor w2 completes a higher version → still cleared', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, leaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        await t.advance(pastLease);
        assert.equal(await t.cache.completeWrite(k, w2, stringEntry(9, 'nine'), longTtlMs), 'cleared');
        await t.expectMissWithToken(k);
      });

      test('lease of w1 expires | then w2 aborts → nothing', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, leaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        await t.advance(pastLease);
        await t.cache.abortWrite(k, w2);
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('lease of w expires | write holding only w → nothing: the next get is a miss with token', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one');
        const w = t.writer();
        await t.cache.beginWrite(k, w, leaseMs);
        await t.advance(pastLease);
        await t.expectMissWithToken(k);
      });

      test('lease of w1 expires | after w2 completed its write → nothing: w2\'s value is not published', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one');
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, leaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, w2, stringEntry(2, 'two'), longTtlMs), 'pending');
        await t.advance(pastLease);
        // w1 was the last writer and its outcome is unknown (it may have committed v3): neither w2's
        // v2 nor the value the record was begun on may come back, whichever call sees the expiry first
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('lease of w expires | every writer expired → nothing', async (t) => {
        const k = t.key();
        await t.cache.beginWrite(k, t.writer('w1'), leaseMs);
        await t.cache.beginWrite(k, t.writer('w2'), leaseMs);
        await t.advance(pastLease);
        assert.equal(await t.peek(k), undefined, 'peek does not show an expired lease');
        await t.expectMissWithToken(k);
      });
    });

    // ---------------------------------------------------------------------------------------------
    describe('invalidateOlder', () => {
      test('invalidateOlder(v) | value older than v → nothing', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one');
        await t.cache.invalidateOlder(k, 2);
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('invalidateOlder(v) | tombstone older than v → nothing', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, w, tombstoneEntry(1), longTtlMs), 'published');
        await t.cache.invalidateOlder(k, 2);
        await t.expectMissWithToken(k);
      });

      test('invalidateOlder(v) | value equal to v → kept', async (t) => {
        const k = t.key();
        await t.seed(k, 2, 'two');
        await t.cache.invalidateOlder(k, 2);
        await t.expectHit(k, 2, 'two');
      });

      test('invalidateOlder(v) | value newer than v → kept', async (t) => {
        const k = t.key();
        await t.seed(k, 3, 'three');
        await t.cache.invalidateOlder(k, 2);
        await t.expectHit(k, 3, 'three');
      });

      test('invalidateOlder(v) | fill → nothing (the fill is voided)', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k);
        await t.cache.invalidateOlder(k, 1);
        assert.equal(await t.peek(k), undefined);
        assert.equal(await t.cache.fill(k, token, stringEntry(1, 'one'), longTtlMs), false);
        await t.expectMissWithToken(k);
      });

      test('invalidateOlder(v) | write with maxVersion < v → dirty: its completion clears', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one');
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        await t.cache.invalidateOlder(k, 3);
        const view = await t.peek(k);
        assert.equal(view?.kind, 'write', JSON.stringify(view));
        assert.equal(view.dirty, true);
        await t.expectBypass(k);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(2, 'two'), longTtlMs), 'cleared');
        await t.expectMissWithToken(k);
      });

      test('invalidateOlder(v) | write with maxVersion = v (begun on value v5) → unchanged', async (t) => {
        const k = t.key();
        await t.seed(k, 5, 'five');
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        await t.cache.invalidateOlder(k, 5);
        const view = await t.peek(k);
        assert.equal(view?.kind, 'write', JSON.stringify(view));
        assert.equal(view.dirty, false);
        assert.equal(view.writers, 1);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(6, 'six'), longTtlMs), 'published');
        await t.expectHit(k, 6, 'six');
      });

      test('invalidateOlder(v) | write with maxVersion > v (a pending completion of v5) → unchanged', async (t) => {
        const k = t.key();
        const w1 = t.writer('w1');
        const w2 = t.writer('w2');
        await t.cache.beginWrite(k, w1, longLeaseMs);
        await t.cache.beginWrite(k, w2, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, w2, stringEntry(5, 'five'), longTtlMs), 'pending');
        await t.cache.invalidateOlder(k, 4);
        await t.cache.invalidateOlder(k, 5);
        const view = await t.peek(k);
        assert.equal(view?.kind, 'write', JSON.stringify(view));
        assert.equal(view.dirty, false);
        assert.equal(view.maxVersion, 5);
        assert.equal(await t.cache.completeWrite(k, w1, stringEntry(3, 'three'), longTtlMs), 'published');
        await t.expectHit(k, 5, 'five');
      });

      test('invalidateOlder(v) | nothing → nothing', async (t) => {
        const k = t.key();
        await t.cache.invalidateOlder(k, 1);
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });
    });

    // ---------------------------------------------------------------------------------------------
    describe('tombstones', () => {
      test('completeWrite with tombstone=true → get returns a value record with tombstone true', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        assert.equal(await t.cache.completeWrite(k, w, tombstoneEntry(4), longTtlMs), 'published');
        await t.expectTombstone(k, 4);
      });

      test('fill with tombstone=true → get returns a value record with tombstone true', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k);
        assert.equal(await t.cache.fill(k, token, tombstoneEntry(3), longTtlMs), true);
        await t.expectTombstone(k, 3);
      });

      test('a tombstone is replaced by a later write (re-create after delete)', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k);
        assert.equal(await t.cache.fill(k, token, tombstoneEntry(3), longTtlMs), true);
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        await t.expectBypass(k);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(4, 'again'), longTtlMs), 'published');
        await t.expectHit(k, 4, 'again');
      });
    });

    // ---------------------------------------------------------------------------------------------
    describe('TTL', () => {
      test('a filled value expires after its ttl → miss with token', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k);
        assert.equal(await t.cache.fill(k, token, stringEntry(1, 'one'), ttlMs), true);
        await t.advance(Math.floor(ttlMs / 2));
        await t.expectHit(k, 1, 'one');
        await t.advance(ttlMs);
        await t.expectMissWithToken(k);
      });

      test('a published value expires after its ttl → miss with token', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, leaseMs);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(1, 'one'), ttlMs), 'published');
        await t.advance(Math.floor(ttlMs / 2));
        await t.expectHit(k, 1, 'one');
        await t.advance(ttlMs);
        await t.expectMissWithToken(k);
      });

      test('a tombstone expires after its ttl → miss with token', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, leaseMs);
        assert.equal(await t.cache.completeWrite(k, w, tombstoneEntry(1), ttlMs), 'published');
        await t.advance(Math.floor(ttlMs / 2));
        await t.expectTombstone(k, 1);
        await t.advance(ttlMs);
        await t.expectMissWithToken(k);
      });

      test('leases are independent of value TTL: a value outlives the fill lease it was filled under', async (t) => {
        const k = t.key();
        const token = await t.expectMissWithToken(k, leaseMs);
        assert.equal(await t.cache.fill(k, token, stringEntry(1, 'one'), longTtlMs), true);
        await t.advance(pastLease);
        await t.expectHit(k, 1, 'one');
      });

      test('leases are independent of value TTL: a value outlives the write lease it was published under', async (t) => {
        const k = t.key();
        const w = t.writer();
        await t.cache.beginWrite(k, w, leaseMs);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(1, 'one'), longTtlMs), 'published');
        await t.advance(pastLease);
        await t.expectHit(k, 1, 'one');
      });

      test('leases are independent of value TTL: a write lease outlives the TTL of the value it replaced', async (t) => {
        const k = t.key();
        await t.seed(k, 1, 'one', leaseMs);
        const w = t.writer();
        await t.cache.beginWrite(k, w, longLeaseMs);
        await t.advance(pastLease); // the old value's TTL has passed, the write lease has not
        await t.expectBypass(k);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(2, 'two'), longTtlMs), 'published');
        await t.expectHit(k, 2, 'two');
      });
    });

    // ---------------------------------------------------------------------------------------------
    describe('peek and scan', () => {
      test('peek | nothing → undefined, and creates no lease (a get after peek gets the token)', async (t) => {
        const k = t.key();
        assert.equal(await t.peek(k), undefined);
        assert.equal(await t.peek(k), undefined);
        await t.expectMissWithToken(k);
      });

      test('peek | value → the record view (key, version, payload, tombstone, expiresAt)', async (t) => {
        const k = t.key();
        await t.seed(k, 2, 'two');
        const view = await t.peek(k);
        assert.equal(view?.kind, 'value', JSON.stringify(view));
        assert.equal(view.key, k);
        assert.equal(view.version, 2);
        assert.deepEqual(view.payload, 'two');
        assert.equal(view.tombstone, false);
        assert.equal(typeof view.expiresAt, 'number');
        assert.ok(Number.isFinite(view.expiresAt), 'expiresAt is finite');
      });

      test('peek | fill and write → their views, without changing them', async (t) => {
        const kf = t.key('fill');
        const token = await t.expectMissWithToken(kf);
        const fillView = await t.peek(kf);
        assert.equal(fillView?.kind, 'fill', JSON.stringify(fillView));
        assert.equal(fillView.key, kf);
        assert.equal(typeof fillView.expiresAt, 'number');
        assert.equal(await t.cache.fill(kf, token, stringEntry(1, 'one'), longTtlMs), true, 'peek left the fill lease to its holder');

        const kw = t.key('write');
        const w = t.writer();
        await t.cache.beginWrite(kw, w, longLeaseMs);
        const writeView = await t.peek(kw);
        assert.equal(writeView?.kind, 'write', JSON.stringify(writeView));
        assert.equal(writeView.key, kw);
        assert.equal(writeView.writers, 1);
        assert.equal(writeView.dirty, false);
        assert.equal(typeof writeView.expiresAt, 'number');
        assert.equal(await t.cache.completeWrite(kw, w, stringEntry(1, 'one'), longTtlMs), 'published');
      });

      test('scan(prefix) → the records under the prefix (values, tombstones and leases) and no others', async (t) => {
        const base = t.key();
        const prefix = `${base}:in:`;
        await t.seed(`${prefix}a`, 1, 'a');
        const tw = t.writer();
        await t.cache.beginWrite(`${prefix}b`, tw, longLeaseMs);
        await t.cache.completeWrite(`${prefix}b`, tw, tombstoneEntry(2), longTtlMs);
        await t.expectMissWithToken(`${prefix}c`);
        await t.cache.beginWrite(`${prefix}d`, t.writer(), longLeaseMs);
        await t.seed(`${base}:out:a`, 1, 'outside');
        await t.seed(`${base}:i`, 1, 'shorter than the prefix');
        await t.seed(`${base}:out:${prefix}x`, 1, 'contains the prefix, does not start with it');

        const seen = new Map<string, CacheRecordView>();
        for await (const view of t.cache.scan(prefix)) {
          assert.ok(!seen.has(view.key), `scan yields ${view.key} once`);
          seen.set(view.key, view);
        }
        assert.deepEqual([...seen.keys()].sort(), [`${prefix}a`, `${prefix}b`, `${prefix}c`, `${prefix}d`]);
        const a = seen.get(`${prefix}a`);
        assert.equal(a?.kind, 'value');
        assert.equal(a.version, 1);
        assert.deepEqual(a.payload, 'a');
        const b = seen.get(`${prefix}b`);
        assert.equal(b?.kind, 'value');
        assert.equal(b.tombstone, true);
        assert.equal(seen.get(`${prefix}c`)?.kind, 'fill');
        assert.equal(seen.get(`${prefix}d`)?.kind, 'write');
      });

      test('scan(prefix) treats the prefix literally (glob characters are not patterns)', async (t) => {
        const base = t.key();
        await t.seed(`${base}:a*b?[c]:1`, 1, 'literal');
        await t.seed(`${base}:aXXbY[c]:2`, 1, 'glob match');
        await t.seed(`${base}:a*b?c:3`, 1, 'class match');
        const keys: string[] = [];
        for await (const view of t.cache.scan(`${base}:a*b?[c]:`)) keys.push(view.key);
        assert.deepEqual(keys, [`${base}:a*b?[c]:1`]);
      });

      test('scan(prefix) of an unused prefix → nothing', async (t) => {
        const keys: string[] = [];
        for await (const view of t.cache.scan(t.key(':unused:'))) keys.push(view.key);
        assert.deepEqual(keys, []);
      });
    });

    // ---------------------------------------------------------------------------------------------
    describe('ping and stats', () => {
      test('ping resolves', async (t) => {
        await t.cache.ping();
      });

      test('capabilities.decodedValues is a boolean and name is a non-empty string', async (t) => {
        assert.equal(typeof t.cache.capabilities.decodedValues, 'boolean');
        assert.equal(typeof t.cache.name, 'string');
        assert.notEqual(t.cache.name, '');
      });

      test('stats().leasesExpired increases when an expired fill lease is observed', async (t) => {
        const k = t.key();
        const before = t.cache.stats().leasesExpired;
        await t.expectMissWithToken(k);
        await t.advance(pastLease);
        await t.expectMissWithToken(k);
        assert.ok(t.cache.stats().leasesExpired > before, `leasesExpired ${before} → ${t.cache.stats().leasesExpired}`);
      });

      test('stats().leasesExpired increases when an expired write lease is observed', async (t) => {
        const k = t.key();
        const before = t.cache.stats().leasesExpired;
        await t.cache.beginWrite(k, t.writer(), leaseMs);
        await t.advance(pastLease);
        await t.expectMissWithToken(k);
        assert.ok(t.cache.stats().leasesExpired > before, `leasesExpired ${before} → ${t.cache.stats().leasesExpired}`);
      });

      test('stats().leasesExpired does not move for leases that finish in time', async (t) => {
        const k = t.key();
        const before = t.cache.stats().leasesExpired;
        await t.seed(k, 1, 'one');
        const w = t.writer();
        await t.cache.beginWrite(k, w, leaseMs);
        assert.equal(await t.cache.completeWrite(k, w, stringEntry(2, 'two'), longTtlMs), 'published');
        await t.advance(pastLease);
        await t.expectHit(k, 2, 'two');
        assert.equal(t.cache.stats().leasesExpired, before);
      });
    });
  });
}

function assertKind<K extends CacheGetResult['kind']>(
  got: CacheGetResult,
  kind: K,
  key: string,
): asserts got is Extract<CacheGetResult, { kind: K }> {
  assert.equal(got?.kind, kind, `get(${key}): expected ${kind}, got ${JSON.stringify(got)}`);
}
