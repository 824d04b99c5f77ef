// Teeth for pattern-races.ts: the same race cases, through the same inline helper and decorators,
// must FAIL when the protocol's fences are removed. A race suite that passes everything proves nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decoratorPattern, inlinePattern } from './inline-decorator-patterns.js';
import { failingPatternRaces, patternRaceMutants } from './pattern-race-mutants.js';

describe('pattern races have teeth', () => {
  for (const [patternName, makePattern] of [
    ['inline helper', inlinePattern],
    ['decorators', decoratorPattern],
  ] as const) {
    for (const mutant of patternRaceMutants) {
      it(`${patternName} over ${mutant.name} fails races ${mutant.fails.join(', ')}`, async () => {
        assert.deepEqual(await failingPatternRaces(makePattern, mutant.fixture), mutant.fails);
      });
    }
  }
});
