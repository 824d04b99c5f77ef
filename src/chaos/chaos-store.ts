// A StoreAdapter that delegates to a real one, with faults injected per operation.
import type {
  JournalEntry,
  JournalReason,
  StoreAdapter,
  StoreDeleteResult,
  StoredValue,
  StoreScanRow,
  StoreWriteOptions,
  StoreWriteResult,
  Version,
} from '../types.js';
import { FaultPlan } from './faults.js';

export type StoreOperation = 'read' | 'write' | 'delete' | 'appendJournal' | 'readJournal' | 'journalHead' | 'ping';

export class ChaosStore implements StoreAdapter {
  readonly name: string;
  readonly faults = new FaultPlan<StoreOperation>();

  /** Whether journal pushes (PostgreSQL's NOTIFY) are passed on; off when a test drains by hand. */
  pushJournal = true;

  /**
   * Answered by incarnation() instead of the inner store's: a failover of a store that cannot show
   * one itself (SQLite), or that a test cannot cause for real.
   */
  incarnationOverride: string | undefined;

  constructor(readonly inner: StoreAdapter) {
    this.name = `chaos(${inner.name})`;
  }

  read(namespace: string, key: string): Promise<StoredValue | undefined> {
    return this.faults.run('read', () => this.inner.read(namespace, key), key);
  }
  write(namespace: string, key: string, payload: string, options: StoreWriteOptions): Promise<StoreWriteResult> {
    return this.faults.run('write', () => this.inner.write(namespace, key, payload, options), key);
  }
  delete(namespace: string, key: string, options: StoreWriteOptions): Promise<StoreDeleteResult> {
    return this.faults.run('delete', () => this.inner.delete(namespace, key, options), key);
  }
  appendJournal(namespace: string, key: string, version: Version, reason: JournalReason): Promise<void> {
    return this.faults.run('appendJournal', () => this.inner.appendJournal(namespace, key, version, reason));
  }
  readJournal(afterId: number, limit: number): Promise<JournalEntry[]> {
    return this.faults.run('readJournal', () => this.inner.readJournal(afterId, limit));
  }
  journalHead(): Promise<number> {
    return this.faults.run('journalHead', () => this.inner.journalHead());
  }
  pruneJournal(beforeEpochMs: number, throughId?: number): Promise<number> {
    return this.inner.pruneJournal(beforeEpochMs, throughId);
  }
  scan(namespace: string, afterKey: string | undefined, limit: number): Promise<StoreScanRow[]> {
    return this.inner.scan(namespace, afterKey, limit);
  }
  ping(): Promise<void> {
    return this.faults.run('ping', () => this.inner.ping());
  }
  journalId(): Promise<string> {
    return this.inner.journalId();
  }
  async incarnation(): Promise<string | undefined> {
    return this.incarnationOverride ?? (await this.inner.incarnation?.());
  }
  onJournal(listener: () => void): () => void {
    if (!this.pushJournal) return () => undefined;
    return this.inner.onJournal?.(listener) ?? (() => undefined);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
