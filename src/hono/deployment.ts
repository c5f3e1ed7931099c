import { type CronSchedule, parseSchedule, validateSkewTolerance } from "../core/cron/index.js";
import { ConfigError } from "../core/errors.js";
import { createGuard, type Guard } from "../core/guard/guard.js";
import { assertJobName, isValidJobName } from "../core/guard/keys.js";
import {
  configErrorIn,
  type GuardSettings,
  type ResolvedGuardSettings,
  resolveGuardOptions,
  resolveGuardSettings,
  type StoreErrorPolicy,
} from "../core/options.js";
import type { GuardStore } from "../core/store.js";
import { scheduleSignature } from "./cron-signature.js";
import type { DynamicSchedules } from "./dynamic.js";
import type { DynamicSchedulesFactory } from "./plugin.js";
import type { Bindings, CronAppOptions, CronJob } from "./types.js";

/** A validated job with its parsed schedule. */
export interface PreparedJob<TRedis extends GuardStore> {
  job: CronJob<Bindings, TRedis, StoreErrorPolicy>;
  schedule: CronSchedule;
  /** The cron's canonical form: scheduled events match jobs by meaning. */
  signature: string | undefined;
}

/** What every route of one app shares: its jobs, and one store and guard per job per environment. */
export interface Deployment<TRedis extends GuardStore> {
  readonly jobs: ReadonlyMap<string, PreparedJob<TRedis>>;
  /** The app's guard settings, validated and defaulted once at creation (frozen). */
  readonly settings: ResolvedGuardSettings;
  /** Set when the app registers schedule handlers: the registry and dispatcher routes use it. */
  readonly dynamic: DynamicSchedules<TRedis> | undefined;
  /** The job named `name`, or undefined (also for names that could never be jobs). */
  job(name: string): PreparedJob<TRedis> | undefined;
  redis(env: Bindings | undefined): TRedis;
  guard(env: Bindings | undefined, entry: PreparedJob<TRedis>): Guard;
  /**
   * The guard schedules run under (their runs are guarded under their id): `default` with the
   * app's settings, `dispatch` with the dispatcher's failure policy (a failed fire is kept, and
   * retried by the dispatcher as an attempt). One per environment, like the jobs' guards.
   */
  scheduleGuard(env: Bindings | undefined, kind: "default" | "dispatch"): Guard;
  /** Where the guard claims: `store` when the app has one, else `redis`. */
  store(env: Bindings | undefined): GuardStore;
}

/** A job's own guard options: everything but what describes the job itself. */
function ownGuardOptions(job: CronJob<Bindings, never, StoreErrorPolicy>): GuardSettings {
  const { name: _name, cron: _cron, timezone: _tz, handler: _handler, ...own } = job;
  return own;
}

/**
 * A job declared in code runs when the platform fires its cron (Cloudflare's `scheduled()`,
 * Vercel's call of `/cron/<name>`, both matched to the job by its cron), and both platforms fire
 * crons in UTC. A cron read in another time zone would run at the platform's UTC times for the
 * latest fire time of the zone's reading (09:00Z fires slot 08:00Z for "0 9 * * *" in
 * Europe/Berlin), so it is refused here, whatever the cron: aliases of UTC (`Etc/UTC`, `GMT`, ...)
 * pass, as they canonicalize to "UTC". Dynamic schedules keep their time zone: the dispatcher
 * runs every minute and finds their fire times itself.
 */
function assertPlatformTimezone(job: CronJob<never>, schedule: CronSchedule): void {
  if (schedule.timezone === "UTC") return;
  throw new ConfigError(
    "timezone",
    `${JSON.stringify(job.timezone)} cannot work for a job declared in code: Cloudflare and Vercel fire its cron ${JSON.stringify(job.cron)} in UTC, so it would not run at its ${schedule.timezone} fire times (it would run late, or not at all). ` +
      `Either make it a dynamic schedule, which keeps the time zone and is dispatched by the app's dispatchCron (every minute by default): schedules: [{ id: ${JSON.stringify(job.name)}, cron: ${JSON.stringify(job.cron)}, timezone: ${JSON.stringify(schedule.timezone)}, handler: "<name>" }] with handlers: { "<name>": ... } and plugins: [dynamicSchedules()] (from "cron-guard/dynamic-schedules"); ` +
      "or write the cron in UTC and drop timezone (it then does not follow daylight saving time).",
  );
}

/**
 * Validates the app's options once, at creation: a typo fails the deployment, not the first
 * delivery. Guards are built per environment (the store may come from the request's bindings).
 * `dynamic` is the schedules plug-in's factory: without it the app has no dynamic schedules, and
 * the deployment does not import their code.
 */
export function createDeployment<TRedis extends GuardStore>(
  options: CronAppOptions<TRedis>,
  dynamic?: DynamicSchedulesFactory,
): Deployment<TRedis> {
  const { jobs = [], redis: redisOption, guardOptions = {} } = options;
  if (
    typeof redisOption !== "function" &&
    (typeof redisOption !== "object" || redisOption === null)
  ) {
    throw new ConfigError("redis", "must be a Redis client or a function (env) => Redis");
  }
  if (!Array.isArray(jobs)) throw new ConfigError("jobs", "must be an array of jobs");
  const { redis: _redis, ...settings } = configErrorIn("guard options", () =>
    typeof redisOption === "function"
      ? { ...resolveGuardSettings(guardOptions), redis: undefined }
      : resolveGuardOptions({ ...guardOptions, redis: redisOption }),
  );
  const appSettings: ResolvedGuardSettings = Object.freeze(settings);
  const prepared = new Map<string, PreparedJob<TRedis>>();
  for (const job of jobs) {
    if (typeof job !== "object" || job === null) {
      throw new ConfigError("jobs", `every job must be an object, got ${String(job)}`);
    }
    try {
      assertJobName(job.name);
    } catch (error) {
      throw new ConfigError("jobs", (error as Error).message, { cause: error });
    }
    if (prepared.has(job.name)) {
      throw new ConfigError("jobs", `job "${job.name}" is declared twice`);
    }
    if (typeof job.handler !== "function") {
      throw new ConfigError("jobs", `job "${job.name}" needs a handler function`);
    }
    const schedule = configErrorIn(`job "${job.name}"`, () => {
      const parsed = parseSchedule(job.cron, { timezone: job.timezone });
      assertPlatformTimezone(job, parsed);
      const settings = resolveGuardSettings({ ...guardOptions, ...ownGuardOptions(job) });
      validateSkewTolerance(parsed, settings.skewToleranceMs, settings.clock());
      return parsed;
    });
    prepared.set(job.name, { job, schedule, signature: scheduleSignature(job.cron) });
  }

  // One store and one guard per job for as long as the platform hands us the same environment
  // (an isolate on Cloudflare; the process on Node and Vercel, where env is absent).
  const { store: storeOption } = options;
  if (
    storeOption !== undefined &&
    typeof storeOption !== "function" &&
    (typeof storeOption !== "object" || storeOption === null)
  ) {
    throw new ConfigError(
      "store",
      "must be a store with eval/evalsha or a function (env) => store",
    );
  }
  let current:
    | { env: Bindings | undefined; redis: TRedis; store: GuardStore; guards: Map<string, Guard> }
    | undefined;
  const resources = (env: Bindings | undefined) => {
    if (
      !current ||
      (current.env !== env &&
        (typeof redisOption === "function" || typeof storeOption === "function"))
    ) {
      const redis = typeof redisOption === "function" ? redisOption(env ?? {}) : redisOption;
      const store =
        (typeof storeOption === "function" ? storeOption(env ?? {}) : storeOption) ?? redis;
      current = { env, redis, store, guards: new Map() };
    }
    return current;
  };

  const redisFor = (env: Bindings | undefined) => resources(env).redis;
  return {
    jobs: prepared,
    settings: appSettings,
    dynamic: dynamic?.(
      options as unknown as CronAppOptions<GuardStore>,
      redisFor,
      (env) => resources(env).store,
      appSettings,
      new Set(prepared.keys()),
    ) as DynamicSchedules<TRedis> | undefined,
    job: (name) => (isValidJobName(name) ? prepared.get(name) : undefined),
    redis: (env) => resources(env).redis,
    store: (env) => resources(env).store,
    guard(env, entry) {
      const { guards, store } = resources(env);
      let guard = guards.get(entry.job.name);
      if (!guard) {
        // The app's options as given, not resolved: a job's own leaseMs must re-derive the
        // defaults that depend on it (heartbeatMs).
        guard = createGuard({ ...guardOptions, ...ownGuardOptions(entry.job), redis: store });
        guards.set(entry.job.name, guard);
      }
      return guard;
    },
    scheduleGuard(env, kind) {
      const { guards, store } = resources(env);
      // Job names cannot contain a space, so these keys never meet a job's.
      const key = `schedules ${kind}`;
      let guard = guards.get(key);
      if (!guard) {
        guard = createGuard(
          kind === "dispatch"
            ? { ...appSettings, redis: store, onFailure: "keep", overlap: "allow" }
            : { ...appSettings, redis: store },
        );
        guards.set(key, guard);
      }
      return guard;
    },
  };
}
