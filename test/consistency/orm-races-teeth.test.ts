// Teeth for orm-races.test.ts: the same race cases, through the same Drizzle, Kysely and TypeORM
// integrations on SQLite and PostgreSQL, must FAIL when the protocol's fences are removed from the cache.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { drizzlePattern, kyselyPattern, typeormPattern } from './orm-patterns.js';
import { failingPatternRaces, patternRaceMutants } from './pattern-race-mutants.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);

for (const [dialect, skip] of [['sqlite', false], ['postgres', postgres.skip]] as const) {
  describe(`ORM pattern races have teeth on ${dialect}`, { skip }, () => {
    for (const [name, makePattern] of [
      ['Drizzle', drizzlePattern],
      ['Kysely', kyselyPattern],
      ['TypeORM', typeormPattern],
    ] as const) {
      for (const mutant of patternRaceMutants) {
        it(`${name} over ${mutant.name} fails races ${mutant.fails.join(', ')}`, async () => {
          assert.deepEqual(await failingPatternRaces(makePattern, { ...mutant.fixture, dialect }), mutant.fails);
        });
      }
    }
  });
}
