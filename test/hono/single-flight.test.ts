import { describe, expect, it } from "vitest";
import { slotId } from "../../src/core/cron/index.js";
import { createGuard } from "../../src/core/index.js";
import { createCronApp } from "../../src/hono/index.js";
import { useCountedDatabase } from "../support/counted-database.js";
import { uniquePrefix } from "../support/harness.js";

const SECRET = "correct horse battery staple";
const auth = { authorization: `Bearer ${SECRET}` };
const STORM = 300;
/** 30 s into a recent minute: the job's slot is that minute. */
const NOW = Math.floor(Date.now() / 60_000) * 60_000 - 600_000 + 30_000;
const SLOT = slotId(NOW - 30_000);

describe("an app's storm costs one claim and one completion per isolate", () => {
  const database = useCountedDatabase();

  function makeApp(prefix: string) {
    let runs = 0;
    const app = createCronApp({
      jobs: [
        {
          name: "tick",
          cron: "* * * * *",
          handler: async () => {
            runs += 1;
            await new Promise((resolve) => setTimeout(resolve, 5));
            return { sent: true };
          },
        },
      ],
      redis: database.client(),
      cronSecret: () => SECRET,
      guardOptions: { prefix, clock: () => NOW },
    });
    return { app, runs: () => runs };
  }

  async function commandsDuring<T>(
    work: () => T | Promise<T>,
  ): Promise<{ value: T; commands: number }> {
    const before = await database.scriptCalls();
    const value = await work();
    return { value, commands: (await database.scriptCalls()) - before };
  }

  it(`${STORM} concurrent deliveries: one 200, the rest 204, at most two commands; late ones cost none`, async () => {
    const prefix = uniquePrefix("http-single-flight");
    // Loads the scripts, so that no NOSCRIPT + EVAL is counted below.
    await createGuard({ redis: database.client(), prefix }).run("warm-up", NOW, () => undefined);
    const { app, runs } = makeApp(prefix);
    const deliver = () =>
      Promise.all(
        Array.from({ length: STORM }, () => app.request("/cron/tick", { headers: auth })),
      );

    const storm = await commandsDuring(deliver);
    const statuses = storm.value.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 204)).toHaveLength(STORM - 1);
    for (const response of storm.value) {
      expect(response.headers.get("cron-guard-slot")).toBe(SLOT);
      if (response.status === 204) {
        expect(["running", "done"]).toContain(response.headers.get("cron-guard-reason"));
      }
    }
    expect(storm.commands).toBeLessThanOrEqual(2);
    expect(runs()).toBe(1);

    const late = await commandsDuring(deliver);
    expect(late.value.every((r) => r.status === 204)).toBe(true);
    expect(late.value.every((r) => r.headers.get("cron-guard-reason") === "done")).toBe(true);
    expect(late.commands).toBe(0);
    expect(runs()).toBe(1);
  });

  it("a refused backfill (409) from memory says what Redis says, without a command", async () => {
    const prefix = uniquePrefix("http-single-flight");
    const { app } = makeApp(prefix);
    expect((await app.request("/cron/tick", { headers: auth })).status).toBe(200);
    const backfill = () =>
      app.request(`/cron/tick?slot=${SLOT}`, { method: "POST", headers: auth });
    const remembered = await commandsDuring(backfill);
    expect(remembered.commands).toBe(0);
    expect(remembered.value.status).toBe(409);
    const fromMemory = await remembered.value.json();
    expect(fromMemory).toMatchObject({
      reason: "done",
      recorded: { state: "done", fence: 1, runs: 1, forced: false },
    });

    // Another isolate (its own client) asks Redis: the same 409, word for word.
    const other = makeApp(prefix);
    const asked = await commandsDuring(() =>
      other.app.request(`/cron/tick?slot=${SLOT}`, { method: "POST", headers: auth }),
    );
    expect(asked.commands).toBe(1);
    expect(asked.value.status).toBe(409);
    expect(await asked.value.json()).toEqual(fromMemory);

    // force=true reaches Redis and runs the slot again.
    const forced = await commandsDuring(() =>
      app.request(`/cron/tick?slot=${SLOT}&force=true`, { method: "POST", headers: auth }),
    );
    expect(forced.value.status).toBe(200);
    expect(forced.value.headers.get("cron-guard-fence")).toBe("2");
    expect(forced.commands).toBe(2);
  });

  it("an unauthorized storm is 401 JSON and sends no command", async () => {
    const { app, runs } = makeApp(uniquePrefix("http-single-flight"));
    const denied = await commandsDuring(() =>
      Promise.all(
        Array.from({ length: 50 }, () =>
          app.request("/cron/tick", { headers: { authorization: "Bearer wrong" } }),
        ),
      ),
    );
    expect(denied.value.every((r) => r.status === 401)).toBe(true);
    expect(await denied.value[0]?.json()).toHaveProperty("error");
    expect(denied.commands).toBe(0);
    expect(runs()).toBe(0);
  });
});
