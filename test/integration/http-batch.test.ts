// POST /v1/kv/{namespace}:batchGet and :batchPut: per-item results in request order, each item
// written through on its own; a malformed envelope or a repeated key refuses the whole request.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InjectedFault } from '../../src/chaos/faults.js';
import { assertError, call, httpFixture, type HttpFixture } from '../helpers/http-fixture.js';

const fixtures: HttpFixture[] = [];
after(() => Promise.all(fixtures.map((f) => f.close())));
async function setup(options: Parameters<typeof httpFixture>[0] = {}): Promise<HttpFixture> {
  const f = await httpFixture(options);
  fixtures.push(f);
  return f;
}

describe(':batchPut', () => {
  it('writes every item through on its own and answers each version in request order', async () => {
    const { app, sqlite } = await setup();
    const items = Array.from({ length: 20 }, (_, i) => ({ key: `k${19 - i}`, value: { n: i } }));
    const reply = await call(app, 'POST', '/v1/kv/orders:batchPut', { json: { items } });
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.json.items, items.map((item) => ({ key: item.key, version: 1 })));
    for (const item of items) assert.deepEqual(await sqlite.read('orders', item.key), { version: 1, payload: JSON.stringify(item.value) });
    // Each item went through the cache protocol: a read is now a hit.
    const get = await call(app, 'GET', '/v1/kv/orders/k3');
    assert.equal(get.headers.get('x-cache'), 'hit');
  });

  it('reports a failing or malformed item in its slot; the other items are written', async () => {
    const { app, sqlite, store } = await setup();
    await call(app, 'PUT', '/v1/kv/mixed/cas', { json: 'v1' });
    await call(app, 'PUT', '/v1/kv/mixed/taken', { json: 'mine' });
    // The items are written concurrently: the fault is scoped to its key, not to whichever write comes first.
    store.faults.next('write', { kind: 'throw', when: 'before', error: new InjectedFault('write', 'before') }, 1, 'store-fails');
    const reply = await call(app, 'POST', '/v1/kv/mixed:batchPut', {
      json: {
        items: [
          { key: 'store-fails', value: 1 }, // the injected fault
          { key: 'cas', value: 'v2', ifVersion: 1 },
          { key: 'taken', value: 'yours', ifAbsent: true },
          { key: 'fresh', value: 'new', ifAbsent: true, ttlMs: 60_000 },
          { key: 'no-value' },
          { value: 'no key' },
          'not an object',
          { key: 'typo', value: 1, ifversion: 3 },
          { key: 'bad-ttl', value: 1, ttlMs: 0 },
          { key: 'bad-if', value: 1, ifVersion: 0 },
          { key: 'both', value: 1, ifVersion: 1, ifAbsent: true },
          { key: '', value: 1 },
        ],
      },
    });
    assert.equal(reply.status, 200, reply.text);
    const codes = reply.json.items.map((item: any) => item.error?.code ?? item.version);
    assert.deepEqual(codes, [
      'E_STORE_WRITE',
      2,
      'E_PRECONDITION_FAILED',
      1,
      'E_INVALID_OPTION',
      'E_INVALID_KEY',
      'E_INVALID_OPTION',
      'E_INVALID_OPTION',
      'E_INVALID_OPTION',
      'E_INVALID_OPTION',
      'E_INVALID_OPTION',
      'E_INVALID_KEY',
    ]);
    assert.deepEqual(reply.json.items.map((item: any) => item.key), ['store-fails', 'cas', 'taken', 'fresh', 'no-value', null, null, 'typo', 'bad-ttl', 'bad-if', 'both', '']);
    assert.equal(reply.json.items[2].error.currentVersion, 1);
    assert.equal((await sqlite.read('mixed', 'cas'))?.payload, '"v2"');
    assert.equal((await sqlite.read('mixed', 'taken'))?.payload, '"mine"');
    assert.equal((await sqlite.read('mixed', 'fresh'))?.payload, '"new"');
    for (const key of ['store-fails', 'no-value', 'typo', 'bad-ttl', 'bad-if', 'both']) assert.equal(await sqlite.read('mixed', key), undefined, key);
  });

  it('refuses a repeated key, a malformed envelope or too many items as a whole: nothing written', async () => {
    const { app, sqlite } = await setup({ app: { maxBatchItems: 3 } });
    const dup = await call(app, 'POST', '/v1/kv/env:batchPut', { json: { items: [{ key: 'a', value: 1 }, { key: 'b', value: 2 }, { key: 'a', value: 3 }] } });
    assertError(dup, 400, 'E_DUPLICATE_KEYS');
    for (const json of [[{ key: 'a', value: 1 }], { items: 'a' }, {}, { items: [], extra: 1 }, null, 'items']) {
      assertError(await call(app, 'POST', '/v1/kv/env:batchPut', { json }), 400, 'E_INVALID_BATCH');
    }
    assertError(await call(app, 'POST', '/v1/kv/env:batchPut', { body: '{"items": [', headers: { 'Content-Type': 'application/json' } }), 400, 'E_BAD_JSON');
    const big = await call(app, 'POST', '/v1/kv/env:batchPut', { json: { items: ['a', 'b', 'c', 'd'].map((key) => ({ key, value: 1 })) } });
    assertError(big, 413, 'E_BATCH_TOO_LARGE');
    assertError(await call(app, 'POST', '/v1/kv/bad%20ns:batchPut', { json: { items: [{ key: 'a', value: 1 }] } }), 400, 'E_INVALID_NAMESPACE');
    assert.deepEqual(await sqlite.scan('env', undefined, 10), []);
    assert.deepEqual((await call(app, 'POST', '/v1/kv/env:batchPut', { json: { items: [] } })).json, { items: [] });
  });
});

describe(':batchGet', () => {
  it('answers found, not found and per-key errors in request order, duplicates included', async () => {
    const { app, store } = await setup();
    await call(app, 'POST', '/v1/kv/users:batchPut', { json: { items: [{ key: 'alice', value: { age: 30 } }, { key: 'bob', value: null }] } });
    await call(app, 'DELETE', '/v1/kv/users/bob');
    const reply = await call(app, 'POST', '/v1/kv/users:batchGet', { json: { keys: ['alice', 'bob', 'nobody', 7, 'x'.repeat(600), 'alice'] } });
    assert.equal(reply.status, 200, reply.text);
    const [alice, bob, nobody, seven, long, again] = reply.json.items;
    assert.deepEqual(alice, { key: 'alice', found: true, value: { age: 30 }, version: 1 });
    assert.deepEqual(bob, { key: 'bob', found: false, version: 2 });
    assert.deepEqual(nobody, { key: 'nobody', found: false, version: 0 });
    assert.equal(seven.key, null);
    assert.equal(seven.error.code, 'E_INVALID_KEY');
    assert.equal(long.error.code, 'E_KEY_TOO_LONG');
    assert.deepEqual(again, alice);
    // A store failure on one key is that key's error; the rest are answered.
    store.faults.next('read', { kind: 'throw', when: 'before' });
    const partial = await call(app, 'POST', '/v1/kv/users:batchGet', { json: { keys: ['fresh-miss', 'alice'] } });
    assert.equal(partial.json.items[0].error.code, 'E_STORE_READ');
    assert.equal(partial.json.items[1].found, true);
  });

  it('refuses a malformed envelope or too many keys; other methods are 405 with Allow: POST', async () => {
    const { app } = await setup({ app: { maxBatchItems: 2 } });
    assertError(await call(app, 'POST', '/v1/kv/users:batchGet', { json: { keys: ['a', 'b', 'c'] } }), 413, 'E_BATCH_TOO_LARGE');
    assertError(await call(app, 'POST', '/v1/kv/users:batchGet', { json: { key: ['a'] } }), 400, 'E_INVALID_BATCH');
    assertError(await call(app, 'POST', '/v1/kv/users:batchGet', { json: ['a'] }), 400, 'E_INVALID_BATCH');
    const get = await call(app, 'GET', '/v1/kv/users:batchGet');
    assertError(get, 405, 'E_METHOD_NOT_ALLOWED');
    assert.equal(get.headers.get('allow'), 'POST');
    assertError(await call(app, 'POST', '/v1/kv/users:batchDrop', { json: {} }), 405, 'E_METHOD_NOT_ALLOWED');
  });

  it('maxBatchItems must be a positive integer', async () => {
    await assert.rejects(setup({ app: { maxBatchItems: 0 } }), /maxBatchItems/);
  });
});
