// RESP fronts for the consistency test's control runs, each over the same store and cache specs as
// `lockstep serve`:
//   jitter            the real front and engine, with up to 15 ms of delay after every store read
//                     and before every cache publish (fills, completed writes): this widens the
//                     races the protocol must win: must pass;
//   naive             the same delays (before its cache SET), but each namespace served by the
//                     seed's naive write-through
//                     (src/audit/naive.ts: unconditional cache SET after commit, fills without
//                     leases): must be caught;
//   ack-before-write  the real engine, but every SET is acknowledged before its write has run (the
//                     write goes on in the background, and is lost if the process dies): must be caught.
// Usage: node --import tsx test/helpers/resp-mutant-server.ts MODE STORE_SPEC CACHE_SPEC PORT TAG
import type { Engine } from '../../src/engine/api.js';
import { createNaiveWriteThrough, createRedisNaiveCache, type NaiveCache } from '../../src/audit/naive.js';
import { openCache, openStore, parseCacheSpec, parseStoreSpec } from '../../src/backend-specs.js';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import { listenResp } from '../../src/resp/server.js';
import { createService, type LockstepService } from '../../src/resp/service-port.js';

export type MutantMode = 'jitter' | 'naive' | 'ack-before-write';

/** The same service with each namespace's engine replaced (made once per namespace). */
function replacingEngines(service: LockstepService, make: (namespace: string) => Engine<unknown>): LockstepService {
  const made = new Map<string, Engine<unknown>>();
  return {
    ...service,
    engine(namespace) {
      let engine = made.get(namespace);
      if (engine === undefined) {
        engine = make(namespace);
        made.set(namespace, engine);
      }
      return engine;
    },
  };
}

function ackBeforeWrite(service: LockstepService): LockstepService {
  return replacingEngines(service, (namespace) => {
    const inner = service.engine(namespace);
    const engine = Object.create(inner) as Engine<unknown>;
    engine.write = (key, value, options) => {
      inner.write(key, value, options).catch(() => undefined);
      return Promise.resolve({ version: 0 });
    };
    return engine;
  });
}

function naive(service: LockstepService, store: ChaosStore, cache: NaiveCache): LockstepService {
  // The front calls write, readEntry and delete only (plain SET, GET, DEL in the consistency run).
  return replacingEngines(service, (namespace) => createNaiveWriteThrough({ store, cache, namespace }) as unknown as Engine<unknown>);
}

/** 0-15 ms, at random. */
const jitter = (): number => Math.floor(Math.random() * 16);

/** The naive cache with the same delay before each SET as the engine's publishes get. */
function delayedSets(cache: NaiveCache): NaiveCache {
  return { ...cache, set: async (key, value, ttlMs) => {
    await new Promise((resolve) => setTimeout(resolve, jitter()));
    return cache.set(key, value, ttlMs);
  } };
}

const [mode = 'jitter', storeSpec = '', cacheSpec = '', port = '0', tag = 'x'] = process.argv.slice(2) as [MutantMode, string, string, string, string];
const store = new ChaosStore(await openStore(parseStoreSpec(storeSpec)));
const cache = new ChaosCache(await openCache(parseCacheSpec(cacheSpec)));
if (mode !== 'ack-before-write') {
  store.faults.always('read', { kind: 'delay', when: 'after', ms: jitter });
  cache.faults.always('fill', { kind: 'delay', when: 'before', ms: jitter });
  cache.faults.always('completeWrite', { kind: 'delay', when: 'before', ms: jitter });
}
const service = createService({ store, cache, audit: { interval: 0 } });
const front =
  mode === 'ack-before-write'
    ? ackBeforeWrite(service)
    : mode === 'naive'
      ? naive(service, store, delayedSets(await createRedisNaiveCache({ url: cacheSpec, keyPrefix: `lockstep-naive-${tag}:` })))
      : service;
const server = await listenResp(front, { port: Number(port) });
process.stdout.write(`lockstep RESP listening on ${server.url}\n`);
