// A KvClient over a running `lockstep serve`: the REST API (/v1/kv/{namespace}/{key} and …/state)
// with fetch. The service's error body ({ error: { code, message } }) becomes a ServiceError that
// keeps the HTTP status, so the command can tell rejected input (exit 2) from a failure (exit 3).
import type { KeyInspection, ReadSource } from '../../engine/api.js';
import type { KvClient, KvGetResult } from './client.js';

const TIMEOUT_MS = 30_000;
const READ_SOURCES: ReadonlySet<string> = new Set(['hit', 'miss', 'bypass', 'store-fallback']);

/** The service answered with an error, or could not be reached (status undefined). */
export class ServiceError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'ServiceError';
  }

  /** The service refused the input itself (bad key, bad value, too large): the caller's to fix. */
  get rejectedInput(): boolean {
    return this.status === 400 || this.status === 413 || this.status === 415 || this.status === 422;
  }
}

export function createRemoteClient(base: URL, token: string | undefined, namespace: string): KvClient {
  const root = base.href.replace(/\/+$/, '');
  const keyUrl = (key: string, suffix = '') => `${root}/v1/kv/${encodeURIComponent(namespace)}/${encodeURIComponent(key)}${suffix}`;
  const auth: Record<string, string> = token === undefined ? {} : { Authorization: `Bearer ${token}` };

  const call = async (method: string, url: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<Response> => {
    try {
      return await fetch(url, {
        method,
        headers: { Accept: 'application/json', ...auth, ...init.headers },
        ...(init.body === undefined ? {} : { body: init.body }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new ServiceError(`cannot reach ${root}: ${why}`, undefined, undefined);
    }
  };

  const json = async <T>(response: Response): Promise<T> => {
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ServiceError(`${response.status} from ${root} is not JSON (is --url a Lockstep service?): ${text.slice(0, 120)}`, response.status, undefined);
    }
    if (!response.ok) {
      const error = (body as { error?: { code?: string; message?: string } }).error;
      throw new ServiceError(`${response.status} ${error?.code ?? ''}: ${error?.message ?? text.slice(0, 120)}`.replace(' :', ':'), response.status, error?.code);
    }
    return body as T;
  };

  return {
    target: root,
    async get(key): Promise<KvGetResult> {
      const response = await call('GET', keyUrl(key));
      const header = response.headers.get('X-Cache') ?? undefined;
      const source = header !== undefined && READ_SOURCES.has(header) ? (header as ReadSource) : undefined;
      // A key's 404 carries X-Cache (the engine answered); any other 404 is a wrong url.
      if (response.status === 404 && header !== undefined) {
        await response.body?.cancel();
        return { found: false, value: undefined, version: 0, source };
      }
      const body = await json<{ value: unknown; version: number }>(response);
      return { found: true, value: body.value, version: body.version, source };
    },
    async put(key, value, ttlMs) {
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (ttlMs !== undefined) headers['X-TTL-Ms'] = String(ttlMs);
      return json<{ version: number }>(await call('PUT', keyUrl(key), { body: JSON.stringify(value), headers }));
    },
    async del(key) {
      return json<{ version: number; existed: boolean }>(await call('DELETE', keyUrl(key)));
    },
    async inspect(key) {
      return json<KeyInspection>(await call('GET', keyUrl(key, '/state')));
    },
    async close() {},
  };
}
