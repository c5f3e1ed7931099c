/**
 * Quorum mode: one guard across N (odd, >= 3) independent Redis databases, Redlock-style.
 *
 * `createQuorumStore(stores)` is a GuardStore adapter: the guard (and the schedule registry) use it
 * unchanged, as if it were one store. It recognises cron-guard's own scripts by their SHA1 (or
 * source) and merges the answers of the databases per script:
 *
 * - CLAIM runs on every store in parallel (wall clock: the majority's round trip, not N of them),
 *   each with a per-store timeout. It succeeds when a majority answer `claimed` for our token; the
 *   fencing token is the maximum fence among that majority (see `won`). A minority win is rolled
 *   back with WITHDRAW (compare-and-delete on the token). When the vote was split (no token holds a
 *   majority and nothing is done or failed yet) the instances that won a minority roll back, wait a
 *   random moment and try again (Redlock's retry), a few times and within a quarter of the lease, so
 *   a split vote does not leave the slot unrun. Otherwise the answer is `taken` with the most
 *   final state any store reported (done > failed > running > overlap > anything else). Too few
 *   answers for a majority either way is a store error (StoreUnavailableError through the guard,
 *   503 under the closed policy).
 * - COMPLETE: `recorded` with a majority of `recorded`, `lost` with a majority of `lost`, else a
 *   store error (the guard retries completions). EXTEND: 1 with a majority of 1s, 0 with a majority
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
import { ConfigError, StoreUnavailableError } from "./errors.js";
import {
  DELETE_SCRIPT,
  EVENTS_SCRIPT,
  LIST_SCRIPT,
  PEEK_SCRIPT,
  READ_SCRIPT,
  SET_ENABLED_SCRIPT,
  SET_PENDING_SCRIPT,
  UPSERT_SCRIPT,
} from "./schedules/scripts.js";
import {
  CLAIM_SCRIPT,
  COMPLETE_SCRIPT,
  EXTEND_SCRIPT,
  type LuaScript,
  luaScript,
  STATUS_SCRIPT,
  WITHDRAW_SCRIPT,
} from "./scripts.js";
import { sleep } from "./sleep.js";
import { asStoreError, decodeReply, type GuardStore, messageOf, runScript } from "./store.js";

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
 * KEYS: fence. ARGV: floor. Raises the fence counter to `floor` when it is lower; the new value.
 * Used after a claim whose majority disagreed on the fence (see `won`).
 */
export const FENCE_FLOOR_SCRIPT = luaScript(
  "quorum-fence-floor",
  `local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if current < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return current`,
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

  /**
   * A majority claimed with our token. The fencing token is the largest fence among it.
   *
   * Fences are per-database INCRs, so the databases' counters can drift apart (a database was down,
   * a minority claim was rolled back). Why the maximum still grows strictly from one majority claim
   * of a job to the next: before a claim returns, a majority of databases hold a counter >= its
   * fence F1 (all of its majority did already, or we raise the laggards with FENCE_FLOOR_SCRIPT
   * first, else the claim fails). Any later claim's majority intersects that majority (two
   * majorities of N always share a database), and on the shared database its INCR yields more than
   * F1, so its maximum F2 > F1. This holds as long as no database loses its data: a database that
   * was flushed restarts its counter (see the README).
   */
  async function won(
    keys: string[],
    replies: readonly (ClaimReply | undefined)[],
    claimed: readonly number[],
    leaseMs: number,
  ): Promise<ClaimReply> {
    const fenceOf = (i: number) => Number(replies[i]?.state?.fence ?? 0);
    const maxFence = Math.max(...claimed.map(fenceOf));
    const atMax = claimed.filter((i) => fenceOf(i) === maxFence);
    if (atMax.length < majority) {
      const lagging = claimed.filter((i) => fenceOf(i) < maxFence);
      const raised = await gather(
        onAll(FENCE_FLOOR_SCRIPT, [keys[1] ?? ""], [maxFence], timeoutMs, lagging),
      );
      const raisedCount = raised.filter(isOk).length;
      if (atMax.length + raisedCount < majority) {
        throw quorumError(
          "claim (fence)",
          raised,
          ` to raising the fence counter to ${maxFence} (${atMax.length} already had it)`,
        );
      }
    }
    const base = replies[atMax[0] as number] as ClaimReply;
    return { ...base, state: { ...base.state, fence: maxFence }, pttl: leaseMs };
  }

  /** The most final state any store reported, for an instance that did not win. */
  function lossReply(replies: readonly (ClaimReply | undefined)[]): ClaimReply | undefined {
    const rank = (reply: ClaimReply): number => {
      if (reply.outcome === "overlap") return 3;
      if (reply.outcome !== "taken") return 9;
      const state = reply.state?.state;
      if (state === "done") return 0;
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

  async function claim(keys: string[], args: (string | number)[]): Promise<unknown> {
    const token = String(args[0]);
    const leaseMs = Number(args[1]);
    const claimArgs = [...args];
    claimArgs[1] = leaseMs + driftOf(leaseMs);
    const claimTimeoutMs = Math.max(1, Math.min(timeoutMs, Math.floor(leaseMs / 2)));
    const startedAtMs = Date.now();
    // Stores that gave no answer in an earlier round: our claim may still land there, so they got a
    // withdrawal and sit out the retries (they would answer `withdrawn`).
    const excluded = new Set<number>();
    const replyOf = (answer: Answer | undefined) =>
      isOk(answer) ? decodeSafely<ClaimReply>(answer.value) : undefined;
    const counts = (so: readonly (Answer | undefined)[]) => {
      let claimed = 0;
      let pending = 0;
      let usable = 0;
      for (const answer of so) {
        if (answer === undefined) pending += 1;
        const reply = replyOf(answer);
        if (reply?.outcome === "claimed") claimed += 1;
        // `withdrawn` only refuses this token (our own withdrawal): no usable answer.
        if (reply && reply.outcome !== "withdrawn") usable += 1;
      }
      return { claimed, pending, usable };
    };
    for (let attempt = 1; ; attempt += 1) {
      const roundStartMs = Date.now();
      const answers = await gather(
        members.map((member, i) =>
          excluded.has(i)
            ? Promise.resolve<Answer>({
                ok: false,
                error: new StoreUnavailableError(`claim on store #${i + 1}: no answer earlier`, {
                  kind: "unreachable",
                }),
              })
            : ask(
                () => runScript(member, CLAIM_SCRIPT, keys, claimArgs),
                `claim on store #${i + 1}`,
                claimTimeoutMs,
              ),
        ),
        (so) => {
          const { claimed, pending, usable } = counts(so);
          // Won; or lost for sure with a majority of answers to tell why (no need to wait for a slow one).
          return claimed >= majority || (claimed + pending < majority && usable >= majority);
        },
      );
      const replies = answers.map(replyOf);
      const claimed = replies.flatMap((r, i) => (r?.outcome === "claimed" ? [i] : []));
      if (claimed.length >= majority) return won(keys, replies, claimed, leaseMs);

      const { usable } = counts(answers);
      const unanswered = answers.flatMap((a, i) => (isOk(a) || excluded.has(i) ? [] : [i]));
      for (const i of unanswered) excluded.add(i);
      // Not awaited: such a store is slow or down, and a claim of ours that lands there anyway is a
      // minority that expires with the lease. The marker makes a late copy refuse.
      void rollback(keys, token, leaseMs, unanswered, "final");
      const roundMs = Date.now() - roundStartMs;
      const backoffMs = Math.floor(Math.random() * (2 * roundMs + 10));
      const retry =
        usable >= majority &&
        claimed.length > 0 &&
        attempt < MAX_CLAIM_ATTEMPTS &&
        isSplit(replies) &&
        Date.now() - startedAtMs + backoffMs + roundMs < leaseMs * CLAIM_RETRY_LEASE_SHARE;
      if (retry) {
        await rollback(keys, token, leaseMs, claimed, "retry");
        await sleep(backoffMs);
        continue;
      }
      await rollback(keys, token, leaseMs, claimed, "final");
      const loss = usable >= majority ? lossReply(replies) : undefined;
      if (!loss) {
        throw quorumError(
          "claim",
          answers.map((a, i) =>
            replies[i]?.outcome === "withdrawn"
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
      else if (script === PEEK_SCRIPT) {
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
