/**
 * Alerts: a local HTTP receiver counts the webhook's POSTs. Each event is claimed in Redis (SET NX
 * under the job's hash tag) before it is sent, so many instances that see it send it once.
 */
import { createHmac } from "node:crypto";
import type { Redis } from "@upstash/redis";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import { createAlertSender } from "../../src/core/monitoring/alerts.js";
import { verifyAlertSignature } from "../../src/core/monitoring/index.js";
import { createCronApp } from "../../src/hono/index.js";
import { alerts as alertsPlugin } from "../../src/hono/plugins/alerts.js";
import { dashboard } from "../../src/hono/plugins/dashboard.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import type { AlertOptions } from "../../src/hono/types.js";
import { useAlertReceiver } from "../support/alert-receiver.js";
import { upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "alerts-s3cret";
const auth = { authorization: `Bearer ${SECRET}` };
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const at = (minutes: number, seconds = 0) => T0 + minutes * MINUTE + seconds * 1_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");

const receiver = useAlertReceiver();
const { received, deliveries } = receiver;
const secretFromProcess = process.env.CRON_GUARD_ALERT_SECRET;
beforeEach(() => {
  delete process.env.CRON_GUARD_ALERT_SECRET;
});
afterEach(() => {
  vi.restoreAllMocks();
  if (secretFromProcess === undefined) delete process.env.CRON_GUARD_ALERT_SECRET;
  else process.env.CRON_GUARD_ALERT_SECRET = secretFromProcess;
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 200));
/**
 * Waits (up to 10 s: alerts go out beside the answer, later on a loaded machine) until what a test
 * expects has arrived, then settles, so a duplicate that would follow still gets counted.
 */
async function settleAfter(arrived: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!arrived() && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  await settle();
}

describe("alerts", () => {
  const prefix = useKeyPrefix("alerts");

  function makeApp(
    clock: { now: number },
    alertUrl = receiver.url,
    alerts: Omit<AlertOptions, "url"> = {},
  ) {
    return createCronApp<Redis>({
      plugins: [dynamicSchedules(), dashboard(), alertsPlugin()],
      redis: upstash(),
      jobs: [
        {
          name: "boom",
          cron: "* * * * *",
          handler: () => {
            throw new Error("disk full");
          },
        },
        { name: "tick", cron: "* * * * *", handler: () => "ok" },
      ],
      handlers: {
        fail: () => {
          throw new Error("upstream 502");
        },
      },
      schedules: [{ id: "nightly-report", cron: "* * * * *", handler: "fail", maxAttempts: 1 }],
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock: () => clock.now, region: "iad1" },
      monitor: { graceMs: 60_000 },
      alerts: { url: alertUrl, ...alerts },
    });
  }

  it("a failing job with 20 concurrent deliveries posts exactly one alert", async () => {
    const clock = { now: at(0, 1) };
    const apps = Array.from({ length: 4 }, () => makeApp(clock));
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (apps[i % apps.length] as (typeof apps)[number]).request("/cron/boom", {
          headers: { ...auth, "x-vercel-cron-schedule": "* * * * *" },
        }),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses).toContain(500);
    expect(statuses.every((status) => status === 500 || status === 204)).toBe(true);
    await settleAfter(() => received.length >= 1);
    expect(received).toHaveLength(1);
    expect(received[0]).toEqual({
      kind: "failed",
      job: "boom",
      source: "job",
      slot: iso(at(0)),
      slots: [iso(at(0))],
      fence: expect.any(Number),
      region: "iad1",
      error: "disk full",
      at: new Date(clock.now).toISOString(),
      prefix: prefix(),
      text: `cron-guard: job boom failed at ${iso(at(0))}: disk full`,
      content: `cron-guard: job boom failed at ${iso(at(0))}: disk full`,
      allowed_mentions: { parse: [] },
    });
  });

  it("a missed fire posts one alert however many instances see it", async () => {
    const clock = { now: at(0, 1) };
    const first = makeApp(clock);
    expect((await first.request("/cron/tick", { headers: auth })).status).toBe(200);
    clock.now = at(2, 30); // 12:01 is missed (grace 60 s); 12:02 is still within the grace
    const apps = Array.from({ length: 5 }, () => makeApp(clock));
    const statuses = await Promise.all(
      apps.flatMap((app) => [
        app.request("/cron/tick/status", { headers: auth }),
        app.request("/dashboard/data", { headers: auth }),
      ]),
    );
    expect(statuses.map((response) => response.status)).toEqual(Array(10).fill(200));
    await settleAfter(() => received.some((body) => body.kind === "missed" && body.job === "tick"));
    const missed = received.filter((body) => body.kind === "missed" && body.job === "tick");
    expect(missed).toHaveLength(1);
    expect(missed[0]).toMatchObject({
      source: "job",
      slot: iso(at(1)),
      slots: [iso(at(1))],
      text: `cron-guard: job tick missed ${iso(at(1))}: no run started within the grace period`,
    });
    // a later sighting of the same fire sends nothing; a newly missed fire sends one more
    clock.now = at(3, 30);
    await (apps[0] as (typeof apps)[number]).request("/cron/tick/status", { headers: auth });
    await settleAfter(
      () => received.filter((body) => body.kind === "missed" && body.job === "tick").length >= 2,
    );
    expect(
      received.filter((body) => body.kind === "missed" && body.job === "tick").map((b) => b.slots),
    ).toEqual([[iso(at(1))], [iso(at(2))]]);
  });

  it("a dispatch tick alerts the failed attempt and the dead fire once, and the periodic check finds missed fires", async () => {
    const clock = { now: at(0, 1) };
    const apps = Array.from({ length: 3 }, () => makeApp(clock));
    // the code-declared schedule is stored (first fire 12:01) by the first request
    expect(
      (await (apps[0] as (typeof apps)[number]).request("/schedules", { headers: auth })).status,
    ).toBe(200);
    clock.now = at(1, 2);
    await Promise.all(apps.map((app) => app.request("/dispatch", { headers: auth })));
    await settleAfter(() => received.length >= 2);
    const kinds = received.map((body) => [body.kind, body.job, body.slot]).sort();
    expect(kinds).toEqual([
      ["dead", "nightly-report", iso(at(1))],
      ["failed", "nightly-report", iso(at(1))],
    ]);
    expect(received.find((body) => body.kind === "dead")).toMatchObject({
      source: "schedule",
      attempts: 1,
      error: "upstream 502",
    });
    // ticks stop for two minutes; the next tick's periodic check (once a minute for all
    // instances) reports the schedule's missed fires
    received.length = 0;
    clock.now = at(4, 5);
    await Promise.all(apps.map((app) => app.request("/dispatch", { headers: auth })));
    await settleAfter(
      () => received.flatMap((body) => (body.kind === "missed" ? body.slots : [])).length >= 2,
    );
    const missed = received.filter((body) => body.kind === "missed");
    // each missed fire once, whether the check or the tick's catch-up event saw it first
    expect(missed.every((body) => body.job === "nightly-report")).toBe(true);
    expect(missed.flatMap((body) => body.slots).sort()).toEqual([iso(at(2)), iso(at(3))]);
  });

  it("sends nothing without a URL, and a failing webhook releases the claim for another try", async () => {
    const clock = { now: at(0, 1) };
    expect(
      (await makeApp(clock, "").request("/cron/boom", { method: "POST", headers: auth })).status,
    ).toBe(500);
    const down = makeApp(clock, "http://127.0.0.1:9/unreachable");
    clock.now = at(1, 1);
    expect((await down.request("/cron/boom", { method: "POST", headers: auth })).status).toBe(500);
    // alerts go out beside the answer, not before it: let the failed delivery release its claim
    await settle();
    // the same slot fails again (released) on an instance whose webhook works: it is alerted
    expect(
      (await makeApp(clock).request("/cron/boom", { method: "POST", headers: auth })).status,
    ).toBe(500);
    await settleAfter(() => received.length >= 1);
    expect(received.map((body) => [body.kind, body.slot])).toEqual([["failed", iso(at(1))]]);
  });

  describe("signed alerts", () => {
    const HOOK_SECRET = "hook-s3cret";
    /** The independent recipe a receiver in any language follows. */
    const hmacHex = (secret: string, t: string, raw: string) =>
      createHmac("sha256", secret).update(`${t}.${raw}`).digest("hex");
    const expectedHeader = (secret: string, nowMs: number, raw: string) => {
      const t = String(Math.floor(nowMs / 1_000));
      return `t=${t},v1=${hmacHex(secret, t, raw)}`;
    };

    /**
     * Fails the job `boom` at the clock's minute: its one `failed` delivery, and every delivery the
     * request caused (the periodic check may add `missed` ones for the job `tick`).
     */
    async function failOnce(app: ReturnType<typeof makeApp>, env?: Record<string, unknown>) {
      const before = deliveries.length;
      const response = await app.request("/cron/boom", { method: "POST", headers: auth }, env);
      expect(response.status).toBe(500);
      await settleAfter(() =>
        deliveries.slice(before).some(({ body }) => body.kind === "failed" && body.job === "boom"),
      );
      const all = deliveries.slice(before);
      const failed = all.filter(({ body }) => body.kind === "failed" && body.job === "boom");
      expect(failed).toHaveLength(1);
      return { ...(failed[0] as (typeof deliveries)[number]), all };
    }

    it("the alerts.secret option signs each POST over its timestamp and raw body", async () => {
      const clock = { now: at(0, 7) };
      const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
      const app = makeApp(clock, receiver.url, { secret: HOOK_SECRET });
      const { raw, signature } = await failOnce(app);
      // independent of cron-guard's code: node:crypto over "<t>.<raw body>"
      expect(signature).toBe(expectedHeader(HOOK_SECRET, clock.now, raw));
      const check = { secret: HOOK_SECRET, header: signature, body: raw, nowMs: clock.now };
      expect(await verifyAlertSignature(check)).toBe(true);
      // a wrong secret, a changed body, or a late replay (the receiver's clock 6 minutes on) fail
      expect(await verifyAlertSignature({ ...check, secret: "not-it" })).toBe(false);
      expect(await verifyAlertSignature({ ...check, body: raw.replace("disk", "DISK") })).toBe(
        false,
      );
      expect(await verifyAlertSignature({ ...check, nowMs: clock.now + 6 * MINUTE })).toBe(false);
      // every kind is signed: the missed fire of `tick` found by the same request's periodic check
      clock.now = at(2, 7);
      const { all } = await failOnce(app);
      expect(all.some(({ body }) => body.kind === "missed")).toBe(true);
      for (const delivery of all) {
        expect(delivery.signature).toBe(expectedHeader(HOOK_SECRET, clock.now, delivery.raw));
      }
      expect(warn).not.toHaveBeenCalled();
    });

    it("defaults to the CRON_GUARD_ALERT_SECRET binding, then process.env; the option wins", async () => {
      const clock = { now: at(0, 1) };
      const binding = { CRON_GUARD_ALERT_SECRET: "from-binding" };
      const fromBinding = await failOnce(makeApp(clock), binding);
      expect(
        await verifyAlertSignature({
          secret: "from-binding",
          header: fromBinding.signature,
          body: fromBinding.raw,
          nowMs: clock.now,
        }),
      ).toBe(true);

      process.env.CRON_GUARD_ALERT_SECRET = "from-process";
      clock.now = at(1, 1);
      const fromProcess = await failOnce(makeApp(clock));
      expect(fromProcess.signature).toBe(
        expectedHeader("from-process", clock.now, fromProcess.raw),
      );
      // the binding wins over process.env
      clock.now = at(2, 1);
      const bindingFirst = await failOnce(makeApp(clock), binding);
      expect(bindingFirst.signature).toBe(
        expectedHeader("from-binding", clock.now, bindingFirst.raw),
      );
      // the option wins over both, as a string or as a function of the bindings
      clock.now = at(3, 1);
      const literal = await failOnce(
        makeApp(clock, receiver.url, { secret: "from-option" }),
        binding,
      );
      expect(literal.signature).toBe(expectedHeader("from-option", clock.now, literal.raw));
      clock.now = at(4, 1);
      const fromFunction = await failOnce(
        makeApp(clock, receiver.url, { secret: (env) => env.HOOK_KEY as string | undefined }),
        { ...binding, HOOK_KEY: "from-function" },
      );
      expect(fromFunction.signature).toBe(
        expectedHeader("from-function", clock.now, fromFunction.raw),
      );
    });

    it("without a secret (or with a blank one) alerts go unsigned, with one warning per app", async () => {
      const clock = { now: at(0, 1) };
      const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
      const unsignedWarnings = () =>
        warn.mock.calls.filter(([line]) => String(line).includes("unsigned")).length;
      const app = makeApp(clock);
      expect((await failOnce(app)).signature).toBeUndefined();
      clock.now = at(1, 1);
      expect((await failOnce(app)).signature).toBeUndefined();
      expect(unsignedWarnings()).toBe(1);

      // a blank option, a blank binding, a function that finds none: the same, and no throw
      const cases: [number, Omit<AlertOptions, "url">, Record<string, unknown> | undefined][] = [
        [2, { secret: "  \n" }, undefined],
        [3, {}, { CRON_GUARD_ALERT_SECRET: " " }],
        [4, { secret: () => undefined }, { CRON_GUARD_ALERT_SECRET: "not-used" }],
      ];
      for (const [minute, alerts, env] of cases) {
        clock.now = at(minute, 1);
        const { all } = await failOnce(makeApp(clock, receiver.url, alerts), env);
        expect(all.map((delivery) => delivery.signature)).toEqual(all.map(() => undefined));
      }
      expect(unsignedWarnings()).toBe(4);
    });

    it("a secret option that is neither a string nor a function is a ConfigError at creation", () => {
      expect(() =>
        makeApp({ now: at(0) }, receiver.url, { secret: 42 as unknown as string }),
      ).toThrow(ConfigError);
    });

    it("one body serves Slack and Discord: text whole, content cut to 2 000 characters, no pings", async () => {
      // The app caps error messages at 300 characters; the sender is given a longer one directly.
      const long = `${"x".repeat(2_500)} @everyone`;
      const sender = createAlertSender({
        redis: upstash(),
        url: receiver.url,
        secret: HOOK_SECRET,
        prefix: prefix(),
        clock: () => at(0, 1),
      });
      const sent = await sender.send([
        { kind: "failed", job: "loud", source: "job", slot: iso(at(0)), error: long },
      ]);
      expect(sent).toHaveLength(1);
      expect(deliveries).toHaveLength(1);
      const { body, raw, signature } = deliveries[0] as (typeof deliveries)[number];
      expect(body.text).toBe(`cron-guard: job loud failed at ${iso(at(0))}: ${long}`);
      expect(body.content).toHaveLength(2_000);
      expect(body.content).toBe(`${body.text.slice(0, 1_999)}…`);
      expect(body.allowed_mentions).toEqual({ parse: [] });
      expect(signature).toBe(expectedHeader(HOOK_SECRET, at(0, 1), raw));
    });
  });
});
