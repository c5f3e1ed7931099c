import { type Context, Hono, type MiddlewareHandler } from "hono";
import { ConfigError } from "../core/errors.js";
import { createGuard, type Guard, type JobContext } from "../core/guard.js";
import { assertJobName, isValidJobName } from "../core/keys.js";
import {
  configErrorIn,
  type GuardOptions,
  type GuardSettings,
  resolveGuardOptions,
  resolveGuardSettings,
} from "../core/options.js";
import type { GuardResult } from "../core/result.js";
import {
  type CronSchedule,
  nextFireTimes,
  parseSchedule,
  periodMsOf,
  scheduleSignature,
  slotFromCron,
  slotFromScheduledTime,
  slotId,
  validateSkewTolerance,
} from "../core/slot.js";
import type { GuardStore } from "../core/store.js";
import { bearerToken, secretsEqual } from "./auth.js";
import { type CronGuardEnv, cronGuard } from "./cron-guard/index.js";
import type { Trigger } from "./slot-source.js";

type Bindings = Record<string, unknown>;

/** What a job handler receives. */
export interface CronJobContext<TRedis> extends JobContext {
  /** The store the deployment was configured with; jobs may use it for their own data. */
  redis: TRedis;
  /** Platform bindings / environment of this invocation. */
  env: Bindings;
  trigger: Trigger;
}

/** Guard options a job may set for itself (the rest are per deployment). */
export type JobGuardOptions = Pick<
  GuardOptions,
  "leaseMs" | "retentionMs" | "heartbeatMs" | "skewToleranceMs" | "onFailure" | "overlap"
>;

export interface CronJob<TRedis extends GuardStore = GuardStore> extends JobGuardOptions {
  /** `[A-Za-z0-9._-]{1,128}`; the route is `/cron/<name>`. */
  name: string;
  /** 5-field cron expression; must match the platform's (wrangler.toml `crons`, vercel.json). */
  cron: string;
  /** IANA time zone of `cron`. Default UTC. Cloudflare and Vercel fire in UTC. */
  timezone?: string;
  /** The work. Its return value (JSON) becomes the 200 body; a throw is a recorded failure. */
  handler(context: CronJobContext<TRedis>): unknown;
}

export interface CronAppOptions<TRedis extends GuardStore> {
  jobs: readonly CronJob<TRedis>[];
  /**
   * The store, or a function that builds it from the platform environment once per isolate, e.g.
   * `(env) => Redis.fromEnv(env)` on Cloudflare where bindings arrive with the request.
   */
  redis: TRedis | ((env: Bindings) => TRedis);
  /**
   * The bearer secret every HTTP trigger must present. Default: `env.CRON_SECRET`, then
   * `process.env.CRON_SECRET`. Leading and trailing whitespace is ignored (HTTP cannot carry it
   * in a header). Without one, or with only whitespace, every /cron route answers 500: never open.
   */
  cronSecret?: (env: Bindings) => string | undefined;
  /** Deployment-wide guard options (prefix, region, clock, ...); each job may override its own. */
  guard?: Omit<GuardOptions, "redis">;
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

export type ScheduledRun = JobScheduledRun | UnmatchedScheduledRun;

export interface CronApp extends Hono<CronGuardEnv> {
  /**
   * Runs every job whose cron means `event.cron` (spelling aside: `*\/1` is `*`, `MON` is `1`) for
   * the slot `event.scheduledTime`. A cron that means no job's schedule runs nothing, is logged with
   * console.error and comes back as one `unmatched` entry.
   */
  runScheduled(
    event: ScheduledEvent,
    env: Bindings,
    waitUntil?: (promise: Promise<unknown>) => void,
  ): Promise<ScheduledRun[]>;
  readonly jobs: readonly CronJob<GuardStore>[];
}

interface PreparedJob<TRedis extends GuardStore> {
  job: CronJob<TRedis>;
  schedule: CronSchedule;
  /** The cron's canonical form: scheduled events match jobs by meaning. */
  signature: string | undefined;
}

/** A job's own guard options: everything but what describes the job itself. */
function ownGuardOptions(job: CronJob<never>): GuardSettings {
  const { name: _name, cron: _cron, timezone: _tz, handler: _handler, ...own } = job;
  return own;
}

function defaultCronSecret(env: Bindings): string | undefined {
  const fromEnv = env?.CRON_SECRET;
  if (typeof fromEnv === "string") return fromEnv;
  const processEnv = (globalThis as { process?: { env?: Record<string, string | undefined> } })
    .process?.env;
  return processEnv?.CRON_SECRET;
}

const jsonError = (c: Context, status: 400 | 401 | 404 | 405 | 500 | 503, error: string) =>
  c.json({ error }, status);

const methodNotAllowed = (c: Context, allow: "GET" | "GET, POST") =>
  c.json({ error: `method ${c.req.method} not allowed: use ${allow.replace(", ", " or ")}` }, 405, {
    allow,
  });

/**
 * The deployable trigger app: `GET|POST /cron/:job` runs a job once per slot (any other method,
 * HEAD included, is a 405 that writes nothing), `GET /cron` lists the jobs with their next fire
 * times, `GET /cron/:job/status` shows recent slots and runs. Every route under /cron needs
 * `Authorization: Bearer <CRON_SECRET>`. `runScheduled` serves Cloudflare's
 * scheduled() event.
 */
export function createCronApp<TRedis extends GuardStore>(options: CronAppOptions<TRedis>): CronApp {
  const { jobs, redis: redisFromEnv, cronSecret = defaultCronSecret, guard: shared = {} } = options;
  if (
    typeof redisFromEnv !== "function" &&
    (typeof redisFromEnv !== "object" || redisFromEnv === null)
  ) {
    throw new ConfigError("redis", "must be a Redis client or a function (env) => Redis");
  }
  if (!Array.isArray(jobs)) throw new ConfigError("jobs", "must be an array of jobs");
  if (typeof cronSecret !== "function") {
    throw new ConfigError("cronSecret", "must be a function (env) => string | undefined");
  }
  // Guards are built per request (the store may come from the request's env), so every option is
  // validated here, without a store: a typo must fail the deployment, not the first delivery.
  configErrorIn("guard options", () =>
    typeof redisFromEnv === "function"
      ? resolveGuardSettings(shared)
      : resolveGuardOptions({ ...shared, redis: redisFromEnv }),
  );
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
    if (prepared.has(job.name))
      throw new ConfigError("jobs", `job "${job.name}" is declared twice`);
    if (typeof job.handler !== "function") {
      throw new ConfigError("jobs", `job "${job.name}" needs a handler function`);
    }
    const schedule = configErrorIn(`job "${job.name}"`, () => {
      const parsed = parseSchedule(job.cron, { timezone: job.timezone });
      const settings = resolveGuardSettings({ ...shared, ...ownGuardOptions(job) });
      validateSkewTolerance(parsed, settings.skewToleranceMs, settings.clock());
      return parsed;
    });
    prepared.set(job.name, { job, schedule, signature: scheduleSignature(job.cron) });
  }

  // One store and one guard per job for as long as the platform hands us the same environment
  // (an isolate on Cloudflare; the process on Node and Vercel, where env is absent).
  let store: { env: Bindings | undefined; redis: TRedis; guards: Map<string, Guard> } | undefined;
  const resources = (env: Bindings | undefined) => {
    if (typeof redisFromEnv !== "function") {
      store ??= { env, redis: redisFromEnv, guards: new Map() };
    } else if (!store || store.env !== env) {
      store = { env, redis: redisFromEnv(env ?? {}), guards: new Map() };
    }
    return store;
  };
  const guardFor = (env: Bindings, entry: PreparedJob<TRedis>): Guard => {
    const { guards, redis } = resources(env);
    let guard = guards.get(entry.job.name);
    if (!guard) {
      guard = createGuard({ ...shared, ...ownGuardOptions(entry.job), redis });
      guards.set(entry.job.name, guard);
    }
    return guard;
  };
  const middlewares = new Map(
    [...prepared.values()].map((entry) => [
      entry.job.name,
      cronGuard({
        job: entry.job.name,
        cron: entry.job.cron,
        timezone: entry.job.timezone,
        guard: (c) => guardFor(c.env as Bindings, entry),
      }),
    ]),
  );

  const app = new Hono<CronGuardEnv>() as CronApp;

  // Unauthenticated: says what answers here and nothing about the jobs (GET /cron lists them).
  app.get("/", (c) => c.json({ name: "cron-guard" }));

  const requireSecret: MiddlewareHandler = async (c, next) => {
    // Surrounding whitespace is trimmed: a secret written from a file often ends in "\n", and no
    // caller can send it back, because HTTP strips leading and trailing whitespace from header
    // values (Vercel's `Authorization: Bearer <CRON_SECRET>` arrives without it). Comparing it
    // verbatim would answer 401 to every call, Vercel's included; whitespace inside is kept.
    const configured = cronSecret(c.env ?? {});
    const expected = typeof configured === "string" ? configured.trim() : "";
    if (!expected) {
      const why =
        typeof configured === "string" && configured !== "" ? "is only whitespace" : "is not set";
      console.error(`cron-guard: CRON_SECRET ${why}; refusing every /cron request`);
      return jsonError(
        c,
        500,
        `CRON_SECRET is not configured on this deployment (it ${why}); refusing to run`,
      );
    }
    const given = bearerToken(c.req.header("authorization"));
    if (given === undefined || !(await secretsEqual(given, expected))) {
      return jsonError(c, 401, "Unauthorized: send Authorization: Bearer <CRON_SECRET>");
    }
    await next();
  };
  app.use("/cron", requireSecret);
  app.use("/cron/*", requireSecret);

  app.get("/cron", (c) => {
    const nowMs = (shared.clock ?? Date.now)();
    return c.json({
      jobs: [...prepared.values()].map(({ job, schedule }) => ({
        name: job.name,
        cron: job.cron,
        timezone: job.timezone ?? "UTC",
        next: nextFireTimes(schedule, nowMs, 3).map(slotId),
      })),
    });
  });

  const findJob = (c: Context): PreparedJob<TRedis> | Response => {
    const name = c.req.param("job") ?? "";
    const entry = isValidJobName(name) ? prepared.get(name) : undefined;
    return entry ?? jsonError(c, 404, `unknown job ${JSON.stringify(name)}`);
  };

  app.get("/cron/:job/status", async (c) => {
    const entry = findJob(c);
    if (entry instanceof Response) return entry;
    return c.json(await guardFor(c.env, entry).status(entry.job.name));
  });

  app.on(
    ["GET", "POST"],
    "/cron/:job",
    async (c, next) => {
      // Hono answers HEAD with the GET handler; a HEAD must never claim a slot.
      if (c.req.method === "HEAD") return methodNotAllowed(c, "GET, POST");
      const entry = findJob(c);
      if (entry instanceof Response) return entry;
      const middleware = middlewares.get(entry.job.name);
      return middleware?.(c, next);
    },
    async (c) => {
      const entry = findJob(c) as PreparedJob<TRedis>;
      const context = c.get("cronGuard");
      const value = await entry.job.handler({
        ...context,
        redis: resources(c.env).redis,
        env: c.env,
      });
      return c.json({
        status: "ran",
        job: entry.job.name,
        slot: context.slot,
        fence: context.fence,
        value,
      });
    },
  );

  app.all("/cron", (c) => methodNotAllowed(c, "GET"));
  app.all("/cron/:job/status", (c) => methodNotAllowed(c, "GET"));
  app.all("/cron/:job", (c) => methodNotAllowed(c, "GET, POST"));
  app.notFound((c) => jsonError(c, 404, `no route ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error, c) => {
    // A job handler's throw is the guard's to record and answer (500 with the job and slot).
    if (c.get("cronGuard")) return jsonError(c, 500, error.message);
    console.error("cron-guard: unhandled error", error);
    return jsonError(c, 500, `internal error: ${error.message}`);
  });

  app.runScheduled = async (event, env, waitUntil) => {
    const fired = scheduleSignature(event.cron);
    const due = [...prepared.values()].filter(
      ({ signature }) => fired !== undefined && signature === fired,
    );
    const scheduledMs = slotFromScheduledTime(event.scheduledTime);
    if (due.length === 0) {
      const known = [...prepared.values()].map(({ job }) => ({ name: job.name, cron: job.cron }));
      const error = `scheduled cron ${JSON.stringify(event.cron)} matches no job${fired === undefined ? " (it is not a valid 5-field cron expression)" : ""}; nothing ran. Jobs: ${known.map(({ name, cron }) => `${name}: ${cron}`).join(", ") || "none"}. Align the platform's crons (wrangler.toml) with the jobs.`;
      console.error(`cron-guard: ${error}`);
      return [
        {
          job: null,
          slot: slotId(scheduledMs),
          result: { status: "unmatched", cron: event.cron, jobs: known, error },
        },
      ];
    }
    return Promise.all(
      due.map(async (entry): Promise<ScheduledRun> => {
        let slot = slotId(scheduledMs);
        try {
          const guard = guardFor(env, entry);
          // Cloudflare's scheduledTime is the planned fire time, so this keeps it as it is; only an
          // unaligned time (wrangler dev's /__scheduled uses "now") is snapped to the schedule, so a
          // manual trigger of the same minute still finds the slot taken.
          const slotMs = slotFromCron(entry.schedule, scheduledMs, {
            skewToleranceMs: guard.options.skewToleranceMs,
          });
          slot = slotId(slotMs);
          const result = await guard.run(
            entry.job.name,
            slotMs,
            (context) =>
              entry.job.handler({
                ...context,
                redis: resources(env).redis,
                env,
                trigger: "scheduled",
              }),
            { waitUntil, periodMs: periodMsOf(entry.schedule, slotMs) },
          );
          return { job: entry.job.name, slot, result };
        } catch (error) {
          return { job: entry.job.name, slot, result: { status: "error", error } };
        }
      }),
    );
  };
  Object.defineProperty(app, "jobs", { value: Object.freeze([...jobs]) });
  return app;
}
