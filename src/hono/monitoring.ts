import { slotId } from "../core/cron/index.js";
import { processEnv } from "../core/env.js";
import { ConfigError, messageOf } from "../core/errors.js";
import { readSources, type SourceReport } from "../core/guard/sources.js";
import type { Guard, GuardResult, JobStatus } from "../core/index.js";
import type { AlertEvent, AlertSender } from "../core/monitoring/alerts.js";
import {
  type MonitorReport,
  monitorJob,
  type ResolvedMonitorOptions,
  resolveMonitorOptions,
} from "../core/monitoring/monitor.js";
import { normalizeAlertSecret } from "../core/monitoring/signature.js";
import type { TickResult } from "../core/schedules/dispatch.js";
import type { ScheduleView } from "../core/schedules/registry.js";
import { type GuardStore, runScript } from "../core/store.js";
import type { Deployment, PreparedJob } from "./deployment.js";
import type { AlertDelivery } from "./plugin.js";
import type { Bindings, CronAppOptions } from "./types.js";

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

/** The app's monitoring, as the schedules plug-in's part of it is built from. */
export interface MonitoringCore {
  readonly deployment: Deployment<GuardStore>;
  readonly options: ResolvedMonitorOptions;
  readonly region: string;
  readonly clock: () => number;
  senderFor(env: Bindings | undefined): AlertSender;
  alertMissed(
    env: Bindings | undefined,
    source: "job" | "schedule",
    job: string,
    report: MonitorReport,
    waitUntil: WaitUntil,
  ): Promise<void>;
  /** `silent` alerts for the sources of `sources` silent for `silentAfterFires` fires or more. */
  alertSilent(
    env: Bindings | undefined,
    source: "job" | "dispatch",
    name: string,
    sources: readonly SourceReport[],
    waitUntil: WaitUntil,
  ): Promise<void>;
  /** Hands alert work to `waitUntil` (or detaches it), bounded by the alert timeout. */
  deliverAlert(work: Promise<unknown>, waitUntil: WaitUntil): Promise<void>;
}

/** Monitoring of dynamic schedules: comes with the schedules plug-in (schedule-monitoring.ts). */
export interface ScheduleMonitoring {
  scheduleStatus: Monitoring["scheduleStatus"];
  tickFinished: Monitoring["tickFinished"];
  /** The periodic check's part for schedules, within the minute the check claimed. */
  check(env: Bindings | undefined, nowMs: number, waitUntil: WaitUntil): Promise<void>;
}

export type ScheduleMonitoringFactory = (core: MonitoringCore) => ScheduleMonitoring;

const CHECK_EVERY_MS = 30_000;
const CHECK_CLAIM_MS = 120_000;
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

/**
 * The app's monitoring, made once per deployment from the app's `monitor` and `alerts` options.
 * `alerting` comes with the alerts plug-in: without it nothing is sent (the app does not bundle
 * the sender), and an alert URL in the environment is reported once as an error. `schedules` comes
 * with the dynamic schedules plug-in: their status, the alerts of a tick and their periodic check.
 */
export function attachMonitoring<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
  appOptions: Pick<CronAppOptions<TRedis>, "monitor" | "alerts">,
  alerting?: AlertDelivery,
  schedules?: ScheduleMonitoringFactory,
): Monitoring {
  const monitoring = createMonitoring(appOptions, deployment, alerting, schedules);
  attached.set(deployment, monitoring);
  return monitoring;
}

/** The deployment's monitoring (defaults when the app attached none). */
export function monitoringOf<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
): Monitoring {
  return attached.get(deployment) ?? attachMonitoring(deployment, {});
}

/** What an app without the alerts plug-in sends: nothing. */
const NO_ALERTS: AlertSender = Object.freeze({
  enabled: false,
  signed: false,
  send: async () => [],
});

function createMonitoring<TRedis extends GuardStore>(
  appOptions: Pick<CronAppOptions<TRedis>, "monitor" | "alerts">,
  deployment: Deployment<TRedis>,
  alerting: AlertDelivery | undefined,
  scheduleMonitoring: ScheduleMonitoringFactory | undefined,
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
  let warnedNoPlugin = false;
  const alertBoundMs =
    (typeof alertOptions?.timeoutMs === "number"
      ? alertOptions.timeoutMs
      : DEFAULT_ALERT_TIMEOUT_MS) + ALERT_STORE_MARGIN_MS;
  const senderFor = (env: Bindings | undefined): AlertSender => {
    const key = env ?? noEnv;
    let sender = senders.get(key);
    if (!sender && !alerting) {
      sender = NO_ALERTS;
      senders.set(key, sender);
      if (!warnedNoPlugin && alertUrlOf(alertOptions, env ?? {}) !== undefined) {
        warnedNoPlugin = true;
        console.error(
          'cron-guard: CRON_GUARD_ALERT_URL is set but the app has no alerts plug-in, so no alert is sent: import { alerts } from "cron-guard/alerts" and pass plugins: [alerts()]',
        );
      }
    }
    if (!sender) {
      sender = (alerting as AlertDelivery).createSender({
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
  const graceMsOf = (entry: PreparedJob<never>) => entry.job.graceMs ?? options.graceMs;
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
    source: "job" | "dispatch",
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
        source,
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
      alertSilent(env, "job", job, sources.sources, waitUntil),
    ]);
    return { ...status, sources: sources.sources };
  }

  const schedules = scheduleMonitoring?.({
    deployment: deployment as unknown as Deployment<GuardStore>,
    options,
    region,
    clock,
    senderFor,
    alertMissed,
    alertSilent,
    deliverAlert: (work, waitUntil) => deliver(work, waitUntil, alertBoundMs),
  });

  let lastCheckMs = Number.NEGATIVE_INFINITY;

  return Object.freeze({
    options,
    graceMsOf,
    jobStatus,
    scheduleStatus: (env, schedule, waitUntil, guard) => {
      if (!schedules) throw new ConfigError("schedules", "the app has no dynamic schedules");
      return schedules.scheduleStatus(env, schedule, waitUntil, guard);
    },
    tickFinished: (env, tick, waitUntil) =>
      schedules?.tickFinished(env, tick, waitUntil) ?? Promise.resolve(),
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

    check(env, waitUntil) {
      const sender = senderFor(env);
      const nowMs = clock();
      if (!sender.enabled || nowMs - lastCheckMs < CHECK_EVERY_MS) return Promise.resolve();
      lastCheckMs = nowMs;
      const work = (async () => {
        const minute = slotId(Math.floor(nowMs / 60_000) * 60_000);
        const won = await runScript(
          storeOf(env),
          (alerting as AlertDelivery).claimScript,
          [`${prefix}:{monitor}:check:${minute}`],
          [crypto.randomUUID(), CHECK_CLAIM_MS],
        );
        const list = typeof won === "string" ? (JSON.parse(won) as unknown[]) : won;
        if (!Array.isArray(list) || list.length === 0) return;
        for (const entry of deployment.jobs.values()) await jobStatus(env, entry.job.name);
        await schedules?.check(env, nowMs, waitUntil);
      })();
      return deliver(work, waitUntil, CHECK_BOUND_MS);
    },
  } satisfies Monitoring);
}
