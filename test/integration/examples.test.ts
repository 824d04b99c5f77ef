import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';

it('examples/basic.ts runs and prints the seed write, read and delete', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-example-'));
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/basic.ts'], {
      env: { ...process.env, LOCKSTEP_EXAMPLE_DB: join(dir, 'example.db') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.match(out, /written at version 1/);
    assert.match(out, /read \{ name: 'Ada', email: 'ada@example.com' \} from hit/);
    assert.match(out, /state C/);
    assert.match(out, /compare-and-set wrote version 2/);
    assert.match(out, /create-only refused: E_PRECONDITION_FAILED current version 2/);
    assert.match(out, /after delete undefined/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
