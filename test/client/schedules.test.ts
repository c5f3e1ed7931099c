/**
 * `cron-guard/client` against a real app (createCronApp over the harness's @upstash/redis client
 * and redis-server), its fetch served by `app.request`.
 */
import type { Redis } from "@upstash/redis";
import { describe, expect, expectTypeOf, it } from "vitest";
import {
  createScheduleClient,
  ScheduleApiError,
  type ScheduleJson,
} from "../../src/client/index.js";
import { createCronApp } from "../../src/hono/index.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "s3cret-for-the-client";
const T0 = Date.UTC(2026, 10, 25, 12, 0, 30);

function setup(prefix: string, clock: { now: number }, secret = SECRET) {
  const app = createCronApp<Redis>({
    plugins: [dynamicSchedules()],
    redis: upstash(),
    handlers: { mail: ({ payload }) => `mailed ${(payload as { to: string }).to}` },
    cronSecret: () => SECRET,
    guardOptions: { prefix, clock: () => clock.now },
  });
  const client = createScheduleClient({
    url: "https://cron.example.com/",
    secret,
    fetch: async (request) => app.request(request),
  });
  return { app, client };
}

describe("createScheduleClient", () => {
  const prefix = useKeyPrefix("client");

  it("puts, lists, gets, patches, pauses, resumes, dispatches, reads a slot and deletes, typed", async () => {
    const clock = { now: T0 };
    const { client } = setup(prefix(), clock);
    const created = await client.put("digest", {
      cron: "* * * * *",
      handler: "mail",
      payload: { to: "u-42" },
    });
    expect(created).toMatchObject({ outcome: "created", schedule: { id: "digest", version: 1 } });
    expectTypeOf(created.schedule).toEqualTypeOf<ScheduleJson>();
    expectTypeOf(created.schedule.createdAt).toEqualTypeOf<string>();

    const page = await client.list({ limit: 10 });
    expect(page.schedules.map((s) => s.id)).toEqual(["digest"]);
    expect(page.cursor).toBeNull();

    const patched = await client.patch("digest", { maxAttempts: 5 });
    expect(patched).toMatchObject({ outcome: "updated", schedule: { maxAttempts: 5, version: 2 } });

    expect((await client.pause("digest")).schedule.enabled).toBe(false);
    expect((await client.resume("digest")).schedule.enabled).toBe(true);

    clock.now += 60_000;
    expect(await client.dispatch()).toMatchObject({ ran: 1 });
    const status = await client.get("digest");
    expect(status?.runs[0]).toMatchObject({ status: "done", summary: "mailed u-42" });
    const slot = await client.slot("digest", new Date(Date.UTC(2026, 10, 25, 12, 1)));
    expect(slot).toMatchObject({ slot: "2026-11-25T12:01:00Z", status: "ran" });

    expect(await client.delete("digest", { purge: true })).toEqual({
      deleted: "digest",
      purged: true,
    });
    expect(await client.get("digest")).toBeNull();
    expect(await (await directRedis()).keys(`${prefix()}:{schedules}:*`)).toEqual([]);
  });

  it("throws ScheduleApiError with the status and the app's body on a non-2xx answer", async () => {
    const { client } = setup(prefix(), { now: T0 });
    const refused = await client
      .put("digest", { cron: "* * * * *", handler: "nope" })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ScheduleApiError);
    expect(refused).toMatchObject({
      name: "ScheduleApiError",
      status: 400,
      body: { field: "handler", error: 'handler: "nope" is not registered; registered: mail' },
      message: 'PUT /schedules/digest: 400 handler: "nope" is not registered; registered: mail',
    });
    await expect(client.patch("ghost", { cron: "0 * * * *" })).rejects.toMatchObject({
      status: 404,
    });
    await expect(client.delete("ghost")).rejects.toMatchObject({ status: 404 });

    const wrong = setup(prefix(), { now: T0 }, "not-the-secret").client;
    await expect(wrong.list()).rejects.toMatchObject({ status: 401 });
  });

  it("says when no answer came: status 0, the network error as cause", async () => {
    const down = new TypeError("fetch failed");
    const client = createScheduleClient({
      url: "https://cron.example.com/base",
      secret: SECRET,
      fetch: async () => {
        throw down;
      },
    });
    const error = await client.list().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ScheduleApiError);
    expect(error).toMatchObject({
      status: 0,
      cause: down,
      message: "GET /base/schedules: no answer",
    });
  });
});
