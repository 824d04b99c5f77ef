// The load: a 90/10 read/write mix over a pre-populated key set, driven by autocannon, with every
// response checked (status 200, JSON of the documented shape, and for Lockstep an X-Request-Id).
import autocannon from 'autocannon';
import type { IncomingHttpHeaders } from 'node:http';

export interface MixOptions {
  readonly url: string;
  readonly namespace: string;
  readonly keys: number;
  readonly connections: number;
  readonly durationSeconds: number;
  /** @default 0.1 */
  readonly writeFraction?: number;
  /** Check the X-Request-Id header (the Lockstep service sends one, the raw baseline does not). */
  readonly expectRequestId: boolean;
}

export interface MixResult {
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Connection errors and timeouts. */
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly status5xx: number;
  /** 2xx responses whose body or headers were not what the API documents. */
  readonly malformed: number;
  /** A few malformed examples, for the message. */
  readonly malformedExamples: readonly string[];
  readonly reads: number;
  readonly writes: number;
}

export const keyName = (i: number): string => `k${i}`;
const pad = 'p'.repeat(64);
export const valueFor = (key: string, n: number): string => JSON.stringify({ key, n, pad });

/** Writes every key once, `width` at a time (setup, never measured). */
export async function populate(url: string, namespace: string, keys: number, width = 16): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys) {
      const key = keyName(next++);
      const reply = await fetch(`${url}/v1/kv/${namespace}/${key}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: valueFor(key, 0) });
      if (reply.status !== 200) throw new Error(`populating ${key}: ${reply.status} ${await reply.text()}`);
      await reply.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
}

export async function runMix(options: MixOptions): Promise<MixResult> {
  const writeFraction = options.writeFraction ?? 0.1;
  let reads = 0;
  let writes = 0;
  let counter = 0;
  let malformed = 0;
  const malformedExamples: string[] = [];
  const bad = (why: string): void => {
    malformed++;
    if (malformedExamples.length < 5) malformedExamples.push(why);
  };

  const setupRequest = (request: autocannon.Request): autocannon.Request => {
    const key = keyName(Math.floor(Math.random() * options.keys));
    const path = `/v1/kv/${options.namespace}/${key}`;
    if (Math.random() < writeFraction) {
      writes++;
      return { ...request, method: 'PUT', path, headers: { 'content-type': 'application/json' }, body: valueFor(key, ++counter) };
    }
    reads++;
    return { ...request, method: 'GET', path, headers: {}, body: undefined as unknown as string };
  };

  const onResponse = (status: number, body: string, _context: unknown, headers: IncomingHttpHeaders | undefined): void => {
    if (status < 200 || status > 299) return; // counted by autocannon as non2xx
    if (options.expectRequestId && !hasHeader(headers, 'x-request-id')) return bad('no X-Request-Id header');
    let parsed: { namespace?: unknown; key?: unknown; version?: unknown; value?: { key?: unknown; n?: unknown } };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      return bad(`not JSON: ${body.slice(0, 80)}`);
    }
    if (parsed.namespace !== options.namespace || typeof parsed.key !== 'string' || !Number.isSafeInteger(parsed.version) || (parsed.version as number) < 1) {
      return bad(`bad envelope: ${body.slice(0, 120)}`);
    }
    // A read carries the value written for that very key.
    if ('value' in parsed && (parsed.value?.key !== parsed.key || !Number.isSafeInteger(parsed.value?.n))) {
      return bad(`bad value: ${body.slice(0, 120)}`);
    }
  };

  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    requests: [{ setupRequest, onResponse }],
  });
  const s5xx = result['5xx'];
  return {
    requests: result.requests.total,
    requestsPerSecond: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    status5xx: s5xx,
    malformed,
    malformedExamples,
    reads,
    writes,
  };
}

function hasHeader(headers: IncomingHttpHeaders | undefined, name: string): boolean {
  if (headers === undefined) return false;
  return Object.keys(headers).some((k) => k.toLowerCase() === name && typeof headers[k] === 'string' && headers[k] !== '');
}
