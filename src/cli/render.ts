// Text forms shared by the commands that print keys: both sides of a key (audit, inspect), short
// previews of values, and JSON that survives an unbounded expiry.
import type { CacheRecordView } from '../types.js';

/** A short form of a payload: the encoded string as stored, or the JSON of a decoded value. */
export function preview(payload: unknown, max = 60): string {
  let text: string;
  try {
    text = typeof payload === 'string' ? payload : (JSON.stringify(payload) ?? String(payload));
  } catch {
    text = String(payload);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function renderStored(stored: { readonly version: number; readonly value?: unknown; readonly payload?: unknown } | null, max = 60): string {
  if (stored === null) return 'no row';
  return `v${stored.version} ${preview('payload' in stored ? stored.payload : stored.value, max)}`;
}

export function renderCached(view: CacheRecordView | null, max = 60): string {
  if (view === null) return 'nothing';
  switch (view.kind) {
    case 'value':
      return view.tombstone ? `v${view.version} tombstone` : `v${view.version} ${preview(view.payload, max)}`;
    case 'fill':
      return 'fill lease';
    case 'write':
      return `write lease (${view.writers} writer${view.writers === 1 ? '' : 's'}, max v${view.maxVersion}${view.dirty ? ', dirty' : ''})`;
  }
}

/** `orders/42`, or `orders/"a key"` when the key would not read back unambiguously. */
export function keyLabel(namespace: string, key: string): string {
  return `${namespace}/${/^[\w.:@-]+$/.test(key) ? key : JSON.stringify(key)}`;
}

/** Infinity (a record without expiry) has no JSON form: written as null. */
export function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

/** One JSON document on its own line(s), as every --json prints. */
export function jsonDocument(value: unknown): string {
  return `${JSON.stringify(value, jsonSafe, 2)}\n`;
}
