/**
 * Model-based property test of the claim protocol against a real redis-server.
 *
 * fast-check generates a scenario: a lease, a few slots of one job, and many deliveries (instances)
 * that arrive at random times with skewed clocks, run jobs of random length that may throw or crash,
 * retry after a store error, and talk to Redis through a FaultyStore that fails calls before sending,
 * loses answers of commands that ran, delays commands (so they land after the caller gave up) and
 * delays answers. Slot keys live a short `retentionMs` (a fraction of the lease), so they expire during
 * a case and every later delivery depends on the slot ledger; a few deliveries are forced (`force`).
 * Once every fault is over, one fresh delivery per slot checks that nothing stayed stranded; then,
 * once the retention has run out again, concurrent late duplicates (and maybe a forced re-run) of
 * every slot arrive, and `guard.lookup` reads what the ledger holds. A ledger records, with real timestamps, every job body (start, end, abort, crash, fence),
 * every result and thrown error, and every command as Redis saw it; each promise of DESIGN.md §3 is
 * then checked against that ledger:
 *  1. at most one successful unforced run per slot, unless the earlier ones admit a lost lease; the
 *     ledger: no unforced claim wins a slot after a successful run of it was recorded (in Redis's
 *     own order), however long after the retention, and every late duplicate is skipped;
 *  2. no two bodies of a slot run while both believe they hold the lease; no body starts on a claim
 *     whose lease had already run out;
 *  3. no stranded slot: a fresh delivery after the faults runs or finds the slot finished, and no
 *     delivery is told `running` by a holder that had already given up without being stopped by a fault;
 *  4. results tell the truth (ran / failed / skipped / thrown match what the body did; lockLost only
 *     when the lease really was lost; fences increase in claim order); a late forced re-run runs, and
 *     `guard.lookup` lists every recorded run (forced ones as forced) and no run that never finished.
 */
import fc from "fast-check";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { slotId } from "../../../src/core/cron/index.js";
import type { SlotLookup } from "../../../src/core/guard/lookup.js";
import type { LuaScript } from "../../../src/core/guard/scripts.js";
import * as coreScripts from "../../../src/core/guard/scripts.js";
import {
  createGuard,
  type Guard,
  type GuardResult,
  LockLostError,
  StoreUnavailableError,
} from "../../../src/core/index.js";
import { sleep } from "../../../src/core/sleep.js";
import { type CallRecord, type Fault, FaultyStore } from "../../support/faulty-store.js";
import { uniquePrefix } from "../../support/harness.js";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 40);
const TIME_LIMIT_MS = Number(process.env.PROPERTY_TIME_LIMIT_MS ?? 150_000);
const MAX_DELIVERIES = 12;
const MAX_SLOTS = 3;
/** Faults per instance: enough to cover a claim, a lease's heartbeats and the completion retries. */
const PLAN_LENGTH = 8;
/** A delivery still unsettled this many leases into a case is reported as hung. */
const HANG_LEASES = 40;
const JOB = "prop";
/** A recent whole minute: the slot ledger vouches for slots within its age bound (7 days). */
const BASE_SLOT = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
/** Timer and event-loop slack when comparing two local timestamps (ms). */
const TOLERANCE_MS = 8;

const now = () => performance.now();

// ---------------------------------------------------------------------------------------------
// Scenario
// ---------------------------------------------------------------------------------------------

interface Delivery {
  slot: number;
  /** Arrival after the case starts, in % of the lease. */
  atPct: number;
  /** Offset of this instance's guard clock (ms). */
  skewMs: number;
  /** Job duration in % of the lease (0..200). */
  durationPct: number;
  throws: boolean;
  /** The job stops when its signal aborts (else it ignores the signal). */
  respectsSignal: boolean;
  /** The process dies this long (% of lease) after the body started: no end, no more store calls. */
  crashPct: number | null;
  /** Retries after a thrown StoreUnavailableError (a platform retry: new invocation, new token). */
  retries: number;
  /** Faults for the instance's store calls, in call order; none once it runs out. */
  plan: Fault[];
  /** A deliberate re-run (`RunOptions.force`). Absent: false. */
  force?: boolean;
}

interface Scenario {
  leaseMs: number;
  slots: number;
  onFailure: "release" | "keep";
  /** Client timeout of every faulty store (ms), or none. */
  timeoutMs: number | null;
  deliveries: Delivery[];
  /** The guards' `retentionMs`, in % of the lease. Absent: the guard's default (no expiry in a case). */
  retentionPct?: number;
  /**
   * After the fresh deliveries and once the retention has run out: `copies` concurrent unforced
   * late duplicates of every slot, and one forced re-run of every slot if `force`. Absent: none.
   */
  late?: { copies: number; force: boolean };
}

/** One call's fault; `okWeight` (0..6, out of okWeight + 5) sets how flaky this instance's link is. */
const faultArb = (leaseMs: number, okWeight: number): fc.Arbitrary<Fault> =>
  fc.oneof(
    { arbitrary: fc.constant<Fault>({ kind: "ok" }), weight: okWeight },
    { arbitrary: fc.constant<Fault>({ kind: "failBefore" }), weight: 1 },
    { arbitrary: fc.constant<Fault>({ kind: "loseAnswer" }), weight: 2 },
    {
      arbitrary: fc
        .integer({ min: 0, max: 2 * leaseMs })
        .map((ms): Fault => ({ kind: "delaySend", ms })),
      weight: 1,
    },
    {
      arbitrary: fc
        .integer({ min: 0, max: 2 * leaseMs })
        .map((ms): Fault => ({ kind: "delayAnswer", ms })),
      weight: 1,
    },
    { arbitrary: fc.constant<Fault>({ kind: "die" }), weight: 1 },
  );

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    leaseMs: fc.integer({ min: 150, max: 300 }),
    slots: fc.integer({ min: 1, max: MAX_SLOTS }),
    onFailure: fc.constantFrom<"release" | "keep">("release", "keep"),
    timeoutPct: fc.option(fc.integer({ min: 50, max: 200 }), { nil: null, freq: 2 }),
    retentionPct: fc.integer({ min: 2, max: 100 }),
    late: fc.record({ copies: fc.integer({ min: 1, max: 4 }), force: fc.boolean() }),
  })
  .chain(({ leaseMs, slots, onFailure, timeoutPct, retentionPct, late }) =>
    fc
      .array(
        fc.record({
          slot: fc.integer({ min: 0, max: slots - 1 }),
          atPct: fc.integer({ min: 0, max: 200 }),
          skewMs: fc.integer({ min: -2_000, max: 2_000 }),
          durationPct: fc.integer({ min: 0, max: 200 }),
          throws: fc.boolean(),
          respectsSignal: fc.boolean(),
          crashPct: fc.option(fc.integer({ min: 0, max: 150 }), { nil: null, freq: 6 }),
          retries: fc.integer({ min: 0, max: 2 }),
          plan: fc
            .integer({ min: 0, max: 6 })
            .chain((okWeight) => fc.array(faultArb(leaseMs, okWeight), { maxLength: PLAN_LENGTH })),
          force: fc.oneof(
            { arbitrary: fc.constant(false), weight: 9 },
            { arbitrary: fc.constant(true), weight: 1 },
          ),
        }),
        { minLength: 1, maxLength: MAX_DELIVERIES },
      )
      .map(
        (deliveries): Scenario => ({
          leaseMs,
          slots,
          onFailure,
          timeoutMs: timeoutPct === null ? null : Math.round((timeoutPct * leaseMs) / 100),
          deliveries,
          retentionPct,
          late,
        }),
      ),
  );

// ---------------------------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------------------------

class JobError extends Error {
  override readonly name = "JobError";
}

interface Body {
  attempt: string;
  slot: number;
  forced: boolean;
  fence: number | null;
  start: number;
  end?: number;
  threw?: unknown;
  value?: string;
  abortedAt?: number;
  crashedAt?: number;
}

interface Attempt {
  id: string;
  slot: number;
  fresh: boolean;
  /** A late duplicate (or forced re-run) after the fresh deliveries and the retention. */
  late: boolean;
  forced: boolean;
  calledAt: number;
  settledAt?: number;
  result?: GuardResult<string>;
  thrown?: unknown;
  crashed: boolean;
}

interface Ledger {
  scenario: Scenario;
  bodies: Body[];
  attempts: Attempt[];
  calls: CallRecord[];
  /** When the last faulty call was answered or gave up (ms, ledger clock). */
  faultsOverAt: number;
  /** `guard.lookup` of every slot at the end of the case. */
  lookups: SlotRead[];
}

interface SlotRead {
  slot: number;
  calledAt: number;
  settledAt: number;
  lookup?: SlotLookup;
  thrown?: unknown;
}

let redis: ReturnType<typeof createClient>;
const names = new Map<string, string>();
/** Cases each property ran (an interrupted property ran fewer than PROPERTY_RUNS). */
const casesOf = new Map<string, number>();
const totals = { cases: 0, deliveries: 0, attempts: 0, calls: 0, faults: 0, ms: 0, slowestMs: 0 };

beforeAll(async () => {
  redis = createClient({ url: inject("redisUrl"), RESP: 2 });
  redis.on("error", () => {});
  await redis.connect();
  // Every script the core exports, so the log names them all and no EVALSHA meets NOSCRIPT.
  const scripts = Object.values(coreScripts).filter(
    (value): value is LuaScript =>
      typeof value === "object" && value !== null && "source" in value && "sha1" in value,
  );
  for (const script of scripts) {
    names.set(await script.sha1(), script.name);
    names.set(script.source, script.name);
    await redis.sendCommand(["SCRIPT", "LOAD", script.source]);
  }
});

afterAll(async () => {
  console.log(
    `claim protocol: ${totals.cases} cases, ${totals.deliveries} deliveries, ${totals.attempts} run calls, ` +
      `${totals.calls} store calls (${totals.faults} faulted), ${(totals.ms / 1000).toFixed(1)} s of cases, slowest ${(totals.slowestMs / 1000).toFixed(1)} s; ` +
      `cases per property: ${[...casesOf].map(([name, count]) => `${name} ${count}`).join(", ")}`,
  );
  redis?.destroy();
});

async function deleteKeys(prefix: string): Promise<void> {
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
    if (keys.length > 0) await redis.del(keys);
  }
}

const slotTime = (slot: number) => BASE_SLOT + slot * 60_000;

async function simulate(scenario: Scenario): Promise<Ledger> {
  const caseStart = now();
  const prefix = uniquePrefix("claim-prop");
  const { leaseMs } = scenario;
  const retentionMs =
    scenario.retentionPct === undefined
      ? undefined
      : Math.max(1, Math.round((scenario.retentionPct * leaseMs) / 100));
  const calls: CallRecord[] = [];
  const lookups: SlotRead[] = [];
  const bodies: Body[] = [];
  const attempts: Attempt[] = [];
  const stores: FaultyStore[] = [];
  const deaths = new Map<string, () => void>();
  const onDeath = (label: string) => deaths.get(label)?.();
  let endCase: () => void = () => {};
  const caseOver = new Promise<void>((resolve) => {
    endCase = resolve;
  });

  const makeGuard = (store: FaultyStore, skewMs: number): Guard =>
    createGuard({
      redis: store,
      prefix,
      leaseMs,
      heartbeatMs: Math.floor(leaseMs / 3),
      onFailure: scenario.onFailure,
      onStoreError: "closed",
      clock: () => Date.now() + skewMs,
      region: "p",
      ...(retentionMs === undefined ? {} : { retentionMs }),
    });

  /** One run call; resolves when it settles or when its process crashes. */
  const attemptRun = async (
    guard: Guard,
    store: FaultyStore,
    id: string,
    slot: number,
    delivery: Pick<Delivery, "durationPct" | "throws" | "respectsSignal" | "crashPct" | "force">,
    phase: "case" | "fresh" | "late",
  ): Promise<Attempt> => {
    store.label = id;
    const forced = delivery.force === true;
    const attempt: Attempt = {
      id,
      slot,
      fresh: phase === "fresh",
      late: phase === "late",
      forced,
      calledAt: now(),
      crashed: false,
    };
    attempts.push(attempt);
    let crashed: () => void = () => {};
    const crash = new Promise<void>((resolve) => {
      crashed = resolve;
    });
    let running: Body | undefined;
    /** The process dies (a `die` fault, or the job's planned crash): nothing it does counts any more. */
    const die = () => {
      if (attempt.crashed) return;
      attempt.crashed = true;
      if (running && running.end === undefined) running.crashedAt = now();
      store.kill();
      crashed();
    };
    deaths.set(id, die);
    const durationMs = Math.round((delivery.durationPct * leaseMs) / 100);
    const crashAfterMs =
      delivery.crashPct === null ? null : Math.round((delivery.crashPct * leaseMs) / 100);
    const run = guard
      .run(
        JOB,
        slotTime(slot),
        async ({ signal, fence }) => {
          const body: Body = { attempt: id, slot, forced, fence, start: now() };
          if (attempt.crashed) return new Promise<string>(() => {});
          running = body;
          bodies.push(body);
          if (signal.aborted) body.abortedAt = body.start;
          signal.addEventListener("abort", () => {
            body.abortedAt ??= now();
          });
          const crashes = crashAfterMs !== null && crashAfterMs <= durationMs;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, crashes ? crashAfterMs : durationMs);
            if (delivery.respectsSignal) {
              signal.addEventListener("abort", () => {
                clearTimeout(timer);
                resolve();
              });
            }
          });
          if (delivery.respectsSignal && signal.aborted && !attempt.crashed) {
            body.end = now();
            body.threw = signal.reason;
            throw signal.reason;
          }
          if (crashes) die();
          if (attempt.crashed) {
            await caseOver;
            throw new Error("the process crashed");
          }
          body.end = now();
          if (delivery.throws) {
            const error = new JobError(`job ${id} threw`);
            body.threw = error;
            throw error;
          }
          body.value = id;
          return id;
        },
        forced ? { force: true } : {},
      )
      .then(
        (result) => {
          if (!attempt.crashed) {
            attempt.result = result;
            attempt.settledAt = now();
          }
        },
        (error: unknown) => {
          if (!attempt.crashed) {
            attempt.thrown = error;
            attempt.settledAt = now();
          }
        },
      );
    await Promise.race([run, crash]);
    return attempt;
  };

  try {
    const everyDelivery = Promise.all(
      scenario.deliveries.map(async (delivery, index) => {
        const store = new FaultyStore({
          redis,
          plan: delivery.plan,
          log: calls,
          timeoutMs: scenario.timeoutMs,
          names,
          onDeath,
        });
        stores.push(store);
        const guard = makeGuard(store, delivery.skewMs);
        await sleep(Math.round((delivery.atPct * leaseMs) / 100));
        for (let retry = 0; retry <= delivery.retries; retry += 1) {
          const attempt = await attemptRun(
            guard,
            store,
            `d${index}.${retry}`,
            delivery.slot,
            delivery,
            "case",
          );
          if (attempt.crashed || !(attempt.thrown instanceof StoreUnavailableError)) break;
          await sleep(Math.round(leaseMs / 5));
        }
      }),
    );
    // A run that never settles is reported (P4 "never settled") rather than hanging the case.
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      everyDelivery,
      new Promise((resolve) => {
        watchdog = setTimeout(resolve, HANG_LEASES * leaseMs);
      }),
    ]);
    clearTimeout(watchdog);
    // Every command that was sent or is still travelling lands; then one more lease lets any
    // claim whose holder is gone (crashed, gave up) run out in Redis.
    await Promise.all(stores.map((store) => store.drain()));
    const faultsOverAt = now();
    await sleep(leaseMs + 50);
    await Promise.all(
      Array.from({ length: scenario.slots }, async (_, slot) => {
        // Retried only when the machine itself stalled a whole lease on the claim's round trip
        // (a loaded CI box): such a delivery may rightly refuse to start, which proves nothing.
        for (let retry = 0; retry < 3; retry += 1) {
          const store = new FaultyStore({ redis, plan: [], log: calls, names });
          const id = `fresh${slot}.${retry}`;
          await attemptRun(
            makeGuard(store, 0),
            store,
            id,
            slot,
            { durationPct: 0, throws: false, respectsSignal: true, crashPct: null },
            "fresh",
          );
          const claim = calls.find((call) => call.label === id && call.script === "claim");
          const roundTripMs = (claim?.settledAt ?? Infinity) - (claim?.calledAt ?? 0);
          if (roundTripMs < leaseMs) break;
        }
      }),
    );
    if (scenario.late) {
      // Every slot key written so far has expired: only the ledger remembers the slots now.
      if (retentionMs !== undefined) await sleep(retentionMs + 20);
      const { copies, force } = scenario.late;
      const lateRun = (id: string, slot: number, forced: boolean) => {
        const store = new FaultyStore({ redis, plan: [], log: calls, names });
        return attemptRun(
          makeGuard(store, 0),
          store,
          id,
          slot,
          { durationPct: 0, throws: false, respectsSignal: true, crashPct: null, force: forced },
          "late",
        );
      };
      await Promise.all(
        Array.from({ length: scenario.slots }, async (_, slot) => {
          await Promise.all(
            Array.from({ length: copies }, (_, copy) =>
              lateRun(`late${slot}.${copy}`, slot, false),
            ),
          );
          if (force) {
            await lateRun(`force${slot}`, slot, true);
            await lateRun(`late${slot}.after`, slot, false);
          }
        }),
      );
    }
    await Promise.all(
      Array.from({ length: scenario.slots }, async (_, slot) => {
        const store = new FaultyStore({
          redis,
          plan: [],
          log: calls,
          names,
          label: `lookup${slot}`,
        });
        const read: SlotRead = { slot, calledAt: now(), settledAt: 0 };
        try {
          read.lookup = await makeGuard(store, 0).lookup(JOB, slotTime(slot));
        } catch (error) {
          read.thrown = error;
        }
        read.settledAt = now();
        lookups.push(read);
      }),
    );
    totals.cases += 1;
    totals.deliveries += scenario.deliveries.length;
    totals.attempts += attempts.length;
    totals.calls += calls.length;
    totals.faults += calls.filter((call) => call.fault.kind !== "ok").length;
    totals.ms += now() - caseStart;
    totals.slowestMs = Math.max(totals.slowestMs, now() - caseStart);
    return { scenario, bodies, attempts, calls, faultsOverAt, lookups };
  } finally {
    endCase();
    for (const store of stores) store.release();
    await sleep(5);
    await deleteKeys(prefix).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// The promises
// ---------------------------------------------------------------------------------------------

const fmt = (ms: number | undefined) => (ms === undefined ? "-" : ms.toFixed(1));

function describeAttempt(attempt: Attempt | undefined): string {
  if (!attempt) return "(no attempt)";
  if (attempt.crashed) return `${attempt.id}: crashed`;
  if (attempt.thrown !== undefined) {
    const error = attempt.thrown as Error;
    return `${attempt.id}: threw ${error?.name}: ${error?.message}`;
  }
  const result = attempt.result;
  if (!result) return `${attempt.id}: pending`;
  switch (result.status) {
    case "ran":
      return `${attempt.id}: ran fence ${result.fence}${result.warning ? " (warning)" : ""}`;
    case "skipped":
      return `${attempt.id}: skipped ${result.reason} (holder fence ${result.holder?.fence})`;
    case "failed":
      return `${attempt.id}: failed ${(result.error as Error)?.name} lockLost=${result.lockLost}`;
  }
}

function describeBody(body: Body): string {
  return `${body.attempt}[fence ${body.fence} ${fmt(body.start)}..${fmt(body.end ?? body.crashedAt)}${
    body.abortedAt !== undefined ? ` aborted@${fmt(body.abortedAt)}` : ""
  }${body.crashedAt !== undefined ? " crashed" : ""}]`;
}

/**
 * A result that says another instance may have run the slot too. A process that died before its
 * run was recorded says nothing; its lease running out is how the slot gets run again.
 */
function admitsLostLease(attempt: Attempt | undefined): boolean {
  if (attempt?.crashed) return true;
  const result = attempt?.result;
  if (!result) return false;
  if (result.status === "failed") return result.lockLost;
  if (result.status === "ran") return result.warning !== undefined;
  return false;
}

function slotsOf(ledger: Ledger): number[] {
  return Array.from({ length: ledger.scenario.slots }, (_, slot) => slot);
}

function byId(ledger: Ledger): Map<string, Attempt> {
  return new Map(ledger.attempts.map((attempt) => [attempt.id, attempt]));
}

function callsOf(ledger: Ledger, attemptId: string, script: string): CallRecord[] {
  return ledger.calls.filter((call) => call.label === attemptId && call.script === script);
}

function parsed(call: CallRecord): Record<string, unknown> | undefined {
  if (typeof call.reply !== "string") return undefined;
  try {
    return JSON.parse(call.reply) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Promise 1: at most one successful run per slot, unless the earlier ones admit a lost lease. */
function checkOneSuccessfulRun(ledger: Ledger): string[] {
  const attempts = byId(ledger);
  const violations: string[] = [];
  for (const slot of slotsOf(ledger)) {
    const succeeded = ledger.bodies
      .filter(
        (body) =>
          body.slot === slot &&
          !body.forced &&
          body.end !== undefined &&
          body.threw === undefined &&
          body.crashedAt === undefined,
      )
      .sort((a, b) => a.start - b.start);
    for (const body of succeeded.slice(0, -1)) {
      const attempt = attempts.get(body.attempt);
      if (!admitsLostLease(attempt)) {
        violations.push(
          `P1 slot ${slot}: ${succeeded.length} successful unforced runs (${succeeded.map(describeBody).join(", ")}), ` +
            `but earlier ${describeAttempt(attempt)} does not admit a lost lease`,
        );
      }
    }
  }
  return [...violations, ...checkLedgerRemembers(ledger)];
}

/** A store call's slot id: CLAIM's ARGV[5], COMPLETE's ARGV[9]. */
function slotArg(call: CallRecord): string | undefined {
  return call.script === "claim" ? call.args[4] : call.args[8];
}

/**
 * Completions that landed in Redis and entered the run in the ledger (a done or failed run recorded;
 * a done run found lost), per slot id, in the order Redis answered them.
 */
function landedCompletions(ledger: Ledger): Map<string, CallRecord[]> {
  const landed = new Map<string, CallRecord[]>();
  for (const call of ledger.calls) {
    if (call.script !== "complete" || call.repliedAt === undefined) continue;
    const outcome = parsed(call)?.outcome;
    if (outcome !== "recorded" && !(outcome === "lost" && call.args[1] === "done")) continue;
    const slot = slotArg(call) ?? "";
    landed.set(slot, [...(landed.get(slot) ?? []), call]);
  }
  for (const calls of landed.values())
    calls.sort((a, b) => (a.repliedAt ?? 0) - (b.repliedAt ?? 0));
  return landed;
}

/**
 * The ledger half of promise 1, in Redis's own order (a command ran between its sentAt and
 * repliedAt): no unforced claim wins a slot after a successful run of it was recorded, whether or
 * not the slot key's retention has run out; every late unforced duplicate is skipped as done (or
 * failed, under "keep"), never run and never `unvouched`.
 */
function checkLedgerRemembers(ledger: Ledger): string[] {
  const violations: string[] = [];
  const firstDone = new Map<string, CallRecord>();
  for (const [slot, calls] of landedCompletions(ledger)) {
    const done = calls.find((call) => call.args[1] === "done");
    if (done) firstDone.set(slot, done);
  }
  for (const call of ledger.calls) {
    if (call.script !== "claim" || call.args[8] === "1" || call.sentAt === undefined) continue;
    const reply = parsed(call);
    if (reply?.outcome !== "claimed" || reply.retried === true) continue;
    const done = firstDone.get(slotArg(call) ?? "");
    if (done?.repliedAt !== undefined && call.sentAt > done.repliedAt) {
      const fence = (reply.state as { fence?: number } | undefined)?.fence;
      violations.push(
        `P1 ledger ${slotArg(call)}: unforced claim of ${call.label} (fence ${fence}) ran in Redis ` +
          `${fmt(call.sentAt - done.repliedAt)} ms after ${done.label}'s run (fence ${done.args[9]}) ` +
          `was recorded ${parsed(done)?.outcome}: the slot runs a second time`,
      );
    }
  }
  for (const attempt of ledger.attempts) {
    if (!attempt.late || attempt.forced) continue;
    const result = attempt.result;
    const finished =
      result?.status === "skipped" &&
      (result.reason === "done" ||
        (result.reason === "failed" && ledger.scenario.onFailure === "keep"));
    if (!finished) {
      violations.push(
        `P1 ledger slot ${attempt.slot}: late duplicate (after the retention) ${describeAttempt(attempt)}; ` +
          "the ledger should have answered done",
      );
    }
  }
  return violations;
}

/** Promise 2: no two believing holders at once; no body starts on an expired claim. */
function checkMutualExclusion(ledger: Ledger): string[] {
  const violations: string[] = [];
  const { leaseMs } = ledger.scenario;
  const believedUntil = (body: Body) =>
    Math.min(body.end ?? Infinity, body.abortedAt ?? Infinity, body.crashedAt ?? Infinity);
  for (const slot of slotsOf(ledger)) {
    const bodies = ledger.bodies
      .filter((body) => body.slot === slot)
      .sort((a, b) => a.start - b.start);
    for (let i = 0; i < bodies.length; i += 1) {
      for (let j = i + 1; j < bodies.length; j += 1) {
        const [first, second] = [bodies[i] as Body, bodies[j] as Body];
        const secondBelieves = (second.abortedAt ?? Infinity) > second.start;
        if (secondBelieves && second.start + TOLERANCE_MS < believedUntil(first)) {
          violations.push(
            `P2 slot ${slot}: ${describeBody(second)} started while ${describeBody(first)} still held the lease`,
          );
        }
      }
    }
  }
  for (const body of ledger.bodies) {
    if (body.attempt.startsWith("fresh")) continue;
    const claims = callsOf(ledger, body.attempt, "claim").filter(
      (call) => parsed(call)?.outcome === "claimed" && call.repliedAt !== undefined,
    );
    const first = claims.sort((a, b) => (a.repliedAt ?? 0) - (b.repliedAt ?? 0))[0];
    if (first?.repliedAt !== undefined && body.start > first.repliedAt + leaseMs + TOLERANCE_MS) {
      violations.push(
        `P2 slot ${body.slot}: ${describeBody(body)} started ${fmt(body.start - first.repliedAt)} ms after ` +
          `Redis answered its claim (lease ${leaseMs} ms, answer fault ${JSON.stringify(first.fault)}): ` +
          "the lease had run out before the job began",
      );
    }
  }
  return violations;
}

/** Promise 3: no stranded slot. */
function checkNoStrandedSlot(ledger: Ledger): string[] {
  const violations: string[] = [];
  const attempts = byId(ledger);
  const lastFresh = new Map<number, Attempt>();
  for (const attempt of ledger.attempts) if (attempt.fresh) lastFresh.set(attempt.slot, attempt);
  for (const attempt of lastFresh.values()) {
    const result = attempt.result;
    const ok =
      result !== undefined &&
      (result.status === "ran" ||
        (result.status === "skipped" &&
          (result.reason === "done" ||
            (result.reason === "failed" && ledger.scenario.onFailure === "keep"))));
    if (!ok) {
      violations.push(
        `P3 slot ${attempt.slot}: fresh delivery ${fmt(attempt.calledAt - ledger.faultsOverAt)} ms after the ` +
          `last fault got ${describeAttempt(attempt)}`,
      );
    }
  }
  const claimByToken = new Map<string, CallRecord>();
  for (const call of ledger.calls) {
    const token = call.args[0];
    if (call.script === "claim" && token !== undefined && !claimByToken.has(token)) {
      claimByToken.set(token, call);
    }
  }
  for (const attempt of ledger.attempts) {
    const result = attempt.result;
    if (result?.status !== "skipped" || result.reason !== "running") continue;
    const token = result.holder?.token;
    const holderClaim = token === undefined ? undefined : claimByToken.get(token);
    if (!holderClaim) continue;
    const holder = attempts.get(holderClaim.label);
    if (!holder || holder.crashed || holder.settledAt === undefined) continue;
    const ownClaim = callsOf(ledger, attempt.id, "claim")[0];
    if (!ownClaim || holder.settledAt >= ownClaim.calledAt) continue;
    // The holder had given up before this delivery asked. Excused only when the holder tried to
    // clean up (a later store call) and a fault stopped it, or the cleanup ran before its claim
    // landed (a claim delayed past the caller's timeout).
    const claimLanded = holderClaim.sentAt ?? Infinity;
    const excused = ledger.calls.some(
      (call) =>
        call.label === holder.id &&
        call.seq > holderClaim.seq &&
        (call.fault.kind !== "ok" ||
          call.outcome === "timeout" ||
          (call.repliedAt !== undefined && call.repliedAt <= claimLanded)),
    );
    if (!excused) {
      violations.push(
        `P3 slot ${attempt.slot}: ${describeAttempt(attempt)} at ${fmt(ownClaim.calledAt)}, but the holder ` +
          `${describeAttempt(holder)} had given up at ${fmt(holder.settledAt)} ` +
          `(its claim: fault ${JSON.stringify(holderClaim.fault)}, caller saw ${holderClaim.outcome}) ` +
          "and left the slot running",
      );
    }
  }
  return violations;
}

/** Promise 4: results tell the truth. */
function checkTruthfulResults(ledger: Ledger): string[] {
  const violations: string[] = [];
  const bodyOf = new Map(ledger.bodies.map((body) => [body.attempt, body]));
  for (const attempt of ledger.attempts) {
    if (attempt.crashed) continue;
    const body = bodyOf.get(attempt.id);
    const say = (text: string) =>
      violations.push(
        `P4 ${describeAttempt(attempt)}: ${text}; body ${body ? describeBody(body) : "none"}`,
      );
    const completes = callsOf(ledger, attempt.id, "complete");
    const outcomes = (calls: CallRecord[]) =>
      calls.map((call) => parsed(call)?.outcome).filter((outcome) => outcome !== undefined);
    // Recorded at any time: the lease held until the completion landed.
    const recorded = outcomes(completes).includes("recorded");
    // Found lost by a completion that ran before the result was returned: the result came back
    // after the lease was gone, whether or not the caller saw that answer.
    const before = outcomes(
      completes.filter(
        (call) => call.repliedAt !== undefined && call.repliedAt <= (attempt.settledAt ?? 0),
      ),
    );
    const lostInStore = before.length > 0 && !before.includes("recorded") && !recorded;
    if (attempt.thrown !== undefined) {
      if (!(attempt.thrown instanceof StoreUnavailableError)) say("run threw something else");
      if (body) say("threw StoreUnavailableError although the job body ran");
      continue;
    }
    const result = attempt.result;
    if (!result) {
      say("never settled");
      continue;
    }
    if (result.status === "skipped") {
      if (body) say("skipped although the job body ran");
      continue;
    }
    if (!body) {
      say(`${result.status} although the job body never ran`);
      continue;
    }
    if (result.fence !== body.fence) say(`fence ${result.fence} differs from the body's`);
    const abortedWhileRunning =
      body.abortedAt !== undefined && body.abortedAt <= (body.end ?? Infinity);
    if (result.status === "ran") {
      if (body.end === undefined || body.threw !== undefined)
        say("ran but the body did not finish");
      if (result.value !== body.value) say("ran with a value the body did not return");
      if (abortedWhileRunning && !recorded) {
        say("ran although its signal reported the lease lost and no completion was recorded");
      }
      if (lostInStore) say("ran although the store found the lease lost at completion");
      continue;
    }
    if (result.lockLost) {
      // Giving up unanswered at the end of the lease may say lockLost (it cannot know better);
      // concluding it from an answer, while the store had recorded the run under this lease, is false.
      const answered = completes.some((call) => call.outcome === "answered");
      if (recorded && answered && !abortedWhileRunning) {
        say("lockLost although the lease held: the store recorded its completion");
      }
    } else {
      if (abortedWhileRunning) say("lockLost=false although the signal aborted while the job ran");
      if (lostInStore) say("lockLost=false although the store found the lease lost at completion");
    }
    if (result.error instanceof JobError && result.error !== body.threw) {
      say("failed with a job error the body did not throw");
    }
    if (result.error instanceof LockLostError && !result.lockLost) {
      say("failed with LockLostError but lockLost=false");
    }
    if (!(result.error instanceof JobError) && !(result.error instanceof LockLostError)) {
      say(`failed with an unexpected error ${String(result.error)}`);
    }
  }
  violations.push(...checkLookups(ledger));
  const fences = ledger.bodies.map((body) => body.fence);
  if (new Set(fences).size !== fences.length) {
    violations.push(`P4 fences handed out twice: ${ledger.bodies.map(describeBody).join(", ")}`);
  }
  for (const slot of slotsOf(ledger)) {
    const bodies = ledger.bodies
      .filter((body) => body.slot === slot)
      .sort((a, b) => a.start - b.start);
    for (let i = 1; i < bodies.length; i += 1) {
      const [before, after] = [bodies[i - 1] as Body, bodies[i] as Body];
      if ((after.fence ?? 0) <= (before.fence ?? 0)) {
        violations.push(
          `P4 slot ${slot}: fences do not increase in claim order: ${describeBody(before)} then ${describeBody(after)}`,
        );
      }
    }
  }
  return violations;
}

/** Runs of one slot the ledger keeps (the last ones). */
const LEDGER_RUNS_KEPT = 8;

/**
 * Promise 4 for forced re-runs and lookups: a late forced re-run (nothing runs the slot by then)
 * runs; `guard.lookup` lists every run whose completion landed before it, with the outcome the
 * ledger enters and `forced` as the claim was made, and no run whose completion was never sent.
 */
function checkLookups(ledger: Ledger): string[] {
  const violations: string[] = [];
  const { onFailure } = ledger.scenario;
  for (const attempt of ledger.attempts) {
    if (!attempt.late || !attempt.forced) continue;
    if (attempt.result?.status !== "ran" || attempt.result.warning !== undefined) {
      violations.push(
        `P4 slot ${attempt.slot}: late forced re-run ${describeAttempt(attempt)}; it should have run`,
      );
    }
  }
  const forcedFences = new Set<number>();
  for (const call of ledger.calls) {
    const reply = call.script === "claim" ? parsed(call) : undefined;
    const fence = (reply?.state as { fence?: number } | undefined)?.fence;
    if (reply?.outcome === "claimed" && call.args[8] === "1" && fence !== undefined) {
      forcedFences.add(Number(fence));
    }
  }
  const landed = landedCompletions(ledger);
  for (const read of ledger.lookups) {
    const id = slotId(slotTime(read.slot));
    const say = (text: string) =>
      violations.push(
        `P4 lookup slot ${read.slot}: ${text}; lookup ${JSON.stringify(read.lookup?.runs ?? read.thrown)}`,
      );
    if (!read.lookup) {
      say("threw");
      continue;
    }
    const expected = new Map<number, { outcome: string; forced: boolean }>();
    for (const call of landed.get(id) ?? []) {
      if ((call.repliedAt ?? Infinity) >= read.calledAt) continue;
      const fence = Number(call.args[9]);
      const outcome =
        parsed(call)?.outcome === "lost"
          ? "lost"
          : call.args[1] === "done"
            ? "done"
            : onFailure === "keep"
              ? "failed"
              : "released";
      if (!expected.has(fence)) expected.set(fence, { outcome, forced: forcedFences.has(fence) });
    }
    const runs = read.lookup.runs;
    if (expected.size <= LEDGER_RUNS_KEPT) {
      for (const [fence, want] of expected) {
        const run = runs.find((entry) => entry.fence === fence);
        if (!run) say(`the recorded run with fence ${fence} (${want.outcome}) is missing`);
        else if (run.outcome !== want.outcome || run.forced !== want.forced) {
          say(
            `fence ${fence} listed as ${run.outcome} forced=${run.forced}, recorded ${want.outcome} forced=${want.forced}`,
          );
        }
      }
    } else if (runs.length !== LEDGER_RUNS_KEPT) {
      say(
        `${expected.size} runs recorded, but ${runs.length} listed (the ledger keeps ${LEDGER_RUNS_KEPT})`,
      );
    }
    const sent = new Set(
      ledger.calls
        .filter(
          (call) =>
            call.script === "complete" &&
            slotArg(call) === id &&
            (call.sentAt ?? Infinity) < read.settledAt,
        )
        .map((call) => Number(call.args[9])),
    );
    for (const run of runs) {
      if (!sent.has(run.fence))
        say(`lists a run with fence ${run.fence} that no completion recorded`);
    }
    const lastForced = ledger.attempts.find(
      (attempt) => attempt.late && attempt.forced && attempt.slot === read.slot,
    );
    if (lastForced?.result?.status === "ran") {
      const last = runs[runs.length - 1];
      if (
        read.lookup.status !== "ran" ||
        last?.fence !== lastForced.result.fence ||
        !last.forced ||
        last.outcome !== "done"
      ) {
        say(
          `status ${read.lookup.status}: the last run should be the late forced re-run, fence ${lastForced.result.fence}`,
        );
      }
    }
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

function holds(name: string, check: (ledger: Ledger) => string[]) {
  return fc.asyncProperty(scenarioArb, async (scenario) => {
    const ledger = await simulate(scenario);
    casesOf.set(name, (casesOf.get(name) ?? 0) + 1);
    const violations = check(ledger);
    if (process.env.PROPERTY_DEBUG) {
      console.log(
        [
          ...ledger.attempts.map(describeAttempt),
          ...ledger.bodies.map(describeBody),
          ...ledger.calls.map(
            (call) =>
              `${call.label}#${call.seq} ${call.script} ${JSON.stringify(call.fault)} ${call.outcome} ` +
              `${fmt(call.calledAt)}/${fmt(call.sentAt)}/${fmt(call.repliedAt)} ${String(call.reply).slice(0, 120)}`,
          ),
        ].join("\n"),
      );
    }
    if (violations.length > 0) {
      throw new Error(`${violations.length} violation(s):\n${violations.join("\n")}`);
    }
  });
}

const quiet: Omit<Delivery, "slot" | "atPct" | "plan"> = {
  skewMs: 0,
  durationPct: 0,
  throws: false,
  respectsSignal: false,
  crashPct: null,
  retries: 0,
};

/**
 * Shapes that broke the protocol once, run before the random cases of every property (fast-check
 * shrinks from them too if they fail again). Each would also be found by the random search, just
 * less often.
 */
/** One slot, a 150 ms lease, "release" on failure, no instance timeout: what the known cases share. */
function known(deliveries: Delivery[]): Scenario {
  return { leaseMs: 150, slots: 1, onFailure: "release", timeoutMs: null, deliveries };
}

const KNOWN_SCENARIOS: Scenario[] = [
  // A claim runs but its answer is lost; the instance gives up and the platform retries it.
  known([{ ...quiet, slot: 0, atPct: 0, retries: 1, plan: [{ kind: "loseAnswer" }] }]),
  // A claim answered after its lease ran out, while another delivery claimed the slot meanwhile.
  known([
    {
      ...quiet,
      slot: 0,
      atPct: 0,
      durationPct: 20,
      plan: [{ kind: "delayAnswer", ms: 320 }],
    },
    { ...quiet, slot: 0, atPct: 140, durationPct: 150, plan: [] },
  ]),
  // Under "release" a failure is recorded but its answer lost; another delivery re-claims the slot
  // before the completion is retried.
  known([
    { ...quiet, slot: 0, atPct: 0, throws: true, plan: [{ kind: "ok" }, { kind: "loseAnswer" }] },
    { ...quiet, slot: 0, atPct: 20, plan: [] },
  ]),
  // The holder loses the store for longer than its lease and finishes a job that outlives it.
  known([
    {
      ...quiet,
      slot: 0,
      atPct: 0,
      durationPct: 200,
      plan: [{ kind: "ok" }, ...Array.from({ length: 6 }, (): Fault => ({ kind: "failBefore" }))],
    },
  ]),
];

const EXAMPLES: [Scenario][] = process.env.PROPERTY_EXAMPLE
  ? [[JSON.parse(process.env.PROPERTY_EXAMPLE) as Scenario]]
  : process.env.PROPERTY_KNOWN === "0"
    ? []
    : KNOWN_SCENARIOS.map((scenario): [Scenario] => [scenario]);

const assertOptions = {
  numRuns: RUNS,
  plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS)],
  examples: EXAMPLES,
  ...(process.env.PROPERTY_SEED ? { seed: Number(process.env.PROPERTY_SEED) } : {}),
  ...(process.env.PROPERTY_PATH ? { path: process.env.PROPERTY_PATH } : {}),
};

describe(`claim protocol under injected faults (${RUNS} cases × up to ${MAX_DELIVERIES} deliveries, ${MAX_SLOTS} slots, ${PLAN_LENGTH} faults each)`, () => {
  const timeout = TIME_LIMIT_MS + 60_000;

  it.concurrent(
    "1. at most one successful unforced run per slot unless the earlier runs admit a lost lease; the ledger keeps a recorded run from running again after the retention",
    async () => {
      await fc.assert(holds("P1", checkOneSuccessfulRun), assertOptions);
    },
    timeout,
  );

  it.concurrent(
    "2. no two job bodies of a slot run while both hold the lease; none starts on an expired claim",
    async () => {
      await fc.assert(holds("P2", checkMutualExclusion), assertOptions);
    },
    timeout,
  );

  it.concurrent(
    "3. no slot is stranded once the faults are over",
    async () => {
      await fc.assert(holds("P3", checkNoStrandedSlot), assertOptions);
    },
    timeout,
  );

  it.concurrent(
    "4. results tell the truth: ran, failed, skipped and thrown match what the job did; lookup lists every recorded run, forced ones as forced",
    async () => {
      await fc.assert(holds("P4", checkTruthfulResults), assertOptions);
    },
    timeout,
  );
});

describe("what the properties found", () => {
  it("a forced run whose slot key was gone at completion is entered in the ledger as forced (lost)", async () => {
    const prefix = uniquePrefix("claim-prop-forced-lost");
    const guard = createGuard({
      redis: new FaultyStore({ redis, plan: [], log: [], names }),
      prefix,
      leaseMs: 1_000,
    });
    try {
      const result = await guard.run(
        JOB,
        slotTime(0),
        async () => {
          // The slot key vanishes while the job runs (its lease ran out, or the database lost it).
          await redis.del(`${prefix}:{${JOB}}:slot:${slotId(slotTime(0))}`);
          return "ran";
        },
        { force: true },
      );
      expect(result).toMatchObject({ status: "failed", lockLost: true });
      const lookup = await guard.lookup(JOB, slotTime(0));
      expect(lookup.runs).toEqual([expect.objectContaining({ outcome: "lost", forced: true })]);
    } finally {
      await deleteKeys(prefix);
    }
  });
});
