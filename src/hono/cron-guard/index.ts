import type { Context, MiddlewareHandler } from "hono";
import {
  type CronSchedule,
  parseSchedule,
  periodMsOf,
  slotId,
  validateSkewTolerance,
} from "../../core/cron/index.js";
import { ConfigError, messageOf, SlotError, StoreUnavailableError } from "../../core/errors.js";
import type { FenceOf, Guard, JobContext } from "../../core/guard/guard.js";
import { assertJobName } from "../../core/guard/keys.js";
import type { GuardResult } from "../../core/guard/result.js";
import { configErrorIn, type StoreErrorPolicy } from "../../core/options.js";
import { cronSecretProblem, refusal } from "../auth.js";
import { forceOf, refusedBackfill } from "../backfill.js";
import { slotForRequest, type Trigger, type TriggerSource } from "../slot-source.js";

/**
 * What the guarded handler finds in `c.get("cronGuard")`: the guard's context and the trigger.
 * `fence` is a `number` under a guard with `onStoreError: "closed"` (the default).
 */
export interface CronGuardContext<TFence extends number | null = number | null>
  extends JobContext<TFence> {
  trigger: Trigger;
  /** The clock that delivered this run (recorded per slot, see TriggerSource). */
  source: TriggerSource;
}

/**
 * The variables the middleware sets. Hono types them on the handlers chained after it
 * (`app.get(path, cronGuard(...), (c) => c.get("cronGuard").fence)`); a route without the
 * middleware does not have them, and the compiler says so. The handler may set `cronGuardValue`
 * (`c.set("cronGuardValue", value)`): the run is recorded with it (its JSON, like a value a
 * scheduled event's handler returns); unset, the run's summary is empty.
 */
export type CronGuardVariables<TFence extends number | null = number | null> = {
  cronGuard: CronGuardContext<TFence>;
  cronGuardValue?: unknown;
};

export interface CronGuardOptions<TPolicy extends StoreErrorPolicy = StoreErrorPolicy> {
  /**
   * The guard, or a function that builds it from the request (e.g. from Worker bindings:
   * `guard: (c) => createGuard({ redis: Redis.fromEnv(c.env) })`). A guard whose
   * `skewToleranceMs` is half the schedule's period or more is a ConfigError: at creation for a
   * guard, on the first request (500 JSON, nothing written) for a function.
   */
  guard: Guard<TPolicy> | ((c: Context) => Guard<TPolicy>);
  /**
   * The bearer secret every request must present (`Authorization: Bearer <secret>`, compared in
   * constant time), or a function that reads it per request, e.g. `(c) => c.env.CRON_SECRET`.
   * Vercel sends `Bearer <CRON_SECRET>` with its cron calls. Required unless
   * `allowUnauthenticated`: the route claims slots and backfills past ones (`?slot=`), so it is
   * never open by accident. A secret missing at request time (or blank, or not header-safe)
   * answers 500 and runs nothing; surrounding whitespace is ignored.
   */
  secret?: string | ((c: Context) => string | undefined);
  /**
   * `true` when the route already sits behind your own authentication (a middleware registered
   * before this one): then this one checks no secret. Give either this or `secret`.
   */
  allowUnauthenticated?: boolean;
  /** Job name (`[A-Za-z0-9._-]{1,128}`): the first part of every key. */
  job: string;
  /** The job's cron expression (5 fields, as in wrangler.toml or vercel.json). */
  cron: string;
  /** IANA time zone of `cron`. Default UTC. */
  timezone?: string;
  /**
   * Called with every result (ran, skipped, failed) before the response is sent, e.g. to alert on
   * a failure. Not called when the store could not be reached (503).
   */
  onResult?: (result: GuardResult<unknown, FenceOf<TPolicy>>, c: Context) => void | Promise<void>;
}

/** The handler answered 5xx without throwing: recorded as a failure like a throw would be. */
export class HandlerFailedError extends Error {
  override readonly name = "HandlerFailedError";
  readonly status: number;

  constructor(status: number) {
    super(`handler answered HTTP ${status}`);
    this.status = status;
  }
}

function waitUntilOf(c: Context): ((promise: Promise<unknown>) => void) | undefined {
  try {
    const ctx = c.executionCtx;
    return ctx.waitUntil.bind(ctx);
  } catch {
    return undefined;
  }
}

const isoOf = (ms: number) => new Date(ms).toISOString();

/**
 * What a caller of a 503 needs: that the job did not run, why in one word, and what happens to
 * the slot. Never the store's own message, which can carry the command (lease tokens, other
 * requests' commands under auto-pipelining); that goes to the log.
 */
function unavailableBody(error: StoreUnavailableError): Record<string, unknown> {
  if (error.kind === "rejected") {
    return {
      error:
        "store refused the claim (it answered with an error, see the deployment's log): the job did not run; nothing holds the slot",
      reason: "rejected",
      claim: "none",
    };
  }
  const freeBy = error.slotFreeByMs === undefined ? undefined : isoOf(error.slotFreeByMs);
  return {
    error: `store ${error.kind === "slow" ? "answered the claim too late" : "unreachable"}: the job did not run. Its claim may have reached the store and is being withdrawn, so a retry can run this slot${freeBy ? `; if the store stays unreachable, the slot is free again by ${freeBy} at the latest` : ""}`,
    reason: error.kind,
    claim: "withdrawing",
    ...(freeBy ? { slotFreeBy: freeBy } : {}),
  };
}

/** The run happened but could not be recorded (or ran unguarded): say so without store details. */
function warningHeader(warning: StoreUnavailableError): string {
  if (warning.slotFreeByMs !== undefined) {
    return `unrecorded; the slot may run again after ${isoOf(warning.slotFreeByMs)}`;
  }
  return `store ${warning.kind}; ran without a claim`;
}

function replaceResponse(c: Context, response: Response): void {
  c.res = undefined;
  c.res = response;
}

function jsonResponse(body: unknown, status: number, headers: Record<string, string>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=UTF-8", ...headers },
  });
}

/**
 * How the middleware reads its secret per request, or undefined when the route is declared to sit
 * behind the caller's own auth. Refuses, at creation, a middleware with neither (or both), and a
 * fixed secret no client could send.
 */
function checkedSecret(
  secret: CronGuardOptions["secret"],
  allowUnauthenticated: boolean | undefined,
): ((c: Context) => string | undefined) | undefined {
  if (allowUnauthenticated !== undefined && typeof allowUnauthenticated !== "boolean") {
    throw new ConfigError("allowUnauthenticated", "must be true or false");
  }
  if (secret === undefined) {
    if (allowUnauthenticated === true) return undefined;
    throw new ConfigError(
      "secret",
      'cronGuard needs the bearer secret callers must present (secret: "..." or secret: (c) => c.env.CRON_SECRET), or allowUnauthenticated: true when the route sits behind your own auth middleware',
    );
  }
  if (allowUnauthenticated === true) {
    throw new ConfigError("secret", "give either secret or allowUnauthenticated: true, not both");
  }
  if (typeof secret === "function") return secret;
  if (typeof secret !== "string") {
    throw new ConfigError("secret", "must be a string or a function (c) => string | undefined");
  }
  const why = cronSecretProblem(secret);
  if (why !== undefined) throw new ConfigError("secret", `the secret ${why}`);
  return () => secret;
}

/** The methods that may claim a slot: what Vercel (GET) and a manual trigger (POST) send. */
const CLAIMING_METHODS = new Set(["GET", "POST"]);

/**
 * Lets one invocation per slot through to the handler. Skipped invocations answer 204 with
 * `cron-guard-status: skipped`, `cron-guard-reason` and `cron-guard-slot`; the one that runs gets the
 * handler's response plus `cron-guard-status: ran`, `cron-guard-slot` and `cron-guard-fence`.
 * A bad `?slot=` or `?force=` is a 400, a store outage (closed policy) a 503, a throwing handler a
 * 500, all JSON. A backfill (`?slot=`) of a slot that already ran, failed under "keep", or is older
 * than the slot ledger can vouch for is a 409 that says what is recorded; `?force=true` runs it
 * anyway (never while another claim runs it).
 * Only GET and POST claim a slot: HEAD (which Hono routes to GET handlers) and every other method
 * get 405 JSON with `Allow: GET, POST`, and nothing is written.
 */
export const cronGuard = <TPolicy extends StoreErrorPolicy>({
  guard,
  job,
  cron,
  timezone,
  secret,
  allowUnauthenticated,
  onResult,
}: CronGuardOptions<TPolicy>): MiddlewareHandler<{
  Variables: CronGuardVariables<FenceOf<TPolicy>>;
}> => {
  const where = `job "${job}"`;
  configErrorIn("job", () => assertJobName(job));
  const secretOf = checkedSecret(secret, allowUnauthenticated);
  const schedule: CronSchedule = configErrorIn(where, () => parseSchedule(cron, { timezone }));
  const checked = new WeakSet<Guard>();
  const checkGuard = (candidate: Guard): void => {
    if (checked.has(candidate)) return;
    const { skewToleranceMs, clock } = candidate.options;
    configErrorIn(where, () => validateSkewTolerance(schedule, skewToleranceMs, clock()));
    checked.add(candidate);
  };
  if (typeof guard !== "function") checkGuard(guard);
  let periodMs: number | undefined;

  return async function cronGuard(c, next) {
    if (secretOf) {
      const refused = refusal(c, secretOf(c), "the cron secret");
      if (refused) return refused;
    }
    const method = c.req.method;
    if (!CLAIMING_METHODS.has(method)) {
      return c.json({ error: `method ${method} does not run a cron job: use GET or POST` }, 405, {
        allow: "GET, POST",
      });
    }
    const activeGuard = typeof guard === "function" ? guard(c) : guard;
    try {
      checkGuard(activeGuard);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      console.error(`cron-guard: ${error.message}`);
      return c.json({ error: `misconfigured: ${error.message}` }, 500);
    }
    periodMs ??= periodMsOf(schedule, activeGuard.options.clock());
    let resolved: ReturnType<typeof slotForRequest>;
    let force: boolean;
    try {
      force = forceOf(c.req.raw);
      resolved = slotForRequest(c.req.raw, {
        schedule,
        cron,
        nowMs: activeGuard.options.clock(),
        skewToleranceMs: activeGuard.options.skewToleranceMs,
      });
    } catch (error) {
      if (error instanceof SlotError) return c.json({ error: error.message }, 400);
      throw error;
    }
    const slotHeader = slotId(resolved.slotMs);

    let result: GuardResult<unknown, FenceOf<TPolicy>>;
    try {
      result = await activeGuard.run(
        job,
        resolved.slotMs,
        async (context) => {
          c.set("cronGuard", { ...context, trigger: resolved.trigger, source: resolved.source });
          await next();
          if (c.error) throw c.error;
          if (c.res.status >= 500) throw new HandlerFailedError(c.res.status);
          return c.get("cronGuardValue");
        },
        { waitUntil: waitUntilOf(c), periodMs, force, source: resolved.source },
      );
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      console.error(`cron-guard: ${job} ${slotHeader}: ${error.message}`);
      replaceResponse(
        c,
        jsonResponse({ ...unavailableBody(error), job, slot: slotHeader }, 503, {
          "cron-guard-status": "unavailable",
          "cron-guard-slot": slotHeader,
        }),
      );
      return;
    }
    await onResult?.(result, c);

    if (
      result.status === "skipped" &&
      resolved.trigger === "manual" &&
      (result.reason === "done" || result.reason === "failed" || result.reason === "unvouched")
    ) {
      replaceResponse(c, refusedBackfill(job, slotHeader, result.reason, result.holder));
      return;
    }
    if (result.status === "skipped") {
      replaceResponse(
        c,
        new Response(null, {
          status: 204,
          headers: {
            "cron-guard-status": "skipped",
            "cron-guard-reason": result.reason,
            "cron-guard-slot": slotHeader,
          },
        }),
      );
      return;
    }
    if (result.status === "failed") {
      replaceResponse(
        c,
        jsonResponse(
          {
            error: `job ${job} failed: ${messageOf(result.error)}`,
            job,
            slot: slotHeader,
            lockLost: result.lockLost,
          },
          500,
          { "cron-guard-status": "failed", "cron-guard-slot": slotHeader },
        ),
      );
      return;
    }
    const response = new Response(c.res.body, c.res);
    if (result.warning) {
      console.error(`cron-guard: ${job} ${slotHeader}: ${result.warning.message}`);
      response.headers.set("cron-guard-warning", warningHeader(result.warning));
    }
    response.headers.set("cron-guard-status", result.unguarded ? "ran-unguarded" : "ran");
    response.headers.set("cron-guard-slot", slotHeader);
    if (result.fence !== null) response.headers.set("cron-guard-fence", String(result.fence));
    replaceResponse(c, response);
  };
};
