// The scenario the held-write tests share (kv-, entity- and mariadb-write-held-by-network): key 'a'
// is written (v1); the next write's bytes are held by the relay from `holdFrom` on, past every client
// deadline, so the engine answers "outcome unknown"; after the lease a reader fills v1 from the
// store and is served it from the cache, and again after the store gave the write up (a fence that
// came too early is undone by that refill); then the network delivers. Reads must end up answering
// what the store holds, and keep answering it.
import assert from 'node:assert/strict';
import type { holdRelay, HoldFrom } from './hold-relay.js';
import { until } from './until.js';

type Body = { body: string };
interface HeldEngine {
  write(key: string, value: Body): Promise<unknown>;
  read(key: string): Promise<Body | undefined>;
  readEntry(key: string): Promise<{ source: string; value?: Body | undefined }>;
}

export interface HeldWriteOptions {
  readonly holdFrom: HoldFrom;
  /** The value the store holds for 'a' now, read past Lockstep. */
  readonly stored: () => Promise<string | undefined>;
  /** Runs while the write is held, after the store gave it up (before the refill check). */
  readonly whileHeld?: () => Promise<void>;
  /** Wait for the held session to be ended on the server before the bytes are delivered (they can then never land). */
  readonly endedBeforeDelivery?: boolean;
}

export async function heldWrite(engine: HeldEngine, relay: Awaited<ReturnType<typeof holdRelay>>, options: HeldWriteOptions): Promise<void> {
  const servedOld = async () => {
    const entry = await engine.readEntry('a');
    return entry.source === 'hit' && entry.value?.body === 'v1';
  };
  await engine.write('a', { body: 'v1' });
  relay.arm(options.holdFrom);
  await assert.rejects(engine.write('a', { body: 'v2' }), (e: Error & { code?: string }) => e.code === 'E_STORE_OUTCOME_UNKNOWN');
  // The lease expired: a reader filled the old value, and it is served from the cache.
  await until('the old value filled and served from the cache', servedOld);
  // Past the point where the store gives up on the connection (statement timeout or deadline + 1 s), with margin.
  await until('the write held past every client-side deadline', async () => (relay.heldFor() ?? 0) > 2_500);
  await options.whileHeld?.();
  // Filled again after the store gave up on the write (a fence that came too early is undone here).
  await until('the old value served from the cache before the held bytes are delivered', servedOld);
  if (options.endedBeforeDelivery === true) {
    await until('the held connection ended on the server before the network delivered its bytes', async () => relay.heldUpstreamClosed());
  }
  relay.resume();
  // The server has done all it will ever do with the held bytes once their session is closed.
  await until('the held session closed on the server side', async () => relay.heldUpstreamClosed());
  await until('reads answer what the store holds', async () => (await engine.read('a'))?.body === (await options.stored()), 10_000);
  assert.equal((await engine.readEntry('a')).value?.body, await options.stored(), 'and keep answering it');
}
