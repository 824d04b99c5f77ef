// The PostgreSQL entity helpers take the schema's DDL advisory lock; another session that holds it
// (a migration waiting on the table, a stuck process) made installEntityTriggers, addVersionColumn
// and dropEntityTriggers (and so an entity store's open) wait forever. The wait is bounded now, and
// the error names the session that holds the lock.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { addVersionColumn, dropEntityTriggers, installEntityTriggers } from '../../src/store/entity/postgres-entity-schema.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { resolveEntitySpec } from '../../src/store/entity/spec.js';
import { advisoryKey } from '../../src/store/postgres-schema.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);

/** The work's outcome, or 'still waiting' after `ms` (a generous bound: this is no timing assertion). */
async function within<T>(ms: number, work: Promise<T>): Promise<T | Error | 'still waiting'> {
  const settled = work.then(
    (value) => value,
    (error: Error) => error,
  );
  return Promise.race([settled, sleep(ms).then(() => 'still waiting' as const)]);
}

describe('PostgreSQL entity helpers: the DDL lock held by another session', { skip: postgres.skip }, () => {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  pool.on('error', () => undefined);
  after(() => pool.end());

  it('installEntityTriggers, addVersionColumn and dropEntityTriggers give up after their bound and name the holder; they succeed once it is released', async () => {
    const schema = `lockstep_entity_ddl_${randomBytes(4).toString('hex')}`;
    await pool.query(`CREATE SCHEMA ${schema}`);
    await pool.query(`CREATE TABLE ${schema}.items (id text PRIMARY KEY, body text)`);
    const holder = new pg.Client({ connectionString: DATABASE_URL, application_name: 'ddl-lock-holder' });
    holder.on('error', () => undefined);
    await holder.connect();
    const spec = resolveEntitySpec({ table: 'items' });
    const pending: Array<Promise<unknown>> = [];
    try {
      const { rows } = await holder.query('SELECT pg_backend_pid() AS pid');
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryKey(`lockstep:ddl:${schema}`)]);
      const attempts: Array<[string, () => Promise<unknown>]> = [
        ['addVersionColumn', () => addVersionColumn(pool, 'items', { schema, ddlLockWaitMs: 300 })],
        ['installEntityTriggers', () => installEntityTriggers(pool, schema, spec, { ddlLockWaitMs: 300 })],
        ['dropEntityTriggers', () => dropEntityTriggers(pool, schema, 'items', { ddlLockWaitMs: 300 })],
      ];
      for (const [name, attempt] of attempts) {
        const work = attempt();
        pending.push(work.catch(() => undefined));
        const outcome = await within(10_000, work);
        assert.notEqual(outcome, 'still waiting', `${name} waited for the lock past its bound`);
        assert.ok(outcome instanceof Error, `${name} failed`);
        assert.equal((outcome as Error & { code?: string }).code, 'E_STORE_WRITE', String(outcome));
        assert.match(outcome.message, new RegExp(`pid ${String(rows[0].pid)} .*ddl-lock-holder`), `${name} names the holder`);
      }
      await holder.query('ROLLBACK');
      // A wait that is not a bound (NaN would poll forever) is refused.
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
        await assert.rejects(installEntityTriggers(pool, schema, spec, { ddlLockWaitMs: bad }), (e: unknown) => (e as Error).name === 'InvalidOptionError' && /ddlLockWaitMs/.test((e as Error).message), String(bad));
      }
      await addVersionColumn(pool, 'items', { schema, ddlLockWaitMs: 300 });
      await installEntityTriggers(pool, schema, spec, { ddlLockWaitMs: 300 });
      const triggers = await pool.query(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = '${schema}.items'::regclass AND NOT tgisinternal`);
      assert.equal(triggers.rows[0].n, 6);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      await Promise.all(pending);
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  it('with its functions and triggers current, an open takes no DDL lock: it opens while another session holds it; a function replaced by hand is re-made (under the lock)', async () => {
    const schema = `lockstep_entity_ddl_${randomBytes(4).toString('hex')}`;
    await pool.query(`CREATE SCHEMA ${schema}`);
    await pool.query(`CREATE TABLE ${schema}.items (id text PRIMARY KEY, body text, version bigint NOT NULL DEFAULT 1)`);
    const spec = resolveEntitySpec({ table: 'items' });
    const holder = new pg.Client({ connectionString: DATABASE_URL, application_name: 'ddl-lock-holder' });
    holder.on('error', () => undefined);
    await holder.connect();
    const pending: Array<Promise<unknown>> = [];
    const definition = async (name: string) =>
      (await pool.query(`SELECT pg_get_functiondef('${schema}.${name}()'::regprocedure) AS def`)).rows[0].def as string;
    try {
      const first = await createPostgresEntityStore({ pool, schema, table: 'items' });
      await first.close();
      const original = await definition('lockstep_entity_after_delete');
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryKey(`lockstep:ddl:${schema}`)]);
      // A migration holds the lock: an open with everything current goes through.
      const open = createPostgresEntityStore({ pool, schema, table: 'items' });
      pending.push(open.then((store) => store.close()).catch(() => undefined));
      const opened = await within(10_000, open);
      assert.ok(!(opened instanceof Error) && opened !== 'still waiting', `the open waited for or failed on the lock: ${String(opened)}`);
      await opened.close();
      const installed = await within(10_000, installEntityTriggers(pool, schema, spec, { ddlLockWaitMs: 300 }));
      assert.equal(installed, undefined, `installEntityTriggers with everything current: ${String(installed)}`);
      // A trigger function replaced by hand no longer counts as current: the next install needs the lock...
      await pool.query(`CREATE OR REPLACE FUNCTION ${schema}.lockstep_entity_after_delete() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN RETURN NULL; END $fn$`);
      const blocked = installEntityTriggers(pool, schema, spec, { ddlLockWaitMs: 300 });
      pending.push(blocked.catch(() => undefined));
      const outcome = await within(10_000, blocked);
      assert.ok(outcome instanceof Error && (outcome as Error & { code?: string }).code === 'E_STORE_WRITE', `a hand-made function is re-made under the lock: ${String(outcome)}`);
      await holder.query('ROLLBACK');
      // ...and, once it is free, puts Lockstep's function back.
      await installEntityTriggers(pool, schema, spec, { ddlLockWaitMs: 300 });
      assert.equal(await definition('lockstep_entity_after_delete'), original);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      await Promise.all(pending);
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  });
});
