// MULTI/EXEC are not supported (docs/resp.md). Answering MULTI with an error was not enough: client
// libraries pipeline MULTI, the commands and EXEC, then read the replies, so every command of the
// "transaction" ran on its own while the library reported it failed (ioredis and node-redis both
// wrote every key and rejected exec()). A client told its transaction failed must find nothing of
// it applied, and a client that sent MULTI alone must not be left refused: as Redis does with an
// error while queuing, MULTI answers +OK, every command is refused unrun, EXEC aborts, DISCARD ends it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { respFixtures } from '../helpers/resp-fixture.js';
import { command as c, exchange, pipeline } from '../helpers/resp-raw.js';

const setup = respFixtures();

describe('RESP: a refused MULTI applies nothing', () => {
  it('ioredis and node-redis multi().exec(): rejected, and no key written; the connection goes on', async () => {
    const f = await setup();
    const io = new IORedis({ port: f.port, host: '127.0.0.1', lazyConnect: true });
    await io.connect();
    const nr = createClient({ url: `redis://127.0.0.1:${f.port}` });
    nr.on('error', () => undefined);
    await nr.connect();
    try {
      await assert.rejects(io.multi().set(`${f.ns}:a`, '1').set(`${f.ns}:b`, '2').exec());
      await assert.rejects(nr.multi().set(`${f.ns}:c`, '1').set(`${f.ns}:d`, '2').exec());
      for (const key of ['a', 'b', 'c', 'd']) assert.equal(await f.stored(f.ns, key), undefined, `key ${key} was written by a transaction its client saw fail`);
      assert.equal(await io.set(`${f.ns}:e`, 'x'), 'OK');
      assert.equal(await nr.set(`${f.ns}:f`, 'y'), 'OK');
      assert.equal((await f.stored(f.ns, 'e'))?.value, 'x');
      assert.equal((await f.stored(f.ns, 'f'))?.value, 'y');
    } finally {
      io.disconnect();
      await nr.quit().catch(() => undefined);
    }
  });

  it('the exact replies: MULTI accepted, commands refused unrun, EXEC aborts, DISCARD ends it too', async () => {
    const f = await setup();
    const k = `${f.ns}:k`;
    const { data } = await exchange(
      f.port,
      pipeline(c('MULTI'), c('SET', k, '1'), c('MULTI'), c('EXEC'), c('GET', k), c('MULTI'), c('SET', k, '2'), c('DISCARD'), c('GET', k), c('EXEC'), c('DISCARD')),
      (d) => d.split('\r\n').length >= 12,
    );
    const lines = data.split('\r\n');
    assert.equal(lines[0], '+OK');
    assert.match(lines[1]!, /^-ERR MULTI is not supported by Lockstep .*command not queued/);
    assert.equal(lines[2], '-ERR MULTI calls can not be nested');
    assert.match(lines[3]!, /^-EXECABORT Transaction discarded because of previous errors/);
    assert.equal(lines[4], '$-1');
    assert.equal(lines[5], '+OK');
    assert.match(lines[6]!, /^-ERR MULTI is not supported by Lockstep .*command not queued/);
    assert.equal(lines[7], '+OK');
    assert.equal(lines[8], '$-1');
    assert.equal(lines[9], '-ERR EXEC without MULTI');
    assert.equal(lines[10], '-ERR DISCARD without MULTI');
    assert.equal(await f.stored(f.ns, 'k'), undefined);
  });

  it('MULTI sent alone, its reply read before the next command (ioredis without a pipeline): the client and the front agree it is inside, and EXEC ends it', async () => {
    const f = await setup();
    const io = new IORedis({ port: f.port, host: '127.0.0.1', lazyConnect: true });
    await io.connect();
    try {
      assert.equal(await io.multi({ pipeline: false }), 'OK');
      await assert.rejects(io.set(`${f.ns}:a`, '1'), /command not queued/);
      await assert.rejects(io.exec(), /EXECABORT/);
      assert.equal(await io.set(`${f.ns}:b`, '2'), 'OK', 'the connection goes on after EXEC');
      assert.equal(await f.stored(f.ns, 'a'), undefined);
      assert.equal((await f.stored(f.ns, 'b'))?.value, '2');
    } finally {
      io.disconnect();
    }
  });

  it('before AUTH, MULTI, EXEC and DISCARD answer NOAUTH as every other command does, and start nothing', async () => {
    const f = await setup({ resp: { token: 'multi-test-token-0123456789abcdef' } });
    const { data } = await exchange(
      f.port,
      pipeline(c('MULTI'), c('EXEC'), c('DISCARD'), c('AUTH', 'multi-test-token-0123456789abcdef'), c('EXEC')),
      (d) => d.split('\r\n').length >= 6,
    );
    const lines = data.split('\r\n');
    assert.deepEqual(lines.slice(0, 3).map((line) => line.split(' ')[0]), ['-NOAUTH', '-NOAUTH', '-NOAUTH']);
    assert.equal(lines[3], '+OK');
    assert.equal(lines[4], '-ERR EXEC without MULTI', 'the MULTI refused before AUTH started nothing');
  });

  it('under a rate limit: MULTI and what follows it up to EXEC run nothing and take nothing, so a limited client is never left inside it', async () => {
    // Three commands, then one per 100 s. Throttled first, MULTI was answered RATE_LIMITED without
    // starting the refusal (what followed it ran if the bucket allowed), and a throttled EXEC left
    // the connection refusing every command for good.
    const f = await setup({ resp: { rateLimit: { perSecond: 0.01, burst: 3 } } });
    const k = `${f.ns}:k`;
    const { data } = await exchange(f.port, pipeline(c('PING'), c('PING'), c('MULTI'), c('SET', k, '1'), c('EXEC'), c('SET', k, '2'), c('GET', k)), (d) => d.split('\r\n').length >= 8);
    const lines = data.split('\r\n');
    assert.deepEqual(lines.slice(0, 2), ['+PONG', '+PONG']);
    assert.equal(lines[2], '+OK');
    assert.match(lines[3]!, /command not queued/);
    assert.match(lines[4]!, /^-EXECABORT /);
    assert.equal(lines[5], '+OK');
    assert.match(lines[6]!, /^-LOCKSTEP_E_RATE_LIMITED /);
    assert.equal((await f.stored(f.ns, 'k'))?.value, '2');
  });
});
