import {
  attemptSlotId,
  type CronSchedule,
  nextFireTimes,
  parseSchedule,
  periodMsOf,
  slotFromCron,
  slotId,
} from "../cron/index.js";
import { ConfigError } from "../errors.js";
import { createGuard, type JobContext } from "../guard/guard.js";
import type { GuardResult } from "../guard/result.js";
import { DEFAULT_PREFIX, type GuardSettings } from "../options.js";
import { sleep } from "../sleep.js";
import { decodeReply, type GuardStore, messageOf, runScript } from "../store.js";
import { decodeSchedule, parsePendingFire, registryKeys } from "./registry.js";
import type { Schedule } from "./schedule.js";
import { PEEK_SCRIPT, SET_PENDING_SCRIPT } from "./scripts.js";

/** What a schedule's handler receives. */
export interface ScheduleRunContext extends JobContext {
  schedule: Schedule;
  payload: unknown;
  /** 0 for the first attempt of this fire, 1 for the first retry, ... */
  attempt: number;
  /**
   * The platform's `waitUntil` of this tick, when it has one: hand it background work (an alert)
   * that must outlive the run without delaying it.
   */
  waitUntil?: (promise: Promise<unknown>) => void;
}

export type ScheduleHandler = (context: ScheduleRunContext) => unknown;

export interface DispatcherOptions {
  redis: GuardStore;
  /** Key namespace, as for the guard. Default `"cron-guard"`. */
  prefix?: string;
  /** The code a schedule's `handler` names. */
  handlers: Readonly<Record<string, ScheduleHandler>>;
  /**
   * Guard settings for every run (leaseMs, region, clock, ...). `onFailure` is always `"keep"`:
   * a failed attempt is retried by the dispatcher as a new attempt, never by a racing duplicate.
   *
   * Clock skew (`skewToleranceMs`, default 5 000, as for the guard): a fire is due when the
   * ticker's own `clock` reads at least its due time, and never starts before that. A tick also
   * takes the fires due within the next `skewToleranceMs` and waits (in real time, within
   * `budgetMs`) until its clock reaches their due time before it starts them. So a ticker whose
   * clock is behind by up to the tolerance still runs the current fire in the tick the platform
   * sent for it (late by its own skew), instead of a minute later; and a ticker whose clock is
   * ahead by `s` starts a fire `s` early in real time at most: never more than the tolerance while
   * its skew stays within it. A fire further away than the tolerance is left to a later tick.
   */
  guardOptions?: Omit<GuardSettings, "onFailure" | "overlap" | "prefix">;
  /** Stop starting runs after this long, in ms. Default 20 000. */
  budgetMs?: number;
  /**
   * Stop starting runs when this many store calls were made, as a run costs up to three (claim,
   * completion, advance) and a look at the due list one. Every call is a subrequest on Cloudflare
   * (50 per invocation on Workers Free). Default 45.
   */
  maxCalls?: number;
  /** Runs in flight at once within one tick. Default 4. */
  concurrency?: number;
  /** Delay before the first retry of a failed fire, in ms; doubles per attempt, at most an hour. Default 60 000. */
  retryBackoffMs?: number;
  /** Under `catchUp: "skip"`, a fire is missed once it is this old, in ms. Default 120 000 (two ticks). */
  missedAfterMs?: number;
  /** A number in [0, 1): where in the due list this tick starts. Default Math.random. */
  random?: () => number;
}

export interface TickResult {
  ran: number;
  skipped: number;
  failed: number;
  /** Fires whose last attempt failed: recorded as dead, the schedule moved on. */
  dead: number;
  /** Fires not run because the catch-up policy skipped them. */
  missed: number;
  /** Schedules still due at this tick's last look that it did not settle: the next tick's work. */
  remaining: number;
  /** Store calls this tick made. */
  calls: number;
  /** Store calls that failed (the fires they concerned stay due). */
  errors: number;
  elapsedMs: number;
}

const PEEK_BATCH = 10;
/** Tries of one advance (set-pending) within a tick, and the wait before the second (x4 after). */
const ADVANCE_TRIES = 3;
const ADVANCE_BACKOFF_MS = 50;
const CALLS_PER_RUN = 3;
const MAX_BACKOFF_MS = 3_600_000;
const EVENTS_KEPT = 1_000;
/** Missed fires are counted up to this many (a long outage of a per-minute schedule costs no more). */
const MAX_COUNTED_FIRES = 1_000;

interface DueItem {
  id: string;
  schedule: string;
  fire: string;
  /** When a tick should look at it (the fire time, or a retry's time), ms. */
  due: number;
}

/** A store that counts the calls made through it. */
function counting(redis: GuardStore): GuardStore & { readonly calls: number } {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    eval(script, keys, args) {
      calls += 1;
      return redis.eval(script, keys, args);
    },
    evalsha(sha1, keys, args) {
      calls += 1;
      return redis.evalsha(sha1, keys, args);
    },
  };
}

function integerOption(name: string, value: number | undefined, fallback: number, min: number) {
  const chosen = value ?? fallback;
  if (!Number.isInteger(chosen) || chosen < min) {
    throw new ConfigError(name, `must be an integer of at least ${min}, got ${String(value)}`);
  }
  return chosen;
}

/**
 * One tick of the dispatcher: every instance that receives the platform's cron runs it, and
 * together they run each due fire of each schedule once. Each instance starts at a random place in
 * the due list and keeps taking the next due schedule until none is left or its budget (time,
 * store calls) is spent; what it leaves stays due for the others or the next tick.
 */
export function createDispatcher(options: DispatcherOptions) {
  const keys = registryKeys(options.prefix ?? DEFAULT_PREFIX);
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const budgetMs = integerOption("budgetMs", options.budgetMs, 20_000, 1);
  const maxCalls = integerOption("maxCalls", options.maxCalls, 45, CALLS_PER_RUN + 1);
  const concurrency = integerOption("concurrency", options.concurrency, 4, 1);
  const retryBackoffMs = integerOption("retryBackoffMs", options.retryBackoffMs, 60_000, 0);
  const missedAfterMs = integerOption("missedAfterMs", options.missedAfterMs, 120_000, 0);
  const random = options.random ?? Math.random;
  const clock = options.guardOptions?.clock ?? Date.now;
  const parsed = new Map<string, CronSchedule>();
  const cronOf = (schedule: Schedule) => {
    const cacheKey = `${schedule.timezone} ${schedule.cron}`;
    let cron = parsed.get(cacheKey);
    if (!cron) {
      cron = parseSchedule(schedule.cron, { timezone: schedule.timezone });
      parsed.set(cacheKey, cron);
    }
    return cron;
  };

  async function tick(tickOptions: { waitUntil?: (promise: Promise<unknown>) => void } = {}) {
    const startedAt = Date.now();
    const store = counting(options.redis);
    const guard = createGuard({
      ...options.guardOptions,
      redis: store,
      prefix,
      onFailure: "keep",
      overlap: "allow",
    });
    const result: TickResult = {
      ran: 0,
      skipped: 0,
      failed: 0,
      dead: 0,
      missed: 0,
      remaining: 0,
      calls: 0,
      errors: 0,
      elapsedMs: 0,
    };
    const seen = new Set<string>();
    let settled = 0;
    let inFlight = 0;
    // Every run in flight may still make its three calls: count them as spent.
    const canStart = () =>
      Date.now() - startedAt < budgetMs && store.calls + (inFlight + 1) * CALLS_PER_RUN <= maxCalls;

    /**
     * Moves the schedule's pending fire on, if no other instance did first, recording `events`
     * (at most two) with it. True when this tick's compare-and-set won: only then does the tick
     * count what it settled, so concurrent ticks over the same fire count it once between them.
     */
    const setPending = async (
      item: DueItem,
      next: { fireMs: number; attempt: number; dueAtMs: number },
      events: readonly object[] = [],
    ): Promise<boolean> => {
      const [first, second] = events.map((event) => JSON.stringify(event));
      const args = [
        item.id,
        item.fire,
        `${next.fireMs}:${next.attempt}`,
        next.dueAtMs,
        first ?? "",
        EVENTS_KEPT,
        second ?? "",
      ];
      // Retried with backoff: the call is a compare-and-set on the fire this tick saw pending, so
      // a repeat of a try that did land (its answer lost) changes nothing and answers 'same'.
      // When every try fails the fire stays pending; the next look finds its run in the ledger.
      let failure: unknown;
      for (let tryIndex = 0; tryIndex < ADVANCE_TRIES; tryIndex += 1) {
        if (tryIndex > 0) {
          if (store.calls >= maxCalls) break;
          await sleep(ADVANCE_BACKOFF_MS * 4 ** (tryIndex - 1));
        }
        try {
          const reply = await runScript(
            store,
            SET_PENDING_SCRIPT,
            [keys.definitions, keys.due, keys.fires, keys.events],
            args,
          );
          // 'same' on a repeat: our earlier try landed. On a first try: another tick's identical move.
          return reply === "set" || (reply === "same" && tryIndex > 0);
        } catch (error) {
          failure = error;
        }
      }
      throw failure;
    };

    async function settle(item: DueItem): Promise<void> {
      const schedule = decodeSchedule(item.schedule, item.fire);
      const pending = parsePendingFire(item.fire);
      const cron = cronOf(schedule);
      const nowMs = clock();
      const nextAfter = (ms: number) => nextFireTimes(cron, ms, 1)[0] ?? Number.MAX_SAFE_INTEGER;
      /** Settles a failed attempt of `failedMs`: a retry later, or dead after the last attempt. */
      const failedAttempt = async (failedMs: number, error: string) => {
        if (pending.attempt + 1 >= schedule.maxAttempts) {
          const next = nextAfter(failedMs);
          const dead = {
            kind: "dead",
            fire: slotId(failedMs),
            attempts: pending.attempt + 1,
            error,
          };
          if (await setPending(item, { fireMs: next, attempt: 0, dueAtMs: next }, [dead])) {
            settled += 1;
            result.dead += 1;
          }
          return;
        }
        const delayMs = Math.min(retryBackoffMs * 2 ** pending.attempt, MAX_BACKOFF_MS);
        const retry = {
          fireMs: failedMs,
          attempt: pending.attempt + 1,
          dueAtMs: clock() + delayMs,
        };
        if (await setPending(item, retry)) settled += 1;
      };
      let fireMs = pending.fireMs;
      let missed = 0;
      /** `fires` consecutive fires from the pending one were not run; the cron lets a reader list them. */
      const missedEvent = (fires: number) => ({
        kind: "missed",
        fire: slotId(pending.fireMs),
        fires,
        cron: schedule.cron,
        timezone: schedule.timezone,
      });
      if (pending.attempt === 0) {
        const latest = slotFromCron(cron, nowMs, { skewToleranceMs: 0 });
        if (latest > fireMs) {
          if (schedule.catchUp === "all") {
            const behind = countFires(cron, fireMs, latest, MAX_COUNTED_FIRES);
            if (behind > schedule.catchUpLimit) {
              missed = behind - schedule.catchUpLimit;
              fireMs = lastFires(cron, latest, schedule.catchUpLimit);
            }
          } else {
            missed = countFires(cron, fireMs, latest, MAX_COUNTED_FIRES) - 1;
            fireMs = latest;
          }
        }
        const tooOld = schedule.catchUp === "skip" && nowMs - fireMs > missedAfterMs;
        if (missed > 0 || tooOld) {
          // The pending fire is about to be counted missed. It may have run and only its advance
          // failed (the store was away, the instance died between run and advance): the ledger
          // knows, and guard.lookup reads it without claiming anything.
          const look = await guard.lookup(schedule.id, slotId(pending.fireMs));
          if (look.status === "running") return; // its run advances it; else the next look sees
          if (look.status === "ran") {
            const next = nextAfter(pending.fireMs);
            if (await setPending(item, { fireMs: next, attempt: 0, dueAtMs: next })) settled += 1;
            return; // the fires after it are the next look's (this tick's, when they are due)
          }
          if (look.status === "failed" || look.status === "released") {
            await failedAttempt(pending.fireMs, look.holder?.summary ?? "failed");
            return;
          }
          // never (or older than the ledger vouches for): missed indeed
        }
        if (tooOld) {
          missed += 1;
          const next = nextAfter(nowMs);
          const recorded = await setPending(item, { fireMs: next, attempt: 0, dueAtMs: next }, [
            missedEvent(missed),
          ]);
          if (recorded) {
            result.missed += missed;
            settled += 1;
          }
          return;
        }
      }
      if (missed > 0) {
        // Step one of a catch-up: record the missed fires and make the fire to run pending (due
        // now). This tick's next look runs it, like any due fire.
        const recorded = await setPending(item, { fireMs, attempt: 0, dueAtMs: fireMs }, [
          missedEvent(missed),
        ]);
        if (recorded) {
          result.missed += missed;
          settled += 1;
        }
        return;
      }
      const handler = options.handlers[schedule.handler];
      const slot = attemptSlotId(slotId(fireMs), pending.attempt);
      let outcome: GuardResult<unknown>;
      try {
        outcome = await guard.run(
          schedule.id,
          slot,
          (context) => {
            if (!handler) throw new Error(`handler "${schedule.handler}" is not registered`);
            return handler({
              ...context,
              schedule,
              payload: schedule.payload,
              attempt: pending.attempt,
              waitUntil: tickOptions.waitUntil,
            });
          },
          { waitUntil: tickOptions.waitUntil, periodMs: periodMsOf(cron, fireMs) },
        );
      } catch {
        result.errors += 1; // store unavailable: the fire stays due for the next look
        return;
      }
      const finished = async () => {
        const next = nextAfter(fireMs);
        if (await setPending(item, { fireMs: next, attempt: 0, dueAtMs: next })) settled += 1;
      };
      if (outcome.status === "ran") {
        result.ran += 1;
        await finished();
      } else if (outcome.status === "failed") {
        result.failed += 1;
        await failedAttempt(fireMs, messageOf(outcome.error));
      } else {
        result.skipped += 1;
        // Another instance ran this attempt; settle it in case that instance could not.
        if (outcome.reason === "done") await finished();
        else if (outcome.reason === "failed") {
          await failedAttempt(fireMs, outcome.holder?.summary ?? "failed");
        }
      }
    }

    for (let looks = 0; canStart() && store.calls + 1 + CALLS_PER_RUN <= maxCalls; looks += 1) {
      let reply: { total: number; items: DueItem[] | object };
      try {
        reply = decodeReply(
          await runScript(
            store,
            PEEK_SCRIPT,
            [keys.definitions, keys.due, keys.fires],
            [clock() + guard.options.skewToleranceMs, random(), PEEK_BATCH],
          ),
        );
      } catch (error) {
        // No look at all: the tick could do nothing (the caller answers 503). A later look: what
        // this tick did stands, the rest stays due for the next one.
        if (looks === 0) throw error;
        result.errors += 1;
        break;
      }
      settled = 0;
      result.remaining = Number(reply.total);
      const fresh = (Array.isArray(reply.items) ? reply.items : []).filter(
        (item) => !seen.has(`${item.id}@${item.fire}`),
      );
      if (fresh.length === 0) break;
      for (const item of fresh) seen.add(`${item.id}@${item.fire}`);
      const queue = [...fresh];
      const worker = async () => {
        for (let item = queue.shift(); item; item = queue.shift()) {
          if (!canStart()) return;
          // Due within the skew tolerance but not yet by this clock: wait for it if the budget
          // allows, and start it only once this clock reads its due time (else leave it due).
          const waitMs = Number(item.due) - clock();
          if (waitMs > 0) {
            if (Date.now() - startedAt + waitMs >= budgetMs) continue;
            await sleep(waitMs);
            if (clock() < Number(item.due) || !canStart()) continue;
          }
          inFlight += 1;
          try {
            await settle(item);
          } catch {
            result.errors += 1;
          } finally {
            inFlight -= 1;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, fresh.length) }, worker));
      result.remaining = Math.max(0, result.remaining - settled);
    }
    result.calls = store.calls;
    result.elapsedMs = Date.now() - startedAt;
    return result;
  }

  return Object.freeze({ tick });
}

/** How many fires lie in [fromMs, toMs], counting at most `cap`. */
function countFires(cron: CronSchedule, fromMs: number, toMs: number, cap: number): number {
  let count = 1;
  let at = fromMs;
  while (count < cap) {
    const [next] = nextFireTimes(cron, at, 1);
    if (next === undefined || next > toMs) break;
    count += 1;
    at = next;
  }
  return count;
}

/** The earliest of the last `count` fires at or before `latestMs`. */
function lastFires(cron: CronSchedule, latestMs: number, count: number): number {
  let at = latestMs;
  for (let i = 1; i < count; i += 1) {
    at = slotFromCron(cron, at - 1, { skewToleranceMs: 0 });
  }
  return at;
}
