// Conditional writes, shared by the stores: whether a precondition holds for a key's live version,
// the error a store throws when it does not, and how the SQL stores pass it to their functions.
import { PreconditionFailedError } from '../errors.js';
import type { StorePrecondition, Version } from '../types.js';

/** Whether `precondition` holds for a key whose live version is `live` (0: not live). */
export function preconditionHolds(precondition: StorePrecondition, live: Version): boolean {
  switch (precondition.kind) {
    case 'version':
      return live === precondition.version;
    case 'absent':
      return live === 0;
    case 'present':
      return live !== 0;
  }
}

export function preconditionFailed(
  namespace: string,
  key: string,
  precondition: StorePrecondition,
  live: Version,
  cause?: unknown,
): PreconditionFailedError {
  const wanted =
    precondition.kind === 'version' ? `version ${precondition.version}` : precondition.kind === 'absent' ? 'the key not to exist' : 'the key to exist';
  const found = live === 0 ? 'the key does not exist' : `its version is ${live}`;
  return new PreconditionFailedError(`precondition failed: expected ${wanted}, but ${found}; nothing was written`, live, { key, namespace, cause });
}

/** The two SQL parameters of a precondition: its kind ('version' | 'absent' | 'present') and version, NULL when absent. */
export function preconditionParams(precondition: StorePrecondition | undefined): [string | null, number | null] {
  if (precondition === undefined) return [null, null];
  return [precondition.kind, precondition.kind === 'version' ? precondition.version : null];
}

/** The marker a SQL store's function puts in front of the live version when a precondition fails. */
export const PRECONDITION_FAILED_MARKER = 'lockstep:precondition-failed:';

/** The live version carried by a store function's precondition-failed error message, or undefined if it is not one. */
export function liveVersionIn(message: unknown): Version | undefined {
  if (typeof message !== 'string') return undefined;
  const match = new RegExp(`${PRECONDITION_FAILED_MARKER}(\\d+)`).exec(message);
  return match === null ? undefined : Number(match[1]);
}
