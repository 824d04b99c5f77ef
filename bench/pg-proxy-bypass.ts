// Bypass bound of the PostgreSQL proxy: a write straight to PostgreSQL (not through the proxy) →
// the first read through the proxy that returns it. The key is cached before each write; the time
// runs from the write's acknowledgement by PostgreSQL to the first proxy read showing the new value
// (reads in a tight loop). Prints p50/p95/p99/max in ms. Needs PostgreSQL (DATABASE_URL).
//   node --import tsx bench/pg-proxy-bypass.ts [iterations=300]
import pg from 'pg';
import { createProxyDatabase, startTestProxy } from '../test/helpers/pg-proxy-fixture.js';

const iterations = Number(process.argv[2] ?? 300);
const db = await createProxyDatabase('bypass_bench', 10);
const proxy = await startTestProxy(db);
const viaProxy = new pg.Client({ connectionString: proxy.url });
const direct = new pg.Client({ connectionString: db.url });
await viaProxy.connect();
await direct.connect();
const lags: number[] = [];
try {
  for (let i = 0; i < iterations; i++) {
    const id = 1 + (i % 10);
    await viaProxy.query('SELECT val FROM items WHERE id = $1', [id]);
    await viaProxy.query('SELECT val FROM items WHERE id = $1', [id]); // cached
    const value = `bypass-${i}`;
    await direct.query('UPDATE items SET val = $2 WHERE id = $1', [id, value]);
    const acknowledged = performance.now();
    for (;;) {
      const { rows } = await viaProxy.query('SELECT val FROM items WHERE id = $1', [id]);
      if (rows[0].val === value) break;
      if (performance.now() - acknowledged > 5_000) throw new Error('not visible within 5 s');
    }
    lags.push(performance.now() - acknowledged);
  }
} finally {
  await viaProxy.end();
  await direct.end();
  await proxy.close(1000);
  await db.drop();
}
lags.sort((a, b) => a - b);
const q = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))]!.toFixed(1);
console.log(JSON.stringify({ iterations, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: lags[lags.length - 1]!.toFixed(1), unit: 'ms' }));
