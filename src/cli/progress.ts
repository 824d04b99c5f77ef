// Progress bars for long work (audit, chaos, bench), drawn with cli-progress on stderr, and only
// when stderr is a terminal and the command is not printing --json: a pipe or a CI log never gets
// control characters. Short work stays silent: nothing is drawn before `delayMs`.
import { MultiBar, type SingleBar } from 'cli-progress';

export interface Progress {
  /**
   * Shows `label` at `value` of `total` (a bar with percentage and ETA), or a running count when the
   * total is unknown. A new label (or a total appearing) replaces the bar shown.
   */
  show(label: string, value: number, total?: number): void;
  /** A line on stderr: printed above the bar while one is shown. */
  log(line: string): void;
  /** Removes the bar; safe to call more than once. */
  stop(): void;
}

export interface ProgressOptions {
  /** Draw bars at all (callers pass `isTTY && !json`). */
  readonly enabled: boolean;
  /** Nothing is drawn until this long after the first show(). @default 300 */
  readonly delayMs?: number;
}

/** Whether bars may be drawn on this stream for this invocation. */
export function progressWanted(stderr: NodeJS.WritableStream, json: boolean): boolean {
  return !json && (stderr as { isTTY?: boolean }).isTTY === true;
}

const KNOWN_TOTAL = '{label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}';
const UNKNOWN_TOTAL = '{label} {value}…';

export function createProgress(stderr: NodeJS.WritableStream, { enabled, delayMs = 300 }: ProgressOptions): Progress {
  if (!enabled) {
    return { show: () => undefined, log: (line) => void stderr.write(`${line}\n`), stop: () => undefined };
  }
  let firstShownAt: number | undefined;
  let bars: MultiBar | undefined;
  let bar: { readonly bar: SingleBar; readonly label: string; readonly known: boolean } | undefined;

  const start = (): MultiBar =>
    new MultiBar({
      stream: stderr,
      clearOnComplete: true,
      hideCursor: true,
      etaBuffer: 50,
      fps: 10,
      barsize: 30,
      // Before the rate is known the ETA is 'NULL' or 'INF', which the default format cuts to 'LL'.
      formatTime: (t) => eta(t),
      formatValue: (value: number, _options: unknown, type: string) => (type === 'value' || type === 'total' ? value.toLocaleString('en-US') : String(value)),
    });

  return {
    show(label, value, total) {
      const now = performance.now();
      firstShownAt ??= now;
      if (bars === undefined && now - firstShownAt < delayMs) return;
      bars ??= start();
      const known = total !== undefined && total > 0;
      if (bar === undefined || bar.label !== label || bar.known !== known) {
        if (bar !== undefined) bars.remove(bar.bar);
        const created = bars.create(known ? total : 0, value, { label }, { format: known ? KNOWN_TOTAL : UNKNOWN_TOTAL });
        bar = { bar: created, label, known };
      }
      if (known) bar.bar.setTotal(total);
      bar.bar.update(value, { label });
    },
    log(line) {
      if (bars === undefined) stderr.write(`${line}\n`);
      else bars.log(`${line}\n`);
    },
    stop() {
      if (bars === undefined) return;
      bars.update(); // flush lines logged since the last redraw
      bars.stop();
      bars = undefined;
      bar = undefined;
      firstShownAt = undefined;
    },
  };
}

/** Seconds left as 7s, 3m04s or 1h02m; '?' while the rate is unknown. */
function eta(seconds: unknown): string {
  // cli-progress passes a number, '0' before the first estimate, or 'NULL' / 'INF'.
  const s = Math.round(typeof seconds === 'number' || typeof seconds === 'string' ? Number(seconds) : Number.NaN);
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
