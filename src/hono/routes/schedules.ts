import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { attemptSlotId, parseExplicitSlot, parseSchedule, slotId } from "../../core/cron/index.js";
import { ConfigError, SlotError } from "../../core/errors.js";
import type { ScheduleInput } from "../../core/schedules/schedule.js";
import type { GuardStore } from "../../core/store.js";
import type { Deployment } from "../deployment.js";
import { readDispatchSources } from "../dispatch-sources.js";
import type { DynamicSchedules } from "../dynamic.js";
import { badInput, jsonBody, jsonError, methodNotAllowed, validated } from "../http.js";
import { monitoringOf } from "../monitoring.js";
import {
  MAX_SCHEDULE_BODY_BYTES,
  ScheduleBody,
  ScheduleDeleteQuery,
  ScheduleIdParam,
  ScheduleListQuery,
} from "../request-schemas.js";
import type { ScheduleSlotJson } from "../response-schemas.js";
import { scheduleJson, scheduleStatusJson, slotLookupJson } from "../schedule-json.js";
import { sourceOfRequest } from "../slot-source.js";
import type { Bindings } from "../types.js";

/** Shown by `GET /:id`; the monitor reads deeper to cover its window. */
const STATUS_SLOTS = 5;
const STATUS_RUNS = 20;

function waitUntilOf(c: Context): ((promise: Promise<unknown>) => void) | undefined {
  try {
    return c.executionCtx.waitUntil.bind(c.executionCtx);
  } catch {
    return undefined;
  }
}

const idParam = validated("param", ScheduleIdParam);
const scheduleBody = [
  bodyLimit({
    maxSize: MAX_SCHEDULE_BODY_BYTES,
    onError: (c) =>
      badInput(c, new ConfigError("body", `at most ${MAX_SCHEDULE_BODY_BYTES} bytes`)),
  }),
  jsonBody(ScheduleBody),
] as const;
const noSchedule = (c: Context, id: string) =>
  jsonError(c, 404, `no schedule ${JSON.stringify(id)}`);

/**
 * `/schedules`: `PUT /:id` upserts the whole schedule (201 created, 200 updated or unchanged) and
 * answers it with its next fire; `PATCH /:id` changes only the fields it names; `GET /` pages
 * through them (`?cursor=&limit=`); `GET /:id` shows one with its latest runs; `DELETE /:id`
 * (`?purge=true`: its history too); `POST /:id/pause` and `/:id/resume`. Bad input is a 400
 * naming the field and writes nothing. Answers go through schedule-json.ts (ISO times, one key
 * order). The caller mounts it behind the bearer secret.
 */
export function scheduleRoutes<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
  dynamic: DynamicSchedules<TRedis>,
): Hono<{ Bindings: Bindings }> {
  const routes = new Hono<{ Bindings: Bindings }>();
  routes.get("/", validated("query", ScheduleListQuery), async (c) => {
    const registry = await dynamic.registry(c.env);
    const page = await registry.list(c.req.valid("query"));
    return c.json({ schedules: page.schedules.map(scheduleJson), cursor: page.cursor });
  });

  routes.put("/:id", idParam, ...scheduleBody, async (c) => {
    const { id } = c.req.valid("param");
    const input = c.req.valid("json");
    if (deployment.jobs.has(id)) {
      // A schedule's runs are guarded under its id, like a job's under its name: sharing one
      // would make the two skip each other's slots.
      return badInput(c, new ConfigError("id", `"${id}" is the name of a job declared in code`));
    }
    if (input.id !== undefined && input.id !== id) {
      const says = `the body says ${JSON.stringify(input.id)}, the path ${id}`;
      return badInput(c, new ConfigError("id", says));
    }
    const registry = await dynamic.registry(c.env);
    try {
      // The registry checks the fields against the schedule schema and its handler names.
      const { outcome, schedule } = await registry.upsert({ ...input, id } as ScheduleInput);
      return c.json(
        { outcome, schedule: scheduleJson(schedule) },
        outcome === "created" ? 201 : 200,
      );
    } catch (error) {
      if (error instanceof ConfigError) return badInput(c, error);
      throw error;
    }
  });

  routes.patch("/:id", idParam, ...scheduleBody, async (c) => {
    const { id } = c.req.valid("param");
    const { id: named, ...changes } = c.req.valid("json");
    if (named !== undefined && named !== id) {
      return badInput(
        c,
        new ConfigError("id", "cannot be changed: PUT a schedule under the new id instead"),
      );
    }
    const registry = await dynamic.registry(c.env);
    try {
      // Only the named fields change, checked like a PUT's; compare-and-set against other writers.
      const patched = await registry.patch(id, changes);
      if (!patched) return noSchedule(c, id);
      if (patched.outcome === "conflict") {
        return c.json(
          { error: `schedule ${JSON.stringify(id)} kept changing under this PATCH: try again` },
          409,
        );
      }
      return c.json({ outcome: patched.outcome, schedule: scheduleJson(patched.schedule) });
    } catch (error) {
      if (error instanceof ConfigError) return badInput(c, error);
      throw error;
    }
  });

  routes.get("/:id", idParam, async (c) => {
    const { id } = c.req.valid("param");
    const schedule = await (await dynamic.registry(c.env)).get(id);
    if (!schedule) return noSchedule(c, id);
    const guard = deployment.scheduleGuard(c.env, "default");
    const { slots, runs, running, monitor } = await monitoringOf(deployment).scheduleStatus(
      c.env,
      schedule,
      waitUntilOf(c),
      guard,
    );
    return c.json(
      scheduleStatusJson(schedule, {
        running,
        slots: slots.slice(0, STATUS_SLOTS),
        runs: runs.slice(0, STATUS_RUNS),
        monitor,
      }),
    );
  });

  routes.get("/:id/slots/:slot", idParam, async (c) => {
    const { id } = c.req.valid("param");
    const schedule = await (await dynamic.registry(c.env)).get(id);
    if (!schedule) return noSchedule(c, id);
    let slotMs: number;
    try {
      slotMs = parseExplicitSlot(
        c.req.param("slot"),
        parseSchedule(schedule.cron, { timezone: schedule.timezone }),
      );
    } catch (error) {
      if (error instanceof SlotError) return jsonError(c, 400, error.message);
      throw error;
    }
    const guard = deployment.scheduleGuard(c.env, "default");
    const fire = slotId(slotMs);
    // A failed fire is retried by the dispatcher under `<fire>.retry<n>`: every attempt's record.
    const attempts = await Promise.all(
      Array.from({ length: schedule.maxAttempts }, (_, n) =>
        guard.lookup(id, attemptSlotId(fire, n)),
      ),
    );
    const tried = attempts.filter((a) => a.status !== "never" && a.status !== "unknown");
    const ran = tried.find((a) => a.status === "ran");
    const answer: ScheduleSlotJson = {
      schedule: id,
      slot: fire,
      status: ran?.status ?? tried.at(-1)?.status ?? attempts[0]?.status ?? "never",
      attempts: (tried.length > 0 ? tried : attempts.slice(0, 1)).map(slotLookupJson),
    };
    return c.json(answer);
  });
  routes.all("/:id/slots/:slot", (c) => methodNotAllowed(c, "GET"));

  routes.delete("/:id", idParam, validated("query", ScheduleDeleteQuery), async (c) => {
    const { id } = c.req.valid("param");
    // One answer only: `?purge=true&purge=false` says two things, and deleting history is final.
    if (new URL(c.req.url).searchParams.getAll("purge").length > 1) {
      return badInput(c, new ConfigError("purge", "give ?purge=true once, not several times"));
    }
    const purge = c.req.valid("query").purge !== undefined;
    const deleted = await (await dynamic.registry(c.env)).remove(id, { purge });
    return deleted ? c.json({ deleted: id, purged: purge }) : noSchedule(c, id);
  });

  for (const action of ["pause", "resume"] as const) {
    routes.post(`/:id/${action}`, idParam, async (c) => {
      const { id } = c.req.valid("param");
      const registry = await dynamic.registry(c.env);
      const schedule = await registry[action](id);
      return schedule ? c.json({ schedule: scheduleJson(schedule) }) : noSchedule(c, id);
    });
    routes.all(`/:id/${action}`, (c) => methodNotAllowed(c, "POST"));
  }
  routes.all("/", (c) => methodNotAllowed(c, "GET"));
  routes.all("/:id", (c) => methodNotAllowed(c, "GET, PUT, PATCH, DELETE"));
  return routes;
}

/**
 * `/dispatch`: one tick (GET for Vercel cron, POST by hand); answers the tick's counts. Each tick
 * records who sent it (`vercel`, `qstash`, `http`, or `?source=` / `cron-guard-source`: a bad name
 * is a 400 and runs nothing) for the dispatch cron's fire time, beside the tick's first request.
 * `GET /dispatch/sources`: that record, `{ cron, sources }`.
 */
export function dispatchRoutes<TRedis extends GuardStore>(
  dynamic: DynamicSchedules<TRedis>,
  deployment?: Deployment<TRedis>,
): Hono<{ Bindings: Bindings }> {
  const routes = new Hono<{ Bindings: Bindings }>();
  routes.on(["GET", "POST"], "/", async (c) => {
    // Hono answers HEAD with the GET handler; a HEAD must not run a tick.
    if (c.req.method === "HEAD") return methodNotAllowed(c, "GET, POST");
    let source: string;
    try {
      source = sourceOfRequest(c.req.raw);
    } catch (error) {
      if (error instanceof SlotError) return jsonError(c, 400, error.message);
      throw error;
    }
    const waitUntil = waitUntilOf(c);
    const tick = await dynamic.tick(c.env, waitUntil, { source });
    if (deployment) {
      const monitoring = monitoringOf(deployment);
      await Promise.all([
        monitoring.tickFinished(c.env, tick, waitUntil),
        monitoring.check(c.env, waitUntil),
      ]);
    }
    return c.json(tick);
  });
  routes.get("/sources", async (c) => {
    if (!deployment) return jsonError(c, 404, "no dispatch source record in this app");
    return c.json(await readDispatchSources(deployment, c.env));
  });
  routes.all("/sources", (c) => methodNotAllowed(c, "GET"));
  routes.all("/", (c) => methodNotAllowed(c, "GET, POST"));
  return routes;
}
