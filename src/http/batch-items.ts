// The batch envelope and its items: a malformed envelope refuses the whole request (nothing is
// read or written); a malformed item is reported in its own slot, the others go ahead.
import type { WriteOptions } from '../engine/api.js';
import { InvalidKeyError, InvalidOptionError, type LockstepError } from '../errors.js';
import { HttpError } from './errors.js';

export function invalidBatch(message: string): HttpError {
  return new HttpError(400, 'E_INVALID_BATCH', message);
}

export function batchTooLarge(count: number, limit: number): HttpError {
  return new HttpError(413, 'E_BATCH_TOO_LARGE', `the batch has ${count} items; at most ${limit} are allowed per request`);
}

export function duplicateKeys(keys: readonly string[]): HttpError {
  const shown = keys.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 64)));
  return new HttpError(
    400,
    'E_DUPLICATE_KEYS',
    `a batchPut names each key at most once (the outcome would depend on order); repeated: ${shown.join(', ')}${keys.length > 5 ? ' …' : ''}`,
  );
}

/** The array under `field` of a JSON object body, within the item limit. */
export function envelopeArray(body: unknown, field: 'keys' | 'items', maxItems: number): unknown[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidBatch(`the body must be a JSON object {"${field}": [...]}`);
  }
  const extra = Object.keys(body).filter((name) => name !== field);
  if (extra.length > 0) throw invalidBatch(`unknown field ${JSON.stringify(extra[0]!.slice(0, 64))} in the batch body; only "${field}" is read`);
  const list = (body as Record<string, unknown>)[field];
  if (!Array.isArray(list)) throw invalidBatch(`the body must have an array "${field}"`);
  if (list.length > maxItems) throw batchTooLarge(list.length, maxItems);
  return list;
}

/** One batchPut item, ready for engine.write, or the error that is its result. */
export type PutItem =
  | { readonly ok: true; readonly key: string; readonly value: unknown; readonly options: WriteOptions }
  | { readonly ok: false; readonly key: string | null; readonly error: LockstepError };

const PUT_FIELDS = new Set(['key', 'value', 'ttlMs', 'ifVersion', 'ifAbsent']);

/** Shape checks only; the engine validates the key, the value, the TTL and the conditions themselves. */
export function parsePutItem(raw: unknown): PutItem {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, key: null, error: new InvalidOptionError('each item must be an object {"key", "value", "ttlMs"?, "ifVersion"?, "ifAbsent"?}') };
  }
  const item = raw as Record<string, unknown>;
  if (typeof item.key !== 'string') return { ok: false, key: null, error: new InvalidKeyError('the item has no string "key"') };
  const key = item.key;
  const unknown = Object.keys(item).find((name) => !PUT_FIELDS.has(name));
  if (unknown !== undefined) {
    return { ok: false, key, error: new InvalidOptionError(`unknown item field ${JSON.stringify(unknown.slice(0, 64))}`, { key }) };
  }
  if (!('value' in item)) return { ok: false, key, error: new InvalidOptionError('the item has no "value" (to remove a key, use DELETE)', { key }) };
  const { ttlMs, ifVersion, ifAbsent } = item;
  if (ttlMs !== undefined && !(Number.isSafeInteger(ttlMs) && (ttlMs as number) > 0)) {
    return { ok: false, key, error: new InvalidOptionError(`ttlMs must be a positive integer number of milliseconds (got ${JSON.stringify(ttlMs)})`, { key }) };
  }
  const options: WriteOptions = {
    ...(ttlMs === undefined ? {} : { ttl: ttlMs as number }),
    ...(ifVersion === undefined ? {} : { ifVersion: ifVersion as number }),
    ...(ifAbsent === undefined ? {} : { ifAbsent: ifAbsent as true }),
  };
  return { ok: true, key, value: item.value, options };
}

/** Keys named more than once among the well-formed items. */
export function repeatedKeys(items: readonly PutItem[]): string[] {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const item of items) {
    if (item.key === null) continue;
    if (seen.has(item.key)) repeated.add(item.key);
    seen.add(item.key);
  }
  return [...repeated];
}

/**
 * Runs `work` over `items` with at most `limit` at once; results in input order. `work` must not
 * throw. Once `stopped()` is true no further item starts (their results stay empty).
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>, stopped: () => boolean = () => false): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length && !stopped()) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
