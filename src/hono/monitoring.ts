import { type CronSchedule, nextFireTimes, parseSchedule, slotId } from "../core/cron/index.js";
import { processEnv } from "../core/env.js";
import { ConfigError, messageOf } from "../core/errors.js";
import { readSources, type SourceReport } from "../core/guard/sources.js";
import type { Guard, GuardResult, JobStatus } from "../core/index.js";
import {
  ALERT_CLAIM_SCRIPT,
  type AlertEvent,
  type AlertSender,
  createAlertSender,
} from "../core/monitoring/alerts.js";
import {
  type MonitorReport,
  monitorJob,
  type ResolvedMonitorOptions,
  resolveMonitorOptions,
} from "../core/monitoring/monitor.js";
import { normalizeAlertSecret } from "../core/monitoring/signature.js";
import type { StoreErrorPolicy } from "../core/options.js";
import type { TickResult } from "../core/schedules/dispatch.js";
import type { RegistryEvent, ScheduleView } from "../core/schedules/registry.js";
import { type GuardStore, runScript } from "../core/store.js";
import type { Deployment, PreparedJob } from "./deployment.js";
import type { AppScheduleHandler, Bindings, CronAppOptions } from "./types.js";

type WaitUntil = ((promise: Promise<unknown>) => void) | undefined;

/**
 * A status read with its missed and late fires; a job's also with how each trigger source
 * delivered it (redundant clocks, core/guard/sources.ts).
 */
export type MonitoredStatus = JobStatus & { monitor: MonitorReport; sources?: SourceReport[] };

/** Missed/late reports and alerts of one app. */
export interface Monitoring {
  readonly options: ResolvedMonitorOptions;
  graceMsOf(entry: PreparedJob<never>): number;
  /** Status of a job declared in code, with its missed and late fires; alerts new missed fires. */
  jobStatus(
    env: Bindings | undefined,
    job: string,
    waitUntil?: WaitUntil,
  ): Promise<MonitoredStatus>;
  /** Status of a schedule; fires before its creation or last resume, or while paused, are never missed. */
  scheduleStatus(
    env: Bindings | undefined,
    schedule: ScheduleView,
    waitUntil?: WaitUntil,
    guard?: Guard,
  ): Promise<MonitoredStatus>;
  /**
   * Alerts a failed run or a lost lease (once per job, kind and slot across every instance). Like
   * every alerting method here it resolves at once: the sending goes to `waitUntil` or runs
   * detached, bounded by the alert timeout, so callers may await it without waiting for a webhook.
   */
  runFinished(
    env: Bindings | undefined,
    source: "job" | "schedule",
    result: GuardResult<unknown>,
    waitUntil?: WaitUntil,
  ): Promise<void>;
  /** Alerts the dead (and catch-up-skipped) fires a dispatch tick recorded. */
  tickFinished(env: Bindings | undefined, tick: TickResult, waitUntil?: WaitUntil): Promise<void>;
  /**
   * Looks for missed fires of every job and schedule and alerts them, at most once a minute for the
   * whole deployment (the minute is claimed like a slot) and once per 30 s per instance. Every
   * schedule is covered: it reads the ones whose pending fire is older than the grace period (the
   * due set, paged), so it costs O(overdue) store calls. Does nothing without an alert URL.
   */
  check(env: Bindings | undefined, waitUntil?: WaitUntil): Promise<void>;
  alertsEnabled(env: Bindings | undefined): boolean;
}

const CHECK_EVERY_MS = 30_000;
const CHECK_CLAIM_MS = 120_000;
/** Overdue schedules read per page by the periodic check, and status reads in flight at once. */
const OVERDUE_PAGE = 100;
/** Fires one `missed` event of the dispatcher is listed with in its alert, at most. */
const MAX_MISSED_SLOTS = 1_000;
const CHECK_CONCURRENCY = 8;

/** Calls `fn` for each item, at most `limit` at once. */
async function inParallel<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The alert URL: the option, else `env.CRON_GUARD_ALERT_URL`, else `process.env.CRON_GUARD_ALERT_URL`. */
function alertUrlOf(options: CronAppOptions<never>["alerts"], env: Bindings): string | undefined {
  const option = options?.url;
  const url =
    typeof option === "function"
      ? option(env)
      : (option ??
        (typeof env.CRON_GUARD_ALERT_URL === "string"
          ? env.CRON_GUARD_ALERT_URL
          : processEnv()?.CRON_GUARD_ALERT_URL));
  return typeof url === "string" && url.trim() !== "" ? url.trim() : undefined;
}

/**
 * The alert signing secret: the option, else `env.CRON_GUARD_ALERT_SECRET`, else
 * `process.env.CRON_GUARD_ALERT_SECRET`. Like the URL, a blank one (or an option that chose none)
 * is none: alerts go unsigned.
 */
function alertSecretOf(
  options: CronAppOptions<never>["alerts"],
  env: Bindings,
): string | undefined {
  const option = options?.secret;
  const secret =
    typeof option === "function"
      ? option(env)
      : (option ??
        (typeof env.CRON_GUARD_ALERT_SECRET === "string"
          ? env.CRON_GUARD_ALERT_SECRET
          : processEnv()?.CRON_GUARD_ALERT_SECRET));
  return normalizeAlertSecret(secret);
}

/**
 * Sends alerts (and runs the periodic check) beside the work, never in its way: the promise goes to
 * the platform's `waitUntil` when it has one (so the isolate lives until it is done), else it runs
 * detached. Either way what is handed over settles within `boundMs` (the webhook's own timeout is
 * shorter), and the caller never waits for it: a webhook that never answers cannot delay a run, a
 * tick or a response. Failures are logged.
 */
function deliver(promise: Promise<unknown>, waitUntil: WaitUntil, boundMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      console.error(`cron-guard: monitoring: gave up waiting after ${boundMs} ms`);
      resolve();
    }, boundMs);
    (timer as { unref?: () => void }).unref?.();
  });
  const settled = Promise.race([
    promise.then(
      () => undefined,
      (error: unknown) => console.error(`cron-guard: monitoring: ${messageOf(error)}`),
    ),
    bound,
  ]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
  if (waitUntil) waitUntil(settled);
  return Promise.resolve();
}

/** The webhook's timeout when the app sets none (the alert sender's default). */
const DEFAULT_ALERT_TIMEOUT_MS = 5_000;
/** Beyond the webhook's timeout: the alert claim and its release in the store. */
const ALERT_STORE_MARGIN_MS = 10_000;
/** The periodic check reads every overdue schedule before it alerts: it may take longer. */
const CHECK_BOUND_MS = 60_000;

const attached = new WeakMap<object, Monitoring>();

/** The app's monitoring, made once per deployment from the app's `monitor` and `alerts` options. */
export function attachMonitoring<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
  appOptions: Pick<CronAppOptions<TRedis>, "monitor" | "alerts">,
): Monitoring {
  const monitoring = createMonitoring(appOptions, deployment);
  attached.set(deployment, monitoring);
  return monitoring;
}

/** The deployment's monitoring (defaults when the app attached none). */
export function monitoringOf<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
): Monitoring {
  return attached.get(deployment) ?? attachMonitoring(deployment, {});
}

function createMonitoring<TRedis extends GuardStore>(
  appOptions: Pick<CronAppOptions<TRedis>, "monitor" | "alerts">,
  deployment: Deployment<TRedis>,
): Monitoring {
  const options = (() => {
    try {
      return resolveMonitorOptions(appOptions.monitor);
    } catch (error) {
      if (error instanceof ConfigError) {
        throw new ConfigError(error.option, `monitor: ${error.message}`, { cause: error });
      }
      throw error;
    }
  })();
  const alertOptions = appOptions.alerts;
  if (alertOptions !== undefined && (typeof alertOptions !== "object" || alertOptions === null)) {
    throw new ConfigError("alerts", "must be an object { url, secret, fetch, timeoutMs }");
  }
  const secretOption = alertOptions?.secret;
  if (
    secretOption !== undefined &&
    typeof secretOption !== "string" &&
    typeof secretOption !== "function"
  ) {
    throw new ConfigError("alerts.secret", "must be a string or a function (env) => string");
  }
  for (const { job } of deployment.jobs.values()) {
    const { graceMs } = job;
    if (
      graceMs !== undefined &&
      (typeof graceMs !== "number" || !Number.isInteger(graceMs) || graceMs < 0)
    ) {
      throw new ConfigError("graceMs", `job "${job.name}": must be an integer of at least 0 ms`);
    }
  }
  // The store the guard claims in (a quorum when the app has one).
  const storeOf = (env: Bindings | undefined): GuardStore => deployment.store(env);
  const { prefix, region, clock } = deployment.settings;
  const noEnv = {};
  const senders = new WeakMap<object, AlertSender>();
  let warnedUnsigned = false;
  const alertBoundMs =
    (typeof alertOptions?.timeoutMs === "number"
      ? alertOptions.timeoutMs
      : DEFAULT_ALERT_TIMEOUT_MS) + ALERT_STORE_MARGIN_MS;
  const senderFor = (env: Bindings | undefined): AlertSender => {
    const key = env ?? noEnv;
    let sender = senders.get(key);
    if (!sender) {
      sender = createAlertSender({
        redis: storeOf(env),
        url: alertUrlOf(alertOptions, env ?? {}),
        secret: alertSecretOf(alertOptions, env ?? {}),
        prefix,
        fetch: alertOptions?.fetch,
        timeoutMs: alertOptions?.timeoutMs,
        claimTtlMs: Math.max(86_400_000, options.windowMs + options.graceMs),
        clock,
      });
      senders.set(key, sender);
      if (sender.enabled && !sender.signed && !warnedUnsigned) {
        warnedUnsigned = true;
        console.warn(
          "cron-guard: alerts are sent unsigned: set CRON_GUARD_ALERT_SECRET (or alerts.secret) so the receiver can check the cron-guard-signature header",
        );
      }
    }
    return sender;
  };
  const parsed = new Map<string, CronSchedule>();
  const cronOf = (cron: string, timezone: string) => {
    const key = `${timezone} ${cron}`;
    let schedule = parsed.get(key);
    if (!schedule) {
      schedule = parseSchedule(cron, { timezone });
      parsed.set(key, schedule);
    }
    return schedule;
  };
  const graceMsOf = (entry: PreparedJob<never>) => entry.job.graceMs ?? options.graceMs;
  /** The fires a `missed` event covers (at most MAX_MISSED_SLOTS), from its cron; else its first. */
  const missedSlots = (event: RegistryEvent["event"]): string[] => {
    const firstMs = Date.parse(event.fire);
    const fires = Math.min(event.fires ?? 1, MAX_MISSED_SLOTS);
    if (!Number.isFinite(firstMs) || typeof event.cron !== "string" || fires <= 1) {
      return [event.fire];
    }
    try {
      const cron = cronOf(event.cron, event.timezone ?? "UTC");
      return [firstMs, ...nextFireTimes(cron, firstMs, fires - 1)].map(slotId);
    } catch {
      return [event.fire];
    }
  };

  const alertMissed = (
    env: Bindings | undefined,
    source: "job" | "schedule",
    job: string,
    report: MonitorReport,
    waitUntil: WaitUntil,
  ) => {
    const sender = senderFor(env);
    if (!sender.enabled || report.missed.length === 0) return Promise.resolve();
    const event: AlertEvent = {
      kind: "missed",
      job,
      source,
      slot: report.missed[0] as string,
      slots: report.missed,
      region,
    };
    return deliver(sender.send([event]), waitUntil, alertBoundMs);
  };

  /**
   * A `silent` alert per source that skipped its last `silentAfterFires` fires or more, after it
   * had delivered at least as many: a source must have shown itself a clock (a one-off call with
   * the bearer, a "Run now", is none) for as long as it must be silent.
   */
  const alertSilent = (
    env: Bindings | undefined,
    job: string,
    sources: readonly SourceReport[],
    waitUntil: WaitUntil,
  ) => {
    const sender = senderFor(env);
    const events: AlertEvent[] = sources
      .filter(
        (s) =>
          s.silentFires >= options.silentAfterFires &&
          s.slots >= options.silentAfterFires &&
          s.silentSinceSlot !== undefined,
      )
      .map((s) => ({
        kind: "silent",
        job,
        source: "job",
        slot: s.silentSinceSlot as string,
        trigger: s.source,
        fires: s.silentFires,
        lastSlot: s.lastSlot,
        region,
      }));
    if (!sender.enabled || events.length === 0) return Promise.resolve();
    return deliver(sender.send(events), waitUntil, alertBoundMs);
  };

  async function jobStatus(env: Bindings | undefined, job: string, waitUntil?: WaitUntil) {
    const entry = deployment.job(job);
    if (!entry) throw new ConfigError("job", `unknown job ${JSON.stringify(job)}`);
    const guard = deployment.guard(env, entry);
    const [status, sources] = await Promise.all([
      monitorJob(guard, job, entry.schedule, {
        graceMs: graceMsOf(entry as PreparedJob<never>),
        windowMs: options.windowMs,
      }),
      readSources(guard.options, job),
    ]);
    await Promise.all([
      alertMissed(env, "job", job, status.monitor, waitUntil),
      alertSilent(env, job, sources.sources, waitUntil),
    ]);
    return { ...status, sources: sources.sources };
  }

  async function scheduleStatus(
    env: Bindings | undefined,
    schedule: ScheduleView,
    waitUntil?: WaitUntil,
    given?: Guard,
  ) {
    const guard = given ?? deployment.scheduleGuard(env, "default");
    const status = await monitorJob(guard, schedule.id, cronOf(schedule.cron, schedule.timezone), {
      ...options,
      sinceMs: Math.max(schedule.createdAt, schedule.updatedAt),
    });
    if (!schedule.enabled) status.monitor.missed = [];
    await alertMissed(env, "schedule", schedule.id, status.monitor, waitUntil);
    return status;
  }

  let lastCheckMs = Number.NEGATIVE_INFINITY;

  return Object.freeze({
    options,
    graceMsOf,
    jobStatus,
    scheduleStatus,
    alertsEnabled: (env: Bindings | undefined) => senderFor(env).enabled,

    runFinished(env, source, result, waitUntil) {
      const sender = senderFor(env);
      if (!sender.enabled || result.status !== "failed") return Promise.resolve();
      const event: AlertEvent = {
        kind: result.lockLost ? "lost" : "failed",
        job: result.job,
        source,
        slot: result.slot,
        fence: result.fence,
        region,
        error: messageOf(result.error),
      };
      return deliver(sender.send([event]), waitUntil, alertBoundMs);
    },

    tickFinished(env, tick, waitUntil) {
      const sender = senderFor(env);
      const dynamic = deployment.dynamic;
      if (!sender.enabled || !dynamic || tick.dead + tick.missed === 0) return Promise.resolve();
      const work = (async () => {
        const registry = await dynamic.registry(env);
        const oldestMs = clock() - options.windowMs;
        const events: AlertEvent[] = [];
        // Newest first: enough to reach back past every event this tick recorded (each of its
        // dead fires and missed-fire events is one), and other ticks' on top.
        const recent = Math.min(1_000, 50 + tick.dead + tick.missed);
        for (const { schedule, event } of await registry.events(recent)) {
          const base = { job: schedule, source: "schedule" as const, slot: event.fire, region };
          if (event.kind === "dead") {
            if (!(Date.parse(event.fire) >= oldestMs)) continue;
            events.push({ ...base, kind: "dead", error: event.error, attempts: event.attempts });
            continue;
          }
          // Every missed fire within the window, not only the first: the periodic check does not
          // see them again once the tick moved the schedule on.
          const slots = missedSlots(event).filter((slot) => Date.parse(slot) >= oldestMs);
          if (slots.length > 0) {
            events.push({ ...base, kind: "missed", slot: slots[0] as string, slots });
          }
        }
        await sender.send(events);
      })();
      return deliver(work, waitUntil, alertBoundMs);
    },

    check(env, waitUntil) {
      const sender = senderFor(env);
      const nowMs = clock();
      if (!sender.enabled || nowMs - lastCheckMs < CHECK_EVERY_MS) return Promise.resolve();
      lastCheckMs = nowMs;
      const work = (async () => {
        const minute = slotId(Math.floor(nowMs / 60_000) * 60_000);
        const won = await runScript(
          storeOf(env),
          ALERT_CLAIM_SCRIPT,
          [`${prefix}:{monitor}:check:${minute}`],
          [crypto.randomUUID(), CHECK_CLAIM_MS],
        );
        const list = typeof won === "string" ? (JSON.parse(won) as unknown[]) : won;
        if (!Array.isArray(list) || list.length === 0) return;
        for (const entry of deployment.jobs.values()) await jobStatus(env, entry.job.name);
        if (deployment.dynamic) {
          // Only a schedule whose pending fire is older than the grace period can have missed
          // fires (a tick that settles a fire moves it on): read those, page by page, however
          // many schedules there are. O(overdue), not O(schedules).
          const registry = await deployment.dynamic.registry(env);
          const beforeMs = nowMs - options.graceMs;
          let cursor: string | undefined;
          do {
            const page = await registry.overdue({ beforeMs, cursor, limit: OVERDUE_PAGE });
            await inParallel(page.schedules, CHECK_CONCURRENCY, (schedule) =>
              scheduleStatus(env, schedule, waitUntil),
            );
            cursor = page.cursor ?? undefined;
          } while (cursor !== undefined);
        }
      })();
      return deliver(work, waitUntil, CHECK_BOUND_MS);
    },
  } satisfies Monitoring);
}

/**
 * The app's schedule handlers, each reporting its own failure (a throw, or a lease lost while it
 * ran) to the deployment's monitoring: the dispatcher's tick only counts failures, it does not
 * say whose.
 */
export function alertingHandlers<TRedis extends GuardStore>(
  options: CronAppOptions<TRedis>,
  monitoring: () => Monitoring,
): CronAppOptions<TRedis> {
  const { handlers } = options;
  if (typeof handlers !== "object" || handlers === null) return options;
  const wrapped: Record<string, AppScheduleHandler<Bindings, TRedis, StoreErrorPolicy>> = {};
  for (const [name, handler] of Object.entries(handlers)) {
    if (typeof handler !== "function") return options;
    wrapped[name] = async (context) => {
      // Never awaited: runFinished hands the alert to the tick's waitUntil (or detaches it), so a
      // slow webhook cannot hold the run, its lease or the tick's budget.
      const report = (error: unknown) =>
        void monitoring().runFinished(
          context.env,
          "schedule",
          {
            status: "failed",
            job: context.job,
            slot: context.slot,
            fence: context.fence,
            durationMs: 0,
            error,
            lockLost: context.signal.aborted,
            unguarded: context.lease === null,
          },
          context.waitUntil,
        );
      let value: unknown;
      try {
        value = await handler(context);
      } catch (error) {
        report(error);
        throw error;
      }
      if (context.signal.aborted) report(context.signal.reason);
      return value;
    };
  }
  return { ...options, handlers: wrapped };
}
