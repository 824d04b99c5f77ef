import ms from 'ms';
import { InvalidOptionError } from './errors.js';

/** A duration: milliseconds as a number, or a string such as `'250ms'`, `'30s'`, `'5m'`, `'1h'`. */
export type Duration = number | string;

/** Resolves a Duration to whole milliseconds, with an error that names the option. */
export function toMs(value: Duration, option: string, { allowZero = false } = {}): number {
  const parsed = typeof value === 'number' ? value : typeof value === 'string' ? ms(value as ms.StringValue) : Number.NaN;
  if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed < 0 || (!allowZero && parsed === 0)) {
    throw new InvalidOptionError(
      `${option} must be a ${allowZero ? 'non-negative' : 'positive'} duration in ms or a string like '30s' (got ${JSON.stringify(value)})`,
    );
  }
  return Math.round(parsed);
}
