// `npm run mutation` refuses a patch that does not match exactly once, but only when someone runs
// it; a refactor of the engine can silently leave mutants behind. This keeps every mutant's
// patches applicable on each test run, so the teeth check stays runnable.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { MUTANTS } from '../../scripts/mutation/mutants.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('mutation testing: the mutants still apply', () => {
  it('every patch of every mutant matches its file exactly once, and the ids are unique', () => {
    const ids = new Set<string>();
    for (const mutant of MUTANTS) {
      assert.ok(!ids.has(mutant.id), `duplicate mutant id ${mutant.id}`);
      ids.add(mutant.id);
      assert.ok(mutant.patches.length > 0, `${mutant.id} has no patch`);
      for (const patch of mutant.patches) {
        const text = readFileSync(ROOT + patch.file, 'utf8');
        const matches = text.split(patch.find).length - 1;
        assert.equal(matches, 1, `${mutant.id}: its patch of ${patch.file} matches ${matches} times (the code moved: re-express the mutant)`);
        assert.notEqual(patch.find, patch.replace, `${mutant.id}: a patch that changes nothing`);
      }
    }
  });
});
