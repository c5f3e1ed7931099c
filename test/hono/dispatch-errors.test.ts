/**
 * The right status for every error of the schedule routes (issue 18, finding 9): a cursor Redis
 * would refuse is a 400 that writes nothing; a store that cannot be reached is a 503 with a JSON
 * error on every /schedules, /dispatch and /dashboard data route, never a 500.
 */
import type { Redis } from "@upstash/redis";
import { describe, expect, it, vi } from "vitest";
import { createCronApp } from "../../src/hono/index.js";
import { dashboard } from "../../src/hono/plugins/dashboard.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "errors-s3cret";
const auth = { authorization: `Bearer ${SECRET}` };
const T0 = Date.UTC(2026, 10, 25, 12, 0, 30);

function makeApp(prefix: string, redis: Redis) {
  return createCronApp<Redis>({
    plugins: [dynamicSchedules(), dashboard()],
    redis,
    handlers: { record: () => "recorded" },
    schedules: [{ id: "code-declared", cron: "* * * * *", handler: "record" }],
    cronSecret: () => SECRET,
    guardOptions: { prefix, clock: () => T0 },
  });
}

describe("error answers of the schedule routes", () => {
  const prefix = useKeyPrefix("schedule-errors");

  it("answers a cursor past Redis's 64-bit range with 400 JSON, writing nothing", async () => {
    const app = makeApp(prefix(), upstash());
    for (const cursor of ["99999999999999999999", "18446744073709551616"]) {
      const response = await app.request(`/schedules?cursor=${cursor}`, { headers: auth });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: expect.any(String), field: "cursor" });
    }
    // the largest cursor Redis accepts is a valid request
    const largest = await app.request("/schedules?cursor=18446744073709551615", { headers: auth });
    expect(largest.status).toBe(200);
    await directRedis(); // (keys of the code-declared schedule were written by the valid one)
    const keys = await (await directRedis()).keys(`${prefix()}*`);
    expect(keys.every((key) => key.includes("{schedules}"))).toBe(true);
  });

  it("answers 503 JSON on every route while the store is down", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const down = upstash({ url: "http://127.0.0.1:9" });
    const app = makeApp(prefix(), down);
    const json = { ...auth, "content-type": "application/json" };
    const requests: [string, string, RequestInit?][] = [
      ["GET", "/schedules"],
      ["GET", "/schedules?cursor=0&limit=10"],
      ["PUT", "/schedules/x", { body: JSON.stringify({ cron: "* * * * *", handler: "record" }) }],
      ["GET", "/schedules/x"],
      ["DELETE", "/schedules/x"],
      ["POST", "/schedules/x/pause"],
      ["POST", "/schedules/x/resume"],
      ["GET", "/dispatch"],
      ["POST", "/dispatch"],
      ["GET", "/dispatch/sources"],
      ["GET", "/dashboard/data"],
      ["POST", "/dashboard/schedules/x/run"],
    ];
    for (const [method, path, init] of requests) {
      const response = await app.request(path, { method, headers: json, ...init });
      expect({ method, path, status: response.status }).toEqual({ method, path, status: 503 });
      const body = (await response.json()) as { error: string };
      expect(body.error).toMatch(/store/i);
      expect(body.error).not.toMatch(/internal error/);
    }
    vi.restoreAllMocks();
  });
});
