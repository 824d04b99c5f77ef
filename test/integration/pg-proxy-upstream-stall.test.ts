// The proxy's own short-lived connections to PostgreSQL, against an upstream that accepts the
// connection and never answers (a partition, an address a failover moved): the install at start
// and `lockstep audit --pg-proxy` must fail within their bound (UPSTREAM_CONNECT_MS, × 2 slack)
// with an error that says what happened, and leave no connection open. Before, both waited forever:
// their pg.Client had no connection timeout, so `lockstep proxy` neither started nor exited (exit
// status 3, "could not start", was never reached).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMemoryCache } from '../../src/cache/memory.js';
import { auditPgProxy } from '../../src/pg-proxy/audit.js';
import { startPgProxy } from '../../src/pg-proxy/index.js';
import { UPSTREAM_CONNECT_MS } from '../../src/pg-proxy/upstream-client.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { startStallRelay, type StallRelay } from '../helpers/stall-relay.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const BOUND_MS = 2 * UPSTREAM_CONNECT_MS;

async function failsWithin(work: Promise<unknown>): Promise<{ message: string; ms: number }> {
  const started = performance.now();
  const outcome = await Promise.race([
    work.then(
      () => 'succeeded',
      (error: Error) => error.message,
    ),
    new Promise<string>((resolve) => setTimeout(() => resolve(`still waiting after ${BOUND_MS} ms`), BOUND_MS).unref()),
  ]);
  return { message: outcome, ms: performance.now() - started };
}

describe('pg-proxy: an upstream that accepts and never answers', { skip: service.skip, timeout: 120_000 }, () => {
  let relay: StallRelay;
  before(async () => {
    relay = await startStallRelay(DATABASE_URL);
    relay.stall();
  });
  after(async () => {
    await relay?.close();
  });

  it('fails the start with a clear error and keeps no connection', async () => {
    const cache = createMemoryCache({ maxEntries: 100 });
    const started = startPgProxy({ upstream: relay.urlFor(DATABASE_URL), cache, tables: ['items'], port: 0 });
    const { message } = await failsWithin(started);
    assert.match(message, /PostgreSQL did not complete the connection within \d+ ms/);
    await until(() => relay.connections === 0, 'the install connection to close');
    await cache.close();
  });

  it('fails `lockstep audit --pg-proxy` with a clear error and keeps no connection', async () => {
    const cache = createMemoryCache({ maxEntries: 100 });
    const { message } = await failsWithin(auditPgProxy({ upstream: relay.urlFor(DATABASE_URL), cache }));
    assert.match(message, /PostgreSQL did not complete the connection within \d+ ms/);
    await until(() => relay.connections === 0, "the audit's connection to close");
    await cache.close();
  });
});

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (!condition()) {
    assert.ok(performance.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
