// Races a–d of consistency-protocol.md, run THROUGH a usage pattern (inline helper, decorator,
// repository, ORM, Keyv …) with the same explicit gates as races.test.ts.
//
// Contract of `makePattern(fixture)` (may be async), for a pattern under test:
//   - Build the pattern's Lockstep instance over `fixture.cache` (the ChaosCache whose fault plan
//     holds the gates), `fixture.store` (Lockstep's store: the repair journal), `fixture.clock` and a
//     lease of LEASE_MS. `fixture.engine` (namespace 'test') or `fixture.another({ namespace })`
//     gives exactly that. The failure policy must be the default, 'pragmatic'.
//   - Keep the data where the pattern keeps it (the pattern's own table, e.g. in the fixture's
//     SQLite file through `fixture.rawConnection()`, or Lockstep's store).
//   - Return a PatternUnderTest: keys are short ids ('k'), values short strings; map them onto the
//     pattern's entities as you like (e.g. key 'k' → row id 'k', value → its `name` column).
//     `write` / `read` / `delete` go through the pattern, exactly as an application would call it;
//     `seed` commits a value to the source of truth behind the cache's back (never touching the
//     cache), with a new, higher version, as a row that existed before the cache saw it;
//     `cacheKey` names the cache record the pattern uses for a key, so the cases can peek at it.
//   - Every call runs in this process; the cases hold cache steps (fill, completeWrite) at gates.
//   - The second argument names the database of the run: SQLite (a connection to the fixture's
//     file) or, with `{ dialect: 'postgres' }`, a schema of its own on the shared PostgreSQL (dropped
//     after the case), where Lockstep's store (`fixture.store`) lives too.
//
// `runPatternRaces(name, makePattern)` registers one node:test per race. `patternRaceCases` and
// `runPatternRaceCase` are the same cases as plain functions, for teeth tests that expect failures.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type Database from 'better-sqlite3';
import pg from 'pg';
import { createGate } from '../../src/chaos/faults.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { createEngineFixture, LEASE_MS, type EngineFixture, type FixtureOptions } from '../helpers/engine-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

export interface PatternUnderTest {
  write(key: string, value: string): Promise<{ readonly version: number }>;
  read(key: string): Promise<string | undefined>;
  delete(key: string): Promise<{ readonly version: number }>;
  /** Commits `value` straight to the source of truth, bypassing Lockstep and the cache. */
  seed(key: string, value: string): Promise<void>;
  cacheKey(key: string): string;
  close?(): Promise<void>;
}

export type PatternDatabase =
  | { readonly dialect: 'sqlite'; readonly database: Database.Database }
  | { readonly dialect: 'postgres'; readonly pool: pg.Pool; readonly schema: string };

export type MakePattern = (fixture: EngineFixture<unknown>, db: PatternDatabase) => PatternUnderTest | Promise<PatternUnderTest>;

export interface PatternFixtureOptions extends FixtureOptions {
  /** @default 'sqlite' */
  dialect?: 'sqlite' | 'postgres';
}

export interface PatternRaceCase {
  readonly race: 'a' | 'b' | 'c' | 'd';
  readonly title: string;
  run(p: PatternUnderTest, f: EngineFixture<unknown>): Promise<void>;
}

function pauseBefore() {
  const gate = createGate();
  return { gate, fault: { kind: 'pause', when: 'before', gate } as const };
}

/** The record must be a servable value (or tombstone) at exactly `version`. */
async function assertCached(f: EngineFixture<unknown>, cacheKey: string, version: number, tombstone: boolean): Promise<void> {
  const record = await f.cache.peek(cacheKey);
  assert.equal(record?.kind, 'value', `the cache should hold a ${tombstone ? 'tombstone' : 'value'}, it holds ${JSON.stringify(record)}`);
  if (record?.kind !== 'value') return;
  assert.equal(record.version, version);
  assert.equal(record.tombstone, tombstone);
}

export const patternRaceCases: readonly PatternRaceCase[] = [
  {
    race: 'a',
    title: 'W1 and W2 commit v1 then v2, their cache steps land v2 then v1 → the cache ends at v2',
    async run(p, f) {
      const { gate, fault } = pauseBefore();
      f.cache.faults.next('completeWrite', fault); // W1's completion is held back
      const w1 = p.write('k', 'one');
      await gate.reached;
      const w2 = await p.write('k', 'two');
      gate.release();
      const r1 = await w1;
      assert.ok(r1.version < w2.version, `versions must follow commit order (${r1.version}, ${w2.version})`);
      assert.equal(await p.read('k'), 'two');
      await assertCached(f, p.cacheKey('k'), w2.version, false);
    },
  },
  {
    race: 'b',
    title: 'a reader fills v1 after a writer committed and published v2 → the stale fill is rejected',
    async run(p, f) {
      await p.seed('k', 'one');
      const { gate, fault } = pauseBefore();
      f.cache.faults.next('fill', fault);
      const reader = p.read('k');
      await gate.reached; // the reader has loaded "one"
      const written = await p.write('k', 'two');
      gate.release();
      assert.equal(await reader, 'one'); // concurrent with the write: either answer is linearizable
      assert.equal(await p.read('k'), 'two');
      await assertCached(f, p.cacheKey('k'), written.version, false);
    },
  },
  {
    race: 'c',
    title: 'the commit succeeds, the cache step fails → the old value is not readable after the acknowledgement',
    async run(p, f) {
      await p.write('k', 'one');
      assert.equal(await p.read('k'), 'one');
      f.cache.faults.next('completeWrite', { kind: 'throw', when: 'before' });
      await p.write('k', 'two'); // acknowledged (pragmatic)
      assert.equal(await p.read('k'), 'two');
      f.clock.advance(LEASE_MS + 1); // the lease is gone: readers fill again
      assert.equal(await p.read('k'), 'two');
      assert.equal(await p.read('k'), 'two');
    },
  },
  {
    race: 'd',
    title: 'a slow fill of the pre-delete value lands after the delete → no resurrection',
    async run(p, f) {
      await p.seed('k', 'alive');
      const { gate, fault } = pauseBefore();
      f.cache.faults.next('fill', fault);
      const reader = p.read('k');
      await gate.reached;
      const deleted = await p.delete('k');
      gate.release();
      await reader;
      assert.equal(await p.read('k'), undefined);
      await assertCached(f, p.cacheKey('k'), deleted.version, true);
    },
  },
];

let schemas = 0;

/** A schema of its own on the shared PostgreSQL, with Lockstep's store in it. */
async function postgresDatabase(): Promise<{ db: PatternDatabase & { dialect: 'postgres' }; close(): Promise<void> }> {
  const schema = `lockstep_pattern_${process.pid}_${++schemas}`;
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 });
  pool.on('error', () => undefined);
  await pool.query(`CREATE SCHEMA ${schema}`);
  return {
    db: { dialect: 'postgres', pool, schema },
    async close() {
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await pool.end();
    },
  };
}

/** Runs one case on a fresh fixture; rejects with the case's assertion error. */
export async function runPatternRaceCase(raceCase: PatternRaceCase, makePattern: MakePattern, options: PatternFixtureOptions = {}): Promise<void> {
  const { dialect = 'sqlite', ...fixture } = options;
  const postgres = dialect === 'postgres' ? await postgresDatabase() : undefined;
  let f: EngineFixture<unknown> | undefined;
  let pattern: PatternUnderTest | undefined;
  const store = postgres && createPostgresStore({ pool: postgres.db.pool, schema: postgres.db.schema, notify: false });
  try {
    await store?.ready();
    f = await createEngineFixture<unknown>({ ...fixture, store: fixture.store ?? store });
    pattern = await makePattern(f, postgres?.db ?? { dialect: 'sqlite', database: f.rawConnection() });
    await raceCase.run(pattern, f);
  } finally {
    await pattern?.close?.();
    await f?.close();
    await store?.close();
    await postgres?.close();
  }
}

/** Registers races a–d through the pattern as node:test cases (skipped without PostgreSQL, unless LOCKSTEP_REQUIRE_SERVICES=1). */
export function runPatternRaces(name: string, makePattern: MakePattern, options: PatternFixtureOptions = {}): void {
  const dialect = options.dialect ?? 'sqlite';
  const available = dialect === 'postgres' ? needService('PostgreSQL', DATABASE_URL) : Promise.resolve({ skip: false as const });
  available.catch(() => undefined); // awaited (and reported) by each case
  describe(`${name} on ${dialect === 'postgres' ? 'PostgreSQL' : 'SQLite'}: races a–d`, () => {
    for (const raceCase of patternRaceCases) {
      it(`race ${raceCase.race}: ${raceCase.title}`, async (t) => {
        const { skip } = await available;
        if (skip !== false) return t.skip(skip);
        await runPatternRaceCase(raceCase, makePattern, options);
      });
    }
  });
}
