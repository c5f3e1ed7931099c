import { env } from "cloudflare:workers";
import { Redis } from "@upstash/redis/cloudflare";
import { describe, expect, it } from "vitest";
import { createGuard } from "../../src/core/index.js";

/** Each test gets its own key prefix, so reruns against a long-lived store never collide. */
function guardFor(options: { leaseMs?: number; retentionMs?: number } = {}) {
  const redis = new Redis({
    url: env.UPSTASH_REDIS_REST_URL,
    token: env.UPSTASH_REDIS_REST_TOKEN,
  });
  return createGuard({
    redis,
    prefix: `workerd-${crypto.randomUUID()}`,
    region: "workerd",
    ...options,
  });
}

describe("src/core inside workerd, over @upstash/redis/cloudflare and the bridge", () => {
  it("is really running in the Workers runtime", () => {
    expect(navigator.userAgent).toBe("Cloudflare-Workers");
  });

  it("runs a slot once and skips the second delivery as done", async () => {
    const guard = guardFor();
    const slot = Date.UTC(2026, 0, 1);
    const first = await guard.run("workerd-job", slot, () => "ran in workerd");
    expect(first).toMatchObject({ status: "ran", value: "ran in workerd", unguarded: false });
    if (first.status === "ran") expect(first.fence).toEqual(expect.any(Number));

    let calls = 0;
    const second = await guard.run("workerd-job", slot, () => {
      calls += 1;
      return "ran twice";
    });
    expect(second).toMatchObject({ status: "skipped", reason: "done" });
    expect(calls).toBe(0);
  });

  it("lets exactly one of 20 concurrent deliveries of a slot run", async () => {
    const guard = guardFor();
    let calls = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        guard.run("workerd-storm", Date.UTC(2026, 0, 1, 8), async () => {
          calls += 1;
          await new Promise((resolve) => setTimeout(resolve, 50));
          return calls;
        }),
      ),
    );
    expect(results.filter((r) => r.status === "ran")).toHaveLength(1);
    expect(results.filter((r) => r.status === "skipped")).toHaveLength(19);
    expect(calls).toBe(1);
  });

  it("keeps a lease alive past leaseMs with the heartbeat (timers work in workerd)", async () => {
    const guard = guardFor({ leaseMs: 600 });
    const slot = Date.UTC(2026, 0, 2);
    let sawRunning: unknown;
    const first = await guard.run("workerd-long", slot, async () => {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      sawRunning = await guard.run("workerd-long", slot, () => "must not run");
      await new Promise((resolve) => setTimeout(resolve, 300));
      return "long job";
    });
    expect(first).toMatchObject({ status: "ran", value: "long job" });
    expect(sawRunning).toMatchObject({ status: "skipped", reason: "running" });
  });

  it("remembers a finished slot in its ledger after the slot key expired; force re-runs it", async () => {
    const guard = guardFor({ retentionMs: 1 });
    const slot = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
    expect(await guard.run("workerd-ledger", slot, () => 1)).toMatchObject({ status: "ran" });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await guard.run("workerd-ledger", slot, () => 2)).toMatchObject({
      status: "skipped",
      reason: "done",
      holder: { ledger: true },
    });
    expect(await guard.run("workerd-ledger", slot, () => 3, { force: true })).toMatchObject({
      status: "ran",
      value: 3,
    });
    expect(await guard.lookup("workerd-ledger", slot)).toMatchObject({
      status: "ran",
      runs: [{ forced: false }, { forced: true }],
    });
  });
});
