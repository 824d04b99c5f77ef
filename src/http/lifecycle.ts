// The app's view of the process around it: whether shutdown has begun (so /readyz can say
// `draining` and keep-alive clients are told to go) and how many requests are in flight (so the
// shutdown log can say what it waited for). One per app; `lockstep serve` flips it on SIGTERM.

export interface Lifecycle {
  /** True once beginDrain() was called. */
  readonly draining: boolean;
  /** Requests the app has started and not yet answered. */
  readonly inFlight: number;
  /** Marks the start of shutdown. Idempotent. */
  beginDrain(): void;
  /** Called by the app around each request. */
  requestStarted(): void;
  requestFinished(): void;
}

export function createLifecycle(): Lifecycle {
  let draining = false;
  let inFlight = 0;
  return {
    get draining() {
      return draining;
    },
    get inFlight() {
      return inFlight;
    },
    beginDrain() {
      draining = true;
    },
    requestStarted() {
      inFlight++;
    },
    requestFinished() {
      inFlight--;
    },
  };
}
