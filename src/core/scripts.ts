/**
 * The Lua scripts behind every round trip. Each answers with one JSON document (or an integer) so
 * that the reply reads the same whatever the client's deserialization settings are.
 * Their SHA1 digests are pinned by a test: changing a script is a deliberate, visible act.
 */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  sha1(): Promise<string>;
}

export function luaScript(name: string, source: string): LuaScript {
  let digest: Promise<string> | undefined;
  return Object.freeze({
    name,
    source,
    sha1() {
      digest ??= sha1Hex(source);
      return digest;
    },
  });
}

async function sha1Hex(text: string): Promise<string> {
  const bytes = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Lua: a stored value as a table; nil for no value; `foreign` for a value cron-guard did not write. */
const DECODE_STATE = `local function decode(raw)
  if not raw then return nil end
  local ok, value = pcall(cjson.decode, raw)
  if ok and type(value) == 'table' then return value end
  return { state = 'foreign', raw = raw }
end
`;

/**
 * KEYS: slot, fence, slot index, running, withdrawn marker of this token. ARGV: token, leaseMs,
 * nowMs, region, slotId, slotScore, overlap ("skip" | "allow"), indexLength.
 * Winner: SET NX PX + INCR fence. Loser: the stored state back. Same token: our own retried claim.
 * A `released` slot (a failure under the release policy) is free: the claim replaces it.
 * A token its caller withdrew (it gave up on the claim) never claims, however late it arrives.
 */
export const CLAIM_SCRIPT = luaScript(
  "claim",
  `${DECODE_STATE}if redis.call('EXISTS', KEYS[5]) == 1 then
  return cjson.encode({ outcome = 'withdrawn' })
end
local existing = redis.call('GET', KEYS[1])
if existing then
  local state = decode(existing)
  local pttl = redis.call('PTTL', KEYS[1])
  if state.token == ARGV[1] and state.state == 'running' then
    return cjson.encode({ outcome = 'claimed', state = state, pttl = pttl, retried = true })
  end
  if state.state ~= 'released' then
    return cjson.encode({ outcome = 'taken', state = state, pttl = pttl })
  end
  redis.call('DEL', KEYS[1])
end
if ARGV[7] == 'skip' then
  local running = redis.call('GET', KEYS[4])
  if running then
    return cjson.encode({ outcome = 'overlap', state = decode(running), pttl = redis.call('PTTL', KEYS[4]) })
  end
end
local fence = redis.call('INCR', KEYS[2])
local state = { state = 'running', token = ARGV[1], fence = fence, startedAt = tonumber(ARGV[3]),
  region = ARGV[4], slot = ARGV[5] }
local value = cjson.encode(state)
redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2])
if ARGV[7] == 'skip' then
  redis.call('SET', KEYS[4], value, 'PX', ARGV[2])
end
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[8]) + 1))
return cjson.encode({ outcome = 'claimed', state = state, pttl = tonumber(ARGV[2]) })`,
);

/**
 * KEYS: slot, runs, running. ARGV: token, status ("done" | "failed"), retentionMs, nowMs,
 * durationMs, summary, onFailure ("release" | "keep"), historyLength, slotId, fence, region.
 * Compare-and-set on the token; done keeps the key for the retention (never deleted on success).
 * A failure under "release" leaves a `released` record that the next claim may replace, rather than
 * deleting the key, so that a retried completion still finds its own token.
 * Idempotent: a retried completion of an already finished claim changes nothing, even when another
 * claim has taken the released slot since (the history already holds this claim's fence).
 */
export const COMPLETE_SCRIPT = luaScript(
  "complete",
  `${DECODE_STATE}local state = decode(redis.call('GET', KEYS[1]))
if not state or state.token ~= ARGV[1] then
  for _, entry in ipairs(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 32)) do
    local record = {}
    local fields = entry[2]
    for j = 1, #fields, 2 do record[fields[j]] = fields[j + 1] end
    if record.slot == ARGV[9] and record.fence == ARGV[10] then
      if record.status == 'lost' then return cjson.encode({ outcome = 'lost', holder = state }) end
      return cjson.encode({ outcome = 'recorded', repeated = true })
    end
  end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', 'slot', ARGV[9], 'status', 'lost',
    'fence', ARGV[10], 'region', ARGV[11], 'finishedAt', ARGV[4], 'durationMs', ARGV[5],
    'summary', ARGV[6])
  return cjson.encode({ outcome = 'lost', holder = state })
end
if state.state ~= 'running' then
  return cjson.encode({ outcome = 'recorded', state = state, repeated = true })
end
state.state = ARGV[2]
state.finishedAt = tonumber(ARGV[4])
state.durationMs = tonumber(ARGV[5])
state.summary = ARGV[6]
if ARGV[2] == 'failed' and ARGV[7] == 'release' then
  state.state = 'released'
end
redis.call('SET', KEYS[1], cjson.encode(state), 'PX', ARGV[3])
local running = decode(redis.call('GET', KEYS[3]))
if running and running.token == ARGV[1] then
  redis.call('DEL', KEYS[3])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', 'slot', ARGV[9], 'status', ARGV[2],
  'fence', ARGV[10], 'region', ARGV[11], 'finishedAt', ARGV[4], 'durationMs', ARGV[5],
  'summary', ARGV[6])
return cjson.encode({ outcome = 'recorded', state = state })`,
);

/**
 * KEYS: slot, running, withdrawn marker of this token. ARGV: token, markerTtlMs.
 * Withdraws a claim whose caller gave up waiting for its answer: deletes the slot and running keys
 * if they hold this token's claim, and leaves a marker so that the claim, should it reach Redis only
 * now, refuses to run. 1 when a claim was withdrawn, 0 when none was there. Idempotent.
 */
export const WITHDRAW_SCRIPT = luaScript(
  "withdraw",
  `${DECODE_STATE}local function ours(key)
  local state = decode(redis.call('GET', key))
  return state ~= nil and state.token == ARGV[1] and state.state == 'running'
end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
if ours(KEYS[2]) then redis.call('DEL', KEYS[2]) end
if ours(KEYS[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`,
);

/**
 * KEYS: slot, running. ARGV: token, leaseMs.
 * Extends the lease in milliseconds, only while the key still holds our running claim. 1 or 0.
 */
export const EXTEND_SCRIPT = luaScript(
  "extend",
  `local function owned(key)
  local raw = redis.call('GET', key)
  if not raw then return false end
  local ok, state = pcall(cjson.decode, raw)
  return ok and type(state) == 'table' and state.token == ARGV[1] and state.state == 'running'
end
if not owned(KEYS[1]) then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if owned(KEYS[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1`,
);

/**
 * KEYS: slot index, runs, running, fence. ARGV: slot key prefix, slotCount, runCount.
 * Read-only. The slot keys it reads share the job's hash tag with KEYS, so it stays cluster-safe.
 */
export const STATUS_SCRIPT = luaScript(
  "status",
  `${DECODE_STATE}local slots = {}
for i, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)) do
  local key = ARGV[1] .. id
  slots[i] = { slot = id, pttl = redis.call('PTTL', key), state = decode(redis.call('GET', key)) }
end
local runs = {}
for i, entry in ipairs(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[3])) do
  local run = { id = entry[1] }
  local fields = entry[2]
  for j = 1, #fields, 2 do run[fields[j]] = fields[j + 1] end
  runs[i] = run
end
return cjson.encode({ slots = slots, runs = runs, running = decode(redis.call('GET', KEYS[3])),
  fence = tonumber(redis.call('GET', KEYS[4]) or '0') })`,
);
