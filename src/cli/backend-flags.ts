// `--store SPEC --cache SPEC`, as every command that opens the backends reads them: the flag, then
// LOCKSTEP_STORE / LOCKSTEP_CACHE, then the embedded defaults (an SQLite file and a memory cache).
import { fromEnv, type OptionHelp } from './args.js';
import { parseCacheSpec, parseStoreSpec, supportedCaches, supportedStores, type CacheSpec, type StoreSpec } from '../backend-specs.js';
import type { Env } from './io.js';

export const DEFAULT_STORE = 'sqlite:./lockstep.db';
export const DEFAULT_CACHE = 'memory';

export const BACKEND_OPTIONS = {
  store: { type: 'string' },
  cache: { type: 'string' },
} as const;

export const BACKEND_HELP: readonly OptionHelp[] = [
  ['--store SPEC', `one of: ${supportedStores.join(', ')}`, `LOCKSTEP_STORE, default ${DEFAULT_STORE}`],
  ['--cache SPEC', `one of: ${supportedCaches.join(', ')}`, `LOCKSTEP_CACHE, default ${DEFAULT_CACHE}`],
];

export interface Backends {
  readonly store: StoreSpec;
  readonly cache: CacheSpec;
}

export function resolveBackends(values: { readonly store?: string | undefined; readonly cache?: string | undefined }, env: Env): Backends {
  return {
    store: parseStoreSpec(values.store ?? fromEnv(env, 'LOCKSTEP_STORE') ?? DEFAULT_STORE),
    cache: parseCacheSpec(values.cache ?? fromEnv(env, 'LOCKSTEP_CACHE') ?? DEFAULT_CACHE),
  };
}
