// psql driven by a script, straight to PostgreSQL and through the proxy (twice: fills, then hits):
// the three outputs must be identical — point reads, errors, notices, COPY in and out, \x, DDL
// rolled back, a transaction, meta-commands that read the catalog.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needProgram, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const run = promisify(execFile);
const service = await needService('PostgreSQL', DATABASE_URL);
const psql = needProgram('psql', '/usr/bin/psql');

// Idempotent: every change is rolled back or made to a temp table, so three runs print the same.
const SCRIPT = String.raw`
SELECT id, val, n FROM items WHERE id = 1;
SELECT * FROM items WHERE id = 2;
SELECT * FROM items WHERE id = 2;
SELECT id FROM items WHERE id = 404;
\x on
SELECT val, price FROM items WHERE id = 3;
\x off
SELECT * FROM missing_table WHERE id = 1;
DO $$ BEGIN RAISE NOTICE 'a notice %', 42; END $$;
BEGIN;
UPDATE items SET val = 'changed' WHERE id = 1 RETURNING id, val;
SELECT val FROM items WHERE id = 1;
ROLLBACK;
SELECT val FROM items WHERE id = 1;
CREATE TEMP TABLE t (a int, b text);
COPY t FROM STDIN;
1	one
2	two
\.
COPY (SELECT * FROM t ORDER BY a) TO STDOUT WITH (FORMAT csv);
\copy t to stdout
SELECT count(*) FROM items;
\d items
`;

describe('pg-proxy with psql', { skip: service.skip || psql.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  before(async () => {
    db = await createProxyDatabase('psql', 5);
    proxy = await startTestProxy(db);
  });
  after(async () => {
    await proxy?.close(1000);
    await db?.drop();
  });

  async function runScript(url: string): Promise<string> {
    const child = run('psql', ['-X', '-q', '-d', url, '-v', 'ON_ERROR_STOP=0', '-f', '-'], { timeout: 30_000, env: { ...process.env, PGCLIENTENCODING: 'UTF8' } });
    child.child.stdin!.end(SCRIPT);
    const { stdout, stderr } = await child.catch((e: { stdout: string; stderr: string }) => e);
    return `${stdout}\n---stderr---\n${stderr.replaceAll(/psql:<stdin>:\d+: /g, '')}`;
  }

  it('prints the same through the proxy (fills and hits) as straight to PostgreSQL', async () => {
    const direct = await runScript(db.url);
    assert.match(direct, /a notice 42/);
    assert.match(direct, /relation "missing_table" does not exist/);
    const first = await runScript(proxy.url);
    const hits = proxy.metrics.hits;
    const second = await runScript(proxy.url);
    assert.equal(first, direct);
    assert.equal(second, direct);
    assert.ok(proxy.metrics.hits > hits, 'the second run was served from the cache in part');
  });
});
