// Method decorators (TypeScript 5 standard decorators, not `experimentalDecorators`) over the
// inline helpers: the decorated method's body is the caller's database step, run inside the
// protocol by writeThrough / deleteThrough / readThrough. Nothing else: no registry, no metadata,
// no reflection. The Lockstep instance is read from the object the method is called on: its public
// `lockstep` property, or the `lockstep` function given in the options (for a private field).
import type { Duration } from '../duration.js';
import type { Engine } from '../engine/api.js';
import { InvalidOptionError } from '../errors.js';
import type { Version } from '../types.js';

/** The slice of a Lockstep instance the decorators call. */
export type InlineLockstep = Pick<Engine<unknown>, 'writeThrough' | 'readThrough' | 'deleteThrough'>;

/** An object whose Lockstep instance is its public `lockstep` property (the default lookup). */
export interface HasLockstep {
  readonly lockstep: InlineLockstep;
}

/** Where the decorated method's object keeps its Lockstep instance, when not in `this.lockstep`. */
export interface LocateLockstep<This> {
  lockstep: (self: This) => InlineLockstep;
}

type AsyncMethod<This, Args extends unknown[], R> = (this: This, ...args: Args) => Promise<R>;
type MethodDecorator<This, Args extends unknown[], R> = (
  method: AsyncMethod<This, Args, R>,
  context: ClassMethodDecoratorContext<This, AsyncMethod<This, Args, R>>,
) => AsyncMethod<This, Args, R>;

/** A function of the method's arguments. `Args & {}` keeps TypeScript from inferring Args from it (a key may take fewer). */
type KeyFunction<Args extends unknown[]> = (...args: Args & {}) => string;

interface KeyedOptions<Args extends unknown[]> {
  /** The cache key of a call, from the method's own arguments (typed as the method's; it may take fewer). */
  key: KeyFunction<Args>;
}

export interface WritesThroughOptions<Args extends unknown[], R> extends KeyedOptions<Args> {
  /** The version the method's commit gave the row (see Versioned: it must increase per key in commit order). */
  version: (result: R) => Version;
  /** What the cache holds for the key. @default the method's result */
  value?: (result: R) => unknown;
  /** Cache TTL of the value. @default the Lockstep instance's `ttl` */
  ttl?: Duration;
}

export interface DeletesThroughOptions<Args extends unknown[], R> extends KeyedOptions<Args> {
  /** The delete's own version, newer than the row's (a sequence, or a tombstone row's bumped version). */
  version: (result: R) => Version;
}

export interface CachedReadOptions<Args extends unknown[], V> extends KeyedOptions<Args> {
  /** The version of the value the method loaded. The method returns undefined for "not found". */
  version: (value: V) => Version;
}

function lockstepOf<This>(self: This, locate: ((self: This) => InlineLockstep) | undefined, method: string | symbol): InlineLockstep {
  const found = locate === undefined ? (self as Partial<HasLockstep> | undefined)?.lockstep : locate(self);
  if (typeof found?.writeThrough !== 'function') {
    throw new InvalidOptionError(
      `${String(method)}: no Lockstep instance: give the object a public \`lockstep\` property or pass \`lockstep: (self) => …\` to the decorator`,
    );
  }
  return found;
}

/** The method writes one row in its own transaction; it runs under a write lease and its result is published, fenced by `version`. */
export function writesThrough<This, Args extends unknown[], R>(options: WritesThroughOptions<Args, R> & LocateLockstep<This>): MethodDecorator<This, Args, R>;
export function writesThrough<This extends HasLockstep, Args extends unknown[], R>(options: WritesThroughOptions<Args, R>): MethodDecorator<This, Args, R>;
export function writesThrough<This, Args extends unknown[], R>(
  options: WritesThroughOptions<Args, R> & Partial<LocateLockstep<This>>,
): MethodDecorator<This, Args, R> {
  const { key, version, value, ttl, lockstep } = options;
  return (method, context) =>
    async function (this: This, ...args: Args): Promise<R> {
      const committed = await lockstepOf(this, lockstep, context.name).writeThrough(
        key(...args),
        async () => {
          const result = await method.apply(this, args);
          return { result, value: value === undefined ? result : value(result), version: version(result) };
        },
        ttl === undefined ? undefined : { ttl },
      );
      return committed.result;
    };
}

/** The method deletes one row in its own transaction; a tombstone at the delete's `version` is left in the cache. */
export function deletesThrough<This, Args extends unknown[], R>(options: DeletesThroughOptions<Args, R> & LocateLockstep<This>): MethodDecorator<This, Args, R>;
export function deletesThrough<This extends HasLockstep, Args extends unknown[], R>(options: DeletesThroughOptions<Args, R>): MethodDecorator<This, Args, R>;
export function deletesThrough<This, Args extends unknown[], R>(
  options: DeletesThroughOptions<Args, R> & Partial<LocateLockstep<This>>,
): MethodDecorator<This, Args, R> {
  const { key, version, lockstep } = options;
  return (method, context) =>
    async function (this: This, ...args: Args): Promise<R> {
      const committed = await lockstepOf(this, lockstep, context.name).deleteThrough(key(...args), async () => {
        const result = await method.apply(this, args);
        return { result, version: version(result) };
      });
      return committed.result;
    };
}

/**
 * The method is the loader of a cache-aside read: called on a miss (once per key at a time in this
 * process), its answer filled under a read lease. Hits skip it. Values served from an in-process
 * cache are deep-frozen copies.
 */
export function cachedRead<This, Args extends unknown[], V>(options: CachedReadOptions<Args, V> & LocateLockstep<This>): MethodDecorator<This, Args, V | undefined>;
export function cachedRead<This extends HasLockstep, Args extends unknown[], V>(options: CachedReadOptions<Args, V>): MethodDecorator<This, Args, V | undefined>;
export function cachedRead<This, Args extends unknown[], V>(
  options: CachedReadOptions<Args, V> & Partial<LocateLockstep<This>>,
): MethodDecorator<This, Args, V | undefined> {
  const { key, version, lockstep } = options;
  return (method, context) =>
    async function (this: This, ...args: Args): Promise<V | undefined> {
      return lockstepOf(this, lockstep, context.name).readThrough<V>(key(...args), async () => {
        const value = await method.apply(this, args);
        return value === undefined ? undefined : { value, version: version(value) };
      });
    };
}
