// The four key commands (get, put, del, inspect) speak to a KvClient: the engine in this process
// over `--store/--cache` (a real write-through), or a running service over `--url` (HTTP). Which
// one is chosen here, from the flags and the environment, so every command reads them alike
// (run.ts opens it).
import type { KeyInspection, ReadSource } from '../../engine/api.js';
import { fromEnv, UsageError, type OptionHelp } from '../args.js';
import { BACKEND_HELP, BACKEND_OPTIONS, resolveBackends, type Backends } from '../backend-flags.js';
import type { Env } from '../io.js';

export interface KvGetResult {
  readonly found: boolean;
  readonly value: unknown;
  /** The store version the answer reflects (0 when the key was never written). */
  readonly version: number;
  /** Where the answer came from (hit, miss, bypass, store-fallback); undefined when the service did not say. */
  readonly source: ReadSource | undefined;
}

export interface KvClient {
  /** Where the commands went, for messages: `sqlite:./lockstep.db + memory` or the url. */
  readonly target: string;
  get(key: string): Promise<KvGetResult>;
  put(key: string, value: unknown, ttlMs: number | undefined): Promise<{ readonly version: number }>;
  del(key: string): Promise<{ readonly version: number; readonly existed: boolean }>;
  inspect(key: string): Promise<KeyInspection>;
  close(): Promise<void>;
}

export type KvTarget = ({ readonly kind: 'local' } & Backends) | { readonly kind: 'remote'; readonly url: URL; readonly token: string | undefined };

export const TARGET_OPTIONS = {
  ...BACKEND_OPTIONS,
  url: { type: 'string' },
  token: { type: 'string' },
} as const;

export const TARGET_HELP: readonly OptionHelp[] = [
  ...BACKEND_HELP,
  ['--url URL', 'a running `lockstep serve` instead of --store/--cache', 'LOCKSTEP_URL'],
  ['--token T', 'with --url: sent as Authorization: Bearer T', 'LOCKSTEP_TOKEN (prefer it: flags show in ps)'],
];

/**
 * --url (or LOCKSTEP_URL) selects the service; --store/--cache flags select the backends and win
 * over LOCKSTEP_URL; giving both kinds of flag is a usage error.
 */
export function resolveTarget(
  values: { readonly store?: string | undefined; readonly cache?: string | undefined; readonly url?: string | undefined; readonly token?: string | undefined },
  env: Env,
): KvTarget {
  const backendFlags = values.store !== undefined || values.cache !== undefined;
  if (values.url !== undefined && backendFlags) throw new UsageError('give --url or --store/--cache, not both');
  const url = values.url ?? (backendFlags ? undefined : fromEnv(env, 'LOCKSTEP_URL'));
  if (url === undefined) {
    if (values.token !== undefined) throw new UsageError('--token goes with --url (the service checks it)');
    return { kind: 'local', ...resolveBackends(values, env) };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(url)} is not a url (e.g. http://127.0.0.1:8080)`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`--url must be http:// or https:// (got ${parsed.protocol})`);
  const token = values.token ?? fromEnv(env, 'LOCKSTEP_TOKEN');
  if (token !== undefined && token.length === 0) throw new UsageError('--token must not be empty');
  return { kind: 'remote', url: parsed, token };
}
