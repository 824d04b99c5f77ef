// examples/kysely.ts and examples/typeorm.ts, run as a user runs them, on a fresh SQLite file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';

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
