/**
 * `GET /openapi.json`: an OpenAPI 3.1 document (checked by @seriousme/openapi-schema-validator)
 * behind the bearer, listing every route the app registers, whose response schemas are the
 * answers the routes really give (valibot parses real answers from a real redis-server).
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import type { Redis } from "@upstash/redis";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { createCronApp } from "../../src/hono/index.js";
import { dashboard } from "../../src/hono/plugins/dashboard.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { openApi } from "../../src/hono/plugins/openapi.js";
import {
  DispatchSourcesJson,
  ScheduleDeletedJson,
  ScheduleListJson,
  SchedulePatchJson,
  ScheduleSlotJson,
  ScheduleStatusJson,
  ScheduleWriteJson,
  TickJson,
} from "../../src/hono/response-schemas.js";
import { upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "s3cret-for-openapi";
const auth = { authorization: `Bearer ${SECRET}` };
const T0 = Date.UTC(2026, 10, 25, 12, 0, 30);

function makeApp(
  prefix: string,
  clock: { now: number },
  withSchedules = true,
  withDashboard = true,
) {
  return createCronApp<Redis>({
    redis: upstash(),
    jobs: [{ name: "nightly", cron: "0 3 * * *", handler: () => "job" }],
    ...(withSchedules ? { handlers: { mail: () => "mailed u-42" } } : {}),
    plugins: [
      openApi(),
      ...(withSchedules ? [dynamicSchedules()] : []),
      ...(withDashboard ? [dashboard()] : []),
    ],
    cronSecret: () => SECRET,
    guardOptions: { prefix, clock: () => clock.now },
  });
}

type Document = { paths: Record<string, Record<string, unknown>> };

describe("GET /openapi.json", () => {
  const prefix = useKeyPrefix("openapi");

  for (const [withSchedules, withDashboard] of [
    [true, true],
    [false, true],
    [true, false],
    [false, false],
  ]) {
    it(`is a valid OpenAPI 3.1 document listing every route the app registers (${withSchedules ? "with" : "without"} schedules, ${withDashboard ? "with" : "without"} the dashboard)`, async () => {
      const app = makeApp(prefix(), { now: T0 }, withSchedules, withDashboard);
      const response = await app.request("/openapi.json", { headers: auth });
      expect(response.status).toBe(200);
      const document = (await response.json()) as Document;
      const result = await new Validator().validate(document as never);
      expect(result.errors ?? []).toEqual([]);
      expect(result.valid).toBe(true);
      expect(document).toMatchObject({ openapi: "3.1.0" });

      const registered = app.routes
        .filter((route) => route.method !== "ALL")
        .map((route) => [route.method.toLowerCase(), route.path.replace(/:(\w+)/g, "{$1}")]);
      expect(registered.length).toBeGreaterThan(5);
      for (const [method, path] of registered) {
        expect(
          document.paths[path as string]?.[method as string],
          `${method} ${path}`,
        ).toBeDefined();
      }
      expect("/schedules/{id}" in document.paths).toBe(withSchedules);
      // a route the app does not serve is not in its document either
      expect("/dashboard/data" in document.paths).toBe(withDashboard);
      const served = new Set(registered.map(([method, path]) => `${method} ${path}`));
      for (const [path, methods] of Object.entries(document.paths)) {
        for (const method of Object.keys(methods)) {
          if (method === "head") continue;
          expect(served.has(`${method} ${path}`), `${method} ${path} is served`).toBe(true);
        }
      }
      if (withSchedules) {
        expect(Object.keys(document.paths["/schedules/{id}"] ?? {}).sort()).toEqual([
          "delete",
          "get",
          "patch",
          "put",
        ]);
      }
    });
  }

  it("describes the PATCH body with the schedule schema's fields, all optional, no others", async () => {
    const app = makeApp(prefix(), { now: T0 });
    const document = (await (await app.request("/openapi.json", { headers: auth })).json()) as {
      paths: Record<
        string,
        Record<
          string,
          { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }
        >
      >;
    };
    const patch =
      document.paths["/schedules/{id}"]?.patch?.requestBody?.content["application/json"]?.schema;
    expect(patch).toMatchObject({ type: "object", additionalProperties: false, minProperties: 1 });
    expect(Object.keys(patch?.properties as object).sort()).toEqual(
      [
        "cron",
        "timezone",
        "handler",
        "payload",
        "enabled",
        "catchUp",
        "catchUpLimit",
        "maxAttempts",
      ].sort(),
    );
    expect(patch?.required ?? []).toEqual([]);
    const put =
      document.paths["/schedules/{id}"]?.put?.requestBody?.content["application/json"]?.schema;
    expect(put?.required).toEqual(["cron", "handler"]);
  });

  it("needs the bearer, GET and HEAD alike; other methods are 405", async () => {
    const app = makeApp(prefix(), { now: T0 });
    expect((await app.request("/openapi.json")).status).toBe(401);
    expect((await app.request("/openapi.json", { method: "HEAD" })).status).toBe(401);
    const head = await app.request("/openapi.json", { method: "HEAD", headers: auth });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toMatch(/application\/json/);
    expect(await head.text()).toBe("");
    const post = await app.request("/openapi.json", { method: "POST", headers: auth });
    expect(post.status).toBe(405);
  });

  it("its response schemas are what the routes answer", async () => {
    const clock = { now: T0 };
    const app = makeApp(prefix(), clock);
    const call = async (schema: v.GenericSchema, path: string, init: RequestInit = {}) => {
      const response = await app.request(path, {
        ...init,
        headers: { ...auth, "content-type": "application/json" },
      });
      expect(response.status, path).toBeLessThan(300);
      return v.parse(schema, await response.json());
    };
    const body = JSON.stringify({ cron: "* * * * *", handler: "mail", payload: { a: 1 } });
    await call(ScheduleWriteJson, "/schedules/m", { method: "PUT", body });
    clock.now += 60_000;
    await call(TickJson, "/dispatch");
    const clocks = (await call(DispatchSourcesJson, "/dispatch/sources")) as DispatchSourcesJson;
    expect(clocks.sources.map((s) => s.source)).toEqual(["http"]);
    await call(ScheduleStatusJson, "/schedules/m");
    await call(ScheduleListJson, "/schedules");
    await call(SchedulePatchJson, "/schedules/m", {
      method: "PATCH",
      body: JSON.stringify({ maxAttempts: 4 }),
    });
    await call(ScheduleSlotJson, "/schedules/m/slots/2026-11-25T12:01:00Z");
    await call(ScheduleDeletedJson, "/schedules/m?purge=true", { method: "DELETE" });
  });
});
