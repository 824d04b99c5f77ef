// Named scenarios of a chaos seed: one parent-level fault sequence per seed, on top of the seeded
// worker faults, chosen from the seed (`seed % the applicable scenarios`) or by `--scenario`. They
// cover what process-level faults alone never reach: every instance restarted during a cache outage
// before any drain (with the journal cursor kept, lost, rolled back or ahead of the journal), Redis
// paused for writes, shut down, flushed, restarted from an older snapshot, or capped by maxmemory under each eviction policy, the
// store's sessions terminated, a row lock held past the lease, and instances that reach one database
// by different addresses. Redis-level faults need a redis-server the harness owns (redis-owned);
// PostgreSQL-level ones need a postgres store.
import { InvalidOptionError } from '../../errors.js';

export const SCENARIOS = [
  'restart-all-kill',
  'restart-all-graceful',
  'cursor-deleted',
  'cursor-rolled-back',
  'cursor-ahead',
  'client-pause-write',
  'redis-shutdown-nosave',
  'redis-flushall',
  'maxmemory-volatile',
  'maxmemory-allkeys',
  'pg-terminate-backend',
  'row-lock-past-lease',
  'mixed-addresses',
  'redis-restart-from-snapshot',
] as const;

export type ScenarioName = (typeof SCENARIOS)[number];

export const SCENARIO_HELP: Readonly<Record<ScenarioName, string>> = {
  'restart-all-kill': 'CLIENT PAUSE WRITE; once writes were acknowledged journaled, kill -9 every worker; unpause; restart them (no drain ran between)',
  'restart-all-graceful': 'the same with SIGTERM (a redeploy: each worker closes its engine and exits)',
  'cursor-deleted': 'restart-all-kill, with every journal cursor key deleted while no instance runs',
  'cursor-rolled-back': 'restart-all-kill, with every journal cursor moved back to half its value',
  'cursor-ahead': 'restart-all-kill, with every journal cursor moved past the journal\'s head (a journal recreated or restored)',
  'client-pause-write': 'CLIENT PAUSE WRITE for 2-4 lease TTLs while the workers run',
  'redis-shutdown-nosave': 'SHUTDOWN NOSAVE, then a fresh redis-server on the same port',
  'redis-flushall': 'FLUSHALL (records, leases and journal cursors gone at once)',
  'maxmemory-volatile': 'maxmemory just above use, filled by TTL keys, under volatile-lru|lfu|ttl|random or noeviction (by seed), for a few seconds',
  'maxmemory-allkeys': 'maxmemory-policy allkeys-*: a new Redis adapter must refuse to start (asserted); restored before the workers notice',
  'pg-terminate-backend': 'pg_terminate_backend of every store session of the workers, twice',
  'row-lock-past-lease': 'SELECT ... FOR UPDATE of the hot keys\' rows in another session, held 2-3 lease TTLs',
  'mixed-addresses': 'workers reach the database by different addresses (127.0.0.1, localhost, the unix socket), then restart-all-kill',
  'redis-restart-from-snapshot': 'SAVE, 1-2 lease TTLs of writes, then kill -9 and a redis-server that loads the older snapshot (a cache that rolls back)',
};

export interface ScenarioNeeds {
  readonly redis: boolean;
  readonly postgres: boolean;
}

const NEEDS: Readonly<Record<ScenarioName, ScenarioNeeds>> = {
  'restart-all-kill': { redis: true, postgres: false },
  'restart-all-graceful': { redis: true, postgres: false },
  'cursor-deleted': { redis: true, postgres: false },
  'cursor-rolled-back': { redis: true, postgres: false },
  'cursor-ahead': { redis: true, postgres: false },
  'client-pause-write': { redis: true, postgres: false },
  'redis-shutdown-nosave': { redis: true, postgres: false },
  'redis-flushall': { redis: true, postgres: false },
  'maxmemory-volatile': { redis: true, postgres: false },
  'maxmemory-allkeys': { redis: true, postgres: false },
  'pg-terminate-backend': { redis: false, postgres: true },
  'row-lock-past-lease': { redis: false, postgres: true },
  'mixed-addresses': { redis: true, postgres: true },
  'redis-restart-from-snapshot': { redis: true, postgres: false },
};

/** The scenarios a run can play: those its backends allow, of those asked for. */
export function applicableScenarios(asked: readonly ScenarioName[], available: ScenarioNeeds): ScenarioName[] {
  return asked.filter((name) => (!NEEDS[name].redis || available.redis) && (!NEEDS[name].postgres || available.postgres));
}

/** The scenario of a seed: the applicable ones in turn, so consecutive seeds cover them all. */
export function scenarioOfSeed(seed: number, applicable: readonly ScenarioName[]): ScenarioName | undefined {
  return applicable.length === 0 ? undefined : applicable[seed % applicable.length];
}

export function parseScenarios(text: string): ScenarioName[] {
  if (text === 'all') return [...SCENARIOS];
  if (text === 'none') return [];
  const names = text.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!(SCENARIOS as readonly string[]).includes(name)) throw new InvalidOptionError(`unknown scenario ${JSON.stringify(name)}: one of all, none, ${SCENARIOS.join(', ')}`);
  }
  return names as ScenarioName[];
}

/** Scenarios that restart every worker during a cache outage, and what they do to the cursors meanwhile. */
export function restartAllOf(name: ScenarioName): { readonly mode: 'kill' | 'graceful'; readonly cursor: 'kept' | 'deleted' | 'rolled-back' | 'ahead' } | undefined {
  switch (name) {
    case 'restart-all-kill':
    case 'mixed-addresses':
      return { mode: 'kill', cursor: 'kept' };
    case 'restart-all-graceful':
      return { mode: 'graceful', cursor: 'kept' };
    case 'cursor-deleted':
      return { mode: 'kill', cursor: 'deleted' };
    case 'cursor-rolled-back':
      return { mode: 'kill', cursor: 'rolled-back' };
    case 'cursor-ahead':
      return { mode: 'kill', cursor: 'ahead' };
    default:
      return undefined;
  }
}

/** Scenarios that run the witness instance (scenario-witness.ts): the restart-all ones and the snapshot restart. */
export function usesWitness(name: ScenarioName): boolean {
  return restartAllOf(name) !== undefined || name === 'redis-restart-from-snapshot';
}

/** Per slot, the store spec a worker uses: under mixed-addresses, the same database by another address. */
export function storeSpecForSlot(spec: string, scenario: ScenarioName | undefined, slot: number, seed: number, applicationName: string | undefined): string {
  if (!/^postgres(ql)?:\/\//.test(spec)) return spec;
  const url = new URL(spec);
  if (applicationName !== undefined) url.searchParams.set('application_name', applicationName);
  if (scenario === 'mixed-addresses') {
    const variant = (seed + slot) % 3;
    if (variant === 0) url.hostname = '127.0.0.1';
    else if (variant === 1) url.hostname = 'localhost';
    else url.searchParams.set('host', process.env.LOCKSTEP_CHAOS_PG_SOCKET_DIR ?? '/var/run/postgresql');
  }
  return url.toString();
}
