// When the proxy may send its fence in the same write as the client's batch: only a batch that
// provably ends idle and reads nothing more from the client (src/pg-proxy/fence-pipeline.ts), judged
// with PostgreSQL's grammar. Every refusal below is a batch where pipelining would be wrong.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadParser } from '../../src/pg-proxy/classify.js';
import { canPipelineFence } from '../../src/pg-proxy/fence-pipeline.js';
import { build, MessageReader, type Message } from '../../src/pg-proxy/framing.js';
import type { SessionState } from '../../src/pg-proxy/state.js';
import type { StatementInfo } from '../../src/pg-proxy/batch.js';

function messages(...frames: Buffer[]): Message[] {
  return new MessageReader().push(Buffer.concat(frames));
}

function session(status: 'I' | 'T' | 'E', statements: Record<string, string> = {}, fence: 'on' | 'skip' = 'on'): SessionState {
  const known = new Map<string, StatementInfo>(Object.entries(statements).map(([name, sql]) => [name, { sql, paramTypes: [], parse: build.parse(name, sql) }]));
  return { status, statements: known, ctx: { fence } } as unknown as SessionState;
}

const run = (sql: string) => [build.parse('', sql), build.bind('', '', []), build.execute(''), build.sync()];

describe('pg-proxy: when the fence is pipelined', () => {
  before(() => loadParser());

  it('pipelines autocommit batches from idle: simple and extended, several statements, errors included', () => {
    for (const sql of ["UPDATE items SET val = 'x' WHERE id = 1", "UPDATE items SET val = 'x' WHERE id = 1; SELECT 1/0", 'SET statement_timeout = 0; SELECT 1', 'CALL p()', 'DISCARD ALL'])
      assert.equal(canPipelineFence(session('I'), messages(query(sql))), true, sql);
    assert.equal(canPipelineFence(session('I'), messages(...run('UPDATE items SET n = n + 1 WHERE id = $1'))), true);
    assert.equal(canPipelineFence(session('I', { s1: 'UPDATE items SET n = 1' }), messages(build.bind('', 's1', []), build.execute(''), build.sync())), true);
    assert.equal(canPipelineFence(session('I'), messages(build.parse('', 'SELECT 1'), build.sync())), true, 'Parse + Sync executes nothing');
  });

  it('refuses transaction control, COPY, and anything it cannot parse (simple protocol)', () => {
    for (const sql of ['BEGIN', 'BEGIN; UPDATE items SET n = 1', "UPDATE items SET n = 1; COMMIT", 'START TRANSACTION', 'SAVEPOINT a', "PREPARE TRANSACTION 'x'", "COMMIT PREPARED 'x'", 'COPY items FROM STDIN', 'COPY items TO STDOUT', 'SELEC 1', 'END', 'ABORT'])
      assert.equal(canPipelineFence(session('I'), messages(query(sql))), false, sql);
  });

  it('refuses inside a transaction, in the test-only skip mode, and extended batches it cannot vouch for', () => {
    const update = run('UPDATE items SET n = 1');
    assert.equal(canPipelineFence(session('T'), messages(...update)), false, 'in a transaction');
    assert.equal(canPipelineFence(session('E'), messages(...update)), false, 'in a failed transaction');
    assert.equal(canPipelineFence(session('I', {}, 'skip'), messages(...update)), false, 'skip mode');
    assert.equal(canPipelineFence(session('I'), messages(...run('COMMIT'))), false, 'COMMIT via Parse');
    assert.equal(canPipelineFence(session('I'), messages(build.bind('', 'unknown', []), build.execute(''), build.sync())), false, 'a statement the session never saw parsed');
    assert.equal(canPipelineFence(session('I', { tx: 'BEGIN' }), messages(build.bind('', 'tx', []), build.execute(''), build.sync())), false, 'a prepared BEGIN');
    assert.equal(canPipelineFence(session('I'), messages(build.execute('cursor'), build.sync())), false, 'an Execute of a portal not bound in the batch');
    assert.equal(canPipelineFence(session('I'), messages(build.parse('', 'UPDATE items SET n = 1'), Buffer.from([0x48, 0, 0, 0, 4]))), false, 'ended by Flush');
    assert.equal(canPipelineFence(session('I'), messages(Buffer.from([0x46, 0, 0, 0, 4]))), false, 'a FunctionCall');
  });
});

/** A simple-protocol Query frame. */
function query(sql: string): Buffer {
  const body = Buffer.from(`${sql}\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('Q', 0, 'latin1');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}
