// Keyv and cache-manager writing through to SQL, on the embedded defaults (a SQLite file and an
// in-memory cache): swap the Keyv store for KeyvLockstep and every set/delete/clear keeps the protocol.
// Run: node --import tsx examples/keyv.ts
import { createCache } from 'cache-manager';
import Keyv from 'keyv';
import { createMemoryCache } from '../src/index.js';
import { KeyvLockstep } from '../src/integrations/keyv.js';
import { createSqliteStore } from '../src/store/sqlite.js';

const store = createSqliteStore({ path: process.env.LOCKSTEP_EXAMPLE_DB ?? 'example.db' });
const cache = createMemoryCache({ maxEntries: 10_000 });
const adapter = new KeyvLockstep({ store, cache, ttl: '10m' });

// Keyv: namespace `users` lives in the Lockstep namespace `keyv.users`.
const users = new Keyv({ store: adapter, namespace: 'users' });
await users.set('42', { name: 'Ada' });
console.log('keyv get', await users.get('42'));
console.log('row in SQL at version', (await store.read('keyv.users', '42'))?.version);

// cache-manager over the same Keyv: set writes the store first, then the cache; ttl in ms.
const userCache = createCache({ stores: [users], ttl: 60_000 });
await userCache.set('43', { name: 'Grace' });
console.log('cache-manager get', await userCache.get('43'));
console.log('cache-manager wrap', await userCache.wrap('44', async () => ({ name: 'Edsger' })));

// Another service updates the row with plain SQL: triggers version and journal it, and the journal
// replay (polled every 100 ms; here, at once) invalidates the cached copy by version.
const row = JSON.stringify({ value: JSON.stringify({ value: { name: 'Ada Lovelace' } }), expiresAt: null });
store.database.prepare("UPDATE lockstep_kv SET value = ? WHERE namespace = 'keyv.users' AND key = '42'").run(row);
await adapter.drainJournal();
console.log('after plain SQL', await userCache.get('42'));
console.log('state', (await adapter.writeThrough('users').inspect('42')).state);

await userCache.del('42');
console.log('after delete', await users.get('42'));

await userCache.disconnect(); // Keyv.disconnect → the adapter's engines and journal poller
await store.close(); // the store and cache are yours: close them yourself
