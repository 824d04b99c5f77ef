// Conditional requests on /v1/kv/{namespace}/{key}: ETag on GET and PUT, If-Match (a version or *)
// on PUT and DELETE, If-None-Match: * (create-only) on PUT, 412 with the live version.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { assertError, call, httpFixture, type HttpFixture } from '../helpers/http-fixture.js';

const fixtures: HttpFixture[] = [];
after(() => Promise.all(fixtures.map((f) => f.close())));
async function setup(): Promise<HttpFixture> {
  const f = await httpFixture();
  fixtures.push(f);
  return f;
}

describe('ETag', () => {
  it('GET and PUT answer the version as a quoted ETag; a 404 carries none', async () => {
    const { app } = await setup();
    const put = await call(app, 'PUT', '/v1/kv/cond/a', { json: 1 });
    assert.equal(put.headers.get('etag'), '"1"');
    const get = await call(app, 'GET', '/v1/kv/cond/a');
    assert.equal(get.headers.get('etag'), '"1"');
    assert.equal(get.json.version, 1);
    const missing = await call(app, 'GET', '/v1/kv/cond/none');
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('etag'), null);
  });
});

describe('PUT with If-Match / If-None-Match', () => {
  it('If-Match with the live version writes (quoted or bare); a stale one is 412 with currentVersion, nothing written', async () => {
    const { app, sqlite } = await setup();
    await call(app, 'PUT', '/v1/kv/cond/k', { json: 'v1' });
    const quoted = await call(app, 'PUT', '/v1/kv/cond/k', { json: 'v2', headers: { 'If-Match': '"1"' } });
    assert.equal(quoted.status, 200, quoted.text);
    assert.equal(quoted.json.version, 2);
    const bare = await call(app, 'PUT', '/v1/kv/cond/k', { json: 'v3', headers: { 'If-Match': ' 2 ' } });
    assert.equal(bare.json.version, 3);
    const stale = await call(app, 'PUT', '/v1/kv/cond/k', { json: 'lost', headers: { 'If-Match': '"2"' } });
    assertError(stale, 412, 'E_PRECONDITION_FAILED');
    assert.equal(stale.json.error.currentVersion, 3);
    assert.equal(stale.headers.get('etag'), '"3"');
    assert.deepEqual(await sqlite.read('cond', 'k'), { version: 3, payload: '"v3"' });
    assert.equal((await call(app, 'GET', '/v1/kv/cond/k')).json.value, 'v3');
  });

  it('If-Match: * needs the key to exist (412 with currentVersion 0 otherwise)', async () => {
    const { app, sqlite } = await setup();
    const missing = await call(app, 'PUT', '/v1/kv/cond/star', { json: 1, headers: { 'If-Match': '*' } });
    assertError(missing, 412, 'E_PRECONDITION_FAILED');
    assert.equal(missing.json.error.currentVersion, 0);
    assert.equal(await sqlite.read('cond', 'star'), undefined);
    await call(app, 'PUT', '/v1/kv/cond/star', { json: 1 });
    assert.equal((await call(app, 'PUT', '/v1/kv/cond/star', { json: 2, headers: { 'If-Match': '*' } })).json.version, 2);
  });

  it('If-None-Match: * creates once; then 412 with the version that exists', async () => {
    const { app } = await setup();
    const created = await call(app, 'PUT', '/v1/kv/cond/once', { json: 'first', headers: { 'If-None-Match': '*' } });
    assert.equal(created.status, 200, created.text);
    const again = await call(app, 'PUT', '/v1/kv/cond/once', { json: 'second', headers: { 'If-None-Match': '*' } });
    assertError(again, 412, 'E_PRECONDITION_FAILED');
    assert.equal(again.json.error.currentVersion, 1);
    assert.equal((await call(app, 'GET', '/v1/kv/cond/once')).json.value, 'first');
  });

  it('concurrent create-only PUTs of one key: exactly one 200, the rest 412', async () => {
    const { app } = await setup();
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, i) => call(app, 'PUT', '/v1/kv/cond/race', { json: i, headers: { 'If-None-Match': '*' } })),
    );
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 412, 412, 412, 412, 412, 412, 412]);
    const winner = replies.findIndex((r) => r.status === 200);
    assert.equal((await call(app, 'GET', '/v1/kv/cond/race')).json.value, winner);
  });

  it('malformed conditions are 400 with their own codes, before the body is read', async () => {
    const { app, sqlite } = await setup();
    for (const header of ['W/"1"', '"1", "2"', 'abc', '"0"', '0', '""', '"-1"', '99999999999999999']) {
      assertError(await call(app, 'PUT', '/v1/kv/cond/m', { json: 1, headers: { 'If-Match': header } }), 400, 'E_INVALID_IF_MATCH');
    }
    assertError(await call(app, 'PUT', '/v1/kv/cond/m', { json: 1, headers: { 'If-None-Match': '"1"' } }), 400, 'E_INVALID_IF_NONE_MATCH');
    assertError(await call(app, 'PUT', '/v1/kv/cond/m', { json: 1, headers: { 'If-Match': '1', 'If-None-Match': '*' } }), 400, 'E_INVALID_IF_MATCH');
    assertError(await call(app, 'PUT', '/v1/kv/cond/m', { body: '{', headers: { 'If-Match': 'x', 'Content-Type': 'application/json' } }), 400, 'E_INVALID_IF_MATCH');
    assert.equal(await sqlite.read('cond', 'm'), undefined);
  });
});

describe('DELETE with If-Match', () => {
  it('deletes only the matching version; 412 keeps the key; If-None-Match is refused', async () => {
    const { app } = await setup();
    await call(app, 'PUT', '/v1/kv/cond/d', { json: 'x' });
    const wrong = await call(app, 'DELETE', '/v1/kv/cond/d', { headers: { 'If-Match': '"5"' } });
    assertError(wrong, 412, 'E_PRECONDITION_FAILED');
    assert.equal(wrong.json.error.currentVersion, 1);
    assert.equal((await call(app, 'GET', '/v1/kv/cond/d')).status, 200);
    assertError(await call(app, 'DELETE', '/v1/kv/cond/d', { headers: { 'If-None-Match': '*' } }), 400, 'E_INVALID_IF_NONE_MATCH');
    const right = await call(app, 'DELETE', '/v1/kv/cond/d', { headers: { 'If-Match': '"1"' } });
    assert.deepEqual(right.json, { namespace: 'cond', key: 'd', version: 2, existed: true });
    const gone = await call(app, 'DELETE', '/v1/kv/cond/d', { headers: { 'If-Match': '*' } });
    assertError(gone, 412, 'E_PRECONDITION_FAILED');
    assert.equal(gone.json.error.currentVersion, 0);
  });
});
