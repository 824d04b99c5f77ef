// The mutants of `npm run mutation`: each is one plausible protocol bug, as exact text patches of
// the source (applied to a temporary copy of the repository, never to the working tree). Every
// `find` must occur exactly once in its file, so a patch that no longer applies fails loudly
// instead of silently testing the unmutated code. Rules that live in both cache adapters are
// broken in both (the memory adapter in process, the Redis adapter's Lua scripts), so the
// in-process tests and the chaos harness (PostgreSQL + Redis) see the same bug.

export interface Patch {
  readonly file: string;
  readonly find: string;
  readonly replace: string;
}

export interface Mutant {
  readonly id: string;
  /** The rule it breaks: the protocol's transition table, engine paths, or the journal invariant. */
  readonly rule: string;
  readonly patches: readonly Patch[];
}

const MEMORY = 'src/cache/memory.ts';
const VALUES = 'src/cache/memory-values.ts';
const LUA = 'src/cache/redis-scripts.ts';
const WRITE_PATH = 'src/engine/write-path.ts';
const DRAINER = 'src/engine/journal-drainer.ts';
const START = 'src/engine/journal-start.ts';
const DATASET = 'src/cache/redis-dataset.ts';
const READ_PATH = 'src/engine/read-path.ts';
const FILL_WAIT = 'src/engine/fill-wait.ts';
const PROXY_SCHEMA = 'src/pg-proxy/schema.ts';
const PG_CONNECTION_ERRORS = 'src/store/postgres-connection-errors.ts';
const PROXY_READ_PATH = 'src/pg-proxy/read-path.ts';
const PROXY_SESSION = 'src/pg-proxy/session.ts';
const PROXY_CONTEXT = 'src/pg-proxy/context.ts';
const PROXY_SESSION_FENCE = 'src/pg-proxy/session-fence.ts';
const PG_SCHEMA = 'src/store/postgres-schema.ts';
const MYSQL_SCHEMA = 'src/store/mysql-schema.ts';
const MYSQL_STORE = 'src/store/mysql.ts';
const WRITE_BATCH = 'src/cache/redis-write-batch.ts';
const PROXY_RELAY = 'src/pg-proxy/relay.ts';
const PROXY_CLASSIFY = 'src/pg-proxy/classify.ts';
const BUMP_HEAD = 'LANGUAGE plpgsql SECURITY DEFINER SET client_min_messages = notice SET search_path = pg_catalog AS $fn$\nDECLARE v bigint;';

export const MUTANTS: readonly Mutant[] = [
  // --- the journal invariant (issue 10) ---
  {
    id: 'journal-start-at-head',
    rule: 'journal invariant: a drainer without a cursor starts at the head (the fix reverted)',
    patches: [{ file: START, find: "  if (saved === undefined) return replayAll('no-cursor', retainedFrom > 0);", replace: "  if (saved === undefined) return { cursor: head, stamp: undefined, head, reason: 'no-cursor', flushed: 0 };" }],
  },
  {
    id: 'journal-ahead-at-head',
    rule: 'journal invariant: a cursor past the head starts at the head (a journal recreated or restored)',
    patches: [{ file: START, find: "  if (saved.id > head) return replayAll('cursor-ahead', true);", replace: "  if (saved.id > head) return { cursor: head, stamp: undefined, head, reason: 'cursor-ahead', flushed: 0 };" }],
  },
  {
    id: 'journal-behind-retention-trusted',
    rule: 'journal invariant: a cursor older than the retained journal is trusted (no flush)',
    patches: [{ file: START, find: "  if (saved.id < retainedFrom) return replayAll('cursor-behind-retention', true);", replace: "  if (saved.id < retainedFrom) return replayAll('cursor-behind-retention', false);" }],
  },
  {
    id: 'drainer-cursor-before-apply',
    rule: 'journal invariant: the drainer advances (and saves) its cursor to a batch\'s last id before applying it (survivor 2)',
    patches: [
      {
        file: DRAINER,
        find: '          applied += await applyBatch(rows);',
        replace: '          if (rows.length > 0) {\n            cursor = { id: rows[rows.length - 1]!.id };\n            await cache.saveJournalCursor(journalId, cursor);\n          }\n          applied += await applyBatch(rows);',
      },
    ],
  },
  {
    id: 'journal-rewound-unchecked-per-pass',
    rule: 'journal invariant: a running drainer does not check the row at its cursor, so a store gone back to an older state (failover, restore) hands out ids the cursor passed and versions the cache already holds',
    patches: [{ file: DRAINER, find: "    if (row === 'rewound' || row === 'pruned') return row;\n    return rows.slice(1);", replace: '    void row;\n    return rows[0]?.id === cursor.id ? rows.slice(1) : rows;' }],
  },
  {
    id: 'journal-rewound-unchecked-at-start',
    rule: 'journal invariant: a (re)starting drainer trusts a saved cursor whose row has another stamp (the store went back under it); the cache serves what it holds until the first poll',
    patches: [{ file: START, find: "  if (row === 'rewound') return replayAll('store-went-back', true);", replace: '' }],
  },
  {
    id: 'journal-rewound-no-flush',
    rule: 'journal invariant: a drainer that finds the store gone back replays what is retained without flushing (cached values of lost writes, at versions handed out again, survive every invalidateOlder)',
    patches: [{ file: START, find: "  if (rewound) return replayAll('store-went-back', true);", replace: "  if (rewound) return replayAll('store-went-back', false);" }],
  },
  {
    id: 'store-incarnation-unchecked-per-pass',
    rule: "journal invariant: a running drainer does not compare the store's incarnation, so a replica promoted after a failover (its lost writes' versions handed out again) goes unnoticed while its journal looks the same",
    patches: [{ file: DRAINER, find: "    if (incarnationChanged(cursor, incarnation)) return 'rewound';\n", replace: '' }],
  },
  {
    id: 'store-incarnation-unchecked-at-start',
    rule: "journal invariant: a (re)starting drainer trusts a saved cursor reached on another incarnation of the store",
    patches: [{ file: START, find: "  if (incarnationChanged(saved, incarnation)) return replayAll('store-went-back', true);\n", replace: '' }],
  },
  {
    id: 'drainer-relocates-without-limit',
    rule: 'journal invariant (liveness): a pass locates again as often as the store seems to go back, so a store whose answers flap holds the pass in a loop of flushes and stop() never returns',
    patches: [{ file: DRAINER, find: "          if (located) throw new StoreReadError(\"the journal moved under the drainer's cursor again within one pass (do two servers answer at one address?)\");\n", replace: '' }],
  },
  {
    id: 'cursor-row-gone-is-rewound',
    rule: "journal invariant (no needless flush): the cursor's row gone with no row after it is taken for a store gone back, although the head is not below the cursor (the newest row pruned through an older drainer's cursor)",
    patches: [{ file: START, find: "  if (first === undefined && (await store.journalHead()) < cursor.id) return 'rewound';", replace: "  if (first === undefined) return 'rewound';" }],
  },
  {
    id: 'cursor-row-gone-older-kept-trusted',
    rule: "journal invariant: the cursor's row gone while an older row is kept is taken for a pruning, although pruning removes only a prefix (a store gone back whose id counter is ahead of the cursor)",
    patches: [{ file: START, find: "  if (oldest !== undefined && oldest.id < cursor.id) return 'rewound';\n", replace: '' }],
  },
  {
    id: 'legacy-cursor-not-upgraded',
    rule: 'journal invariant: a cursor saved by an older version (no stamp, no incarnation) is never given them on a quiet journal, so a later failover goes unnoticed at start',
    patches: [{ file: START, find: "save: upgraded ? 'replace' : 'none' };", replace: "save: 'none' };" }],
  },
  {
    id: 'journal-ahead-no-flush',
    rule: 'journal invariant: a cursor past the head (the store went back below it) replays what is retained without a flush when nothing was pruned (the rule before stamps)',
    patches: [{ file: START, find: "  if (saved.id > head) return replayAll('cursor-ahead', true);", replace: "  if (saved.id > head) return replayAll('cursor-ahead', retainedFrom > 0);" }],
  },
  {
    id: 'drainer-prunes-cursor-row',
    rule: "journal invariant: the drainer prunes its cursor's own row, so the next pass cannot check it and takes a quiet journal for one that went back (a needless flush of the whole cache)",
    patches: [{ file: DRAINER, find: '      await store.pruneJournal(lastPrune - journal.retentionMs, cursor.id - 1);', replace: '      await store.pruneJournal(lastPrune - journal.retentionMs, cursor.id);' }],
  },
  {
    id: 'late-complete-no-repair',
    rule: 'lease budget: a commit confirmed past its lease, completeWrite failed, and no repair row is appended (survivor 1)',
    patches: [{ file: WRITE_PATH, find: "    await appendRepair(ctx, step.key, result.version, deadline);\n    report('cache-failure', dbMs);", replace: "    report('cache-failure', dbMs);" }],
  },
  {
    id: 'early-ack-unchecked',
    rule: "acknowledge 'after-commit': acknowledges early whatever the lease did (the model's --early-ack-unchecked)",
    patches: [{ file: WRITE_PATH, find: "options.acknowledge === 'after-commit' && clock.now() - leaseStart < options.leaseTtlMs * EARLY_ACK_LEASE_SHARE", replace: "options.acknowledge === 'after-commit'" }],
  },
  {
    id: 'pragmatic-no-journal-row',
    rule: 'engine paths: a write acknowledged without a lease is not journaled in its transaction',
    patches: [{ file: WRITE_PATH, find: 'committing = step.commit(!leased, deadlineMs);', replace: 'committing = step.commit(false, deadlineMs);' }],
  },
  {
    id: 'pragmatic-no-fence',
    rule: 'engine paths: a write acknowledged without a lease does not fence (invalidateOlder) at once; only the journal does',
    patches: [{ file: WRITE_PATH, find: '      await cache.invalidateOlder(step.cacheKey, result.version);\n      fenced = true;', replace: '      fenced = false;' }],
  },
  {
    id: 'no-lease-budget',
    rule: 'lease budget: the store write starts however little of the lease is left',
    patches: [{ file: WRITE_PATH, find: 'if (leased && clock.now() - leaseStart > options.leaseTtlMs / 2) {', replace: 'if (false as boolean) {' }],
  },
  {
    id: 'no-store-deadline',
    rule: 'lease budget: the store write gets no deadline from the lease (60 s)',
    patches: [{ file: WRITE_PATH, find: 'const deadlineMs = Math.max(1, Math.floor(Math.min(leaseLeftMs, deadline.remaining())));', replace: 'const deadlineMs = 60_000; void leaseLeftMs;' }],
  },
  {
    id: 'unknown-outcome-releases-lease',
    rule: 'engine paths: an unknown store outcome aborts the lease instead of letting it expire (dirty)',
    patches: [{ file: WRITE_PATH, find: "(lost) => fenceOnceSettled(ctx, step, lost));\n      report('unknown', dbMs);", replace: "(lost) => fenceOnceSettled(ctx, step, lost));\n      await release();\n      report('unknown', dbMs);" }],
  },
  {
    id: 'close-skips-writes-in-flight',
    rule: 'close() settles while a write is still in flight (its wait on the count of writes in flight removed)',
    patches: [{ file: 'src/engine/write-through.ts', find: '    if (this.writesPending > 0) {\n      if (this.writesDrained === undefined) {', replace: '    if (false as boolean) {\n      if (this.writesDrained === undefined) {' }],
  },
  {
    id: 'tombstone-missing',
    rule: 'tombstones: a delete publishes a tombstone that expires at once',
    patches: [{ file: 'src/engine/write-through.ts', find: '        ttlMs: this.options.tombstoneTtlMs,', replace: '        ttlMs: 1,' }],
  },
  // --- a cache that rolls back (the Redis adapter's dataset guard) ---
  {
    id: 'dataset-guard-trusts-rollback',
    rule: 'a cache that rolls back: the Redis adapter trusts a dataset it cannot prove it wrote (a restart from a snapshot, a promoted replica)',
    patches: [{ file: DATASET, find: '    if (marker === runId) return;', replace: '    if (marker === runId || runId !== marker) return;' }],
  },
  {
    id: 'dataset-guard-first-connection-only',
    rule: 'a cache that rolls back: the dataset is checked on the first connection only, not again when the client reconnects by itself',
    patches: [{ file: DATASET, find: "for (const event of ['connect', 'reconnecting', 'error', 'end'])", replace: 'for (const event of [] as string[])' }],
  },
  // --- fill waiters (issue 13, item 5) ---
  {
    id: 'waiter-takes-holders-value',
    rule: 'fill waiters: a reader waiting for a fill takes the value the lease holder read instead of asking the cache (a voided fill\'s value after the write\'s acknowledgement)',
    patches: [
      {
        file: READ_PATH,
        find: "        try {\n          pending = ctx.cache.get(cacheKey, ctx.options.leaseTtlMs);",
        replace: "        if (joined !== null && typeof joined === 'object' && 'found' in joined) return joined as ReadEntry<T>;\n        try {\n          pending = ctx.cache.get(cacheKey, ctx.options.leaseTtlMs);",
      },
    ],
  },
  {
    id: 'fill-wait-unbounded',
    rule: 'fill waiters: the wait for another instance\'s fill is bounded by the read\'s whole budget (the lease), not fillWait',
    patches: [{ file: FILL_WAIT, find: 'const waitMs = Math.min(ctx.options.fillWaitMs, deadline.remaining() / 2);', replace: 'const waitMs = deadline.remaining();' }],
  },
  {
    id: 'restart-quarantine-off',
    rule: 'a cache that loses its dataset: no quarantine, so a fill of a value read before the commit of a write whose lease was lost is accepted',
    patches: [
      {
        file: DATASET,
        find: '    const lost = marker !== null || removed > 0 || uptimeMs < this.quarantineMs;',
        replace: '    const lost = (marker !== null || removed > 0 || uptimeMs < this.quarantineMs) && false;',
      },
    ],
  },
  {
    id: 'cluster-guard-off',
    rule: 'a Redis Cluster slot rolled back (a failover to a replica that missed a publish, a restart from a snapshot): its incarnation key is trusted whatever process and replication history it names, so the stale records keep a current stamp',
    patches: [{ file: LUA, find: '  if hid == id then\n', replace: '  if hid ~= nil then\n' }],
  },
  {
    id: 'cluster-identity-run-id-only',
    rule: "a Redis Cluster slot rolled back under the same process: a master demoted, resynchronised from a replica that missed a publish, and promoted back keeps its run_id; without the replication id in the slot's identity its stale records keep a current stamp",
    patches: [
      {
        file: LUA,
        find: "local id = string.sub(info, at_run, at_run + 39) .. '/' .. string.sub(info, at_repl, at_repl + 39)",
        replace: "local id = string.sub(info, at_run, at_run + 39) .. '/' .. string.rep('0', 40)",
      },
    ],
  },
  {
    id: 'cluster-quarantine-off',
    rule: 'a Redis Cluster slot lost in a failover: claimed without a quarantine, so a fill of a value read before the commit of a write whose lease was lost is accepted',
    patches: [{ file: LUA, find: '  qend = now + q\n', replace: '  qend = now\n' }],
  },
  {
    id: 'cluster-first-use-nonempty-slot',
    rule: "a Redis Cluster slot whose incarnation key was deleted or evicted under the live process: the claim is taken for a first use (no quarantine) although the slot still holds records, so a write lease it loses leaves the writer-crash window open",
    patches: [
      {
        file: LUA,
        find: '    if not ours then q = 0 end\n',
        replace: '    q = 0\n',
      },
    ],
  },
  {
    id: 'cluster-info-unchecked',
    rule: "a Redis Cluster where the adapter's user cannot run INFO (ACL, rename-command): connect() succeeds and every call fails with Redis's script error instead of a clear error naming INFO",
    patches: [
      {
        file: 'src/cache/redis.ts',
        find: '      if (this.incarnations !== undefined) await this.checkClusterInfo();',
        replace: '      if (this.incarnations !== undefined && (false as boolean)) await this.checkClusterInfo();',
      },
    ],
  },
  {
    id: 'cluster-stamp-ignored',
    rule: 'a Redis Cluster slot rolled back: the slot is claimed and quarantined, but a record stamped under a lost incarnation is served as if current',
    patches: [
      {
        file: LUA,
        find: "      redis.call('DEL', key)\n      return nil\n    end\n    error({ err = 'ERR lockstep: ' .. key .. ' does not hold a Lockstep cache record' })\n  end\n  raw = string.sub(raw, #S + 1)",
        replace: "      S = string.sub(raw, 1, string.find(raw, '|', 1, true))\n    end\n  end\n  raw = string.sub(raw, #S + 1)",
      },
    ],
  },
  {
    id: 'read-fill-skips-journal-wait',
    rule: "journal invariant: a miss reads the store and fills before the journal drainer knows where the journal ends (read-path.ts's wait removed)",
    patches: [
      { file: READ_PATH, find: '  if (!ctx.journalPositionKnown || load !== readStoreValue) return loadInFlight', replace: '  if (load !== readStoreValue) return loadInFlight' },
      { file: READ_PATH, find: '  } else if (!ctx.journalPositionKnown) {\n    const budget', replace: '  } else if (false as boolean) {\n    const budget' },
    ],
  },
  {
    id: 'write-skips-journal-wait',
    rule: "journal invariant: a write leases and commits before the journal drainer knows where the journal ends (write-path.ts's step 0 removed)",
    patches: [{ file: WRITE_PATH, find: '  if (!readyJournals.has(ctx.journalReady)) {', replace: '  if (false as boolean) {' }],
  },
  // --- the transition table, in both adapters ---
  {
    id: 'unfenced-fill',
    rule: 'fill(t) publishes without a live fill lease of t (a voided or stale fill lands)',
    patches: [
      {
        file: MEMORY,
        find: '    if (lease === undefined || lease.fillToken !== token) return false;\n    const value = toStored(entry, ttlMs);\n    this.values.fillWith(lease, value, ttlMs, value.sizeBytes);',
        replace: '    if (this.liveWrite(key) !== undefined) return false;\n    const value = toStored(entry, ttlMs);\n    if (lease !== undefined) this.values.fillWith(lease, value, ttlMs, value.sizeBytes);\n    else this.publish(key, value);',
      },
      { file: LUA, find: "if rec ~= nil and rec.kind == 'fill' and rec.token == ARGV[1] then", replace: "if rec == nil or rec.kind ~= 'write' then" },
    ],
  },
  {
    id: 'last-writer-wins',
    rule: 'completeWrite publishes the last completing writer\'s value, not the highest version',
    patches: [
      { file: MEMORY, find: 'if (entry.version > lease.maxVersion) {', replace: 'if (entry.version > 0) {' },
      { file: LUA, find: 'if tonumber(ARGV[2]) > tonumber(rec.max) then', replace: 'if tonumber(ARGV[2]) > 0 then' },
    ],
  },
  {
    id: 'expired-token-publishes-survivors',
    rule: 'a write record whose token expired publishes the surviving writers\' value (expiry does not mark it dirty)',
    patches: [
      { file: MEMORY, find: '      lease.tokens.delete(token);\n      lease.dirty = true;', replace: '      lease.tokens.delete(token);' },
      { file: LUA, find: '    if dropped > 0 then\n      expired = expired + dropped\n      rec.dirty = true\n    end', replace: '    if dropped > 0 then\n      expired = expired + dropped\n    end' },
    ],
  },
  {
    id: 'unleased-writer-publishes',
    rule: 'completeWrite without a live lease publishes its value instead of only invalidating',
    patches: [
      { file: MEMORY, find: "      this.invalidateOlder(key, entry.version);\n      return 'fenced';", replace: "      this.leases.delete(key);\n      this.publish(key, toStored(entry, ttlMs));\n      return 'published';" },
      { file: LUA, find: "invalidate_older(rec, ARGV[2])\nreturn { expired, 'fenced' }", replace: "publish(ARGV[3], tonumber(ARGV[4]))\nreturn { expired, 'published' }" },
    ],
  },
  {
    id: 'lone-expired-writer-publishes',
    rule: 'thin spot: a lone writer whose lease expired (nothing left) publishes on completeWrite instead of fencing',
    patches: [
      { file: MEMORY, find: "      this.invalidateOlder(key, entry.version);\n      return 'fenced';", replace: "      if (lease === undefined) {\n        this.publish(key, toStored(entry, ttlMs));\n        return 'published';\n      }\n      this.invalidateOlder(key, entry.version);\n      return 'fenced';" },
      { file: LUA, find: "invalidate_older(rec, ARGV[2])\nreturn { expired, 'fenced' }", replace: "if rec == nil then\n  publish(ARGV[3], tonumber(ARGV[4]))\n  return { expired, 'published' }\nend\ninvalidate_older(rec, ARGV[2])\nreturn { expired, 'fenced' }" },
    ],
  },
  {
    id: 'invalidate-not-dirty',
    rule: 'thin spot: invalidateOlder(v) leaves a write record with maxVersion < v clean',
    patches: [
      { file: MEMORY, find: "else if (lease?.kind === 'write' && lease.maxVersion < version) lease.dirty = true;", replace: '' },
      { file: LUA, find: '  elseif tonumber(rec.max) < version and not rec.dirty then\n    rec.dirty = true\n    save_write(rec)\n  end', replace: '  end' },
    ],
  },
  {
    id: 'expired-lone-lease-serves-old',
    rule: 'thin spot: when the only write lease expires, the record goes back to the value it carried (the old one)',
    patches: [
      { file: MEMORY, find: '    if (lease.tokens.size > 0) return lease;\n    this.leases.delete(key);', replace: '    if (lease.tokens.size > 0) return lease;\n    this.leases.delete(key);\n    if (lease.max !== undefined && !this.values.has(key)) this.publish(key, lease.max);' },
      { file: LUA, find: "    if rec.count == 0 then\n      redis.call('DEL', key)\n      return nil\n    end", replace: "    if rec.count == 0 then\n      if rec.pending ~= '' then\n        publish(rec.pending, 60000)\n        return { kind = 'value', raw = rec.pending, version = string.match(rec.pending, '^v(%d+):') }\n      end\n      redis.call('DEL', key)\n      return nil\n    end" },
    ],
  },
  {
    id: 'fill-not-voided',
    rule: 'invalidateOlder(v) does not void a live fill lease',
    patches: [
      { file: MEMORY, find: 'if (fill !== undefined) this.values.delete(key);\n    else if', replace: 'if (fill !== undefined) void 0;\n    else if' },
      { file: LUA, find: "  elseif rec.kind == 'fill' then\n    redis.call('DEL', key)\n  elseif", replace: "  elseif rec.kind == 'fill' then\n  elseif" },
    ],
  },
  {
    id: 'invalidate-reversed',
    rule: 'invalidateOlder(v) removes newer values instead of older ones',
    patches: [
      { file: MEMORY, find: 'if (value !== undefined && value.version < version) this.values.delete(key);', replace: 'if (value !== undefined && value.version > version) this.values.delete(key);' },
      { file: LUA, find: "if tonumber(rec.version) < version then redis.call('DEL', key) end", replace: "if tonumber(rec.version) > version then redis.call('DEL', key) end" },
    ],
  },
  {
    id: 'get-during-write-fills',
    rule: 'get on a live write record grants a fill lease (replacing the writers\' lease) instead of bypassing',
    patches: [
      { file: MEMORY, find: 'if (this.liveWrite(key) !== undefined) return BYPASS;', replace: "if (this.liveWrite(key) !== undefined && BYPASS.kind === 'bypass') this.leases.delete(key);" },
      { file: LUA, find: "return { expired, 'b' }\n`;", replace: "redis.call('SET', key, 'f' .. string.format('%d', now + tonumber(ARGV[1])) .. ':' .. ARGV[2])\nreturn { expired, 'm' }\n`;" },
    ],
  },
  {
    id: 'abort-publishes-carried',
    rule: 'abortWrite of the last writer publishes the value the record carried (even when dirty) instead of leaving nothing',
    patches: [
      { file: MEMORY, find: "if (lease?.kind === 'write' && lease.tokens.delete(token) && lease.tokens.size === 0) this.leases.delete(key);", replace: "if (lease?.kind === 'write' && lease.tokens.delete(token) && lease.tokens.size === 0) {\n      this.leases.delete(key);\n      if (lease.max !== undefined) this.publish(key, lease.max);\n    }" },
      { file: LUA, find: "  if rec.count == 0 then\n    redis.call('DEL', key)\n  else\n    save_write(rec)\n  end\nend\nreturn { expired }", replace: "  if rec.count == 0 then\n    if rec.pending ~= '' then publish(rec.pending, 60000) else redis.call('DEL', key) end\n  else\n    save_write(rec)\n  end\nend\nreturn { expired }" },
    ],
  },
  // --- the Redis adapter's coalesced write calls (redis-write-batch.ts, the writeBatch script) ---
  {
    id: 'write-batch-errors-shared',
    rule: 'a write call whose transition fails in a writeBatch run fails the whole run: the other calls, applied, are reported failed (each call keeps its own error)',
    patches: [{ file: LUA, find: "  if not ok then\n    if type(reply) == 'table' then reply = reply.err end", replace: "  if not ok then\n    error(reply)" }],
  },
  {
    id: 'write-batch-replies-misrouted',
    rule: "the calls of a writeBatch run get one another's replies (each call keeps its own result)",
    patches: [{ file: WRITE_BATCH, find: '      const own: unknown = reply[i];', replace: '      const own: unknown = reply[(i + 1) % calls.length];' }],
  },
  {
    id: 'write-batch-args-shifted',
    rule: "a completeWrite in a writeBatch run publishes with another argument as its value (each call's transition runs on its own arguments)",
    patches: [{ file: LUA, find: '{ ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4] }', replace: '{ ARGV[at + 1], ARGV[at + 2], ARGV[at + 1], ARGV[at + 4] }' }],
  },
  {
    id: 'record-version-digits-unchecked',
    rule: "a value record's version read digit by digit past 15 digits, or up to a character that is not the colon: the hit decodes another version than Number() of its digits",
    patches: [{ file: 'src/cache/redis-records.ts', find: '  if (raw.charCodeAt(colon) !== COLON || colon > 16) {', replace: '  if (colon === 1 && raw.charCodeAt(colon) !== COLON) {' }],
  },
  {
    id: 'write-batch-close-drops-held',
    rule: "the Redis adapter's close() leaves the write calls it holds to the end of the tick, when the client is closed: a completion made right before close() never lands",
    patches: [{ file: 'src/cache/redis.ts', find: '    this.batcher?.flush(); // held calls go out before the client closes\n', replace: '' }],
  },
  {
    id: 'write-batch-sends-expired',
    rule: 'a write call held to the end of its tick is sent although its deadline passed and its caller was told it failed',
    patches: [{ file: WRITE_BATCH, find: '    for (const call of calls) if (call.expireIfDue(now, call.startedAt)) expired++;', replace: '    for (const call of calls) if (call.done && now > 0) expired += 0;' }],
  },
  {
    id: 'hit-handler-shared-when-timed',
    rule: "a read timed for a `read` listener takes its key's shared untimed handler (KnownKey.answerHandler): its hit is never reported",
    patches: [
      {
        file: 'src/engine/write-through.ts',
        find: 'const handler = started === -1 ? ((known.answerHandler ??= new HitRead(this, key, cacheKey, -1)) as HitRead<T>) : new HitRead(this, key, cacheKey, started);',
        replace: 'const handler = (known.answerHandler ??= new HitRead(this, key, cacheKey, -1)) as HitRead<T>;',
      },
    ],
  },
  {
    id: 'hit-handler-shared-across-keys',
    rule: "one untimed answer handler for every key of the engine (not one per key): a read that misses goes to the store for another key",
    patches: [
      {
        file: 'src/engine/write-through.ts',
        find: '((known.answerHandler ??= new HitRead(this, key, cacheKey, -1)) as HitRead<T>)',
        replace: "((this.cacheKeys.entry('').answerHandler ??= new HitRead(this, key, cacheKey, -1)) as HitRead<T>)",
      },
    ],
  },
  {
    id: 'deadline-from-sweep-clock',
    rule: "a Redis call's deadline counted from the sweep's last clock reading, taken before the call started (no clock read per call): after a long synchronous stretch the call expires before its timeout has passed",
    patches: [{ file: 'src/cache/deadlines.ts', find: '    return call.begin(queue, work);', replace: '    call.due = this.clock + ms;\n    return call.begin(queue, work);' }],
  },
  {
    id: 'write-batch-oom-unprobed',
    rule: "past maxmemory (noeviction) a writeBatch run is not refused whole: a call whose only write is a DEL lets every later call's payload through, which each alone would have been refused",
    patches: [{ file: LUA, find: "if type(probe) == 'table' and type(probe.err) == 'string' and string.sub(probe.err, 1, 3) == 'OOM' then", replace: "if type(probe) == 'table' and type(probe.err) == 'string' and string.sub(probe.err, 1, 3) == 'XXX' then" }],
  },
  // --- the embedded defaults' own paths (memory cache + SQLite), which the wrapped fixtures never take ---
  {
    id: 'slot-outlives-value',
    rule: "the memory cache's value slot (CacheAdapter.slot) still answers its value after the value was deleted, replaced by a lease or evicted: the engine's held slot serves it after a write",
    patches: [
      { file: VALUES, find: '    return this.live ? this.owner.use(this) : undefined;', replace: '    return this.live ? this.owner.use(this) : this.value;' },
      { file: VALUES, find: '    slot.value = undefined; // a reader may still hold the slot: it must not hold the value\n', replace: '' },
    ],
  },
  {
    id: 'coarse-clock-timer-holds-cache',
    rule: "the memory cache's coarse-clock timer holds the cache's slots: a cache dropped without close() stays alive with all its values until the event loop next runs timers (never, in a loop of awaited reads)",
    patches: [
      {
        file: VALUES,
        find: '    return this.coarse === undefined ? this.clock.now() : this.coarse.read();',
        replace: '    if (this.coarse !== undefined) setTimeout(() => void this.coarse, 1).unref();\n    return this.coarse === undefined ? this.clock.now() : this.coarse.read();',
      },
    ],
  },
  {
    id: 'memory-cache-assumed-empty',
    rule: 'journal invariant: a drainer over an in-process cache starts at the head as if the cache were empty, without asking it (a memory cache reused by a re-created instance keeps values the skipped rows invalidate)',
    patches: [{ file: START, find: '  if (cache.isEmpty?.() === true) return', replace: '  if (cache.isEmpty !== undefined) return' }],
  },
  // --- pg-proxy (issue 12) ---
  {
    id: 'proxy-commit-prepared-unfenced',
    rule: "pg-proxy: a COMMIT PREPARED relayed by the proxy is acknowledged without a pass of the drainer, so the prepared transaction's writes (which no session's fence saw) leave the old rows cached after it",
    patches: [{ file: PROXY_RELAY, find: "        const drain = (state.status === 'I' && seen.commitsPrepared) || (state.status !== 'I' && seen.committed);", replace: "        const drain = state.status !== 'I' && seen.committed;" }],
  },
  {
    id: 'proxy-classify-misses-commit-prepared',
    rule: 'pg-proxy: COMMIT PREPARED is not recognised in a batch, so its acknowledgement waits for no pass of the drainer',
    patches: [{ file: PROXY_CLASSIFY, find: "TransactionStmt?.kind === 'TRANS_STMT_COMMIT_PREPARED') commitsPrepared = true;", replace: "TransactionStmt?.kind === 'TRANS_STMT_COMMIT_PREPARED_') commitsPrepared = true;" }],
  },
  {
    id: 'proxy-commit-chain-unfenced',
    rule: "pg-proxy: a commit acknowledged by a ReadyForQuery 'T' (COMMIT AND CHAIN) is not fenced until the next transaction ends",
    patches: [{ file: PROXY_RELAY, find: "        const drain = (state.status === 'I' && seen.commitsPrepared) || (state.status !== 'I' && seen.committed);", replace: "        const drain = state.status === 'I' && seen.commitsPrepared;" }],
  },
  {
    id: 'proxy-announced-not-applied',
    rule: "pg-proxy: a transaction fenced by its announced writes is acknowledged without applying them",
    patches: [{ file: PROXY_SESSION_FENCE, find: '  return applyFence(state, rows, false);', replace: '  void rows;\n  return undefined;' }],
  },
  {
    id: 'proxy-announced-applied-early',
    rule: "pg-proxy: announced writes are applied at any ReadyForQuery, inside the transaction too: a value filled before its COMMIT is served after it",
    patches: [{ file: PROXY_RELAY, find: "        if (status === 'I' && !pipelined && announced && announcementsTrusted(state)) {", replace: "        if (!pipelined && announced && announcementsTrusted(state)) {" }],
  },
  {
    id: 'proxy-announcements-unverified',
    rule: "pg-proxy: announced writes are trusted without the drainer's check that the journal's writers announce, so after an older proxy's install a write is acknowledged unfenced",
    patches: [{ file: PROXY_CONTEXT, find: '  return performance.now() - ctx.bypass.announcedAt <= ctx.bypass.boundMs;', replace: '  return ctx.bypass.announcedAt !== 0;' }],
  },
  {
    id: 'proxy-cache-key-prefix-memo-by-table-only',
    rule: "pg-proxy: the memo of the last cache-key prefix is matched by table only, so a proxy's two cache scopes (or a key made for another context) share one table's keys",
    patches: [{ file: PROXY_CONTEXT, find: '  if (lastPrefix?.scope === scope && lastPrefix.qualified === qualified) return lastPrefix.prefix;', replace: '  if (lastPrefix?.qualified === qualified) return lastPrefix.prefix;' }],
  },
  {
    id: 'proxy-notice-other-code-announces',
    rule: "pg-proxy: a NOTICE with another SQLSTATE but the announcement's text and detail is taken for an announcement (and out of the client's stream)",
    patches: [{ file: 'src/pg-proxy/write-marker.ts', find: "      else return undefined;\n    } else if (field === TEXT_FIELD)", replace: "      else code = 'announcement';\n    } else if (field === TEXT_FIELD)" }],
  },
  {
    id: 'proxy-announcements-past-cap',
    rule: 'pg-proxy: a transaction that announced more rows than the session keeps is still fenced by the rows kept (none), not by the fence statement',
    patches: [{ file: PROXY_SESSION_FENCE, find: ' && state.announcing && !state.announceOverflow && ', replace: ' && state.announcing && ' }],
  },
  {
    id: 'proxy-announce-obeys-client-min-messages',
    rule: "pg-proxy: write announcements are raised under the client's client_min_messages, so a session that hides notices has its writes acknowledged unfenced",
    patches: [{ file: PROXY_SCHEMA, find: BUMP_HEAD, replace: 'LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$\nDECLARE v bigint;' }],
  },
  {
    id: 'proxy-holds-acknowledgements-in-flush-batches',
    rule: 'pg-proxy: answers that only acknowledge (ParseComplete …) are held back in a batch ended by Flush too, where the client waits for them before it sends more: the session hangs',
    patches: [{ file: PROXY_RELAY, find: '(upstream.pending === 0 && !(raw === false && onlyAcknowledgements(pending)))', replace: '(upstream.pending === 0 && !onlyAcknowledgements(pending))' }],
  },
  {
    id: 'proxy-ignores-write-marker',
    rule: 'pg-proxy: the session takes the write marker out of the stream without counting it, so a SELECT that wrote a cached table through a function is acknowledged unfenced',
    patches: [{ file: PROXY_SESSION, find: '      state.writeMarks++;\n', replace: '' }],
  },
  {
    id: 'proxy-marker-does-not-disarm',
    rule: "pg-proxy: a write marker does not disarm the session, so after a run of writes (the session's row quiet, no more markers) a SELECT that writes is acknowledged unfenced",
    patches: [{ file: PROXY_SESSION, find: "      state.markerArmed = false; // the session's row is quiet now: the next write raises none\n", replace: '' }],
  },
  {
    id: 'proxy-arms-without-rearm',
    rule: 'pg-proxy: every pipelined fence arms the session, also one sent without CALL rearm(), so the row stays quiet while the proxy skips fences',
    patches: [{ file: PROXY_SESSION_FENCE, find: '    if (rearm) state.markerArmed = true; // the rearm sent with this fence committed with it', replace: '    state.markerArmed = true;' }],
  },
  {
    id: 'proxy-marker-obeys-client-min-messages',
    rule: "pg-proxy: the write marker is raised under the client's client_min_messages, so a session that hides notices writes through a SELECT unfenced",
    // (bump's own clause covers the marker it raises through mark_write: both go.)
    patches: [
      { file: PROXY_SCHEMA, find: 'SET search_path = pg_catalog SET client_min_messages = notice AS $fn$', replace: 'SET search_path = pg_catalog AS $fn$' },
      { file: PROXY_SCHEMA, find: BUMP_HEAD, replace: 'LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$\nDECLARE v bigint;' },
    ],
  },
  {
    id: 'proxy-skips-unverified-markers',
    rule: "pg-proxy: fences of SELECT batches are skipped without the drainer's check that the journal writers raise the marker, so after an older proxy's install a write through a SELECT is acknowledged unfenced",
    patches: [{ file: PROXY_CONTEXT, find: '  return performance.now() - ctx.bypass.markersAt <= ctx.bypass.boundMs;', replace: '  return ctx.bypass.markersAt !== 0;' }],
  },
  {
    id: 'proxy-marker-startup-no-fallback',
    rule: 'pg-proxy: an upstream that refuses the write marker\'s startup parameter (PgBouncer by default) refuses every session',
    patches: [{ file: PROXY_SESSION, find: "  return m.type === 'E' && errorCode(m.body) === '08P01' && m.body.includes(name);", replace: "  return false && m.type === 'E' && errorCode(m.body) === '08P01' && m.body.includes(name);" }],
  },
  // --- pg-proxy replication sessions (test/integration/pg-proxy-replication-session.test.ts) ---
  {
    id: 'proxy-pipes-replication-session-unfenced',
    rule: 'pg-proxy: a replication session to the proxy\'s database (replication=database runs SQL; replication=false is an ordinary session) is piped with its ReadyForQuery relayed at once: its write is acknowledged before any fence, and a later read through the proxy returns the cached row it replaced',
    patches: [{ file: PROXY_SESSION, find: "const toClient = database === postgresName(ctx.upstream.database) && ctx.fence === 'on' ? drainedPipe(ctx, socket, upstreamSocket) : socket;", replace: "const toClient = false && database === postgresName(ctx.upstream.database) && ctx.fence === 'on' ? drainedPipe(ctx, socket, upstreamSocket) : socket;" }],
  },
  // --- pg-proxy swapped table (test/integration/pg-proxy-swapped-table.test.ts) ---
  {
    id: 'proxy-trusts-qualified-name',
    rule: 'pg-proxy: a schema-qualified read is cached without checking that the name still resolves to the cached table: after a swap by renames the new table\'s row is cached, and an UPDATE of it acknowledged through the proxy is not seen',
    patches: [{ file: PROXY_READ_PATH, find: '  return state.resolves?.[read.point.unqualified ? index : tables.length + index] === String(read.point.table.oid);', replace: '  return read.point.unqualified ? state.resolves?.[index] === String(read.point.table.oid) : state.fingerprint !== undefined;' }],
  },
  // --- pg-proxy temporary table (test/integration/pg-proxy-temp-table.test.ts) ---
  {
    id: 'proxy-ignores-bare-name-resolution',
    rule: 'pg-proxy: a bare table name is not checked to resolve to the cached table: a session\'s temporary items is read from, and filled into, the real table\'s cache',
    patches: [{ file: PROXY_READ_PATH, find: '  return state.resolves?.[read.point.unqualified ? index : tables.length + index] === String(read.point.table.oid);', replace: '  return read.point.unqualified || state.resolves?.[tables.length + index] === String(read.point.table.oid);' }],
  },
  // --- pg-proxy cache scope (test/integration/pg-proxy-shared-cache-scope.test.ts) ---
  {
    id: 'proxy-keys-by-database-name',
    rule: 'pg-proxy: cached answers keyed by the database\'s name alone: a proxy of another cluster with a database of the same name is served its rows, and a proxy of another schema (its own versions) leaves an answer its fence cannot compare in place',
    patches: [{ file: 'src/pg-proxy/cache-scope.ts', find: '  return `${database}:${rows[0]!.system}.${rows[0]!.db}.${schema}`;', replace: '  return database;' }],
  },
  // --- pg-proxy output settings (test/integration/pg-proxy-output-settings.test.ts) ---
  {
    id: 'proxy-keeps-settings-after-relay',
    rule: 'pg-proxy: a session\'s output settings are not read again after a relayed batch: extra_float_digits set by set_config() in a SELECT (no ParameterStatus) and the session is served the answer rendered under its old settings',
    patches: [{ file: PROXY_RELAY, find: "    state.fingerprint = undefined; // anything relayed may have changed the session's settings", replace: '' }],
  },
  // --- pg-proxy = operators in the search_path (test/integration/pg-proxy-operator-search-path.test.ts) ---
  {
    id: 'proxy-caches-with-user-equals',
    rule: 'pg-proxy: a session whose search_path finds a user-defined = before pg_catalog\'s is cached: `WHERE id = 1` answered with row 2 under key 1, which an acknowledged write of row 2 does not invalidate',
    patches: [{ file: PROXY_READ_PATH, find: "shareable === 't' && catalogEquals === 't';", replace: "shareable === 't' && catalogEquals !== 'x';" }],
  },
  {
    id: 'proxy-ddl-trigger-ignores-operators',
    rule: 'pg-proxy: an = operator created straight on PostgreSQL in a schema a session searches first flushes nothing: the session is served the cached row where PostgreSQL now answers another',
    patches: [{ file: PROXY_SCHEMA, find: "'DROP OWNED', 'CREATE OPERATOR', 'ALTER OPERATOR', 'CREATE EXTENSION', 'ALTER EXTENSION')", replace: "'DROP OWNED')" }],
  },
  {
    id: 'proxy-classify-ignores-operator-ddl',
    rule: 'pg-proxy: CREATE OPERATOR relayed through the proxy flushes nothing (a proxy without event triggers keeps answers a session\'s new = would change)',
    patches: [{ file: PROXY_CLASSIFY, find: "if (type === 'DefineStmt') return (stmt.DefineStmt as { kind?: unknown }).kind === 'OBJECT_OPERATOR';", replace: "if (type === 'DefineStmt') return false;" }],
  },
  // --- pg-proxy inheritance (test/integration/pg-proxy-inheritance.test.ts) ---
  {
    id: 'proxy-caches-table-with-children',
    rule: 'pg-proxy: an answer of a cached table with inheritance children is cached, though a write to a child fires none of its triggers (a stale row after an acknowledged write)',
    patches: [{ file: PROXY_READ_PATH, find: 'const TABLE_SHAREABLE_SQL = `NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) $3::pg_catalog.oid)', replace: 'const TABLE_SHAREABLE_SQL = `$3::pg_catalog.oid IS NOT NULL' }],
  },
  {
    id: 'proxy-caches-table-with-rls',
    rule: 'pg-proxy: an answer of a cached table whose row-level security was enabled after the start is cached, and served to a session its policy hides the row from',
    patches: [{ file: PROXY_READ_PATH, find: 'AND c.relrowsecurity)', replace: 'AND false)' }],
  },
  {
    id: 'proxy-ddl-ignores-new-child',
    rule: 'pg-proxy: a child table created straight on PostgreSQL (CREATE TABLE … INHERITS) does not flush the cached parent, whose answers filled before it stay',
    patches: [{ file: PROXY_SCHEMA, find: '      OR ct.relid IN (SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.objid)\n', replace: '' }],
  },
  {
    id: 'proxy-caches-with-triggers-disabled',
    rule: 'pg-proxy: an answer of a cached table whose proxy triggers are disabled (DISABLE TRIGGER ALL) is cached, though its writes append no journal row (a stale row after an acknowledged write)',
    patches: [{ file: PROXY_READ_PATH, find: "AND t.tgenabled OPERATOR(pg_catalog.=) 'A'::pg_catalog.char", replace: 'AND t.tgenabled IS NOT NULL' }],
  },
  {
    id: 'proxy-variant-ignores-quote-all-identifiers',
    // Answers with a regclass column are no longer cached at all (rendered-columns.ts): the setting in
    // the variant is the second line, tested with that refusal taken out too.
    rule: 'pg-proxy: a session with quote_all_identifiers on is served another session\'s unquoted regclass answer (not byte-identical), were regclass answers cached',
    patches: [
      { file: 'src/pg-proxy/internal.ts', find: "'row_security', 'xmloption', 'quote_all_identifiers'];", replace: "'row_security', 'xmloption'];" },
      { file: PROXY_READ_PATH, find: " AND ${notRenderedElsewhereSql(ctx.schema, '$3::pg_catalog.oid')}", replace: '' },
    ],
  },
  {
    id: 'proxy-caches-nondeterministic-key',
    rule: 'pg-proxy: a text primary key of a case-insensitive collation is cached under the spelling read (\'ABC\'), which a write to the row (\'abc\') does not invalidate',
    patches: [{ file: PROXY_READ_PATH, find: 'x.indisprimary AND NOT co.collisdeterministic)', replace: 'x.indisprimary AND false)' }],
  },
  // --- pg-proxy columns rendered from other objects (test/integration/pg-proxy-catalog-rendered-columns.test.ts) ---
  {
    id: 'proxy-caches-catalog-rendered-columns',
    rule: "pg-proxy: a table with a regclass/regrole column or a column of another table's row type is cached, and a rename of the referenced object (or ALTER TABLE of that table) leaves the old text in the cache for good",
    patches: [{ file: PROXY_READ_PATH, find: " AND ${notRenderedElsewhereSql(ctx.schema, '$3::pg_catalog.oid')}", replace: '' }],
  },
  // --- pg-proxy statements prepared before their table changed (test/integration/pg-proxy-prepared-after-ddl.test.ts) ---
  {
    id: 'proxy-serves-prepared-statement-any-definition',
    rule: "pg-proxy: a statement prepared before its table's columns changed is served another session's answer of the new columns, where PostgreSQL sends 0A000 (cached plan must not change result type)",
    patches: [{ file: 'src/pg-proxy/prepared-definition.ts', find: '  if (read.statement === undefined) return true;', replace: '  return true;' }],
  },
  // --- pg-proxy integer literals of PostgreSQL 16's forms (test/integration/pg-proxy-numeric-literal-forms.test.ts) ---
  {
    id: 'proxy-reads-literals-with-newer-grammar',
    rule: 'pg-proxy: WHERE id = 0x10 (or 1_6, 0o20) is read as key 16 by the parser of PostgreSQL 18 and served the cached row, where PostgreSQL 15 sends a syntax error',
    patches: [{ file: PROXY_CLASSIFY, find: '      if (!writtenAsDecimal(sql, constant.location, value)) return undefined;\n', replace: '' }],
  },
  // --- pg-proxy a commit whose fence failed (test/integration/pg-proxy-fence-failed-window.test.ts) ---
  {
    id: 'proxy-hits-after-failed-fence',
    rule: 'pg-proxy: after a commit whose fence could not reach the cache (acknowledged, pragmatic), hits are served as soon as the cache answers, the replaced row among them, until the drainer next passes',
    patches: [{ file: 'src/pg-proxy/context.ts', find: 'return bypass.coveredAt > bypass.fenceFailedAt && performance.now()', replace: 'return performance.now()' }],
  },
  // --- pg-proxy types and roles (test/integration/pg-proxy-type-role-ddl.test.ts) ---
  {
    id: 'proxy-ignores-type-and-role-ddl',
    rule: 'pg-proxy: a relayed ALTER TYPE or role change (REVOKE role FROM member) leaves the cached answers: the old enum label, or rows served to a member that lost its right to read them',
    patches: [{ file: PROXY_CLASSIFY, find: '  if (CHANGES_EVERY_TABLE.has(type)) return true;', replace: '  if (CHANGES_EVERY_TABLE.has(type)) return false;' }],
  },
  {
    id: 'proxy-ddl-trigger-ignores-alter-type',
    rule: 'pg-proxy: an ALTER TYPE made straight on PostgreSQL (an enum label renamed) leaves the cached answers with the old bytes',
    patches: [{ file: PROXY_SCHEMA, find: "  IF tg_tag IN ('GRANT', 'REVOKE', 'ALTER TYPE', 'DROP OWNED', ", replace: "  IF tg_tag IN ('GRANT', 'REVOKE', " }],
  },
  {
    id: 'proxy-drainer-ignores-roles',
    rule: 'pg-proxy: a role membership revoked straight on PostgreSQL (no event trigger fires for roles) leaves the cached rows served to the member that lost it',
    patches: [{ file: 'src/pg-proxy/drainer.ts', find: '    if (rolesSeen !== undefined && roles !== rolesSeen) {', replace: '    if (false && rolesSeen !== undefined && roles !== rolesSeen) {' }],
  },
  {
    id: 'proxy-drainer-ignores-incarnation',
    rule: "pg-proxy journal invariant: the bypass drainer does not compare the upstream's incarnation, so after a failover to an asynchronous replica that missed commits the answers of the lost writes stay cached (test/consistency/pg-proxy-failover.test.ts)",
    patches: [{ file: 'src/pg-proxy/drainer.ts', find: '    if (incarnation !== undefined && incarnationSeen !== undefined && incarnation !== incarnationSeen) {', replace: '    if (false && incarnation !== undefined && incarnationSeen !== undefined && incarnation !== incarnationSeen) {' }],
  },
  {
    id: 'proxy-drainer-ignores-saved-incarnation',
    rule: "pg-proxy journal invariant: a proxy (re)started after a failover does not check its saved cursor's incarnation, so the answers of the writes the promoted replica lost, kept in its cache, stay (test/consistency/pg-proxy-failover.test.ts)",
    patches: [{ file: 'src/pg-proxy/drainer.ts', find: '    incarnationSeen ??= cursor?.incarnation;\n', replace: '' }],
  },
  {
    id: 'proxy-drainer-trusts-cursor-after-failed-replay',
    rule: 'pg-proxy: after a failover the drainer found, a replay pass that fails leaves the next connection trusting the cursor saved on the old server (its transaction ids), so rows of the promoted server below it are never replayed',
    patches: [{ file: 'src/pg-proxy/drainer.ts', find: ' || BigInt(loaded) > BigInt(next) || replaceCursor ? undefined : loaded;', replace: ' || BigInt(loaded) > BigInt(next) ? undefined : loaded;' }],
  },
  {
    id: 'proxy-drain-after-stop',
    rule: "pg-proxy: a pass of the drainer asked for after close() (a replication session's acknowledgement still waiting) opens a drainer connection nobody ends",
    patches: [
      { file: 'src/pg-proxy/drainer.ts', find: '    if (!running) return Promise.reject(new DrainerStopped());\n', replace: '' },
      { file: 'src/pg-proxy/drainer.ts', find: '    if (!running) {\n      drop(c);\n      throw new DrainerStopped();\n    }\n', replace: '' },
    ],
  },
  {
    id: 'proxy-drain-after-spins',
    rule: 'pg-proxy: drainAfter, refused a pass after close(), asks again at once: it spins on microtasks (no timer fires) until its 5 s deadline (test/integration/pg-proxy-drain-after-close.test.ts)',
    patches: [{ file: 'src/pg-proxy/server.ts', find: '        if (stopped !== undefined) throw stopped;\n', replace: '' }],
  },
  {
    id: 'proxy-uncached-fill-keeps-lease',
    rule: 'pg-proxy: a point read whose answer is not cached keeps its fill lease until it expires, so every other reader of the key passes through meanwhile',
    patches: [{ file: PROXY_READ_PATH, find: '    given = ctx.cache.invalidateOlder(cacheKey, 0);\n', replace: '    given = undefined;\n' }],
  },
  {
    id: 'proxy-unshareable-fill-gives-lease-back',
    rule: 'pg-proxy: a point read refused for its table (row-level security) gives its fill lease back, so every reader of the key runs a whole fill instead of passing through (test/integration/pg-proxy-kept-fill-lease.test.ts)',
    patches: [{ file: PROXY_READ_PATH, find: '    if (!tableRefuses) giveLeaseBack(ctx, cacheKey);\n', replace: '    giveLeaseBack(ctx, cacheKey);\n' }],
  },
  {
    id: 'proxy-lease-give-back-awaited',
    rule: "pg-proxy: the give-back of a fill lease is waited for, so a slow cache delays the session's next batch (test/integration/pg-proxy-kept-fill-lease.test.ts)",
    patches: [{ file: PROXY_READ_PATH, find: '    if (!tableRefuses) giveLeaseBack(ctx, cacheKey);\n', replace: '    if (!tableRefuses) await ctx.cache.invalidateOlder(cacheKey, 0);\n' }],
  },
  {
    id: 'settle-poll-error-silent',
    rule: 'SQL stores: a poll of the settlement that could not ask the database is retried silently (no count, no warning): an operator cannot tell writes are waiting to be settled',
    patches: [{ file: 'src/store/settle-loop.ts', find: '      if (!stopped) failed(error, asked.length);\n', replace: '      void failed;\n' }],
  },
  {
    id: 'settle-poll-error-warning-unlimited',
    rule: 'SQL stores: every failed poll of the settlement warns (one a second while the database is down), flooding the log',
    patches: [{ file: 'src/store/settle-loop.ts', find: '    if (now - warnedAt < SETTLE_WARNING_EVERY_MS) return;\n', replace: '' }],
  },
  {
    id: 'settle-poll-error-after-stop',
    rule: 'SQL stores: a settlement poll in flight when the store stops fails after it closed and is counted and warned about (test/unit/settle-loop.test.ts)',
    patches: [{ file: 'src/store/settle-loop.ts', find: '      if (!stopped) failed(error, asked.length);\n', replace: '      failed(error, asked.length);\n' }],
  },
  {
    id: 'settle-first-warning-since-last',
    rule: 'SQL stores: the first warning of failed settlement polls counts them "since the last warning" when there was none (test/unit/settle-loop.test.ts)',
    patches: [{ file: 'src/store/settle-loop.ts', find: "warnedAt === -Infinity ? 'so far' : 'since the last warning'", replace: "'since the last warning'" }],
  },
  {
    id: 'entity-settle-warning-ignored',
    rule: "PostgreSQL entity store: failed settlement polls go to process.emitWarning whatever its onWarning says (test/integration/postgres-settle-poll-errors.test.ts)",
    patches: [{ file: 'src/store/entity/postgres-entity-store.ts', find: 'client.query(config)), undefined, undefined, warn);', replace: 'client.query(config)));' }],
  },
  {
    id: 'entity-settle-errors-uncounted',
    rule: "PostgreSQL entity store: its stats() leaves out its own failed settlement polls (test/integration/postgres-settle-poll-errors.test.ts)",
    patches: [{ file: 'src/store/entity/postgres-entity-store.ts', find: 'settlePollErrors: settler.pollErrors + kv.stats().settlePollErrors', replace: 'settlePollErrors: kv.stats().settlePollErrors' }],
  },
  {
    id: 'near-silent-feed-kept',
    rule: "near cache: an invalidation connection lost without a trace (no FIN, no RST) is kept, so the L1 serves nothing until the kernel gives the socket up (about 15 minutes)",
    patches: [{ file: 'src/cache/near-tracking.ts', find: '    if (why !== undefined && c === client && !closed) {', replace: '    if (false && why !== undefined && c === client && !closed) {' }],
  },
  {
    id: 'near-handshake-silence-ignored',
    rule: "near cache: a replacement invalidation connection open but silent in its handshake is kept for good (a PING on it is refused at once; connectTimeout covers the TCP connect only) (test/integration/near-cache-feed-silence.test.ts)",
    patches: [{ file: 'src/cache/near-tracking.ts', find: '      why = handshakeSince === undefined ? await unansweredPing(c) : await unfinishedHandshake(c);', replace: '      why = await unansweredPing(c);' }],
  },
  {
    id: 'near-silence-limit-short',
    rule: 'near cache: a Redis slow for seconds (a slow script) makes every process replace its invalidation connection and flush its L1 at once (test/integration/near-cache-feed-silence.test.ts)',
    patches: [{ file: 'src/cache/near-tracking.ts', find: 'export const TRACKING_SILENT_AFTER_MS = 10_000;', replace: 'export const TRACKING_SILENT_AFTER_MS = 2_000;' }],
  },
  {
    id: 'near-silence-unread-answer',
    rule: "near cache: a stall of the process as long as the silence limit, a PING's answer unread in the socket, replaces a healthy invalidation connection (test/integration/near-cache-feed-silence.test.ts)",
    patches: [{ file: 'src/cache/near-tracking.ts', find: '    if (!answered) await afterIo();\n', replace: '' }],
  },
  {
    id: 'near-reports-after-close',
    rule: "near cache: a replacement's connect() failing because the feed closed is told to onError (test/integration/near-cache-feed-silence.test.ts)",
    patches: [{ file: 'src/cache/near-tracking.ts', find: '    if (c === client && !closed) options.onError?.(error);', replace: '    if (c === client) options.onError?.(error);' }],
  },
  {
    id: 'near-replaced-connection-reports',
    rule: 'near cache: errors of an invalidation connection already replaced, or after close(), are told to onError (test/integration/near-cache-feed-silence.test.ts)',
    patches: [{ file: 'src/cache/near-tracking.ts', find: '    if (c === client && !closed) options.onError?.(error);', replace: '    options.onError?.(error);' }],
  },
  // --- pg-proxy name resolution (test/integration/pg-proxy-shadowing-table.test.ts) ---
  {
    id: 'proxy-ddl-ignores-shadowing-relation',
    rule: 'pg-proxy: a relation named like a cached table created (or its schema renamed) ahead of it in a session\'s search_path leaves the session served the cached table\'s row',
    patches: [{ file: PROXY_SCHEMA, find: '      OR EXISTS (SELECT FROM pg_catalog.pg_class r JOIN pg_catalog.pg_class cr ON cr.oid = ct.relid', replace: '      OR false AND EXISTS (SELECT FROM pg_catalog.pg_class r JOIN pg_catalog.pg_class cr ON cr.oid = ct.relid' }],
  },
  {
    id: 'proxy-ignores-schema-ddl',
    rule: 'pg-proxy: a relayed schema rename or privilege change that names no cached table (ALTER SCHEMA … RENAME, GRANT … ON ALL TABLES IN SCHEMA) leaves the cached answers',
    patches: [{ file: PROXY_CLASSIFY, find: "  if (type === 'RenameStmt') return (stmt.RenameStmt as { renameType?: unknown }).renameType === 'OBJECT_SCHEMA';", replace: "  if (type === 'RenameStmt') return false;" }],
  },
  // --- pg-proxy unnamed statement behind a hit (test/integration/pg-proxy-unnamed-skipped-parse.test.ts) ---
  {
    id: 'proxy-trusts-skipped-unnamed-parse',
    rule: 'pg-proxy: after a hit, a Parse "" behind a failing message (skipped by PostgreSQL) is taken as run: the upstream keeps its older unnamed statement, and the client\'s next Bind "" runs it (an UPDATE for a SELECT)',
    patches: [{ file: PROXY_RELAY, find: "    if (m.type === 'P' && readCString(m.body, 0).value === '') return i > 0;", replace: "    if (m.type === 'P' && readCString(m.body, 0).value === '') return false;" }],
  },
  {
    id: 'proxy-trusts-skipped-unnamed-close',
    rule: 'pg-proxy: after a hit, a Close of the unnamed statement behind a failing message (skipped by PostgreSQL) is taken as run: the client\'s next Bind "" runs the upstream\'s older statement',
    patches: [{ file: PROXY_RELAY, find: "    if (m.type === 'C' && m.body[0] === 0x53 && readCString(m.body, 1).value === '') return i > 0; // Close, likewise", replace: '' }],
  },
  {
    id: 'proxy-ignores-alias-column-names',
    rule: 'pg-proxy: `FROM items AS t(val, id) WHERE id = $1` is taken as a read by key, though id names the val column there: the answer is cached under a key whose writes do not invalidate it',
    patches: [{ file: PROXY_CLASSIFY, find: '  if (aliasNode?.colnames !== undefined) return undefined;', replace: '' }],
  },
  {
    id: 'proxy-cursor-follows-announcements',
    rule: 'pg-proxy: announced rows move the journal cursor, so a forged announcement (RAISE NOTICE with the proxy\'s SQLSTATE) makes the next fence statement skip the session\'s own writes',
    patches: [{ file: PROXY_SESSION_FENCE, find: '  return applyFence(state, rows, false);', replace: '  return applyFence(state, rows, true);' }],
  },
  {
    id: 'proxy-batch-template-prefix-only',
    rule: 'pg-proxy: a batch is planned from the last point read\'s template when only the bytes before the key value match: a different Execute row limit or result format is served the other request\'s cached answer',
    patches: [{ file: 'src/pg-proxy/batch.ts', find: ' || bytes.compare(t.bytes, t.valueEnd, length, t.valueEnd, length) !== 0) return undefined;', replace: ') return undefined;' }],
  },
  // --- pg-proxy TLS (test/integration/pg-proxy-tls.test.ts) ---
  {
    id: 'proxy-upstream-failure-silent',
    rule: 'pg-proxy: a session whose upstream connection fails (a TLS refusal, a bad certificate) is closed without telling the client why',
    patches: [{ file: PROXY_SESSION, find: "    client.end(build.error('FATAL', '08006', `lockstep proxy: could not connect to PostgreSQL: ${String(reason)}`));", replace: '    client.destroy();' }],
  },
  {
    id: 'proxy-tls-sslrequest-unbounded',
    rule: 'pg-proxy: an upstream that accepts the connection but never answers the SSLRequest holds the session for ever',
    patches: [{ file: 'src/pg-proxy/upstream-tls.ts', find: "    const timer = setTimeout(() => done(new UpstreamTlsError(`the upstream did not answer SSLRequest within ${UPSTREAM_CONNECT_MS} ms`)), UPSTREAM_CONNECT_MS);", replace: '    const timer = undefined;' }],
  },
  {
    id: 'proxy-tls-handshake-unbounded',
    rule: "pg-proxy: an upstream that answers 'S' and then never the ClientHello holds the session for ever",
    patches: [{ file: 'src/pg-proxy/upstream-tls.ts', find: "    const timer = setTimeout(() => secure.destroy(new UpstreamTlsError(`the upstream's TLS handshake did not finish within ${UPSTREAM_CONNECT_MS} ms`)), UPSTREAM_CONNECT_MS);", replace: '    const timer = undefined;' }],
  },
  {
    id: 'proxy-tls-takes-injected-bytes',
    rule: 'pg-proxy: bytes sent unencrypted behind an SSLRequest are kept and read as the session\'s first message after the handshake (CVE-2021-23214)',
    patches: [{ file: PROXY_SESSION, find: "          if (found.rest.length > 0) throw new Error('unencrypted data after SSLRequest');", replace: '' }],
  },
  {
    id: 'proxy-tls-not-required',
    rule: 'pg-proxy: --tls-required lets a session that did not negotiate TLS in',
    patches: [{ file: PROXY_SESSION, find: 'if (ctx.clientTls?.required === true && !(socket instanceof TLSSocket)) {', replace: 'if (ctx.clientTls?.required === true && false) {' }],
  },
  {
    id: 'proxy-tls-verify-full-skips-host',
    rule: 'pg-proxy: sslmode=verify-full accepts a certificate issued for another host name',
    patches: [{ file: 'src/pg-proxy/upstream-tls.ts', find: "    ...(mode === 'verify-full' ? {} : { checkServerIdentity: () => undefined }),", replace: '    checkServerIdentity: () => undefined,' }],
  },
  {
    id: 'proxy-tls-offers-channel-binding-in-plain',
    rule: 'pg-proxy: a client on a plain connection is offered SCRAM-SHA-256-PLUS, which libpq refuses (no SCRAM login through a TLS upstream)',
    patches: [{ file: PROXY_SESSION, find: "toClient(state, m.type === 'R' && !(client.socket instanceof TLSSocket) ? withoutChannelBinding(m.raw) : m.raw);", replace: 'toClient(state, m.raw);' }],
  },
  {
    id: 'proxy-tls-hides-channel-binding',
    rule: 'pg-proxy: a client on TLS is not offered SCRAM-SHA-256-PLUS, so libpq, which supports it, is refused as a downgrade even where binding would hold',
    patches: [{ file: PROXY_SESSION, find: "toClient(state, m.type === 'R' && !(client.socket instanceof TLSSocket) ? withoutChannelBinding(m.raw) : m.raw);", replace: "toClient(state, m.type === 'R' ? withoutChannelBinding(m.raw) : m.raw);" }],
  },
  {
    id: 'proxy-tls-url-first-sslmode',
    rule: 'pg-proxy: an upstream URL with sslmode twice runs with the first (sslmode=disable&sslmode=require unencrypted), where libpq takes the last',
    patches: [{ file: 'src/pg-proxy/upstream-tls.ts', find: '    if (params.getAll(name).length > 1) throw', replace: '    if (false) throw' }],
  },
  {
    id: 'proxy-tls-url-ignores-upper-case',
    rule: 'pg-proxy: SSLMODE=require in the upstream URL is ignored and the proxy runs unencrypted (libpq refuses the parameter)',
    patches: [{ file: 'src/pg-proxy/upstream-tls.ts', find: '    if (name !== lower) throw', replace: '    if (false) throw' }],
  },
  {
    id: 'proxy-tls-require-falls-back',
    rule: "pg-proxy: under sslmode=require a session whose upstream answers 'N' (a man in the middle) goes on unencrypted",
    patches: [{ file: 'src/pg-proxy/upstream-tls.ts', find: "    if (tls.mode === 'prefer') return socket;", replace: '    return socket;' }],
  },
  {
    id: 'proxy-tls-upstream-takes-extra-bytes',
    rule: "pg-proxy: bytes behind the upstream's 'S' (before the handshake) are dropped instead of refused (CVE-2021-23222 class)",
    patches: [{ file: 'src/pg-proxy/upstream-tls.ts', find: "      if (chunk.length !== 1) return done(", replace: '      if (chunk.length === 0) return done(' }],
  },
  {
    id: 'proxy-tls-require-ignores-rootcert',
    rule: 'pg-proxy: sessions under sslmode=require with sslrootcert (and verify-ca) accept a certificate from any CA',
    patches: [{ file: 'src/pg-proxy/upstream-tls.ts', find: '    rejectUnauthorized: ca !== undefined,', replace: '    rejectUnauthorized: false,' }],
  },
  {
    id: 'proxy-tls-pipe-offers-channel-binding',
    rule: 'pg-proxy: a plain client piped to another database through a TLS upstream is offered SCRAM-SHA-256-PLUS, which libpq refuses',
    patches: [{ file: PROXY_SESSION, find: '      if (socket instanceof TLSSocket) upstreamSocket.pipe(toClient);', replace: '      if (true) upstreamSocket.pipe(toClient);' }],
  },
  {
    id: 'proxy-tls-session-presents-proxy-cert',
    rule: "pg-proxy: a session's upstream connection presents the proxy's own client certificate (sslcert/sslkey), so any client logs in as its user under cert authentication",
    patches: [{ file: 'src/pg-proxy/upstream-tls.ts', find: '    const secure = tlsConnect({ ...tls.session, socket });', replace: "    const secure = tlsConnect({ ...tls.forProxy, ...('key' in tls.forProxy ? { key: tls.forProxy.key } : {}), socket });" }],
  },
  {
    id: 'proxy-serves-behind-drainer',
    rule: 'pg-proxy: cached answers are served while the bypass drainer hangs, so a write that bypassed the proxy stays hidden past the bound',
    patches: [{ file: PROXY_READ_PATH, find: "  if (!bypassCovered(ctx)) return 'drainer-behind';", replace: "  if (!bypassCovered(ctx) && ctx.fence === 'skip') return 'drainer-behind';" }],
  },
  {
    id: 'proxy-flush-batch-strands-queued',
    rule: "pg-proxy: the client's messages queued behind a Flush-ended batch (its Sync in the same chunk) are not sent up: the session waits forever",
    patches: [{ file: 'src/pg-proxy/relay.ts', find: '  if (raw) handOver(client);', replace: '  if (raw && false) handOver(client);' }],
  },
  {
    id: 'proxy-copy-data-before-copyin-stranded',
    rule: 'pg-proxy: COPY data the client sent right behind its COPY (before CopyInResponse) stays queued: the session waits forever',
    patches: [{ file: 'src/pg-proxy/relay.ts', find: '        handOver(client); // COPY data', replace: '        void handOver; // COPY data' }],
  },
  {
    id: 'proxy-flush-batch-unnamed-stale',
    rule: "pg-proxy: after a hit answered Parse \"\", the messages behind a Flush-ended batch use the server's other unnamed statement (another statement runs)",
    patches: [{ file: 'src/pg-proxy/relay.ts', find: '(raw || usesUnnamedFirst(batch))', replace: '(usesUnnamedFirst(batch))' }],
  },
  {
    id: 'proxy-unnamed-recreate-async-first',
    rule: "pg-proxy: a notification that arrives before the re-created unnamed statement's ParseComplete ends the wait for it, so the client gets a ParseComplete it never asked for",
    patches: [{ file: 'src/pg-proxy/relay.ts', find: '      if (!isAsync(m)) swallowParseComplete = 0;', replace: '      swallowParseComplete = 0; void isAsync;' }],
  },
  {
    id: 'proxy-framing-quadratic',
    rule: 'pg-proxy: a message received in many chunks is joined again at every chunk (quadratic copying of long messages)',
    patches: [{ file: 'src/pg-proxy/framing.ts', find: '    if (this.buffer.length >= 5) {', replace: '    if (this.buffer.length < 0) {' }],
  },
  // --- bounds: what a client that sends and does not read (or a backend that does not) can cost ---
  {
    id: 'proxy-answers-ignore-slow-client',
    rule: 'pg-proxy: answers relayed to a client that does not read do not stop the proxy reading PostgreSQL (a large result is buffered whole)',
    patches: [{ file: 'src/pg-proxy/backpressure.ts', find: '  if (!state.client.socket.write(bytes) && state.upstream.holdFor(state.client.socket)) state.ctx.metrics.backpressureWaits.client++;', replace: '  state.client.socket.write(bytes);' }],
  },
  {
    id: 'proxy-copy-ignores-slow-upstream',
    rule: 'pg-proxy: client data relayed to a PostgreSQL that does not read it (COPY) does not stop the proxy reading the client',
    patches: [{ file: 'src/pg-proxy/backpressure.ts', find: '  if (!state.upstream.socket.write(bytes) && state.client.holdFor(state.upstream.socket)) state.ctx.metrics.backpressureWaits.upstream++;', replace: '  state.upstream.socket.write(bytes);' }],
  },
  {
    id: 'proxy-hold-released-by-next',
    rule: "pg-proxy: taking a queued message resumes reading a socket held back for its peer's sake",
    patches: [{ file: 'src/pg-proxy/message-queue.ts', find: '    if (!this.held && this.queue.length < 1_000', replace: '    if (this.queue.length < 1_000' }],
  },
  {
    id: 'proxy-hits-ignore-slow-client',
    rule: 'pg-proxy: cached answers keep going to a pipelining client that does not read them',
    patches: [{ file: 'src/pg-proxy/session-loop.ts', find: '    if (state.client.socket.writableNeedDrain) {', replace: '    if (state.client.socket.writableNeedDrain && false) {' }],
  },
  {
    id: 'proxy-queue-bytes-unbounded',
    rule: "pg-proxy: a session's queue of received messages is bounded in count only (10,000 messages of any size)",
    patches: [{ file: 'src/pg-proxy/message-queue.ts', find: 'if (this.queue.length > MAX_QUEUED_MESSAGES || this.queuedBytes > MAX_QUEUED_BYTES) this.socket.pause();', replace: 'if (this.queue.length > MAX_QUEUED_MESSAGES) this.socket.pause();' }],
  },
  {
    id: 'proxy-batch-bytes-unbounded',
    rule: 'pg-proxy: a batch is held until its Sync however many bytes it reaches (100,000 messages of any size)',
    patches: [{ file: 'src/pg-proxy/session-loop.ts', find: ' || batch.bytes >= MAX_BATCH_BYTES);', replace: ');' }],
  },
  {
    id: 'proxy-unauthenticated-message-unbounded',
    rule: 'pg-proxy: a client not yet authenticated may send a message up to the 256 MB limit of a session, read whole',
    patches: [{ file: PROXY_SESSION, find: "    const client = new MessageQueue(socket, 'client', rest, MAX_UNAUTHENTICATED_MESSAGE_BYTES);", replace: "    const client = new MessageQueue(socket, 'client', rest, MAX_MESSAGE_BYTES);" }],
  },
  {
    id: 'proxy-session-setup-outlives-client',
    rule: 'pg-proxy: a client that leaves while PostgreSQL is slow to answer its startup leaves its upstream connection (and then a backend) behind',
    patches: [{ file: PROXY_SESSION, find: "    socket.once('close', leave);", replace: '' }],
  },
  {
    id: 'proxy-close-leaves-stuck-upstream',
    rule: "pg-proxy: close() leaves the upstream connection of a session stuck in a long statement open until the statement ends",
    patches: [{ file: 'src/pg-proxy/server.ts', find: '      for (const state of sessions) state.upstream.socket.destroy();', replace: '' }],
  },
  {
    id: 'resp-reply-budget-unbounded',
    rule: "RESP front: replies held across connections are not counted, so clients that ask for large replies and never read hold memory without a bound",
    patches: [{ file: 'src/service/reply-budget.ts', find: '    if (this.heldBytes + bytes > this.limit) return false;\n', replace: '' }],
  },
  {
    id: 'resp-reply-budget-kept-after-close',
    rule: "RESP front: a connection closed with its reply unsent keeps its share of the reply budget, which leaks until the front refuses every large reply",
    patches: [{ file: 'src/resp/connection.ts', find: '    front.replies.give(heldInOut + heldInSocket);\n', replace: '' }],
  },
  {
    id: 'mysql-first-ddl-denied-raw',
    rule: "MariaDB store: a least-privilege user on an empty database gets the server's raw access error instead of an error naming the privileges the schema's creation needs",
    patches: [{ file: MYSQL_STORE, find: "            throw deniedDdl(error, s, 'must be created once, which this user may not do');", replace: '            throw error;' }],
  },
  {
    id: 'entity-sqlite-replace-notes-per-entity',
    rule: "SQLite entity store: REPLACE's notes are cleared per entity, so a statement the write sets off on the same table (a foreign key's SET NULL changing another row's unique key) clears them before the replaced row is buried",
    patches: [
      {
        file: 'src/store/entity/sqlite-replaced-rows.ts',
        find: "  const mine = (r: string) => `${r}.entity = '${entity}' AND ${r}.by_key = CAST(NEW.${i} AS TEXT)`;",
        replace: "  const mine = (r: string) => `${r}.entity = '${entity}'`;",
      },
    ],
  },
  {
    id: 'resp-query-budget-unbounded',
    rule: 'RESP front: unread request bytes are bounded per connection only, so many connections that each send most of a large command hold memory without a total bound',
    patches: [{ file: 'src/resp/query-budget.ts', find: '    while (this.total > this.limit) {', replace: '    while (this.total > this.limit && this.limit < 0) {' }],
  },
  {
    id: 'resp-evicted-keeps-running',
    rule: 'RESP front: a connection evicted over the total query budget keeps running the commands it had already sent (writes included), after it was told it was evicted',
    patches: [
      { file: 'src/resp/connection.ts', find: '      while (!socket.destroyed && !draining && !broken) {', replace: '      while (!socket.destroyed && !draining) {' },
      { file: 'src/resp/connection.ts', find: '      parser.discard();\n', replace: '' },
    ],
  },
  {
    id: 'resp-query-budget-kept-after-close',
    rule: 'RESP front: a connection that closes with a partial command keeps its share of the query budget, which leaks until the front evicts every client',
    patches: [{ file: 'src/resp/connection.ts', find: "  socket.once('close', () => front.queries.release(queries));\n", replace: '' }],
  },
  {
    id: 'proxy-cancel-lingers',
    rule: 'pg-proxy: a relayed CancelRequest waits for PostgreSQL to close its connection, so a stopped PostgreSQL holds one socket per cancel until it runs again',
    patches: [{ file: 'src/pg-proxy/cancel.ts', find: 'const timer = setTimeout(() => socket.destroy(), CANCEL_LINGER_MS);', replace: 'const timer = setTimeout(() => undefined, CANCEL_LINGER_MS);' }],
  },
  {
    id: 'proxy-query-behind-password-unfenced',
    rule: "pg-proxy: a query sent right behind the password is relayed as part of the authentication, so a write it makes is acknowledged without the fence",
    patches: [{ file: PROXY_SESSION, find: "    if (m.type !== 'p' || client.pending > 0) return false;\n", replace: '' }],
  },
  {
    id: 'resp-mget-reads-on-after-failure',
    rule: 'RESP front: an MGET whose read failed answers the error while its other workers read every remaining key in the background',
    // Both stops: a worker also returns when its read ends after the failure (the reply budget's rule).
    patches: [
      { file: 'src/resp/commands/keyspace.ts', find: '    while (!failed && next < keys.length && bytes <= limit) {', replace: '    while (next < keys.length && bytes <= limit) {' },
      { file: 'src/resp/commands/keyspace.ts', find: '        if (failed) return;\n', replace: '' },
    ],
  },
  {
    id: 'resp-mget-late-read-holds-budget',
    rule: "RESP front: a read of an MGET that ends after another read failed it takes its value's bytes from the reply budget, never given back once the client left",
    patches: [{ file: 'src/resp/commands/keyspace.ts', find: '        if (failed) return;\n', replace: '' }],
  },
  {
    id: 'resp-purge-per-read',
    rule: 'RESP front: every read of an expired key starts its own store delete, so GETs pipelined against a stalled store pile deletes up without bound',
    patches: [{ file: 'src/resp/purges.ts', find: 'if (this.inFlight.has(id) || this.inFlight.size >= this.limit) return;', replace: 'if (this.inFlight.size >= this.limit) return;' }],
  },
  {
    id: 'resp-purges-unbounded',
    rule: 'RESP front: the deletes of expired rows that reads start have no cap per front: reads of many expired keys against a stalled store pile them up',
    patches: [{ file: 'src/resp/purges.ts', find: 'if (this.inFlight.has(id) || this.inFlight.size >= this.limit) return;', replace: 'if (this.inFlight.has(id)) return;' }],
  },
  {
    id: 'resp-listen-weak-token',
    rule: 'RESP front: listenResp() on a non-loopback address accepts a weak plain token (the HTTP listen() and the CLI refuse it)',
    patches: [{ file: 'src/resp/server.ts', find: 'assertListenAllowed(resolved.host, resolved.principals.length > 0, options.token);', replace: 'assertListenAllowed(resolved.host, resolved.principals.length > 0);' }],
  },
  {
    id: 'resp-multi-error-only',
    rule: 'RESP front: MULTI answers an error and nothing more, so the commands a client pipelined after it run one by one while its library reports the transaction failed',
    patches: [{ file: 'src/resp/refused-multi.ts', find: '      session.inRefusedMulti = true;\n', replace: '' }],
  },
  {
    id: 'resp-multi-answers-error',
    rule: 'RESP front: a refused MULTI answers an error yet refuses what follows until EXEC or DISCARD, so a client that sent MULTI alone and saw it fail (it will send no EXEC) is refused every command for good',
    patches: [{ file: 'src/resp/refused-multi.ts', find: '      session.inRefusedMulti = true;\n      return OK;', replace: "      session.inRefusedMulti = true;\n      throw new CommandError('ERR MULTI is not supported');" }],
  },
  {
    id: 'resp-multi-before-auth',
    rule: 'RESP front: MULTI, EXEC and DISCARD are answered before the AUTH rule, so an unauthenticated client starts a refused MULTI and gets replies other than NOAUTH',
    patches: [
      { file: 'src/resp/commands/table.ts', find: '  const transaction = refusedMultiReply(ctx.session, name);\n  if (transaction !== undefined) return transaction;\n', replace: '' },
      { file: 'src/resp/commands/table.ts', find: '  const spec = COMMANDS.get(name);\n', replace: '  const early = refusedMultiReply(ctx.session, name);\n  if (early !== undefined) return early;\n  const spec = COMMANDS.get(name);\n' },
    ],
  },
  {
    id: 'resp-multikey-keys-checked-late',
    rule: 'RESP front: DEL checks each key against the key rule only when its turn comes, so DEL of a good key and a key too long deletes the first and answers an error (half applied)',
    patches: [{ file: 'src/resp/commands/targets.ts', find: '    validateKey(mapped.key, ctx.service.maxKeyBytes, mapped.namespace);\n', replace: '' }],
  },
  {
    id: 'resp-select-other-db-keeps-connection',
    rule: "RESP front: SELECT of another database is refused but the connection stays open, so ioredis with `db: 1` (which reports the refusal as an event) writes into the one shared keyspace",
    patches: [{ file: 'src/resp/commands/connection.ts', find: '    ctx.session.closing = true;\n    throw new CommandError(\'ERR DB index is out of range', replace: "    throw new CommandError('ERR DB index is out of range" }],
  },
  {
    id: 'resp-multi-throttled',
    rule: 'RESP front: MULTI and the commands inside a refused MULTI are rate limited, so a throttled EXEC leaves a limited client refused for good (and a throttled MULTI starts no refusal)',
    patches: [{ file: 'src/resp/connection.ts', find: 'let reply = runsNothing(session, commandName(args)) ? undefined : front.throttle(', replace: 'let reply = (false as boolean) && runsNothing(session, commandName(args)) ? undefined : front.throttle(' }],
  },
  {
    id: 'resp-multikey-engines-up-front',
    rule: "RESP front: MGET makes every key's namespace engine before the first read, so one MGET of 4,000 new namespaces puts 4,000 engines in the pool at once and holds them until it answers",
    patches: [{ file: 'src/resp/commands/keyspace.ts', find: "  const keys = args.slice(1).map((raw) => authorizedKey(ctx, raw, 'read'));\n  const values", replace: "  const keys = args.slice(1).map((raw) => target(ctx, raw, 'read'));\n  const values" }],
  },
  {
    id: 'http-pipelined-all-at-once',
    rule: "REST service: a connection's pipelined requests all run at once, so a client that does not read gets every answer built in memory",
    patches: [{ file: 'src/http/server.ts', find: 'oneAtATime(listener, idleTimeoutMs))) as never', replace: '(false as boolean) ? oneAtATime(listener, idleTimeoutMs) : listener)) as never' }],
  },
  {
    id: 'http-idle-connection-kept',
    rule: 'REST service: a connection whose client stopped reading a complete answer is kept for ever',
    patches: [{ file: 'src/http/server.ts', find: "        res.once('prefinish', () => socket.setTimeout(idleTimeoutMs)); // the answer is complete: now the client must take it", replace: '' }],
  },
  // --- the REST service's answer budget (maxTotalAnswerBytes) ---
  // Killed by test/integration/http-answer-budget.test.ts.
  {
    id: 'http-answer-budget-unbounded',
    rule: 'REST service: answers held across connections are not bounded, so clients that ask for large values and never read hold (connections x answer size) bytes',
    patches: [{ file: 'src/http/app.ts', find: 'const answers = new ReplyBudget(resolved.maxTotalAnswerBytes);', replace: 'const answers = new ReplyBudget(Number.POSITIVE_INFINITY);' }],
  },
  {
    id: 'http-answer-budget-kept-after-close',
    rule: "REST service: an answer whose connection closed before the answer was handed to it (the client left during the read) keeps its share of the answer budget for ever: no 'finish' or 'close' will come, and the leak grows until every large answer is refused",
    patches: [{ file: 'src/http/answer-budget.ts', find: 'if (res === undefined || res.destroyed || res.writableFinished) {', replace: 'if (res === undefined) {' }],
  },
  {
    id: 'http-answer-budget-given-before-sent',
    rule: "REST service: an answer's bytes are given back when the response is complete ('prefinish'), not once the kernel has them ('finish'), so clients that never read hold answers beyond the budget",
    patches: [{ file: 'src/http/answer-budget.ts', find: "  res.once('finish', giveBack);", replace: "  res.once('prefinish', giveBack);" }],
  },
  // --- the REST service's body budget (maxTotalBodyBytes) and request deadline ---
  // Killed by test/integration/http-body-budget.test.ts.
  {
    id: 'http-body-budget-unbounded',
    rule: 'REST service: request bodies being read are not bounded across connections, so clients that upload bodies just under bodyLimitBytes, slowly, hold (connections x bodyLimitBytes) bytes',
    patches: [{ file: 'src/http/app.ts', find: 'const bodies = new ReplyBudget(resolved.maxTotalBodyBytes);', replace: 'const bodies = new ReplyBudget(Number.POSITIVE_INFINITY);' }],
  },
  {
    id: 'http-body-budget-kept-after-request',
    rule: "REST service: a request body's share of the body budget is never given back (answered, refused, or the client left mid-body), so the budget leaks until every upload is refused",
    patches: [{ file: 'src/http/body-budget.ts', find: '      budget.give(taken);', replace: '' }],
  },
  {
    id: 'http-body-chunks-uncounted',
    rule: 'REST service: a chunked body is not counted against the body budget (only a Content-Length is), so chunked uploads escape it',
    patches: [{ file: 'src/http/body-budget.ts', find: '        if (!budget.take(value.length)) throw bodiesBusy(budget.limit);\n        taken += value.length;', replace: '' }],
  },
  {
    id: 'http-request-deadline-unset',
    rule: "REST service: listen() does not set the request deadline (requestTimeoutMs), so a body trickled in holds its connection and its share of the body budget for Node's default 5 minutes whatever the option says",
    patches: [{ file: 'src/http/server.ts', find: 'createServer({ ...serverOptions, ...requestDeadlines(requestTimeoutMs) }, ', replace: 'createServer(serverOptions, ' }],
  },
  {
    id: 'http-connections-uncapped',
    rule: 'REST service: open connections are not capped',
    patches: [{ file: 'src/http/server.ts', find: '  server.maxConnections = maxConnections;', replace: '' }],
  },
  // --- the PostgreSQL store's bypass UPDATE trigger (schema 5: versioned after the fact) ---
  // Killed by test/integration/postgres-store.test.ts ('plain-SQL writes the triggers must catch').
  {
    id: 'pg-bypass-update-unversioned',
    rule: "PostgreSQL store: the bypass UPDATE trigger's second UPDATE does not set the version (a plain UPDATE keeps or sets any version it likes)",
    patches: [{ file: PG_SCHEMA, find: 'UPDATE ${kv} kv SET version = v, writer = OLD.writer,', replace: 'UPDATE ${kv} kv SET writer = OLD.writer,' }],
  },
  {
    id: 'pg-bypass-update-unjournaled',
    rule: 'PostgreSQL store: a plain UPDATE (not a rename) is versioned but appends no journal row, so no cache learns of it',
    patches: [
      {
        file: PG_SCHEMA,
        find: "  ELSE\n    ${appendJournal('NEW.namespace', 'NEW.key', 'v', 'trigger')};\n  END IF;\n  RETURN NULL;\nEND $fn$;`;",
        replace: '  ELSE\n    NULL;\n  END IF;\n  RETURN NULL;\nEND $fn$;`;',
      },
    ],
  },
  {
    id: 'pg-bypass-update-from-new-version',
    rule: "PostgreSQL store: a plain UPDATE gets 1 + the version the statement set (SET version = 1 goes back), not 1 + the row's old version",
    patches: [{ file: PG_SCHEMA, find: '  v bigint := 1 + coalesce(OLD.version, 0);', replace: '  v bigint := 1 + coalesce(NEW.version, 0);' }],
  },
  {
    id: 'pg-bypass-rename-below-tombstone',
    rule: "PostgreSQL store: a plain UPDATE that renames a row onto a deleted key keeps 1 + the row's version, below the key's tombstone",
    patches: [{ file: PG_SCHEMA, find: '    IF t >= v THEN\n      v := t + 1;\n    END IF;', replace: '    IF t >= v THEN\n      NULL;\n    END IF;' }],
  },
  {
    id: 'pg-bypass-update-leaves-token',
    rule: "PostgreSQL store: the bypass trigger's versioning UPDATE leaves a writer token of the plain transaction in the row (so its own UPDATE needs no mark), which a stale full-row write-back in that transaction then passes off as Lockstep's",
    patches: [
      {
        file: PG_SCHEMA,
        find: 'UPDATE ${kv} kv SET version = v, writer = OLD.writer,',
        replace: "UPDATE ${kv} kv SET version = v, writer = ${fixup('kv.writer')},",
      },
    ],
  },
  // Schema 6: plain SQL in REPEATABLE READ / SERIALIZABLE (test/integration/postgres-bypass-isolation.test.ts).
  {
    id: 'pg-bypass-insert-unseen-tombstone',
    rule: 'PostgreSQL store: a plain INSERT in a REPEATABLE READ transaction re-creates a key at or below a delete committed after its snapshot (the tombstone it cannot see is not refused)',
    patches: [
      {
        file: PG_SCHEMA,
        find: "  ${refuseUnseenTombstone('NEW.namespace', 'NEW.key')}\n  DELETE FROM ${tomb}",
        replace: '  DELETE FROM ${tomb}',
      },
    ],
  },
  {
    id: 'pg-bypass-rename-unseen-tombstone',
    rule: 'PostgreSQL store: a plain rename in a REPEATABLE READ transaction lands at or below a delete of the new key committed after its snapshot',
    patches: [
      {
        file: PG_SCHEMA,
        find: "    ${refuseUnseenTombstone('NEW.namespace', 'NEW.key')}\n    DELETE FROM ${tomb}",
        replace: '    DELETE FROM ${tomb}',
      },
    ],
  },
  {
    id: 'pg-bypass-truncate-any-isolation',
    rule: 'PostgreSQL store: TRUNCATE in a REPEATABLE READ transaction removes rows committed after its snapshot without tombstoning or journaling them',
    patches: [
      {
        file: PG_SCHEMA,
        find: "  IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN\n    RAISE EXCEPTION USING ERRCODE = '0A000'",
        replace: "  IF false THEN\n    RAISE EXCEPTION USING ERRCODE = '0A000'",
      },
    ],
  },
  {
    id: 'pg-bypass-insert-lift-leaves-token',
    rule: "PostgreSQL store: the bypass INSERT trigger lifts a re-created key above its tombstone by setting a writer token of the plain transaction, which a later copy of the row's writer (same transaction) passes off as Lockstep's: not versioned, not journaled",
    patches: [
      {
        file: PG_SCHEMA,
        find: '    UPDATE ${kv} kv SET version = v WHERE kv.namespace = NEW.namespace AND kv.key = NEW.key;',
        replace: "    UPDATE ${kv} kv SET version = v, writer = ${fixup('kv.writer')} WHERE kv.namespace = NEW.namespace AND kv.key = NEW.key;",
      },
    ],
  },
  {
    id: 'pg-bypass-mark-at-top-level',
    rule: "PostgreSQL store: the bypass UPDATE trigger honors its mark at the first trigger level too, so plain SQL that set the mark itself (a copied snippet, a session-level SET) has its UPDATE skipped: not versioned, not journaled",
    patches: [{ file: PG_SCHEMA, find: '  IF pg_catalog.pg_trigger_depth() > 1 AND pg_catalog.current_setting(', replace: '  IF pg_catalog.current_setting(' }],
  },
  // The entity store's triggers, same cases (test/integration/entity-bypass-isolation.test.ts).
  {
    id: 'entity-bypass-insert-unseen-tombstone',
    rule: 'PostgreSQL entity store: a plain INSERT in a REPEATABLE READ transaction re-creates an id at or below a delete committed after its snapshot',
    patches: [
      {
        file: 'src/store/entity/postgres-entity-schema.ts',
        find: "BEGIN\n  ${refuseUnseenTombstone(idOf('NEW'))}\n  DELETE FROM ${tomb}",
        replace: 'BEGIN\n  DELETE FROM ${tomb}',
      },
    ],
  },
  {
    id: 'entity-bypass-rename-unseen-tombstone',
    rule: 'PostgreSQL entity store: a plain rename in a REPEATABLE READ transaction lands at or below a delete of the new id committed after its snapshot',
    patches: [
      {
        file: 'src/store/entity/postgres-entity-schema.ts',
        find: "    ${refuseUnseenTombstone(idOf('NEW'))}\n    DELETE FROM ${tomb}",
        replace: '    DELETE FROM ${tomb}',
      },
    ],
  },
  {
    id: 'entity-bypass-truncate-any-isolation',
    rule: 'PostgreSQL entity store: TRUNCATE in a REPEATABLE READ transaction removes rows committed after its snapshot without tombstoning or journaling them',
    patches: [
      {
        file: 'src/store/entity/postgres-entity-schema.ts',
        find: "  IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN\n    RAISE EXCEPTION",
        replace: '  IF false THEN\n    RAISE EXCEPTION',
      },
    ],
  },
  {
    id: 'pg-bypass-mark-any-depth',
    rule: "PostgreSQL store: the bypass trigger's mark does not name its trigger depth, so a plain UPDATE of the same row by another application's trigger, run from inside the versioning UPDATE, is taken for it and skipped",
    patches: [
      { file: PG_SCHEMA, find: "${versioningMark('pg_catalog.pg_trigger_depth() - 1', 'NEW.version')}", replace: "${versioningMark('0', 'NEW.version')}" },
      {
        file: PG_SCHEMA,
        find: "${versioningMark('pg_catalog.pg_trigger_depth()', 'v')}, true);\n  UPDATE ${kv} kv SET version = v, writer = OLD.writer",
        replace: "${versioningMark('0', 'v')}, true);\n  UPDATE ${kv} kv SET version = v, writer = OLD.writer",
      },
    ],
  },
  {
    id: 'pg-bypass-update-when-any-writer',
    rule: "PostgreSQL store: an UPDATE that changes the writer column to anything counts as Lockstep's (no token check), so a plain UPDATE that sets it is neither versioned nor journaled",
    patches: [
      {
        file: PG_SCHEMA,
        find: 'const oursUpdate = `NEW.writer IS DISTINCT FROM OLD.writer AND pg_catalog.starts_with(NEW.writer, ${token})`;',
        replace: 'const oursUpdate = `NEW.writer IS DISTINCT FROM OLD.writer`;',
      },
    ],
  },
  // --- robustness: a dying connection fails an operation, never the process ---
  {
    id: 'pg-new-connection-unlistened',
    rule: "PostgreSQL stores: a new pool connection has no 'error' listener until the caller's code runs, so a backend terminated as it starts crashes the process",
    patches: [{ file: PG_CONNECTION_ERRORS, find: "if (typeof pool.on !== 'function' || listened.has(pool)) return;", replace: 'return;' }],
  },
  {
    id: 'pg-checked-out-connection-unlistened',
    rule: "PostgreSQL entity helpers: a connection the pool opened before Lockstep subscribed to its 'connect' event has no 'error' listener while checked out, so a backend terminated during a DDL lock wait crashes the process",
    patches: [{ file: PG_CONNECTION_ERRORS, find: '  if (!quiet.has(client)) {', replace: '  if (quiet.has(client) && !quiet.has(client)) {' }],
  },
  {
    id: 'late-fence-sync-throw',
    rule: 'a late commit is fenced from a promise callback: a store that throws at once (a closed entity store) becomes an unhandled rejection that ends the process',
    patches: [
      {
        file: WRITE_PATH,
        find: "    .then(() => ctx.store.appendJournal(ctx.namespace, step.key, version, 'repair'))\n    .catch(() => undefined);",
        replace: "    .then(() => undefined);\n  void ctx.store.appendJournal(ctx.namespace, step.key, version, 'repair').catch(() => undefined);",
      },
    ],
  },
  // --- the MariaDB store: plain SQL that bypasses Lockstep ---
  {
    id: 'mysql-truncate-unguarded',
    rule: 'MariaDB store: the guard table has no foreign keys, so TRUNCATE of lockstep_kv, lockstep_tombstones or lockstep_journal goes through (rows removed without tombstones or journal rows, deletes or invalidations lost)',
    patches: [
      {
        file: MYSQL_SCHEMA,
        find: "      CONSTRAINT ${constraint('kv')} FOREIGN KEY (kv_namespace, kv_key) REFERENCES ${KV} (namespace, \\`key\\`),\n      CONSTRAINT ${constraint('tombstones')} FOREIGN KEY (tombstone_namespace, tombstone_key) REFERENCES ${T} (namespace, \\`key\\`),\n      CONSTRAINT ${constraint('journal')} FOREIGN KEY (journal_id) REFERENCES ${J} (id)\n",
        replace: "      KEY ${constraint('kv')} (kv_namespace)\n",
      },
    ],
  },
  {
    id: 'mysql-package-recreated',
    rule: "MariaDB store: a store that opens while the triggers' version is not recorded re-creates the package (CREATE OR REPLACE PACKAGE drops its body), so calls of the package from other processes fail until the body is back",
    patches: [
      { file: MYSQL_SCHEMA, find: '    `CREATE PACKAGE IF NOT EXISTS ${P} AS', replace: '    `CREATE OR REPLACE PACKAGE ${P} AS' },
      { file: MYSQL_STORE, find: '    if (state.current) return true;\n', replace: '    state = { spec: false, body: state.body, current: false };\n' },
    ],
  },
  {
    id: 'mysql-marker-insert-forged',
    rule: "MariaDB store: the BEFORE INSERT trigger honours 'lockstep:insert' from any statement, so a plain INSERT that writes the marker itself is neither marked as a bypass nor journaled (a cached delete outlives it)",
    patches: [{ file: MYSQL_SCHEMA, find: "  IF NEW.writer <=> '${INSERT_MARKER}' AND ${OWNS} THEN", replace: "  IF NEW.writer <=> '${INSERT_MARKER}' THEN" }],
  },
  {
    id: 'mysql-marker-update-forged',
    rule: "MariaDB store: the BEFORE UPDATE trigger honours 'lockstep:update' from any statement, so a plain UPDATE (or rename) that writes the marker itself keeps the version it sets and is not journaled",
    patches: [{ file: MYSQL_SCHEMA, find: "  IF NEW.writer <=> '${UPDATE_MARKER}' AND ${OWNS} THEN", replace: "  IF NEW.writer <=> '${UPDATE_MARKER}' THEN" }],
  },
  {
    id: 'mysql-marker-delete-forged',
    rule: "MariaDB store: the AFTER DELETE trigger honours a 'lockstep:delete' mark on the tombstone from any statement, so a plain DELETE after plain SQL marked the key is not journaled",
    patches: [{ file: MYSQL_SCHEMA, find: "  IF NOT (mark <=> '${DELETE_MARKER}' AND ${OWNS}) THEN", replace: "  IF NOT (mark <=> '${DELETE_MARKER}') THEN" }],
  },
  {
    id: 'mysql-upgrade-keeps-old-triggers',
    rule: "MariaDB store: an open of schema 2 records the current triggers version without replacing schema 2's triggers, which honour a marker written by plain SQL",
    patches: [{ file: MYSQL_STORE, find: '      for (const statement of s.triggerReplaceDdl) {', replace: '      for (const statement of [] as string[]) {' }],
  },
  {
    id: 'mysql-marker-left-after-error',
    rule: "MariaDB store: the package's write leaves its running mark set when the call fails, so an application function that goes on after the error (a CONTINUE handler) can write a marker in the same statement and pass it off as Lockstep's",
    patches: [{ file: MYSQL_SCHEMA, find: '          running := NULL; -- a caller\'s handler that goes on must not find it set\n', replace: '' }],
  },
  {
    id: 'mysql-read-uncommitted-accepted',
    rule: "MariaDB store: a pool whose connections run at READ UNCOMMITTED is accepted, so a read fills the cache with a plain transaction's write that is then rolled back (a value no commit produced)",
    patches: [{ file: MYSQL_STORE, find: "      if (text(isolation).toUpperCase() === 'READ-UNCOMMITTED') {", replace: "      if (text(isolation).toUpperCase() === 'NEVER') {" }],
  },
  // --- ORM integrations on a connection the application shares (test/integration/orm-adversary.test.ts) ---
  {
    id: 'sqlite-entity-inside-foreign-transaction',
    rule: "SQLite stores, entity and key/value (the shared wait): Lockstep's statements run inside a transaction the application (an ORM) opened on the shared connection: a write is a savepoint published before it rolls back, a fill sees its uncommitted rows, a journal read passes over ids its rollback frees",
    patches: [{ file: 'src/store/sqlite-outside-transaction.ts', find: '  while (db.inTransaction) {', replace: '  while (db.inTransaction && performance.now() < 0) {' }],
  },
  {
    id: 'sqlite-store-inside-foreign-transaction',
    rule: "SQLite key/value store on a connection passed in: Lockstep's statements run inside a transaction the application opened on it: a write is a savepoint published to the cache and rolled back with it, a cold read fills an uncommitted row, a journal read sees rows the rollback takes back",
    patches: [
      { file: 'src/store/sqlite.ts', find: '      if (!owned && db.inTransaction) return outsideForRead(', replace: '      if (false as boolean) return outsideForRead(' },
      { file: 'src/store/sqlite.ts', find: '    owned ? run() : whenOutsideTransaction(', replace: '    true ? run() : whenOutsideTransaction(' },
      { file: 'src/store/sqlite.ts', find: '    owned\n      ? run(deadlineMs)', replace: '    true\n      ? run(deadlineMs)' },
    ],
  },
  {
    id: 'sqlite-outside-check-then-await',
    rule: "SQLite stores on a shared connection: an await between the check that the connection is outside any transaction and Lockstep's statement, so a continuation queued meanwhile opens the application's transaction first and the statement joins it (an acknowledged write rolled back with it)",
    patches: [
      { file: 'src/store/sqlite-outside-transaction.ts', find: '  if (!db.inTransaction) return run(0);', replace: '  if (!db.inTransaction) {\n    await null;\n    return run(0);\n  }' },
      { file: 'src/store/sqlite-outside-transaction.ts', find: '  return run(waited);', replace: '  await null;\n  return run(waited);' },
    ],
  },
  {
    id: 'entity-dropped-row-published',
    rule: "entity stores: a write whose row the table did not keep (an application's BEFORE INSERT trigger dropped it) reads back no row, and the engine then publishes the values given: a phantom no commit holds, served until its TTL",
    patches: [
      {
        file: 'src/store/entity/sqlite-entity-store.ts',
        find: '  const storedPayload = (key: string): string => payloadOfRow(spec, storedRow(spec, key, table.selectMany([key])[0]).row);',
        replace: '  const storedPayload = (key: string): string | undefined => {\n    const found = table.selectMany([key])[0];\n    return found === undefined ? undefined : payloadOfRow(spec, storedRow(spec, key, found).row);\n  };',
      },
      {
        file: 'src/store/entity/postgres-entity-store.ts',
        find: '    const stored = storedRow(spec, key, (await table.selectMany(client, [key]))[0]);\n    return { version, payload: payloadOfRow(spec, stored.row) };',
        replace: '    const found = (await table.selectMany(client, [key]))[0];\n    return { version, payload: found === undefined ? undefined : payloadOfRow(spec, storedRow(spec, key, found).row) };',
      },
    ],
  },
  {
    id: 'entity-publishes-payload-as-written',
    rule: 'entity tables: the cache publishes the row as written, not as the database stored it (numeric rounding, generated columns, the application\'s own triggers), so a hit differs from the row a fill reads',
    patches: [
      {
        file: 'src/engine/write-through.ts',
        find: 'entryFor: (committed) => (committed.payload === undefined ? entryOf(committed.version) : this.ctx.entries.fromStore({ version: committed.version, payload: committed.payload })),',
        replace: 'entryFor: (committed) => entryOf(committed.version),',
      },
    ],
  },
  {
    id: 'orm-update-writes-merged-row',
    rule: "ORM integrations: an update writes the whole cached row merged with its changes, so a column it does not change is written back in the form pg read it (a jsonb JSON null becomes an SQL NULL; a Kysely jsonb string is sent as JSON text and refused)",
    patches: [
      {
        file: 'src/integrations/orm-table.ts',
        find: '      return repository.update(id, given as Partial<Row>, options?.expectedVersion === undefined ? undefined : { expectedVersion: options.expectedVersion });',
        replace: '      const current = (await repository.findById(id)) as Record<string, unknown> | undefined;\n      if (current === undefined) return undefined;\n      return save({ ...current, ...given, [idKey]: current[idKey] }, options?.expectedVersion ?? Number(current[versionKey]));',
      },
    ],
  },
  {
    id: 'drizzle-writes-generated-columns',
    rule: 'Drizzle integration: generated columns are written (null from the insert) and refused by the database, so a table with one cannot be written through Lockstep',
    patches: [{ file: 'src/integrations/drizzle-columns.ts', find: 'export const isGenerated = (column: Column): boolean => column.generated !== undefined;', replace: 'export const isGenerated = (column: Column): boolean => column.generated === column;' }],
  },
  {
    id: 'entity-writing-mark-any-on',
    rule: "PostgreSQL entity store: the triggers take any `lockstep.writing = 'on'` for Lockstep's mark, so plain SQL that set it (a session-level SET left on a pooled connection) writes unversioned and unjournaled rows the cache never learns of",
    patches: [
      {
        file: 'src/store/entity/postgres-entity-schema.ts',
        find: "    ` WHEN (pg_catalog.current_setting('${WRITING_SETTING}', true) IS DISTINCT FROM ${writingMark(",
        replace: "    ` WHEN (pg_catalog.current_setting('${WRITING_SETTING}', true) IS DISTINCT FROM 'on' AND pg_catalog.current_setting('${WRITING_SETTING}', true) IS DISTINCT FROM ${writingMark(",
      },
    ],
  },
  {
    id: 'entity-id-column-not-unique',
    rule: 'entity stores: an id column that is one column of a composite key is accepted, so one read, write or delete by id reaches the rows of several entities (a delete of one tenant\'s row removes another\'s)',
    patches: [
      { file: 'src/store/entity/sqlite-entity-store.ts', find: '  if (!isUniqueColumn(db, spec.table, spec.idColumn)) throw notUnique(spec);', replace: '  if (!isUniqueColumn(db, spec.table, spec.idColumn) && spec.table === \'\') throw notUnique(spec);' },
      { file: 'src/store/entity/postgres-entity-store.ts', find: '  if (!(await isUniqueColumn(pool, schema, spec.table, spec.idColumn, waitMs))) throw notUnique(spec);', replace: '  if (!(await isUniqueColumn(pool, schema, spec.table, spec.idColumn, waitMs)) && spec.table === \'\') throw notUnique(spec);' },
    ],
  },
  {
    id: 'entity-id-spelling-unchecked',
    rule: "entity stores: a write or delete by another spelling of a row's id ('01' for 1, an upper-case uuid) reaches the row while the cache key of its own id keeps the row as it was before",
    patches: [{ file: 'src/store/entity/spec.ts', find: '  if (found === undefined || found.key === key) return;', replace: "  if (found === undefined || found.key !== '\\0') return;" }],
  },
  {
    id: 'entity-triggers-recreated-on-open',
    rule: "PostgreSQL entity store: every open re-creates the table's triggers, taking its ACCESS EXCLUSIVE lock (every query on the table queues behind an open transaction that read it)",
    patches: [{ file: 'src/store/entity/postgres-entity-schema.ts', find: '  if (installed.length === TRIGGER_NAMES.length && installed.every((t) => t.comment === digest && t.always)) return;', replace: '  if (installed.length === TRIGGER_NAMES.length && installed.every((t) => t.comment === digest && t.always) && digest === \'\') return;' }],
  },
  {
    id: 'entity-triggers-upgrade-waits-unbounded',
    rule: "PostgreSQL entity store: an open that finds an earlier release's triggers fails when the table's lock is busy, instead of keeping them (correct with this release) until the next open",
    patches: [{ file: 'src/store/entity/postgres-entity-schema.ts', find: '    if (lockTimeout && installed.length === TRIGGER_NAMES.length && installed.every((t) => t.sameCall)) return;', replace: '    if (lockTimeout && installed.length === TRIGGER_NAMES.length && installed.every((t) => t.sameCall) && digest === \'\') return;' }],
  },
  // test/integration/entity-fk-cascade.test.ts, entity-replace-unique.test.ts, entity-ddl-lock-wait.test.ts
  {
    id: 'entity-sqlite-mark-whole-transaction',
    rule: "SQLite entity store: the bypass triggers stand aside for every row while Lockstep's write transaction is open, so an ON DELETE CASCADE / SET NULL or ON UPDATE CASCADE its own delete or write of a parent makes into a cached child table is neither versioned nor journaled: the cache serves the deleted or changed children",
    patches: [
      {
        file: 'src/store/entity/sqlite-entity-schema.ts',
        find: "  const notOurs = (row: 'NEW' | 'OLD') => `NOT EXISTS (SELECT 1 FROM ${WRITING_TABLE} WHERE ${mark(row)})`;",
        replace: "  const notOurs = (row: 'NEW' | 'OLD') => `NOT EXISTS (SELECT 1 FROM ${WRITING_TABLE} WHERE ${mark(row)} OR 1 = 1)`;",
      },
    ],
  },
  {
    id: 'entity-pg-mark-whole-transaction',
    rule: "PostgreSQL entity store: the triggers stand aside for every row of Lockstep's write transaction (the mark names the transaction, not the row), so a foreign-key cascade of its own delete or write into a cached child table is neither versioned nor journaled",
    patches: [
      {
        file: 'src/store/entity/postgres-entity-schema.ts',
        find: "    ` WHEN (pg_catalog.current_setting('${WRITING_SETTING}', true) IS DISTINCT FROM ${writingMark(literal(spec.entity), `(${row}.${quoteIdentifier(spec.idColumn)})::text`)})`;",
        replace: "    ` WHEN (coalesce(pg_catalog.current_setting('${WRITING_SETTING}', true), '') NOT LIKE ${WRITING_MARK} || ':%' OR ${row === 'NEW' ? 'false' : 'false'})`;",
      },
    ],
  },
  {
    id: 'entity-pg-functions-stamp-trusted',
    rule: "PostgreSQL entity store: an open trusts the functions' stamp (this release's digest) without comparing what PostgreSQL holds, so a trigger function replaced by hand (one that journals nothing) stays in place: bypass writes are no longer versioned or journaled",
    patches: [
      {
        file: 'src/store/entity/postgres-entity-schema.ts',
        find: "    return typeof fingerprint === 'string' && stamp === `${digest} ${fingerprint}`;",
        replace: "    return typeof fingerprint === 'string' && typeof stamp === 'string' && stamp.startsWith(digest);",
      },
    ],
  },
  {
    id: 'engine-settled-write-not-fenced',
    rule: "Engine: a write whose outcome the store settles later (StoreOutcomeUnknownError.settled: its server session ended, it can no longer land) is not fenced then, so a commit that landed with no confirmation, after the lease expired and a reader filled the older value, leaves that value cached until its TTL",
    patches: [{ file: 'src/engine/write-path.ts', find: '(lost) => fenceOnceSettled(ctx, step, lost));', replace: '() => undefined); void fenceOnceSettled;' }],
  },
  {
    id: 'pg-write-settlement-dropped',
    rule: 'PostgreSQL store: a write given up on is not settled (the server session that may still run it is not ended from another connection), so the write the network held back lands later with no confirmation, and the old value a reader filled stays cached until its TTL',
    patches: [{ file: 'src/store/postgres.ts', find: 'throw settles ? settling(settler, unknown, prepared.get(client)) : unknown;', replace: 'throw unknown;' }],
  },
  {
    id: 'entity-pg-write-settlement-dropped',
    rule: "PostgreSQL entity store: a write whose COMMIT was given up on is not settled (the server session that may still run it is not ended from another connection), so a COMMIT the network held back lands later with no confirmation left for the engine, and the old value a reader filled stays cached until its TTL",
    patches: [{ file: 'src/store/entity/postgres-entity-store.ts', find: 'throw error instanceof StoreOutcomeUnknownError ? settling(settler, error, marked) : error;', replace: 'throw (void marked, error);' }],
  },
  {
    id: 'pg-settle-ends-any-lock-holder',
    rule: "PostgreSQL stores: settling a write given up on ends every session that holds an advisory lock, not only the one holding the write's mark, so another client's session (or another instance's) is ended for nothing",
    patches: [{ file: 'src/store/postgres-settle.ts', find: '              AND ((l.classid::int8 << 32) | l.objid::int8) = ANY ($1::int8[])`,', replace: '              AND $1::int8[] IS NOT NULL`,' }],
  },
  {
    id: 'settle-reports-before-gone',
    rule: "SQL stores (the loop PostgreSQL and MariaDB share): a write is reported settled as soon as its session was asked to end, not once it is gone, so a session still committing (a COMMIT waiting for a synchronous standby) lands after the engine's fence",
    patches: [{ file: 'src/store/settle-loop.ts', find: 'for (const [id] of asked) if (!alive.has(id)) finish(id, true);', replace: 'for (const [id] of asked) finish(id, true); void alive;' }],
  },
  {
    id: 'pg-write-in-transaction-settlement-dropped',
    rule: 'PostgreSQL store: a write run in a transaction (deadline below the statement timeout) whose COMMIT was given up on is not settled, so a COMMIT the network held back lands later with no confirmation, and the old value a reader filled stays cached until its TTL',
    patches: [{ file: 'src/store/postgres.ts', find: 'throw error instanceof StoreOutcomeUnknownError ? settling(settler, error, marked) : error;', replace: 'throw (void marked, error);' }],
  },
  {
    id: 'settle-without-ending-sessions',
    rule: 'SQL stores (the loop PostgreSQL and MariaDB share): settling a write given up on reports it settled at once, without ending its server session, so the engine fences before the held-back write lands, and the old value filled after the fence stays cached',
    patches: [{ file: 'src/store/settle-loop.ts', find: 'if (stopped || (pending.size >= MAX_UNSETTLED_SESSIONS && !pending.has(id))) return Promise.resolve(false);', replace: 'return Promise.resolve(true);' }],
  },
  {
    id: 'mysql-write-settlement-dropped',
    rule: 'MariaDB store: a write given up on is not settled (its server connection is not ended from another one), so the write the network held back lands later with no confirmation (mysql2 ends a socket after what it sent), and the old value a reader filled stays cached until its TTL',
    patches: [{ file: MYSQL_STORE, find: 'throw settling(settler, lost, sessions.get(sessionKey(connection)));', replace: 'throw lost;' }],
  },
  {
    id: 'mysql-settle-without-kill',
    rule: 'MariaDB store: settling a write given up on waits for its server connection to leave the process list without asking the server to end it (no KILL CONNECTION): the idle connection stays, the held-back write lands once delivered, and the old value a reader filled stays cached',
    patches: [{ file: 'src/store/mysql-settle.ts', find: 'await run(KILL_SQL, [session.id]).catch(() => undefined);', replace: 'void KILL_SQL;' }],
  },
  {
    id: 'proxy-startup-database-raw',
    rule: "pg-proxy: the startup message's database parameter is compared as sent, so a session that sends database=\"\" (PostgreSQL connects it to the user's database, the proxy's) is piped with no fence, and a write acknowledged on it leaves the cached row in place",
    patches: [{ file: 'src/pg-proxy/session.ts', find: '    const database = startupDatabase(params);', replace: "    const database = params.get('database') ?? params.get('user') ?? ''; void startupDatabase;" }],
  },
  {
    id: 'proxy-qualified-resolution-needs-usage',
    rule: "pg-proxy: each cached table's qualified name is resolved with to_regclass, which raises for a role without USAGE on its schema, so that role's probes and fills all fail: no cache hit at all, and every miss holds the key's fill lease",
    patches: [{ file: 'src/pg-proxy/internal.ts', find: '...tables.map(qualified)];', replace: '...tables.map((t) => regclass(`${quoteIdentifier(t.schema)}.${quoteIdentifier(t.name)}`))]; void qualified;' }],
  },
  {
    id: 'redis-refusals-count-as-answers',
    rule: "Redis cache: the client's own refusals (a queue full of unanswered commands) count as answers of the server, so a black-holed connection under a burst of calls is never seen to be silent and never replaced",
    patches: [{ file: 'src/cache/redis.ts', find: 'Math.floor(this.timeoutMs / 10))), isServerReply);', replace: 'Math.floor(this.timeoutMs / 10))), () => true);' }],
  },
  {
    id: 'redis-late-replies-not-counted',
    rule: 'Redis cache: a reply that arrives after its call expired does not count as an answer, so a slow but live Redis has its connection dropped and opened again every 2 s (every call in flight rejected each time)',
    patches: [
      {
        file: 'src/cache/deadlines.ts',
        find: '  reply(value: T): void {\n    this.queue!.answered++;\n    if (this.done) return;',
        replace: '  reply(value: T): void {\n    if (this.done) return;\n    this.queue!.answered++;',
      },
    ],
  },
  {
    id: 'entity-sqlite-replace-other-id-unburied',
    rule: "SQLite entity store: a REPLACE (INSERT OR REPLACE, UPDATE OR REPLACE, a UNIQUE declared ON CONFLICT REPLACE) that deletes a row of another id through another unique key leaves it unburied and unjournaled (SQLite fires no DELETE trigger for it): the cache serves the deleted row forever",
    patches: [{ file: 'src/store/entity/sqlite-replaced-rows.ts', find: '  if (keys.length === 0) return [];', replace: '  if (keys.length >= 0) return [];' }],
  },
  {
    id: 'entity-sqlite-replace-column-collation',
    rule: "SQLite entity store: the rows a REPLACE deletes are looked up with the column's collation instead of the unique index's own (a NOCASE index on a BINARY column), so a row that differs only in case is replaced unburied",
    patches: [
      {
        file: 'src/store/entity/sqlite-replaced-rows.ts',
        find: '.map((c) => `${quote(c.name)} = NEW.${quote(c.name)} COLLATE ${quote(c.collation)}`)',
        replace: '.map((c) => `${quote(c.name)} = NEW.${quote(c.name)}`)',
      },
    ],
  },
  {
    id: 'entity-sqlite-replace-buries-live-rows',
    rule: 'SQLite entity store: every row noted as a REPLACE candidate is tombstoned and journaled, also one that still exists (a partial unique index it is outside of): a phantom tombstone below a live row',
    patches: [
      {
        file: 'src/store/entity/sqlite-replaced-rows.ts',
        find: "  const gone = (r: string) => `${mine(r)} AND NOT EXISTS (SELECT 1 FROM ${t} WHERE ${i} = ${r}.id)`;",
        replace: '  const gone = (r: string) => mine(r);',
      },
    ],
  },
  {
    id: 'entity-sqlite-triggers-kept-on-open',
    rule: "SQLite entity store: triggers already installed are kept on open (CREATE TRIGGER IF NOT EXISTS), so an earlier release's triggers, or ones derived before a unique index was added, stay: a REPLACE through the new index deletes a cached row unburied",
    patches: [
      {
        file: 'src/store/entity/sqlite-entity-schema.ts',
        find: '      if (ours.has(name) && wanted.get(name) !== sql) db.exec(`DROP TRIGGER ${q(name)}`);',
        replace: "      if (ours.has(name) && wanted.get(name) !== sql && sql === '') db.exec(`DROP TRIGGER ${q(name)}`);",
      },
      {
        file: 'src/store/entity/sqlite-entity-schema.ts',
        find: '    const kept = new Set(installed.filter(({ name, sql }) => wanted.get(name) === sql).map(({ name }) => name));',
        replace: '    const kept = new Set(installed.filter(({ name }) => ours.has(name)).map(({ name }) => name));',
      },
    ],
  },
  {
    id: 'entity-ddl-lock-unbounded',
    rule: "PostgreSQL entity helpers: the schema's DDL advisory lock is waited for without bound, so a session holding it (a migration waiting on the table) holds installEntityTriggers, addVersionColumn and every entity store's open forever",
    patches: [
      {
        file: 'src/store/entity/postgres-ddl-lock.ts',
        find: "text: 'SELECT pg_catalog.pg_try_advisory_xact_lock($1::bigint) AS got'",
        replace: "text: 'SELECT pg_catalog.pg_advisory_xact_lock($1::bigint), true AS got'",
      },
    ],
  },
  {
    id: 'entity-sqlite-renamed-table-triggers-kept',
    rule: "SQLite entity store: after ALTER TABLE … RENAME, the triggers SQLite moved along under the old name are left beside the ones an open on the new name makes, and the second version fix-up of a plain INSERT sets a re-created id back below its tombstone",
    patches: [
      {
        file: 'src/store/entity/sqlite-entity-schema.ts',
        find: "    const ours = { has: (name: string) => name.startsWith('lockstep_') && SUFFIXES.some((what) => name.endsWith(`_${what}`)) };",
        replace: '    const ours = new Set(SUFFIXES.map((what) => `lockstep_${spec.table}_${what}`));',
      },
    ],
  },
  {
    id: 'entity-sqlite-replace-notes-cleared-by-fixup',
    rule: "SQLite entity store: the note trigger runs on every UPDATE, so the bypass INSERT trigger's version fix-up (an UPDATE of the version alone), when it fires before the bury trigger, clears the notes of the rows a REPLACE deleted and they stay cached",
    patches: [
      {
        file: 'src/store/entity/sqlite-replaced-rows.ts',
        find: "    ['replaced_note_update', `BEFORE UPDATE ON ${t} WHEN ${changed}",
        replace: "    ['replaced_note_update', `BEFORE UPDATE ON ${t}",
      },
    ],
  },
  {
    id: 'entity-pg-query-no-deadline',
    rule: "PostgreSQL entity stores: a query on a checked-out connection has no client-side deadline, so a call stuck on a silent connection keeps it checked out, and once the old connections are lost for good (a failover) a pool whose every connection is stuck never serves again",
    patches: [
      {
        file: 'src/store/postgres-checkout.ts',
        find: '    return settleWithin(answer, own ?? ms, readTimeout);',
        replace: '    return (void own, void settleWithin, void readTimeout, answer);',
      },
    ],
  },
  {
    id: 'entity-pg-checkout-unbounded',
    rule: "PostgreSQL entity stores and their helpers: a connection of a pool you pass is waited for without bound, so an entity store's open (and the ORM integrations' open) on a server that accepts and never answers hangs forever",
    patches: [
      {
        file: 'src/store/postgres-checkout.ts',
        find: "  return deadlined(await connectWithin('PostgreSQL', () => connectListened(pool), ms, (late) => late.release(true)), ms);",
        replace: '  return deadlined(await (void connectWithin, connectListened(pool)), ms);',
      },
    ],
  },
  {
    id: 'pg-proxy-upstream-connect-unbounded',
    rule: "pg-proxy: the install at start and lockstep audit --pg-proxy open their connection without a timeout, so an upstream that accepts and never answers holds `lockstep proxy` forever (neither started nor exited) and the audit too",
    patches: [{ file: 'src/pg-proxy/upstream-client.ts', find: '{ ...config, connectionTimeoutMillis: UPSTREAM_CONNECT_MS, query_timeout: queryMs }', replace: '{ ...config, query_timeout: queryMs }' }],
  },
  {
    id: 'serve-failed-start-infinite-close',
    rule: 'lockstep serve: a start that fails after opening the store closes it with an infinite deadline, which setTimeout turns into 1 ms: every close slower than that is abandoned (TimeoutOverflowWarning)',
    patches: [{ file: 'src/cli/commands/serve.ts', find: '    await closeOpened(performance.now() + SHUTDOWN_MARGIN_MS).catch(() => undefined);', replace: '    await closeOpened(Number.POSITIVE_INFINITY).catch(() => undefined);' }],
  },
  {
    id: 'sqlite-shared-wait-unbounded-at-exit',
    rule: "SQLite store on a shared connection: the wait for the application's transaction is bounded only while the transaction is open, so one that ends past the bound (the event loop held) lets a write run late and commit after its deadline, so after its lease",
    patches: [{ file: 'src/store/sqlite-outside-transaction.ts', find: "  if (lateEnd === 'refuse' && waited >= waitMs) throw refuse();\n", replace: '' }],
  },
  {
    id: 'sqlite-shared-late-end-refuses-all',
    rule: "SQLite store on a shared connection: a wait that ends past its bound refuses reads and journal appends too, not only lease-bound writes: a repair row appended after a late commit is dropped",
    patches: [{ file: 'src/store/sqlite-outside-transaction.ts', find: "  if (lateEnd === 'refuse' && waited >= waitMs)", replace: '  if (waited >= waitMs)' }],
  },
  {
    id: 'sqlite-shared-unwaited-call-checked-late',
    rule: 'SQLite store on a shared connection: a call that found no transaction open is still checked against the wait bound, so with busyTimeout 0 every delete (and the drainer) is refused',
    patches: [{ file: 'src/store/sqlite-outside-transaction.ts', find: '  if (!db.inTransaction) return run(0);\n', replace: '' }],
  },
  {
    id: 'service-store-total-unreported',
    rule: "REST service: its metric groups carry no store, so the store's own total (lockstep_settle_poll_errors_total) shows 0 on /metrics while settlement polls fail",
    patches: [{ file: 'src/service/series-groups.ts', find: '    storeStats: () => store.stats?.(),\n', replace: '' }],
  },
  {
    id: 'proxy-audit-answer-ahead-trusted',
    rule: "lockstep audit --pg-proxy: an answer ahead of the committed version read before its look is counted (and repaired) as D, although a write through a proxy between the two explains it: healthy keys reported stale under writes",
    patches: [{ file: 'src/pg-proxy/audit.ts', find: ' || answer.version <= seen.committed.version) return { ...found, seen };', replace: ' || true) return { ...found, seen };' }],
  },
  {
    id: 'audit-newer-write-counted-defect',
    rule: 'auditor: a second store read that found a newer write than the cache showed counts the key D (the cache was below that read) instead of looking again: healthy keys under steady writes reported and repaired',
    patches: [{ file: 'src/audit/auditor.ts', find: '      continue; // a newer write since: look again', replace: '      return { ...classifyKey(again, cached), seen: after };' }],
  },
  {
    id: 'proxy-definition-without-collation',
    rule: "pg-proxy: a table's column definition leaves out the columns' collations, so a statement prepared before a collation change (which PostgreSQL refuses with 0A000) is served another session's answer",
    patches: [{ file: 'src/pg-proxy/prepared-definition.ts', find: 'a.atttypmod, a.attcollation, a.attisdropped', replace: 'a.atttypmod, a.attisdropped' }],
  },
  {
    id: 'proxy-definition-joined-text',
    rule: "pg-proxy: a table's column definition is its columns joined with ':' and ',', so a column named with those characters makes two different column lists hash alike and a statement is served an answer of other columns",
    patches: [
      {
        file: 'src/pg-proxy/prepared-definition.ts',
        find: "pg_catalog.md5(pg_catalog.array_agg(ROW(a.attnum, a.attname, a.atttypid, a.atttypmod, a.attcollation, a.attisdropped) ORDER BY a.attnum)::pg_catalog.text)",
        replace: "pg_catalog.md5(pg_catalog.string_agg(pg_catalog.concat_ws(':', a.attnum, a.attname, a.atttypid, a.atttypmod, a.attisdropped), ',' ORDER BY a.attnum))",
      },
    ],
  },
  {
    id: 'proxy-session-refusal-keeps-lease',
    rule: "pg-proxy: a read refused for its session's own reason (a search_path that finds another table) keeps the key's fill lease, so every other session passes through for it (fillLeaseMs) instead of filling",
    patches: [{ file: 'src/pg-proxy/read-path.ts', find: "  const tableRefuses = shareable !== 't';", replace: '  const tableRefuses = !cacheable;' }],
  },
  {
    id: 'proxy-rendered-check-temp-shadow',
    rule: "pg-proxy: renders_elsewhere searches pg_temp first, so a session's temporary table named pg_attribute hides a regclass column and its answers are cached (stale after a rename)",
    patches: [{ file: 'src/pg-proxy/rendered-columns.ts', find: 'SET search_path = pg_catalog, pg_temp SET', replace: 'SET search_path = pg_catalog SET' }],
  },
  {
    id: 'audit-cache-ahead-trusted',
    rule: 'auditor: a cache ahead of the store read before its look is counted (and repaired) as D or E, although a write through Lockstep that committed in between explains it: false defects under normal traffic',
    patches: [
      {
        file: 'src/audit/auditor.ts',
        find: '    const cached = isDefect(found.state) ? aheadOfStore(seen) : undefined;',
        replace: '    const cached = (void aheadOfStore, undefined) as ReturnType<typeof aheadOfStore>;',
      },
    ],
  },
  {
    id: 'redis-silent-connection-kept',
    rule: "Redis cache: a connection that answers nothing (black-holed by a failover: no FIN or RST) is kept, so every call times out until the kernel gives up on the socket (about 15 minutes)",
    patches: [{ file: 'src/cache/redis.ts', find: '    this.noteSilence();\n    const offline', replace: '    const offline' }],
  },
  {
    id: 'pg-kv-bypass-triggers-origin-only',
    rule: "PostgreSQL store: the bypass triggers are enabled for origin sessions only, so a write a logical replication subscription applies (session_replication_role = replica) is neither versioned nor journaled: the cached value is served until its TTL",
    patches: [{ file: PG_SCHEMA, find: "  FOR EACH STATEMENT EXECUTE FUNCTION ${s}.lockstep_kv_bypass_truncate();\n${enableAlways}\n", replace: "  FOR EACH STATEMENT EXECUTE FUNCTION ${s}.lockstep_kv_bypass_truncate();\n" }],
  },
  {
    id: 'entity-bypass-triggers-origin-only',
    rule: "PostgreSQL entity store: the bypass triggers on the application's table are enabled for origin sessions only, so a replicated write (session_replication_role = replica) is not journaled",
    patches: [{ file: 'src/store/entity/postgres-entity-schema.ts', find: "\nALTER TABLE ${t} ENABLE ALWAYS TRIGGER lockstep_${name};`;", replace: '`;' }],
  },
  {
    id: 'proxy-triggers-origin-only',
    rule: "pg-proxy: the row and TRUNCATE triggers are enabled for origin sessions only, so a replicated write (session_replication_role = replica) appends no journal row and the cached answer stays",
    patches: [{ file: PROXY_SCHEMA, find: 'ALTER TABLE ${t} ENABLE ALWAYS TRIGGER ${quoteIdentifier(rowTrigger)}, ENABLE ALWAYS TRIGGER ${quoteIdentifier(truncateTrigger)};\n', replace: '' }],
  },
  {
    id: 'proxy-fill-accepts-origin-triggers',
    rule: "pg-proxy: a fill accepts the table's triggers enabled for origin sessions only (ENABLE TRIGGER ALL after a bulk load), so a write under session_replication_role = replica is acknowledged and the old answer served",
    patches: [{ file: PROXY_READ_PATH, find: "AND t.tgenabled OPERATOR(pg_catalog.=) 'A'::pg_catalog.char)", replace: "AND t.tgenabled OPERATOR(pg_catalog.=) ANY (ARRAY['O', 'A']::pg_catalog.char[]))" }],
  },
  {
    id: 'proxy-event-triggers-origin-only',
    rule: "pg-proxy: the DDL event triggers are enabled for origin sessions only, so DDL under session_replication_role = replica flushes nothing and answers of the old definition are served",
    patches: [{ file: PROXY_SCHEMA, find: '  ALTER EVENT TRIGGER "lockstep_proxy_${schema}_ddl" ENABLE ALWAYS;\n', replace: '' }],
  },
  {
    id: 'entity-triggers-origin-kept-on-open',
    rule: "PostgreSQL entity store: an open keeps triggers of this release that were set back to origin sessions only (ENABLE TRIGGER ALL after a bulk load): replicated writes stay unjournaled",
    patches: [{ file: 'src/store/entity/postgres-entity-schema.ts', find: 'installed.every((t) => t.comment === digest && t.always)) return;', replace: 'installed.every((t) => t.comment === digest)) return;' }],
  },
  {
    id: 'entity-lock-never-escalates',
    rule: "PostgreSQL entity store: a transaction takes one advisory lock per id it inserts, however many: a bulk INSERT or a subscription's initial copy of more ids than the lock table holds fails with out of shared memory",
    patches: [{ file: 'src/store/entity/postgres-entity-schema.ts', find: '  IF taken >= ${ENTITY_LOCK_ESCALATION} THEN', replace: '  IF false THEN' }],
  },
  {
    id: 'entity-lock-escalation-locks-nothing',
    rule: "PostgreSQL entity store: past the escalation a transaction takes no lock at all, so Lockstep's create of an id (or its delete of a missing row) no longer waits for a bulk insert of that id",
    patches: [{ file: 'src/store/entity/postgres-entity-schema.ts', find: '    PERFORM pg_catalog.pg_advisory_xact_lock(whole);\n    RETURN;', replace: '    RETURN;' }],
  },
  {
    id: 'listen-pool-beside-drops-password',
    rule: "PostgreSQL store given a pool: the LISTEN pool made beside it is built from the pool's enumerable options only, so a password (pg-pool keeps it non-enumerable) is lost and the LISTEN connection never logs in: notifications stop",
    patches: [{ file: 'src/store/postgres.ts', find: '        password: given.password,\n', replace: '' }],
  },
  {
    id: 'kysely-ignores-connection-type-parsers',
    rule: "Kysely on PostgreSQL: types not kept as text are parsed by the pool's option or pg's global parsers, not the connection's own (setTypeParser): a row read through Lockstep differs from Kysely's own select",
    patches: [{ file: 'src/integrations/kysely.ts', find: "const own = typeof (on as Partial<PgTypes>).getTypeParser === 'function' ? (on as unknown as PgTypes) : fallback;", replace: 'const own = fallback;' }],
  },
  {
    id: 'repository-update-any-store',
    rule: "Repository.update runs over a store that does not declare it updates columns: a store (or wrapper) that writes the changes payload as it is leaves it cached as the row",
    patches: [{ file: 'src/patterns/repository.ts', find: '      if (options.entities.updatesColumns !== true) {', replace: '      if (options.entities.updatesColumns === false) {' }],
  },
];
