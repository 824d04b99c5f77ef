// The memory-hit read path with and without the OpenTelemetry observer. Each subject runs in a fresh
// process of its own (so one subject's JIT state and garbage never land in another's timing), the
// subjects alternating round by round; reported as medians and as ratios to the plain engine:
//   plain       engine over the memory cache, no observer
//   otel-absent the cache passed through createOtelTracing() with tracing off: what a user without
//               @opentelemetry/api gets (the wrapper returns the cache itself)
//   api-noop    @opentelemetry/api installed, no SDK registered (the global no-op tracer)
//   sdk         an SDK tracer provider, every span sampled and dropped (no exporter)
//   sdk-no-hit-spans  the same with hitSpans: false (misses and writes traced, hits not)
// Run: node --import tsx bench/otel-hit.ts [--rounds 5] [--reads 100000] [--json]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { createMemoryCache } from '../src/cache/memory.js';
import { createWriteThrough } from '../src/compose/write-through.js';
import { createOtelTracing, type LockstepTracing } from '../src/observability/otel.js';
import { createSqliteStore } from '../src/store/sqlite.js';

const SUBJECTS = ['plain', 'otel-absent', 'api-noop', 'sdk', 'sdk-no-hit-spans'] as const;
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    reads: { type: 'string', default: '100000' },
    json: { type: 'boolean', default: false },
    subject: { type: 'string' },
  },
});
const reads = Number(values.reads);

if (values.subject === undefined) {
  // The driver: one child process per subject per round, alternating.
  const samples = new Map<string, number[]>(SUBJECTS.map((s) => [s, []]));
  const self = fileURLToPath(import.meta.url);
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const subject of SUBJECTS) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--subject', subject, '--reads', String(reads)], { encoding: 'utf8', timeout: 120_000 });
      samples.get(subject)!.push(Number(out.trim()));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = median(samples.get('plain')!);
  const rows = SUBJECTS.map((s) => {
    const xs = samples.get(s)!;
    return { subject: s, nsPerHitMedian: Math.round(median(xs)), min: Math.round(Math.min(...xs)), max: Math.round(Math.max(...xs)), ratioToPlain: Number((median(xs) / base).toFixed(3)) };
  });
  if (values.json) console.log(JSON.stringify(rows));
  else console.table(rows);
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'lockstep-otel-bench-'));

async function subject(name: string, tracing: LockstepTracing | undefined) {
  const store = createSqliteStore({ path: join(dir, `${name}.db`) });
  const memory = createMemoryCache({ maxEntries: 1_000 });
  const engine = createWriteThrough<{ n: number }>({ store, cache: tracing?.cache(memory) ?? memory, namespace: 'bench', journal: false });
  await engine.write('k', { n: 1 });
  await engine.read('k'); // from here on every read is a memory hit
  return {
    name,
    async run(): Promise<number> {
      const started = process.hrtime.bigint();
      for (let i = 0; i < reads; i++) await engine.read('k');
      return Number(process.hrtime.bigint() - started) / reads;
    },
    close: async () => (await engine.close(), await store.close()),
  };
}

const tracings: Record<string, () => Promise<LockstepTracing | undefined>> = {
  plain: async () => undefined,
  'otel-absent': () => createOtelTracing({ enabled: false }),
  'api-noop': () => createOtelTracing(),
  sdk: () => createOtelTracing({ tracerProvider: new BasicTracerProvider() }),
  'sdk-no-hit-spans': () => createOtelTracing({ tracerProvider: new BasicTracerProvider(), hitSpans: false }),
};
const one = await subject(values.subject, await tracings[values.subject]!());
await one.run(); // warm-up
const runs: number[] = [];
for (let i = 0; i < 5; i++) runs.push(await one.run());
console.log(runs.sort((a, b) => a - b)[2]);
await one.close();
rmSync(dir, { recursive: true, force: true });
