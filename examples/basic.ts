// The seed's write, read and delete on embedded defaults: a SQLite file and an in-memory cache.
// Run: node --import tsx examples/basic.ts
import { createMemoryCache, createWriteThrough, type PreconditionFailedError } from '../src/index.js';
import { createSqliteStore } from '../src/store/sqlite.js';

interface User {
  name: string;
  email: string;
}

const store = createSqliteStore({ path: process.env.LOCKSTEP_EXAMPLE_DB ?? 'example.db' });
const cache = createMemoryCache({ maxEntries: 10_000 });
const users = createWriteThrough<User>({ store, cache, namespace: 'users', ttl: '10m' });

// Write: the store commits first, then the cache; resolves once the write is safe.
const { version } = await users.write('42', { name: 'Ada', email: 'ada@example.com' });
console.log('written at version', version);

// Read: served from the cache; a miss reads the store and fills the cache under a lease.
const entry = await users.readEntry('42');
console.log('read', entry.value, 'from', entry.source);

// Both sides of the key and its state (C: synchronized).
console.log('state', (await users.inspect('42')).state);

// Conditional writes, checked in the store's own transaction: compare-and-set, create-only.
const updated = await users.write('42', { name: 'Ada L.', email: 'ada@example.com' }, { ifVersion: version });
console.log('compare-and-set wrote version', updated.version);
await users.write('42', { name: 'Eve', email: 'eve@example.com' }, { ifAbsent: true }).catch((error: PreconditionFailedError) => {
  console.log('create-only refused:', error.code, 'current version', error.currentVersion);
});

// Delete: from the store, then a tombstone in the cache ("not found" without a store read).
await users.delete('42');
console.log('after delete', await users.read('42'));

await users.close();
await store.close();
