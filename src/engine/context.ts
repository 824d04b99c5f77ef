// What the read and write paths share: the resolved options, adapters, counters and event bus of
// one engine. Built once by createWriteThrough.
import type { EventEmitter } from 'node:events';
import type { ResolvedOptions } from '../options.js';
import type { CacheAdapter, StoreAdapter } from '../types.js';
import type { EntryCodec } from './entries.js';
import type { EngineCounters } from './events.js';
import type { FailureRateMonitor } from './failure-rate.js';
import type { FillWaitMemory } from './fill-wait-memory.js';

export interface EngineContext {
  readonly options: ResolvedOptions;
  readonly namespace: string;
  readonly store: StoreAdapter;
  readonly cache: CacheAdapter;
  readonly entries: EntryCodec;
  /** Replaced at most once, by the wiring's onFirstWrite. */
  counters: EngineCounters;
  readonly events: EventEmitter;
  readonly monitor: FailureRateMonitor;
  readonly nextWriterToken: () => string;
  /** Resolves once a journal row written now is sure to be replayed: writes and fills wait for it. */
  readonly journalReady: Promise<void>;
  /** Set once journalReady has resolved: a fill then has no wait to race (it never goes back). */
  journalPositionKnown: boolean;
  /** True while the drainer replays the journal retained at its start: cached values may be older than a row not applied yet. */
  readonly journalReplaying: () => boolean;
  /** Single-flight: the in-process store read + fill of a key whose fill lease this process holds. */
  readonly flights: Map<string, Promise<unknown>>;
  /** Keys whose wait for another instance's fill timed out lately (fill-wait.ts). */
  readonly fillWaitMemory: FillWaitMemory;
  /** Cache completions sent after their write was acknowledged (acknowledge: 'after-commit'): close() waits for them. */
  readonly completionsAfterAck: Set<Promise<unknown>>;
}
