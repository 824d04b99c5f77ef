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

/** Runs an example on a fresh SQLite file; returns what it printed. */
function runExample(file: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-example-'));
  try {
    return execFileSync(process.execPath, ['--import', 'tsx', file], {
      env: { ...process.env, LOCKSTEP_EXAMPLE_DB: join(dir, 'example.db') },
      encoding: 'utf8',
      timeout: 60_000,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it('examples/repository.ts runs: save, find, a version conflict, a plain-SQL write invalidated, findMany, delete', () => {
  const out = runExample('examples/repository.ts');
  assert.match(out, /saved users:1 at version 1/);
  assert.match(out, /found \{ id: 1, name: 'Ada', email: 'ada@example.com', version: 1 \}/);
  assert.match(out, /conflict: expected 1 but the table has 2/);
  assert.match(out, /after plain SQL ada@lovelace.org version 3 > 2/);
  assert.match(out, /findMany \[ 'Ada Lovelace', 'Grace', null \]/);
  assert.match(out, /after delete undefined/);
});

it('examples/drizzle.ts runs: insert, update, a cache hit, a direct Drizzle write invalidated, delete', () => {
  const out = runExample('examples/drizzle.ts');
  assert.match(out, /inserted \{ id: 1, title: 'write the README', done: false, version: 1 \}/);
  assert.match(out, /updated \{ id: 1, title: 'write the README', done: true, version: 2 \}/);
  assert.match(out, /read from hit/);
  assert.match(out, /after a direct db.update edited with plain Drizzle/);
  assert.match(out, /after delete undefined/);
});
