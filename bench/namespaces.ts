// npm run bench:namespaces [-- --namespaces 20000 --writes-every 20 --concurrency 32]
// The namespace bound, measured: starts `lockstep serve` (SQLite + memory cache) as a child process,
// touches N namespaces with GETs of a key never written (404s) and every k-th one with a PUT, and
// reports the server's RSS (peak and end), the time and size of /metrics (scraped after every
// quarter and at the end) and /healthz latency sampled throughout. Goals (issue 11): RSS < 300 MB
// and /metrics < 1 s at 20,000 namespaces, /healthz answering throughout. Figures: docs/operations.md.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startChild } from './load/child.js';
import { readRssMb } from './load/rss.js';

const { values } = parseArgs({
  options: {
    namespaces: { type: 'string', default: '20000' },
    'writes-every': { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '32' },
    json: { type: 'boolean', default: false },
  },
});
const NAMESPACES = Number(values.namespaces);
const WRITES_EVERY = Number(values['writes-every']);
const CONCURRENCY = Number(values.concurrency);

interface Scrape {
  readonly afterNamespaces: number;
  readonly ms: number;
  readonly bytes: number;
  readonly series: number;
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { ms: performance.now() - started, value };
}

async function scrape(url: string, afterNamespaces: number): Promise<Scrape> {
  const { ms, value: text } = await timed(async () => (await fetch(`${url}/metrics`)).text());
  const series = text.split('\n').filter((line) => line.length > 0 && !line.startsWith('#')).length;
  return { afterNamespaces, ms: Math.round(ms), bytes: Buffer.byteLength(text), series };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-namespaces-'));
  const server = await startChild('lockstep', { store: `sqlite:${join(dir, 'data.db')}`, cache: 'memory', logLevel: 'warn', dir });
  const rssStartMb = readRssMb(server.pid) ?? Number.NaN;
  let rssPeakMb = rssStartMb;
  const healthMs: number[] = [];
  let healthFailures = 0;
  let running = true;
  // /healthz and RSS, sampled every 100 ms while the namespaces are touched.
  const sampler = (async () => {
    while (running) {
      rssPeakMb = Math.max(rssPeakMb, readRssMb(server.pid) ?? 0);
      try {
        const { ms, value: status } = await timed(async () => (await fetch(`${server.url}/healthz`)).status);
        if (status === 200) healthMs.push(ms);
        else healthFailures++;
      } catch {
        healthFailures++;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();

  const scrapes: Scrape[] = [];
  let next = 0;
  let statusErrors = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    for (let i = next++; i < NAMESPACES; i = next++) {
      const path = `${server.url}/v1/kv/orders-${i}/k`;
      const write = WRITES_EVERY > 0 && i % WRITES_EVERY === 0;
      const reply = write
        ? await fetch(path, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) })
        : await fetch(path);
      await reply.arrayBuffer();
      if (reply.status !== (write ? 200 : 404)) statusErrors++;
      if ((i + 1) % Math.ceil(NAMESPACES / 4) === 0) scrapes.push(await scrape(server.url, i + 1));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const touchMs = performance.now() - started;
  scrapes.push(await scrape(server.url, NAMESPACES));
  running = false;
  await sampler;
  const rssEndMb = readRssMb(server.pid) ?? Number.NaN;
  const stats = (await (await fetch(`${server.url}/v1/stats`)).json()) as { namespaces: number };
  await server.stop();
  rmSync(dir, { recursive: true, force: true });

  const sorted = [...healthMs].sort((a, b) => a - b);
  const result = {
    namespaces: NAMESPACES,
    writes: WRITES_EVERY > 0 ? Math.ceil(NAMESPACES / WRITES_EVERY) : 0,
    concurrency: CONCURRENCY,
    touchSeconds: Math.round(touchMs / 100) / 10,
    statusErrors,
    rssMb: { start: Math.round(rssStartMb), peak: Math.round(rssPeakMb), end: Math.round(rssEndMb) },
    metrics: scrapes,
    healthz: {
      samples: sorted.length,
      failures: healthFailures,
      p50Ms: Math.round(sorted[Math.floor(sorted.length / 2)] ?? Number.NaN),
      maxMs: Math.round(sorted.at(-1) ?? Number.NaN),
    },
    enginesAtEnd: stats.namespaces,
  };
  if (values.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(`${result.namespaces} namespaces touched (${result.writes} with a PUT) in ${result.touchSeconds} s, ${statusErrors} unexpected statuses`);
  console.log(`RSS: start ${result.rssMb.start} MB, peak ${result.rssMb.peak} MB, end ${result.rssMb.end} MB`);
  for (const s of scrapes) console.log(`/metrics after ${s.afterNamespaces}: ${s.ms} ms, ${s.bytes} bytes, ${s.series} series`);
  console.log(`/healthz: ${result.healthz.samples} answers, p50 ${result.healthz.p50Ms} ms, max ${result.healthz.maxMs} ms, ${healthFailures} failures`);
  console.log(`engines kept at the end: ${result.enginesAtEnd}`);
}

await main();
