// Every command's reply, byte for byte, in RESP2 and RESP3: what node-redis, ioredis and redis-cli
// parse. One pipelined request per case, over a raw socket; SQLite store, memory cache.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { respFixture, type RespFixture } from '../helpers/resp-fixture.js';
import { command as c, exchange, pipeline } from '../helpers/resp-raw.js';

describe('RESP commands: reply shapes', () => {
  let f: RespFixture;
  let k: (name: string) => string;
  before(async () => {
    f = await respFixture('sqlite');
    k = (name) => `${f.ns}:${name}`;
  });
  after(async () => {
    await f?.close();
  });

  async function expectReplies(request: Buffer, expected: string): Promise<void> {
    const { data } = await exchange(f.port, request, expected);
    assert.equal(data, expected);
  }

  it('GET, SET and its options, DEL/UNLINK, EXISTS, MGET, MSET of one key', async () => {
    await expectReplies(
      pipeline(
        c('SET', k('a'), 'héllo'),
        c('GET', k('a')),
        c('GET', k('none')),
        c('SET', k('a'), 'x', 'NX'),
        c('SET', k('b'), 'x', 'XX'),
        c('SET', k('a'), 'second', 'XX', 'GET'),
        c('SET', k('b'), 'new', 'NX', 'GET'),
        c('MGET', k('a'), k('none'), k('b')),
        c('EXISTS', k('a'), k('a'), k('none')),
        c('MSET', k('c'), '3'),
        c('DEL', k('a'), k('none'), k('a')),
        c('UNLINK', k('b')),
        c('EXISTS', k('a'), k('b')),
      ),
      '+OK\r\n$6\r\nhéllo\r\n$-1\r\n$-1\r\n$-1\r\n$6\r\nhéllo\r\n$-1\r\n*3\r\n$6\r\nsecond\r\n$-1\r\n$3\r\nnew\r\n:2\r\n+OK\r\n:1\r\n:1\r\n:0\r\n',
    );
  });

  it('EX/PX/EXAT/PXAT are data expiries: TTL/PTTL count down, and once past GET is nil and TTL -2', async () => {
    const now = Date.now();
    const { data } = await exchange(
      f.port,
      pipeline(c('SET', k('ex'), 'v', 'EX', '100'), c('TTL', k('ex')), c('SET', k('pxat'), 'v', 'PXAT', String(now + 50_000)), c('PTTL', k('pxat')), c('SET', k('nottl'), 'v'), c('TTL', k('nottl')), c('TTL', k('none'))),
      (d) => d.endsWith(':-1\r\n:-2\r\n'),
    );
    const lines = data.split('\r\n');
    assert.deepEqual(lines.slice(0, 3), ['+OK', ':100', '+OK']);
    const pttl = Number(lines[3]!.slice(1));
    assert.ok(pttl > 40_000 && pttl <= 50_000, `PTTL ${pttl}`);
    assert.deepEqual(lines.slice(4, 7), ['+OK', ':-1', ':-2']);
    // The expiry is in the row, beside the value (not only a cache TTL).
    const row = (await f.stored(f.ns, 'ex'))?.value as { value: string; expiresAt: number };
    assert.equal(row.value, 'v');
    assert.ok(row.expiresAt > now + 90_000);

    // An expiry already past (PXAT in the past): the key reads as missing at once, as on Redis.
    await expectReplies(
      pipeline(c('SET', k('gone'), 'v', 'PXAT', String(now - 1000)), c('GET', k('gone')), c('TTL', k('gone')), c('EXISTS', k('gone')), c('SET', k('gone'), 'w', 'NX'), c('GET', k('gone'))),
      '+OK\r\n$-1\r\n:-2\r\n:0\r\n+OK\r\n$1\r\nw\r\n',
    );
    // KEEPTTL keeps the expiry; a plain SET clears it.
    const kept = await exchange(f.port, pipeline(c('SET', k('ex'), 'v2', 'KEEPTTL'), c('TTL', k('ex')), c('SET', k('ex'), 'v3'), c('TTL', k('ex'))), (d) => d.endsWith(':-1\r\n'));
    assert.match(kept.data, /^\+OK\r\n:(99|100)\r\n\+OK\r\n:-1\r\n$/);
  });

  it('SET option errors are Redis errors', async () => {
    await expectReplies(
      pipeline(
        c('SET', k('e'), 'v', 'NX', 'XX'),
        c('SET', k('e'), 'v', 'EX', '0'),
        c('SET', k('e'), 'v', 'EX', 'ten'),
        c('SET', k('e'), 'v', 'EX', '1', 'PX', '5'),
        c('SET', k('e'), 'v', 'BOGUS'),
        c('SET', k('e')),
        c('GET', k('e'), 'extra'),
      ),
      [
        '-ERR syntax error',
        "-ERR invalid expire time in 'set' command",
        '-ERR value is not an integer or out of range',
        '-ERR syntax error',
        '-ERR syntax error',
        "-ERR wrong number of arguments for 'set' command",
        "-ERR wrong number of arguments for 'get' command",
        '',
      ].join('\r\n'),
    );
  });

  it('MSET of several keys is refused and writes none of them', async () => {
    const { data } = await exchange(f.port, pipeline(c('MSET', k('m1'), '1', k('m2'), '2'), c('MGET', k('m1'), k('m2'))), (d) => d.endsWith('*2\r\n$-1\r\n$-1\r\n'));
    assert.match(data, /^-LOCKSTEP_E_MSET_NOT_ATOMIC [^\r\n]+\r\n\*2\r\n\$-1\r\n\$-1\r\n$/);
  });

  it('connection commands: PING, ECHO, SELECT, CLIENT, QUIT', async () => {
    const { data, closed } = await exchange(
      f.port,
      pipeline(
        c('PING'),
        c('PING', 'hi'),
        c('ECHO', 'x y'),
        c('SELECT', '0'),
        c('CLIENT', 'SETNAME', 'worker-1'),
        c('CLIENT', 'GETNAME'),
        c('CLIENT', 'SETINFO', 'LIB-NAME', 'test'),
        c('CLIENT', 'NOPE'),
        c('QUIT'),
        c('PING'),
      ),
      1000,
      5000,
    );
    assert.ok(closed, 'QUIT closes the connection');
    assert.equal(
      data,
      "+PONG\r\n$2\r\nhi\r\n$3\r\nx y\r\n+OK\r\n+OK\r\n$8\r\nworker-1\r\n+OK\r\n-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n+OK\r\n",
    );
    // Another database: refused, and the connection closed, so nothing sent after it runs (ioredis
    // with `db: 1` reports the refusal as an event and goes on writing).
    const other = await exchange(f.port, pipeline(c('SELECT', '1'), c('SET', `${f.ns}:db1`, 'v')), 1000, 5000);
    assert.ok(other.closed, 'SELECT 1 closes the connection');
    assert.match(other.data, /^-ERR DB index is out of range: Lockstep has one keyspace[^\r]*\r\n$/);
    assert.equal(await f.stored(f.ns, 'db1'), undefined);
    const id = await exchange(f.port, pipeline(c('CLIENT', 'ID'), c('CLIENT', 'INFO')), 60);
    assert.match(id.data, /^:\d+\r\n\$\d+\r\nid=\d+ addr=127\.0\.0\.1:\d+ .*resp=2/);
  });

  it('HELLO 3 switches to RESP3: nulls, maps; HELLO 2 back; unsupported versions refused', async () => {
    const { data } = await exchange(
      f.port,
      pipeline(c('HELLO', '3'), c('GET', k('none')), c('MGET', k('none')), c('HELLO', '2'), c('GET', k('none')), c('HELLO', '4')),
      (d) => d.includes('NOPROTO'),
    );
    assert.match(data, /^%7\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n\$7\r\nversion\r\n\$5\r\n7\.2\.0\r\n\$5\r\nproto\r\n:3\r\n\$2\r\nid\r\n:\d+\r\n/);
    assert.ok(data.includes('\r\n_\r\n*1\r\n_\r\n*14\r\n'), data);
    assert.ok(data.endsWith('$-1\r\n-NOPROTO sorry, this protocol version is not supported.\r\n'), data);
    // RESP3 types elsewhere: INFO is a verbatim string, COMMAND DOCS a map, flags sets; errors unchanged.
    const typed = await exchange(f.port, pipeline(c('HELLO', '3'), c('INFO'), c('COMMAND', 'DOCS', 'get'), c('COMMAND', 'INFO', 'get'), c('SET', k('t'), 'v', 'EX', '0')), (d) => d.includes('invalid expire'));
    const afterHello = typed.data.slice(typed.data.indexOf('modules\r\n*0\r\n') + 'modules\r\n*0\r\n'.length);
    assert.match(afterHello, /^=\d+\r\ntxt:# Server\r\n/);
    assert.ok(afterHello.includes('%1\r\n$3\r\nget\r\n%4\r\n$7\r\nsummary\r\n'), afterHello);
    assert.ok(afterHello.includes('*1\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n'), afterHello);
    assert.ok(afterHello.endsWith("-ERR invalid expire time in 'set' command\r\n"), afterHello);
  });

  it('unknown commands answer as Redis does; inline commands work', async () => {
    await expectReplies(
      pipeline(c('FLUSHALL'), c('KEYS', '*', 'more'), Buffer.from('PING\r\nECHO inline\r\n')),
      "-ERR unknown command 'FLUSHALL', with args beginning with: \r\n-ERR unknown command 'KEYS', with args beginning with: '*' 'more' \r\n+PONG\r\n$6\r\ninline\r\n",
    );
  });

  it('COMMAND, COMMAND COUNT, COMMAND DOCS, COMMAND INFO and INFO', async () => {
    const { data } = await exchange(f.port, pipeline(c('COMMAND', 'COUNT'), c('COMMAND', 'INFO', 'get', 'nosuch'), c('COMMAND', 'DOCS', 'set')), (d) => d.includes('complexity'));
    assert.match(data, /^:(\d+)\r\n\*2\r\n\*10\r\n\$3\r\nget\r\n:2\r\n\*2\r\n\+readonly\r\n\+fast\r\n:1\r\n:1\r\n:1\r\n/);
    assert.ok(data.includes('$-1\r\n*2\r\n$3\r\nset\r\n*8\r\n$7\r\nsummary\r\n'), data);
    const info = await exchange(f.port, c('INFO'), (d) => d.includes('connected_slaves'));
    assert.match(info.data, /^\$\d+\r\n# Server\r\nredis_version:7\.2\.0\r\n/);
    assert.ok(info.data.includes('loading:0'));
  });

  it('a value that is not UTF-8, a key that is not, and a key too long are error replies', async () => {
    const { data } = await exchange(
      f.port,
      pipeline(c('SET', k('bin'), Buffer.from([0xff, 0xfe])), c('SET', Buffer.from([0xc3]), 'v'), c('SET', `${f.ns}:${'x'.repeat(600)}`, 'v'), c('GET', k('bin'))),
      (d) => d.endsWith('$-1\r\n'),
    );
    const lines = data.split('\r\n');
    assert.match(lines[0]!, /^-LOCKSTEP_E_INVALID_VALUE the value is not valid UTF-8/);
    assert.match(lines[1]!, /^-LOCKSTEP_E_INVALID_KEY the key is not valid UTF-8/);
    assert.match(lines[2]!, /^-LOCKSTEP_E_KEY_TOO_LONG /);
    assert.equal(lines[3], '$-1');
  });

  it('DEL checks every key before deleting any: a key too long (or a bad one) after a good one deletes nothing; EXISTS and MGET refuse it too', async () => {
    const long = `${f.ns}:${'x'.repeat(600)}`;
    const { data } = await exchange(
      f.port,
      pipeline(c('SET', k('first'), 'v'), c('DEL', k('first'), long), c('DEL', k('first'), Buffer.from([0xc3])), c('EXISTS', k('first'), long), c('MGET', k('first'), long), c('GET', k('first'))),
      (d) => d.endsWith('$1\r\nv\r\n'),
    );
    const lines = data.split('\r\n');
    assert.equal(lines[0], '+OK');
    assert.match(lines[1]!, /^-LOCKSTEP_E_KEY_TOO_LONG /);
    assert.match(lines[2]!, /^-LOCKSTEP_E_INVALID_KEY /);
    assert.match(lines[3]!, /^-LOCKSTEP_E_KEY_TOO_LONG /);
    assert.match(lines[4]!, /^-LOCKSTEP_E_KEY_TOO_LONG /);
    assert.deepEqual(lines.slice(5, 7), ['$1', 'v'], 'the first key was not deleted by the refused DELs');
    assert.equal((await f.stored(f.ns, 'first'))?.value, 'v');
  });

  it('keys map to namespaces: ns:key, else the default namespace', async () => {
    await expectReplies(pipeline(c('SET', k('x'), '1'), c('SET', 'no-prefix', '2'), c('SET', 'bad ns:key', '3')), '+OK\r\n+OK\r\n+OK\r\n');
    assert.equal((await f.stored(f.ns, 'x'))?.value, '1');
    assert.equal((await f.stored('default', 'no-prefix'))?.value, '2');
    assert.equal((await f.stored('default', 'bad ns:key'))?.value, '3');
  });
});
