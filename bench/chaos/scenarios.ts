/**
 * Fault scenarios: each delivers every slot of a job from several instances while a fault is
 * injected, redelivers what the platform would redeliver, and counts duplicates, lost slots and
 * surfaced errors from what the job bodies themselves saw.
 */

import { parseSchedule, slotFromCron, slotId } from "../../src/core/cron/index.js";
import { COMPLETE_SCRIPT } from "../../src/core/guard/scripts.js";
import {
  createGuard,
  type Guard,
  type GuardOptions,
  type GuardResult,
  type JobContext,
} from "../../src/core/index.js";
import { type FaultPlan, type FaultProxy, forwardAll, startFaultProxy } from "../faults/proxy.js";
import {
  type BenchStack,
  seededRandom,
  sleep,
  startBenchStack,
  upstashClient,
} from "../support.js";
import { deliver, Ledger } from "./ledger.js";

export interface ScenarioSize {
  /** Slots (planned fires) per scenario. */
  slots: number;
  /** Concurrent deliveries of each slot, one per instance. */
  deliveriesPerSlot: number;
}

export interface ScenarioResult {
  name: string;
  fault: string;
  slots: number;
  deliveries: number;
  /** Successful job bodies. */
  runs: number;
  /** Slots whose body succeeded more than once or ran twice at the same time. */
  duplicates: number;
  /** Slots with no successful run although the policy promises one after redelivery. */
  lost: number;
  /** Deliveries whose failure the caller saw (failed result, thrown error, ran with a warning). */
  errorsSurfaced: number;
  /** Body runs that no result reported to their caller. */
  unreported: number;
  /** Redelivery rounds it took. */
  rounds: number;
  notes: string[];
  /** What else the scenario promises and did not hold (empty: all held). */
  failedChecks?: string[];
}

/** Where the scenarios send their traffic: a bridge (shared or own) and a fault proxy before it. */
export interface ChaosTarget {
  stack: BenchStack;
  proxy: FaultProxy;
}

/**
 * A whole hour three days ago: the slots stay within the slot ledger's age bound (7 days) for the
 * whole run, hourly ones included. A fixed date would drift past it: the ledger sweeps slots older
 * than its bound and answers `unvouched` for them and for every older slot, so redeliveries of
 * slots that had not run yet would never run them.
 */
const BASE_SLOT_MS = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3 * 86_400_000;
let runCounter = 0;

/** One fire a minute from a fixed base: the slots every scenario delivers. */
function slotsOf(size: ScenarioSize): number[] {
  return Array.from({ length: size.slots }, (_, i) => BASE_SLOT_MS + i * 60_000);
}

function uniqueJob(name: string): string {
  runCounter += 1;
  return `chaos-${name.replace(/[^A-Za-z0-9]+/g, "-")}-${Date.now().toString(36)}-${runCounter}`;
}

function guardsFor(
  url: string,
  token: string,
  count: number,
  options: Omit<GuardOptions, "redis">,
  retries = 5,
): Guard[] {
  return Array.from({ length: count }, (_, i) =>
    createGuard({
      ...options,
      redis: upstashClient(url, token, { retries }),
      region: `instance-${i}`,
    }),
  );
}

interface StormOptions {
  name: string;
  fault: string;
  target: ChaosTarget;
  size: ScenarioSize;
  guard: Omit<GuardOptions, "redis" | "prefix">;
  jobMs: number;
  /** Redelivery rounds for slots that have not run yet, each after `roundGapMs`. */
  maxRounds: number;
  roundGapMs: number;
  /** The proxy's fault plan while the scenario runs; forward-all is restored after it. */
  plan?: FaultPlan;
  /** Called once the first wave is in flight (e.g. to cut Redis); may deliver more itself. */
  duringFirstWave?: (wave: (slots: number[]) => Promise<unknown>) => Promise<void>;
  retries?: number;
}

/**
 * Delivers every slot from every instance at once; then, like a platform retry, redelivers the
 * slots that have no successful run yet, after a gap longer than the lease.
 */
async function stormWithRedelivery(options: StormOptions): Promise<ScenarioResult> {
  const { target, size } = options;
  const ledger = new Ledger();
  const job = uniqueJob(options.name);
  const slots = slotsOf(size);
  for (const slot of slots) ledger.expect(slotId(slot));
  const body = async () => {
    await sleep(options.jobMs);
  };
  const wave = (waveSlots: number[]) =>
    Promise.all(
      waveSlots.flatMap((slot) =>
        // Each delivery is an isolate of its own: its own client, so no batching across deliveries.
        guardsFor(
          target.proxy.url,
          target.stack.bridge.token,
          size.deliveriesPerSlot,
          { ...options.guard, prefix: "chaos" },
          options.retries,
        ).map((guard) => deliver(ledger, slotId(slot), (fn) => guard.run(job, slot, fn), body)),
      ),
    );
  const before = { ...target.proxy.counts };
  target.proxy.setPlan(options.plan ?? forwardAll);
  let rounds = 0;
  try {
    const first = wave(slots);
    await options.duringFirstWave?.(wave);
    await first;
    let pending = slots.filter((slot) => ledger.successes(slotId(slot)) === 0);
    while (pending.length > 0 && rounds < options.maxRounds) {
      rounds += 1;
      await sleep(options.roundGapMs);
      await wave(pending);
      pending = pending.filter((slot) => ledger.successes(slotId(slot)) === 0);
    }
  } finally {
    target.proxy.setPlan(forwardAll);
  }
  const { counts } = target.proxy;
  const injected = [
    `${counts.droppedAfterRun - before.droppedAfterRun} answers dropped after the command ran`,
    `${counts.errored - before.errored} requests answered 503`,
    `${counts.forwarded - before.forwarded} forwarded`,
  ];
  return summarize(options.name, options.fault, ledger, rounds, [`proxy: ${injected.join(", ")}`]);
}

function summarize(
  name: string,
  fault: string,
  ledger: Ledger,
  rounds: number,
  notes: string[],
): ScenarioResult {
  return {
    name,
    fault,
    slots: ledger.slotCount(),
    deliveries: ledger.deliveries,
    runs: ledger.successCount(),
    duplicates: ledger.duplicates(),
    lost: ledger.lost(),
    errorsSurfaced: ledger.errorsSurfaced,
    unreported: ledger.bodyStarts - ledger.reportedRuns,
    rounds,
    notes,
  };
}

/** Random latency of 0-200 ms on every request. */
export async function latencyScenario(target: ChaosTarget, size: ScenarioSize) {
  const random = seededRandom(1);
  return stormWithRedelivery({
    name: "latency",
    fault: "0-200 ms per request",
    target,
    size,
    guard: { leaseMs: 5_000 },
    jobMs: 50,
    maxRounds: 0,
    roundGapMs: 0,
    plan: () => ({ action: "forward", latencyMs: Math.floor(random() * 200) }),
  });
}

/** 20% of responses lost after the bridge ran the command; the client retries (its default). */
export async function droppedResponsesScenario(target: ChaosTarget, size: ScenarioSize) {
  const random = seededRandom(2);
  return stormWithRedelivery({
    name: "dropped responses",
    fault: "20% answers lost after the command ran",
    target,
    size,
    guard: { leaseMs: 1_500 },
    jobMs: 50,
    maxRounds: 4,
    roundGapMs: 1_600,
    plan: () => ({ action: random() < 0.2 ? "drop-after-run" : "forward" }),
  });
}

/** 20% of requests answered 503 by the proxy without reaching Redis. */
export async function serverErrorsScenario(target: ChaosTarget, size: ScenarioSize) {
  const random = seededRandom(3);
  return stormWithRedelivery({
    name: "5xx",
    fault: "20% of requests answered 503",
    target,
    size,
    guard: { leaseMs: 1_500 },
    jobMs: 50,
    maxRounds: 4,
    roundGapMs: 1_600,
    plan: () => ({ action: random() < 0.2 ? "error-5xx" : "forward" }),
  });
}

/**
 * Redis stops answering for 1 s while the first wave runs (SIGSTOP/SIGCONT: the data survives, the
 * bridge answers 503 after its 300 ms command timeout, and commands queued meanwhile still run).
 * Needs a target whose redis-server is its own.
 */
export async function redisCutScenario(target: ChaosTarget, size: ScenarioSize) {
  const pid = target.stack.redis.pid;
  const slots = slotsOf(size);
  if (!pid) throw new Error("redisCutScenario needs a redis-server of its own (a pid to stop)");
  return stormWithRedelivery({
    name: "redis cut",
    fault: "redis-server stopped for 1 s mid-run",
    target,
    size,
    guard: { leaseMs: 3_000 },
    jobMs: 600,
    maxRounds: 4,
    roundGapMs: 3_100,
    async duringFirstWave(wave) {
      await sleep(200);
      process.kill(pid, "SIGSTOP");
      let duringCut: Promise<unknown> = Promise.resolve();
      try {
        await sleep(100);
        // Late duplicates that arrive while Redis is away: each must fail visibly (503), not run.
        duringCut = wave(slots);
        await sleep(900);
      } finally {
        process.kill(pid, "SIGCONT");
      }
      await duringCut;
    },
  });
}

/**
 * A holder claims each slot, then its instance dies: from then on none of its requests arrive
 * (no heartbeat, no completion). Others deliver halfway through the lease (must all skip) and
 * again after it ends (exactly one must run).
 */
export async function crashedHolderScenario(target: ChaosTarget, size: ScenarioSize) {
  const leaseMs = 1_000;
  const ledger = new Ledger();
  const job = uniqueJob("crash");
  const notes: string[] = [];
  const slots = slotsOf(size);
  for (const slot of slots) ledger.expect(slotId(slot));
  const deadProxies = await Promise.all(slots.map(() => startFaultProxy(target.stack.bridge.url)));
  let ranWhileHeld = 0;
  try {
    const holders = slots.map((slot, i) => {
      const proxy = deadProxies[i] as FaultProxy;
      let claimed = false;
      proxy.setPlan(() => {
        if (claimed) return { action: "refuse" };
        claimed = true;
        return { action: "forward" };
      });
      const guard = createGuard({
        redis: upstashClient(proxy.url, target.stack.bridge.token, { retries: 0 }),
        prefix: "chaos",
        leaseMs,
        region: "doomed",
      });
      // The body of a dead instance does nothing more; it ends when its lease runs out locally.
      return deliver(
        ledger,
        slotId(slot),
        (fn) => guard.run(job, slot, fn),
        (context: JobContext) =>
          new Promise<void>((_, reject) => {
            context.signal.addEventListener("abort", () => reject(new Error("instance crashed")));
          }),
      );
    });
    await sleep(leaseMs / 2);
    const others = guardsFor(target.proxy.url, target.stack.bridge.token, size.deliveriesPerSlot, {
      prefix: "chaos",
      leaseMs,
    });
    const wave = () =>
      Promise.all(
        slots.flatMap((slot) =>
          others.map((guard) =>
            deliver(
              ledger,
              slotId(slot),
              (fn) => guard.run(job, slot, fn),
              () => sleep(20),
            ),
          ),
        ),
      );
    const during = await wave();
    ranWhileHeld = during.filter((r) => !(r instanceof Error) && r.status === "ran").length;
    await Promise.all(holders);
    await sleep(leaseMs / 2 + 200);
    await wave();
  } finally {
    await Promise.all(deadProxies.map((proxy) => proxy.close()));
  }
  if (ranWhileHeld > 0)
    notes.push(`${ranWhileHeld} deliveries ran while the dead holder's lease held`);
  const result = summarize("crashed holders", "holder dies after its claim", ledger, 1, notes);
  return { ...result, duplicates: result.duplicates + ranWhileHeld };
}

/** Jobs run 3x their lease; the heartbeat keeps them; duplicates arrive every 250 ms meanwhile. */
export async function longJobScenario(target: ChaosTarget, size: ScenarioSize) {
  const ledger = new Ledger();
  const job = uniqueJob("long");
  const leaseMs = 600;
  const guards = guardsFor(target.proxy.url, target.stack.bridge.token, size.deliveriesPerSlot, {
    prefix: "chaos",
    leaseMs,
    heartbeatMs: 150,
  });
  const slots = slotsOf(size);
  for (const slot of slots) ledger.expect(slotId(slot));
  const body = () => sleep(leaseMs * 3);
  const deliveries: Promise<unknown>[] = [];
  for (let tick = 0; tick < 8; tick += 1) {
    for (const slot of slots) {
      const guard = guards[tick % guards.length] as Guard;
      deliveries.push(deliver(ledger, slotId(slot), (fn) => guard.run(job, slot, fn), body));
    }
    await sleep(250);
  }
  await Promise.all(deliveries);
  return summarize("long jobs", `job ${leaseMs * 3} ms, lease ${leaseMs} ms`, ledger, 0, []);
}

/**
 * Every instance's clock is off by up to the skew tolerance (±5 s); deliveries land 0-10 s after
 * the fire time, for per-minute and hourly schedules. Every instance must name the same slot.
 */
export async function skewedClocksScenario(target: ChaosTarget, size: ScenarioSize) {
  const random = seededRandom(4);
  const skewToleranceMs = 5_000;
  const ledger = new Ledger();
  const notes: string[] = [];
  let disagreements = 0;
  for (const [cron, periodMs] of [
    ["* * * * *", 60_000],
    ["0 * * * *", 3_600_000],
  ] as const) {
    const job = uniqueJob(cron === "* * * * *" ? "skew-minute" : "skew-hour");
    const schedule = parseSchedule(cron);
    const runs: Promise<GuardResult<unknown> | Error>[] = [];
    for (let i = 0; i < size.slots; i += 1) {
      const fireMs = BASE_SLOT_MS + i * periodMs;
      const expected = slotId(fireMs);
      ledger.expect(`${cron} ${expected}`);
      const named = new Set<string>();
      for (let d = 0; d < size.deliveriesPerSlot; d += 1) {
        const offsetMs = Math.round((random() * 2 - 1) * skewToleranceMs);
        const trueNowMs = fireMs + Math.floor(random() * 10_000);
        const guard = createGuard({
          redis: upstashClient(target.proxy.url, target.stack.bridge.token),
          prefix: "chaos",
          skewToleranceMs,
          clock: () => trueNowMs + offsetMs,
        });
        const slotMs = slotFromCron(schedule, guard.options.clock(), { skewToleranceMs });
        named.add(slotId(slotMs));
        runs.push(
          deliver(
            ledger,
            `${cron} ${slotId(slotMs)}`,
            (fn) => guard.run(job, slotMs, fn),
            () => sleep(10),
          ),
        );
      }
      if (named.size > 1 || !named.has(expected)) disagreements += 1;
    }
    await Promise.all(runs);
  }
  if (disagreements > 0) notes.push(`${disagreements} fires were named differently by instances`);
  const result = summarize("skewed clocks", `±${skewToleranceMs} ms clocks`, ledger, 0, notes);
  return { ...result, duplicates: result.duplicates + disagreements };
}

/** How many of `slots` still have a live slot key (running, or within its retention). */
async function liveSlotKeys(target: ChaosTarget, job: string, slots: number[]): Promise<number> {
  const redis = upstashClient(target.stack.bridge.url, target.stack.bridge.token);
  const found = await Promise.all(
    slots.map((slot) => redis.exists(`chaos:{${job}}:slot:${slotId(slot)}`)),
  );
  return found.filter((count) => count > 0).length;
}

/** Every slot delivered by every instance at once; resolves with the results. */
function deliverAll(
  ledger: Ledger,
  guards: readonly Guard[],
  job: string,
  slots: readonly number[],
  options: Parameters<Guard["run"]>[3] = {},
): Promise<(GuardResult<unknown> | Error)[]> {
  return Promise.all(
    slots.flatMap((slot) =>
      guards.map((guard) =>
        deliver(
          ledger,
          slotId(slot),
          (fn) => guard.run(job, slot, fn, options),
          () => sleep(20),
        ),
      ),
    ),
  );
}

const skippedDone = (results: (GuardResult<unknown> | Error)[]) =>
  results.filter((r) => !(r instanceof Error) && r.status === "skipped" && r.reason === "done")
    .length;

/**
 * Late redeliveries after the retention: every slot runs once (every instance at once), then,
 * once every slot key has expired (a 300 ms retention), every instance redelivers every slot
 * twice more. Only the slot ledger remembers the slots by then: every late delivery must be
 * skipped as done, none may run.
 */
export async function lateRedeliveryScenario(target: ChaosTarget, size: ScenarioSize) {
  const retentionMs = 300;
  const ledger = new Ledger();
  const job = uniqueJob("late");
  const slots = slotsOf(size);
  for (const slot of slots) ledger.expect(slotId(slot));
  const guards = guardsFor(target.proxy.url, target.stack.bridge.token, size.deliveriesPerSlot, {
    prefix: "chaos",
    leaseMs: 2_000,
    retentionMs,
  });
  await deliverAll(ledger, guards, job, slots);
  const rounds = 2;
  let late = 0;
  let lateDone = 0;
  let keysLeft = 0;
  for (let round = 0; round < rounds; round += 1) {
    await sleep(retentionMs + 200);
    keysLeft = Math.max(keysLeft, await liveSlotKeys(target, job, slots));
    const results = await deliverAll(ledger, guards, job, slots);
    late += results.length;
    lateDone += skippedDone(results);
  }
  const notes = [
    `${lateDone} of ${late} late deliveries skipped as done (${keysLeft} slot keys still live before a late round)`,
  ];
  const failedChecks: string[] = [];
  if (lateDone < late) failedChecks.push(`${late - lateDone} late deliveries not skipped as done`);
  if (keysLeft > 0) failedChecks.push(`${keysLeft} slot keys outlived their retention`);
  return {
    ...summarize(
      "late redeliveries",
      `all redelivered after a ${retentionMs} ms retention`,
      ledger,
      rounds,
      notes,
    ),
    failedChecks,
  };
}

/** True when a request body (one command or a pipeline) holds one of `needles`. */
function mentions(value: unknown, needles: ReadonlySet<string>): boolean {
  if (typeof value === "string") return needles.has(value);
  return Array.isArray(value) && value.some((item) => mentions(item, needles));
}

/**
 * A failed completion: the store answers 503 to every completion (COMPLETE_SCRIPT) request for
 * 2.5 s from the first one, while claims and everything else go through. Every run then finishes
 * without being recorded: the guard's retries within the run fail, the result says so (ran, with
 * a warning), and the completion goes on in the background (under `waitUntil`). Duplicates arrive
 * while the completions fail, again once the background retries are over, and again after the
 * lease and the retention have both run out: none may run the slot again, and every run must be
 * recorded in the end.
 */
export async function failedCompletionScenario(target: ChaosTarget, size: ScenarioSize) {
  const leaseMs = 5_000;
  const retentionMs = 500;
  const failForMs = 2_500;
  const ledger = new Ledger();
  const job = uniqueJob("failed-completion");
  const slots = slotsOf(size);
  for (const slot of slots) ledger.expect(slotId(slot));
  const completion = new Set([await COMPLETE_SCRIPT.sha1(), COMPLETE_SCRIPT.source]);
  let failUntil: number | undefined;
  let failed = 0;
  const background: Promise<unknown>[] = [];
  const options = { waitUntil: (promise: Promise<unknown>) => background.push(promise) };
  const guards = guardsFor(target.proxy.url, target.stack.bridge.token, size.deliveriesPerSlot, {
    prefix: "chaos",
    leaseMs,
    retentionMs,
  });
  target.proxy.setPlan(({ commands }) => {
    if (!mentions(commands, completion)) return { action: "forward" };
    failUntil ??= Date.now() + failForMs;
    if (Date.now() >= failUntil) return { action: "forward" };
    failed += 1;
    return { action: "error-5xx" };
  });
  let rounds = 0;
  let again = 0;
  try {
    const first = deliverAll(ledger, guards, job, slots, options);
    await sleep(1_000);
    // Duplicates while the completions fail: the slots still hold their running claims.
    rounds += 1;
    again += (await deliverAll(ledger, guards, job, slots, options)).filter(
      (r) => !(r instanceof Error) && r.status !== "skipped",
    ).length;
    await first;
    await Promise.all(background);
    for (const waitMs of [0, leaseMs + retentionMs]) {
      await sleep(waitMs);
      rounds += 1;
      again += (await deliverAll(ledger, guards, job, slots, options)).filter(
        (r) => !(r instanceof Error) && r.status !== "skipped",
      ).length;
    }
  } finally {
    target.proxy.setPlan(forwardAll);
  }
  await Promise.all(background);
  const lookups = await Promise.all(slots.map((slot) => (guards[0] as Guard).lookup(job, slot)));
  const recorded = lookups.filter((lookup) => lookup.status === "ran" && lookup.runs.length === 1);
  const notes = [
    `${failed} completion requests answered 503; ${recorded.length} of ${slots.length} runs recorded in the end (lookup: ${lookups
      .map((l) => `${l.status}/${l.runs.map((r) => r.outcome).join("+") || "-"}`)
      .filter((v, i, all) => all.indexOf(v) === i)
      .join(", ")})`,
  ];
  const result = summarize(
    "failed completion",
    `completion answered 503 for ${failForMs} ms`,
    ledger,
    rounds,
    notes,
  );
  const failedChecks: string[] = [];
  if (recorded.length < slots.length) {
    failedChecks.push(`${slots.length - recorded.length} runs never recorded`);
  }
  if (failed === 0) failedChecks.push("no completion request was failed: the fault never hit");
  // A redelivery that ran is a duplicate whether or not its body succeeded.
  return { ...result, duplicates: Math.max(result.duplicates, again), failedChecks };
}

export const SCENARIOS = {
  latency: latencyScenario,
  droppedResponses: droppedResponsesScenario,
  serverErrors: serverErrorsScenario,
  crashedHolders: crashedHolderScenario,
  longJobs: longJobScenario,
  skewedClocks: skewedClocksScenario,
  lateRedeliveries: lateRedeliveryScenario,
  failedCompletion: failedCompletionScenario,
} as const;

/** Runs every scenario at `size`; the Redis cut gets a redis-server of its own. */
export async function runAllScenarios(
  size: ScenarioSize,
  onResult: (result: ScenarioResult) => void = () => {},
): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const stack = await startBenchStack();
  const proxy = await startFaultProxy(stack.bridge.url);
  try {
    for (const scenario of Object.values(SCENARIOS)) {
      const result = await scenario({ stack, proxy }, size);
      results.push(result);
      onResult(result);
    }
  } finally {
    await proxy.close();
    await stack.close();
  }
  const cutStack = await startBenchStack({ commandTimeoutMs: 300 });
  const cutProxy = await startFaultProxy(cutStack.bridge.url);
  try {
    const result = await redisCutScenario({ stack: cutStack, proxy: cutProxy }, size);
    results.push(result);
    onResult(result);
  } finally {
    await cutProxy.close();
    await cutStack.close();
  }
  return results;
}
