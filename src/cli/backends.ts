// `--store` and `--cache` specs → adapters. Each kind is one entry in a table (a prefix, a parser
// and an opener that imports its adapter lazily), so adding `redis://…` or `postgres://…` is one
// more entry and loading the CLI never loads a driver it does not use.
import { InvalidOptionError } from '../errors.js';
import type { CacheAdapter, StoreAdapter } from '../types.js';

export interface StoreSpec {
  readonly kind: 'sqlite';
  /** As given on the command line, for messages. */
  readonly spec: string;
  readonly path: string;
}

export interface CacheSpec {
  readonly kind: 'memory';
  readonly spec: string;
}

export interface CacheOpenOptions {
  /** @default 100000 */
  readonly maxEntries?: number;
}

interface Kind<Spec, Adapter, OpenOptions> {
  readonly name: string;
  /** How the kind is written, for help and error messages. */
  readonly syntax: string;
  /** Returns the spec when `text` is of this kind, undefined when it is not; throws when it is but malformed. */
  parse(text: string): Spec | undefined;
  open(spec: Spec, options: OpenOptions): Promise<Adapter>;
}

const storeKinds: ReadonlyArray<Kind<StoreSpec, StoreAdapter, Record<string, never>>> = [
  {
    name: 'sqlite',
    syntax: 'sqlite:PATH',
    parse(text) {
      if (!text.startsWith('sqlite:')) return undefined;
      const path = text.slice('sqlite:'.length);
      if (path.length === 0) throw new InvalidOptionError('--store sqlite: needs a file path, e.g. sqlite:./lockstep.db');
      return { kind: 'sqlite', spec: text, path };
    },
    async open(spec) {
      const { createSqliteStore } = await import('../store/sqlite.js');
      return createSqliteStore({ path: spec.path });
    },
  },
];

const cacheKinds: ReadonlyArray<Kind<CacheSpec, CacheAdapter, CacheOpenOptions>> = [
  {
    name: 'memory',
    syntax: 'memory',
    parse(text) {
      return text === 'memory' ? { kind: 'memory', spec: text } : undefined;
    },
    async open(_spec, options) {
      const { createMemoryCache } = await import('../cache/memory.js');
      return createMemoryCache({ maxEntries: options.maxEntries ?? 100_000 });
    },
  },
];

export const supportedStores: readonly string[] = storeKinds.map((k) => k.syntax);
export const supportedCaches: readonly string[] = cacheKinds.map((k) => k.syntax);

function parseWith<Spec>(kinds: ReadonlyArray<Kind<Spec, unknown, never>>, text: string, what: string): Spec {
  for (const kind of kinds) {
    const spec = kind.parse(text);
    if (spec !== undefined) return spec;
  }
  throw new InvalidOptionError(
    `unsupported ${what} ${JSON.stringify(text)}: supported ${what}s are ${kinds.map((k) => k.syntax).join(', ')}`,
  );
}

export function parseStoreSpec(text: string): StoreSpec {
  return parseWith(storeKinds, text, 'store');
}

export function parseCacheSpec(text: string): CacheSpec {
  return parseWith(cacheKinds, text, 'cache');
}

export async function openStore(spec: StoreSpec): Promise<StoreAdapter> {
  const kind = storeKinds.find((k) => k.name === spec.kind);
  if (kind === undefined) throw new InvalidOptionError(`unsupported store ${JSON.stringify(spec.spec)}`);
  return kind.open(spec, {});
}

export async function openCache(spec: CacheSpec, options: CacheOpenOptions = {}): Promise<CacheAdapter> {
  const kind = cacheKinds.find((k) => k.name === spec.kind);
  if (kind === undefined) throw new InvalidOptionError(`unsupported cache ${JSON.stringify(spec.spec)}`);
  return kind.open(spec, options);
}
