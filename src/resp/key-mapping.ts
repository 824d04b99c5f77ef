// A Redis key → a Lockstep namespace and key. `orders:42` is key `42` of namespace `orders` (the
// rule of the rest of Lockstep: a namespace never holds ':', so the first ':' splits); a key whose
// prefix is not a valid namespace, or that has no ':', is a key of the default namespace, whole.
import { isUtf8 } from 'node:buffer';

const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface MappedKey {
  readonly namespace: string;
  readonly key: string;
}

/** Throws NotUtf8 when the key's bytes are not UTF-8 (Lockstep keys are text). */
export function mapKey(raw: Buffer, defaultNamespace: string): MappedKey {
  if (!isUtf8(raw)) throw new NotUtf8('key');
  const text = raw.toString('utf8');
  const colon = text.indexOf(':');
  if (colon > 0 && colon < text.length - 1) {
    const prefix = text.slice(0, colon);
    if (NAMESPACE.test(prefix)) return { namespace: prefix, key: text.slice(colon + 1) };
  }
  return { namespace: defaultNamespace, key: text };
}

/** A key or value that is not valid UTF-8: Lockstep stores text (JSON strings). */
export class NotUtf8 extends Error {
  constructor(readonly what: 'key' | 'value') {
    super(`the ${what} is not valid UTF-8: Lockstep stores ${what}s as UTF-8 text`);
  }
}
