// The store port's write precondition (ifVersion / ifAbsent / ifExists) on an entity table, as the
// `expected` argument the table's guarded UPDATE understands, and the refusal it turns into.
import { PreconditionFailedError } from '../../errors.js';
import type { StorePrecondition, Version } from '../../types.js';

/** The version the guarded UPDATE must find: a number, 0 for "no row", undefined for no guard. */
export function expectedOf(precondition: StorePrecondition | undefined): number | undefined {
  if (precondition === undefined || precondition.kind === 'present') return undefined;
  return precondition.kind === 'absent' ? 0 : precondition.version;
}

/** Throws when `actual` (the row's version, undefined without a row) does not satisfy `precondition`. */
export function checkPrecondition(precondition: StorePrecondition | undefined, actual: Version | undefined, entity: string, key: string): void {
  if (precondition === undefined) return;
  const holds =
    precondition.kind === 'absent' ? actual === undefined : precondition.kind === 'present' ? actual !== undefined : actual === precondition.version;
  if (holds) return;
  const wanted = precondition.kind === 'version' ? `version ${precondition.version}` : precondition.kind === 'absent' ? 'no row' : 'a row';
  throw new PreconditionFailedError(`${entity} ${key}: expected ${wanted}, the store has ${actual === undefined ? 'no row' : `version ${actual}`}`, actual ?? 0, {
    key,
    namespace: entity,
  });
}

/**
 * An update of some columns (a changes payload) whose UPDATE changed no row: it never inserts, so it
 * is refused as its precondition failing (without one, the row it needs: `present`). When the
 * precondition holds all the same (`absent` and no row, or a row that came in after the UPDATE), it is
 * refused too: there was no row it could change.
 */
export function refuseChangesWithoutRow(precondition: StorePrecondition | undefined, actual: Version | undefined, entity: string, key: string): never {
  checkPrecondition(precondition ?? { kind: 'present' }, actual, entity, key);
  throw new PreconditionFailedError(`${entity} ${key}: an update of some columns changed no row, the store has ${actual === undefined ? 'no row' : `version ${actual}`}`, actual ?? 0, {
    key,
    namespace: entity,
  });
}
