// Resident memory of a process, sampled from /proc/<pid>/status (VmRSS) once a second, and the
// rule that calls it flat: the least-squares slope over the second half of the run, extrapolated
// over the whole run, grows by less than FLAT_FRACTION of the mid-run RSS. (The first half is
// left out: caches, JIT and pools are still filling.)
import { readFileSync } from 'node:fs';

export const FLAT_FRACTION = 0.1;

export interface RssSample {
  readonly atMs: number;
  readonly mb: number;
}

export interface RssSummary {
  readonly samples: number;
  readonly startMb: number;
  readonly midMb: number;
  readonly endMb: number;
  readonly maxMb: number;
  /** Slope of the second half, MB per minute. */
  readonly slopeMbPerMin: number;
  readonly flat: boolean;
}

export function readRssMb(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? undefined : Number(match[1]) / 1024;
  } catch {
    return undefined; // gone, or not Linux
  }
}

export function sampleRss(pid: number, intervalMs = 1000): { stop(): RssSample[] } {
  const started = performance.now();
  const samples: RssSample[] = [];
  const take = (): void => {
    const mb = readRssMb(pid);
    if (mb !== undefined) samples.push({ atMs: performance.now() - started, mb });
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

export function summarizeRss(samples: readonly RssSample[]): RssSummary | undefined {
  if (samples.length < 2) return undefined;
  const first = samples[0]!;
  const last = samples.at(-1)!;
  const mid = samples[Math.floor(samples.length / 2)]!;
  const half = samples.slice(Math.floor(samples.length / 2));
  const slopePerMs = slope(half);
  const runMs = last.atMs - first.atMs;
  return {
    samples: samples.length,
    startMb: first.mb,
    midMb: mid.mb,
    endMb: last.mb,
    maxMb: Math.max(...samples.map((s) => s.mb)),
    slopeMbPerMin: slopePerMs * 60_000,
    flat: slopePerMs * runMs < FLAT_FRACTION * mid.mb,
  };
}

function slope(points: readonly RssSample[]): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const meanX = points.reduce((s, p) => s + p.atMs, 0) / n;
  const meanY = points.reduce((s, p) => s + p.mb, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.atMs - meanX) * (p.mb - meanY);
    den += (p.atMs - meanX) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
