// The raw baseline for the load test: a bare Hono app on @hono/node-server doing the same
// requests straight on the store, with no cache, no engine, no logs. Run as a child process:
//   node --import tsx bench/load/baseline-server.ts --store SPEC
// It prints `listening on URL` and stops on SIGTERM.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { openStore, parseStoreSpec } from '../../src/backend-specs.js';

const { values } = parseArgs({ options: { store: { type: 'string' } } });
if (values.store === undefined) throw new Error('--store SPEC is required');
const store = await openStore(parseStoreSpec(values.store));
const WRITE = { journal: false, deadlineMs: 5_000 } as const;

const app = new Hono();
app.get('/v1/kv/:namespace/:key', async (c) => {
  const { namespace, key } = c.req.param();
  const row = await store.read(namespace, key);
  if (row === undefined) return c.json({ error: { code: 'E_NOT_FOUND', message: 'not found' } }, 404);
  return c.json({ namespace, key, value: JSON.parse(row.payload) as unknown, version: row.version });
});
app.put('/v1/kv/:namespace/:key', async (c) => {
  const { namespace, key } = c.req.param();
  const text = await c.req.text();
  JSON.parse(text); // the service validates its bodies too
  const { version } = await store.write(namespace, key, text, WRITE);
  return c.json({ namespace, key, version });
});
app.get('/healthz', (c) => c.json({ status: 'ok' }));

const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => {
  process.stdout.write(`listening on http://127.0.0.1:${info.port}\n`);
});
process.once('SIGTERM', () => {
  server.close(() => void store.close().then(() => process.exit(0)));
});
