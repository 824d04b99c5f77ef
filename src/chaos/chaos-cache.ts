// A CacheAdapter that delegates to a real one, with faults injected per operation.
import type { CacheAdapter, CacheEntry, CacheGetResult, CacheRecordView, CompleteOutcome, CompleteWriteOptions, JournalCursor, LeaseToken, Version } from '../types.js';
import { FaultPlan } from './faults.js';

export type CacheOperation = 'get' | 'fill' | 'beginWrite' | 'completeWrite' | 'abortWrite' | 'invalidateOlder' | 'peek' | 'ping';

export class ChaosCache implements CacheAdapter {
  readonly name: string;
  readonly capabilities;
  readonly faults = new FaultPlan<CacheOperation>();

  constructor(readonly inner: CacheAdapter) {
    this.name = `chaos(${inner.name})`;
    this.capabilities = inner.capabilities;
    if (inner.isEmpty !== undefined) this.isEmpty = () => inner.isEmpty!();
  }

  get restartQuarantineMs(): number | undefined {
    return this.inner.restartQuarantineMs;
  }

  /** Only when the wrapped cache can tell (see CacheAdapter.isEmpty). */
  readonly isEmpty?: () => boolean;

  get(key: string, fillLeaseMs: number): Promise<CacheGetResult> {
    return this.faults.run('get', () => this.inner.get(key, fillLeaseMs), key);
  }
  fill(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number): Promise<boolean> {
    return this.faults.run('fill', () => this.inner.fill(key, token, entry, ttlMs));
  }
  beginWrite(key: string, token: LeaseToken, leaseMs: number): Promise<void> {
    return this.faults.run('beginWrite', () => this.inner.beginWrite(key, token, leaseMs));
  }
  completeWrite(key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number, options?: CompleteWriteOptions): Promise<CompleteOutcome> {
    return this.faults.run('completeWrite', () => this.inner.completeWrite(key, token, entry, ttlMs, options));
  }
  abortWrite(key: string, token: LeaseToken): Promise<void> {
    return this.faults.run('abortWrite', () => this.inner.abortWrite(key, token));
  }
  invalidateOlder(key: string, version: Version): Promise<void> {
    return this.faults.run('invalidateOlder', () => this.inner.invalidateOlder(key, version));
  }
  peek(key: string): Promise<CacheRecordView | undefined> {
    return this.faults.run('peek', () => this.inner.peek(key));
  }
  scan(prefix: string): AsyncIterable<CacheRecordView> {
    return this.inner.scan(prefix);
  }
  ping(): Promise<void> {
    return this.faults.run('ping', () => this.inner.ping());
  }
  stats() {
    return this.inner.stats();
  }
  loadJournalCursor(journalId: string) {
    return this.inner.loadJournalCursor(journalId);
  }
  saveJournalCursor(journalId: string, cursor: JournalCursor, replace?: boolean) {
    return this.inner.saveJournalCursor(journalId, cursor, replace);
  }
  close() {
    return this.inner.close();
  }
}
