/**
 * Quorum mode: one guard across N (odd, >= 3) independent Redis databases, Redlock-style.
 *
 * `createQuorumStore(stores)` is a GuardStore adapter: the guard (and the schedule registry) use it
 * unchanged, as if it were one store. It recognises cron-guard's own scripts by their SHA1 (or
 * source) and merges the answers of the databases per script:
 *
 * - CLAIM runs on every store in parallel, each with a per-store timeout, as a quorum-only wrapper
 *   around CLAIM_SCRIPT's own source that also reads, atomically, the job's fence counter and
 *   whether the database holds the job's history (its run history stream or the quorum marker
 *   `<prefix>:{<job>}:quorum` exists). A database that holds none of it while another answering
 *   one does is amnesiac (it lost its data, or missed every run so far): its `claimed` is no vote.
 *   The claim wins when a majority answers `claimed` for our token with votes, no database
 *   answered that the slot is over (`taken` with a final state: done, failed, lost, unvouched,
 *   vetoes, because such a state is only written for a run that happened), and every database
 *   answered or timed out (a winner waits up to the timeout: after a flush, one database may be the
 *   only one left that knows the slot ran). A loss is decided as soon as it is certain. A minority
 *   win is rolled back with WITHDRAW (compare-and-delete on the token). When the vote was split (no
 *   token holds a majority and nothing is over yet) the instances that won a minority roll back,
 *   wait a random moment and try again (Redlock's retry), a few times and within a quarter of the
 *   lease. Otherwise the answer is `taken` with the most final state a database that holds the
 *   job's history reported (done/lost > failed > running > overlap > anything else). Too few
 *   answers to tell is a store error (StoreUnavailableError through the guard, 503 under the
 *   closed policy).
 *   Fences: 1 + the largest counter any answering database held before the claim, and every
 *   answering database is raised to it before the claim returns; the rule and its proof are beside
 *   `won`. Fences strictly increase from one claim of a job to the next under one fault at a time,
 *   a flushed database included.
 *   Repair: an amnesiac database gets the job copied from the most advanced database that holds
 *   its history (JOB_SNAPSHOT_SCRIPT, JOB_RESTORE_SCRIPT: fence counter, live slot states,
 *   running key, ledger, marker); a database that answered `claimed` while another holds the
 *   slot's final outcome gets that outcome (and the finished slots and ledger entries it lacks).
 *   So one database that lost its data is repaired by the next claim of each job, and a second
 *   loss later does not undo a run.
 * - COMPLETE: `recorded` with a majority of `recorded`, `lost` with a majority of `lost`, else a
 *   store error (the guard retries completions). A database that forgot the slot gets the recorded
 *   state and the job copied to it. EXTEND: 1 with a majority of 1s, 0 with a majority
 *   of 0s, else a store error (the lease keeper treats it as a hiccup: its deadline decides).
 *   WITHDRAW: done when a majority confirmed (1 when any store held the claim).
 * - STATUS (read-only): needs a majority of answers; returns the answer of the store with the
 *   highest fence counter (the most up-to-date one; a store that lost its data has a lower one),
 *   with `fence` the maximum.
 * - The schedule registry's scripts (schedules/scripts.ts) run on every store and wait for every
 *   answer (within the timeout). The result is the answer a majority of databases gave
 *   identically (compared with object keys sorted); anything else (too few answers, or answers
 *   that disagree with no majority among them) is a StoreUnavailableError of kind `unreachable`,
 *   never one database's answer. A database that answered differently from the majority gets the
 *   majority's state of the schedules the call concerned (read repair: REGISTRY_SNAPSHOT_SCRIPT
 *   everywhere, then REGISTRY_REPAIR_SCRIPT, compare-and-set per schedule, on the databases that
 *   differ). A write (upsert, pause/resume, delete, advance) first reads its schedule everywhere
 *   and runs only when a majority agrees on it (repairing the others first), so a write can never
 *   land on a lone database while the others disagree and leave a schedule no majority can settle.
 *   LIST merges the whole registry of every database (see `list`: HSCAN pages cannot be compared);
 *   EVENTS compares events by content (stream ids are each database's own) and shows those a
 *   majority holds. The registry is thereby replicated, not linearizable: see the README.
 * - Any other script (one we do not know, e.g. the alert claim): runs on every store; the answer a
 *   majority gave identically wins; if a majority answered but they disagree, the answer of the
 *   first store (in configuration order) that answered. Fewer answers than a majority is a store
 *   error.
 *
 * Lease validity and clock drift (Redlock: validity = lease - elapsed - drift, drift = lease *
 * driftFactor + 2 ms): instead of shrinking the time the guard trusts its lease, the store lengthens
 * the TTL it asks Redis for by the drift (CLAIM's and EXTEND's lease argument becomes lease +
 * drift). The guard keeps counting `lease` from the moment it sent the claim and already refuses a
 * claim answered after that (`elapsedMs >= leaseMs` in guard.ts) and aborts the job when the lease
 * runs out locally; every database keeps the key at least `lease + drift` of its own clock after it
 * ran the claim. So the margin between what the guard trusts and what the databases hold is the
 * drift, exactly as in Redlock, without any change to the guard. The price: a crashed holder blocks
 * the slot `drift` longer (1% + 2 ms by default).
 *
 * Nothing here imports Node built-ins or a Redis client: it runs wherever the guard runs.
 */
import { ConfigError, StoreUnavailableError } from "../errors.js";
import {
  CLAIM_SCRIPT,
  COMPLETE_SCRIPT,
  EXTEND_SCRIPT,
  type LuaScript,
  luaScript,
  STATUS_SCRIPT,
  WITHDRAW_SCRIPT,
} from "../guard/scripts.js";
import {
  DELETE_SCRIPT,
  EVENTS_SCRIPT,
  LIST_SCRIPT,
  OVERDUE_SCRIPT,
  PEEK_SCRIPT,
  READ_SCRIPT,
  SET_ENABLED_SCRIPT,
  SET_PENDING_SCRIPT,
  UPSERT_SCRIPT,
} from "../schedules/scripts.js";
import { sleep } from "../sleep.js";
import { asStoreError, decodeReply, type GuardStore, messageOf, runScript } from "../store.js";

export interface QuorumOptions {
  /**
   * How long to wait for one database's answer, in ms; a database that takes longer counts as
   * down for that call. For claims it is capped at half the lease. Default 2000.
   */
  timeoutMs?: number;
  /** Clock drift allowance per ms of lease (Redlock's driftFactor). 0 <= x < 0.5. Default 0.01. */
  driftFactor?: number;
}

export const DEFAULT_QUORUM_TIMEOUT_MS = 2_000;
export const DEFAULT_DRIFT_FACTOR = 0.01;

/**
 * KEYS: fence, quorum marker. ARGV: floor, "1" to set the marker. Raises the fence counter to
 * `floor` when it is lower (every claim raises every database that answered it, see `won`) and
 * marks the database as holding the job's history; the counter's new value.
 */
export const FENCE_FLOOR_SCRIPT = luaScript(
  "quorum-fence-floor",
  `local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if ARGV[2] == '1' then redis.call('SET', KEYS[2], '1') end
if current < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return current`,
);

/**
 * The claim as the quorum runs it on each database: CLAIM_SCRIPT's own source, unchanged, run as a
 * function, with two facts read atomically before it: the job's fence counter and whether this
 * database holds the job's history (its run history stream or the quorum marker exists). KEYS: the
 * claim's own, then runs, quorum marker. Reply `[counter before, known 0|1, claim reply]`.
 * Built per position of the fence key among the claim's KEYS (found by its `:fence` suffix).
 */
const claimWrappers = new Map<string, LuaScript>();
function quorumClaimScript(fenceIndex: number, keyCount: number): LuaScript {
  const id = `${fenceIndex}/${keyCount}`;
  let script = claimWrappers.get(id);
  if (!script) {
    script = luaScript(
      "quorum-claim",
      `local counter = tonumber(redis.call('GET', KEYS[${fenceIndex + 1}]) or '0') or 0
local known = 0
if redis.call('EXISTS', KEYS[${keyCount + 1}]) == 1 or redis.call('EXISTS', KEYS[${keyCount + 2}]) == 1 then
  known = 1
end
local reply = (function()
${CLAIM_SCRIPT.source}
end)()
return { counter, known, reply }`,
    );
    claimWrappers.set(id, script);
  }
  return script;
}

/**
 * KEYS: fence, slot index, running, ledger, quorum marker. ARGV: slot key prefix. Read-only.
 * What a database knows about a job, for copying it to one that lost it: the fence counter, every
 * indexed slot with its state and remaining TTL, the running key, the ledger (flat).
 */
export const JOB_SNAPSHOT_SCRIPT = luaScript(
  "quorum-job-snapshot",
  `local slots = {}
local index = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #index, 2 do
  local key = ARGV[1] .. index[i]
  slots[#slots + 1] = { index[i], index[i + 1], redis.call('GET', key) or '', redis.call('PTTL', key) }
end
return cjson.encode({ fence = tonumber(redis.call('GET', KEYS[1]) or '0'), slots = slots,
  running = redis.call('GET', KEYS[3]) or '', runningPttl = redis.call('PTTL', KEYS[3]),
  ledger = redis.call('HGETALL', KEYS[4]), ledgerPttl = redis.call('PTTL', KEYS[4]) })`,
);

/**
 * KEYS: fence, slot index, running, ledger, quorum marker. ARGV: snapshot JSON (from
 * JOB_SNAPSHOT_SCRIPT on a database that holds the job's history), slot key prefix, mode
 * ("amnesiac" | "lagging"), fence floor.
 * Job repair. Raises the fence counter to the snapshot's and the floor, copies slot states that
 * still live (SET NX: never over a claim made since) and indexes them, and copies the ledger.
 * An amnesiac database (it lost its data: what it holds was written after the loss) also gets the
 * running claims and the ledger's bookkeeping fields overwritten; a lagging one (it only missed
 * some writes) gets finished slots and missing ledger fields only. Marks the database as holding
 * the job's history. The number of slot states copied.
 */
export const JOB_RESTORE_SCRIPT = luaScript(
  "quorum-job-restore",
  `local snap = cjson.decode(ARGV[1])
local amnesiac = ARGV[3] == 'amnesiac'
local floor = math.max(tonumber(snap.fence) or 0, tonumber(ARGV[4]) or 0)
if tonumber(redis.call('GET', KEYS[1]) or '0') < floor then
  redis.call('SET', KEYS[1], string.format('%d', floor))
end
local copied = 0
if type(snap.slots) == 'table' then
  for _, s in ipairs(snap.slots) do
    local raw, pttl = s[3], tonumber(s[4]) or -2
    local running = false
    if raw ~= '' then
      local ok, state = pcall(cjson.decode, raw)
      running = ok and type(state) == 'table' and state.state == 'running'
    end
    if raw ~= '' and pttl > 0 and (amnesiac or not running) then
      if redis.call('SET', ARGV[2] .. s[1], raw, 'NX', 'PX', pttl) then copied = copied + 1 end
      redis.call('ZADD', KEYS[2], s[2], s[1])
    end
  end
end
local runningPttl = tonumber(snap.runningPttl) or -2
if amnesiac and snap.running ~= '' and runningPttl > 0 then
  redis.call('SET', KEYS[3], snap.running, 'NX', 'PX', runningPttl)
end
local ledger = snap.ledger
if type(ledger) == 'table' and #ledger > 0 then
  for i = 1, #ledger, 2 do
    if amnesiac then
      redis.call('HSET', KEYS[4], ledger[i], ledger[i + 1])
    else
      redis.call('HSETNX', KEYS[4], ledger[i], ledger[i + 1])
    end
  end
  local pttl = tonumber(snap.ledgerPttl) or -1
  if pttl > 0 and pttl > redis.call('PTTL', KEYS[4]) then redis.call('PEXPIRE', KEYS[4], pttl) end
end
redis.call('SET', KEYS[5], '1')
return copied`,
);

/**
 * KEYS: slot. ARGV: state JSON, ttl ms. Read repair after a completion: gives a database that lost
 * the slot key the state the majority recorded, unless the key exists again.
 */
export const REPAIR_SCRIPT = luaScript(
  "quorum-repair",
  `return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])`,
);

/**
 * KEYS: definitions, due, fires (the registry's). ARGV: schedule ids; none for every id the
 * registry holds anywhere (definitions, fires or due). Read-only. Per id `[id, definition, fire,
 * due score]`, '' for an absent part: what the registry repair compares and copies.
 */
export const REGISTRY_SNAPSHOT_SCRIPT = luaScript(
  "quorum-registry-snapshot",
  `local ids = ARGV
if #ids == 0 then
  ids = {}
  local seen = {}
  local function add(list)
    for _, id in ipairs(list) do
      if not seen[id] then
        seen[id] = true
        ids[#ids + 1] = id
      end
    end
  end
  add(redis.call('HKEYS', KEYS[1]))
  add(redis.call('HKEYS', KEYS[3]))
  add(redis.call('ZRANGE', KEYS[2], 0, -1))
end
local out = {}
for i, id in ipairs(ids) do
  out[i] = { id, redis.call('HGET', KEYS[1], id) or '', redis.call('HGET', KEYS[3], id) or '',
    redis.call('ZSCORE', KEYS[2], id) or '' }
end
if #out == 0 then return '[]' end
return cjson.encode(out)`,
);

/**
 * KEYS: definitions, due, fires. ARGV: JSON `[[id, seen definition, seen fire, seen due, definition,
 * fire, due], ...]` ('' for absent). Registry read repair, compare-and-set per id: a schedule whose
 * state on this database is still what the quorum saw there gets the majority's state; one that
 * changed since (a write raced the repair) is left alone. The number of ids repaired.
 */
export const REGISTRY_REPAIR_SCRIPT = luaScript(
  "quorum-registry-repair",
  `local repaired = 0
for _, r in ipairs(cjson.decode(ARGV[1])) do
  local id = r[1]
  local def = redis.call('HGET', KEYS[1], id) or ''
  local fire = redis.call('HGET', KEYS[3], id) or ''
  local due = redis.call('ZSCORE', KEYS[2], id) or ''
  if def == r[2] and fire == r[3] and due == r[4] then
    if r[5] == '' then redis.call('HDEL', KEYS[1], id) else redis.call('HSET', KEYS[1], id, r[5]) end
    if r[6] == '' then redis.call('HDEL', KEYS[3], id) else redis.call('HSET', KEYS[3], id, r[6]) end
    if r[7] == '' then redis.call('ZREM', KEYS[2], id) else redis.call('ZADD', KEYS[2], r[7], id) end
    repaired = repaired + 1
  end
end
return repaired`,
);

/** Registry writes: each touches the one schedule its first argument names. */
const WRITE_SCRIPTS: readonly LuaScript[] = [
  UPSERT_SCRIPT,
  SET_ENABLED_SCRIPT,
  DELETE_SCRIPT,
  SET_PENDING_SCRIPT,
];

/** Registry scripts whose first argument is the one schedule id they touch. */
const SINGLE_SCHEDULE_SCRIPTS: readonly LuaScript[] = [
  UPSERT_SCRIPT,
  SET_ENABLED_SCRIPT,
  DELETE_SCRIPT,
  READ_SCRIPT,
  SET_PENDING_SCRIPT,
];

/** The schedule registry's scripts: a majority of identical answers, and read repair. */
const REGISTRY_SCRIPTS: readonly LuaScript[] = [
  UPSERT_SCRIPT,
  SET_ENABLED_SCRIPT,
  DELETE_SCRIPT,
  READ_SCRIPT,
  LIST_SCRIPT,
  PEEK_SCRIPT,
  OVERDUE_SCRIPT,
  SET_PENDING_SCRIPT,
  EVENTS_SCRIPT,
];
const KNOWN_SCRIPTS: readonly LuaScript[] = [
  CLAIM_SCRIPT,
  COMPLETE_SCRIPT,
  EXTEND_SCRIPT,
  WITHDRAW_SCRIPT,
  STATUS_SCRIPT,
  ...REGISTRY_SCRIPTS,
];

/** Claim attempts after split votes, at most, and the share of the lease they may take. */
const MAX_CLAIM_ATTEMPTS = 5;
const CLAIM_RETRY_LEASE_SHARE = 0.25;
/** Same as the guard's: a withdrawn claim's marker outlives any late copy of it. */
const WITHDRAWN_MARKER_MIN_MS = 600_000;

type Answer =
  | { ok: true; value: unknown }
  | { ok: false; error: StoreUnavailableError; noScript?: boolean };

interface ClaimState {
  state?: string;
  token?: string;
  fence?: number;
  [field: string]: unknown;
}

interface ClaimReply {
  outcome: "claimed" | "taken" | "overlap" | "withdrawn";
  state?: ClaimState;
  pttl?: number;
  [field: string]: unknown;
}

/** Settles with the store's answer or a timeout; never rejects. */
function ask(
  attempt: () => Promise<unknown>,
  name: string,
  timeoutMs: number,
  detectNoScript = false,
): Promise<Answer> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<Answer>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          ok: false,
          error: new StoreUnavailableError(`${name} got no answer within ${timeoutMs} ms`, {
            kind: "unreachable",
          }),
        }),
      timeoutMs,
    );
  });
  let answer: Promise<Answer>;
  try {
    answer = attempt().then(
      (value): Answer => ({ ok: true, value }),
      (error): Answer => ({
        ok: false,
        error: asStoreError(error, name),
        noScript: detectNoScript && /noscript/i.test(messageOf(error)),
      }),
    );
  } catch (error) {
    answer = Promise.resolve({ ok: false, error: asStoreError(error, name) });
  }
  return Promise.race([answer, timeout]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

/**
 * Waits until every call settled, or until `decided` says the answers so far settle the question.
 * Entries of calls still pending are undefined.
 */
function gather(
  calls: readonly Promise<Answer>[],
  decided: (answers: readonly (Answer | undefined)[]) => boolean = () => false,
): Promise<(Answer | undefined)[]> {
  return new Promise((resolve) => {
    const answers: (Answer | undefined)[] = new Array(calls.length).fill(undefined);
    let pending = calls.length;
    if (pending === 0) resolve(answers);
    calls.forEach((call, index) => {
      void call.then((answer) => {
        answers[index] = answer;
        pending -= 1;
        if (pending === 0 || decided(answers)) resolve([...answers]);
      });
    });
  });
}

function isOk(answer: Answer | undefined): answer is { ok: true; value: unknown } {
  return answer?.ok === true;
}

function decodeSafely<T>(value: unknown): T | undefined {
  try {
    return decodeReply<T>(value);
  } catch {
    return undefined;
  }
}

/**
 * A comparison key for an answer: objects with sorted keys, and strings that hold JSON (a stored
 * schedule definition) parsed first, so that two databases that hold the same data compare equal
 * whatever order their Lua tables encoded it in.
 */
function canonical(value: unknown): string {
  const normal = (v: unknown): unknown => {
    if (typeof v === "string" && /^[[{]/.test(v)) {
      try {
        return normal(JSON.parse(v));
      } catch {
        return v;
      }
    }
    if (Array.isArray(v)) return v.map(normal);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((key) => [key, normal((v as Record<string, unknown>)[key])]),
      );
    }
    return v;
  };
  return JSON.stringify(normal(value)) ?? "undefined";
}

/** The group of identical values (by `keyOf`) that a majority holds, if any. */
function majorityGroup<T>(
  values: readonly (T | undefined)[],
  keyOf: (value: T) => string,
  majority: number,
): { value: T; key: string; count: number } | undefined {
  const groups = new Map<string, { value: T; key: string; count: number }>();
  for (const value of values) {
    if (value === undefined) continue;
    const key = keyOf(value);
    const group = groups.get(key) ?? { value, key, count: 0 };
    group.count += 1;
    groups.set(key, group);
  }
  return [...groups.values()].find((group) => group.count >= majority);
}

/** One schedule's state on one database: [id, definition, fire, due], '' for absent. */
type ScheduleState = [string, string, string, string];
const stateKey = (state: ScheduleState) => canonical([state[1], state[2], state[3]]);

function checkStores(stores: unknown): asserts stores is GuardStore[] {
  if (!Array.isArray(stores)) {
    throw new ConfigError("stores", "must be an array of stores (clients with eval and evalsha)");
  }
  if (stores.length < 3 || stores.length % 2 === 0) {
    throw new ConfigError(
      "stores",
      `a quorum needs an odd number of at least 3 databases, got ${stores.length}`,
    );
  }
  stores.forEach((store, index) => {
    const candidate = store as Partial<GuardStore> | null;
    if (
      typeof candidate !== "object" ||
      candidate === null ||
      typeof candidate.eval !== "function" ||
      typeof candidate.evalsha !== "function"
    ) {
      throw new ConfigError(
        "stores",
        `store #${index + 1} must be a Redis client with eval() and evalsha()`,
      );
    }
  });
}

/**
 * A GuardStore over `stores` (odd, >= 3) that needs a majority for every decision. Pass it as the
 * guard's `redis` option. See the comment at the top of this file for how each script is merged.
 */
export function createQuorumStore(stores: GuardStore[], options: QuorumOptions = {}): GuardStore {
  checkStores(stores);
  const timeoutMs = options.timeoutMs ?? DEFAULT_QUORUM_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 1) {
    throw new ConfigError("timeoutMs", `must be a positive number of ms, got ${timeoutMs}`);
  }
  const driftFactor = options.driftFactor ?? DEFAULT_DRIFT_FACTOR;
  if (!Number.isFinite(driftFactor) || driftFactor < 0 || driftFactor >= 0.5) {
    throw new ConfigError("driftFactor", `must be at least 0 and below 0.5, got ${driftFactor}`);
  }
  const members = [...stores];
  const n = members.length;
  const majority = Math.floor(n / 2) + 1;

  let knownBySha: Promise<Map<string, LuaScript>> | undefined;
  const known = () => {
    knownBySha ??= Promise.all(
      KNOWN_SCRIPTS.map(async (script) => [await script.sha1(), script] as const),
    ).then((entries) => new Map(entries));
    return knownBySha;
  };
  const customBySource = new Map<string, LuaScript>();
  const customBySha = new Map<string, LuaScript>();

  const driftOf = (leaseMs: number) => Math.ceil(leaseMs * driftFactor) + 2;

  const onAll = (
    script: LuaScript,
    keys: string[],
    args: (string | number)[],
    callTimeoutMs = timeoutMs,
    indexes: readonly number[] = members.map((_, i) => i),
  ): Promise<Answer>[] =>
    indexes.map((i) =>
      ask(
        () => runScript(members[i] as GuardStore, script, keys, args),
        `${script.name} on store #${i + 1}`,
        callTimeoutMs,
      ),
    );

  /** The error for "too few stores answered": kind rejected when refusals alone prevent a majority. */
  function quorumError(
    what: string,
    answers: readonly (Answer | undefined)[],
    extra = "",
  ): StoreUnavailableError {
    const failures: { index: number; error: StoreUnavailableError }[] = [];
    answers.forEach((answer, index) => {
      if (answer === undefined) {
        failures.push({
          index,
          error: new StoreUnavailableError("no answer yet", { kind: "unreachable" }),
        });
      } else if (!answer.ok) failures.push({ index, error: answer.error });
    });
    const answered = answers.filter(isOk).length;
    const rejected = failures.filter((f) => f.error.kind === "rejected").length;
    const kind = rejected > n - majority ? "rejected" : "unreachable";
    const detail = failures.map((f) => `#${f.index + 1}: ${messageOf(f.error)}`).join("; ");
    const message = `${kind === "rejected" ? "ERR " : ""}quorum not reached for ${what}: ${answered} of ${n} databases answered${extra}, ${majority} needed${detail ? ` (${detail})` : ""}`;
    return new StoreUnavailableError(message.replace(/noscript/gi, "no-script"), {
      kind,
      cause: failures[0]?.error,
    });
  }

  /** Withdraws our claim on `indexes`; best effort (an unreachable store frees itself at lease end). */
  async function rollback(
    keys: string[],
    token: string,
    leaseMs: number,
    indexes: readonly number[],
    marker: "final" | "retry",
  ): Promise<void> {
    if (indexes.length === 0) return;
    const [slotKey = "", , , runningKey = "", markerKey = ""] = keys;
    // A retry keeps the token claimable, so it leaves its marker under a key the claim ignores.
    const markerKeys = marker === "final" ? markerKey : `${markerKey}:retry`;
    const markerTtlMs = marker === "final" ? Math.max(2 * leaseMs, WITHDRAWN_MARKER_MIN_MS) : 1;
    await gather(
      onAll(
        WITHDRAW_SCRIPT,
        [slotKey, runningKey, markerKeys],
        [token, markerTtlMs],
        timeoutMs,
        indexes,
      ),
    );
  }

  /** The job's key names, derived from its fence key (`<prefix>:{<job>}:fence`). */
  function jobKeyNames(keys: readonly string[]) {
    const fenceIndex = Math.max(
      0,
      keys.findIndex((key) => key.endsWith(":fence")),
    );
    const named = keys.find((key) => /:(fence|runs)$/.test(key)) ?? keys[fenceIndex] ?? "";
    const base = named.replace(/:(fence|runs)$/, "");
    return {
      fenceIndex,
      fence: `${base}:fence`,
      runs: `${base}:runs`,
      marker: `${base}:quorum`,
      slotIndex: `${base}:slots`,
      running: `${base}:running`,
      ledger: `${base}:ledger`,
      slotPrefix: `${base}:slot:`,
    };
  }

  /** One database's answer to a claim, read apart. */
  interface Vote {
    reply: ClaimReply;
    /** The job's fence counter on that database just before the claim ran there. */
    counter: number;
    /** Whether it holds the job's history (run history or the quorum marker). */
    known: boolean;
  }

  function voteOf(answer: Answer | undefined): Vote | undefined {
    if (!isOk(answer)) return undefined;
    const value = decodeSafely<unknown>(answer.value);
    if (!Array.isArray(value) || value.length < 3) return undefined;
    const reply = decodeSafely<ClaimReply>(value[2]);
    if (!reply || typeof reply.outcome !== "string") return undefined;
    return { reply, counter: Number(value[0]) || 0, known: Number(value[1]) === 1 };
  }

  /**
   * A database amnesiac for this job: it answered, holds none of the job's history, while another
   * answering database does. It lost its data (flushed, restarted without persistence) or missed
   * every run so far: its `claimed` is no vote, its `taken` tells nothing, and it gets repaired.
   */
  function amnesiacOf(votes: readonly (Vote | undefined)[]): boolean[] {
    const anyKnown = votes.some((vote) => vote?.known === true);
    return votes.map((vote) => vote !== undefined && anyKnown && !vote.known);
  }

  /**
   * Whether this claim copies the job to an amnesiac database: when its counter was gone (the first
   * claim there since it lost its data) or when the claim found the slot free there. Otherwise
   * another claim is there first and copies it; this keeps a crowd of duplicates from all copying.
   */
  const needsRestore = (vote: Vote) => vote.counter === 0 || vote.reply.outcome === "claimed";

  /** A state that says the slot is over (ran, failed for good, or cannot be vouched for). */
  const isFinal = (reply: ClaimReply | undefined) =>
    reply?.outcome === "taken" &&
    reply.state?.state !== "running" &&
    reply.state?.state !== "released";

  /**
   * Copies the job as database `source` knows it to `targets` (JOB_SNAPSHOT_SCRIPT, then
   * JOB_RESTORE_SCRIPT); best effort. Resolves to the targets that confirmed.
   */
  async function restoreJob(
    keys: readonly string[],
    source: number,
    targets: readonly { index: number; mode: "amnesiac" | "lagging" }[],
    floor: number,
  ): Promise<number[]> {
    if (targets.length === 0) return [];
    const names = jobKeyNames(keys);
    const jobKeys = [names.fence, names.slotIndex, names.running, names.ledger, names.marker];
    const [snapshot] = await gather(
      onAll(JOB_SNAPSHOT_SCRIPT, jobKeys, [names.slotPrefix], timeoutMs, [source]),
    );
    if (!isOk(snapshot)) return [];
    const snapshotJson =
      typeof snapshot.value === "string" ? snapshot.value : JSON.stringify(snapshot.value);
    const restored = await Promise.all(
      targets.map(({ index, mode }) =>
        ask(
          () =>
            runScript(members[index] as GuardStore, JOB_RESTORE_SCRIPT, jobKeys, [
              snapshotJson,
              names.slotPrefix,
              mode,
              floor,
            ]),
          `job repair on store #${index + 1}`,
          timeoutMs,
        ),
      ),
    );
    return targets.flatMap(({ index }, i) => (isOk(restored[i]) ? [index] : []));
  }

  /**
   * A majority of databases that hold the job's history claimed with our token, none said the
   * slot is over, and every database answered or timed out. The fencing token and the repairs.
   *
   * The rule: the fence is 1 + the largest fence counter that ANY answering database held just
   * before the claim ran there (read atomically by the claim), whatever it answered; before the
   * claim returns, every answering database's counter is raised to the fence (FENCE_FLOOR_SCRIPT;
   * amnesiac ones get the job copied to them as well), and at least a majority must confirm, else
   * the claim fails. A counter only ever goes up, except when its database loses its data.
   *
   * Proof that fences strictly increase from one claim of a job to the next (the next starts after
   * the previous returned), under one fault at a time, a flushed database included:
   * (1) When claim k returns fence F, a set H of at least a majority of databases holds counter
   *     >= F. (2) Between claims k and k+1 at most one database is faulty at a time: it was down
   *     or slow (it keeps its counter) or lost its data (its counter restarts). A lost database is
   *     faulty until the next claim repairs it, so by claim k+1 at most one database of H lost its
   *     counter; H has at least 2 members (n >= 3), so some database A of H still holds >= F.
   *     (3) Claim k+1 waits for every database that answers within the timeout; under one fault
   *     at a time only the faulty database may be missing, and that is not A (A kept its data and
   *     is not the fault), so A answers, and the fence of claim k+1 is >= A's counter + 1 > F.
   *     A database that lagged (it missed claim k) is below F, but it only lowers nothing: the
   *     fence is a maximum. Claims of different slots that overlap in time are not ordered by this
   *     (two concurrent claims may share a fence), as with one database.
   */
  async function won(
    keys: string[],
    votes: readonly (Vote | undefined)[],
    amnesiac: readonly boolean[],
    leaseMs: number,
  ): Promise<ClaimReply> {
    const answering = votes.flatMap((vote, i) => (vote ? [i] : []));
    const fence = 1 + Math.max(0, ...answering.map((i) => (votes[i] as Vote).counter));
    const after = (i: number) => {
      const vote = votes[i] as Vote;
      return vote.reply.outcome === "claimed" && !vote.reply.retried
        ? vote.counter + 1
        : vote.counter;
    };
    const anyKnown = votes.some((vote) => vote?.known === true);
    const restore = answering.filter((i) => amnesiac[i] && needsRestore(votes[i] as Vote));
    const raise = answering.filter(
      (i) => !restore.includes(i) && (after(i) < fence || (!anyKnown && !(votes[i] as Vote).known)),
    );
    const holding = answering.filter((i) => !amnesiac[i] && !raise.includes(i));
    const names = jobKeyNames(keys);
    const source = answering
      .filter((i) => !amnesiac[i])
      .reduce((best, i) => ((votes[i] as Vote).counter > (votes[best] as Vote).counter ? i : best));
    const [raised, restored] = await Promise.all([
      gather(
        onAll(
          FENCE_FLOOR_SCRIPT,
          [names.fence, names.marker],
          [fence, anyKnown ? "0" : "1"],
          timeoutMs,
          raise,
        ),
      ),
      restoreJob(
        keys,
        source,
        restore.map((index) => ({ index, mode: "amnesiac" as const })),
        fence,
      ),
    ]);
    const confirmed =
      holding.length +
      raise.filter((i, k) => !amnesiac[i] && isOk(raised[k])).length +
      restored.length;
    if (confirmed < majority) {
      throw quorumError(
        "claim (fence)",
        raised,
        ` to raising the fence counter to ${fence} (${holding.length} already had it${anyKnown ? "" : ", a new job"})`,
      );
    }
    const base = (votes[answering.find((i) => votes[i]?.reply.outcome === "claimed") ?? 0] as Vote)
      .reply;
    return { ...base, state: { ...base.state, fence }, pttl: leaseMs };
  }

  /** The most final state any store reported, for an instance that did not win. */
  function lossReply(replies: readonly (ClaimReply | undefined)[]): ClaimReply | undefined {
    const rank = (reply: ClaimReply): number => {
      if (reply.outcome === "overlap") return 3;
      if (reply.outcome !== "taken") return 9;
      const state = reply.state?.state;
      if (state === "done" || state === "lost") return 0;
      if (state === "failed") return 1;
      if (state === "running") return 2;
      return 4;
    };
    let best: ClaimReply | undefined;
    for (const reply of replies) {
      if (!reply || rank(reply) === 9) continue;
      if (!best || rank(reply) < rank(best)) best = reply;
    }
    return best;
  }

  /** No token visible with a majority, and nothing done, failed or overlapping: a split vote. */
  function isSplit(replies: readonly (ClaimReply | undefined)[]): boolean {
    const holders = new Map<string, number>();
    for (const reply of replies) {
      if (!reply || reply.outcome === "claimed" || reply.outcome === "withdrawn") continue;
      if (reply.outcome !== "taken" || reply.state?.state !== "running") return false;
      const token = String(reply.state.token);
      holders.set(token, (holders.get(token) ?? 0) + 1);
    }
    return [...holders.values()].every((count) => count < majority);
  }

  /**
   * A claim needs a majority of votes: `claimed` from databases that hold the job's history
   * (an amnesiac database's `claimed` is no vote). A winner waits for every database's answer
   * (within the claim timeout), because one database may be the only one left that knows the
   * slot is over: a `taken` with a final state from any database vetoes the claim (such a state is
   * only ever written for a run that happened, or by a repair that copies one). A loser decides as
   * soon as its loss is certain. Either way, what the answers show missing is repaired: amnesiac
   * databases get the job copied from the most advanced one, and databases that answered
   * `claimed` while another holds the slot's final outcome get that outcome.
   */
  async function claim(keys: string[], args: (string | number)[]): Promise<unknown> {
    const token = String(args[0]);
    const leaseMs = Number(args[1]);
    const claimArgs = [...args];
    claimArgs[1] = leaseMs + driftOf(leaseMs);
    const claimTimeoutMs = Math.max(1, Math.min(timeoutMs, Math.floor(leaseMs / 2)));
    const startedAtMs = Date.now();
    const names = jobKeyNames(keys);
    const claimScript = quorumClaimScript(names.fenceIndex, keys.length);
    const claimKeys = [...keys, names.runs, names.marker];
    // Stores that gave no answer in an earlier round: our claim may still land there, so they got a
    // withdrawal and sit out the retries (they would answer `withdrawn`).
    const excluded = new Set<number>();
    const counts = (so: readonly (Answer | undefined)[]) => {
      let claimed = 0;
      let pending = 0;
      let usable = 0;
      let final = false;
      for (const answer of so) {
        if (answer === undefined) pending += 1;
        const reply = voteOf(answer)?.reply;
        if (reply?.outcome === "claimed") claimed += 1;
        // `withdrawn` only refuses this token (our own withdrawal): no usable answer.
        if (reply && reply.outcome !== "withdrawn") usable += 1;
        if (isFinal(reply)) final = true;
      }
      return { claimed, pending, usable, final };
    };
    for (let attempt = 1; ; attempt += 1) {
      const roundStartMs = Date.now();
      const calls = members.map((member, i) =>
        excluded.has(i)
          ? Promise.resolve<Answer>({
              ok: false,
              error: new StoreUnavailableError(`claim on store #${i + 1}: no answer earlier`, {
                kind: "unreachable",
              }),
            })
          : ask(
              () => runScript(member, claimScript, claimKeys, claimArgs),
              `claim on store #${i + 1}`,
              claimTimeoutMs,
            ),
      );
      const answers = await gather(calls, (so) => {
        const { claimed, pending, usable, final } = counts(so);
        // Lost for sure with a majority of answers to tell why (no need to wait for a slow one),
        // or some database holds the slot's outcome. A win waits for every answer.
        return (
          (claimed + pending < majority && usable >= majority) || (final && usable >= majority)
        );
      });
      const votes = answers.map(voteOf);
      const amnesiac = amnesiacOf(votes);
      // What databases that hold the job's history say; an amnesiac one's answer tells nothing.
      const replies = votes.map((vote, i) => (vote && !amnesiac[i] ? vote.reply : undefined));
      const claimed = votes.flatMap((v, i) => (v?.reply.outcome === "claimed" ? [i] : []));
      const voting = claimed.filter((i) => !amnesiac[i]);
      const veto = replies.some(isFinal);
      if (!veto && voting.length >= majority) return won(keys, votes, amnesiac, leaseMs);

      // Enough answers to tell a loss: any database's, amnesiac ones included (refusing to run is
      // always safe); the reason comes from those that hold the job's history when one does.
      const usable = votes.filter((v) => v && v.reply.outcome !== "withdrawn").length;
      const unanswered = answers.flatMap((a, i) => (isOk(a) || excluded.has(i) ? [] : [i]));
      for (const i of unanswered) excluded.add(i);
      // Not awaited: such a store is slow or down, and a claim of ours that lands there anyway is a
      // minority that expires with the lease. The marker makes a late copy refuse.
      const withdrawn = rollback(keys, token, leaseMs, unanswered, "final");
      // A loser decides without waiting for a slow database; should that one turn out amnesiac,
      // it is repaired once it answered and our claim there is withdrawn (not awaited either).
      repairLate(
        keys,
        votes,
        amnesiac,
        withdrawn,
        unanswered.map((i) => ({ index: i, call: calls[i] })),
      );
      const roundMs = Date.now() - roundStartMs;
      const backoffMs = Math.floor(Math.random() * (2 * roundMs + 10));
      const retry =
        !veto &&
        usable >= majority &&
        claimed.length > 0 &&
        attempt < MAX_CLAIM_ATTEMPTS &&
        isSplit(replies) &&
        Date.now() - startedAtMs + backoffMs + roundMs < leaseMs * CLAIM_RETRY_LEASE_SHARE;
      await rollback(keys, token, leaseMs, claimed, retry ? "retry" : "final");
      await repairAfterLoss(keys, votes, amnesiac, replies, claimed);
      if (retry) {
        await sleep(backoffMs);
        continue;
      }
      const loss =
        usable >= majority
          ? (lossReply(replies) ?? lossReply(votes.map((vote) => vote?.reply)))
          : undefined;
      if (!loss) {
        throw quorumError(
          "claim",
          answers.map((a, i) =>
            votes[i]?.reply.outcome === "withdrawn"
              ? {
                  ok: false,
                  error: new StoreUnavailableError("withdrawn earlier in this call", {
                    kind: "unreachable",
                  }),
                }
              : a,
          ),
        );
      }
      return loss;
    }
  }

  /** See `claim`: repairs databases that answered after the loss was decided, if amnesiac. */
  function repairLate(
    keys: string[],
    votes: readonly (Vote | undefined)[],
    amnesiac: readonly boolean[],
    withdrawn: Promise<void>,
    late: readonly { index: number; call: Promise<Answer> | undefined }[],
  ): void {
    const knowing = votes.flatMap((vote, i) => (vote?.known && !amnesiac[i] ? [i] : []));
    if (knowing.length === 0) return;
    const source = knowing.reduce((best, i) =>
      (votes[i] as Vote).counter > (votes[best] as Vote).counter ? i : best,
    );
    for (const { index, call } of late) {
      void call?.then(async (answer) => {
        const vote = voteOf(answer);
        if (!vote || vote.known || !needsRestore(vote)) return;
        await withdrawn;
        await restoreJob(
          keys,
          source,
          [{ index, mode: "amnesiac" }],
          (votes[source] as Vote).counter,
        );
      });
    }
  }

  /**
   * After a lost claim (our claims already withdrawn): amnesiac databases get the job copied from
   * the most advanced database that holds its history; when a database holds the slot's final
   * outcome, the others that answered `claimed` (they had forgotten or never had it) get it too.
   */
  async function repairAfterLoss(
    keys: string[],
    votes: readonly (Vote | undefined)[],
    amnesiac: readonly boolean[],
    replies: readonly (ClaimReply | undefined)[],
    claimed: readonly number[],
  ): Promise<void> {
    const knowing = votes.flatMap((vote, i) => (vote && !amnesiac[i] ? [i] : []));
    if (knowing.length === 0) return;
    const finalAt = replies.findIndex(isFinal);
    const source =
      finalAt >= 0
        ? finalAt
        : knowing.reduce((best, i) =>
            (votes[i] as Vote).counter > (votes[best] as Vote).counter ? i : best,
          );
    const targets = [
      ...votes.flatMap((vote, i) =>
        amnesiac[i] && vote && needsRestore(vote) ? [{ index: i, mode: "amnesiac" as const }] : [],
      ),
      ...(finalAt >= 0
        ? claimed
            .filter((i) => !amnesiac[i] && i !== finalAt)
            .map((index) => ({ index, mode: "lagging" as const }))
        : []),
    ];
    const floor = Math.max(0, ...knowing.map((i) => (votes[i] as Vote).counter));
    await restoreJob(keys, source, targets, floor);
  }

  /**
   * Waits for every store (within the timeout), not just a majority: a store that answered `lost`
   * with no holder while the majority recorded the run lost its data (flushed, failed over without
   * persistence); it gets the recorded state back with SET NX (read repair), so a second database
   * failing later does not leave a majority that forgot the slot.
   */
  async function complete(keys: string[], args: (string | number)[]): Promise<unknown> {
    const answers = await gather(onAll(COMPLETE_SCRIPT, keys, args));
    const outcomeOf = (a: Answer | undefined) =>
      isOk(a) ? decodeSafely<{ outcome?: string }>(a.value)?.outcome : undefined;
    const count = (outcome: string) => answers.filter((a) => outcomeOf(a) === outcome).length;
    if (count("recorded") >= majority) {
      const recorded = answers.find((a) => outcomeOf(a) === "recorded") as { value: unknown };
      const state = decodeSafely<{ state?: unknown }>(recorded.value)?.state;
      const forgot = answers.flatMap((a, i) => {
        if (!isOk(a)) return [];
        const reply = decodeSafely<{ outcome?: string; holder?: unknown }>(a.value);
        return reply?.outcome === "lost" && reply.holder == null ? [i] : [];
      });
      if (state && forgot.length > 0) {
        await gather(
          onAll(
            REPAIR_SCRIPT,
            [keys[0] ?? ""],
            [JSON.stringify(state), Number(args[2])],
            timeoutMs,
            forgot,
          ),
        );
        // The completion just wrote run history there, which marks a database as holding the
        // job's history: make that true (its ledger, other slots, fence counter).
        const source = answers.findIndex((a) => outcomeOf(a) === "recorded");
        await restoreJob(
          keys,
          source,
          forgot.map((index) => ({ index, mode: "lagging" as const })),
          0,
        );
      }
      return recorded.value;
    }
    if (count("lost") >= majority) {
      return (answers.find((a) => outcomeOf(a) === "lost") as { value: unknown }).value;
    }
    throw quorumError("complete", answers, ` without a majority for recorded or lost`);
  }

  async function extend(keys: string[], args: (string | number)[]): Promise<unknown> {
    const leaseMs = Number(args[1]);
    const extendArgs = [...args];
    extendArgs[1] = leaseMs + driftOf(leaseMs);
    const count = (so: readonly (Answer | undefined)[], value: number) =>
      so.filter((a) => isOk(a) && Number(a.value) === value).length;
    const answers = await gather(
      onAll(EXTEND_SCRIPT, keys, extendArgs),
      (so) => count(so, 1) >= majority || count(so, 0) >= majority,
    );
    if (count(answers, 1) >= majority) return 1;
    if (count(answers, 0) >= majority) return 0;
    throw quorumError("extend", answers, ` without a majority of 1s or of 0s`);
  }

  async function withdraw(keys: string[], args: (string | number)[]): Promise<unknown> {
    const answers = await gather(onAll(WITHDRAW_SCRIPT, keys, args));
    if (answers.filter(isOk).length < majority) throw quorumError("withdraw", answers);
    return answers.some((a) => isOk(a) && Number(a.value) === 1) ? 1 : 0;
  }

  async function status(keys: string[], args: (string | number)[]): Promise<unknown> {
    const answers = await gather(onAll(STATUS_SCRIPT, keys, args));
    const replies = answers.flatMap((a) => {
      const reply = isOk(a) ? decodeSafely<{ fence?: number }>(a.value) : undefined;
      return reply ? [reply] : [];
    });
    if (replies.length < majority) throw quorumError("status", answers);
    const fenceOf = (reply: { fence?: number }) => Number(reply.fence ?? 0);
    const freshest = replies.reduce((best, reply) =>
      fenceOf(reply) > fenceOf(best) ? reply : best,
    );
    return { ...freshest, fence: fenceOf(freshest) };
  }

  /** Answers that disagree with a majority: no answer, a StoreUnavailableError. */
  function disagreement(what: string, answers: readonly (Answer | undefined)[]) {
    const answered = answers.filter(isOk).length;
    if (answered < majority) return quorumError(what, answers);
    return new StoreUnavailableError(
      `quorum not reached for ${what}: ${answered} of ${n} databases answered but no ${majority} of them gave the same answer (a database lost data or missed a write, and too few agree to tell which)`,
      { kind: "unreachable" },
    );
  }

  /** Each answering database's state of `ids` (all schedules when empty), by database. */
  async function snapshots(
    registryKeys: string[],
    ids: readonly string[],
  ): Promise<{
    answers: (Answer | undefined)[];
    states: (Map<string, ScheduleState> | undefined)[];
  }> {
    const answers = await gather(onAll(REGISTRY_SNAPSHOT_SCRIPT, registryKeys, [...ids]));
    const states = answers.map((answer) => {
      if (!isOk(answer)) return undefined;
      const rows = decodeSafely<ScheduleState[] | Record<string, never>>(answer.value);
      if (rows === undefined) return undefined;
      return new Map((Array.isArray(rows) ? rows : []).map((row) => [String(row[0]), row]));
    });
    return { answers, states };
  }

  /**
   * Per schedule id, the state a majority of databases holds (undefined when none does), and the
   * compare-and-set repairs that copy it to the databases holding something else. Runs them.
   */
  async function repairSchedules(
    registryKeys: string[],
    ids: readonly string[],
    states: readonly (Map<string, ScheduleState> | undefined)[],
  ): Promise<Map<string, ScheduleState | undefined>> {
    const agreed = new Map<string, ScheduleState | undefined>();
    const fixes: string[][][] = states.map(() => []);
    for (const id of ids) {
      const held = states.map((byId) =>
        byId ? (byId.get(id) ?? ([id, "", "", ""] as ScheduleState)) : undefined,
      );
      const group = majorityGroup(held, stateKey, majority);
      agreed.set(id, group?.value);
      if (!group) continue;
      held.forEach((state, i) => {
        if (state && stateKey(state) !== group.key) {
          fixes[i]?.push([
            id,
            state[1],
            state[2],
            state[3],
            group.value[1],
            group.value[2],
            group.value[3],
          ]);
        }
      });
    }
    const targets = fixes.flatMap((list, i) => (list.length > 0 ? [i] : []));
    await Promise.all(
      targets.map((i) =>
        ask(
          () =>
            runScript(members[i] as GuardStore, REGISTRY_REPAIR_SCRIPT, registryKeys, [
              JSON.stringify(fixes[i]),
            ]),
          `registry repair on store #${i + 1}`,
          timeoutMs,
        ),
      ),
    );
    return agreed;
  }

  /** Reads `ids` everywhere and repairs the databases that differ from the majority. */
  async function repairIds(registryKeys: string[], ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const { states } = await snapshots(registryKeys, ids);
    await repairSchedules(registryKeys, ids, states);
  }

  /**
   * A registry script: the answer a majority of databases gave identically, else a
   * StoreUnavailableError (never a minority's answer). Waits for every database (within the
   * timeout) so that one that answered differently is seen: the schedules the call concerned are
   * then read everywhere and the majority's state copied to the databases that differ.
   */
  async function registryCall(
    script: LuaScript,
    keys: string[],
    args: (string | number)[],
  ): Promise<unknown> {
    if (script === LIST_SCRIPT) return list(keys, args);
    const registryKeys = keys.slice(0, 3);
    if (WRITE_SCRIPTS.includes(script)) {
      // Writes only where a majority agrees on the schedule's state (the others repaired first):
      // a write that reached a lone database while the others disagreed or were down would leave
      // three different states, and no majority could ever settle that schedule again.
      const id = String(args[0]);
      const { answers: read, states } = await snapshots(registryKeys, [id]);
      const agreed = await repairSchedules(registryKeys, [id], states);
      if (agreed.get(id) === undefined) throw disagreement(`${script.name} (reading ${id})`, read);
    }
    const answers = await gather(onAll(script, keys, args));
    if (script === EVENTS_SCRIPT) return events(answers);
    const answered = answers.map((a) => (isOk(a) ? a : undefined));
    const agreed = majorityGroup(answered, (a) => canonical(a.value), majority);
    if (!agreed) throw disagreement(script.name, answers);
    if (agreed.count < answered.filter(Boolean).length) {
      let ids: string[] = [];
      if (SINGLE_SCHEDULE_SCRIPTS.includes(script)) ids = [String(args[0])];
      else if (script === PEEK_SCRIPT || script === OVERDUE_SCRIPT) {
        const seen = new Set<string>();
        for (const answer of answered) {
          const reply =
            answer && decodeSafely<{ items?: { id?: unknown }[] | object }>(answer.value);
          const items = reply && Array.isArray(reply.items) ? reply.items : [];
          for (const item of items) if (typeof item.id === "string") seen.add(item.id);
        }
        ids = [...seen];
      }
      await repairIds(registryKeys, ids);
    }
    return agreed.value.value;
  }

  /**
   * LIST in quorum mode. HSCAN's cursors and page order differ between databases even when they
   * hold the same schedules, so pages cannot be compared: every page reads the whole registry from
   * every database (REGISTRY_SNAPSHOT_SCRIPT), takes each schedule's state from a majority
   * (repairing the databases that differ), sorts the ids and cuts the page out of that; the cursor
   * is the offset in the sorted ids. Cost: O(N) per page and database for N schedules (about
   * 300 bytes each: 1 000 schedules are ~300 kB per database per page). A schedule no majority
   * agrees on makes the whole page an error, never a page without it.
   */
  async function list(keys: string[], args: (string | number)[]): Promise<unknown> {
    const registryKeys = keys.slice(0, 3);
    const offset = Number(args[0]);
    const count = Math.max(1, Number(args[1]));
    const { answers, states } = await snapshots(registryKeys, []);
    if (states.filter(Boolean).length < majority) throw quorumError("schedule-list", answers);
    const ids = [...new Set(states.flatMap((byId) => (byId ? [...byId.keys()] : [])))].sort();
    const agreed = await repairSchedules(registryKeys, ids, states);
    const undecided = ids.filter((id) => agreed.get(id) === undefined);
    if (undecided.length > 0) {
      throw new StoreUnavailableError(
        `quorum not reached for schedule-list: no ${majority} of ${n} databases hold the same state of ${undecided.slice(0, 5).join(", ")}${undecided.length > 5 ? ", ..." : ""}`,
        { kind: "unreachable" },
      );
    }
    const items = ids.flatMap((id) => {
      const state = agreed.get(id) as ScheduleState;
      return state[1] === "" ? [] : [{ id, schedule: state[1], fire: state[2] || undefined }];
    });
    const page = items.slice(offset, offset + count);
    const next = offset + count < items.length ? String(offset + count) : "0";
    return { cursor: next, items: page };
  }

  /**
   * EVENTS: stream ids are each database's own, so answers are compared by content. An event is
   * shown when a majority of databases holds it (same schedule, same event), newest first by its
   * id on the first database that holds it. Events are a log: they are not repaired.
   */
  function events(answers: readonly (Answer | undefined)[]): unknown {
    type Entry = { id: string; schedule: string; event: string };
    const lists = answers.map((answer) => {
      if (!isOk(answer)) return undefined;
      const reply = decodeSafely<Entry[] | object>(answer.value);
      return reply === undefined ? undefined : Array.isArray(reply) ? reply : [];
    });
    if (lists.filter(Boolean).length < majority) throw quorumError("schedule-events", answers);
    const held = new Map<string, { entry: Entry; count: number }>();
    for (const entries of lists) {
      if (!entries) continue;
      const seen = new Set<string>();
      for (const entry of entries) {
        const key = canonical([entry.schedule, entry.event]);
        if (seen.has(key)) continue;
        seen.add(key);
        const known = held.get(key) ?? { entry, count: 0 };
        known.count += 1;
        held.set(key, known);
      }
    }
    const idMs = (id: string) => id.split("-").map(Number) as [number, number];
    return [...held.values()]
      .filter((e) => e.count >= majority)
      .map((e) => e.entry)
      .sort((a, b) => {
        const [am, as] = idMs(a.id);
        const [bm, bs] = idMs(b.id);
        return bm - am || bs - as;
      });
  }

  /** A script we do not know: the answer a majority gave identically; else the first store's among a majority. */
  async function byMajority(what: string, calls: Promise<Answer>[]): Promise<unknown> {
    const agreeing = (so: readonly (Answer | undefined)[]) => {
      const groups = new Map<string, { value: unknown; count: number }>();
      for (const answer of so) {
        if (!isOk(answer)) continue;
        const key = JSON.stringify(answer.value) ?? "undefined";
        const group = groups.get(key) ?? { value: answer.value, count: 0 };
        group.count += 1;
        groups.set(key, group);
      }
      return [...groups.values()].find((group) => group.count >= majority);
    };
    const answers = await gather(calls, (so) => agreeing(so) !== undefined);
    const agreed = agreeing(answers);
    if (agreed) return agreed.value;
    if (answers.filter(isOk).length >= majority) {
      return (answers.find(isOk) as { value: unknown }).value;
    }
    if (answers.some((a) => a && !a.ok && a.noScript) && !answers.some(isOk)) {
      // Lets runScript fall back to EVAL with the source, which we then recognise.
      throw new Error(`NOSCRIPT ${what}: no database knows this script`);
    }
    throw quorumError(what, answers);
  }

  async function dispatch(
    script: LuaScript,
    keys: string[],
    args: (string | number)[],
  ): Promise<unknown> {
    switch (script) {
      case CLAIM_SCRIPT:
        return claim(keys, args);
      case COMPLETE_SCRIPT:
        return complete(keys, args);
      case EXTEND_SCRIPT:
        return extend(keys, args);
      case WITHDRAW_SCRIPT:
        return withdraw(keys, args);
      case STATUS_SCRIPT:
        return status(keys, args);
      default:
        if (REGISTRY_SCRIPTS.includes(script)) return registryCall(script, keys, args);
        return byMajority(script.name, onAll(script, keys, args));
    }
  }

  const asArgs = (args: unknown[]) =>
    args.map((arg) => (typeof arg === "number" ? arg : String(arg)));

  const store: GuardStore = {
    async eval<TArgs extends unknown[], TData = unknown>(
      source: string,
      keys: string[],
      args: TArgs,
    ): Promise<TData> {
      let script = KNOWN_SCRIPTS.find((s) => s.source === source) ?? customBySource.get(source);
      if (!script) {
        const custom = luaScript("script", source);
        customBySource.set(source, custom);
        customBySha.set(await custom.sha1(), custom);
        script = custom;
      }
      return (await dispatch(script, keys, asArgs(args))) as TData;
    },
    async evalsha<TArgs extends unknown[], TData = unknown>(
      sha1: string,
      keys: string[],
      args: TArgs,
    ): Promise<TData> {
      const script = (await known()).get(sha1) ?? customBySha.get(sha1);
      if (script) return (await dispatch(script, keys, asArgs(args))) as TData;
      const calls = members.map((member, i) =>
        ask(() => member.evalsha(sha1, keys, args), `evalsha on store #${i + 1}`, timeoutMs, true),
      );
      return (await byMajority(`script ${sha1}`, calls)) as TData;
    },
  };
  return Object.freeze(store);
}

/**
 * Quorum mode from environment variables: `UPSTASH_REDIS_REST_URL_1` and
 * `UPSTASH_REDIS_REST_TOKEN_1`, `_2`, ... numbered from 1 without gaps, an odd number of at least 3
 * pairs. `createStore` makes one client per pair, e.g. `(url, token) => new Redis({ url, token })`
 * (core imports no Redis client). Returns undefined when `UPSTASH_REDIS_REST_URL_1` and
 * `UPSTASH_REDIS_REST_TOKEN_1` are both unset (quorum mode not configured: use a single store);
 * throws a ConfigError for anything half-configured.
 */
export function quorumFromEnv(
  env: Record<string, string | undefined>,
  createStore: (url: string, token: string) => GuardStore,
  options: QuorumOptions = {},
): GuardStore | undefined {
  const URL = "UPSTASH_REDIS_REST_URL_";
  const TOKEN = "UPSTASH_REDIS_REST_TOKEN_";
  const pairs: { url: string; token: string }[] = [];
  const value = (name: string) => {
    const raw = env[name];
    return typeof raw === "string" && raw.trim() !== "" ? raw.trim() : undefined;
  };
  for (let i = 1; ; i += 1) {
    const url = value(`${URL}${i}`);
    const token = value(`${TOKEN}${i}`);
    if (url === undefined && token === undefined) break;
    if (url === undefined)
      throw new ConfigError(`${URL}${i}`, `is missing, but ${TOKEN}${i} is set`);
    if (token === undefined) {
      throw new ConfigError(`${TOKEN}${i}`, `is missing, but ${URL}${i} is set`);
    }
    pairs.push({ url, token });
  }
  const numbered = new RegExp(`^(${URL}|${TOKEN})(\\d+)$`);
  for (const name of Object.keys(env)) {
    const match = numbered.exec(name);
    if (match && value(name) !== undefined && Number(match[2]) > pairs.length) {
      throw new ConfigError(
        name,
        `is set but ${URL}${pairs.length + 1} / ${TOKEN}${pairs.length + 1} are not: number the databases 1, 2, 3, ... without gaps`,
      );
    }
  }
  if (pairs.length === 0) return undefined;
  if (pairs.length < 3 || pairs.length % 2 === 0) {
    throw new ConfigError(
      `${URL}n`,
      `quorum mode needs an odd number of at least 3 databases (${URL}1..${URL}3 or more), got ${pairs.length}`,
    );
  }
  const stores = pairs.map(({ url, token }) => createStore(url, token));
  return createQuorumStore(stores, options);
}
