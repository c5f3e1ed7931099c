/**
 * Code jobs and time zones (issue 18, finding 11). A job declared in code runs when the platform
 * fires its cron, and Cloudflare and Vercel fire crons in UTC: a code job whose cron is read in
 * another time zone can never run at its own fire times. Such a job is refused when the app is
 * created; the way out is a dynamic schedule (which has a time zone and is dispatched every
 * minute) or a cron written in UTC.
 */
import type { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/index.js";
import { type Bindings, type CronJob, createCronApp } from "../../src/hono/index.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "deployment-s3cret";
const NINE_UTC = Date.UTC(2026, 11, 7, 9, 0, 0); // a Monday in winter: 10:00 in Berlin

describe("code jobs and time zones", () => {
  const prefix = useKeyPrefix("deployment");

  const berlinJob = (runs: string[]): CronJob<Bindings, Redis> => ({
    name: "nightly",
    cron: "0 9 * * *",
    timezone: "Europe/Berlin",
    handler: ({ slot }) => {
      runs.push(slot);
    },
  });

  function create(jobs: CronJob<Bindings, Redis>[]) {
    return createCronApp<Redis>({
      redis: upstash(),
      jobs,
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock: () => NINE_UTC },
    });
  }

  function creationError(jobs: CronJob<Bindings, Redis>[]): unknown {
    try {
      create(jobs);
    } catch (error) {
      return error;
    }
    return undefined;
  }

  it("refuses a code job in Europe/Berlin at creation: ConfigError naming the job, timezone and the way out", async () => {
    const runs: string[] = [];
    const error = creationError([berlinJob(runs)]);
    expect(error).toBeInstanceOf(ConfigError);
    const config = error as ConfigError;
    expect(config.option).toBe("timezone");
    expect(config.message).toContain('job "nightly"');
    expect(config.message).toContain("Europe/Berlin");
    expect(config.message).toMatch(/UTC/);
    // What to do instead: a dynamic schedule with that time zone, or the cron written in UTC.
    expect(config.message).toMatch(/schedules/);
    expect(config.message).toMatch(/dispatch/);
    expect(runs).toEqual([]);
    const redis = await directRedis();
    expect(await redis.keys(`${prefix()}*`)).toEqual([]);
  });

  it("never lets runScheduled turn the platform's 09:00Z fire into slot 08:00Z (the finding)", async () => {
    const runs: string[] = [];
    let app: ReturnType<typeof create> | undefined;
    try {
      app = create([berlinJob(runs)]);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
    }
    if (app) {
      await app.runScheduled({ cron: "0 9 * * *", scheduledTime: NINE_UTC }, {});
    }
    expect(runs).not.toContain("2026-12-07T08:00:00Z");
    expect(runs).toEqual([]);
  });

  it.each(["America/New_York", "Asia/Kolkata", "Europe/London"])(
    "refuses %s too, whatever the cron (even one whose fire times happen to agree with UTC)",
    (timezone) => {
      for (const cron of ["0 9 * * *", "* * * * *"]) {
        const error = creationError([
          { name: "job", cron, timezone, handler: () => undefined } as CronJob<Bindings, Redis>,
        ]);
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).option).toBe("timezone");
      }
    },
  );

  it.each(["UTC", "Etc/UTC", "GMT", "utc"])(
    "accepts %s (UTC by another name) and runs the platform's fire as its own slot",
    async (timezone) => {
      const runs: string[] = [];
      const app = create([
        {
          name: "nine",
          cron: "0 9 * * *",
          timezone,
          handler: ({ slot }) => {
            runs.push(slot);
          },
        },
      ]);
      const [run] = await app.runScheduled({ cron: "0 9 * * *", scheduledTime: NINE_UTC }, {});
      expect(run).toMatchObject({ job: "nine", slot: "2026-12-07T09:00:00Z" });
      expect(runs).toEqual(["2026-12-07T09:00:00Z"]);
    },
  );

  it("still names an unknown time zone as such", () => {
    const error = creationError([
      { name: "job", cron: "0 9 * * *", timezone: "Mars/Olympus", handler: () => undefined },
    ]);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe("timezone");
    expect((error as ConfigError).message).toMatch(/unknown IANA time zone "Mars\/Olympus"/);
  });

  it("the way out works: the same 09:00 Berlin as a schedule is dispatched at 08:00Z in winter", async () => {
    const runs: string[] = [];
    let nowMs = Date.UTC(2026, 11, 7, 8, 0, 1);
    const app = createCronApp<Redis>({
      plugins: [dynamicSchedules()],
      redis: upstash(),
      handlers: {
        report: ({ slot }) => {
          runs.push(slot);
        },
      },
      schedules: [
        { id: "nightly", cron: "0 9 * * *", timezone: "Europe/Berlin", handler: "report" },
      ],
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock: () => nowMs },
    });
    // The schedule is registered before the first tick and fires from then on.
    nowMs = Date.UTC(2026, 11, 6, 12, 0, 0);
    await app.runScheduled({ cron: "* * * * *", scheduledTime: nowMs }, {});
    nowMs = Date.UTC(2026, 11, 7, 8, 0, 1);
    await app.runScheduled({ cron: "* * * * *", scheduledTime: Date.UTC(2026, 11, 7, 8) }, {});
    expect(runs).toEqual(["2026-12-07T08:00:00Z"]);
  });
});
