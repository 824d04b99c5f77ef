// The cluster guard reads INFO (run_id, master_replid, uptime) inside every script. On a cluster
// where the adapter's user may not run INFO (an ACL without it, as managed services often set up,
// or `rename-command INFO` in redis.conf), every script fails. Before: connect() succeeded and
// every call then failed forever with a script error that does not say what to change. Now
// connect() rejects with an error that names INFO and the fix, and every call fails with it too
// (until INFO is allowed, which the adapter picks up without a restart). Mutant: cluster-info-unchecked.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { createRedisCache } from '../../src/cache/redis.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { needRedisServer, startRedisClusterWithReplica, startRedisServer } from '../helpers/redis-server.js';

const CLEAR = /INFO.*(ACL|rename)/s;

describe('Redis Cluster cache without the INFO command', () => {
  const { skip } = needRedisServer();

  it('connect() rejects with a clear error, calls fail with it, and allowing INFO lets the adapter serve', { skip }, async () => {
    const cluster = await startRedisClusterWithReplica();
    const { master, replica } = cluster;
    const user = `adv-cluster-guard-${randomUUID().slice(0, 8)}`;
    for (const node of [master, replica]) assert.equal((await node.cli('ACL', 'SETUSER', user, 'on', '>pw', '~*', '&*', '+@all', '-info')).trim(), 'OK');
    const cache = createRedisCache({ url: `redis+cluster://${user}:pw@127.0.0.1:${master.port}`, keyPrefix: `${user}:`, commandTimeout: '2s', onWarning: () => undefined });
    try {
      await assert.rejects(cache.connect(), (error: Error) => {
        assert.match(error.message, CLEAR, error.message);
        return true;
      });
      await assert.rejects(cache.get('ns:k', 1000), (error: Error) => {
        assert.match(error.message, CLEAR, error.message);
        return true;
      });
      for (const node of [master, replica]) assert.equal((await node.cli('ACL', 'SETUSER', user, '+info')).trim(), 'OK');
      await cache.connect();
      // A fresh node: the slot's first claim may be quarantined; any answer of the guard's own proves INFO ran.
      await cache.get('ns:k', 1000).then(
        (got) => assert.equal(got.kind, 'miss'),
        (error: { code?: string }) => assert.equal(error.code, 'E_CACHE_QUARANTINED'),
      );
    } finally {
      await cache.close();
      await cluster.stop();
    }
  });

  it('with INFO renamed in redis.conf (rename-command), connect() and calls fail with the same clear error', { skip }, async () => {
    // One node owning every slot (redis-cli --cluster create needs INFO itself).
    const node = await startRedisServer(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--rename-command', 'INFO', '']);
    const cluster = { stop: () => node.stop() };
    assert.equal((await node.cli('CLUSTER', 'ADDSLOTSRANGE', '0', '16383')).trim(), 'OK');
    for (let i = 0; !(await node.cli('CLUSTER', 'INFO')).includes('cluster_state:ok'); i++) {
      if (i > 200) throw new Error('cluster_state:ok not reached');
      await sleep(50);
    }
    const cache = createRedisCache({ cluster: { rootNodes: [node.url] }, keyPrefix: `adv-cluster-guard-${randomUUID().slice(0, 8)}:`, commandTimeout: '2s', onWarning: () => undefined });
    try {
      await assert.rejects(cache.connect(), (error: Error) => {
        assert.match(error.message, CLEAR, error.message);
        return true;
      });
      await assert.rejects(cache.beginWrite('ns:k', 'w1', 1000), (error: Error) => {
        assert.match(error.message, CLEAR, error.message);
        return true;
      });
    } finally {
      await cache.close();
      await cluster.stop();
    }
  });
});
