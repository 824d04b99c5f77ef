// A deliberately broken RESP front, for the consistency test's teeth: the same service and front,
// but every SET is acknowledged before its write has run (the write goes on in the background, and
// is lost if the process dies). The harness must catch it.
// Usage: node --import tsx test/helpers/resp-mutant-server.ts STORE_SPEC CACHE_SPEC PORT
import type { WriteThrough } from '../../src/engine/api.js';
import { openCache, openStore, parseCacheSpec, parseStoreSpec } from '../../src/backend-specs.js';
import { listenResp } from '../../src/resp/server.js';
import { createService, type LockstepService } from '../../src/resp/service-port.js';

function ackBeforeWrite(service: LockstepService): LockstepService {
  const wrapped = new Map<string, WriteThrough<unknown>>();
  return {
    ...service,
    engine(namespace) {
      let engine = wrapped.get(namespace);
      if (engine === undefined) {
        const inner = service.engine(namespace);
        engine = Object.create(inner) as WriteThrough<unknown>;
        engine.write = (key, value, options) => {
          inner.write(key, value, options).catch(() => undefined);
          return Promise.resolve({ version: 0 });
        };
        wrapped.set(namespace, engine);
      }
      return engine;
    },
  };
}

const [storeSpec = '', cacheSpec = '', port = '0'] = process.argv.slice(2);
const store = await openStore(parseStoreSpec(storeSpec));
const cache = await openCache(parseCacheSpec(cacheSpec));
const service = createService({ store, cache, audit: { interval: 0 } });
const server = await listenResp(ackBeforeWrite(service), { port: Number(port) });
process.stdout.write(`lockstep RESP listening on ${server.url}\n`);
