// Every error Lockstep throws, each with a stable `code`, the key it concerns and the original
// cause kept intact (a database's SQLSTATE or SQLite code stays readable on `cause`).

export interface LockstepErrorDetails {
  readonly key?: string | undefined;
  readonly namespace?: string | undefined;
  readonly cause?: unknown;
}

export class LockstepError extends Error {
  static readonly code: string = 'E_LOCKSTEP';
  readonly code: string;
  readonly key: string | undefined;
  readonly namespace: string | undefined;

  constructor(message: string, details: LockstepErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = (new.target as typeof LockstepError).code;
    this.key = details.key;
    this.namespace = details.namespace;
  }
}

/** The key is empty or not well-formed UTF-16 (and, as its subclass KeyTooLongError, longer than the limit). */
export class InvalidKeyError extends LockstepError {
  // Typed as string: a subclass narrows it to its own code.
  static override readonly code: string = 'E_INVALID_KEY';
}

/** The key is longer than `maxKeyBytes` of UTF-8. An InvalidKeyError, with its own code. */
export class KeyTooLongError extends InvalidKeyError {
  static override readonly code = 'E_KEY_TOO_LONG';
}

/** The namespace does not match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}. */
export class InvalidNamespaceError extends LockstepError {
  static override readonly code = 'E_INVALID_NAMESPACE';
}

/** The value cannot be serialized by the codec (a function, a cycle, a BigInt without a codec, undefined …). */
export class InvalidValueError extends LockstepError {
  static override readonly code = 'E_INVALID_VALUE';
}

/** The encoded value is larger than `maxValueBytes`. */
export class ValueTooLargeError extends LockstepError {
  static override readonly code = 'E_VALUE_TOO_LARGE';
  constructor(
    message: string,
    readonly sizeBytes: number,
    readonly limitBytes: number,
    details: LockstepErrorDetails = {},
  ) {
    super(message, details);
  }
}

/** An option passed to a factory is invalid. */
export class InvalidOptionError extends LockstepError {
  static override readonly code = 'E_INVALID_OPTION';
}

/** The store refused or failed the write; nothing was committed and the cache is as it was. */
export class StoreWriteError extends LockstepError {
  static override readonly code = 'E_STORE_WRITE';
}

/**
 * A conditional write or delete (`ifVersion`, `ifAbsent`, `ifExists`) found the key in another state.
 * The store committed nothing; `currentVersion` is the key's live version, or 0 when it is not live.
 * The caller's condition, not an outage: it is not counted as a store failure.
 */
export class PreconditionFailedError extends LockstepError {
  static override readonly code = 'E_PRECONDITION_FAILED';
  constructor(
    message: string,
    readonly currentVersion: number,
    details: LockstepErrorDetails = {},
  ) {
    super(message, details);
  }
}

/** The store failed a read. */
export class StoreReadError extends LockstepError {
  // Typed as string: a subclass narrows it to its own code.
  static override readonly code: string = 'E_STORE_READ';
}

/**
 * The store did not answer a read (or the wait before a write) within its client-side deadline,
 * derived from the lease budget (docs/operations.md, "Deadlines"). A StoreReadError with its own code.
 */
export class StoreTimeoutError extends StoreReadError {
  static override readonly code = 'E_STORE_TIMEOUT';
}

/**
 * The store did not say whether the write committed (timeout, lost connection). Adapters throw it;
 * the engine leaves the write lease to expire so that no reader fills around the unknown outcome.
 */
export class StoreOutcomeUnknownError extends LockstepError {
  static override readonly code = 'E_STORE_OUTCOME_UNKNOWN';
  /**
   * Set by a store that can settle the outcome later: resolves true once the write can no longer
   * land (the server session that may still run it has ended), false if the store gave up finding
   * out. Never rejects. A write it settles may have committed after its lease expired with no
   * confirmation left to say so, so the engine then fences the key whatever it holds.
   */
  settled?: Promise<boolean>;
}

/** A cache call failed (connection refused, an error reply). Reads fall back to the store; inspect reports it. */
export class CacheError extends LockstepError {
  // Typed as string: a subclass narrows it to its own code.
  static override readonly code: string = 'E_CACHE_FAILED';
}

/** A cache call did not answer within its client-side deadline (the Redis adapter's `commandTimeout`). */
export class CacheTimeoutError extends CacheError {
  static override readonly code = 'E_CACHE_TIMEOUT';
}

/**
 * The Redis cache lost its dataset (a restart, a promoted replica, a flush), or cannot prove it did
 * not, and answers no call for `restartQuarantine` (docs/protocol.md, "The quarantine").
 */
export class DatasetQuarantinedError extends CacheError {
  static override readonly code = 'E_CACHE_QUARANTINED';
}

/** Redis evicts keys without a TTL (`maxmemory-policy allkeys-*`), leases included: the adapter refuses to be used. */
export class CacheEvictionPolicyError extends CacheError {
  static override readonly code = 'E_CACHE_EVICTION_POLICY';
}

/** The cache could not be leased and the failure policy is `strict`: nothing was written. */
export class CacheUnavailableError extends LockstepError {
  static override readonly code = 'E_CACHE_UNAVAILABLE';
}

/**
 * Policy `strict`: the store committed `committedVersion`, but the cache step failed. The write is
 * durable; readers are kept on the store until the lease expires, so no stale value is served.
 */
export class CacheWriteError extends LockstepError {
  static override readonly code = 'E_CACHE_WRITE';
  constructor(
    message: string,
    readonly committedVersion: number,
    details: LockstepErrorDetails = {},
  ) {
    super(message, details);
  }
}

/**
 * An inline write step, decorated method or loader gave a version that is not a positive safe
 * integer. Versions fence the cache: without a valid one nothing can be published for the key.
 */
export class InvalidVersionError extends LockstepError {
  static override readonly code = 'E_INVALID_VERSION';
}

/**
 * A repository save or delete named the version it expected the entity to have (optimistic locking),
 * and the store holds another one: nothing was written. `actualVersion` is undefined when the row
 * does not exist.
 */
export class VersionConflictError extends LockstepError {
  static override readonly code = 'E_VERSION_CONFLICT';
  constructor(
    message: string,
    readonly expectedVersion: number,
    readonly actualVersion: number | undefined,
    details: LockstepErrorDetails = {},
  ) {
    super(message, details);
  }
}

/** The instance was closed. */
export class ClosedError extends LockstepError {
  static override readonly code = 'E_CLOSED';
}

export function isLockstepError(error: unknown): error is LockstepError {
  return error instanceof LockstepError;
}

/** An optional driver package (pg, mysql2, redis) is not installed; the message names the install command. */
export class MissingDriverError extends LockstepError {
  static override readonly code = 'E_MISSING_DRIVER';
  constructor(
    readonly packageName: string,
    readonly entry: string,
    cause: unknown,
  ) {
    super(`${entry} needs the optional package '${packageName}', which is not installed: run \`npm install ${packageName}\``, { cause });
  }
}
