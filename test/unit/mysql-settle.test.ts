// The MariaDB store's settlement, without a server: which ids it accepts (an id goes to KILL), and
// that it ends only the connections it found still there with the same peer (an id handed out again
// after a server restart belongs to someone else).
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createMysqlSettler, sessionFrom, sessionId } from '../../src/store/mysql-settle.js';
import type { MysqlValue } from '../../src/store/mysql-client.js';

describe('MariaDB settlement', () => {
  // The settling loop's timer does not keep a process alive: the test does, while it waits.
  let keepAlive: NodeJS.Timeout | undefined;
  beforeEach(() => void (keepAlive = setInterval(() => undefined, 1_000)));
  afterEach(() => clearInterval(keepAlive));

  it('takes only a positive safe integer for a connection id', () => {
    for (const good of [1, 42, '42', Number.MAX_SAFE_INTEGER, String(Number.MAX_SAFE_INTEGER)]) assert.equal(sessionId(good), Number(good));
    for (const bad of [0, -1, 1.5, NaN, 2 ** 53, '0', '01', '1e3', '0x10', ' 7', '7;', '', null, undefined, {}, [7]]) {
      assert.equal(sessionId(bad), undefined, `${JSON.stringify(bad)} is refused`);
    }
    assert.deepEqual(sessionFrom([7, '10.0.0.1:5000']), { id: 7, host: '10.0.0.1:5000' });
    assert.deepEqual(sessionFrom([7, Buffer.from('localhost')]), { id: 7, host: 'localhost' });
    assert.equal(sessionFrom(['7; KILL 1', 'h']), undefined);
    assert.equal(sessionFrom([7, null]), undefined);
    assert.equal(sessionFrom(undefined), undefined);
  });

  it('ends the connections still there with the same peer, and reports each settled once gone', async () => {
    const processes = new Map<number, string>([
      [7, 'app:1'],
      [8, 'someone-else:2'], // id 8 was handed out again (a server restart): not ours
    ]);
    const kills: MysqlValue[] = [];
    const run = async (sql: string, values: MysqlValue[]): Promise<unknown[][]> => {
      if (sql.startsWith('KILL')) {
        kills.push(values[0]!);
        processes.delete(Number(values[0]));
        return [];
      }
      const ids = JSON.parse(String(values[0])) as number[];
      return ids.filter((id) => processes.has(id)).map((id) => [id, processes.get(id)]);
    };
    const settler = createMysqlSettler(run);
    try {
      const settled = await Promise.all([settler.settle({ id: 7, host: 'app:1' }), settler.settle({ id: 8, host: 'app:3' }), settler.settle({ id: 9, host: 'app:4' })]);
      assert.deepEqual(settled, [true, true, true]);
      assert.deepEqual(kills, [7], 'only the connection found with its own peer is ended');
      assert.ok(processes.has(8), "another user's connection with a reused id is left alone");
    } finally {
      settler.stop();
    }
  });

  it('keeps asking while the server is not reachable, and reports unsettled once stopped', async () => {
    let asked = 0;
    const settler = createMysqlSettler(async () => {
      asked++;
      throw new Error('connect ECONNREFUSED');
    });
    const settled = settler.settle({ id: 7, host: 'app:1' });
    while (asked < 2) await new Promise((r) => setTimeout(r, 10));
    settler.stop();
    assert.equal(await settled, false);
  });
});
