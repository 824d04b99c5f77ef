import { cacheKeyOf } from '../keys.js';
import type { CacheAnswerHandler, CacheSlot } from '../types.js';

/** A key this engine has checked, its joined cache key, and the cache's slot of its value when it has one. */
export interface KnownKey {
  readonly cacheKey: string;
  /** CacheAdapter.slot: read instead of looking the cache key up again; refreshed after a hit through get. */
  slot: CacheSlot | undefined;
  /** The key's row was live after this engine's last write of it (true) or gone after its delete (false); unknown before either. */
  live?: boolean;
  /**
   * The engine's handling of the cache's answer to an untimed read of this key (CacheAdapter.getThen):
   * it holds nothing of one read, so every such read of the key shares it instead of making its own.
   */
  answerHandler: CacheAnswerHandler<unknown> | undefined;
}

/**
 * The cache keys of one namespace. Joining namespace and key makes a new string on every call,
 * which the cache must then flatten and hash: about 100 ns, most of a memory hit. Remembering
 * recent joins lets a repeated key reuse the string whose hash is already computed, and an
 * in-process cache's slot lets it skip the cache's own lookup. Bounded: when full it starts over,
 * which costs one join per key, as without it.
 */
export class CacheKeys {
  private readonly prefix: string;
  private readonly joined = new Map<string, KnownKey>();

  constructor(
    namespace: string,
    private readonly capacity = 8192,
  ) {
    this.prefix = cacheKeyOf(namespace, '');
  }

  /**
   * What is remembered of `key` if it was joined before, else undefined. The engine joins only keys
   * that passed validateKey, so a key found here is a valid one: the hit path skips checking it again.
   */
  known(key: string): KnownKey | undefined {
    return this.joined.get(key);
  }

  /** The key's entry, joined now if it is new (only for a key that passed validateKey). */
  entry(key: string): KnownKey {
    return this.joined.get(key) ?? this.join(key);
  }

  /** Joins a key that `known` just did not find (only for a key that passed validateKey): no second lookup. */
  join(key: string): KnownKey {
    return this.remember(key, this.prefix + key);
  }

  /** The key's cache key, not remembered (the caller may `remember` it later). */
  cacheKeyOf(key: string): string {
    return this.prefix + key;
  }

  /** Remembers `cacheKey` (cacheKeyOf(key)) for a key that `known` did not find (only for a key that passed validateKey). */
  remember(key: string, cacheKey: string): KnownKey {
    if (this.joined.size >= this.capacity) this.joined.clear();
    const known: KnownKey = { cacheKey, slot: undefined, answerHandler: undefined };
    this.joined.set(key, known);
    return known;
  }

  of(key: string): string {
    return this.entry(key).cacheKey;
  }
}
