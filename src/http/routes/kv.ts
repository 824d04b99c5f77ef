// /v1/kv/{namespace}/{key}: PUT, GET, DELETE, and GET …/state. Keys are one path segment,
// percent-decoded here (a key holding '/' arrives as %2F); malformed escapes are a 400, never a
// silently different key. Every route authorizes its namespace before touching it.
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { InvalidKeyError, InvalidNamespaceError, InvalidOptionError } from '../../errors.js';
import type { WriteOptions } from '../../engine/api.js';
import { authorize } from '../access.js';
import { badJson, bodyTooLarge, jsonTooDeep, methodNotAllowed } from '../errors.js';
import { exceedsJsonDepth } from '../json-depth.js';
import type { LockstepService } from '../service.js';

export interface KvRouteOptions {
  /** Largest request body read, in bytes; larger bodies are refused (413) before being buffered whole. */
  readonly bodyLimitBytes: number;
  /** Deepest nesting of arrays and objects accepted in a JSON body. */
  readonly maxJsonDepth: number;
}

const KEY_PATH = '/:namespace/:key';
const STATE_PATH = '/:namespace/:key/state';
const TTL_HEADER = 'X-TTL-Ms';
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function kvRoutes(service: LockstepService, { bodyLimitBytes, maxJsonDepth }: KvRouteOptions): Hono {
  const kv = new Hono();

  kv.put(
    KEY_PATH,
    bodyLimit({ maxSize: bodyLimitBytes, onError: () => { throw bodyTooLarge(bodyLimitBytes); } }),
    async (c) => {
      const { namespace, key } = target(c, 1);
      authorize(c, namespace, 'write');
      const engine = service.engine(namespace);
      const options = writeOptions(c.req.header(TTL_HEADER));
      const value = await jsonBody(c, maxJsonDepth);
      const { version } = await engine.write(key, value, options);
      return c.json({ namespace, key, version }, 200, NO_STORE);
    },
  );

  kv.get(KEY_PATH, async (c) => {
    const { namespace, key } = target(c, 1);
    authorize(c, namespace, 'read');
    const entry = await service.engine(namespace).readEntry(key);
    const headers = { ...NO_STORE, 'X-Cache': entry.source };
    if (!entry.found) {
      return c.json({ error: { code: 'E_NOT_FOUND', message: `key ${JSON.stringify(key)} not found in namespace ${namespace}` } }, 404, headers);
    }
    return c.json({ namespace, key, value: entry.value, version: entry.version }, 200, headers);
  });

  kv.delete(KEY_PATH, async (c) => {
    const { namespace, key } = target(c, 1);
    authorize(c, namespace, 'write');
    const { version, existed } = await service.engine(namespace).delete(key);
    return c.json({ namespace, key, version, existed }, 200, NO_STORE);
  });

  kv.get(STATE_PATH, async (c) => {
    const { namespace, key } = target(c, 2);
    // The state shows the stored and cached values: reading it is a read.
    authorize(c, namespace, 'read');
    return c.json(await service.engine(namespace).inspect(key), 200, NO_STORE);
  });

  kv.all(KEY_PATH, (c) => { throw methodNotAllowed(c.req.method, ['GET', 'HEAD', 'PUT', 'DELETE']); });
  kv.all(STATE_PATH, (c) => { throw methodNotAllowed(c.req.method, ['GET', 'HEAD']); });
  return kv;
}

const NO_STORE = { 'Cache-Control': 'no-store' };

/**
 * Namespace and key from the raw (still percent-encoded) path, counted from its end so that the
 * routes work wherever they are mounted: the key is the last segment, or the one before `/state`.
 */
function target(c: Context, keyFromEnd: 1 | 2): { namespace: string; key: string } {
  const segments = new URL(c.req.url).pathname.split('/');
  const rawKey = segments.at(-keyFromEnd) ?? '';
  const rawNamespace = segments.at(-keyFromEnd - 1) ?? '';
  const namespace = decodeSegment(rawNamespace, (m) => new InvalidNamespaceError(m));
  const key = decodeSegment(rawKey, (m) => new InvalidKeyError(m, { namespace }));
  return { namespace, key };
}

function decodeSegment(raw: string, invalid: (message: string) => Error): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalid(`path segment ${JSON.stringify(raw.slice(0, 64))} is not valid percent-encoded UTF-8`);
  }
}

function writeOptions(ttlHeader: string | undefined): WriteOptions | undefined {
  if (ttlHeader === undefined) return undefined;
  const ttl = /^[1-9][0-9]{0,15}$/.test(ttlHeader.trim()) ? Number(ttlHeader.trim()) : Number.NaN;
  if (!Number.isSafeInteger(ttl)) {
    throw new InvalidOptionError(`${TTL_HEADER} must be a positive integer number of milliseconds (got ${JSON.stringify(ttlHeader.slice(0, 32))})`);
  }
  return { ttl };
}

/**
 * The body as one JSON value. A Content-Type, when sent, must be JSON (application/json or a
 * +json type) or text/plain, which is what fetch() sends for a string body.
 */
async function jsonBody(c: Context, maxDepth: number): Promise<unknown> {
  const contentType = c.req.header('Content-Type');
  if (contentType !== undefined) {
    const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase();
    if (mediaType !== 'application/json' && !mediaType.endsWith('+json') && mediaType !== 'text/plain') {
      throw badJson(`the body must be JSON (Content-Type: application/json), got ${JSON.stringify(contentType.slice(0, 64))}`);
    }
  }
  let text: string;
  try {
    text = utf8.decode(await c.req.arrayBuffer());
  } catch {
    throw badJson('the body is not valid UTF-8');
  }
  if (text.trim() === '') throw badJson('the body is empty; send a JSON value (to remove a key, use DELETE)');
  if (exceedsJsonDepth(text, maxDepth)) throw jsonTooDeep(maxDepth);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badJson(`the body is not valid JSON: ${(error as Error).message}`);
  }
}
