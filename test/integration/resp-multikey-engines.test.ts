// A multi-key command (MGET, DEL, EXISTS) over keys of many namespaces made every namespace's
// engine before reading the first key, and held them all until it answered: one MGET of 4,000 new
// namespaces put 4,000 engines in the pool at once (maxEngines is 1,000); 50 such MGETs waiting at
// their first reads (a stalled cache) held +931 MB of heap after gc. An engine is now fetched when
// its key's turn comes (the keys are all authorized first, as before): +46 MB, as for one namespace.
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { createGate } from '../../src/chaos/faults.js';
import { respFixtures } from '../helpers/resp-fixture.js';
import { command as c } from '../helpers/resp-raw.js';

const setup = respFixtures();

describe('RESP multi-key commands and the engine pool', () => {
  for (const name of ['MGET', 'EXISTS', 'DEL']) {
    it(`${name} of 2,000 keys in 2,000 new namespaces: with its reads held, the pool holds the engines of the keys in flight, not of every key`, async () => {
      const f = await setup();
      const gate = createGate();
      f.store.faults.always('read', { kind: 'pause', when: 'before', gate });
      f.cache.faults.always('get', { kind: 'pause', when: 'before', gate });
      const socket = new Socket();
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.connect(f.port, '127.0.0.1', () => resolve()));
      try {
        const before = f.service.sweepEngines() >= 0 ? (await f.service.stats()).namespaces : 0;
        socket.write(c(name, ...Array.from({ length: 2_000 }, (_, i) => `${f.ns.replace(/[^A-Za-z0-9]/g, '')}x${i}:k`)));
        await gate.reached;
        const held = (await f.service.stats()).namespaces - before;
        assert.ok(held <= 16, `${held} engines in the pool while the first reads of one ${name} wait (at most 16 reads are in flight)`);
      } finally {
        socket.destroy();
        f.store.faults.clear();
        f.cache.faults.clear();
        gate.release();
      }
    });
  }
});
