// The RESP front with real clients (node-redis in RESP2 and RESP3, ioredis, redis-cli) over real
// stores: what a client SETs is in the database (read with plain SQL) by the time +OK arrives, and a
// GET from any other connection sees it; pipelines keep their order.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { respFixture, type RespFixture, type StoreKind } from '../helpers/resp-fixture.js';
import { DATABASE_URL, MYSQL_URL, needProgram, needService } from '../helpers/services.js';

const run = promisify(execFile);
const postgres = await needService('PostgreSQL', DATABASE_URL);
const mariadb = await needService('MariaDB', MYSQL_URL);
const cli = needProgram('redis-cli', '/usr/bin/redis-cli');
const skipOf: Record<StoreKind, string | false> = { sqlite: false, postgres: postgres.skip, mysql: mariadb.skip };

/** redis-cli with commands on stdin (one per line), as a script would; resolves to its stdout. */
async function redisCli(port: number, extra: string[], script: string): Promise<string> {
  const child = execFile('redis-cli', ['-p', String(port), ...extra], { timeout: 20_000 });
  child.stdin!.end(script);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`redis-cli exited ${code}`)))));
  return out;
}

for (const kind of ['sqlite', 'postgres', 'mysql'] as const) {
  describe(`RESP front over ${kind}`, { skip: skipOf[kind] }, () => {
    let f: RespFixture;
    before(async () => {
      f = await respFixture(kind);
    });
    after(async () => {
      await f?.close();
    });

    it('node-redis (RESP2): every SET is in the database when +OK arrives, and another connection GETs it', async () => {
      const writer = createClient({ url: `redis://127.0.0.1:${f.port}` });
      const reader = createClient({ url: `redis://127.0.0.1:${f.port}` });
      await Promise.all([writer.connect(), reader.connect()]);
      try {
        const seen: Array<Promise<void>> = [];
        for (let i = 0; i < 40; i++) {
          const key = `k${i % 8}`;
          const value = `v${i}-é`;
          // Concurrent commands on one connection go out as one pipeline (node-redis auto-pipelining).
          seen.push(
            writer.set(`${f.ns}:${key}`, value).then(async (reply) => {
              assert.equal(reply, 'OK');
              const row = await f.stored(f.ns, key);
              // Later SETs of the same key may have landed since; never an older one, never nothing.
              assert.ok(row !== undefined && Number(String(row.value).split('-')[0]!.slice(1)) >= i, `row after +OK of ${value}: ${JSON.stringify(row)}`);
            }),
          );
        }
        await Promise.all(seen);
        for (let k = 0; k < 8; k++) {
          const last = `v${32 + k}-é`;
          assert.deepEqual(await f.stored(f.ns, `k${k}`).then((r) => r?.value), last);
          assert.equal(await reader.get(`${f.ns}:k${k}`), last);
        }
        assert.equal(await reader.get(`${f.ns}:missing`), null);
      } finally {
        await Promise.all([writer.quit(), reader.quit()]);
      }
    });

    it('node-redis (RESP3, HELLO 3): a pipeline keeps its order and its reply shapes', async () => {
      const client = createClient({ url: `redis://127.0.0.1:${f.port}`, RESP: 3 });
      await client.connect();
      try {
        const replies = await client
          .multi()
          .set(`${f.ns}:p`, 'one')
          .get(`${f.ns}:p`)
          .set(`${f.ns}:p`, 'two', { expiration: { type: 'PX', value: 60_000 } })
          .pTTL(`${f.ns}:p`)
          .exists([`${f.ns}:p`, `${f.ns}:none`])
          .del(`${f.ns}:p`)
          .get(`${f.ns}:p`)
          .ttl(`${f.ns}:p`)
          .execAsPipeline();
        assert.equal(replies[0], 'OK');
        assert.equal(replies[1], 'one');
        assert.equal(replies[2], 'OK');
        assert.ok(typeof replies[3] === 'number' && replies[3] > 50_000 && replies[3] <= 60_000, `PTTL ${String(replies[3])}`);
        assert.deepEqual(replies.slice(4), [1, 1, null, -2]);
        assert.equal(await f.stored(f.ns, 'p'), undefined);
        const hello = (await client.sendCommand(['HELLO', '3'])) as Record<string, unknown> | Map<string, unknown>;
        const proto = hello instanceof Map ? hello.get('proto') : hello['proto'];
        assert.equal(proto, 3);
      } finally {
        await client.quit();
      }
    });

    it('ioredis (RESP2): a pipeline of SETs is durable when exec() resolves; MGET from another connection sees it', async () => {
      const a = new IORedis({ port: f.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
      const b = new IORedis({ port: f.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
      await Promise.all([a.connect(), b.connect()]);
      try {
        const pipeline = a.pipeline();
        for (let i = 0; i < 20; i++) pipeline.set(`${f.ns}:io${i}`, `value ${i}`);
        pipeline.get(`${f.ns}:io19`);
        const results = await pipeline.exec();
        assert.ok(results !== null);
        assert.deepEqual(results.map(([error]) => error), new Array(21).fill(null));
        assert.equal(results[20]![1], 'value 19');
        for (let i = 0; i < 20; i++) assert.equal((await f.stored(f.ns, `io${i}`))?.value, `value ${i}`);
        const keys = Array.from({ length: 20 }, (_, i) => `${f.ns}:io${i}`);
        assert.deepEqual(await b.mget(...keys), keys.map((_, i) => `value ${i}`));
        assert.equal(await b.set(`${f.ns}:io0`, 'x', 'NX'), null);
        assert.equal(await b.set(`${f.ns}:io0`, 'y', 'XX', 'GET'), 'value 0');
        await assert.rejects(b.mset(`${f.ns}:m1`, '1', `${f.ns}:m2`, '2'), /LOCKSTEP_E_MSET_NOT_ATOMIC/);
        assert.equal(await f.stored(f.ns, 'm1'), undefined);
      } finally {
        a.disconnect();
        b.disconnect();
      }
    });

    it('ioredis with `db: 1`: its writes never land in the one keyspace (the refused SELECT closes the connection)', async () => {
      const io = new IORedis({ port: f.port, host: '127.0.0.1', db: 1, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      const errors: Error[] = [];
      io.on('error', (error: Error) => errors.push(error));
      try {
        await io.connect().catch(() => undefined);
        await assert.rejects(io.set(`${f.ns}:db1`, 'v'));
        assert.equal(await f.stored(f.ns, 'db1'), undefined);
      } finally {
        io.disconnect();
      }
    });

    it('redis-cli scripted, RESP2 and RESP3 (-3)', { skip: cli.skip }, async () => {
      const script = [`SET ${f.ns}:cli hello`, `GET ${f.ns}:cli`, `GET ${f.ns}:nothing`, `EXISTS ${f.ns}:cli`, `TTL ${f.ns}:cli`, `DEL ${f.ns}:cli`, 'PING', 'NOSUCH a'].join('\n');
      const resp2 = await redisCli(f.port, [], script);
      assert.equal(resp2, "OK\nhello\n\n1\n-1\n1\nPONG\nERR unknown command 'NOSUCH', with args beginning with: 'a' \n\n");
      const resp3 = await redisCli(f.port, ['-3'], script);
      assert.equal(resp3, resp2);
      // What redis-cli shows a person (a tty is not there, so --no-raw asks for the typed form).
      const typed = await redisCli(f.port, ['-3', '--no-raw'], `SET ${f.ns}:cli2 "a b"\nGET ${f.ns}:cli2\nGET ${f.ns}:nope\nHELLO 3`);
      assert.match(typed, /^OK\n"a b"\n\(nil\)\n1# "server" => "redis"\n/);
      assert.match(typed, /"proto" => \(integer\) 3/);
      assert.equal((await f.stored(f.ns, 'cli2'))?.value, 'a b');
      const { stdout } = await run('redis-cli', ['-p', String(f.port), 'COMMAND', 'COUNT']);
      assert.ok(Number(stdout) >= 18);
    });
  });
}
