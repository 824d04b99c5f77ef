// `lockstep chaos`: the chaos harness (src/audit/chaos). Worker processes hammer a few hot keys
// through Lockstep, or through the naive write-through kept as a control, under seeded faults; the
// whole history is checked for stale reads and linearizability, and every key for convergence.
import { InvalidOptionError } from '../../errors.js';
import { exitCode, formatTable } from '../../audit/chaos/report.js';
import { runChaos, type ChaosSessionOptions } from '../../audit/chaos/runner.js';
import { EXIT, formatHelp, HELP_OPTION, integerOption, parseCommandArgs, reportUsageError, UsageError, type OptionHelp } from '../args.js';
import { supportedStores } from '../../backend-specs.js';
import { defaultIo, type CommandIo } from '../io.js';
import { createProgress, progressWanted } from '../progress.js';
import { jsonDocument } from '../render.js';
import { parseScenarios, SCENARIOS } from '../../audit/chaos/scenarios.js';

const OPTIONS: readonly OptionHelp[] = [
  ['--store SPEC', `one of: ${supportedStores.join(', ')}; default: an SQLite file in a temp dir`],
  ['--cache SPEC', 'memory (one process only) | redis://HOST:PORT | redis-owned (a redis-server the harness starts and, with faults, restarts); default: memory for --processes 1, else $REDIS_URL or redis://127.0.0.1:6379'],
  ['--impl I', 'lockstep (default) | naive: the seed\'s naive write-through, to show the harness catches it'],
  ['--processes N', 'worker processes (default 2)'],
  ['--clients N', 'concurrent clients per process (default 8)'],
  ['--keys N', 'hot keys (default 4)'],
  ['--ops N', 'operations per seed, over all processes (default 10000)'],
  ['--seed N', 'one seed (default 1)'],
  ['--seeds A..B', 'the seeds A to B, in sequence'],
  ['--faults F', 'standard (default) | none'],
  ['--scenario LIST', `all (default) | none | comma-separated names, played one per seed in turn (those the backends allow): ${SCENARIOS.join(', ')}`],
  ['--lease-ttl MS', 'lease and tombstone TTL (default 500); the store timeout is 60% of it'],
  ['--journal-window MS', 'how long after a journaled write its key may read stale (default 100)'],
  ['--lin-deadline MS', 'linearizability search budget per key (default 20000)'],
  ['--lin-ops N', 'per key, search a prefix of at most N operations (default 20000; the fast check covers all)'],
  ['--save-history DIR', 'write the history of every failed run there (JSON lines)'],
  ['--json', 'print the reports as a JSON array instead of a table'],
  ['-h, --help', 'show this help'],
];

export const usage = formatHelp({
  usage: 'chaos [options]',
  description: `Runs a seeded random mix (45% reads, 40% writes, 15% deletes) of --ops operations on a few hot keys
from --processes worker processes × --clients clients, with short value TTLs (3 ms, and 30 s for a
tenth of the writes) so readers keep filling, and random delays before fills. With --faults
standard: cache errors before and after a call applies, timeouts and stalls past the lease TTL
(ChaosCache); store errors before, unknown outcomes after a write applied, and stalls (ChaosStore);
in storms of 300 of every 1500 operations per process, with delays between protocol steps
throughout; kill -9 of a worker while it writes, and a restart with its remaining operations; a
worker frozen (SIGSTOP) for 1-2 lease TTLs; plain-SQL writes of hot keys through a connection of
the harness's own; and kill -9 and restart of the Redis when the harness owns it (redis-owned).
Each seed also plays one named scenario (--scenario; seed modulo the applicable ones): every
instance restarted (kill -9 or SIGTERM) during a cache outage before any drain, with the journal
cursor kept, deleted, rolled back or ahead; CLIENT PAUSE WRITE; SHUTDOWN NOSAVE; FLUSHALL;
maxmemory under each eviction policy; pg_terminate_backend; a row lock held past the lease;
instances reaching the database by different addresses; a restart from an older snapshot.
Redis-level ones need redis-owned.
The report gives the pragmatic window's measured bound: ack of a journaled write -> row replayed.

Then faults stop, leases expire, the journal drains, and the harness checks the whole history of
every process: the fast check (no read older than an acknowledged write, no value never written)
and per-key linearizability (Wing-Gong-Lowe search); and that every key ends in state A, B or C.
Reads within --journal-window of a write invalidated through the journal (plain SQL, or
acknowledged without a cache lease under policy pragmatic) are left out: the protocol's documented
windows.
A progress bar shows on a terminal (never with --json).`,
  options: OPTIONS,
  notes: `Runs write to namespaces named chaos-<impl>-<seed>-<random> and remove their Redis keys afterwards;
point --store at a scratch schema or database (postgres://…?schema=chaos_scratch).`,
  examples: [
    'lockstep chaos --processes 1 --ops 2000',
    'lockstep chaos --store postgres://postgres@127.0.0.1/test?schema=chaos_scratch --cache redis-owned --seeds 1..5',
    'lockstep chaos --impl naive --ops 5000 --json',
  ],
  exit: `2 bad input; 3 the run itself failed (a backend could not be opened, a worker crashed); else
  --impl lockstep  0 when every seed has no violation and every key converged to A, B or C; 1 otherwise.
  --impl naive     0 when violations ARE found on every seed (the harness has teeth); 1 when the naive
                   write-through passes a seed (the harness failed to catch it).`,
});

export interface ChaosCliConfig extends ChaosSessionOptions {
  readonly help: boolean;
  readonly json: boolean;
}

function integer(text: string | undefined, flag: string, min: number, max: number): number | undefined {
  return text === undefined ? undefined : integerOption(text, flag, min, max);
}

function seedsOf(seed: string | undefined, seeds: string | undefined): number[] | undefined {
  if (seed !== undefined && seeds !== undefined) throw new UsageError('give --seed or --seeds, not both');
  if (seed !== undefined) return [integer(seed, '--seed', 0, 2 ** 31)!];
  if (seeds === undefined) return undefined;
  const match = /^([0-9]{1,10})\.\.([0-9]{1,10})$/.exec(seeds);
  if (match === null) throw new UsageError(`--seeds must look like 1..20 (got ${JSON.stringify(seeds)})`);
  const [from, to] = [Number(match[1]), Number(match[2])];
  if (to < from || to - from >= 10_000) throw new UsageError(`--seeds ${seeds}: give a range of 1 to 10000 seeds, low..high`);
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

export function parseChaosArgs(argv: readonly string[]): ChaosCliConfig {
  const { values } = parseCommandArgs(argv, {
      store: { type: 'string' },
      cache: { type: 'string' },
      impl: { type: 'string' },
      processes: { type: 'string' },
      clients: { type: 'string' },
      keys: { type: 'string' },
      ops: { type: 'string' },
      seed: { type: 'string' },
      seeds: { type: 'string' },
      faults: { type: 'string' },
      scenario: { type: 'string' },
      'lease-ttl': { type: 'string' },
      'journal-window': { type: 'string' },
      'lin-deadline': { type: 'string' },
      'lin-ops': { type: 'string' },
      'save-history': { type: 'string' },
      json: { type: 'boolean' },
      ...HELP_OPTION,
  });
  const impl = values.impl ?? 'lockstep';
  if (impl !== 'lockstep' && impl !== 'naive') throw new UsageError(`--impl must be lockstep or naive (got ${JSON.stringify(impl)})`);
  const faults = values.faults ?? 'standard';
  if (faults !== 'standard' && faults !== 'none') throw new UsageError(`--faults must be standard or none (got ${JSON.stringify(faults)})`);
  const leaseTtlMs = integer(values['lease-ttl'], '--lease-ttl', 50, 60_000);
  const config: ChaosCliConfig = {
    help: values.help ?? false,
    json: values.json ?? false,
    impl,
    faults,
    store: values.store,
    cache: values.cache,
    processes: integer(values.processes, '--processes', 1, 64),
    clients: integer(values.clients, '--clients', 1, 1024),
    keys: integer(values.keys, '--keys', 1, 10_000),
    ops: integer(values.ops, '--ops', 1, 1e9),
    seeds: seedsOf(values.seed, values.seeds),
    leaseTtlMs,
    journalWindowMs: integer(values['journal-window'], '--journal-window', 0, 60_000),
    linearizabilityDeadlineMs: integer(values['lin-deadline'], '--lin-deadline', 1, 3_600_000),
    linearizabilityMaxOps: integer(values['lin-ops'], '--lin-ops', 1, 10_000_000),
    saveHistory: values['save-history'],
    ...(values.scenario === undefined ? {} : { scenarios: scenariosOf(values.scenario) }),
  };
  return config;
}

function scenariosOf(text: string) {
  try {
    return parseScenarios(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export async function run(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  let config: ChaosCliConfig;
  try {
    config = parseChaosArgs(argv);
  } catch (error) {
    return reportUsageError(io.stderr, 'chaos', error);
  }
  if (config.help) {
    io.stdout.write(usage);
    return EXIT.ok;
  }
  const { help: _help, json, ...options } = config;
  const progress = createProgress(io.stderr, { enabled: progressWanted(io.stderr, json) });
  const bar = progressWanted(io.stderr, json);
  let reports;
  try {
    reports = await runChaos({
      ...options,
      log: (line) => progress.log(line),
      ...(bar ? { onProgress: (p) => progress.show(`seed ${p.seed} (${p.impl})`, p.done, p.ops) } : {}),
    });
  } catch (error) {
    progress.stop();
    io.stderr.write(`lockstep chaos: ${(error as Error)?.message ?? String(error)}\n`);
    return error instanceof InvalidOptionError ? EXIT.usage : EXIT.failed;
  } finally {
    progress.stop();
  }
  io.stdout.write(json ? jsonDocument(reports) : formatTable(reports));
  return exitCode(reports);
}
