/**
 * Alerts never delay a run or a tick (issue 18, finding 7): the webhook here accepts each POST and
 * never answers. A failing schedule's alerts (the failed run, its dead fire) are sent under
 * `waitUntil` when the platform has one and detached otherwise, each bounded by the alert timeout;
 * `/dispatch` answers long before that timeout.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createCronApp } from "../../src/hono/index.js";
import { alerts } from "../../src/hono/plugins/alerts.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "hanging-alerts-s3cret";
const auth = { authorization: `Bearer ${SECRET}` };
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
/** The alert timeout: every timing below stays far under it. */
const ALERT_TIMEOUT_MS = 8_000;

let server: Server;
let url = "";
const arrived: IncomingMessage[] = [];

beforeAll(async () => {
  // Reads each alert and never answers it.
  server = createServer((request) => {
    arrived.push(request);
    request.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/hook`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe("alerts to a webhook that never answers", () => {
  const prefix = useKeyPrefix("hanging-alerts");

  function makeApp(clock: { now: number }) {
    return createCronApp<Redis>({
      plugins: [dynamicSchedules(), alerts()],
      redis: upstash(),
      handlers: {
        fail: () => {
          throw new Error("upstream 502");
        },
      },
      schedules: [{ id: "report", cron: "* * * * *", handler: "fail", maxAttempts: 1 }],
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock: () => clock.now },
      alerts: { url, timeoutMs: ALERT_TIMEOUT_MS },
    });
  }

  const waitForAlerts = async (count: number) => {
    for (let i = 0; i < 100 && arrived.length < count; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  it.each([
    ["without waitUntil (detached)", false],
    ["with the platform's waitUntil", true],
  ])(
    "/dispatch %s answers well before the alert timeout, its failed run recorded",
    async (_what, withWaitUntil) => {
      arrived.length = 0;
      vi.spyOn(console, "error").mockImplementation(() => {});
      const clock = { now: T0 + 1_000 };
      const app = makeApp(clock);
      expect((await app.request("/schedules", { headers: auth })).status).toBe(200);
      clock.now = T0 + MINUTE + 2_000; // the 12:01 fire is due
      const handed: Promise<unknown>[] = [];
      const executionCtx = {
        waitUntil: (promise: Promise<unknown>) => handed.push(promise),
        passThroughOnException: () => {},
        props: {},
      };
      const startedAt = performance.now();
      const response = await app.request(
        "/dispatch",
        { headers: auth },
        {},
        withWaitUntil ? executionCtx : undefined,
      );
      const elapsedMs = performance.now() - startedAt;
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ ran: 0, failed: 1, dead: 1, errors: 0 });
      // A hanging alert awaited anywhere would hold the answer for ALERT_TIMEOUT_MS (8 s).
      expect(elapsedMs).toBeLessThan(ALERT_TIMEOUT_MS / 4);
      // The run's failure was recorded and the fire moved on, before any alert was answered.
      const status = (await (await app.request("/schedules/report", { headers: auth })).json()) as {
        schedule: { next: string };
        runs: { slot: string; status: string }[];
      };
      expect(status.runs).toMatchObject([{ slot: "2026-11-25T12:01:00Z", status: "failed" }]);
      expect(status.schedule.next).toBe("2026-11-25T12:02:00Z");
      // The alerts did go out (failed and dead), and are still waiting for their answer.
      await waitForAlerts(2);
      expect(arrived.length).toBe(2);
      if (withWaitUntil) expect(handed.length).toBeGreaterThanOrEqual(2);
      vi.restoreAllMocks();
    },
  );
});
