import { cacheKeyOf } from '../keys.js';

/**
 * The cache keys of one namespace. Joining namespace and key makes a new string on every call,
 * which the cache must then flatten and hash: about 100 ns, most of a memory hit. Remembering
 * recent joins lets a repeated key reuse the string whose hash is already computed. Bounded:
 * when full it starts over, which costs one join per key, as without it.
 */
export class CacheKeys {
  private readonly prefix: string;
  private readonly joined = new Map<string, string>();

  constructor(
    namespace: string,
    private readonly capacity = 8192,
  ) {
    this.prefix = cacheKeyOf(namespace, '');
  }

  /**
   * The joined key if `key` was joined before, else undefined. The engine joins only keys that
   * passed validateKey, so a key found here is a valid one: the hit path skips checking it again.
   */
  known(key: string): string | undefined {
    return this.joined.get(key);
  }

  of(key: string): string {
    let cacheKey = this.joined.get(key);
    if (cacheKey === undefined) {
      if (this.joined.size >= this.capacity) this.joined.clear();
      cacheKey = this.prefix + key;
      this.joined.set(key, cacheKey);
    }
    return cacheKey;
  }
}
