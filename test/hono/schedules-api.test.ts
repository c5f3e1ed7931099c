/**
 * Issue 21, "Schedules API that fits": PATCH, ISO timestamps, a fixed key order, `summary` as
 * JSON, the missing-handler message and `DELETE ?purge=true`, through app.request against a real
 * redis-server behind the bridge. Every refused request is checked to have written nothing.
 */
import type { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import { createCronApp } from "../../src/hono/index.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "s3cret-for-schedules-api";
const auth = { authorization: `Bearer ${SECRET}` };
const T0 = Date.UTC(2026, 10, 25, 12, 0, 30);
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/;

/** The order every schedule answer lists its fields in. */
const SCHEDULE_KEYS = [
  "id",
  "handler",
  "cron",
  "timezone",
  "enabled",
  "next",
  "attempt",
  "payload",
  "catchUp",
  "catchUpLimit",
  "maxAttempts",
  "version",
  "fingerprint",
  "createdAt",
  "updatedAt",
];
const RUN_KEYS = [
  "id",
  "slot",
  "status",
  "forced",
  "fence",
  "region",
  "finishedAt",
  "durationMs",
  "summary",
];

function makeApp(prefix: string, clock: { now: number }) {
  return createCronApp<Redis>({
    plugins: [dynamicSchedules()],
    redis: upstash(),
    handlers: {
      mail: () => "mailed u-42",
      count: () => ({ sent: 2, to: ["a", "b"] }),
      quiet: () => undefined,
    },
    cronSecret: () => SECRET,
    guardOptions: { prefix, clock: () => clock.now },
  });
}

const send = (method: string, body?: unknown) => ({
  method,
  headers: { ...auth, "content-type": "application/json" },
  ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
});

type Json = Record<string, unknown>;

describe("the schedules API (issue 21)", () => {
  const prefix = useKeyPrefix("schedules-api");
  const definitions = async () =>
    (await directRedis()).hGetAll(`${prefix()}:{schedules}:defs`) as Promise<
      Record<string, string>
    >;
  const keysWritten = async () => (await directRedis()).keys(`${prefix()}*`);

  const create = async (app: ReturnType<typeof makeApp>, id: string, body: Json) => {
    const response = await app.request(`/schedules/${id}`, send("PUT", body));
    expect(response.status).toBe(201);
    return (await response.json()) as { schedule: Json };
  };

  describe("PATCH /schedules/:id", () => {
    it("changes only the fields it names; PUT still replaces the whole schedule", async () => {
      const clock = { now: T0 };
      const app = makeApp(prefix(), clock);
      await create(app, "digest", {
        cron: "0 7 * * *",
        timezone: "Europe/Berlin",
        handler: "mail",
        payload: { to: "eu" },
        maxAttempts: 5,
        catchUp: "all",
      });
      clock.now += 1_000;
      const patched = await app.request("/schedules/digest", send("PATCH", { cron: "0 8 * * *" }));
      expect(patched.status).toBe(200);
      const body = (await patched.json()) as { outcome: string; schedule: Json };
      expect(body.outcome).toBe("updated");
      expect(body.schedule).toMatchObject({
        id: "digest",
        cron: "0 8 * * *",
        timezone: "Europe/Berlin",
        handler: "mail",
        payload: { to: "eu" },
        maxAttempts: 5,
        catchUp: "all",
        enabled: true,
        version: 2,
        next: "2026-11-26T07:00:00Z",
        createdAt: new Date(T0).toISOString(),
        updatedAt: new Date(T0 + 1_000).toISOString(),
      });
      const same = await app.request("/schedules/digest", send("PATCH", { cron: "0 8 * * *" }));
      expect(await same.json()).toMatchObject({ outcome: "unchanged", schedule: { version: 2 } });

      const paused = await app.request("/schedules/digest", send("PATCH", { enabled: false }));
      expect(await paused.json()).toMatchObject({ schedule: { enabled: false, next: null } });

      const replaced = await app.request(
        "/schedules/digest",
        send("PUT", { cron: "0 8 * * *", handler: "mail" }),
      );
      expect(replaced.status).toBe(200);
      expect(await replaced.json()).toMatchObject({
        outcome: "updated",
        schedule: { timezone: "UTC", payload: null, maxAttempts: 3, catchUp: "latest" },
      });
    });

    it.each([
      ["an empty object", {}, "body"],
      ["not JSON", "{cron:", "body"],
      ["an array", "[]", "body"],
      ["an unknown field", { owner: "me" }, "owner"],
      ["another id", { id: "other" }, "id"],
      ["an invalid cron", { cron: "99 * * * *" }, "cron"],
      ["a bad time zone", { timezone: "Nowhere/City" }, "timezone"],
      ["an unknown handler", { handler: "rm-rf" }, "handler"],
      ["maxAttempts 0", { maxAttempts: 0 }, "maxAttempts"],
      ["enabled as a string", { enabled: "yes" }, "enabled"],
      ["a payload over 16 KiB", { payload: "x".repeat(20_000) }, "payload"],
    ])("refuses %s with 400 naming the field, changing nothing", async (_what, body, field) => {
      const app = makeApp(prefix(), { now: T0 });
      await create(app, "digest", { cron: "0 7 * * *", handler: "mail" });
      const before = await definitions();
      const response = await app.request("/schedules/digest", send("PATCH", body));
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ field, error: expect.any(String) });
      expect(await definitions()).toEqual(before);
    });

    it("answers 404 JSON for an unknown id and writes nothing", async () => {
      const app = makeApp(prefix(), { now: T0 });
      const response = await app.request("/schedules/ghost", send("PATCH", { cron: "* * * * *" }));
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: 'no schedule "ghost"' });
      expect(await keysWritten()).toEqual([]);
    });

    it("concurrent PATCHes of different fields all land: none loses another's field", async () => {
      const app = makeApp(prefix(), { now: T0 });
      await create(app, "busy", { cron: "0 7 * * *", handler: "mail" });
      const changes: Json[] = [
        { payload: { n: 1 } },
        { maxAttempts: 7 },
        { catchUp: "skip" },
        { catchUpLimit: 42 },
        { timezone: "Asia/Tokyo" },
        { handler: "count" },
        { cron: "30 6 * * *" },
        { enabled: false },
      ];
      const answers = await Promise.all(
        changes.map((change) => app.request("/schedules/busy", send("PATCH", change))),
      );
      expect(answers.map((answer) => answer.status)).toEqual(changes.map(() => 200));
      const read = (await (await app.request("/schedules/busy", { headers: auth })).json()) as {
        schedule: Json;
      };
      expect(read.schedule).toMatchObject(Object.assign({}, ...changes));
      expect(read.schedule.version).toBe(1 + changes.length);
    });
  });

  it("answers every timestamp in ISO-8601, every schedule and run in one key order, and summary as JSON", async () => {
    const clock = { now: T0 };
    const app = makeApp(prefix(), clock);
    const put = await create(app, "m", { cron: "* * * * *", handler: "mail" });
    expect(Object.keys(put.schedule)).toEqual(SCHEDULE_KEYS);
    await create(app, "c", { payload: { b: 1, a: 2 }, handler: "count", cron: "* * * * *" });
    await create(app, "q", { handler: "quiet", cron: "* * * * *" });
    clock.now = T0 + 60_000;
    expect((await app.request("/dispatch", { headers: auth })).status).toBe(200);

    const one = (await (await app.request("/schedules/m", { headers: auth })).json()) as {
      schedule: Json;
      runs: Json[];
      slots: { state: Json | null }[];
    };
    expect(Object.keys(one.schedule)).toEqual(SCHEDULE_KEYS);
    expect(one.schedule.createdAt).toMatch(ISO);
    expect(one.schedule.updatedAt).toMatch(ISO);
    expect(one.runs).toHaveLength(1);
    expect(Object.keys(one.runs[0] as Json)).toEqual(RUN_KEYS);
    expect(one.runs[0]).toMatchObject({ status: "done", summary: "mailed u-42" });
    expect((one.runs[0] as Json).finishedAt).toMatch(ISO);
    const state = one.slots[0]?.state as Json;
    expect(state.startedAt).toMatch(ISO);
    expect(state.finishedAt).toMatch(ISO);
    expect(state.summary).toBe("mailed u-42");
    expect(state).not.toHaveProperty("token");

    const counted = (await (await app.request("/schedules/c", { headers: auth })).json()) as {
      runs: Json[];
    };
    expect(counted.runs[0]?.summary).toEqual({ sent: 2, to: ["a", "b"] });
    const quiet = (await (await app.request("/schedules/q", { headers: auth })).json()) as {
      runs: Json[];
    };
    expect(quiet.runs[0]?.summary).toBeNull();

    const list = (await (await app.request("/schedules", { headers: auth })).json()) as {
      schedules: Json[];
    };
    expect(list.schedules).toHaveLength(3);
    for (const schedule of list.schedules) expect(Object.keys(schedule)).toEqual(SCHEDULE_KEYS);

    for (const action of ["pause", "resume"]) {
      const answer = (await (
        await app.request(`/schedules/c/${action}`, { method: "POST", headers: auth })
      ).json()) as { schedule: Json };
      expect(Object.keys(answer.schedule)).toEqual(SCHEDULE_KEYS);
    }
    const patched = (await (
      await app.request("/schedules/c", send("PATCH", { payload: { z: 1 } }))
    ).json()) as { schedule: Json };
    expect(Object.keys(patched.schedule)).toEqual(SCHEDULE_KEYS);

    const slot = (await (
      await app.request("/schedules/m/slots/2026-11-25T12:01:00Z", { headers: auth })
    ).json()) as { attempts: { runs: Json[]; holder: Json | null }[] };
    expect(slot.attempts[0]?.runs[0]?.finishedAt).toMatch(ISO);
    expect(slot.attempts[0]?.holder?.finishedAt).toMatch(ISO);
    expect(slot.attempts[0]?.holder?.summary).toBe("mailed u-42");
  });

  it("names the field and the registered handlers when the handler is unknown or absent", async () => {
    const app = makeApp(prefix(), { now: T0 });
    const unknown = await app.request(
      "/schedules/x",
      send("PUT", { cron: "* * * * *", handler: "x" }),
    );
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({
      error: 'handler: "x" is not registered; registered: mail, count, quiet',
      field: "handler",
    });
    const absent = await app.request("/schedules/x", send("PUT", { cron: "* * * * *" }));
    expect(absent.status).toBe(400);
    expect(await absent.json()).toEqual({
      error: "handler: is required; registered: mail, count, quiet",
      field: "handler",
    });
    const number = await app.request(
      "/schedules/x",
      send("PUT", { cron: "* * * * *", handler: 7 }),
    );
    expect(await number.json()).toMatchObject({
      error:
        "handler: must be the name of a registered handler, got 7; registered: mail, count, quiet",
    });
    expect(await keysWritten()).toEqual([]);
  });

  describe("DELETE /schedules/:id", () => {
    const runOnce = async (app: ReturnType<typeof makeApp>, clock: { now: number }) => {
      await create(app, "gone", { cron: "* * * * *", handler: "mail" });
      clock.now += 60_000;
      expect(await (await app.request("/dispatch", { headers: auth })).json()).toMatchObject({
        ran: 1,
      });
    };
    const jobKeys = async () => (await directRedis()).keys(`${prefix()}:{gone}:*`);

    it("keeps the history: a schedule created again under the id shows the deleted one's runs", async () => {
      const clock = { now: T0 };
      const app = makeApp(prefix(), clock);
      await runOnce(app, clock);
      const deleted = await app.request("/schedules/gone", { method: "DELETE", headers: auth });
      expect(await deleted.json()).toEqual({ deleted: "gone", purged: false });
      expect(await definitions()).toEqual({});
      expect(await jobKeys()).not.toEqual([]);
      await create(app, "gone", { cron: "* * * * *", handler: "mail" });
      const again = (await (await app.request("/schedules/gone", { headers: auth })).json()) as {
        runs: unknown[];
      };
      expect(again.runs).toHaveLength(1);
    });

    it("?purge=true deletes the schedule with its history, ledger and slot keys", async () => {
      const clock = { now: T0 };
      const app = makeApp(prefix(), clock);
      await runOnce(app, clock);
      const fenceBefore = await (await directRedis()).get(`${prefix()}:{gone}:fence`);
      const deleted = await app.request("/schedules/gone?purge=true", {
        method: "DELETE",
        headers: auth,
      });
      expect(deleted.status).toBe(200);
      expect(await deleted.json()).toEqual({ deleted: "gone", purged: true });
      expect(await definitions()).toEqual({});
      // Only the fence stays, so that fencing tokens never go back.
      expect(await jobKeys()).toEqual([`${prefix()}:{gone}:fence`]);
      expect(await (await directRedis()).get(`${prefix()}:{gone}:fence`)).toBe(fenceBefore);
      await create(app, "gone", { cron: "* * * * *", handler: "mail" });
      const again = (await (await app.request("/schedules/gone", { headers: auth })).json()) as {
        runs: unknown[];
      };
      expect(again.runs).toEqual([]);
      const purgedAgain = await app.request("/schedules/nothing?purge=1", {
        method: "DELETE",
        headers: auth,
      });
      expect(purgedAgain.status).toBe(404);
    });

    it.each(["yes", "false", "0", "", "TRUE", "true&purge=false", "1&purge=1"])(
      "refuses ?purge=%s with 400 and deletes nothing",
      async (value) => {
        const clock = { now: T0 };
        const app = makeApp(prefix(), clock);
        await runOnce(app, clock);
        const before = await keysWritten();
        const response = await app.request(`/schedules/gone?purge=${value}`, {
          method: "DELETE",
          headers: auth,
        });
        expect(response.status).toBe(400);
        expect(await response.json()).toMatchObject({ field: "purge" });
        expect((await keysWritten()).sort()).toEqual(before.sort());
      },
    );
  });
});
