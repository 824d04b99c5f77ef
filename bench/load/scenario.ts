// One load scenario: a backend pair (SQLite + memory, or PostgreSQL + Redis) in scratch space of
// its own, a server child (Lockstep or the raw baseline) on it, the key set written, the mix run
// while the child's RSS is sampled, then the child stopped and the scratch space removed.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';
import { DATABASE_URL, REDIS_URL } from '../../test/helpers/services.js';
import { startChild, type ServerKind } from './child.js';
import { populate, runMix, type MixResult } from './mix.js';
import { sampleRss, summarizeRss, type RssSample, type RssSummary } from './rss.js';

export type BackendName = 'sqlite+memory' | 'postgres+redis';
export const BACKENDS: readonly BackendName[] = ['sqlite+memory', 'postgres+redis'];

export interface ScenarioOptions {
  readonly backend: BackendName;
  readonly server: ServerKind;
  readonly connections: number;
  readonly durationSeconds: number;
  readonly keys: number;
  /** Lockstep's log level. @default 'info' */
  readonly logLevel?: string;
}

export interface ScenarioResult {
  readonly backend: BackendName;
  readonly server: ServerKind;
  readonly mix: MixResult;
  readonly rss: RssSummary | undefined;
  readonly rssSamples: readonly RssSample[];
  /** The server's exit code after SIGTERM (0: it drained and closed cleanly). */
  readonly exitCode: number | null;
}

interface Scratch {
  readonly store: string;
  readonly cache: string;
  readonly dir: string;
  cleanup(): Promise<void>;
}

async function openScratch(backend: BackendName, namespace: string): Promise<Scratch> {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-load-'));
  if (backend === 'sqlite+memory') {
    return { store: `sqlite:${join(dir, 'load.db')}`, cache: 'memory', dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
  }
  const schema = `lockstep_load_${randomBytes(4).toString('hex')}`;
  const url = new URL(DATABASE_URL);
  url.searchParams.set('schema', schema);
  return {
    store: url.toString(),
    cache: REDIS_URL,
    dir,
    async cleanup() {
      const admin = new pg.Client({ connectionString: DATABASE_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
      // The namespace's records and the schema's journal cursor, in the shared Redis.
      const redis = createClient({ url: REDIS_URL });
      await redis.connect();
      for (const match of [`lockstep:${namespace}:*`, `lockstep:#journal-cursor:*/${schema}`]) {
        for await (const keys of redis.scanIterator({ MATCH: match, COUNT: 1000 })) {
          if (keys.length > 0) await redis.unlink(keys);
        }
      }
      await redis.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const namespace = `load${process.pid}${randomBytes(3).toString('hex')}`;
  const scratch = await openScratch(options.backend, namespace);
  try {
    const child = await startChild(options.server, {
      store: scratch.store,
      cache: scratch.cache,
      dir: scratch.dir,
      ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
    });
    let exitCode: number | null = null;
    try {
      await populate(child.url, namespace, options.keys);
      const sampler = sampleRss(child.pid);
      let samples: RssSample[] = [];
      const mix = await runMix({
        url: child.url,
        namespace,
        keys: options.keys,
        connections: options.connections,
        durationSeconds: options.durationSeconds,
        expectRequestId: options.server === 'lockstep',
      }).finally(() => (samples = sampler.stop()));
      exitCode = await child.stop();
      return { backend: options.backend, server: options.server, mix, rss: summarizeRss(samples), rssSamples: samples, exitCode };
    } finally {
      if (exitCode === null) await child.stop();
    }
  } finally {
    await scratch.cleanup();
  }
}
