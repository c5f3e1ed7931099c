import { type Handler, Hono } from "hono";
import { describe, expect, it } from "vitest";
import { upstash, useKeyPrefix } from "../../../test/support/harness.js";
import { createGuard } from "../../core/index.js";
import { type CronGuardEnv, cronGuard } from "./index.js";

const NOW = Date.UTC(2026, 10, 23, 10, 0, 2);

describe("cronGuard middleware", () => {
  const prefix = useKeyPrefix("mw");

  function appWith(handler: Handler<CronGuardEnv>) {
    const guard = createGuard({ redis: upstash(), prefix: prefix(), clock: () => NOW });
    const app = new Hono<CronGuardEnv>();
    app.get("/hourly", cronGuard({ guard, job: "hourly", cron: "0 * * * *" }), handler);
    return app;
  }

  it("lets the first invocation through with ran headers and skips the next with 204", async () => {
    const app = appWith((c) =>
      c.text(`slot ${c.get("cronGuard").slot} fence ${c.get("cronGuard").fence}`),
    );
    const ran = await app.request("/hourly");
    expect(ran.status).toBe(200);
    expect(await ran.text()).toMatch(/^slot 2026-11-23T10:00:00Z fence \d+$/);
    expect(ran.headers.get("cron-guard-status")).toBe("ran");
    expect(ran.headers.get("content-type")).toMatch(/text\/plain/);
    const skipped = await app.request("/hourly");
    expect(skipped.status).toBe(204);
    expect(skipped.headers.get("cron-guard-reason")).toBe("done");
  });

  it("records a handler's 5xx answer as a failure so a retry may run", async () => {
    let calls = 0;
    const app = appWith((c) => {
      calls += 1;
      return c.json({ error: "upstream down" }, calls === 1 ? 502 : 200);
    });
    const failed = await app.request("/hourly");
    expect(failed.status).toBe(500);
    expect(await failed.json()).toMatchObject({ error: expect.stringMatching(/HTTP 502/) });
    const retried = await app.request("/hourly");
    expect(retried.status).toBe(200);
    expect(calls).toBe(2);
  });

  it("answers 500 JSON when the handler throws", async () => {
    const app = appWith(() => {
      throw new Error("disk full");
    });
    const response = await app.request("/hourly");
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: expect.stringMatching(/disk full/) });
  });

  it("rejects an invalid job name or cron when the middleware is created", () => {
    const guard = createGuard({ redis: upstash(), prefix: prefix() });
    expect(() => cronGuard({ guard, job: "no spaces", cron: "* * * * *" })).toThrow(
      /invalid job name/,
    );
    expect(() => cronGuard({ guard, job: "ok", cron: "every minute" })).toThrow(/cron/);
  });
});
