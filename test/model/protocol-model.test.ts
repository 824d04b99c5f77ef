// Runs docs/model.mjs (the exhaustive interleaving check of docs/protocol.md) at small bounds: the
// protocol as written has no counterexample, and the old drainer start rule (issue 10: no cursor →
// start at the journal's head) has one, so the model keeps its teeth for the journal invariant.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const MODEL = fileURLToPath(new URL('../../docs/model.mjs', import.meta.url));

// The deadline is a backstop only: an exhaustive check that takes ~12 s on a quiet machine took 100 s
// beside a loaded suite (load average 17 on 2 cores).
function runModel(args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MODEL, ...args], { timeout: 900_000 }, (error, stdout) => {
      if (error !== null && typeof error.code !== 'number') reject(error);
      else resolve({ code: error === null ? 0 : (error.code as number), out: stdout });
    });
  });
}

describe('docs/model.mjs', () => {
  it('finds no stale read and no inconsistent end state with a drainer restart during a cache outage (1 writer, 2 readers)', async () => {
    const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--restarts', '1']);
    const summary = JSON.parse(out.split('\n')[0]!) as { staleReads: number; inconsistentFinals: number; states: number };
    assert.equal(code, 0, out);
    assert.deepEqual([summary.staleReads, summary.inconsistentFinals], [0, 0]);
    assert.ok(summary.states > 10_000, 'the search explored the interleavings');
  });

  it('acknowledging at a confirmed commit while the lease is live, completing the cache after it (issue 13): no stale read, no inconsistent end state', async () => {
    const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--early-ack']);
    const summary = JSON.parse(out.split('\n')[0]!) as { ack: string; staleReads: number; inconsistentFinals: number; states: number };
    assert.equal(code, 0, out);
    assert.equal(summary.ack, 'early, with a live lease');
    assert.deepEqual([summary.staleReads, summary.inconsistentFinals], [0, 0]);
    assert.ok(summary.states > 10_000, 'the search explored the interleavings');
  });

  it('the early acknowledgement needs its lease check: without it, a commit that lands after the lease expired is acknowledged before a stale fill is fenced', async () => {
    const checked = await runModel(['--writers', '1', '--readers', '2', '--early-ack', '--late-commits']);
    assert.equal(JSON.parse(checked.out.split('\n')[0]!).staleReads, 0, checked.out);
    const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--early-ack-unchecked', '--late-commits']);
    assert.equal(code, 1, out);
    assert.ok(JSON.parse(out.split('\n')[0]!).staleReads > 0, out);
    assert.match(out, /ack v1 \(lease may be gone\)/);
    assert.match(out, /stale read: r\d returned v0, v1 was acknowledged before it began/);
  });

  it('a write the network holds back, settled by the store and then fenced (StoreOutcomeUnknownError.settled): no stale read, no inconsistent end state; never settled, an older fill stays', async () => {
    const settled = await runModel(['--writers', '1', '--readers', '2', '--held-writes']);
    const summary = JSON.parse(settled.out.split('\n')[0]!) as { heldWrites: string; staleReads: number; inconsistentFinals: number; states: number };
    assert.equal(settled.code, 0, settled.out);
    assert.equal(summary.heldWrites, 'settled, then fenced');
    assert.deepEqual([summary.staleReads, summary.inconsistentFinals], [0, 0]);
    assert.ok(summary.states > 10_000, 'the search explored the interleavings');
    const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--no-settle']);
    assert.equal(code, 1, out);
    assert.ok(JSON.parse(out.split('\n')[0]!).inconsistentFinals > 0, out);
    assert.match(out, /r\d fill ok, returns v0\n(\s+.*\n)*?\s+w0's held write lands v1 \(no confirmation\)/);
    assert.match(out, /final: cache v0 != store v1/);
  });

  it('the lease must land before the commit: sent together with the store write (one round trip less), a writer that dies after its commit leaves an older fill cached', async () => {
    const { code, out } = await runModel(['--writers', '1', '--readers', '1', '--lease-with-store']);
    assert.equal(code, 1, out);
    assert.ok(JSON.parse(out.split('\n')[0]!).inconsistentFinals > 0, out);
    assert.match(out, /r\d store read v0\n\s+w0 store write ok v1 \(its lease, sent with it, has not landed\)\n\s+w0 crash at leaseLate\n\s+r\d fill ok, returns v0/);
    assert.match(out, /final: cache v0 != store v1/);
  });

  it('prints the issue 10 counterexample for a drainer that starts at the head when no cursor was saved', async () => {
    const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--restarts', '1', '--start-at-head']);
    assert.equal(code, 1, out);
    assert.match(out, /drainer restarts at row 1 \(saved cursor none, head 1\)/);
    assert.match(out, /stale read: r\d returned v0, v1 was acknowledged before it began/);
  });

  it('a cache restarted from a snapshot, flushed before use (the Redis dataset guard): no counterexample; trusted: one', async () => {
    const common = ['--writers', '1', '--readers', '1', '--restarts', '0', '--rollbacks', '1'];
    const guarded = await runModel(common);
    const summary = JSON.parse(guarded.out.split('\n')[0]!) as { staleReads: number; inconsistentFinals: number; states: number };
    assert.equal(guarded.code, 0, guarded.out);
    assert.deepEqual([summary.staleReads, summary.inconsistentFinals], [0, 0]);
    assert.ok(summary.states > 5_000, 'the search explored the interleavings');
    const trusted = await runModel([...common, '--trust-rollback']);
    assert.equal(trusted.code, 1, trusted.out);
    assert.match(trusted.out, /cache restarts from its snapshot \(v0\), trusted\n\s+final: cache v0 != store v1/);
  });

  it('a cache that loses a write lease mid-write (a restart without persistence): no counterexample with the quarantine, the writer-crash one without', async () => {
    const common = ['--writers', '1', '--readers', '1', '--restarts', '0', '--cache-losses', '1'];
    const quarantined = await runModel(common);
    const summary = JSON.parse(quarantined.out.split('\n')[0]!) as { staleReads: number; inconsistentFinals: number; states: number; quarantine: boolean };
    assert.equal(quarantined.code, 0, quarantined.out);
    assert.deepEqual([summary.quarantine, summary.staleReads, summary.inconsistentFinals], [true, 0, 0]);
    assert.ok(summary.states > 2_000, 'the search explored the interleavings');
    const open = await runModel([...common, '--no-quarantine']);
    assert.equal(open.code, 1, open.out);
    assert.match(open.out, /w0 beginWrite ok\n\s+cache loses everything[^\n]*\n\s+r0 get miss token\n\s+r0 store read v0\n\s+w0 store write ok v1\n\s+w0 crash at complete/);
  });

  it('a Redis Cluster (record and cursor in different slots, each rolled back or lost on its own): the per-slot guard leaves no counterexample; trusted or unquarantined: one', async () => {
    for (const event of [['--rollbacks', '1'], ['--cache-losses', '1']]) {
      const common = ['--writers', '1', '--readers', '1', '--restarts', '1', '--cluster', ...event];
      const guarded = await runModel(common);
      const summary = JSON.parse(guarded.out.split('\n')[0]!) as { staleReads: number; inconsistentFinals: number; states: number; cluster: boolean };
      assert.equal(guarded.code, 0, guarded.out);
      assert.deepEqual([summary.cluster, summary.staleReads, summary.inconsistentFinals], [true, 0, 0]);
      assert.ok(summary.states > 2_000, 'the search explored the interleavings');
    }
    const trusted = await runModel(['--writers', '1', '--readers', '1', '--restarts', '1', '--cluster', '--rollbacks', '1', '--trust-rollback']);
    assert.equal(trusted.code, 1, trusted.out);
    assert.match(trusted.out, /the record's slot restarts from its snapshot \(v0\), trusted/);
    const open = await runModel(['--writers', '1', '--readers', '1', '--restarts', '1', '--cluster', '--cache-losses', '1', '--no-quarantine']);
    assert.equal(open.code, 1, open.out);
    assert.match(open.out, /w0 beginWrite ok\n\s+the record's slot loses everything\n/);
  });

  it('a fill waiter and an early acknowledgement under a cache loss: the quarantine covers both (2 readers)', async () => {
    // Found when the three model extensions were merged: a waiter's poll ignored the quarantine.
    for (const extra of [[], ['--early-ack']]) {
      const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--restarts', '0', '--cache-losses', '1', ...extra]);
      const summary = JSON.parse(out.split('\n')[0]!) as { staleReads: number; inconsistentFinals: number; quarantine: boolean };
      assert.equal(code, 0, out);
      assert.deepEqual([summary.quarantine, summary.staleReads, summary.inconsistentFinals], [true, 0, 0]);
    }
  });

  it("a store that fails over to an asynchronous replica or is restored from a backup (versions and journal ids handed out again): the cursor's incarnation and row stamp flush the cache, no counterexample; without the incarnation only a journal gone back past the cursor is seen; the old rule keeps a lost write's value cached", async () => {
    // Two writers, no reader: a run with one reader takes minutes; docs/protocol.md quotes it.
    const common = ['--writers', '2', '--readers', '0', '--restarts', '1', '--store-failovers', '1'];
    type Summary = { staleReads: number; inconsistentFinals: number; states: number; storeFailovers: number; reusedIds: string; failoversAt: string };
    const summaryOf = (out: string) => JSON.parse(out.split('\n')[0]!) as Summary;
    // The store tells its incarnation (PostgreSQL, MariaDB): a failover at any step is seen.
    const told = await runModel(common);
    assert.equal(told.code, 0, told.out);
    const s1 = summaryOf(told.out);
    assert.deepEqual([s1.storeFailovers, s1.failoversAt, s1.staleReads, s1.inconsistentFinals], [1, 'any step', 0, 0]);
    assert.match(s1.reusedIds, /incarnation/);
    assert.ok(s1.states > 10_000, 'the search explored the interleavings');
    // SQLite cannot tell: clean when the journal went back past the cursor ...
    const untold = await runModel([...common, '--no-incarnation']);
    assert.equal(untold.code, 0, untold.out);
    assert.deepEqual([summaryOf(untold.out).failoversAt, summaryOf(untold.out).inconsistentFinals], ["past the drainer's cursor", 0]);
    // ... and not otherwise: a write without a journal row lost stays cached (the documented limit).
    const unseen = await runModel([...common, '--no-incarnation', '--any-store-failover']);
    assert.equal(unseen.code, 1, unseen.out);
    assert.match(unseen.out, /store fails over to its snapshot \(v0, 0 journal rows; it had v1, 0 rows\)\n(\s+.*\n)*?\s+final: cache v1 != store v0/);
    // The old rule: the cursor trusted.
    const trusted = await runModel([...common, '--trust-reused-ids']);
    assert.equal(trusted.code, 1, trusted.out);
    assert.ok(summaryOf(trusted.out).inconsistentFinals > 0, trusted.out);
    assert.match(trusted.out, /journal repair v1 \(row 1\)\n\s+store fails over to its snapshot \(v0, 0 journal rows; it had v1, 1 rows\)\n(\s+.*\n)*?\s+drainer restarts at row 0 \(saved cursor 1 \(stamp u1\), head 0\)\n\s+final: cache v1 != store v0/);
  });

  it('finds no stale read and no stale wait with fill waiters under strict (1 writer, 2 readers)', async () => {
    const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--strict']);
    const summary = JSON.parse(out.split('\n')[0]!) as { staleReads: number; inconsistentFinals: number; waiters: string };
    assert.equal(code, 0, out);
    assert.equal(summary.waiters, 'poll the cache');
    assert.deepEqual([summary.staleReads, summary.inconsistentFinals], [0, 0]);
    assert.match(out, /^(?!.*counterexample)/s);
  });

  it('catches a fill waiter that takes the lease holder\'s value from a message instead of asking the cache', async () => {
    const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--strict', '--waiter-trusts-filler']);
    assert.equal(code, 1, out);
    assert.match(out, /r\d get miss, waits for the fill/);
    assert.match(out, /w0 beginWrite ok/);
    assert.match(out, /stale wait: r\d took v0 after v1 was acknowledged while it waited/);
  });
});
