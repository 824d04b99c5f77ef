// QUIT ends the connection as Redis does: the reply, then the connection closes, and nothing sent
// after QUIT runs, whether it came in the same packet or later from a client that keeps its side of
// the connection open. (The front used to half-close after QUIT and keep reading: a command pipelined
// behind QUIT ran when more bytes arrived, and a half-open client held its connection for ever.)
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { after, before, it } from 'node:test';
import { respFixture, type RespFixture } from '../helpers/resp-fixture.js';
import { command as c, pipeline } from '../helpers/resp-raw.js';

let f: RespFixture;
before(async () => {
  f = await respFixture('sqlite');
});
after(() => f.close());

it('QUIT: +OK, then the server closes the connection; nothing after QUIT runs', async () => {
  let writes = 0;
  // Every store write is counted (a delay of 0 ms is a hook on the real write).
  f.store.faults.always('write', { kind: 'delay', when: 'before', ms: () => (writes++, 0) });
  const socket = new Socket({ allowHalfOpen: true }); // a client that keeps its side open
  let data = '';
  let ended = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  socket.on('end', () => (ended = true));
  await new Promise<void>((resolve) => socket.connect(f.port, '127.0.0.1', resolve));
  const gotOk = new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString();
      if (data.includes('+OK\r\n')) resolve();
    }),
  );
  socket.write(pipeline(c('SET', `${f.ns}:before`, 'x'), c('QUIT'), c('SET', `${f.ns}:same-packet`, 'y')));
  await gotOk;
  // More commands after QUIT, on the side of the connection the client kept open.
  if (!ended) socket.write(pipeline(c('SET', `${f.ns}:later`, 'z'), c('PING')));
  const bound = setTimeout(() => socket.destroy(new Error('the server did not close the connection after QUIT')), 10_000);
  await closed;
  clearTimeout(bound);
  assert.ok(ended, 'the server ended the connection (it did not wait for the client)');
  assert.equal(data, '+OK\r\n+OK\r\n', 'the SET before QUIT and QUIT itself were answered, nothing else');
  assert.equal(writes, 1, 'only the SET before QUIT reached the store');
  assert.equal(await f.stored(f.ns, 'same-packet'), undefined);
  assert.equal(await f.stored(f.ns, 'later'), undefined);
});
