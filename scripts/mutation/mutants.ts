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
const WRITE_BATCH = 'src/cache/redis-write-batch.ts';

export const MUTANTS: readonly Mutant[] = [
  // --- the journal invariant (issue 10) ---
  {
    id: 'journal-start-at-head',
    rule: 'journal invariant: a drainer without a cursor starts at the head (the fix reverted)',
    patches: [{ file: START, find: '  if (saved === undefined || saved > head) {\n', replace: "  if (saved === undefined) return { cursor: head, head, reason: 'no-cursor', flushed: 0 };\n  if (saved === undefined || saved > head) {\n" }],
  },
  {
    id: 'journal-ahead-at-head',
    rule: 'journal invariant: a cursor past the head starts at the head (a journal recreated or restored)',
    patches: [{ file: START, find: '  if (saved === undefined || saved > head) {\n', replace: "  if (saved !== undefined && saved > head) return { cursor: head, head, reason: 'cursor-ahead', flushed: 0 };\n  if (saved === undefined || saved > head) {\n" }],
  },
  {
    id: 'journal-behind-retention-trusted',
    rule: 'journal invariant: a cursor older than the retained journal is trusted (no flush)',
    patches: [{ file: START, find: 'const flushed = await flushCache(cache);', replace: 'const flushed = 0; void flushCache;' }],
  },
  {
    id: 'drainer-cursor-before-apply',
    rule: 'journal invariant: the drainer advances (and saves) its cursor to a batch\'s last id before applying it (survivor 2)',
    patches: [
      {
        file: DRAINER,
        find: '          applied += await applyBatch(rows);',
        replace: '          if (rows.length > 0) {\n            cursor = rows[rows.length - 1]!.id;\n            await cache.saveJournalCursor(journalId, cursor);\n          }\n          applied += await applyBatch(rows);',
      },
    ],
  },
  {
    id: 'late-complete-no-repair',
    rule: 'lease budget: a commit confirmed past its lease, completeWrite failed, and no repair row is appended (survivor 1)',
    patches: [{ file: WRITE_PATH, find: "      await appendRepair(ctx, step.key, result.version, deadline);\n      report('cache-failure', dbMs);", replace: "      report('cache-failure', dbMs);" }],
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
    patches: [{ file: WRITE_PATH, find: "      committing.then((late) => fenceLateCommit(ctx, step, late?.version), () => undefined);\n      report('unknown', dbMs);", replace: "      committing.then((late) => fenceLateCommit(ctx, step, late?.version), () => undefined);\n      await release();\n      report('unknown', dbMs);" }],
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
    id: 'read-fill-skips-journal-wait',
    rule: "journal invariant: a miss reads the store and fills before the journal drainer knows where the journal ends (read-path.ts's wait removed)",
    patches: [{ file: READ_PATH, find: '  if (!ctx.journalPositionKnown) {\n    const budget', replace: '  if (false as boolean) {\n    const budget' }],
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
    id: 'write-batch-close-drops-held',
    rule: "the Redis adapter's close() leaves the write calls it holds to the end of the tick, when the client is closed: a completion made right before close() never lands",
    patches: [{ file: 'src/cache/redis.ts', find: '    this.batcher?.flush(); // held calls go out before the client closes\n', replace: '' }],
  },
  {
    id: 'write-batch-sends-expired',
    rule: 'a write call held to the end of its tick is sent although its deadline passed and its caller was told it failed',
    patches: [{ file: WRITE_BATCH, find: '    for (const call of calls) if (call.expireIfDue(now)) expired++;', replace: '    for (const call of calls) if (call.done && now > 0) expired += 0;' }],
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
    id: 'memory-cache-assumed-empty',
    rule: 'journal invariant: a drainer over an in-process cache starts at the head as if the cache were empty, without asking it (a memory cache reused by a re-created instance keeps values the skipped rows invalidate)',
    patches: [{ file: START, find: '  if (cache.isEmpty?.() === true) return', replace: '  if (cache.isEmpty !== undefined) return' }],
  },
  // --- pg-proxy (issue 12) ---
  {
    id: 'proxy-trigger-skips-notify',
    rule: "pg-proxy: the row trigger sends no NOTIFY, so a write to a cached table can be prepared and committed from another session, behind that session's fence",
    patches: [
      {
        file: PROXY_SCHEMA,
        find: "whose fence would not see its rows.\n  PERFORM pg_notify('${PROXY_CHANNEL}', '${schema}');",
        replace: "whose fence would not see its rows.\n  IF pg_catalog.pg_backend_pid() < 0 THEN PERFORM pg_notify('${PROXY_CHANNEL}', '${schema}'); END IF;",
      },
    ],
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
    patches: [{ file: PROXY_SCHEMA, find: 'SET search_path = pg_catalog SET client_min_messages = notice AS $fn$', replace: 'SET search_path = pg_catalog AS $fn$' }],
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
  // --- pg-proxy TLS (test/integration/pg-proxy-tls.test.ts) ---
  {
    id: 'proxy-upstream-failure-silent',
    rule: 'pg-proxy: a session whose upstream connection fails (a TLS refusal, a bad certificate) is closed without telling the client why',
    patches: [{ file: PROXY_SESSION, find: "    client.end(build.error('FATAL', '08006', `lockstep proxy: could not connect to PostgreSQL: ${String(reason)}`));", replace: '    client.destroy();' }],
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
    patches: [{ file: PROXY_SESSION, find: "client.socket.write(m.type === 'R' && !(client.socket instanceof TLSSocket) ? withoutChannelBinding(m.raw) : m.raw);", replace: 'client.socket.write(m.raw);' }],
  },
  {
    id: 'proxy-tls-hides-channel-binding',
    rule: 'pg-proxy: a client on TLS is not offered SCRAM-SHA-256-PLUS, so libpq, which supports it, is refused as a downgrade even where binding would hold',
    patches: [{ file: PROXY_SESSION, find: "client.socket.write(m.type === 'R' && !(client.socket instanceof TLSSocket) ? withoutChannelBinding(m.raw) : m.raw);", replace: "client.socket.write(m.type === 'R' ? withoutChannelBinding(m.raw) : m.raw);" }],
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
    patches: [{ file: PROXY_SESSION, find: '      if (socket instanceof TLSSocket) upstreamSocket.pipe(socket);', replace: '      if (true) upstreamSocket.pipe(socket);' }],
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
];
