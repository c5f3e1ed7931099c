import { type Context, Hono } from "hono";
import { parseExplicitSlot, parseSchedule, slotId } from "../../core/cron/slot.js";
import { ConfigError, messageOf, SlotError, StoreUnavailableError } from "../../core/errors.js";
import { createGuard } from "../../core/guard/guard.js";
import { isValidJobName } from "../../core/guard/keys.js";
import { isListCursor } from "../../core/schedules/registry.js";
import type { GuardStore } from "../../core/store.js";
import type { Deployment } from "../deployment.js";
import type { DynamicSchedules } from "../dynamic.js";
import { jsonError, methodNotAllowed } from "../http.js";
import { monitoringOf } from "../monitoring.js";
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

/**
 * The store's trouble (unreachable, refusing, no quorum) is the service being unavailable: 503
 * with a JSON error, like the guarded routes under the closed store policy; anything else goes on
 * to the app's handler (500).
 */
export function storeErrorAs503(error: Error, c: Context): Response | Promise<Response> {
  if (error instanceof StoreUnavailableError) {
    console.error(`cron-guard: ${c.req.method} ${c.req.path}: ${messageOf(error)}`);
    return jsonError(c, 503, `store unavailable: ${messageOf(error)}`);
  }
  throw error;
}

/** Largest schedule body accepted, in bytes (the payload alone may be 16 KiB). */
const MAX_BODY_BYTES = 64 * 1024;

const badId = (c: Context, id: string) =>
  c.json(
    {
      error: `id: ${JSON.stringify(id)} is not a schedule id (1-128 of A-Z a-z 0-9 . _ -)`,
      field: "id",
    },
    400,
  );

/**
 * `/schedules`: `PUT /:id` upserts (201 created, 200 updated or unchanged) and answers the stored
 * schedule with its next fire; `GET /` pages through them (`?cursor=&limit=`); `GET /:id` shows one
 * with its latest runs; `DELETE /:id`; `POST /:id/pause` and `/:id/resume`. Bad input is a 400
 * naming the field and writes nothing. The caller mounts it behind the bearer secret.
 */
export function scheduleRoutes<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
  dynamic: DynamicSchedules<TRedis>,
): Hono<{ Bindings: Bindings }> {
  const routes = new Hono<{ Bindings: Bindings }>();
  routes.onError(storeErrorAs503);
  routes.get("/", async (c) => {
    const cursor = c.req.query("cursor") ?? "0";
    const limitText = c.req.query("limit") ?? "100";
    if (!isListCursor(cursor)) {
      return c.json(
        { error: "cursor: use the cursor a previous page returned", field: "cursor" },
        400,
      );
    }
    if (!/^\d{1,4}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > 500) {
      return c.json({ error: "limit: a whole number from 1 to 500", field: "limit" }, 400);
    }
    const registry = await dynamic.registry(c.env);
    return c.json(await registry.list({ cursor, limit: Number(limitText) }));
  });

  routes.put("/:id", async (c) => {
    const id = c.req.param("id");
    if (!isValidJobName(id)) return badId(c, id);
    const text = await c.req.text();
    if (new TextEncoder().encode(text).length > MAX_BODY_BYTES) {
      return jsonError(c, 400, `body: at most ${MAX_BODY_BYTES} bytes`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return c.json({ error: "body: not JSON", field: "body" }, 400);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return c.json({ error: "body: must be a JSON object", field: "body" }, 400);
    }
    const input = body as Record<string, unknown>;
    if (deployment.jobs.has(id)) {
      // A schedule's runs are guarded under its id, like a job's under its name: sharing one
      // would make the two skip each other's slots.
      return c.json(
        { error: `id: "${id}" is the name of a job declared in code`, field: "id" },
        400,
      );
    }
    if (input.id !== undefined && input.id !== id) {
      return c.json(
        { error: `id: the body says ${JSON.stringify(input.id)}, the path ${id}`, field: "id" },
        400,
      );
    }
    const registry = await dynamic.registry(c.env);
    try {
      const { outcome, schedule } = await registry.upsert({ ...input, id } as never);
      return c.json({ outcome, schedule }, outcome === "created" ? 201 : 200);
    } catch (error) {
      if (error instanceof ConfigError) {
        return c.json({ error: error.message, field: error.option }, 400);
      }
      throw error;
    }
  });

  routes.get("/:id", async (c) => {
    const id = c.req.param("id");
    if (!isValidJobName(id)) return badId(c, id);
    const schedule = await (await dynamic.registry(c.env)).get(id);
    if (!schedule) return jsonError(c, 404, `no schedule ${JSON.stringify(id)}`);
    const guard = createGuard({ ...deployment.guardOptions, redis: deployment.store(c.env) });
    const { slots, runs, running, monitor } = await monitoringOf(deployment).scheduleStatus(
      c.env,
      schedule,
      waitUntilOf(c),
      guard,
    );
    return c.json({
      schedule,
      running,
      slots: slots.slice(0, STATUS_SLOTS),
      runs: runs.slice(0, STATUS_RUNS),
      monitor,
    });
  });

  routes.get("/:id/slots/:slot", async (c) => {
    const id = c.req.param("id");
    if (!isValidJobName(id)) return badId(c, id);
    const schedule = await (await dynamic.registry(c.env)).get(id);
    if (!schedule) return jsonError(c, 404, `no schedule ${JSON.stringify(id)}`);
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
    const guard = createGuard({ ...deployment.guardOptions, redis: deployment.store(c.env) });
    const fire = slotId(slotMs);
    // A failed fire is retried by the dispatcher under `<fire>.retry<n>`: every attempt's record.
    const attempts = await Promise.all(
      Array.from({ length: schedule.maxAttempts }, (_, n) =>
        guard.lookup(id, n === 0 ? fire : `${fire}.retry${n}`),
      ),
    );
    const tried = attempts.filter((a) => a.status !== "never" && a.status !== "unknown");
    const ran = tried.find((a) => a.status === "ran");
    return c.json({
      schedule: id,
      slot: fire,
      status: ran?.status ?? tried.at(-1)?.status ?? attempts[0]?.status ?? "never",
      attempts: tried.length > 0 ? tried : attempts.slice(0, 1),
    });
  });
  routes.all("/:id/slots/:slot", (c) => methodNotAllowed(c, "GET"));

  routes.delete("/:id", async (c) => {
    const id = c.req.param("id");
    if (!isValidJobName(id)) return badId(c, id);
    const deleted = await (await dynamic.registry(c.env)).remove(id);
    return deleted
      ? c.json({ deleted: id })
      : jsonError(c, 404, `no schedule ${JSON.stringify(id)}`);
  });

  for (const action of ["pause", "resume"] as const) {
    routes.post(`/:id/${action}`, async (c) => {
      const id = c.req.param("id");
      if (!isValidJobName(id)) return badId(c, id);
      const registry = await dynamic.registry(c.env);
      const schedule = await registry[action](id);
      return schedule
        ? c.json({ schedule })
        : jsonError(c, 404, `no schedule ${JSON.stringify(id)}`);
    });
    routes.all(`/:id/${action}`, (c) => methodNotAllowed(c, "POST"));
  }
  routes.all("/", (c) => methodNotAllowed(c, "GET"));
  routes.all("/:id", (c) => methodNotAllowed(c, "GET, PUT, DELETE"));
  return routes;
}

/** `/dispatch`: one tick (GET for Vercel cron, POST by hand); answers the tick's counts. */
export function dispatchRoutes<TRedis extends GuardStore>(
  dynamic: DynamicSchedules<TRedis>,
  deployment?: Deployment<TRedis>,
): Hono<{ Bindings: Bindings }> {
  const routes = new Hono<{ Bindings: Bindings }>();
  routes.onError(storeErrorAs503);
  routes.on(["GET", "POST"], "/", async (c) => {
    // Hono answers HEAD with the GET handler; a HEAD must not run a tick.
    if (c.req.method === "HEAD") return methodNotAllowed(c, "GET, POST");
    const waitUntil = waitUntilOf(c);
    const tick = await dynamic.tick(c.env, waitUntil);
    if (deployment) {
      const monitoring = monitoringOf(deployment);
      await Promise.all([
        monitoring.tickFinished(c.env, tick, waitUntil),
        monitoring.check(c.env, waitUntil),
      ]);
    }
    return c.json(tick);
  });
  routes.all("/", (c) => methodNotAllowed(c, "GET, POST"));
  return routes;
}
