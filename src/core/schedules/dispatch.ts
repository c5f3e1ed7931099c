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
import { batchingStore } from "./batching-store.js";
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
   * Stop starting waves when this many HTTP requests to the store were made: what the platform
   * limits (every REST call and every `/pipeline` request is one subrequest on Cloudflare, 50 per
   * invocation on Workers Free). A look at the due list costs one, a wave of up to `concurrency`
   * fires three (its claims, its completions, its advances: one request each when the store can
   * pipeline, see batching-store.ts), so a wave starts only while three are left (four with the
   * next look). Not counted: the handlers' own requests, heartbeats, and the two a script costs
   * once after Redis lost its script cache. Default 45: leaves 5 of Workers Free's 50 for those.
   * A store that cannot pipeline (a quorum, an adapter) sends every call as its own request, so
   * the same budget runs fewer fires there.
   */
  maxRequests?: number;
  /**
   * @deprecated Use `maxRequests`. Read as `maxRequests` when that is not set (it counted store
   * calls, three per run; the budget now counts requests, which is what the platform limits).
   */
  maxCalls?: number;
  /**
   * Most fires claimed and run together, as one wave: their claims share one request, their
   * handlers run concurrently, their completions and advances share one request each. A tick's
   * first wave takes 25 and each next one twice as many, up to this. Default 200 (one look at the
   * due list). Lower it to bound the handlers in flight at once.
   */
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
  /** Store calls (script calls) this tick made. */
  calls: number;
  /** HTTP requests to the store this tick made (the budget `maxRequests` counts these). */
  requests: number;
  /** Store calls that failed (the fires they concerned stay due). */
  errors: number;
  elapsedMs: number;
}

/** Due items one look at the due list reads, at most. */
const PEEK_BATCH = 200;
/** ... and at most this many bytes of definitions (payloads may reach 16 KB each). */
const PEEK_MAX_BYTES = 1_000_000;
/** Tries of one advance (set-pending) within a tick, and the wait before the second (x4 after). */
const ADVANCE_TRIES = 3;
const ADVANCE_BACKOFF_MS = 50;
/** The first wave of a tick; each next one is twice as large, up to `concurrency`. */
const FIRST_WAVE = 25;
/** Requests a wave costs: its claims (and lookups), its completions, its advances. */
const REQUESTS_PER_WAVE = 3;
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
 * the due list and keeps taking due schedules until none is left or its budget (time, requests) is
 * spent; what it leaves stays due for the others or the next tick.
 *
 * Cost. A tick works in waves so that its cost grows with waves, not runs: it reads up to
 * PEEK_BATCH due items in one look, then for each wave of up to `concurrency` of them issues every
 * claim together, runs the claimed handlers concurrently, then issues every completion together
 * and every advance together. The store is wrapped in a batching store (batching-store.ts) that
 * sends the calls of one turn as one `/pipeline` request, so a wave costs three requests and a
 * look one. Waves start small and double (25, 50, 100, 200, ...: concurrent ticks start at random
 * places in the due list and share the work), so 1,000 due fires take about eight waves and six
 * looks: about 30 requests.
 *
 * Two waits keep a wave at three requests:
 * - A handler that finishes before the others of its wave sends its completion at once while the
 *   budget has a request to spare beyond what the wave still needs; otherwise it waits (its lease
 *   kept alive by its heartbeat) for the wave's last handler, and its recorded duration then
 *   includes that wait.
 * - An advance waits until every run of its wave has its answer. A run's slot is already done in
 *   the guard's ledger by then, so the wait risks nothing: another tick that finds the fire still
 *   pending skips its claim as done and advances it itself.
 *
 * Guarantees are the guard's and the compare-and-set advance's, as before: batching changes how
 * calls travel, not what they do. A request that fails as a whole fails every call in it: claims
 * that failed leave their fires due, completions are retried by the guard, advances here.
 */
export function createDispatcher(options: DispatcherOptions) {
  const keys = registryKeys(options.prefix ?? DEFAULT_PREFIX);
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const budgetMs = integerOption("budgetMs", options.budgetMs, 20_000, 1);
  const maxRequests =
    options.maxRequests === undefined && options.maxCalls !== undefined
      ? integerOption("maxCalls", options.maxCalls, 45, REQUESTS_PER_WAVE + 1)
      : integerOption("maxRequests", options.maxRequests, 45, REQUESTS_PER_WAVE + 1);
  const concurrency = integerOption("concurrency", options.concurrency, PEEK_BATCH, 1);
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

  async function tick(
    tickOptions: {
      waitUntil?: (promise: Promise<unknown>) => void;
      /**
       * Store work to start with the tick's first look (the dispatch tick's source record): it
       * gets the tick's store, so with a store that pipelines it rides in the look's request, and
       * any request it costs counts in `requests` and the budget. Awaited before the tick answers;
       * its failure is its own to handle (the tick ignores it).
       */
      alongside?: (store: GuardStore) => Promise<unknown>;
    } = {},
  ) {
    const startedAt = Date.now();
    const store = batchingStore(options.redis);
    const beside = tickOptions.alongside?.(store).catch(() => undefined);
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
      requests: 0,
      errors: 0,
      elapsedMs: 0,
    };
    const seen = new Set<string>();
    let settled = 0;
    // Slow start: concurrent ticks each begin with a small wave from their own place in the due
    // list, so they share the work instead of all claiming the same fires at once.
    let waveSize = FIRST_WAVE;
    const timeLeft = () => Date.now() - startedAt < budgetMs;
    /** A wave (plus `extra` requests first) fits in what is left of the budget. */
    const waveFits = (extra: number) =>
      timeLeft() && store.requests + extra + REQUESTS_PER_WAVE <= maxRequests;

    /**
     * Moves the schedule's pending fire on, if no other instance did first, recording `events`
     * (at most two) with it. True when this tick's compare-and-set won: only then does the tick
     * count what it settled, so concurrent ticks over the same fire count it once between them.
     */
    const setPending = async (
      member: WaveMember,
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
      await member.beforeAdvance();
      let failure: unknown;
      for (let tryIndex = 0; tryIndex < ADVANCE_TRIES; tryIndex += 1) {
        if (tryIndex > 0) {
          if (store.requests >= maxRequests) break;
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

    async function settle(item: DueItem, member: WaveMember): Promise<void> {
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
          if (await setPending(member, item, { fireMs: next, attempt: 0, dueAtMs: next }, [dead])) {
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
        if (await setPending(member, item, retry)) settled += 1;
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
            if (await setPending(member, item, { fireMs: next, attempt: 0, dueAtMs: next }))
              settled += 1;
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
          const recorded = await setPending(
            member,
            item,
            { fireMs: next, attempt: 0, dueAtMs: next },
            [missedEvent(missed)],
          );
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
        const recorded = await setPending(member, item, { fireMs, attempt: 0, dueAtMs: fireMs }, [
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
            return member.handle(() =>
              handler({
                ...context,
                schedule,
                payload: schedule.payload,
                attempt: pending.attempt,
                waitUntil: tickOptions.waitUntil,
              }),
            );
          },
          { waitUntil: tickOptions.waitUntil, periodMs: periodMsOf(cron, fireMs) },
        );
      } catch {
        result.errors += 1; // store unavailable: the fire stays due for the next look
        return;
      }
      const finished = async () => {
        const next = nextAfter(fireMs);
        if (await setPending(member, item, { fireMs: next, attempt: 0, dueAtMs: next }))
          settled += 1;
      };
      if (outcome.status === "ran") {
        result.ran += 1;
        await finished();
      } else if (outcome.status === "failed" && outcome.lockLost && outcome.completed) {
        // The handler finished, but its run was recorded after its lease (as `lost`): the fire's
        // work is done. A retry would do it again; move on like a run that was recorded in time.
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

    /** Claims, runs and settles `items` together; see the top of this function. */
    async function runWave(items: readonly DueItem[]): Promise<void> {
      let earlyCompletions = 0;
      // A completion sent before the wave's last handler finished may cost a request of its own:
      // grant it only while that still leaves the wave's completion and advance requests.
      const spareRequest = () => {
        if (store.requests + earlyCompletions + 1 + (REQUESTS_PER_WAVE - 1) > maxRequests) {
          return false;
        }
        earlyCompletions += 1;
        return true;
      };
      const wave = createWave(items.length, spareRequest);
      await Promise.all(
        items.map(async (item) => {
          const member = wave.member();
          try {
            // Due within the skew tolerance but not yet by this clock: wait for it if the budget
            // allows, and start it only once this clock reads its due time (else leave it due).
            const waitMs = Number(item.due) - clock();
            if (waitMs > 0) {
              if (Date.now() - startedAt + waitMs >= budgetMs) return;
              await sleep(waitMs);
              if (clock() < Number(item.due) || !timeLeft()) return;
            }
            await settle(item, member);
          } catch {
            result.errors += 1;
          } finally {
            member.leaveRuns();
          }
        }),
      );
    }

    for (let looks = 0; waveFits(1); looks += 1) {
      let reply: { total: number; items: DueItem[] | object };
      try {
        reply = decodeReply(
          await runScript(
            store,
            PEEK_SCRIPT,
            [keys.definitions, keys.due, keys.fires],
            [clock() + guard.options.skewToleranceMs, random(), PEEK_BATCH, PEEK_MAX_BYTES],
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
      for (let start = 0; start < fresh.length && waveFits(0); ) {
        const size = Math.min(concurrency, waveSize);
        await runWave(fresh.slice(start, start + size));
        start += size;
        waveSize *= 2;
      }
      result.remaining = Math.max(0, result.remaining - settled);
    }
    await beside;
    result.calls = store.calls;
    result.requests = store.requests;
    result.elapsedMs = Date.now() - startedAt;
    return result;
  }

  return Object.freeze({ tick });
}

/** One fire's part in its wave: see `createWave`. */
interface WaveMember {
  /** Runs the fire's handler; once it settled, waits for the wave's other handlers unless a spare request lets its completion go now. */
  handle(handler: () => unknown): Promise<unknown>;
  /** This fire will run no (more) handler and has its run's answer: waits until every fire of the wave has. */
  beforeAdvance(): Promise<void>;
  /** This fire is done with the wave (idempotent; called when it leaves, whatever happened). */
  leaveRuns(): void;
}

/**
 * The fires of one wave and two points they pass: every handler settled (completions go out
 * together after it), every run answered (advances go out together after it). A fire that runs
 * no handler (skipped, looked up, left due) passes both when it knows so.
 */
function createWave(size: number, spareRequest: () => boolean) {
  const latch = (count: number) => {
    let left = count;
    let open = () => {};
    const passed = new Promise<void>((resolve) => {
      open = resolve;
    });
    if (left === 0) open();
    return {
      passed,
      leave() {
        left -= 1;
        if (left === 0) open();
      },
    };
  };
  const handlers = latch(size);
  const runs = latch(size);
  return {
    member(): WaveMember {
      let handlerLeft = false;
      let runLeft = false;
      const leaveHandlers = () => {
        if (handlerLeft) return;
        handlerLeft = true;
        handlers.leave();
      };
      const leaveRuns = () => {
        leaveHandlers();
        if (runLeft) return;
        runLeft = true;
        runs.leave();
      };
      return {
        async handle(handler) {
          try {
            return await handler();
          } finally {
            leaveHandlers();
            if (!spareRequest()) await handlers.passed;
          }
        },
        async beforeAdvance() {
          leaveRuns();
          await runs.passed;
        },
        leaveRuns,
      };
    },
  };
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
