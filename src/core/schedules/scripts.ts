import { luaScript } from "../guard/scripts.js";

/**
 * The registry's Lua scripts. Every key they touch shares the `{schedules}` hash tag, so they stay
 * single-slot on Redis Cluster. KEYS are always: definitions (hash id -> JSON), due (sorted set
 * id -> ms at which a tick should look at it), fires (hash id -> "<fireMs>:<attempt>", the fire
 * that is pending), and for SET_PENDING the events stream.
 * Definitions hold only scalars (the payload is stored as JSON text), so cjson round-trips them.
 */

/**
 * The end of a schedule write (UPSERT and PATCH): stores `def` (encoded), resets its pending fire
 * to ARGV[4] when `reset`, and puts it in or out of the due set. Expects `id`, `def`, `reset` and
 * KEYS 1-3 (definitions, due, fires) as both scripts have them; defines `encoded` and `fire`.
 */
const WRITE_SCHEDULE = `local encoded = cjson.encode(def)
redis.call('HSET', KEYS[1], id, encoded)
if reset then redis.call('HSET', KEYS[3], id, ARGV[4] .. ':0') end
local fire = redis.call('HGET', KEYS[3], id)
if not def.enabled then
  redis.call('ZREM', KEYS[2], id)
elseif reset then
  redis.call('ZADD', KEYS[2], ARGV[4], id)
else
  redis.call('ZADD', KEYS[2], 'NX', string.match(fire, '^(%d+)'), id)
end
`;

/**
 * ARGV: id, definition JSON (with fingerprint; `enabled` only when the caller set it), nowMs,
 * next fire ms (the first fire after now). Creates, updates or leaves alone. The pending fire is
 * reset only when the timing changed or the schedule is resumed, so a redeploy with the same code
 * changes nothing and a changed handler or payload keeps its place, its pause state and history.
 */
export const UPSERT_SCRIPT = luaScript(
  "schedule-upsert",
  `local id = ARGV[1]
local def = cjson.decode(ARGV[2])
local raw = redis.call('HGET', KEYS[1], id)
local outcome = 'created'
local reset = true
if raw then
  local old = cjson.decode(raw)
  local enabled = def.enabled
  if enabled == nil then enabled = old.enabled end
  if old.fingerprint == def.fingerprint and old.enabled == enabled then
    return cjson.encode({ outcome = 'unchanged', schedule = raw,
      fire = redis.call('HGET', KEYS[3], id) })
  end
  def.enabled = enabled
  def.createdAt = old.createdAt
  def.version = old.version + 1
  outcome = 'updated'
  reset = old.cron ~= def.cron or old.timezone ~= def.timezone or (enabled and not old.enabled)
    or not redis.call('HGET', KEYS[3], id)
else
  if def.enabled == nil then def.enabled = true end
  def.createdAt = tonumber(ARGV[3])
  def.version = 1
end
def.updatedAt = tonumber(ARGV[3])
${WRITE_SCHEDULE}return cjson.encode({ outcome = outcome, schedule = encoded, fire = fire })`,
  { quorum: { merge: "registry-write" } },
);

/** ARGV: id, "1" (resume) or "0" (pause), nowMs, next fire ms. Resuming starts from the next fire. */
export const SET_ENABLED_SCRIPT = luaScript(
  "schedule-enable",
  `local id = ARGV[1]
local raw = redis.call('HGET', KEYS[1], id)
if not raw then return cjson.encode({ outcome = 'missing' }) end
local def = cjson.decode(raw)
local enabled = ARGV[2] == '1'
if def.enabled == enabled then
  return cjson.encode({ outcome = 'unchanged', schedule = raw, fire = redis.call('HGET', KEYS[3], id) })
end
def.enabled = enabled
def.updatedAt = tonumber(ARGV[3])
def.version = def.version + 1
local encoded = cjson.encode(def)
redis.call('HSET', KEYS[1], id, encoded)
if enabled then
  redis.call('HSET', KEYS[3], id, ARGV[4] .. ':0')
  redis.call('ZADD', KEYS[2], ARGV[4], id)
else
  redis.call('ZREM', KEYS[2], id)
end
return cjson.encode({ outcome = 'updated', schedule = encoded, fire = redis.call('HGET', KEYS[3], id) })`,
  { quorum: { merge: "registry-write" } },
);

/** ARGV: id. 1 when it existed. */
export const DELETE_SCRIPT = luaScript(
  "schedule-delete",
  `redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])`,
  { quorum: { merge: "registry-write" } },
);

/** ARGV: id. The stored definition, pending fire and due time (each nil when absent). */
export const READ_SCRIPT = luaScript(
  "schedule-read",
  `return cjson.encode({ schedule = redis.call('HGET', KEYS[1], ARGV[1]),
  fire = redis.call('HGET', KEYS[3], ARGV[1]), dueAt = redis.call('ZSCORE', KEYS[2], ARGV[1]) })`,
  { quorum: { merge: "registry-read" } },
);

/** ARGV: cursor, count. One HSCAN page of definitions with their pending fires. */
export const LIST_SCRIPT = luaScript(
  "schedule-list",
  `local page = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local items = {}
local entries = page[2]
for i = 1, #entries, 2 do
  items[#items + 1] = { id = entries[i], schedule = entries[i + 1],
    fire = redis.call('HGET', KEYS[3], entries[i]) }
end
return cjson.encode({ cursor = page[1], items = items })`,
  { quorum: { merge: "registry-list" } },
);

/**
 * ARGV: nowMs, spread (0 <= x < 1), count, optional max bytes. Up to `count` schedules due by
 * `nowMs` (each with its due time), starting at a position chosen by `spread` among all of them and
 * wrapping around to the first ones, so that concurrent ticks start in different places even when
 * fewer than `count` are due. With max bytes, it stops adding schedules once their definitions
 * reach that many bytes (always one at least), so a large look stays a modest reply whatever the
 * payloads. O(log N + due): the sorted set is ordered by due time. Also their number.
 */
export const PEEK_SCRIPT = luaScript(
  "schedule-peek",
  `local total = redis.call('ZCOUNT', KEYS[2], '-inf', ARGV[1])
local count = tonumber(ARGV[3])
local maxBytes = tonumber(ARGV[4] or '')
local offset = math.floor(tonumber(ARGV[2]) * total)
local page = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, count)
if #page < 2 * count and offset > 0 then
  local wrapped = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
    math.min(offset, count - #page / 2))
  for _, entry in ipairs(wrapped) do page[#page + 1] = entry end
end
local items = {}
local bytes = 0
for i = 1, #page, 2 do
  local id = page[i]
  local raw = redis.call('HGET', KEYS[1], id)
  local fire = redis.call('HGET', KEYS[3], id)
  if raw and fire then
    if maxBytes and #items > 0 and bytes + #raw > maxBytes then break end
    bytes = bytes + #raw
    items[#items + 1] = { id = id, schedule = raw, fire = fire, due = tonumber(page[i + 1]) }
  end
end
return cjson.encode({ total = total, items = items })`,
  { quorum: { merge: "registry-items" } },
);

/**
 * ARGV: before ms, cursor score ('' for the first page), cursor id, count. One page of the
 * schedules whose due time is at or before `before` (paused ones are not in the due set), oldest
 * first, with the cursor of the next page (false at the end). The cursor is the last member seen:
 * the next page starts after it (ZRANK) while it is still where it was, else at the first member
 * of its due time (a repeat, never a gap: members only move later, when a tick settles them).
 * O(log N + page), whatever the number of schedules.
 */
export const OVERDUE_SCRIPT = luaScript(
  "schedule-overdue",
  `local count = tonumber(ARGV[4])
local start = 0
if ARGV[2] ~= '' then
  local score = redis.call('ZSCORE', KEYS[2], ARGV[3])
  if score and tonumber(score) == tonumber(ARGV[2]) then
    start = redis.call('ZRANK', KEYS[2], ARGV[3]) + 1
  else
    start = redis.call('ZCOUNT', KEYS[2], '-inf', '(' .. ARGV[2])
  end
end
local page = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', start, count)
local items = {}
for i = 1, #page, 2 do
  local raw = redis.call('HGET', KEYS[1], page[i])
  local fire = redis.call('HGET', KEYS[3], page[i])
  if raw and fire then items[#items + 1] = { id = page[i], schedule = raw, fire = fire } end
end
local cursor = false
if #page == 2 * count then cursor = page[#page] .. ':' .. page[#page - 1] end
return cjson.encode({ items = items, cursor = cursor })`,
  { quorum: { merge: "registry-items" } },
);

/**
 * KEYS: definitions, due, fires, events. ARGV: id, expected pending fire ("<ms>:<attempt>"), new
 * pending fire, due at ms, event JSON ('' for none), events to keep, optional second event JSON.
 * Compare-and-set: only the first of several instances that settled the same fire moves it on and
 * records its events ('set'); the others learn 'moved' (or 'gone'), record nothing and count nothing.
 * Idempotent: repeating a call that was applied (its answer lost) changes nothing and answers
 * 'same' (the pending fire already is the new one).
 */
export const SET_PENDING_SCRIPT = luaScript(
  "schedule-advance",
  `local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 'gone' end
local current = redis.call('HGET', KEYS[3], ARGV[1])
if current == ARGV[3] then return 'same' end
if current ~= ARGV[2] then return 'moved' end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
if cjson.decode(raw).enabled then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) end
for _, event in ipairs({ ARGV[5], ARGV[7] or '' }) do
  if event ~= '' then
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'schedule', ARGV[1], 'event', event)
  end
end
return 'set'`,
  { quorum: { merge: "registry-write" } },
);

/** KEYS: events. ARGV: count. The latest registry events (dead and missed fires), newest first. */
export const EVENTS_SCRIPT = luaScript(
  "schedule-events",
  `local events = {}
for i, entry in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[1])) do
  events[i] = { id = entry[1], schedule = entry[2][2], event = entry[2][4] }
end
return cjson.encode(events)`,
  { quorum: { merge: "registry-events" } },
);

/**
 * ARGV: id, definition JSON (with fingerprint and `enabled`), nowMs, next fire ms, the version the
 * definition was merged onto. A PATCH's compare-and-set: `conflict` (and the stored schedule, to
 * merge onto) when another write came first, `missing` when there is no schedule; else like an
 * update of UPSERT_SCRIPT (the pending fire reset only when the timing changed or it resumed).
 */
export const PATCH_SCRIPT = luaScript(
  "schedule-patch",
  `local id = ARGV[1]
local raw = redis.call('HGET', KEYS[1], id)
if not raw then return cjson.encode({ outcome = 'missing' }) end
local old = cjson.decode(raw)
if old.version ~= tonumber(ARGV[5]) then
  return cjson.encode({ outcome = 'conflict', schedule = raw, fire = redis.call('HGET', KEYS[3], id) })
end
local def = cjson.decode(ARGV[2])
if old.fingerprint == def.fingerprint and old.enabled == def.enabled then
  return cjson.encode({ outcome = 'unchanged', schedule = raw, fire = redis.call('HGET', KEYS[3], id) })
end
def.createdAt = old.createdAt
def.version = old.version + 1
def.updatedAt = tonumber(ARGV[3])
local reset = old.cron ~= def.cron or old.timezone ~= def.timezone
  or (def.enabled and not old.enabled) or not redis.call('HGET', KEYS[3], id)
${WRITE_SCHEDULE}return cjson.encode({ outcome = 'updated', schedule = encoded, fire = fire })`,
  { quorum: { merge: "registry-write" } },
);

/**
 * KEYS: the schedule's job keys (one hash tag, not the registry's): slot index, runs, running,
 * ledger. ARGV: slot key prefix. Deletes its history: the runs stream, the ledger, the slot index
 * and every slot key the index or the ledger names, but a claim still running (its run finishes
 * and is recorded as usual) and the fencing counter (fencing tokens never go back). Answers the
 * number of keys deleted.
 */
export const PURGE_HISTORY_SCRIPT = luaScript(
  "schedule-purge-history",
  `local function running(key)
  local raw = redis.call('GET', key)
  if not raw then return false end
  local ok, state = pcall(cjson.decode, raw)
  return ok and type(state) == 'table' and state.state == 'running'
end
local deleted = 0
local seen = {}
local function drop(slot)
  if seen[slot] then return end
  seen[slot] = true
  local key = ARGV[1] .. slot
  if not running(key) then deleted = deleted + redis.call('DEL', key) end
end
for _, slot in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do drop(slot) end
for _, field in ipairs(redis.call('HKEYS', KEYS[4])) do
  if string.sub(field, 1, 1) ~= '~' then drop(field) end
end
if not running(KEYS[3]) then deleted = deleted + redis.call('DEL', KEYS[3]) end
return deleted + redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])`,
);
