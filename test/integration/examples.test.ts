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
    assert.match(out, /after delete undefined/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('examples/keyv.ts runs Keyv and cache-manager through to SQL and sees a plain-SQL update', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-example-'));
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/keyv.ts'], {
      env: { ...process.env, LOCKSTEP_EXAMPLE_DB: join(dir, 'example.db') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.match(out, /keyv get \{ name: 'Ada' \}/);
    assert.match(out, /row in SQL at version 1/);
    assert.match(out, /cache-manager get \{ name: 'Grace' \}/);
    assert.match(out, /cache-manager wrap \{ name: 'Edsger' \}/);
    assert.match(out, /after plain SQL \{ name: 'Ada Lovelace' \}/);
    assert.match(out, /state C/);
    assert.match(out, /after delete undefined/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
