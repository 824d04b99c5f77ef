// WriteOptions / DeleteOptions conditions → the store's precondition, validated once per call.
import { InvalidOptionError } from '../errors.js';
import type { StorePrecondition } from '../types.js';
import type { DeleteOptions, WriteOptions } from './api.js';

const CONDITIONS = ['ifVersion', 'ifAbsent', 'ifExists'] as const;

/** The precondition a write or delete asks for, or undefined. Throws InvalidOptionError on a bad or conflicting option. */
export function preconditionOf(options: WriteOptions | DeleteOptions | undefined, operation: 'write' | 'delete'): StorePrecondition | undefined {
  if (options === undefined) return undefined;
  const given = CONDITIONS.filter((name) => (options as Record<string, unknown>)[name] !== undefined);
  if (given.length === 0) return undefined;
  if (given.length > 1) throw new InvalidOptionError(`${given.join(' and ')} are mutually exclusive: pass at most one condition`);
  const { ifVersion, ifAbsent, ifExists } = options as WriteOptions;
  if (ifVersion !== undefined) {
    if (!Number.isSafeInteger(ifVersion) || ifVersion < 1) {
      throw new InvalidOptionError(`ifVersion must be a positive integer version (got ${JSON.stringify(ifVersion)})`);
    }
    return { kind: 'version', version: ifVersion };
  }
  if (ifAbsent !== undefined) {
    if (operation === 'delete') throw new InvalidOptionError('ifAbsent applies to writes only (a delete of a missing key needs no condition)');
    if (ifAbsent !== true) throw new InvalidOptionError(`ifAbsent must be true when given (got ${JSON.stringify(ifAbsent)})`);
    return { kind: 'absent' };
  }
  if (ifExists !== true) throw new InvalidOptionError(`ifExists must be true when given (got ${JSON.stringify(ifExists)})`);
  return { kind: 'present' };
}
