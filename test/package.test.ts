import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "@upstash/redis";
import { afterEach, describe, expect, it } from "vitest";

// What a user gets after `npm ci && npm run build` (npm test builds first, see "pretest").
describe("the built package", () => {
  let child: ChildProcess | undefined;
  const after: (() => void)[] = [];
  afterEach(() => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    for (const cleanup of after.splice(0)) cleanup();
  });

  it("resolves every subpath export from plain Node", async () => {
    const script = [
      'const m = await Promise.all(["cron-guard", "cron-guard/hono", "cron-guard/cloudflare", "cron-guard/vercel", "cron-guard/bridge", "cron-guard/schedules", "cron-guard/quorum", "cron-guard/cron", "cron-guard/monitoring", "cron-guard/dynamic-schedules", "cron-guard/dashboard", "cron-guard/openapi", "cron-guard/upstash-quorum", "cron-guard/alerts"].map((s) => import(s)));',
      "console.log([typeof m[0].createGuard, typeof m[1].cronGuard, typeof m[2].createWorker, typeof m[3].createVercelApp, typeof m[4].startBridge, typeof m[5].createDispatcher, typeof m[6].createQuorumStore, typeof m[7].parseSchedule, typeof m[8].monitorJob, typeof m[9].dynamicSchedules, typeof m[10].dashboard, typeof m[11].openApi, typeof m[12].quorumStore, typeof m[13].alerts].join(' '));",
    ].join("\n");
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--input-type=module", "-e", script],
      { cwd: process.cwd() },
    );
    expect(stdout.trim()).toBe(Array(14).fill("function").join(" "));
  });

  it("keeps the root entry small: the guard and its errors, at most 15 values", async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'console.log(JSON.stringify(Object.keys(await import("cron-guard"))))',
      ],
      { cwd: process.cwd() },
    );
    const values = JSON.parse(stdout) as string[];
    expect(values.length).toBeLessThanOrEqual(15);
    expect(values).toEqual(
      expect.arrayContaining(["createGuard", "guarded", "ConfigError", "StoreUnavailableError"]),
    );
    expect(values).not.toContain("createDispatcher");
  });

  it("runs `cron-guard bridge` from dist: prints the Upstash variables, serves, stops on SIGTERM", async () => {
    // Its data in a directory of the test's own (the default, ./.cron-guard-data, is the user's).
    const dataDir = mkdtempSync(join(tmpdir(), "cron-guard-package-"));
    after.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const bridge = spawn(
      process.execPath,
      ["dist/cli.js", "bridge", "--port", "0", "--data-dir", dataDir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = bridge;
    const lines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      bridge.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        lines.push(...chunk.split("\n").filter(Boolean));
        if (lines.length >= 2) resolve();
      });
      bridge.once("exit", (code) => reject(new Error(`bridge exited with ${code}`)));
    });
    const env = Object.fromEntries(lines.map((line) => line.split("=", 2) as [string, string]));
    const redis = new Redis({
      url: env.UPSTASH_REDIS_REST_URL ?? "",
      token: env.UPSTASH_REDIS_REST_TOKEN ?? "",
      retry: false,
    });
    await redis.set("from-dist", "ok");
    expect(await redis.get("from-dist")).toBe("ok");
    const exited = new Promise<number | null>((resolve) => bridge.once("exit", resolve));
    bridge.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
