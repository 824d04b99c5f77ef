// acknowledge 'after-commit' over a real Redis under load and script loss: writers on two instances
// (two adapters, so their write calls are coalesced into writeBatch runs on two connections, with
// completions riding on the next lease), readers on two more, a few hot keys, a short value TTL so
// readers keep missing and filling, and the server's script cache flushed every few milliseconds, so
// runs go EVALSHA → NOSCRIPT → EVAL and a run of one call and a batch of several can land out of the
// order they were made. The history's fast check (src/audit/history.ts): no read returns a version
// older than a write acknowledged before it began, or a value no write wrote.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createClient, type RedisClientType } from 'redis';
import { checkVersions, historyNow, type HistoryEntry } from '../../src/audit/history.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import { needRedisServer, type RedisServer, startRedisServer, untilUptime } from '../helpers/redis-server.js';

const installed = needRedisServer();
const KEYS = ['a', 'b', 'c'];
const RUN_MS = 3_000;

describe("acknowledge 'after-commit' over Redis: a history under script loss", { skip: installed.skip }, () => {
  let server: RedisServer;
  let admin: RedisClientType;
  let dir: string;

  before(async () => {
    server = await startRedisServer();
    await untilUptime(server, 2);
    admin = createClient({ url: server.url });
    await admin.connect();
    dir = mkdtempSync(join(tmpdir(), 'lockstep-early-ack-history-'));
  });
  after(async () => {
    await admin?.close().catch(() => undefined);
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('no read returns a version older than a write acknowledged before it began', async (t) => {
    const prefix = `hist-${randomUUID().slice(0, 8)}:`;
    const path = join(dir, 'store.db');
    const closers: Array<() => Promise<void>> = [];
    const open = (acknowledge: 'after-commit' | 'after-cache'): WriteThrough<string> => {
      const store = createSqliteStore({ path });
      const cache = createRedisCache({ url: server.url, keyPrefix: prefix, restartQuarantine: '2s', commandTimeout: '1s' });
      const engine = createWriteThrough<string>({ store, cache, namespace: 'ns', leaseTtl: '2s', ttl: '30ms', acknowledge, journal: false, metrics: false });
      closers.push(async () => {
        await engine.close();
        await cache.close();
        await store.close();
      });
      return engine;
    };
    const writers = [open('after-commit'), open('after-commit')];
    const readers = [open('after-cache'), open('after-cache')];
    const history: HistoryEntry[] = [];
    let serial = 0;
    let stop = false;
    let flushes = 0;
    const flusher = (async () => {
      while (!stop) {
        await admin.sendCommand(['SCRIPT', 'FLUSH']);
        flushes++;
        await sleep(3);
      }
    })();
    const writer = async (engine: WriteThrough<string>, id: string, lane: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = KEYS[(i + lane) % KEYS.length]!;
        const value = `${id}-${++serial}`;
        const invokedAt = historyNow();
        try {
          const { version } = await engine.write(key, value);
          history.push({ process: id, key, kind: 'write', value, version, invokedAt, returnedAt: historyNow(), outcome: 'ok' });
          // Right after the acknowledgement, in its tick (the completion is still held): another
          // instance reads the key.
          const readAt = historyNow();
          await readers[lane % readers.length]!.readEntry(key).then(
            (entry) => history.push({ process: `${id}.read`, key, kind: 'read', value: entry.value, version: entry.version, invokedAt: readAt, returnedAt: historyNow(), outcome: 'ok' }),
            () => history.push({ process: `${id}.read`, key, kind: 'read', invokedAt: readAt, returnedAt: historyNow(), outcome: 'fail' }),
          );
        } catch {
          history.push({ process: id, key, kind: 'write', value, invokedAt, returnedAt: historyNow(), outcome: 'unknown' });
        }
      }
    };
    const reader = async (engine: WriteThrough<string>, id: string, lane: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = KEYS[(i * 7 + lane) % KEYS.length]!;
        const invokedAt = historyNow();
        try {
          const entry = await engine.readEntry(key);
          history.push({ process: id, key, kind: 'read', value: entry.value, version: entry.version, invokedAt, returnedAt: historyNow(), outcome: 'ok' });
        } catch {
          history.push({ process: id, key, kind: 'read', invokedAt, returnedAt: historyNow(), outcome: 'fail' });
        }
        if (i % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const clients = [
      ...writers.flatMap((engine, w) => [0, 1, 2].map((lane) => writer(engine, `w${w}.${lane}`, lane))),
      ...readers.flatMap((engine, r) => [0, 1, 2, 3].map((lane) => reader(engine, `r${r}.${lane}`, lane))),
    ];
    await sleep(RUN_MS);
    stop = true;
    await Promise.all(clients);
    await flusher;
    for (const close of closers) await close();
    const writes = history.filter((e) => e.kind === 'write' && e.outcome === 'ok').length;
    const reads = history.filter((e) => e.kind === 'read' && e.outcome === 'ok').length;
    assert.ok(writes > 50 && reads > 200, `enough happened: ${writes} writes, ${reads} reads, ${flushes} script flushes`);
    const unknown = history.filter((e) => e.kind === 'write' && e.outcome === 'unknown').length;
    t.diagnostic(`${writes} writes (${unknown} unknown), ${reads} reads, ${flushes} script flushes`);
    const violations = checkVersions(history);
    assert.deepEqual(
      violations.slice(0, 3).map((v) => `${v.key}: ${v.reason}`),
      [],
      `${violations.length} violations in ${writes} writes, ${reads} reads`,
    );
  });
});
