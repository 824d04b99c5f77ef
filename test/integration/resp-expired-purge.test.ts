// An expired row is deleted when the RESP front reads it (docs/resp.md): a delete in the background,
// best effort. It must stay bounded: with the store slow or stalled, a client pipelining GETs of an
// expired key started one store delete per GET (20,000 GETs: 20,000 deletes waiting, +144 MB of
// heap), with nothing answering for them. One purge per key at a time, and a cap per front.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createGate } from '../../src/chaos/faults.js';
import { MAX_PURGES_IN_FLIGHT } from '../../src/resp/purges.js';
import { respFixtures } from '../helpers/resp-fixture.js';
import { command as c, exchange, pipeline } from '../helpers/resp-raw.js';
import { until } from '../helpers/until.js';

const setup = respFixtures();

describe('RESP: deletes of expired rows read', () => {
  it('one in flight per key, at most MAX_PURGES_IN_FLIGHT per front, while the store holds them; later reads purge again', async () => {
    // A long lease: a held delete gives up only after it (then its slot is free again), never
    // within this test on a slow machine.
    const f = await setup({ engine: { leaseTtl: '60s' } });
    const keys = Array.from({ length: MAX_PURGES_IN_FLIGHT + 36 }, (_, i) => `${f.ns}:k${i}`);
    const expiresAt = Date.now() + 200;
    const sets = await exchange(f.port, pipeline(...keys.map((k) => c('SET', k, 'v', 'PXAT', String(expiresAt)))), '+OK\r\n'.repeat(keys.length));
    assert.equal(sets.data, '+OK\r\n'.repeat(keys.length));
    const gate = createGate();
    f.store.faults.always('delete', { kind: 'pause', when: 'before', gate });
    await until('the rows expired', async () => Date.now() > expiresAt + 5);
    const deletes = (): number => f.store.faults.injected.get('delete') ?? 0;

    const repeated = 500;
    const one = await exchange(f.port, pipeline(...Array.from({ length: repeated }, () => c('GET', keys[0]!))), '$-1\r\n'.repeat(repeated));
    assert.equal(one.data, '$-1\r\n'.repeat(repeated));
    assert.equal(deletes(), 1, `${repeated} GETs of one expired key: store deletes started`);

    const all = await exchange(f.port, pipeline(...keys.map((k) => c('GET', k))), '$-1\r\n'.repeat(keys.length));
    assert.equal(all.data, '$-1\r\n'.repeat(keys.length));
    assert.equal(deletes(), MAX_PURGES_IN_FLIGHT, `${keys.length} expired keys read while the store holds their deletes: store deletes started`);

    f.store.faults.clear();
    gate.release();
    // Best effort, not lost: once the held deletes end, a read of a key skipped then purges it.
    const last = keys.at(-1)!.slice(f.ns.length + 1);
    await until('the last key, skipped while the cap was full, purged by a later read', async () => {
      await exchange(f.port, c('GET', keys.at(-1)!), '$-1\r\n');
      const row = await f.stored(f.ns, last);
      return row === undefined || row.value === null;
    });
    assert.deepEqual(f.unexpected, []);
  });

  it('a row written over HTTP in the expiring shape is read as an expired string and deleted (docs/resp.md: nothing in the row tells who wrote it)', async () => {
    const f = await setup();
    await f.service.engine(f.ns).write('shaped', { value: 'x', expiresAt: 1 });
    await f.service.engine(f.ns).write('other', { value: 'x', expiresAt: 1, note: 'a third field' });
    const { data } = await exchange(f.port, pipeline(c('GET', `${f.ns}:shaped`), c('GET', `${f.ns}:other`)), (d) => d.split('\r\n').length >= 4);
    assert.equal(data, '$-1\r\n$50\r\n{"value":"x","expiresAt":1,"note":"a third field"}\r\n');
    await until('the shaped row deleted by the read', async () => {
      const row = await f.stored(f.ns, 'shaped');
      return row === undefined || row.value === null;
    });
  });
});
