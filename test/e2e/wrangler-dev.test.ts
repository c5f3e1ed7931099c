import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HeartbeatRecord } from "../../examples/jobs.js";
import { bridgeEnv, directRedis } from "../support/harness.js";

const SECRET = "e2e-secret-for-wrangler-dev";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

async function waitUntilServing(
  url: string,
  child: ChildProcess,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited early:\n${log()}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`wrangler dev did not answer within 60 s:\n${log()}`);
}

describe("the Worker under wrangler dev (workerd), end to end through the bridge", () => {
  let child: ChildProcess;
  let base = "";
  let output = "";

  beforeAll(async () => {
    const { bridgeUrl, bridgeToken } = bridgeEnv();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = spawn(
      "node_modules/.bin/wrangler",
      [
        "dev",
        "--port",
        String(port),
        "--ip",
        "127.0.0.1",
        "--test-scheduled",
        "--inspector-port",
        String(await freePort()),
        "--var",
        `UPSTASH_REDIS_REST_URL:${bridgeUrl}`,
        "--var",
        `UPSTASH_REDIS_REST_TOKEN:${bridgeToken}`,
        "--var",
        `CRON_SECRET:${SECRET}`,
        "--var",
        "REGION:wrangler-dev",
      ],
      { env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" }, stdio: "pipe" },
    );
    child.stdout?.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr?.on("data", (chunk) => {
      output += chunk;
    });
    await waitUntilServing(`${base}/`, child, () => output);
  }, 90_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  async function heartbeatsFor(slot: string): Promise<number> {
    const redis = await directRedis();
    const records = await redis.lRange("cron-guard:example:heartbeat", 0, -1);
    return records.map((raw) => JSON.parse(raw) as HeartbeatRecord).filter((r) => r.slot === slot)
      .length;
  }

  it("answers 100 concurrent authorized calls for one slot with one 200 and 99 skips (204 while it runs, 409 once it is done), running once", async () => {
    const minute = 1_000 + Math.floor(Math.random() * 500_000);
    const slot = new Date(Date.UTC(2020, 0, 1) + minute * 60_000)
      .toISOString()
      .replace(".000Z", "Z");
    const responses = await Promise.all(
      Array.from({ length: 100 }, () =>
        fetch(`${base}/cron/heartbeat?slot=${slot}`, {
          method: "POST",
          headers: { authorization: `Bearer ${SECRET}` },
        }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    const reasons = responses.map((r) => r.headers.get("cron-guard-reason"));
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 204 || s === 409)).toHaveLength(99);
    statuses.forEach((status, i) => {
      if (status === 409) expect(reasons[i]).toBe("done");
      if (status === 204) expect(reasons[i]).toBe("running");
    });
    expect(await heartbeatsFor(slot)).toBe(1);
  });

  it("runs a Vercel-style GET with the bearer and refuses it without or with a wrong secret", async () => {
    const vercel = { "user-agent": "vercel-cron/1.0", "x-vercel-cron-schedule": "* * * * *" };
    for (const headers of [vercel, { ...vercel, authorization: "Bearer nope" }]) {
      const refused = await fetch(`${base}/cron/heartbeat`, { headers });
      expect(refused.status).toBe(401);
      expect(await refused.json()).toMatchObject({ error: expect.any(String) });
    }
    const response = await fetch(`${base}/cron/heartbeat`, {
      headers: { ...vercel, authorization: `Bearer ${SECRET}` },
    });
    expect([200, 204]).toContain(response.status);
    expect(response.headers.get("cron-guard-status")).toMatch(/^(ran|skipped)$/);
  });

  it("runs a scheduled event once when Cloudflare delivers the same scheduledTime twice", async () => {
    const scheduledTime = Date.UTC(2019, 5, 1) + Math.floor(Math.random() * 500_000) * 60_000;
    const slot = new Date(scheduledTime).toISOString().replace(".000Z", "Z");
    const trigger = () =>
      fetch(`${base}/cdn-cgi/handler/scheduled?cron=*+*+*+*+*&time=${scheduledTime}`);
    const [first, second] = await Promise.all([trigger(), trigger()]);
    expect(first?.status).toBe(200);
    expect(second?.status).toBe(200);
    const deadline = Date.now() + 5_000;
    while ((await heartbeatsFor(slot)) === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await heartbeatsFor(slot)).toBe(1);
  });
});
