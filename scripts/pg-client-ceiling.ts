// The ceiling of the pg-proxy bench's client: the same node-postgres clients and closed loops as
// bench/suites/pg-proxy.ts (SELECT * FROM items WHERE id = $1, extended protocol, 64 in flight) against
// a server in another process that answers every batch at once with a canned answer of the same
// shape (no database, no proxy work): no proxy can serve the bench's cached read faster than this,
// on this machine. Prints ops/s and this client process's CPU time per operation.
//   node --import tsx scripts/pg-client-ceiling.ts [inFlight=64] [seconds=3]
import { fork } from 'node:child_process';
import { createServer } from 'node:net';
import pg from 'pg';

const inFlight = Number(process.argv[2] ?? 64);
const seconds = Number(process.argv[3] ?? 3);

function frame(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
const cstr = (s: string) => Buffer.from(`${s}\0`);

if (process.argv[2] === 'serve') {
  // ParseComplete, BindComplete, RowDescription (id int4, val text), DataRow, CommandComplete, ReadyForQuery.
  const column = (name: string, oid: number, size: number) => {
    const b = Buffer.alloc(18);
    b.writeInt32BE(0, 0); b.writeInt16BE(0, 4); b.writeInt32BE(oid, 6); b.writeInt16BE(size, 10); b.writeInt32BE(-1, 12); b.writeInt16BE(0, 16);
    return Buffer.concat([cstr(name), b]);
  };
  const count = Buffer.alloc(2); count.writeInt16BE(2);
  const row = Buffer.concat([count, Buffer.from([0, 0, 0, 2]), Buffer.from('42'), Buffer.from([0, 0, 0, 3]), Buffer.from('v42')]);
  const answer = Buffer.concat([frame('1', Buffer.alloc(0)), frame('2', Buffer.alloc(0)), frame('T', Buffer.concat([count, column('id', 23, 4), column('val', 25, -1)])), frame('D', row), frame('C', cstr('SELECT 1')), frame('Z', Buffer.from('I'))]);
  const hello = Buffer.concat([frame('R', Buffer.from([0, 0, 0, 0])), frame('S', Buffer.concat([cstr('client_encoding'), cstr('UTF8')])), frame('K', Buffer.alloc(8)), frame('Z', Buffer.from('I'))]);
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    let started = false;
    socket.on('data', (chunk: Buffer) => {
      if (!started) {
        started = true;
        socket.write(hello);
        return;
      }
      // One Sync per batch: answer each.
      let syncs = 0;
      for (let i = 0; i + 5 <= chunk.length; i += 1 + chunk.readInt32BE(i + 1)) if (chunk[i] === 0x53) syncs++;
      for (let k = 0; k < syncs; k++) socket.write(answer);
      if (chunk[0] === 0x58) socket.end();
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port));
} else {
  const child = fork(new URL(import.meta.url).pathname, ['serve'], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
  const clients = await Promise.all(Array.from({ length: inFlight }, async () => {
    const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/x` });
    await c.connect();
    return c;
  }));
  let ops = 0;
  const cpu = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  await Promise.all(clients.map(async (c, k) => {
    for (let i = 0; performance.now() < end; i++, ops++) await c.query('SELECT * FROM items WHERE id = $1', [1 + ((k * 7919 + i) % 1000)]);
  }));
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ inFlight, opsPerSec: Math.round(ops / seconds), clientCpuUsPerOp: Math.round((used.user + used.system) / ops) }));
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  child.kill();
}
