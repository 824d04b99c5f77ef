// npm run bench:load [-- --duration 30 --connections 64 --keys 1000 --backends sqlite+memory,postgres+redis
//                      --servers baseline,lockstep --log-level info --json]
// A bounded load test on loopback: for each backend pair, the raw baseline (bare Hono on the store,
// no cache) and then `lockstep serve`, each as a child process (the autocannon load generator runs
// in this process, on its own event loop), under a 90/10 read/write mix over a pre-populated key
// set. Prints requests/s, p50/p99/max latency, errors, non-2xx and malformed answers, the server's
// RSS (start/mid/end, second-half slope, flat or not) and Lockstep's ratios to the baseline.
import { parseArgs } from 'node:util';
import { DATABASE_URL, needService, REDIS_URL } from '../test/helpers/services.js';
import { FLAT_FRACTION } from './load/rss.js';
import { BACKENDS, runScenario, type BackendName, type ScenarioResult } from './load/scenario.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '30' },
    connections: { type: 'string', default: '64' },
    keys: { type: 'string', default: '1000' },
    backends: { type: 'string', default: BACKENDS.join(',') },
    servers: { type: 'string', default: 'baseline,lockstep' },
    'log-level': { type: 'string', default: 'info' },
    json: { type: 'boolean', default: false },
  },
});
const bounded = (name: string, text: string, max: number): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer from 1 to ${max} (got ${text})`);
  return n;
};
const durationSeconds = bounded('duration', values.duration, 600);
const connections = bounded('connections', values.connections, 1024);
const keys = bounded('keys', values.keys, 1_000_000);
const backends = values.backends.split(',').map((name) => {
  if (!(BACKENDS as readonly string[]).includes(name)) throw new Error(`unknown backend ${name}: use ${BACKENDS.join(', ')}`);
  return name as BackendName;
});
const servers = values.servers.split(',').map((name) => {
  if (name !== 'baseline' && name !== 'lockstep') throw new Error(`unknown server ${name}: use baseline, lockstep`);
  return name;
});
const log = (line: string): void => void process.stderr.write(`${line}\n`);

const results: ScenarioResult[] = [];
for (const backend of backends) {
  if (backend === 'postgres+redis') {
    const skip = (await needService('PostgreSQL', DATABASE_URL)).skip || (await needService('Redis', REDIS_URL)).skip;
    if (skip) {
      log(`${backend}: skipped, ${skip}`);
      continue;
    }
  }
  for (const server of servers) {
    log(`${backend} / ${server}: ${keys} keys, c${connections}, ${durationSeconds} s …`);
    results.push(await runScenario({ backend, server, connections, durationSeconds, keys, logLevel: values['log-level'] }));
  }
}

if (values.json) {
  process.stdout.write(`${JSON.stringify({ durationSeconds, connections, keys, results }, null, 2)}\n`);
} else {
  process.stdout.write(formatTable(results));
}
const failed = results.some((r) => r.mix.errors > 0 || r.mix.status5xx > 0 || r.mix.malformed > 0 || r.exitCode !== 0);
process.exitCode = failed ? 1 : 0;

function formatTable(rows: readonly ScenarioResult[]): string {
  const head = ['backend', 'server', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'non-2xx', 'malformed', 'RSS start/mid/end MB', 'slope MB/min', 'RSS', 'exit'];
  const body = rows.map((r) => [
    r.backend,
    r.server,
    r.mix.requestsPerSecond.toFixed(0),
    r.mix.p50Ms.toFixed(1),
    r.mix.p99Ms.toFixed(1),
    r.mix.maxMs.toFixed(0),
    String(r.mix.errors),
    String(r.mix.non2xx),
    String(r.mix.malformed),
    r.rss === undefined ? '-' : `${r.rss.startMb.toFixed(0)}/${r.rss.midMb.toFixed(0)}/${r.rss.endMb.toFixed(0)}`,
    r.rss === undefined ? '-' : r.rss.slopeMbPerMin.toFixed(1),
    r.rss === undefined ? '-' : r.rss.flat ? 'flat' : 'GROWING',
    String(r.exitCode),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)];
  const ratios = backends.flatMap((backend) => {
    const base = rows.find((r) => r.backend === backend && r.server === 'baseline');
    const ours = rows.find((r) => r.backend === backend && r.server === 'lockstep');
    if (base === undefined || ours === undefined) return [];
    return [
      `${backend}: Lockstep / raw baseline = ${(ours.mix.requestsPerSecond / base.mix.requestsPerSecond).toFixed(2)}x req/s, ` +
        `${(ours.mix.p99Ms / base.mix.p99Ms).toFixed(2)}x p99`,
    ];
  });
  const rule = `RSS "flat": the second half's least-squares slope, over the whole run, grows less than ${FLAT_FRACTION * 100}% of the mid-run RSS.`;
  return `${out.join('\n')}\n\n${ratios.join('\n')}\n${rule}\n`;
}
