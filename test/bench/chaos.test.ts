import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../../bench/chaos/ledger.js";
import {
  type ChaosTarget,
  crashedHolderScenario,
  droppedResponsesScenario,
  failedCompletionScenario,
  latencyScenario,
  lateRedeliveryScenario,
  longJobScenario,
  redisCutScenario,
  serverErrorsScenario,
  skewedClocksScenario,
} from "../../bench/chaos/scenarios.js";
import { type FaultProxy, startFaultProxy } from "../../bench/faults/proxy.js";
import { type BenchStack, startBenchStack, upstashClient } from "../../bench/support.js";
import { bridgeEnv, directRedis, uniquePrefix } from "../support/harness.js";

const small = { slots: 3, deliveriesPerSlot: 4 };

describe("the fault proxy", () => {
  let stack: BenchStack;
  let proxy: FaultProxy;
  beforeAll(async () => {
    stack = await startBenchStack({ redisUrl: bridgeEnv().redisUrl });
    proxy = await startFaultProxy(stack.bridge.url);
  });
  afterAll(async () => {
    await proxy.close();
    await stack.close();
  });
  const client = () => upstashClient(proxy.url, stack.bridge.token, { retries: 0 });

  it("adds the planned latency", async () => {
    proxy.setPlan(() => ({ action: "forward", latencyMs: 150 }));
    const startedAt = performance.now();
    expect(await client().ping()).toBe("PONG");
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(145);
  });

  it("drops an answer after the command ran: the client errs, Redis has the write", async () => {
    const key = `${uniquePrefix("proxy")}:dropped`;
    proxy.setPlan(() => ({ action: "drop-after-run" }));
    await expect(client().set(key, "written")).rejects.toThrow();
    expect(await (await directRedis()).get(key)).toBe("written");
    expect(proxy.counts.droppedAfterRun).toBeGreaterThan(0);
  });

  it("answers 5xx or refuses without passing anything on", async () => {
    for (const action of ["error-5xx", "refuse"] as const) {
      const key = `${uniquePrefix("proxy")}:${action}`;
      proxy.setPlan(() => ({ action }));
      await expect(client().set(key, "never")).rejects.toThrow();
      expect(await (await directRedis()).exists(key)).toBe(0);
    }
  });
});

describe("the ledger", () => {
  it("counts two successful bodies of a slot, or two at once, as a duplicate", () => {
    const ledger = new Ledger();
    ledger.start("a")(true);
    ledger.start("a")(true);
    const first = ledger.start("b");
    const second = ledger.start("b");
    first(false);
    second(true);
    expect(ledger.duplicates()).toBe(2);
  });

  it("counts a slot without a successful body as lost", () => {
    const ledger = new Ledger();
    ledger.expect("never");
    ledger.start("failed")(false);
    ledger.start("fine")(true);
    expect(ledger.lost()).toBe(2);
  });
});

describe("chaos scenarios at a small size", () => {
  let target: ChaosTarget;
  beforeAll(async () => {
    const stack = await startBenchStack({ redisUrl: bridgeEnv().redisUrl });
    target = { stack, proxy: await startFaultProxy(stack.bridge.url) };
  });
  afterAll(async () => {
    await target.proxy.close();
    await target.stack.close();
  });

  function expectClean(result: Awaited<ReturnType<typeof latencyScenario>>) {
    expect(result, JSON.stringify(result)).toMatchObject({
      slots: expect.any(Number),
      duplicates: 0,
      lost: 0,
      unreported: 0,
    });
    expect(result.runs).toBe(result.slots);
  }

  it("latency: one run per slot, no errors", async () => {
    const result = await latencyScenario(target, small);
    expectClean(result);
    expect(result.errorsSurfaced).toBe(0);
  });

  it("dropped answers: retried claims and completions stay exactly-once", async () => {
    expectClean(await droppedResponsesScenario(target, small));
  });

  it("5xx: failures surface and redelivery fills every slot once", async () => {
    expectClean(await serverErrorsScenario(target, small));
  });

  it("crashed holders: nobody runs during the lease, exactly one after", async () => {
    const result = await crashedHolderScenario(target, small);
    expectClean(result);
    expect(result.errorsSurfaced).toBe(small.slots);
  });

  it("long jobs: the heartbeat keeps every duplicate out", async () => {
    const result = await longJobScenario(target, small);
    expectClean(result);
    expect(result.errorsSurfaced).toBe(0);
  });

  it("late redeliveries after the retention: every one skipped as done, none runs", async () => {
    const result = await lateRedeliveryScenario(target, small);
    expectClean(result);
    expect(result.failedChecks).toEqual([]);
    expect(result.errorsSurfaced).toBe(0);
    expect(result.deliveries).toBe(3 * small.slots * small.deliveriesPerSlot);
  });

  it("failed completion: every run recorded in the end by the background retry, no redelivery runs it again", async () => {
    const result = await failedCompletionScenario(target, small);
    expectClean(result);
    expect(result.failedChecks).toEqual([]);
    // Every run's result said it could not be recorded (ran, with a warning).
    expect(result.errorsSurfaced).toBeGreaterThanOrEqual(small.slots);
  }, 30_000);

  it("skewed clocks: every instance names the same slot", async () => {
    expectClean(await skewedClocksScenario(target, small));
  });

  it("redis cut: deliveries during the cut fail visibly; every slot runs once", async () => {
    const stack = await startBenchStack({ commandTimeoutMs: 300 });
    const proxy = await startFaultProxy(stack.bridge.url);
    try {
      const result = await redisCutScenario({ stack, proxy }, small);
      expectClean(result);
      expect(result.errorsSurfaced).toBeGreaterThan(0);
    } finally {
      await proxy.close();
      await stack.close();
    }
  });
});
