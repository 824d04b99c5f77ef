// The seed's A–E states of one key, from both sides. Shared by inspect() and the auditor.
import type { CacheRecordView, StoredValue } from '../types.js';
import type { KeyState } from './api.js';

export interface Classification {
  readonly state: KeyState;
  readonly description: string;
}

export function classifyKey(stored: StoredValue | undefined, cached: CacheRecordView | undefined): Classification {
  const lease = cached !== undefined && cached.kind !== 'value' ? ` (a ${cached.kind} lease is in flight)` : '';
  const servable = cached?.kind === 'value' && !cached.tombstone ? cached : undefined;
  if (stored === undefined) {
    if (servable === undefined) return { state: 'A', description: `empty: neither the store nor the cache holds the key${lease}` };
    return { state: 'E', description: `cache only: the cache serves version ${servable.version}, the store has no row` };
  }
  if (cached?.kind !== 'value') return { state: 'B', description: `store only: version ${stored.version} is in the store, not cached${lease}` };
  if (servable === undefined) {
    return { state: 'D', description: `inconsistent: the cache holds a tombstone (version ${cached.version}), the store version ${stored.version}` };
  }
  if (servable.version === stored.version) return { state: 'C', description: `synchronized at version ${stored.version}` };
  return { state: 'D', description: `inconsistent: the cache serves version ${servable.version}, the store holds ${stored.version}` };
}
