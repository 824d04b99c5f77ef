// Waiting for a condition in tests: bounded, polled, never a fixed sleep as the thing waited for.
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves once `check` resolves true (a rejection counts as false); throws naming `what` after `ms`. */
export async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Resolves with the first value `probe` gives that is not undefined; throws naming `what` after `ms`.
 * Unlike `until`, a rejection of `probe` fails at once (the probe's error is the finding).
 */
export async function untilValue<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 30_000, everyMs = 20): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(everyMs);
  }
}
