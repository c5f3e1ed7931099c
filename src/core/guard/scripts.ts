/**
 * The Lua scripts behind every round trip. Each answers with one JSON document (or an integer) so
 * that the reply reads the same whatever the client's deserialization settings are.
 * Their SHA1 digests are pinned by a test: changing a script is a deliberate, visible act.
 */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  /** How a quorum of databases merges this script's answers; absent for an undeclared script. */
  readonly quorum?: QuorumDeclaration;
  sha1(): Promise<string>;
}

/**
 * How a quorum (`core/quorum`) merges the answers of its databases to one script. A script
 * declares it where it is written, so that the quorum knows no feature:
 * - `claim`, `complete`, `extend`, `withdraw`, `status`: the guard's own protocol (see quorum/).
 * - `registry-write`: changes the one record its first argument names; runs only where a majority
 *   agrees on that record's state, then needs a majority of identical answers.
 * - `registry-read`: reads the one record its first argument names; a majority of identical answers.
 * - `registry-items`: answers `{ items: [{ id }, ...] }`; a majority of identical answers, and the
 *   databases that differ get the listed records repaired.
 * - `registry-list`: ARGV cursor, count; a page of the whole registry, merged record by record.
 * - `registry-events`: a list of `{ id, schedule, event }`; an event shows when a majority holds it.
 * A script that declares nothing gets the answer a majority gave identically (else the first one).
 */
export type QuorumMerge =
  | "claim"
  | "complete"
  | "extend"
  | "withdraw"
  | "status"
  | "registry-write"
  | "registry-read"
  | "registry-items"
  | "registry-list"
  | "registry-events";

export interface QuorumDeclaration {
  readonly merge: QuorumMerge;
}

export interface LuaScriptOptions {
  /** How a quorum merges this script's answers (see QuorumMerge). */
  quorum?: QuorumDeclaration;
}

/** Every script that declared a quorum merge, in the order its module was loaded. */
const declared: LuaScript[] = [];
const declaredBySource = new Map<string, LuaScript>();
const declaredBySha1 = new Map<string, LuaScript>();
let hashedCount = 0;
let hashing: Promise<void> = Promise.resolve();

export function luaScript(name: string, source: string, options: LuaScriptOptions = {}): LuaScript {
  let digest: Promise<string> | undefined;
  const quorum = options.quorum ? Object.freeze({ merge: options.quorum.merge }) : undefined;
  const script: LuaScript = Object.freeze({
    name,
    source,
    ...(quorum ? { quorum } : {}),
    sha1() {
      digest ??= sha1Hex(source);
      return digest;
    },
  });
  if (quorum && !declaredBySource.has(source)) {
    declared.push(script);
    declaredBySource.set(source, script);
  }
  return script;
}

/**
 * The declared script with this source, if its module has been loaded by now. Looked up at each
 * call, so a module loaded after a quorum store was made is known to it from then on.
 */
export function declaredScriptBySource(source: string): LuaScript | undefined {
  return declaredBySource.get(source);
}

/** The declared script with this SHA1 digest, if its module has been loaded by now. */
export async function declaredScriptBySha1(sha1: string): Promise<LuaScript | undefined> {
  if (hashedCount < declared.length) {
    const fresh = declared.slice(hashedCount);
    hashedCount = declared.length;
    hashing = Promise.all([
      hashing,
      ...fresh.map(async (script) => {
        const digest = await script.sha1();
        if (!declaredBySha1.has(digest)) declaredBySha1.set(digest, script);
      }),
    ]).then(() => undefined);
  }
  await hashing;
  return declaredBySha1.get(sha1);
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
 * Lua: the slot ledger, a hash per job. Field `<slotId>` holds `<score>` then, per finished run of
 * the slot, `;<o><fence>,<finishedAtMs - score>` (oldest first, the last 8 kept), where `o` is the
 * outcome's letter (d done, f failed, r released, l lost), upper case for a forced run: about 100
 * bytes of Redis memory per slot. Meta fields start with `~`, which no slot id contains: `~since`
 * (the first claim's time), `~fence0` (the fence counter before it: 0 when the ledger has seen
 * every claim of the job), `~floor` (the highest score ever evicted, by age or count), `~sweep`
 * (when the next age sweep is due). The hash expires a day after it has been idle for the age bound.
 *
 * Vouching for a slot the ledger holds no run of: every run of a slot is entered when it finishes
 * and leaves only by eviction, which raises `~floor` to its score; so a slot above the floor has
 * not run while this ledger existed. Before it existed (the job's fence was already above 0: an
 * earlier ledger expired after idling), only runs older than the age bound can have been
 * forgotten, because an idle ledger expires a day after its newest entry reached that age.
 */
const LEDGER = `local OUTCOMES = { d = 'done', f = 'failed', r = 'released', l = 'lost' }
local LETTERS = { done = 'd', failed = 'f', released = 'r', lost = 'l' }
local function ledger_runs(record)
  local runs = {}
  if not record then return nil, runs end
  local score = tonumber(string.match(record, '^([^;]*)'))
  for letter, fence, delta in string.gmatch(record, ';(%a)(%d+),(%-?%d+)') do
    runs[#runs + 1] = { outcome = OUTCOMES[string.lower(letter)], fence = tonumber(fence),
      finishedAt = score + tonumber(delta), forced = letter ~= string.lower(letter) }
  end
  return score, runs
end
local function ledger_vouched(ledger, fenceKey, score, now, maxAge)
  local floor = tonumber(redis.call('HGET', ledger, '~floor') or '')
  if floor ~= nil and score <= floor then return false end
  local fence0 = tonumber(redis.call('HGET', ledger, '~fence0') or '')
  if fence0 == nil then fence0 = tonumber(redis.call('GET', fenceKey) or '0') end
  return fence0 == 0 or score >= now - maxAge
end
local function ledger_append(ledger, slot, score, outcome, fence, finished, forced, now, maxAge, maxSlots)
  local record = redis.call('HGET', ledger, slot) or string.format('%d', score)
  local base = tonumber(string.match(record, '^([^;]*)'))
  local kept = {}
  for run in string.gmatch(record, ';[^;]*') do kept[#kept + 1] = run end
  while #kept >= 8 do table.remove(kept, 1) end
  local letter = LETTERS[outcome]
  if forced == '1' then letter = string.upper(letter) end
  kept[#kept + 1] = ';' .. letter .. fence .. ',' .. string.format('%d', tonumber(finished) - base)
  redis.call('HSET', ledger, slot, string.match(record, '^([^;]*)') .. table.concat(kept))
  local count = redis.call('HLEN', ledger)
  local sweepAt = tonumber(redis.call('HGET', ledger, '~sweep') or '0')
  if count > maxSlots + math.max(16, math.floor(maxSlots / 10)) or now >= sweepAt then
    local entries = {}
    local flat = redis.call('HGETALL', ledger)
    for i = 1, #flat, 2 do
      if string.sub(flat[i], 1, 1) ~= '~' then
        entries[#entries + 1] = { flat[i], tonumber(string.match(flat[i + 1], '^([^;]*)')) or 0 }
      end
    end
    table.sort(entries, function(a, b) return a[2] < b[2] end)
    local floor = tonumber(redis.call('HGET', ledger, '~floor') or '')
    local excess = #entries - maxSlots
    local evicted = 0
    for _, entry in ipairs(entries) do
      if evicted >= excess and entry[2] >= now - maxAge then break end
      -- The run just entered stays until the next sweep, however old its slot.
      if evicted < excess or entry[1] ~= slot then
        redis.call('HDEL', ledger, entry[1])
        evicted = evicted + 1
        if floor == nil or entry[2] > floor then floor = entry[2] end
      end
    end
    if floor ~= nil then redis.call('HSET', ledger, '~floor', string.format('%d', floor)) end
    redis.call('HSET', ledger, '~sweep', string.format('%d', now + math.min(3600000, maxAge)))
  end
  redis.call('PEXPIRE', ledger, maxAge + 86400000)
end
`;

/**
 * Lua: the source record (see sources.ts), a hash per job. Field `<slotId>` holds `<score>` then,
 * per trigger source in the order they first delivered the slot, `;<source>,<deliveries>,<lagMs>`
 * where lagMs is how long after the fire time (the score) the source's first delivery reached the
 * claim. At most maxSlots slots (plus a slack before each sweep drops the oldest by score); the
 * hash expires when idle for maxAge plus a day. A delivery from a source this slot already lists
 * adds one to its count.
 */
const SOURCES = `local function record_source(key, slot, score, source, now, maxSlots, maxAge)
  local record = redis.call('HGET', key, slot)
  if not record then
    record = string.format('%d', score) .. ';' .. source .. ',1,' .. string.format('%d', now - score)
  else
    local pattern = string.gsub(source, '%-', '%%-')
    local head, count, tail = string.match(record, '^(.-;' .. pattern .. ',)(%d+)(,.*)$')
    if head then
      record = head .. (tonumber(count) + 1) .. tail
    else
      record = record .. ';' .. source .. ',1,' .. string.format('%d', now - score)
    end
  end
  redis.call('HSET', key, slot, record)
  if redis.call('HLEN', key) > maxSlots + math.max(16, math.floor(maxSlots / 10)) then
    local entries = {}
    local flat = redis.call('HGETALL', key)
    for i = 1, #flat, 2 do
      entries[#entries + 1] = { flat[i], tonumber(string.match(flat[i + 1], '^([^;]*)')) or 0 }
    end
    table.sort(entries, function(a, b) return a[2] > b[2] end)
    for i = maxSlots + 1, #entries do redis.call('HDEL', key, entries[i][1]) end
  end
  redis.call('PEXPIRE', key, maxAge + 86400000)
end
`;

/**
 * KEYS: source record. ARGV: slotId, slotScore (ms), source (`[a-z0-9-]{1,32}`), nowMs,
 * maxSlots, maxAgeMs. One delivery of a slot by a source, recorded exactly as a claim records it
 * (the same `record_source`), for a key no claim writes: the dispatch tick's record.
 */
export const RECORD_SOURCE_SCRIPT = luaScript(
  "record-source",
  `${SOURCES}record_source(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]),
  tonumber(ARGV[5]), tonumber(ARGV[6]))
return 1`,
);

/**
 * KEYS: slot, fence, slot index, running, withdrawn marker of this token, ledger, and (only read
 * when ARGV[11] names a source) the source record. ARGV: token, leaseMs, nowMs, region, slotId,
 * slotScore, overlap ("skip" | "allow"), indexLength, force ("1" | "0"), ledgerMaxAgeMs, and
 * optionally source (`[a-z0-9-]{1,32}`, "" for none), sourceMaxSlots.
 * The source is recorded first, so a claim that wins and one that is turned away count alike
 * (a withdrawn token's late copy records nothing: its delivery was answered already).
 * Winner: SET NX PX + INCR fence. Loser: the stored state back. Same token: our own retried claim.
 * A `released` slot (a failure under the release policy) is free: the claim replaces it.
 * A slot whose key expired is still `done` (or `failed`) while the ledger remembers it; one the
 * ledger cannot vouch for (older than its age bound, or evicted by its count bound) answers
 * `unvouched`. `force` runs a finished or unvouched slot again, never one that is running.
 * A token its caller withdrew (it gave up on the claim) never claims, however late it arrives.
 */
export const CLAIM_SCRIPT = luaScript(
  "claim",
  `${DECODE_STATE}${LEDGER}${SOURCES}if redis.call('EXISTS', KEYS[5]) == 1 then
  return cjson.encode({ outcome = 'withdrawn' })
end
if ARGV[11] and ARGV[11] ~= '' then
  record_source(KEYS[7], ARGV[5], tonumber(ARGV[6]), ARGV[11], tonumber(ARGV[3]),
    tonumber(ARGV[12]), tonumber(ARGV[10]))
end
local force = ARGV[9] == '1'
local now = tonumber(ARGV[3])
local score = tonumber(ARGV[6])
local _, runs = ledger_runs(redis.call('HGET', KEYS[6], ARGV[5]))
local existing = redis.call('GET', KEYS[1])
if existing then
  local state = decode(existing)
  local pttl = redis.call('PTTL', KEYS[1])
  if state.token == ARGV[1] and state.state == 'running' then
    return cjson.encode({ outcome = 'claimed', state = state, pttl = pttl, retried = true })
  end
  if state.state ~= 'released' and (state.state == 'running' or not force) then
    return cjson.encode({ outcome = 'taken', state = state, pttl = pttl })
  end
  redis.call('DEL', KEYS[1])
elseif not force then
  local last = runs[#runs]
  if last and last.outcome ~= 'released' then
    return cjson.encode({ outcome = 'taken', pttl = -2, state = { state = last.outcome,
      fence = last.fence, finishedAt = last.finishedAt, slot = ARGV[5], attempts = #runs,
      ledger = true } })
  end
  if not last and not ledger_vouched(KEYS[6], KEYS[2], score, now, tonumber(ARGV[10])) then
    return cjson.encode({ outcome = 'taken', pttl = -2, state = { state = 'unvouched',
      slot = ARGV[5] } })
  end
end
if ARGV[7] == 'skip' then
  local running = redis.call('GET', KEYS[4])
  if running then
    return cjson.encode({ outcome = 'overlap', state = decode(running), pttl = redis.call('PTTL', KEYS[4]) })
  end
end
local fence = redis.call('INCR', KEYS[2])
local state = { state = 'running', token = ARGV[1], fence = fence, startedAt = now,
  region = ARGV[4], slot = ARGV[5], attempt = #runs, score = score }
if force then state.forced = true end
local value = cjson.encode(state)
redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2])
if ARGV[7] == 'skip' then
  redis.call('SET', KEYS[4], value, 'PX', ARGV[2])
end
redis.call('ZADD', KEYS[3], score, ARGV[5])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[8]) + 1))
if redis.call('HSETNX', KEYS[6], '~since', ARGV[3]) == 1 then
  redis.call('HSET', KEYS[6], '~fence0', fence - 1)
  redis.call('PEXPIRE', KEYS[6], tonumber(ARGV[10]) + 86400000)
end
return cjson.encode({ outcome = 'claimed', state = state, pttl = tonumber(ARGV[2]) })`,
  { quorum: { merge: "claim" } },
);

/**
 * KEYS: slot, runs, running, ledger. ARGV: token, status ("done" | "failed"), retentionMs, nowMs,
 * durationMs, summary, onFailure ("release" | "keep"), historyLength, slotId, fence, region,
 * ledgerMaxAgeMs, ledgerMaxSlots, slotScore, forced ("1" | "0": the claim was forced).
 * Compare-and-set on the token; done keeps the key for the retention (never deleted on success)
 * and the ledger remembers the run far longer. A failure under "release" leaves a `released`
 * record that the next claim may replace, rather than deleting the key, so that a retried
 * completion still finds its own token.
 * A completion that finds the key gone or another claim's (`lost`) still enters a successful run
 * in the ledger as `lost`: it ran, so no later delivery may run the slot again unasked.
 * Idempotent: a retried completion of an already finished claim changes nothing, even when another
 * claim has taken the released slot since (the history already holds this claim's fence).
 */
export const COMPLETE_SCRIPT = luaScript(
  "complete",
  `${DECODE_STATE}${LEDGER}local now = tonumber(ARGV[4])
local maxAge = tonumber(ARGV[12])
local maxSlots = tonumber(ARGV[13])
local state = decode(redis.call('GET', KEYS[1]))
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
  if ARGV[2] == 'done' then
    local score = tonumber(ARGV[14])
    ledger_append(KEYS[4], ARGV[9], score, 'lost', ARGV[10], ARGV[4], ARGV[15], now, maxAge, maxSlots)
  end
  return cjson.encode({ outcome = 'lost', holder = state })
end
if state.state ~= 'running' then
  return cjson.encode({ outcome = 'recorded', state = state, repeated = true })
end
state.state = ARGV[2]
state.finishedAt = now
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
  'summary', ARGV[6], 'forced', state.forced and '1' or '0')
ledger_append(KEYS[4], ARGV[9], tonumber(state.score) or tonumber(ARGV[14]), state.state, ARGV[10],
  ARGV[4], state.forced and '1' or '0', now, maxAge, maxSlots)
return cjson.encode({ outcome = 'recorded', state = state })`,
  { quorum: { merge: "complete" } },
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
  { quorum: { merge: "withdraw" } },
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
  { quorum: { merge: "extend" } },
);

/**
 * KEYS: slot index, runs, running, fence, ledger. ARGV: slot key prefix, slotCount, runCount.
 * Read-only. The slot keys it reads share the job's hash tag with KEYS, so it stays cluster-safe.
 * `since` is when the job first claimed a slot, as far as the ledger remembers.
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
  fence = tonumber(redis.call('GET', KEYS[4]) or '0'),
  since = tonumber(redis.call('HGET', KEYS[5], '~since') or '') })`,
  { quorum: { merge: "status" } },
);

/**
 * KEYS: slot, ledger, fence. ARGV: slotId, slotScore, nowMs, ledgerMaxAgeMs. Read-only.
 * What is known about one slot: its live key (if any), every run the ledger holds for it, and
 * whether the ledger can vouch for a slot it holds no run of (within its age and count bounds).
 */
export const LOOKUP_SCRIPT = luaScript(
  "lookup",
  `${DECODE_STATE}${LEDGER}local _, runs = ledger_runs(redis.call('HGET', KEYS[2], ARGV[1]))
return cjson.encode({ state = decode(redis.call('GET', KEYS[1])), pttl = redis.call('PTTL', KEYS[1]),
  runs = runs, count = #runs,
  vouched = ledger_vouched(KEYS[2], KEYS[3], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])),
  since = tonumber(redis.call('HGET', KEYS[2], '~since') or '') })`,
);
