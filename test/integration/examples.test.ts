import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';

/** Runs an example on a fresh SQLite file and returns what it printed. */
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

it('examples/basic.ts runs and prints the seed write, read and delete', () => {
  const out = runExample('examples/basic.ts');
  assert.match(out, /written at version 1/);
  assert.match(out, /read \{ name: 'Ada', email: 'ada@example.com' \} from hit/);
  assert.match(out, /state C/);
  assert.match(out, /compare-and-set wrote version 2/);
  assert.match(out, /create-only refused: E_PRECONDITION_FAILED current version 2/);
  assert.match(out, /after delete undefined/);
});

it('examples/inline.ts writes, reads (a hit: the loader never runs) and deletes through the app\'s own table', () => {
  const out = runExample('examples/inline.ts');
  assert.match(out, /written at version 1\n/);
  assert.match(out, /read \{ id: '42', name: 'Ada', email: 'ada@example.com', version: 1 \} loader calls 0\n/);
  assert.match(out, /deleted at version 2 then read undefined loader calls 0\n/);
});

it('examples/decorator.ts: decorated writes publish, decorated reads run their body only on a miss', () => {
  const out = runExample('examples/decorator.ts');
  assert.match(out, /renamed at version 1\n/);
  assert.match(out, /find \{ id: '7', name: 'Ada', version: 1 \} method ran 0 times\n/);
  assert.match(out, /find after rename Ada Lovelace method ran 0 times\n/);
  assert.match(out, /find a user never written undefined method ran 1 times\n/);
  assert.match(out, /removed at version 3 then find undefined method ran 1 times\n/);
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

it('examples/kysely.ts runs: insert, update, a cache hit, a direct Kysely write invalidated, delete', () => {
  const out = runExample('examples/kysely.ts');
  assert.match(out, /inserted \{ id: 1, title: 'write the README', done: 0, version: 1 \}/);
  assert.match(out, /updated \{ id: 1, title: 'write the README', done: 1, version: 2 \}/);
  assert.match(out, /read from hit/);
  assert.match(out, /after a direct updateTable edited with plain Kysely/);
  assert.match(out, /after delete undefined/);
});

it('examples/typeorm.ts runs: insert, update, a cache hit, a direct TypeORM save() invalidated, delete', () => {
  const out = runExample('examples/typeorm.ts');
  assert.match(out, /inserted \{ id: 1, title: 'write the README', done: false, version: 1 \}/);
  assert.match(out, /updated \{ id: 1, title: 'write the README', done: true, version: 2 \}/);
  assert.match(out, /read from hit/);
  assert.match(out, /after a direct save\(\) edited with plain TypeORM/);
  assert.match(out, /after delete undefined/);
});
