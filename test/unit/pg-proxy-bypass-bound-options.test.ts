// The bypass bound's options are refused before the proxy touches the database: a bound below
// 100 ms, not a number, or one a poll interval would cross between two passes (every read would
// then pass through). The upstream here is a port nothing listens on: a refusal that came from
// connecting would name the connection, not the option.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createMemoryCache } from '../../src/cache/memory.js';
import { startPgProxy } from '../../src/pg-proxy/index.js';

const base = { upstream: 'postgres://nobody@127.0.0.1:1/none', cache: createMemoryCache({ maxEntries: 10 }), tables: ['items'], port: 0 };

it('bypassBoundMs: at least 100 ms, a number, and at least twice the drainer poll', async () => {
  await assert.rejects(startPgProxy({ ...base, bypassBoundMs: 50 }), /bypassBoundMs must be a number of ms, at least 100/);
  await assert.rejects(startPgProxy({ ...base, bypassBoundMs: Number.NaN }), /bypassBoundMs must be a number of ms/);
  await assert.rejects(startPgProxy({ ...base, drainPollMs: 600 }), /bypassBoundMs \(1000\) must be at least twice drainPollMs \(600\)/);
  await assert.rejects(startPgProxy({ ...base, bypassBoundMs: 5_000, drainPollMs: 3_000 }), /must be at least twice drainPollMs/);
});
