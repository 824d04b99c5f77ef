// The embedded defaults held to the linearizability checker: the real, unwrapped stack
// (createSqliteStore on a temp file + createMemoryCache + createWriteThrough), where a cold read runs
// get → store read → fenced fill inside read() (src/engine/read-path.ts, loadAndFill → fillAtOnce)
// and a hit may come from the memory cache's value slot. The chaos harness and the engine fixture
// wrap the store and the cache in asynchronous wrappers, so they almost never take that path.
//
// Two engines, each with its own memory cache and its own store connection (two processes), over one
// SQLite file, restarted together a few times (fresh caches: the journal's start and the first,
// asynchronous fills run again). Each engine serves its own keys: a memory cache is private to its
// process, and two of them on one file do not see each other's writes until their TTL
// (docs/operations.md, "Many instances"), so a key is read and written through one engine only.
// Concurrent clients do read, readEntry, write, delete and conditional writes and deletes; a plain-SQL
// client UPDATEs, INSERTs and DELETEs rows of both engines' keys through a second better-sqlite3
// connection (the triggers version and journal it; the engines' drainers apply it). A plain-SQL write
// counts as returned once both engines' drainers have applied it (drainJournal, twice, resolved), and
// reads that overlap it are left out, as the chaos harness does for its journal window
// (src/audit/chaos/check.ts). Everything else is checked by the project's checkers: checkVersions
// (fast) and checkLinearizable (Wing–Gong–Lowe), per key; then every key must be in A, B or C.
//
// The synchronous path must really run: a spy on each store's read (and on the cache's fill) counts
// the reads whose store read and fill happened inside the read()/readEntry() call itself.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { BYPASS_PROCESS } from '../../src/audit/chaos/bypass.js';
import { checkHistory } from '../../src/audit/chaos/check.js';
import { historyNow, type HistoryEntry } from '../../src/audit/history.js';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { PreconditionFailedError } from '../../src/errors.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import type { CacheAdapter } from '../../src/types.js';

const NAMESPACE = 'sync';
const ENGINES = 2;
const KEYS_PER_ENGINE = 3;
const CLIENTS_PER_ENGINE = 5;
/** Epochs: each opens new engines and store connections; even ones fresh memory caches (a process restart), odd ones the caches of the epoch before (an instance re-created in the same process). */
const EPOCHS = 8;
/** A write's chance of a 1 h TTL instead of 2 ms: such values outlive an epoch in a reused cache. */
const LONG_TTL_SHARE = 0.25;
const OPS_PER_CLIENT = Number(process.env.SYNC_LIN_OPS ?? 250); // per epoch
/** The schedule's seed (what is attempted, not the timing): SYNC_LIN_SEED replays another. */
const SEED = Number(process.env.SYNC_LIN_SEED ?? 20261206);
/** A plain-SQL write after about this many client operations (over all clients). */
const BYPASS_EVERY = 12;

/** A small deterministic generator (as in random-interleavings.test.ts). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const keysOf = (engine: number): string[] => Array.from({ length: KEYS_PER_ENGINE }, (_, i) => `e${engine}k${i}`);

interface Counts {
  reads: number;
  /** Reads whose store read ran inside the read()/readEntry() call: the synchronous cold read. */
  syncStoreReads: number;
  /** Fills that ran inside the read()/readEntry() call. */
  syncFills: number;
  /** Store reads outside any call (bypass reads, fills that waited for the journal's position). */
  otherStoreReads: number;
  writes: number;
  deletes: number;
  conditional: number;
  preconditionFailed: number;
  /** Operations that failed for any other reason (outcome unknown for writes, dropped for reads). */
  errors: string[];
  bypass: number;
  /** readEntry's answers by source (hit, miss, bypass, …). */
  sources: Record<string, number>;
  /** Plain-SQL commit → applied by both drainers, ms. */
  drainLagMs: number[];
}

it('the synchronous cold read on SQLite + memory: linearizable per key, with concurrent writers, plain-SQL writes, two engines and restarts', { timeout: 240_000 }, async (t) => {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-sync-lin-'));
  const dbPath = join(dir, 'store.db');
  const history: HistoryEntry[] = [];
  const counts: Counts = {
    reads: 0,
    syncStoreReads: 0,
    syncFills: 0,
    otherStoreReads: 0,
    writes: 0,
    deletes: 0,
    conditional: 0,
    preconditionFailed: 0,
    errors: [],
    bypass: 0,
    sources: {},
    drainLagMs: [],
  };
  // Which call (if any) is running synchronously right now, and what it did inside.
  let inCall = false;
  let serial = 0;
  const raw = new Database(dbPath, { timeout: 2_000 });
  let lastEngines: Array<WriteThrough<string>> = [];
  const stores: SqliteStore[] = [];
  try {
    // The schema: the first store creates it; the raw connection opens the same WAL file.
    await createSqliteStore({ path: dbPath }).close();
    raw.pragma('journal_mode = WAL');
    const update = raw.prepare('UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?');
    const insert = raw.prepare('INSERT INTO lockstep_kv (value, namespace, key) VALUES (?, ?, ?)');
    const remove = raw.prepare('DELETE FROM lockstep_kv WHERE namespace = ? AND key = ?');
    const rowVersion = raw.prepare('SELECT version FROM lockstep_kv WHERE namespace = ? AND key = ?').pluck();
    const tombVersion = raw.prepare('SELECT version FROM lockstep_tombstones WHERE namespace = ? AND key = ?').pluck();
    /** One plain-SQL statement in its own transaction; what it committed, as a history entry without its return. */
    const bypassWrite = raw.transaction((key: string, roll: number): Omit<HistoryEntry, 'returnedAt'> => {
      const invokedAt = historyNow();
      // DELETE a live row a quarter of the time; otherwise UPDATE it, or INSERT it when it is absent.
      if (roll < 0.25 && rowVersion.get(NAMESPACE, key) !== undefined) {
        remove.run(NAMESPACE, key);
        return { process: BYPASS_PROCESS, key, kind: 'delete', invokedAt, outcome: 'ok', version: tombVersion.get(NAMESPACE, key) as number };
      }
      const value = `${BYPASS_PROCESS}-${++serial}`;
      const payload = JSON.stringify(value); // the engine's codec is JSON
      if (update.run(payload, NAMESPACE, key).changes === 0) insert.run(payload, NAMESPACE, key);
      return { process: BYPASS_PROCESS, key, kind: 'write', invokedAt, outcome: 'ok', value, version: rowVersion.get(NAMESPACE, key) as number };
    });

    const rnd = random(SEED);
    let caches: CacheAdapter[] = [];
    /** Plain-SQL writes committed while no engine ran: they return once the next engines' drainers applied them. */
    let downtime: Array<Omit<HistoryEntry, 'returnedAt'>> = [];
    for (let epoch = 0; epoch < EPOCHS; epoch++) {
      const reuse = epoch % 2 === 1;
      if (!reuse) caches = [];
      const engines: Array<WriteThrough<string>> = [];
      for (let e = 0; e < ENGINES; e++) {
        const store = createSqliteStore({ path: dbPath });
        stores.push(store);
        const read = store.read.bind(store);
        store.read = (namespace, key) => {
          if (inCall) counts.syncStoreReads++;
          else counts.otherStoreReads++;
          return read(namespace, key);
        };
        // Two entries for three keys, values that live 2 ms (a quarter of the writes: 1 h): reads keep
        // missing and filling, and some values outlive an epoch in a reused cache.
        let cache = caches[e];
        if (cache === undefined) {
          const fresh = createMemoryCache({ maxEntries: 2 });
          const fill = fresh.fill.bind(fresh);
          fresh.fill = (key, token, entry, ttlMs) => {
            if (inCall) counts.syncFills++;
            return fill(key, token, entry, ttlMs);
          };
          caches[e] = cache = fresh;
        }
        engines.push(createWriteThrough<string>({ store, cache, namespace: NAMESPACE, ttl: '2ms', journal: { pollInterval: '5ms' }, metrics: false }));
      }
      lastEngines = engines;
      // The writes made while no engine ran: returned once every new drainer applied them.
      if (downtime.length > 0) {
        for (const engine of engines) {
          await engine.drainJournal();
          await engine.drainJournal();
        }
        const returnedAt = historyNow();
        for (const entry of downtime) history.push({ ...entry, returnedAt });
        counts.bypass += downtime.length;
        downtime = [];
      }

      let done = 0;
      let clientsLeft = ENGINES * CLIENTS_PER_ENGINE;
      let wake: (() => void) | undefined;
      const progressed = (): void => {
        done++;
        wake?.();
      };
      const client = async (e: number, c: number): Promise<void> => {
        const engine = engines[e]!;
        const keys = keysOf(e);
        const name = `p${e}.${c}`;
        /** The version this client last read per key, for its conditional writes (0: not found). */
        const seen = new Map<string, number>();
        for (let i = 0; i < OPS_PER_CLIENT; i++) {
          // Interleave with the other clients, the drainers' timers and the plain-SQL client.
          if (rnd() < 0.3) await new Promise((resolve) => setImmediate(resolve));
          const key = keys[Math.floor(rnd() * keys.length)]!;
          const roll = rnd();
          const invokedAt = historyNow();
          inCall = true;
          let pending: Promise<unknown>;
          let kind: 'read' | 'entry' | 'write' | 'delete' | 'cas-write' | 'cas-delete';
          const value = `${name}-${++serial}`;
          try {
            if (roll < 0.25) {
              kind = 'read';
              pending = engine.read(key);
            } else if (roll < 0.5) {
              kind = 'entry';
              pending = engine.readEntry(key);
            } else if (roll < 0.72) {
              kind = 'write';
              pending = engine.write(key, value, rnd() < LONG_TTL_SHARE ? { ttl: '1h' } : undefined);
            } else if (roll < 0.8) {
              kind = 'delete';
              pending = engine.delete(key);
            } else if (roll < 0.94) {
              kind = 'cas-write';
              const version = seen.get(key) ?? 0;
              pending = engine.write(key, value, version === 0 ? { ifAbsent: true } : { ifVersion: version });
            } else {
              kind = 'cas-delete';
              const version = seen.get(key) ?? 0;
              pending = engine.delete(key, version === 0 ? { ifExists: true } : { ifVersion: version });
            }
          } finally {
            inCall = false;
          }
          try {
            const answer = await pending;
            const returnedAt = historyNow();
            if (kind === 'read' || kind === 'entry') {
              counts.reads++;
              const entry = kind === 'entry' ? (answer as { found: boolean; value: string | undefined; version: number; source: string }) : undefined;
              if (entry !== undefined) counts.sources[entry.source] = (counts.sources[entry.source] ?? 0) + 1;
              const got = kind === 'entry' ? entry!.value : (answer as string | undefined);
              if (entry !== undefined) seen.set(key, entry.found ? entry.version : 0);
              history.push({ process: name, key, kind: 'read', invokedAt, returnedAt, outcome: 'ok', value: got, version: entry?.version });
            } else {
              const { version } = answer as { version: number };
              if (kind === 'write' || kind === 'cas-write') counts.writes++;
              else counts.deletes++;
              if (kind.startsWith('cas')) counts.conditional++;
              const isWrite = kind === 'write' || kind === 'cas-write';
              seen.set(key, isWrite ? version : 0);
              history.push({ process: name, key, kind: isWrite ? 'write' : 'delete', invokedAt, returnedAt, outcome: 'ok', version, ...(isWrite ? { value } : {}) });
            }
          } catch (error) {
            const returnedAt = historyNow();
            const clean = error instanceof PreconditionFailedError;
            if (clean) {
              counts.preconditionFailed++;
              seen.set(key, error.currentVersion);
            } else counts.errors.push(`${name} ${kind} ${key}: ${(error as Error).message}`);
            if (kind !== 'read' && kind !== 'entry') {
              const isWrite = kind === 'write' || kind === 'cas-write';
              history.push({ process: name, key, kind: isWrite ? 'write' : 'delete', invokedAt, returnedAt, outcome: clean ? 'fail' : 'unknown', ...(isWrite ? { value } : {}) });
            }
          }
          progressed();
        }
        clientsLeft--;
        wake?.();
      };
      /** Plain-SQL writes while the clients run, each on a key of either engine, paced by the clients' progress. */
      const bypassClient = async (): Promise<void> => {
        for (let next = BYPASS_EVERY; ; next += BYPASS_EVERY) {
          while (done < next && clientsLeft > 0) await new Promise<void>((resolve) => (wake = resolve));
          if (clientsLeft === 0) return;
          const key = keysOf(Math.floor(rnd() * ENGINES))[Math.floor(rnd() * KEYS_PER_ENGINE)]!;
          const entry = bypassWrite.immediate(key, rnd());
          const committedAt = performance.now();
          // Applied by every engine's drainer: a pass that began after the commit has ended (the first
          // drain may join a pass that read the journal before it).
          for (const engine of engines) {
            await engine.drainJournal();
            await engine.drainJournal();
          }
          counts.drainLagMs.push(performance.now() - committedAt);
          history.push({ ...entry, returnedAt: historyNow() });
          counts.bypass++;
        }
      };
      const clients: Array<Promise<void>> = [];
      for (let e = 0; e < ENGINES; e++) for (let c = 0; c < CLIENTS_PER_ENGINE; c++) clients.push(client(e, c));
      await Promise.all([...clients, bypassClient()]);

      if (epoch < EPOCHS - 1) {
        for (const engine of engines) await engine.close();
        for (const store of stores.splice(0)) await store.close();
        // Every key gets a plain-SQL write while no engine runs (as a migration between deploys would).
        for (let e = 0; e < ENGINES; e++) for (const key of keysOf(e)) downtime.push(bypassWrite.immediate(key, rnd()));
      }
    }

    // Every key converges: nothing in flight, the journal applied, each key in A, B or C on its engine
    // (asserted after the checkers' verdict, which says more when something is wrong).
    for (const engine of lastEngines) await engine.drainJournal();
    const states: string[] = [];
    for (let e = 0; e < ENGINES; e++) for (const key of keysOf(e)) states.push(`${key}: ${(await lastEngines[e]!.inspect(key)).state}`);

    const runMs = performance.now() - started;
    const result = checkHistory(history, { journalWindowNs: 0, linearizabilityDeadlineMs: 30_000, linearizabilityMaxOps: 50_000 });
    const lag = [...counts.drainLagMs].sort((a, b) => a - b);
    const share = counts.syncStoreReads / Math.max(1, counts.reads);
    t.diagnostic(
      `seed ${SEED}: ${history.length} operations in ${Math.round(runMs)} ms: ${counts.reads} reads (${counts.syncStoreReads} synchronous cold reads, ` +
        `${(share * 100).toFixed(1)} %; ${counts.syncFills} fills inside the call; ${counts.otherStoreReads} other store reads; readEntry by source ${JSON.stringify(counts.sources)}), ` +
        `${counts.writes} writes, ${counts.deletes} deletes (${counts.conditional} conditional acknowledged, ${counts.preconditionFailed} refused), ` +
        `${counts.bypass} plain-SQL writes (drained by both engines in p50 ${lag[lag.length >> 1]?.toFixed(1)} ms, max ${lag.at(-1)?.toFixed(1)} ms), ` +
        `${result.excludedReads} reads left out (overlapping a plain-SQL write), ${counts.errors.length} errors`,
    );
    t.diagnostic(`checks: fast ${result.fast.length} violations in ${result.fastMs} ms; linearizability ${result.linearizability.result} over ${result.linearizability.checkedOps} operations in ${result.linearizability.ms} ms`);

    // The verdict.
    const excerpt = (e: HistoryEntry) =>
      `[${(e.invokedAt / 1e6).toFixed(3)} .. ${(e.returnedAt / 1e6).toFixed(3)}] ${e.process} ${e.key} ${e.kind} ${e.value === undefined ? '∅' : JSON.stringify(e.value)} v${e.version ?? '?'} (${e.outcome})`;
    assert.deepEqual(
      result.fast.slice(0, 3).map((v) => `${v.key}: ${v.reason}: ${excerpt(v.read)}`),
      [],
      `${result.fast.length} reads older than an acknowledged write`,
    );
    const counterexample = result.linearizability.counterexample;
    assert.equal(
      result.linearizability.result,
      'ok',
      counterexample === undefined
        ? `linearizability: ${result.linearizability.result} (keys out of time: ${result.linearizability.unknownKeys.join(', ')})`
        : `key ${counterexample.key}: ${counterexample.reason}\n  after: ${counterexample.lastLinearized.map(excerpt).join('\n         ')}\n  failed: ${excerpt(counterexample.failed)}`,
    );

    // The run must have exercised what it claims to.
    assert.deepEqual(counts.errors.slice(0, 5), [], `${counts.errors.length} operations failed`);
    assert.ok(counts.reads >= 0.4 * ENGINES * CLIENTS_PER_ENGINE * OPS_PER_CLIENT * EPOCHS, `${counts.reads} reads`);
    assert.ok(share >= 0.2, `only ${counts.syncStoreReads} of ${counts.reads} reads settled synchronously (store read inside the call)`);
    assert.ok(counts.syncStoreReads >= 0.9 * (counts.syncStoreReads + counts.otherStoreReads), `${counts.otherStoreReads} store reads outside the call for ${counts.syncStoreReads} inside it`);
    assert.ok(counts.syncFills >= counts.syncStoreReads * 0.9, `${counts.syncFills} synchronous fills for ${counts.syncStoreReads} synchronous store reads`);
    assert.ok(counts.bypass >= 20, `${counts.bypass} plain-SQL writes`);
    assert.ok(counts.conditional >= 50 && counts.preconditionFailed >= 10, `${counts.conditional} conditional writes acknowledged, ${counts.preconditionFailed} refused`);
    assert.deepEqual(states.filter((state) => !/: [ABC]$/.test(state)), [], 'every key ends in A, B or C');
  } finally {
    await Promise.allSettled(lastEngines.map((engine) => engine.close()));
    for (const store of stores) await store.close();
    raw.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
