// Teeth for pattern-races.ts: the same race cases, through the same inline helper and decorators,
// must FAIL when the protocol's fences are removed. A race suite that passes everything proves nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createNaivePortCache, withoutWriteLease } from '../helpers/mutant-caches.js';
import type { FixtureOptions } from '../helpers/engine-fixture.js';
import { decoratorPattern, inlinePattern } from './inline-decorator-patterns.js';
import { patternRaceCases, runPatternRaceCase, type MakePattern } from './pattern-races.js';

async function failingRaces(makePattern: MakePattern, fixture: FixtureOptions): Promise<string[]> {
  const failed: string[] = [];
  for (const raceCase of patternRaceCases) {
    try {
      await runPatternRaceCase(raceCase, makePattern, fixture);
    } catch (error) {
      assert.ok(error instanceof assert.AssertionError, `race ${raceCase.race} failed by ${String(error)}, not by an assertion`);
      failed.push(raceCase.race);
    }
  }
  return failed;
}

const mutants: { name: string; fixture: FixtureOptions; fails: string[] }[] = [
  // Unconditional SET / fill / DEL: every race shows its naive result.
  { name: 'a naive cache (unconditional SET and fill, plain DEL)', fixture: { wrapCache: () => createNaivePortCache() }, fails: ['a', 'b', 'c', 'd'] },
  // No write lease: a failed publish leaves the old value servable after the acknowledgement (c),
  // and a delete only invalidates, so no tombstone at the delete's version is left (d).
  { name: 'the helper without its write lease (beginWrite skipped)', fixture: { wrapCache: withoutWriteLease }, fails: ['c', 'd'] },
];

describe('pattern races have teeth', () => {
  for (const [patternName, makePattern] of [
    ['inline helper', inlinePattern],
    ['decorators', decoratorPattern],
  ] as const) {
    for (const mutant of mutants) {
      it(`${patternName} over ${mutant.name} fails races ${mutant.fails.join(', ')}`, async () => {
        assert.deepEqual(await failingRaces(makePattern, mutant.fixture), mutant.fails);
      });
    }
  }
});
