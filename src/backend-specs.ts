// `--store` and `--cache` specs → adapters. Each kind is one entry in a table (a prefix, a parser
// and an opener that imports its adapter lazily), so adding `redis://…` or `postgres://…` is one
// more entry and loading the CLI never loads a driver it does not use.
import { InvalidOptionError } from './errors.js';
import type { CacheAdapter, StoreAdapter } from './types.js';

export type StoreSpec =
  /** `spec`: as given, for messages (passwords redacted). */
  | { readonly kind: 'sqlite'; readonly spec: string; readonly path: string }
  | { readonly kind: 'postgres'; readonly spec: string; readonly connectionString: string; readonly schema: string | undefined }
  | { readonly kind: 'mysql'; readonly spec: string; readonly uri: string };

export type CacheSpec = { readonly kind: 'memory'; readonly spec: string } | { readonly kind: 'redis'; readonly spec: string; readonly url: string };

/** A url for messages: the password replaced. */
function redact(text: string): string {
  return text.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}

export interface CacheOpenOptions {
  /** @default 100000 */
  readonly maxEntries?: number;
  /** Redis only: how long the cache answers nothing after a lost dataset; at least every engine's leaseTtl. @default 5000 */
  readonly restartQuarantineMs?: number;
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
      if (path.length === 0) throw new InvalidOptionError('a sqlite store needs a file path, e.g. sqlite:./lockstep.db');
      return { kind: 'sqlite', spec: text, path };
    },
    async open(spec) {
      if (spec.kind !== 'sqlite') throw new InvalidOptionError(`not a sqlite store: ${spec.spec}`);
      const { createSqliteStore } = await import('./store/sqlite.js');
      return createSqliteStore({ path: spec.path });
    },
  },
  {
    name: 'postgres',
    syntax: 'postgres://USER@HOST:PORT/DB[?schema=NAME]',
    parse(text) {
      if (!/^postgres(ql)?:\/\//.test(text)) return undefined;
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        throw new InvalidOptionError(`${redact(text)} is not a valid url`);
      }
      // `schema` is Lockstep's, not libpq's: take it off before pg sees the url.
      const schema = url.searchParams.get('schema') ?? undefined;
      url.searchParams.delete('schema');
      return { kind: 'postgres', spec: redact(text), connectionString: url.toString(), schema };
    },
    async open(spec) {
      if (spec.kind !== 'postgres') throw new InvalidOptionError(`not a postgres store: ${spec.spec}`);
      const { createPostgresStore } = await import('./store/postgres.js');
      const store = createPostgresStore({ connectionString: spec.connectionString, ...(spec.schema === undefined ? {} : { schema: spec.schema }) });
      await store.ready(); // fail at start-up, not on the first request
      return store;
    },
  },
  {
    name: 'mysql',
    syntax: 'mysql://USER@HOST:PORT/DB (MariaDB 10.6+)',
    parse(text) {
      if (!/^(mysql|mariadb):\/\//.test(text)) return undefined;
      try {
        new URL(text);
      } catch {
        throw new InvalidOptionError(`${redact(text)} is not a valid url`);
      }
      return { kind: 'mysql', spec: redact(text), uri: text.replace(/^mariadb:/, 'mysql:') };
    },
    async open(spec) {
      if (spec.kind !== 'mysql') throw new InvalidOptionError(`not a mysql store: ${spec.spec}`);
      const { createMysqlStore } = await import('./store/mysql.js');
      const store = createMysqlStore({ uri: spec.uri });
      await store.ready(); // fail at start-up, not on the first request
      return store;
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
      const { createMemoryCache } = await import('./cache/memory.js');
      return createMemoryCache({ maxEntries: options.maxEntries ?? 100_000 });
    },
  },
  {
    name: 'redis',
    syntax: 'redis://HOST:PORT | redis+cluster://HOST:PORT,HOST:PORT',
    parse(text) {
      if (!/^rediss?(\+cluster)?:\/\//.test(text)) return undefined;
      return { kind: 'redis', spec: redact(text), url: text };
    },
    async open(spec, options) {
      if (spec.kind !== 'redis') throw new InvalidOptionError(`not a redis cache: ${spec.spec}`);
      const { createRedisCache } = await import('./cache/redis.js');
      const quarantine = options.restartQuarantineMs;
      const cache = createRedisCache({ url: spec.url, ...(quarantine === undefined ? {} : { restartQuarantine: quarantine }) });
      try {
        await cache.connect(); // fail at start-up, not on the first request
      } catch (error) {
        await cache.close();
        throw error;
      }
      return cache;
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
