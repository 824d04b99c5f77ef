// LISTEN/NOTIFY for the journal: one dedicated connection per store, reconnecting with backoff,
// calling `deliver` when journal rows may have been appended (the drainer's poll stays the fallback).
import type { PostgresClient, PostgresPool } from './postgres-client.js';
import { JOURNAL_CHANNEL } from './postgres-schema.js';

const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 5_000;

export function createListener(pool: PostgresPool, schema: string, deliver: () => void) {
  let running = false;
  /** Ends the current connection (once), if there is one. */
  let dropCurrent: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let delayMs = RECONNECT_MIN_MS;

  function retry(): void {
    if (!running || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, delayMs);
    timer.unref();
    delayMs = Math.min(delayMs * 2, RECONNECT_MAX_MS);
  }

  async function connect(): Promise<void> {
    if (!running) return;
    let client: PostgresClient;
    try {
      client = await pool.connect();
    } catch {
      return retry();
    }
    let released = false;
    // Destroyed, never returned: the pool must not hand out a connection that still LISTENs.
    const drop = () => {
      if (released) return;
      released = true;
      if (dropCurrent === drop) dropCurrent = undefined;
      client.release(true);
      retry();
    };
    if (!running) return drop();
    dropCurrent = drop;
    client.on('error', drop);
    client.on('end', drop);
    client.on('notification', (message) => {
      // One channel for every schema: the payload names the schema whose journal grew.
      if (message.channel === JOURNAL_CHANNEL && message.payload === schema) deliver();
    });
    try {
      await client.query({ text: `LISTEN ${JOURNAL_CHANNEL}` });
    } catch {
      return drop();
    }
    if (released || !running) return;
    delayMs = RECONNECT_MIN_MS;
    // Rows may have been appended while no connection listened.
    deliver();
  }

  return {
    start(): void {
      if (running) return;
      running = true;
      void connect();
    },
    stop(): void {
      running = false;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      dropCurrent?.();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The store
