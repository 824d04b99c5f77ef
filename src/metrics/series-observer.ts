// A write observes three latency histograms, and prom-client's `observe` validates and hashes the
// label object on every call (~0.6 µs each, `labels(...).observe` too). The series of one attached
// namespace and operation is always the same object, so it is found once, after `zero()`, and
// updated the way `observe` updates it: the sum, the count and the first bucket the value fits.
// This reads prom-client's own layout (`hashMap`, `upperBounds`: the version is pinned in
// package.json); when the layout is not as expected, or a reset or remove replaced the series,
// `observe` itself runs.
import type { Histogram } from 'prom-client';

interface Series {
  readonly labels: object;
  readonly bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

interface Internals {
  readonly hashMap?: Record<string, Series | undefined>;
  readonly upperBounds?: readonly number[];
}

/** Observes one finite, non-negative value (seconds) into the series of `labels`. */
export type SeriesObserver = (value: number) => void;

const isSeries = (value: Series | undefined, labels: object, keys: readonly string[]): value is Series =>
  value !== undefined &&
  value.labels === labels &&
  typeof value.sum === 'number' &&
  typeof value.count === 'number' &&
  typeof value.bucketValues === 'object' &&
  value.bucketValues !== null &&
  keys.every((key) => typeof value.bucketValues[key] === 'number');

/** `labels` must be the object the series was created with (`histogram.zero(labels)`). */
export function seriesObserver<L extends string>(histogram: Histogram<L>, labels: Partial<Record<L, string>>): SeriesObserver {
  const internals = histogram as unknown as Internals;
  const bounds = internals.upperBounds;
  if (!Array.isArray(bounds) || bounds.some((b) => typeof b !== 'number')) return (value) => histogram.observe(labels, value);
  // prom-client keys the buckets by the bound's string form (`bucketValues[bound]`).
  const keys = bounds.map(String);
  let hash: string | undefined;
  let held: Series | undefined;
  const find = (): void => {
    hash = undefined;
    held = undefined;
    const map = internals.hashMap;
    if (typeof map !== 'object' || map === null) return;
    for (const key of Object.keys(map)) {
      const series = map[key];
      if (isSeries(series, labels, keys)) {
        hash = key;
        held = series;
        return;
      }
    }
  };
  find();
  return (value) => {
    const series = held;
    if (series === undefined || internals.hashMap?.[hash!] !== series) {
      histogram.observe(labels, value); // creates the series again after a reset
      find();
      return;
    }
    series.sum += value;
    series.count += 1;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        series.bucketValues[keys[i]!]! += 1;
        return;
      }
    }
  };
}
