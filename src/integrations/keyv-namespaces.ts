// Keyv namespaces ↔ Lockstep namespaces. Keyv prefixes every key with `namespace:` and tells the
// store its namespace by assigning `store.namespace`; one store object may be handed to several
// Keyv instances, each assigning its own. The adapter therefore routes each key by its prefix, as
// Keyv's own SQL adapters do (they keep the prefixed key and use `namespace` only for clear()).
import { InvalidNamespaceError } from '../errors.js';
import { validateNamespace } from '../keys.js';

export interface RoutedKey {
  /** The Keyv namespace the key carries, or undefined for a key Keyv sent without a prefix. */
  readonly keyvNamespace: string | undefined;
  /** The Lockstep namespace it maps to. */
  readonly namespace: string;
  /** The key inside that namespace (the Keyv key without its prefix). */
  readonly key: string;
}

export class KeyvNamespaces {
  /** Keyv namespaces this adapter has been given, for keys sent while another one was current. */
  private readonly known = new Set<string>();
  /** Keyv namespace → Lockstep namespace, validated once. */
  private readonly mapped = new Map<string, string>();

  /** @param prefix the Lockstep namespace of un-prefixed keys, and the prefix of every mapped namespace */
  constructor(readonly prefix: string) {
    validateNamespace(prefix);
  }

  /** `prefix` for no Keyv namespace, `prefix.<keyvNamespace>` otherwise; throws a clear error when it cannot be one. */
  lockstepNamespaceOf(keyvNamespace: string | undefined): string {
    if (keyvNamespace === undefined) return this.prefix;
    const known = this.mapped.get(keyvNamespace);
    if (known !== undefined) return known;
    const mapped = `${this.prefix}.${keyvNamespace}`;
    try {
      validateNamespace(mapped);
      this.mapped.set(keyvNamespace, mapped);
      return mapped;
    } catch {
      throw new InvalidNamespaceError(
        `Keyv namespace ${JSON.stringify(keyvNamespace)} maps to the Lockstep namespace ${JSON.stringify(mapped)}, which must be 1-64 characters of [A-Za-z0-9_.-]: ` +
          `use a Keyv namespace of [A-Za-z0-9_.-] of at most ${63 - this.prefix.length} characters`,
        { namespace: keyvNamespace },
      );
    }
  }

  /** Validates and remembers a namespace Keyv assigns. */
  remember(keyvNamespace: string | undefined): void {
    if (keyvNamespace === undefined) return;
    this.lockstepNamespaceOf(keyvNamespace);
    this.known.add(keyvNamespace);
  }

  /** Splits a key as Keyv sent it: the current namespace's prefix first, then any other one this adapter was given. */
  route(keyvKey: string, current: string | undefined): RoutedKey {
    if (current !== undefined && keyvKey.startsWith(`${current}:`)) return this.routed(current, keyvKey.slice(current.length + 1));
    const colon = keyvKey.indexOf(':');
    if (colon > 0) {
      const candidate = keyvKey.slice(0, colon);
      if (this.known.has(candidate)) return this.routed(candidate, keyvKey.slice(colon + 1));
    }
    return this.routed(undefined, keyvKey);
  }

  /** The key as Keyv knows it, for the iterator. */
  keyvKeyOf(keyvNamespace: string | undefined, key: string): string {
    return keyvNamespace === undefined ? key : `${keyvNamespace}:${key}`;
  }

  private routed(keyvNamespace: string | undefined, key: string): RoutedKey {
    return { keyvNamespace, namespace: this.lockstepNamespaceOf(keyvNamespace), key };
  }
}
