// The parent's process-level faults during one seed, fired when the operation count (over all
// workers) reaches the seeded points of its schedule: kill -9 of a worker right after it announces
// a write, a worker frozen (SIGSTOP) for longer than a lease, plain-SQL writes of hot keys through
// the parent's own connection, and kill -9 and restart of the Redis the harness owns. Counted by kind, and logged as events for saved histories.
import { historyNow, type HistoryEntry } from '../history.js';
import { BYPASS_PROCESS, type BypassWriter } from './bypass.js';
import type { ParentSchedule } from './plan.js';
import { pick, randomStream } from './random.js';
import type { OwnedRedis } from './redis-owned.js';

export class FaultCounts {
  readonly counts: Record<string, number> = {};
  readonly events: Array<{ at: number; event: string }> = [];

  bump(kind: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
  }

  /** A moment worth seeing in a saved history. */
  event(what: string): void {
    this.events.push({ at: historyNow(), event: what });
  }
}

export interface ParentFaultsOptions {
  readonly seed: number;
  readonly schedule: ParentSchedule;
  readonly namespace: string;
  readonly keys: readonly string[];
  readonly bypass: BypassWriter | undefined;
  readonly redis: OwnedRedis | undefined;
  readonly counts: FaultCounts;
  /** Worker slots (0 … processes - 1). */
  readonly processes: number;
  /** Freezes the current worker of a slot for `ms`. */
  readonly freeze: (slot: number, ms: number) => Promise<void>;
}

export class ParentFaults {
  /** The plain-SQL writes that committed: history entries of their own. */
  readonly sqlEntries: HistoryEntry[] = [];
  private invoked = 0;
  private readonly kills: Array<{ at: number; slot: number }>;
  private readonly pauses: Array<{ at: number; slot: number; ms: number }>;
  private readonly bypassAt: number[];
  private readonly restartAt: number[];
  private readonly armed = new Set<number>();
  private readonly finished = new Set<number>();
  private readonly slots: readonly number[];
  private readonly background: Array<Promise<unknown>> = [];
  private readonly rnd;
  private bypassBusy = false;
  private restartBusy = false;
  private bypassSerial = 0;

  constructor(private readonly options: ParentFaultsOptions) {
    this.kills = [...options.schedule.kills];
    this.pauses = [...options.schedule.pauses];
    this.bypassAt = [...options.schedule.bypassWrites];
    this.restartAt = [...options.schedule.redisRestarts];
    this.rnd = randomStream('bypass', options.seed);
    this.slots = Array.from({ length: options.processes }, (_, slot) => slot);
  }

  /** One more operation announced by any worker. */
  onInvoke(): void {
    this.invoked++;
    const { counts } = this.options;
    while (this.kills.length > 0 && this.kills[0]!.at <= this.invoked) {
      const { slot } = this.kills.shift()!;
      this.armed.add(slot);
      if (this.finished.has(slot)) this.slotFinished(slot);
    }
    while (this.pauses.length > 0 && this.pauses[0]!.at <= this.invoked) {
      const { slot, ms } = this.pauses.shift()!;
      counts.bump('pause');
      counts.event(`SIGSTOP p${slot} for ${ms} ms`);
      this.background.push(this.options.freeze(slot, ms).then(() => counts.event(`SIGCONT p${slot}`)));
    }
    while (this.bypassAt.length > 0 && this.bypassAt[0]! <= this.invoked) {
      this.bypassAt.shift();
      const writer = this.options.bypass;
      if (writer === undefined || this.bypassBusy) continue;
      this.bypassBusy = true;
      const key = pick(this.rnd, this.options.keys);
      const value = `${BYPASS_PROCESS}-${++this.bypassSerial}`;
      this.background.push(
        writer
          .write(this.options.namespace, key, value)
          .then((entry) => {
            if (entry === undefined) {
              counts.bump('sql-write-failed');
              // Rolled back (its statement timeout is below the lease TTL, so on a loaded machine a
              // row lock or a slow database can fail every scheduled one): the point stays due and
              // the write is tried again at the next operation, so that a seed always has one.
              this.bypassAt.unshift(this.invoked);
            } else {
              this.sqlEntries.push(entry);
              counts.bump('sql-write');
            }
          })
          .finally(() => (this.bypassBusy = false)),
      );
    }
    while (this.restartAt.length > 0 && this.restartAt[0]! <= this.invoked) {
      this.restartAt.shift();
      const redis = this.options.redis;
      if (redis === undefined || this.restartBusy) continue;
      this.restartBusy = true;
      counts.bump('redis-restart');
      counts.event('redis-restart: kill -9');
      this.background.push(
        redis
          .restart()
          .then(() => counts.event('redis-restart: answering again'))
          .finally(() => (this.restartBusy = false)),
      );
    }
  }

  /**
   * The worker of `slot` has done all its operations. A kill armed for it moves to a slot still
   * running: on a loaded machine one slot can finish its share before the operation count reaches
   * the kill point, and the seed would run without its kill.
   */
  slotFinished(slot: number): void {
    this.finished.add(slot);
    if (!this.armed.delete(slot)) return;
    const running = this.slots.find((other) => !this.finished.has(other));
    if (running !== undefined) this.armed.add(running);
  }

  /** Whether to kill the worker of `slot` now: a kill is due and it has just announced a write or delete. */
  killNow(slot: number, announcedMutation: boolean): boolean {
    if (!announcedMutation || !this.armed.delete(slot)) return false;
    this.options.counts.bump('kill-9');
    return true;
  }

  /** Waits for the plain-SQL write or Redis restart still under way. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.background);
  }
}
