// A `lockstep serve` start that fails after it opened something (the store opened, then the cache
// did not answer) closes what it opened, within a bound. The failed start used to
// close with an infinite deadline: setTimeout(Infinity) fires after 1 ms (Node warns
// TimeoutOverflowWarning), so every close that took longer than 1 ms was "abandoned", and the
// store's connections were left to end on their own after the start had already failed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { parseServeArgs, startServe } from '../../src/cli/commands/serve.js';
import { DATABASE_URL, needService, REDIS_URL } from '../helpers/services.js';
import { startStallRelay, type StallRelay } from '../helpers/stall-relay.js';

const pgService = await needService('PostgreSQL', DATABASE_URL);
const redisService = await needService('Redis', REDIS_URL);
const skip = pgService.skip || redisService.skip;

function capture() {
  const lines: Array<{ msg?: string; abandoned?: boolean; step?: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe('lockstep serve: a start that fails after the store opened', { skip, timeout: 60_000 }, () => {
  let store: StallRelay;
  let cache: StallRelay;
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  before(async () => {
    store = await startStallRelay(DATABASE_URL);
    cache = await startStallRelay(REDIS_URL);
    cache.stall();
    process.on('warning', onWarning);
    await admin.query('DROP SCHEMA IF EXISTS lockstep_failed_start CASCADE');
  });
  after(async () => {
    process.off('warning', onWarning);
    await store?.close();
    await cache?.close();
  });

  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  after(async () => {
    await admin.query('DROP SCHEMA IF EXISTS lockstep_failed_start CASCADE');
    await admin.end();
  });

  const config = () =>
    parseServeArgs(['--port', '0', '--store', `${store.urlFor(DATABASE_URL)}?schema=lockstep_failed_start`, '--cache', cache.urlFor(REDIS_URL), '--audit-interval', '0'], {});

  it('closes the store it opened (not abandoned after 1 ms) and rejects with the cache error', async () => {
    const { logger, lines } = capture();
    await assert.rejects(startServe(config(), logger), /Redis cache connect timed out/);
    await new Promise((resolve) => setImmediate(resolve)); // process warnings are emitted on a later tick
    const closes = lines.filter((l) => l.step === 'store');
    assert.deepEqual(closes.map((l) => l.abandoned ?? false), [false], `the store's close: ${JSON.stringify(closes)}`);
    assert.deepEqual(warnings.filter((w) => w.name === 'TimeoutOverflowWarning').map((w) => w.message), []);
  });
});
