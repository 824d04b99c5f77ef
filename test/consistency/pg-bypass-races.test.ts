// Lockstep writes and deletes racing plain SQL (UPDATE, upsert, DELETE, multi-row UPDATE, rename
// back and forth; READ COMMITTED and REPEATABLE READ, retried on a serialization failure) on a few
// keys of one PostgreSQL schema, with readers filling a real memory cache all along. Afterwards,
// once the drainer has passed: every read answers the store's row, and no (key, version) was ever
// committed with two different outcomes (versions never reused, so never gone back).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
admin.on('error', () => undefined);
after(() => admin.end());

const KEYS = ['k0', 'k1', 'k2', 'k3'];
const ROUNDS = Number(process.env.PG_BYPASS_RACE_ROUNDS ?? 60);

/** A small deterministic generator, so a failure can be replayed by its seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => ((x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32;
}

describe('Lockstep and plain SQL racing on PostgreSQL keys', { skip: service.skip }, () => {
  for (const seed of [1, 2]) {
    it(`seed ${seed}: reads answer the store after the drain; no (key, version) committed twice`, async () => {
      const schema = `lockstep_test_${randomBytes(6).toString('hex')}`;
      const kv = `"${schema}".lockstep_kv`;
      const store = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 6 });
      const engine = createWriteThrough<string>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'ns', journal: { pollInterval: '20ms' }, metrics: false });
      const clients: pg.Client[] = [];
      /** (key, version) → the value committed at it ('<absent>' for a delete). */
      const outcomes = new Map<string, string>();
      const record = (key: string, version: number, value: string) => {
        const id = `${key}@${version}`;
        const seen = outcomes.get(id);
        assert.ok(seen === undefined || seen === value, `${id} committed as ${seen} and as ${value}`);
        outcomes.set(id, value);
      };
      try {
        await store.ready();
        for (const key of KEYS) record(key, (await engine.write(key, `init-${key}`)).version, JSON.stringify(`init-${key}`));
        const lockstep = async (w: number) => {
          const r = rng(seed * 100 + w);
          for (let i = 0; i < ROUNDS; i++) {
            const key = KEYS[Math.floor(r() * KEYS.length)]!;
            if (r() < 0.2) {
              const { version } = await engine.delete(key);
              record(key, version, '<absent>');
            } else if (r() < 0.5) {
              await engine.read(key);
            } else {
              const value = `L${w}-${i}`;
              record(key, (await engine.write(key, value)).version, JSON.stringify(value));
            }
          }
        };
        const bypass = async (b: number) => {
          const sql = new pg.Client({ connectionString: DATABASE_URL });
          sql.on('error', () => undefined);
          await sql.connect();
          clients.push(sql);
          const r = rng(seed * 1000 + b);
          for (let i = 0; i < ROUNDS; i++) {
            const key = KEYS[Math.floor(r() * KEYS.length)]!;
            const value = JSON.stringify(`S${b}-${i}`);
            const level = r() < 0.3 ? 'REPEATABLE READ' : 'READ COMMITTED';
            const kind = r();
            try {
              await sql.query(`BEGIN ISOLATION LEVEL ${level}`);
              let touched: string[];
              if (kind < 0.35) {
                await sql.query(`UPDATE ${kv} SET value = $2 WHERE namespace = 'ns' AND key = $1`, [key, value]);
                touched = [key];
              } else if (kind < 0.6) {
                await sql.query(`INSERT INTO ${kv} (namespace, key, value) VALUES ('ns', $1, $2) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value`, [key, value]);
                touched = [key];
              } else if (kind < 0.75) {
                await sql.query(`DELETE FROM ${kv} WHERE namespace = 'ns' AND key = $1`, [key]);
                touched = [key];
              } else if (kind < 0.85) {
                await sql.query(`UPDATE ${kv} SET value = $1 WHERE namespace = 'ns'`, [value]);
                touched = KEYS;
              } else {
                // Rename the key away and back (two statements): both ends tombstoned, journaled, versioned.
                await sql.query(`UPDATE ${kv} SET key = key || '-moved' WHERE namespace = 'ns' AND key = $1`, [key]);
                await sql.query(`UPDATE ${kv} SET key = $1 WHERE namespace = 'ns' AND key = $1 || '-moved'`, [key]);
                touched = [key];
              }
              // What this transaction leaves, read back in it (a trigger versions at the statement's end).
              const rows = (await sql.query(`SELECT key, version::int, value FROM ${kv} WHERE namespace = 'ns' AND key = ANY($1)`, [touched])).rows;
              const tombs = (await sql.query(`SELECT key, version::int FROM "${schema}".lockstep_tombstones WHERE namespace = 'ns' AND key = ANY($1)`, [touched])).rows;
              await sql.query('COMMIT');
              for (const row of rows) record(row.key, row.version, row.value);
              for (const t of tombs) if (!rows.some((row) => row.key === t.key)) record(t.key, t.version, '<absent>');
            } catch (error) {
              await sql.query('ROLLBACK').catch(() => undefined);
              const code = (error as pg.DatabaseError).code;
              assert.ok(code === '40001' || code === '23505' || code === '40P01', `unexpected ${String(error)}`);
            }
          }
        };
        await Promise.all([lockstep(1), lockstep(2), lockstep(3), bypass(1), bypass(2), bypass(3)]);
        await engine.drainJournal();
        for (const key of KEYS) {
          const stored = await store.read('ns', key);
          assert.equal(await engine.read(key), stored === undefined ? undefined : JSON.parse(stored.payload), `read of ${key}`);
        }
      } finally {
        for (const c of clients) await c.end().catch(() => undefined);
        await engine.close();
        await store.close();
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      }
    });
  }
});
