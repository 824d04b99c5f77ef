// The broken variants the pattern races must catch (their teeth), shared by every pattern's teeth
// test: the same cases, through the same pattern, over a cache whose protocol fences are removed.
import assert from 'node:assert/strict';
import { createNaivePortCache, withoutWriteLease } from '../helpers/mutant-caches.js';
import { patternRaceCases, runPatternRaceCase, type MakePattern, type PatternFixtureOptions } from './pattern-races.js';

export const patternRaceMutants: ReadonlyArray<{ name: string; fixture: PatternFixtureOptions; fails: string[] }> = [
  // Unconditional SET / fill / DEL: every race shows its naive result.
  { name: 'a naive cache (unconditional SET and fill, plain DEL)', fixture: { wrapCache: () => createNaivePortCache() }, fails: ['a', 'b', 'c', 'd'] },
  // No write lease: a failed publish leaves the old value servable after the acknowledgement (c),
  // and a delete only invalidates, so no tombstone at the delete's version is left (d).
  { name: 'the helper without its write lease (beginWrite skipped)', fixture: { wrapCache: withoutWriteLease }, fails: ['c', 'd'] },
];

/** The races that fail (by an assertion, nothing else) through the pattern over this fixture. */
export async function failingPatternRaces(makePattern: MakePattern, fixture: PatternFixtureOptions): Promise<string[]> {
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
