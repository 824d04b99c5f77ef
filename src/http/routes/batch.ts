// POST /v1/kv/{namespace}:batchGet and :batchPut. Every item is read or written through the engine
// on its own (a batch is not a transaction): items run at most BATCH_CONCURRENCY at a time, each
// one's failure is reported in its slot and never affects the others; results keep request order.
import { Hono, type Context } from 'hono';
import type { Engine } from '../../engine/api.js';
import { InvalidKeyError, InvalidNamespaceError } from '../../errors.js';
import { duplicateKeys, envelopeArray, mapBounded, parsePutItem, repeatedKeys } from '../batch-items.js';
import { authorize } from '../access.js';
import { answersBusy, holdUntilSent, type ReplyBudget } from '../answer-budget.js';
import type { UnexpectedErrorHandler } from '../app-options.js';
import { budgetedBody } from '../body-budget.js';
import { methodNotAllowed, toErrorResponse, type ErrorBody } from '../errors.js';
import { decodeSegment, jsonBody, NO_STORE, rawSegments } from '../request.js';
import type { LockstepService } from '../../service/service.js';

export interface BatchRouteOptions {
  /** Largest request body read, in bytes (the whole batch). */
  readonly bodyLimitBytes: number;
  /** Deepest nesting of arrays and objects accepted in a JSON body. */
  readonly maxJsonDepth: number;
  /** Most items in one batch; more is a 413 E_BATCH_TOO_LARGE. */
  readonly maxBatchItems: number;
  /** Told about item errors that map to E_INTERNAL. */
  readonly onUnexpectedError: UnexpectedErrorHandler;
  /** What answers carrying values hold across every connection (answer-budget.ts). */
  readonly answers: ReplyBudget;
  /** What request bodies being read hold across every connection (body-budget.ts). */
  readonly bodies: ReplyBudget;
}

/** Items of one batch in flight at once: enough to overlap store round trips, few enough to share the pool. */
export const BATCH_CONCURRENCY = 8;

/** The `{namespace}:batchGet` segment: Hono cannot put a literal after a parameter, so a pattern holds both. */
export const BATCH_GET_PATH = '/:namespace{[^/]+:batchGet}';
export const BATCH_PUT_PATH = '/:namespace{[^/]+:batchPut}';
const ANY_BATCH_PATH = '/:namespace{[^/]+:batch[A-Za-z]*}';

type ItemError = { readonly key: string | null } & ErrorBody;

export function batchRoutes(service: LockstepService, options: BatchRouteOptions): Hono {
  const { bodyLimitBytes, maxJsonDepth, maxBatchItems, onUnexpectedError, answers, bodies } = options;
  const batch = new Hono();
  const limit = budgetedBody(bodyLimitBytes, bodies);

  const failed = (c: Context, key: string | null, error: unknown): ItemError => {
    const response = toErrorResponse(error);
    if (response.unexpected) onUnexpectedError(error, c.req.raw, c.get('requestId'));
    return { key, ...response.body };
  };

  batch.post(BATCH_GET_PATH, limit, async (c) => {
    const namespace = batchNamespace(c);
    authorize(c, namespace, 'read');
    const engine: Engine<unknown> = service.engine(namespace);
    const keys = envelopeArray(await jsonBody(c, maxJsonDepth), 'keys', maxBatchItems);
    const read = async (key: unknown): Promise<object> => {
      if (typeof key !== 'string') return failed(c, null, new InvalidKeyError('each key must be a string', { namespace }));
      try {
        const entry = await engine.readEntry(key);
        return entry.found ? { key, found: true, value: entry.value, version: entry.version } : { key, found: false, version: entry.version };
      } catch (error) {
        return failed(c, key, error);
      }
    };
    // Each item's JSON text is taken from the answer budget as soon as it is read; once one does
    // not fit, no further item starts and the batch is refused, giving back what it took.
    let taken = 0;
    let stop = false;
    let handed = false;
    try {
      const texts = await mapBounded(keys, BATCH_CONCURRENCY, async (key) => {
        const item = await read(key);
        if (stop) return '';
        const text = JSON.stringify(item);
        if (!answers.take(text.length)) {
          stop = true;
          return '';
        }
        taken += text.length;
        return text;
      }, () => stop);
      if (stop) throw answersBusy(answers.limit);
      holdUntilSent(c, answers, taken);
      handed = true;
      return c.body(`{"items":[${texts.join(',')}]}`, 200, { ...NO_STORE, 'Content-Type': 'application/json' });
    } finally {
      if (!handed) {
        stop = true; // lanes still reading take nothing more
        answers.give(taken);
      }
    }
  });

  batch.post(BATCH_PUT_PATH, limit, async (c) => {
    const namespace = batchNamespace(c);
    authorize(c, namespace, 'write');
    const engine: Engine<unknown> = service.engine(namespace);
    const parsed = envelopeArray(await jsonBody(c, maxJsonDepth), 'items', maxBatchItems).map(parsePutItem);
    // Checked before anything is written: with a key twice, the result would depend on timing.
    const repeated = repeatedKeys(parsed);
    if (repeated.length > 0) throw duplicateKeys(repeated);
    const items = await mapBounded(parsed, BATCH_CONCURRENCY, async (item) => {
      if (!item.ok) return failed(c, item.key, item.error);
      try {
        const { version } = await engine.write(item.key, item.value, item.options);
        return { key: item.key, version };
      } catch (error) {
        return failed(c, item.key, error);
      }
    });
    return c.json({ items }, 200, NO_STORE);
  });

  batch.all(ANY_BATCH_PATH, (c) => { throw methodNotAllowed(c.req.method, ['POST']); });
  return batch;
}

/** The namespace of `…/{namespace}:batchX`, from the raw last segment (namespaces hold no ':'). */
function batchNamespace(c: Context): string {
  const segment = rawSegments(c).at(-1) ?? '';
  const raw = segment.slice(0, segment.lastIndexOf(':'));
  return decodeSegment(raw, (m) => new InvalidNamespaceError(m));
}
