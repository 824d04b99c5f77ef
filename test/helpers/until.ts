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
