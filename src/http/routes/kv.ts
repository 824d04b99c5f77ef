// /v1/kv/{namespace}/{key}: PUT, GET, DELETE, and GET …/state. Keys are one path segment,
// percent-decoded here (a key holding '/' arrives as %2F); malformed escapes are a 400, never a
// silently different key. Every route authorizes its namespace before touching it. GET and PUT
// answer the version as ETag; PUT and DELETE take If-Match (and PUT If-None-Match: *), checked
// atomically by the store (conditions.ts).
import { Hono, type Context } from 'hono';
import { InvalidKeyError, InvalidNamespaceError, InvalidOptionError } from '../../errors.js';
import type { WriteOptions } from '../../engine/api.js';
import { authorize } from '../access.js';
import { budgetedJson, type ReplyBudget } from '../answer-budget.js';
import { deleteConditions, etagOf, IF_MATCH, IF_NONE_MATCH, putConditions } from '../conditions.js';
import { budgetedBody } from '../body-budget.js';
import { methodNotAllowed } from '../errors.js';
import { decodeSegment, jsonBody, NO_STORE, rawSegments } from '../request.js';
import type { LockstepService } from '../../service/service.js';

export interface KvRouteOptions {
  /** Largest request body read, in bytes; larger bodies are refused (413) before being buffered whole. */
  readonly bodyLimitBytes: number;
  /** Deepest nesting of arrays and objects accepted in a JSON body. */
  readonly maxJsonDepth: number;
  /** What answers carrying values hold across every connection (answer-budget.ts). */
  readonly answers: ReplyBudget;
  /** What request bodies being read hold across every connection (body-budget.ts). */
  readonly bodies: ReplyBudget;
}

const KEY_PATH = '/:namespace/:key';
const STATE_PATH = '/:namespace/:key/state';
const TTL_HEADER = 'X-TTL-Ms';

export function kvRoutes(service: LockstepService, { bodyLimitBytes, maxJsonDepth, answers, bodies }: KvRouteOptions): Hono {
  const kv = new Hono();

  kv.put(
    KEY_PATH,
    budgetedBody(bodyLimitBytes, bodies),
    async (c) => {
      const { namespace, key } = target(c, 1);
      authorize(c, namespace, 'write');
      const engine = service.engine(namespace);
      const options: WriteOptions = {
        ...ttlOption(c.req.header(TTL_HEADER)),
        ...putConditions(c.req.header(IF_MATCH), c.req.header(IF_NONE_MATCH)),
      };
      const value = await jsonBody(c, maxJsonDepth);
      const { version } = await engine.write(key, value, options);
      return c.json({ namespace, key, version }, 200, { ...NO_STORE, ETag: etagOf(version) });
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
    return budgetedJson(c, answers, { namespace, key, value: entry.value, version: entry.version }, 200, { ...headers, ETag: etagOf(entry.version) });
  });

  kv.delete(KEY_PATH, async (c) => {
    const { namespace, key } = target(c, 1);
    authorize(c, namespace, 'write');
    const engine = service.engine(namespace);
    const { version, existed } = await engine.delete(key, deleteConditions(c.req.header(IF_MATCH), c.req.header(IF_NONE_MATCH)));
    return c.json({ namespace, key, version, existed }, 200, NO_STORE);
  });

  kv.get(STATE_PATH, async (c) => {
    const { namespace, key } = target(c, 2);
    // The state shows the stored and cached values: reading it is a read.
    authorize(c, namespace, 'read');
    return budgetedJson(c, answers, await service.engine(namespace).inspect(key), 200, NO_STORE);
  });

  kv.all(KEY_PATH, (c) => { throw methodNotAllowed(c.req.method, ['GET', 'HEAD', 'PUT', 'DELETE']); });
  kv.all(STATE_PATH, (c) => { throw methodNotAllowed(c.req.method, ['GET', 'HEAD']); });
  return kv;
}

/**
 * Namespace and key from the raw (still percent-encoded) path, counted from its end so that the
 * routes work wherever they are mounted: the key is the last segment, or the one before `/state`.
 */
function target(c: Context, keyFromEnd: 1 | 2): { namespace: string; key: string } {
  const segments = rawSegments(c);
  const rawKey = segments.at(-keyFromEnd) ?? '';
  const rawNamespace = segments.at(-keyFromEnd - 1) ?? '';
  const namespace = decodeSegment(rawNamespace, (m) => new InvalidNamespaceError(m));
  const key = decodeSegment(rawKey, (m) => new InvalidKeyError(m, { namespace }));
  return { namespace, key };
}

function ttlOption(ttlHeader: string | undefined): Pick<WriteOptions, 'ttl'> {
  if (ttlHeader === undefined) return {};
  const ttl = /^[1-9][0-9]{0,15}$/.test(ttlHeader.trim()) ? Number(ttlHeader.trim()) : Number.NaN;
  if (!Number.isSafeInteger(ttl)) {
    throw new InvalidOptionError(`${TTL_HEADER} must be a positive integer number of milliseconds (got ${JSON.stringify(ttlHeader.slice(0, 32))})`);
  }
  return { ttl };
}
