import type { Hono } from "hono";
import type { FenceOf, JobContext } from "../core/guard/guard.js";
import type { GuardResult } from "../core/guard/result.js";
import type { MonitorOptions } from "../core/monitoring/monitor.js";
import type { GuardOptions, GuardSettings, StoreErrorPolicy } from "../core/options.js";
import type {
  DispatcherOptions,
  ScheduleRunContext,
  TickResult,
} from "../core/schedules/dispatch.js";
import type { ScheduleInput } from "../core/schedules/schedule.js";
import type { GuardStore } from "../core/store.js";
import type { CronAppPlugin } from "./plugin.js";
import type { Trigger } from "./slot-source.js";

/**
 * Platform bindings when the app does not name its own `Env`: what `c.env` holds (Worker bindings
 * on Cloudflare, `process.env` on Vercel and Node).
 */
export type Bindings = Record<string, unknown>;

/**
 * What a job handler of the app receives: the guard's context plus the deployment's store and env.
 * `TEnv` is the app's `Env` (e.g. the interface `wrangler types` generates); `TPolicy` the
 * deployment's `onStoreError`, which makes `fence` a `number` under `"closed"`, the default.
 */
export interface CronJobContext<
  TEnv extends object = Bindings,
  TRedis = GuardStore,
  TPolicy extends StoreErrorPolicy = "closed",
> extends JobContext<FenceOf<TPolicy>> {
  /** The store the deployment was configured with; jobs may use it for their own data. */
  redis: TRedis;
  /** Platform bindings (Cloudflare) or `process.env` (Vercel, Node) of this invocation. */
  env: TEnv;
  trigger: Trigger;
}

/** Guard options a job may set for itself (the rest are per deployment). */
export type JobGuardOptions = Pick<
  GuardOptions,
  "leaseMs" | "retentionMs" | "heartbeatMs" | "skewToleranceMs" | "onFailure" | "overlap"
>;

/**
 * A job declared in code: a name, its platform cron and the handler. `CronJob<Env>` types the
 * handler's `env` with the app's bindings; see CronJobContext for the other parameters.
 */
export interface CronJob<
  TEnv extends object = Bindings,
  TRedis extends GuardStore = GuardStore,
  TPolicy extends StoreErrorPolicy = "closed",
> extends JobGuardOptions {
  /** `[A-Za-z0-9._-]{1,128}`; the route is `/cron/<name>`. */
  name: string;
  /** 5-field cron expression, read in UTC; must match the platform's (wrangler.toml `crons`, vercel.json). */
  cron: string;
  /**
   * IANA time zone of `cron`: only UTC, or a name for it such as `Etc/UTC` or `GMT`. Default UTC.
   * Cloudflare and Vercel fire crons in UTC, so a code job in another zone could never run at its
   * own fire times; creating the app throws a ConfigError naming `timezone`. For 09:00 Berlin time,
   * declare a dynamic schedule (`schedules: [{ id, cron: "0 9 * * *", timezone: "Europe/Berlin",
   * handler }]`, dispatched by `dispatchCron`, which follows daylight saving time) or write the cron
   * in UTC (`"0 8 * * *"`, which does not). See docs/time-zones.md.
   */
  timezone?: string;
  /**
   * How long after a fire time this job may start before the fire counts as missed (no claim) or
   * its run as late, in ms. Default: the app's `monitor.graceMs` (60 000). Give a Vercel Hobby job,
   * which fires anywhere inside its hour, an hour.
   */
  graceMs?: number;
  /**
   * The work. Its return value (JSON) is the `value` of the 200 body
   * (`{ status: "ran", job, slot, fence, value }`); a throw is a recorded failure.
   */
  handler(context: CronJobContext<TEnv, TRedis, TPolicy>): unknown;
}

/** What a schedule's handler receives in the app: the dispatcher's context plus the store and env. */
export interface ScheduleHandlerContext<
  TEnv extends object = Bindings,
  TRedis = GuardStore,
  TPolicy extends StoreErrorPolicy = "closed",
> extends ScheduleRunContext {
  fence: FenceOf<TPolicy>;
  lease: JobContext<FenceOf<TPolicy>>["lease"];
  redis: TRedis;
  env: TEnv;
  trigger: "dispatch";
}

/** Code that schedules (data in Redis) name in their `handler` field. */
export type AppScheduleHandler<
  TEnv extends object = Bindings,
  TRedis = GuardStore,
  TPolicy extends StoreErrorPolicy = "closed",
> = (context: ScheduleHandlerContext<TEnv, TRedis, TPolicy>) => unknown;

/**
 * The app's options. `TEnv` is the platform's bindings type (default: any record), `TPolicy` the
 * `guardOptions.onStoreError` the compiler sees (it types every handler's `fence`).
 */
export interface CronAppOptions<
  TRedis extends GuardStore,
  TEnv extends object = Bindings,
  TPolicy extends StoreErrorPolicy = StoreErrorPolicy,
> {
  /** Jobs declared in code, each on its own platform cron. Default none. */
  jobs?: readonly CronJob<TEnv, TRedis, TPolicy>[];
  /**
   * Handlers that dynamic schedules name (`PUT /schedules/:id { handler }`). With the
   * `dynamicSchedules()` plug-in (`cron-guard/dynamic-schedules`), they turn on `/schedules` and
   * `/dispatch`. Schedules are data; handlers are code.
   */
  handlers?: Readonly<Record<string, AppScheduleHandler<TEnv, TRedis, TPolicy>>>;
  /**
   * Schedules declared in code, upserted idempotently before the first dispatch or schedule
   * request of each isolate: a redeploy with the same definitions writes nothing, a changed one
   * updates it and keeps its pause state and history.
   */
  schedules?: readonly ScheduleInput[];
  /**
   * The platform cron that drives dispatch on Cloudflare (`scheduled()`); list it in wrangler.toml.
   * On Vercel, vercel.json calls `/dispatch` on it instead. Default `"* * * * *"`.
   */
  dispatchCron?: string;
  /** Budgets of one dispatch tick (time, HTTP requests, wave size, retry backoff). */
  dispatch?: Pick<
    DispatcherOptions,
    "budgetMs" | "maxRequests" | "maxCalls" | "concurrency" | "retryBackoffMs" | "missedAfterMs"
  >;
  /**
   * The store, or a function that builds it from the platform environment once per isolate, e.g.
   * `(env) => Redis.fromEnv(env)` on Cloudflare where bindings arrive with the request.
   */
  redis: TRedis | ((env: TEnv) => TRedis);
  /**
   * Where the guard claims slots, when not in `redis`: e.g. a quorum of several databases
   * (`createQuorumStore`, `quorumFromEnv`), while jobs keep `redis` for their own data. Built from
   * the environment like `redis`. Default: `redis`.
   */
  store?: GuardStore | ((env: TEnv) => GuardStore | undefined);
  /**
   * The bearer secret every HTTP trigger must present. Default: `env.CRON_SECRET`, then
   * `process.env.CRON_SECRET`. Leading and trailing whitespace is ignored (HTTP cannot carry it
   * in a header). Without one, with only whitespace, or with characters a header cannot carry
   * (anything but printable ASCII, space and tab), every /cron route answers 500: never open.
   */
  cronSecret?: (env: TEnv) => string | undefined;
  /**
   * Deployment-wide guard options (prefix, region, clock, ...); each job may override its own.
   * `onStoreError: "open"` makes every handler's `fence` `number | null` (a run may hold no claim).
   */
  guardOptions?: Omit<GuardSettings, "onStoreError"> & { onStoreError?: TPolicy };
  /**
   * Missed and late runs: how long a fire may go unclaimed (`graceMs`, default 60 000) and how far
   * back status reports look (`windowMs`, default one hour).
   */
  monitor?: MonitorOptions;
  /** The alert webhook (failed, lost, dead, missed). See AlertOptions. */
  alerts?: AlertOptions<TEnv>;
  /**
   * Features the app bundles only when given, each from its own subpath: `dynamicSchedules()`
   * (`cron-guard/dynamic-schedules`: `handlers`, `schedules`, `dispatchCron`, `dispatch`, the
   * `/schedules` and `/dispatch` routes), `dashboard()` (`cron-guard/dashboard`) and `openApi()`
   * (`cron-guard/openapi`: `GET /openapi.json`). Default none: `/cron` only. A schedules option
   * without its plug-in is a ConfigError at creation.
   */
  plugins?: readonly CronAppPlugin[];
}

/**
 * One POST of JSON (see AlertBody in cron-guard's core) per event, exactly once across every
 * instance: each event is claimed in Redis like a slot before it is sent.
 */
export interface AlertOptions<TEnv extends object = Bindings> {
  /**
   * The webhook URL. Default `env.CRON_GUARD_ALERT_URL`, then `process.env.CRON_GUARD_ALERT_URL`.
   * Unset or empty: no alerts.
   */
  url?: string | ((env: TEnv) => string | undefined);
  /**
   * Signs every alert POST with HMAC-SHA256 in a `cron-guard-signature: t=<unix s>,v1=<hex>`
   * header over `"<t>.<raw body>"`, so the receiver can tell cron-guard's alerts from anyone's
   * POST and refuse replays by age (check it with `verifyAlertSignature` from
   * `cron-guard/monitoring`). Default `env.CRON_GUARD_ALERT_SECRET`, then
   * `process.env.CRON_GUARD_ALERT_SECRET`. Surrounding whitespace is ignored. Unset or blank:
   * alerts are sent unsigned, with one console.warn.
   */
  secret?: string | ((env: TEnv) => string | undefined);
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Give up on the webhook after this long, in ms. Default 5 000. */
  timeoutMs?: number;
}

export interface ScheduledEvent {
  cron: string;
  scheduledTime: number;
}

/** What one job did for a scheduled event. */
export interface JobScheduledRun {
  job: string;
  slot: string;
  result: GuardResult<unknown> | { status: "error"; error: unknown };
}

/**
 * A scheduled event whose cron means no job's schedule (wrangler.toml and the jobs disagree):
 * nothing ran, and it is logged with console.error.
 */
export interface UnmatchedScheduledRun {
  job: null;
  slot: string;
  result: {
    status: "unmatched";
    /** The cron that fired. */
    cron: string;
    /** Every job's name and cron, to compare with. */
    jobs: { name: string; cron: string }[];
    error: string;
  };
}

/** The dispatch tick a scheduled event ran (its cron is the app's `dispatchCron`). */
export interface DispatchScheduledRun {
  job: null;
  slot: string;
  result: { status: "dispatched"; tick: TickResult } | { status: "error"; error: unknown };
}

export type ScheduledRun = JobScheduledRun | UnmatchedScheduledRun | DispatchScheduledRun;

/** The deployable app (a Hono app) over bindings `TEnv`. */
export interface CronApp<TEnv extends object = Bindings> extends Hono<{ Bindings: TEnv }> {
  /**
   * Runs every job whose cron means `event.cron` (spelling aside: `*\/1` is `*`, `MON` is `1`) for
   * the slot `event.scheduledTime`. A cron that means no job's schedule runs nothing, is logged with
   * console.error and comes back as one `unmatched` entry.
   */
  runScheduled(
    event: ScheduledEvent,
    env: TEnv,
    waitUntil?: (promise: Promise<unknown>) => void,
  ): Promise<ScheduledRun[]>;
  readonly jobs: readonly CronJob<TEnv, GuardStore, StoreErrorPolicy>[];
  /**
   * The platform cron that drives dispatch (`dispatchCron`), or undefined when the app registers
   * no schedule handlers (no `/dispatch`). `cron-guard check` compares it with the platform's.
   */
  readonly dispatchCron: string | undefined;
}
