// The suites of the repository's bench/ (against lru-cache, the raw drivers, bentocache,
// cache-manager; timed with tinybench) are dev-only: neither bench/ nor those devDependencies are
// published. `lockstep bench` loads them when it runs from a clone under tsx (`npm run bench`), and
// otherwise says in one line why they are unavailable.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Row } from './rows.js';

/** What bench/main.ts exports to the command. */
export interface DevSuites {
  /** Every suite name bench/ knows, in run order. */
  readonly names: readonly string[];
  /** Runs the named suites (all when empty); progress and notes go to `log`. */
  run(names: readonly string[], options: { readonly quick: boolean }, log: (line: string) => void): Promise<{ rows: Row[]; notes: string[] }>;
}

export type DevSuitesLoad = { readonly suites: DevSuites } | { readonly unavailable: string };

/** src/cli/bench/ and dist/cli/bench/ both sit three levels below the package root. */
export const DEV_SUITES_URL = new URL('../../../bench/main.ts', import.meta.url);

export const FROM_A_CLONE = 'they run from a clone of the repository, under tsx: npm install && npm run bench';

export async function loadDevSuites(url: URL = DEV_SUITES_URL): Promise<DevSuitesLoad> {
  if (!existsSync(fileURLToPath(url))) return { unavailable: `this install has no bench/ (it is not published); ${FROM_A_CLONE}` };
  try {
    // A computed specifier: the compiler must not follow it (bench/ is outside the package's source).
    const loaded = (await import(url.href)) as Partial<DevSuites>;
    if (!Array.isArray(loaded.names) || typeof loaded.run !== 'function') return { unavailable: `${url.pathname} does not export names and run` };
    return { suites: loaded as DevSuites };
  } catch (error) {
    const first = String((error as Error)?.message ?? error).split('\n')[0];
    return { unavailable: `bench/ could not be loaded (${first}); ${FROM_A_CLONE}` };
  }
}
