// The Lua side of the Redis cache adapter: one script per transition of the per-key record in
// docs/protocol.md, so that each transition is ONE atomic step on the
// server. Every script reads the record of exactly one key (KEYS[1]), so it runs on one slot of a
// Redis Cluster. Lease deadlines are measured on the Redis server's clock (TIME), never a client's.
//
// The record of a key (see redis-records.ts for the JavaScript side):
//   value  'v<version>:<0|1>:<payload>'   servable; 1 = tombstone (empty payload). Stored WITH a
//                                         PEXPIRE: its TTL. The read hit path (single Redis) is one GET.
//   fill   'f<deadline>:<token>'           a reader's fill lease. Stored WITHOUT a Redis TTL.
//   write  'w<header json>\n<pending>'     writers in flight. Stored WITHOUT a Redis TTL. The header is
//                                         {"t":{token:deadline,…},"m":"<maxVersion>","d":0|1,"x":ttl}:
//                                         t the writers' lease deadlines, m the highest version seen
//                                         (a string: Lua's tostring keeps only 14 digits), d dirty (a
//                                         writer's lease expired or a newer version was fenced in),
//                                         x the TTL to publish `pending` with (-1: none).
//                                         `pending` is the value record of maxVersion, in the value
//                                         encoding above, or empty when none is known (beginWrite
//                                         keeps a cached value's version as m, not its payload).
// Leases carry no Redis TTL so that a volatile-* maxmemory-policy can never evict them for space;
// their deadlines are checked here when the key is touched, and an expired lease is then dropped
// exactly as the protocol says (a write record that loses a writer becomes dirty).
//
// Every script replies with an array whose first element is the number of leases it found expired
// and dropped (the adapter adds it to stats().leasesExpired); the rest is the transition's answer.
// Except on the write path, where a table reply costs Redis more than the rest of a fast path's Lua
// (measured: ~1.5 µs of ~4 µs; the conversion probes the table for its err/ok fields): beginWrite
// replies with that number alone, and completeWrite's fast path with its outcome alone, a plain
// string (it drops no lease).
import { createHash } from 'node:crypto';

/**
 * The prelude of the transition scripts (CLOCK, then HELPERS): the server's clock, and `load()`, which reads KEYS[1]
 * and applies lease expiry (the protocol's "lease of w expires" row) before the transition looks
 * at the record. Returns nil (nothing), or a table with `kind` = 'value' | 'fill' | 'write'.
 */
const CLOCK = `
local key = KEYS[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local expired = 0
`;

/** The closures of the prelude: a script's fast path may run between CLOCK and these, so it does not pay for them. */
const HELPERS = `
-- A write record back to its key: a plain SET, which also leaves the key without a TTL.
local function save_write(rec)
  local header = cjson.encode({ t = rec.tokens, m = rec.max, d = rec.dirty and 1 or 0, x = rec.ttl })
  redis.call('SET', key, 'w' .. header .. '\\n' .. rec.pending)
end

-- A servable value with its TTL in ms (a TTL below 1 publishes without one).
local function publish(value, ttl)
  if ttl > 0 then
    redis.call('SET', key, value, 'PX', ttl)
  else
    redis.call('SET', key, value)
  end
end

local function load()
  local raw = redis.call('GET', key)
  if not raw then return nil end
  local tag = string.byte(raw, 1)
  if tag == 118 then -- 'v': a value (its TTL is Redis's own: an expired value is already gone)
    return { kind = 'value', raw = raw, version = string.match(raw, '^v(%d+):') }
  elseif tag == 102 then -- 'f': a fill lease
    local sep = string.find(raw, ':', 2, true)
    local deadline = tonumber(string.sub(raw, 2, sep - 1))
    if deadline > now then
      return { kind = 'fill', deadline = deadline, token = string.sub(raw, sep + 1) }
    end
    redis.call('DEL', key)
    expired = expired + 1
    return nil
  elseif tag == 119 then -- 'w': a write record
    local nl = string.find(raw, '\\n', 2, true)
    local header = cjson.decode(string.sub(raw, 2, nl - 1))
    local rec = { kind = 'write', tokens = header.t, max = header.m, dirty = header.d == 1,
                  ttl = header.x, pending = string.sub(raw, nl + 1), count = 0 }
    local dropped = 0
    for token, deadline in pairs(rec.tokens) do
      if deadline > now then
        rec.count = rec.count + 1
      else
        -- the writer's outcome is unknown (it may have committed): nothing may be published
        rec.tokens[token] = nil
        dropped = dropped + 1
      end
    end
    if dropped > 0 then
      expired = expired + dropped
      rec.dirty = true
    end
    if rec.count == 0 then
      redis.call('DEL', key)
      return nil
    end
    if dropped > 0 then save_write(rec) end
    return rec
  end
  error({ err = 'ERR lockstep: ' .. key .. ' does not hold a Lockstep cache record' })
end

-- Version fencing: a value older than v goes, a fill is voided, an older write record turns dirty.
local function invalidate_older(rec, v)
  if rec == nil then return end
  local version = tonumber(v)
  if rec.kind == 'value' then
    if tonumber(rec.version) < version then redis.call('DEL', key) end
  elseif rec.kind == 'fill' then
    redis.call('DEL', key)
  elseif tonumber(rec.max) < version and not rec.dirty then
    rec.dirty = true
    save_write(rec)
  end
end
`;

const PRELUDE = `${CLOCK}${HELPERS}`;

/**
 * get, after the plain GET found no value (the second round trip of a miss).
 * ARGV: fillLeaseMs, token (minted by the caller, used only if the lease is granted).
 * Reply: {expired, 'v', raw} a value appeared meanwhile | {expired, 'm'} miss, the caller holds the
 * fill lease | {expired, 'n'} miss, another reader fills | {expired, 'b'} bypass (live write).
 */
const GET_OR_LEASE = `${PRELUDE}
local rec = load()
if rec == nil then
  redis.call('SET', key, 'f' .. string.format('%d', now + tonumber(ARGV[1])) .. ':' .. ARGV[2])
  return { expired, 'm' }
elseif rec.kind == 'value' then
  return { expired, 'v', rec.raw }
elseif rec.kind == 'fill' then
  return { expired, 'n' }
end
return { expired, 'b' }
`;

/**
 * fill(t, v, payload): publishes only while t holds a live fill lease; anything else: no change.
 * ARGV: token, value record, ttlMs. Reply: {expired, 1 accepted | 0 rejected}.
 */
const FILL = `${PRELUDE}
local rec = load()
if rec ~= nil and rec.kind == 'fill' and rec.token == ARGV[1] then
  publish(ARGV[2], tonumber(ARGV[3]))
  return { expired, 1 }
end
return { expired, 0 }
`;

/**
 * beginWrite(w): from anything, a write record holding w. A value's version becomes the highest
 * version seen, but not its payload: a completion publishes only a version above it, so the old
 * payload would only ever be published by a completion at or below the version it replaced, which
 * a store never commits; clearing is always safe. Not carrying it saves a PTTL and a copy of the
 * payload in the record. A fill is voided. ARGV: token, leaseMs. Reply: expired (a number, not an array).
 */
const BEGIN_WRITE_BODY = `
local deadline = now + tonumber(ARGV[2])
-- The common case, no writer in flight: nothing or a value becomes a one-writer record, its header
-- written out here in save_write's encoding (no table, no cjson) when the token needs no escaping.
-- Only the record's head is read: its tag and a value's version (at most 16 digits), not the
-- payload. GETRANGE answers '' for a missing key (no record is ever empty).
local head = redis.call('GETRANGE', key, 0, 31)
local tag = string.byte(head, 1)
if (tag == nil or tag == 118) and not string.find(ARGV[1], '[%c"\\\\/]') then
  local max = tag and string.match(head, '^v(%d+):') or '0'
  redis.call('SET', key, 'w{"t":{"' .. ARGV[1] .. '":' .. string.format('%d', deadline) .. '},"m":"' .. max .. '","d":0,"x":-1}\\n')
  return 0
end
${HELPERS}
local rec = load()
if rec ~= nil and rec.kind == 'write' then
  rec.tokens[ARGV[1]] = deadline
  save_write(rec)
  return expired
end
local w = { tokens = { [ARGV[1]] = deadline }, max = '0', dirty = false, ttl = -1, pending = '' }
if rec ~= nil and rec.kind == 'value' then w.max = rec.version end
save_write(w)
return expired
`;
const BEGIN_WRITE = `${CLOCK}${BEGIN_WRITE_BODY}`;

/**
 * completeWrite(w, v, payload): with w's lease, drop w and keep the highest version; the last
 * writer publishes it, or clears a dirty record. Without a lease: invalidateOlder(v) only.
 * ARGV: token, version, value record, ttlMs. Reply: {expired, 'published'|'pending'|'cleared'|'fenced'},
 * or from the fast path the string 'published' alone (it drops no lease).
 */
const COMPLETE_WRITE_BODY = `
-- The common case: the record beginWrite's fast path wrote, holding this writer's live lease alone,
-- clean, and a version above the highest seen: publish. Anything else (several writers, another
-- encoding of the header, an expired lease): the full transition below.
local raw = redis.call('GET', key)
if raw and string.byte(raw, 1) == 119 then
  local token, deadline, max, dirty = string.match(raw, '^w{"t":{"([^"]*)":(%d+)},"m":"(%d+)","d":([01]),"x":%-?%d+}\\n')
  if token == ARGV[1] and tonumber(deadline) > now and dirty == '0' and tonumber(ARGV[2]) > tonumber(max) then
    local ttl = tonumber(ARGV[4]) -- as publish() in HELPERS
    if ttl > 0 then
      redis.call('SET', key, ARGV[3], 'PX', ttl)
    else
      redis.call('SET', key, ARGV[3])
    end
    return 'published'
  end
end
${HELPERS}
local rec = load()
if rec ~= nil and rec.kind == 'write' and rec.tokens[ARGV[1]] ~= nil then
  rec.tokens[ARGV[1]] = nil
  rec.count = rec.count - 1
  if tonumber(ARGV[2]) > tonumber(rec.max) then
    rec.max = ARGV[2]
    rec.pending = ARGV[3]
    rec.ttl = tonumber(ARGV[4])
  end
  if rec.count > 0 then
    save_write(rec)
    return { expired, 'pending' }
  end
  if rec.dirty or rec.pending == '' then
    redis.call('DEL', key)
    return { expired, 'cleared' }
  end
  publish(rec.pending, rec.ttl)
  return { expired, 'published' }
end
-- no lease (beginWrite failed, or it expired): a newer version may have been committed and
-- evicted meanwhile, so this writer may only invalidate, never publish
invalidate_older(rec, ARGV[2])
return { expired, 'fenced' }
`;
const COMPLETE_WRITE = `${CLOCK}${COMPLETE_WRITE_BODY}`;

/**
 * Several beginWrite / completeWrite calls in one script run (the adapter coalesces the calls issued
 * in one tick, on a single Redis: redis-write-batch.ts). Each call's transition is the text of its own
 * script above, run on its own key with its own arguments, so it does exactly what that script does;
 * the batch only adds that they all run in one atomic step, at one reading of the server's clock (as
 * if they had run back to back, which the single scripts may). An error in one transition (a key that
 * holds no Lockstep record, a refused write) is that call's reply alone: the others still run; past
 * maxmemory the run is refused whole (the probe below: Redis's OOM check covers a script's first write only).
 * KEYS: one per call. ARGV: per call, in KEYS order, 'b' token leaseMs | 'c' token version value ttlMs.
 * Reply: per call, its own script's reply, or {'error', message}.
 */
const WRITE_BATCH = `
-- Past maxmemory, Redis refuses a script's first write that may grow memory (deny-oom) and lets
-- every write after a first one through (it cannot stop a script halfway). Alone, each call meets
-- that check at its own first write; in one run, a call whose only write is a DEL (not deny-oom:
-- completing a dirty record, dropping an expired lease) would let through the payloads of every
-- call after it. So the run asks first, with a deny-oom write that changes nothing, and is refused
-- whole (every call fails, as a call that writes would alone).
local probe = redis.pcall('SETRANGE', KEYS[1], 0, '')
if type(probe) == 'table' and type(probe.err) == 'string' and string.sub(probe.err, 1, 3) == 'OOM' then
  return redis.error_reply(probe.err)
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function begin_write(key, ARGV)
  local expired = 0
${BEGIN_WRITE_BODY}
end
local function complete_write(key, ARGV)
  local expired = 0
${COMPLETE_WRITE_BODY}
end
local replies = {}
local at = 1
for i = 1, #KEYS do
  local op = ARGV[at]
  local ok, reply
  if op == 'b' then
    ok, reply = pcall(begin_write, KEYS[i], { ARGV[at + 1], ARGV[at + 2] })
    at = at + 3
  elseif op == 'c' then
    ok, reply = pcall(complete_write, KEYS[i], { ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4] })
    at = at + 5
  else
    return redis.error_reply('ERR lockstep: unknown call in a write batch')
  end
  if not ok then
    if type(reply) == 'table' then reply = reply.err end
    reply = { 'error', tostring(reply) }
  end
  replies[i] = reply
end
return replies
`;

/**
 * abortWrite(w): drop w's lease; the last writer leaves nothing. Without a lease: no change.
 * ARGV: token. Reply: {expired}.
 */
const ABORT_WRITE = `${PRELUDE}
local rec = load()
if rec ~= nil and rec.kind == 'write' and rec.tokens[ARGV[1]] ~= nil then
  rec.tokens[ARGV[1]] = nil
  rec.count = rec.count - 1
  if rec.count == 0 then
    redis.call('DEL', key)
  else
    save_write(rec)
  end
end
return { expired }
`;

/** invalidateOlder(v). ARGV: version. Reply: {expired}. */
const INVALIDATE_OLDER = `${PRELUDE}
invalidate_older(load(), ARGV[1])
return { expired }
`;

/**
 * peek: the record as it is, without creating a lease (expired leases are dropped first, as any
 * touch of the key does). Reply: {expired, '-'} nothing | {expired, 'v', now, pttl, raw} |
 * {expired, 'f', deadline} | {expired, 'w', writers, maxVersion, dirty 0|1, last deadline}.
 */
const PEEK = `${PRELUDE}
local rec = load()
if rec == nil then
  return { expired, '-' }
elseif rec.kind == 'value' then
  return { expired, 'v', now, redis.call('PTTL', key), rec.raw }
elseif rec.kind == 'fill' then
  return { expired, 'f', rec.deadline }
end
local last = 0
for _, deadline in pairs(rec.tokens) do
  if deadline > last then last = deadline end
end
return { expired, 'w', rec.count, rec.max, rec.dirty and 1 or 0, last }
`;

/**
 * saveJournalCursor(id, replace, value): set if greater (or if replace), so the cursor never moves
 * backwards except on purpose; no TTL. The value is "<id>" or "<id> <stamp>"; a cursor saved
 * before stamps existed is a bare id, read the same way.
 * ARGV: id, '1' to replace, value. Reply: the value after the call.
 */
const SAVE_CURSOR = `
local current = redis.call('GET', KEYS[1])
if ARGV[2] == '1' or not current or tonumber(string.match(current, '^%d+')) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[3])
  return ARGV[3]
end
return current
`;

// ---------------------------------------------------------------------------------------------
// Redis Cluster: the dataset guard per slot (docs/protocol.md, "A cache that rolls back: Redis Cluster").
//
// A single Redis is guarded per connection (redis-dataset.ts); a cluster client routes and
// reconnects inside node-redis, so there the guard runs inside every script instead. Each script
// gets KEYS = [record, incarnation key of its slot] (redis-slots.ts) and the quarantine length as
// its last ARGV. The incarnation key holds `<identity> <quarantine end ms> <token>`, where the
// identity is the serving process's run_id and its replication id (INFO server, replication): a
// restart (with or without a snapshot) draws a new run_id, and a promotion (a failover, also back
// to a process that was a replica meanwhile and resynced an older dataset) a new replication id.
// When the key is missing or names another identity, the script claims the slot: a fresh token,
// a quarantine end of the server's TIME plus the quarantine (none for a missing key on a node up for
// longer than the quarantine and never promoted: a first use, as redis-dataset.ts's uptime rule). Every record written in cluster mode
// starts with the token of the slot it was written under and '|'; a record with another stamp (or
// none: an older Lockstep) is from a lost incarnation and is treated as absent (and removed), which
// is the single-Redis flush, per slot, in O(1). A token starts with 's', which no record encoding
// does, so an older Lockstep on the same prefix refuses a stamped record instead of misreading it. Until the end has passed on the server's clock,
// every script fails with 'ERR lockstep: quarantined <ms left> <end> <1 if this call claimed>'.
// The hit path is a script too (HIT below): no raw record reaches the adapter unchecked.

/** The guard, run right after CLOCK: sets S, the stamp of the slot's current incarnation (with its '|'), or fails. */
const GUARD = `
local FIRST_USE_KEYS = 256
local info = redis.call('INFO', 'server', 'replication')
-- Plain finds (memchr), not patterns: a pattern scan of INFO's ~2 KB cost more than INFO itself.
local at_run = string.find(info, 'run_id:', 1, true) + 7
local at_repl = string.find(info, 'master_replid:', 1, true) + 14
local id = string.sub(info, at_run, at_run + 39) .. '/' .. string.sub(info, at_repl, at_repl + 39)
local inc = KEYS[2]
local held = redis.call('GET', inc)
local S, qend
if held then
  local hid, hend, htok = string.match(held, '^(%S+) (%d+) (%S+)$')
  if hid == id then
    S = htok .. '|'
    qend = tonumber(hend)
  end
end
if S == nil then
  local tok = 's' .. string.sub(id, 1, 8) .. string.sub(id, 42, 49) .. ':' .. clock[1] .. '.' .. clock[2]
  local q = tonumber(ARGV[#ARGV])
  -- A missing key on a node that was never promoted (no second replication id) and has been up for
  -- longer than the quarantine is a first use of the slot: a lease lost before then has expired.
  -- Only while the slot holds no key under the prefix: a key deleted or evicted under the live
  -- process (or records moved in without it) leaves the slot's records, whose write leases this
  -- claim loses. Keys of other prefixes may share the slot; more than FIRST_USE_KEYS keys in it are
  -- not looked through (a quarantine then, as after a loss).
  local at_up = string.find(info, 'uptime_in_seconds:', 1, true) + 18
  local at_repl2 = string.find(info, 'master_replid2:', 1, true) + 15
  if not held and tonumber(string.match(info, '^%d+', at_up)) * 1000 >= q
     and string.sub(info, at_repl2, at_repl2 + 39) == '0000000000000000000000000000000000000000' then
    local base = string.match(inc, '^(.*)#inc{[0-9a-z]+}$')
    -- pcall: a user whose ACL refuses these CLUSTER subcommands gets a quarantine, not a failed call.
    local slot = redis.pcall('CLUSTER', 'KEYSLOT', inc)
    local count = type(slot) == 'number' and redis.pcall('CLUSTER', 'COUNTKEYSINSLOT', slot)
    local ours = base == nil or type(count) ~= 'number' or count > FIRST_USE_KEYS
    if not ours and count > 0 then
      local keys = redis.pcall('CLUSTER', 'GETKEYSINSLOT', slot, count)
      if type(keys) ~= 'table' or keys.err then ours = true else
        for _, other in ipairs(keys) do
          if string.sub(other, 1, #base) == base then ours = true end
        end
      end
    end
    if not ours then q = 0 end
  end
  qend = now + q
  redis.call('SET', inc, id .. ' ' .. string.format('%d', qend) .. ' ' .. tok)
  S = tok .. '|'
  if qend > now then
    return redis.error_reply('ERR lockstep: quarantined ' .. string.format('%d', qend - now) .. ' ' .. string.format('%d', qend) .. ' 1')
  end
end
if now < qend then
  return redis.error_reply('ERR lockstep: quarantined ' .. string.format('%d', qend - now) .. ' ' .. string.format('%d', qend) .. ' 0')
end
`;

/** A record's stamp did not match S: a stale one (stamped, or unstamped from an older Lockstep) is absent, anything else is not ours. */
const STALE = `
  if string.sub(raw, 1, #S) ~= S then
    if string.find(raw, '^s%x+:%d+%.%d+|') or string.find(raw, '^[vfw]') then
      redis.call('DEL', key)
      return nil
    end
    error({ err = 'ERR lockstep: ' .. key .. ' does not hold a Lockstep cache record' })
  end
  raw = string.sub(raw, #S + 1)`;

/** Replaces `find` in `text` exactly `count` times (a script that no longer has it must not silently lose the guard). */
function swap(text: string, find: string, replace: string, count = 1): string {
  const parts = text.split(find);
  if (parts.length !== count + 1) throw new Error(`redis-scripts: expected ${count} occurrence(s) of ${JSON.stringify(find)}, found ${parts.length - 1}`);
  return parts.join(replace);
}

/** The cluster variant of a transition script: the guard after the clock, every record written stamped, every record read checked. */
function clusterize(source: string): string {
  let text = swap(source, 'local expired = 0\n', `local expired = 0\n${GUARD}`);
  // HELPERS (absent from a fast path that returns before them): save_write, publish, load.
  if (text.includes('local function load()')) {
    text = swap(text, "redis.call('SET', key, 'w' .. header", "redis.call('SET', key, S .. 'w' .. header");
    text = swap(text, "redis.call('SET', key, value, 'PX', ttl)", "redis.call('SET', key, S .. value, 'PX', ttl)");
    text = swap(text, "redis.call('SET', key, value)", "redis.call('SET', key, S .. value)");
    text = swap(text, "  if not raw then return nil end\n", `  if not raw then return nil end${STALE}\n`);
  }
  return text;
}

/** getOrLease's fill lease, stamped. */
function clusterGetOrLease(source: string): string {
  return swap(clusterize(source), "redis.call('SET', key, 'f' ..", "redis.call('SET', key, S .. 'f' ..");
}

/** beginWrite: its fast path reads the stamp with the head, and writes it. */
function clusterBeginWrite(source: string): string {
  let text = clusterize(source);
  text = swap(
    text,
    "local head = redis.call('GETRANGE', key, 0, 31)\nlocal tag = string.byte(head, 1)\n",
    "local head = redis.call('GETRANGE', key, 0, #S + 31)\nlocal tag = nil\nif head ~= '' then\n  if string.sub(head, 1, #S) == S then tag = string.byte(head, #S + 1) else tag = 0 end\nend\n",
  );
  text = swap(text, "string.match(head, '^v(%d+):')", "string.match(head, '^v(%d+):', #S + 1)");
  text = swap(text, "redis.call('SET', key, 'w{\"t\":{\"'", "redis.call('SET', key, S .. 'w{\"t\":{\"'");
  return text;
}

/** completeWrite: its fast path matches the record after the stamp, and publishes stamped. */
function clusterCompleteWrite(source: string): string {
  let text = clusterize(source);
  text = swap(text, 'if raw and string.byte(raw, 1) == 119 then', 'if raw and string.sub(raw, 1, #S) == S and string.byte(raw, #S + 1) == 119 then');
  text = swap(text, '\\n\')\n', "\\n', #S + 1)\n");
  text = swap(text, "redis.call('SET', key, ARGV[3], 'PX', ttl)", "redis.call('SET', key, S .. ARGV[3], 'PX', ttl)");
  text = swap(text, "redis.call('SET', key, ARGV[3])", "redis.call('SET', key, S .. ARGV[3])");
  return text;
}

/**
 * The cluster read: the guard, then a value stamped with the current token is the answer (its raw
 * record, stamp included, as a plain string: the adapter strips it); anything else runs getOrLease.
 * ARGV: fillLeaseMs, token, quarantineMs. Reply: the stamped value record, or getOrLease's reply.
 */
function clusterHit(getOrLease: string): string {
  const helpers = '\n-- A write record back to its key: a plain SET';
  return swap(
    getOrLease,
    helpers,
    `\nlocal hit = redis.call('GET', key)\nif hit and string.sub(hit, 1, #S) == S and string.byte(hit, #S + 1) == 118 then return hit end\n${helpers}`,
  );
}

export interface LuaScript {
  readonly name: string;
  readonly source: string;
  /** SHA1 of the source: the name EVALSHA calls it by. */
  readonly sha: string;
}

function define(name: string, source: string): LuaScript {
  return Object.freeze({ name, source, sha: createHash('sha1').update(source).digest('hex') });
}

export const SCRIPTS = Object.freeze({
  getOrLease: define('getOrLease', GET_OR_LEASE),
  fill: define('fill', FILL),
  beginWrite: define('beginWrite', BEGIN_WRITE),
  completeWrite: define('completeWrite', COMPLETE_WRITE),
  writeBatch: define('writeBatch', WRITE_BATCH),
  abortWrite: define('abortWrite', ABORT_WRITE),
  invalidateOlder: define('invalidateOlder', INVALIDATE_OLDER),
  peek: define('peek', PEEK),
  saveCursor: define('saveCursor', SAVE_CURSOR),
});

export type ScriptName = keyof typeof SCRIPTS;

/** The transition scripts in cluster mode: KEYS = [record, incarnation key], ARGV = the single-Redis ones + the quarantine in ms. */
export const CLUSTER_SCRIPTS = Object.freeze({
  getOrLease: define('getOrLease', clusterGetOrLease(GET_OR_LEASE)),
  fill: define('fill', clusterize(FILL)),
  beginWrite: define('beginWrite', clusterBeginWrite(BEGIN_WRITE)),
  completeWrite: define('completeWrite', clusterCompleteWrite(COMPLETE_WRITE)),
  abortWrite: define('abortWrite', clusterize(ABORT_WRITE)),
  invalidateOlder: define('invalidateOlder', clusterize(INVALIDATE_OLDER)),
  peek: define('peek', clusterize(PEEK)),
  hit: define('hit', clusterHit(clusterGetOrLease(GET_OR_LEASE))),
});

export type ClusterScriptName = keyof typeof CLUSTER_SCRIPTS;
