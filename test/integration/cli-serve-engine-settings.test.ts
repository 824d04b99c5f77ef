// `lockstep serve`'s engine settings (--ttl, --lease-ttl, --fill-wait, --acknowledge,
// --restart-quarantine): parsed from every source, refused with a usage error when they break a
// rule the engine would otherwise only refuse at start-up, and really handed to the engine and the
// cache (a served write's cache record expires after --ttl; a Redis cache keeps the quarantine).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cacheOpenOptionsOf, engineSettingsOf, parseServeArgs, startServe } from '../../src/cli/commands/serve.js';
import { openCache } from '../../src/backend-specs.js';
import { needService, REDIS_URL } from '../helpers/services.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lockstep-serve-settings-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('lockstep serve: engine settings', () => {
  it('defaults to the library defaults', () => {
    const config = parseServeArgs([], {});
    assert.deepEqual(engineSettingsOf(config), { failurePolicy: 'pragmatic', acknowledge: 'after-cache', leaseTtl: 5000 });
    assert.equal(cacheOpenOptionsOf(config).restartQuarantineMs, 5000);
  });

  it('reads each setting from a flag, a variable or the config file, as a duration', () => {
    const config = parseServeArgs(['--ttl', '30s', '--lease-ttl', '2000', '--fill-wait', '50ms', '--acknowledge', 'after-commit'], {});
    assert.deepEqual(engineSettingsOf(config), { failurePolicy: 'pragmatic', acknowledge: 'after-commit', leaseTtl: 2000, ttl: 30_000, fillWait: 50 });
    const fromEnv = parseServeArgs(['--cache', 'redis://127.0.0.1:6379'], { LOCKSTEP_LEASE_TTL: '8s', LOCKSTEP_FILL_WAIT: '0' });
    assert.deepEqual([fromEnv.leaseTtl, fromEnv.fillWait], [8000, 0]);
    // A lease longer than the adapter's default quarantine raises the quarantine with it.
    assert.equal(cacheOpenOptionsOf(fromEnv).restartQuarantineMs, 8000);
    const explicit = parseServeArgs(['--cache', 'redis://127.0.0.1:6379', '--restart-quarantine', '12s'], {});
    assert.equal(cacheOpenOptionsOf(explicit).restartQuarantineMs, 12_000);
  });

  it('refuses a bad value or a broken rule as a usage error naming the flag', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--lease-ttl', '0'], /--lease-ttl must be a positive duration/],
      [['--ttl', 'soon'], /--ttl must be a positive duration such as 30s/],
      [['--fill-wait=-5'], /--fill-wait must be a non-negative duration/],
      [['--acknowledge', 'early'], /--acknowledge must be after-cache or after-commit/],
      [['--fill-wait', '10s'], /--fill-wait \(10000 ms\) must be at most --lease-ttl \(5000 ms\)/],
      [['--lease-ttl', '2m'], /--lease-ttl \(120000 ms\) must be at most 1m, the tombstone TTL/],
      [['--acknowledge', 'after-commit', '--failure-policy', 'strict'], /--acknowledge after-commit needs --failure-policy pragmatic/],
      [['--restart-quarantine', '10s'], /--restart-quarantine applies to a Redis cache/],
      [['--cache', 'redis://127.0.0.1:6379', '--lease-ttl', '10s', '--restart-quarantine', '6s'], /--restart-quarantine \(6000 ms\) must be at least --lease-ttl \(10000 ms\)/],
    ];
    for (const [argv, message] of cases) assert.throws(() => parseServeArgs(argv, {}), message, argv.join(' '));
  });

  it('serves with them: a written value is cached for --ttl, not the default hour', async () => {
    const config = parseServeArgs(['--port', '0', '--store', `sqlite:${join(dir, 'ttl.db')}`, '--ttl', '30s', '--lease-ttl', '2s', '--log-level', 'silent'], {});
    const handle = await startServe(config);
    try {
      const put = await fetch(`${handle.url}/v1/kv/orders/42`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"total":3}' });
      assert.equal(put.status, 200, await put.clone().text());
      const before = Date.now();
      const state = (await (await fetch(`${handle.url}/v1/kv/orders/42/state`)).json()) as { cache: { kind: string; expiresAt: number } };
      assert.equal(state.cache.kind, 'value');
      const leftMs = state.cache.expiresAt - before;
      // 30 s from the write, seen a moment later: far from the default hour, whatever the machine's load.
      assert.ok(leftMs > 0 && leftMs <= 30_000, `expires in ${leftMs} ms`);
    } finally {
      await handle.close();
    }
  });

  it('hands the quarantine to a Redis cache', async (t) => {
    const redis = await needService('redis', REDIS_URL);
    if (redis.skip) return t.skip(redis.skip);
    const config = parseServeArgs(['--cache', REDIS_URL, '--lease-ttl', '7s'], {});
    const cache = await openCache(config.cache, cacheOpenOptionsOf(config));
    try {
      assert.equal(cache.restartQuarantineMs, 7000);
    } finally {
      await cache.close();
    }
  });
});
