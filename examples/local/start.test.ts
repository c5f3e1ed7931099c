import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { type CliIo, runCommand } from "../../src/cli/framework.js";
import { captureIo } from "../../test/support/capture-io.js";
import { startCommand } from "./command.js";

/** What `npm start -- <argv>` runs (see main.ts). */
const runStart = (argv: string[], io: CliIo) => runCommand("npm start", startCommand, argv, io);

/** The first `curl` line after `heading`, as [secret, url]. */
function curlAfter(lines: string[], heading: RegExp): [string, string] {
  const index = lines.findIndex((line) => heading.test(line));
  const match = /Bearer ([^"]+)" "?([^"\s]+)"?$/.exec(lines[index + 1] ?? "");
  if (!match) throw new Error(`no curl line after ${heading}:\n${lines.join("\n")}`);
  return [match[1] as string, match[2] as string];
}

// What a new user sees after `npm ci && npm start`: the local stack, its storm, a manual trigger.
describe("npm start", () => {
  it("runs each example job once in the storm, then serves manual triggers and backfills", async () => {
    const io = captureIo();
    const result = await runStart(["--port", "0", "--bridge-port", "0", "--deliveries", "30"], io);
    if (!("running" in result)) throw new Error(`exited: ${io.errLines.join("\n")}`);
    try {
      const out = io.outLines.join("\n");
      expect(out).toMatch(/heartbeat \d{4}-\d\d-\d\dT\d\d:\d\dZ: 1 ran, 29 skipped \(204: /);
      expect(out).toMatch(/daily-digest \d{4}-\d\d-\d\dT08:00Z: 1 ran, 29 skipped \(204: /);
      expect(out).toContain("heartbeat side effects: 1 slot(s) recorded, 0 with duplicates");
      expect(out).toMatch(/UPSTASH_REDIS_REST_TOKEN=\S+/);
      expect(out).toMatch(/^dashboard: http:\/\/127\.0\.0\.1:\d+\/dashboard /m);
      expect(out).toMatch(/local scheduler: every cron fires on time from 3 regions/);

      expect(out).toMatch(/^Trigger a job by hand: .*expect 204 with cron-guard-reason: done/m);
      const [secret, triggerUrl] = curlAfter(io.outLines, /^Trigger a job by hand/);
      const unauthorized = await fetch(triggerUrl, { method: "POST" });
      expect(unauthorized.status).toBe(401);
      const authorization = `Bearer ${secret}`;
      // The hint's one exception, the first moments of a minute before the scheduler's deliveries
      // (jitter up to 300 ms, slower on a loaded machine): step past it instead of racing it.
      const intoMinuteMs = Date.now() % 60_000;
      if (intoMinuteMs < 3_000 || intoMinuteMs > 59_000) {
        await new Promise((resolve) => setTimeout(resolve, (63_000 - intoMinuteMs) % 60_000));
      }
      const current = await fetch(triggerUrl, { method: "POST", headers: { authorization } });
      expect(current.status).toBe(204);
      expect(current.headers.get("cron-guard-reason")).toBe("done");

      expect(out).toMatch(
        /^Backfill a past slot that has not run \(\S+\): 200 the first time, then 409 with what ran; add &force=true/m,
      );
      const [, backfillUrl] = curlAfter(io.outLines, /^Backfill a past slot/);
      const backfill = await fetch(backfillUrl, { method: "POST", headers: { authorization } });
      expect(backfill.status).toBe(200);
      const again = await fetch(backfillUrl, { method: "POST", headers: { authorization } });
      expect(again.status).toBe(409);
      expect(await again.json()).toMatchObject({ reason: "done", status: "ran" });
      const forced = await fetch(`${backfillUrl}&force=true`, {
        method: "POST",
        headers: { authorization },
      });
      expect(forced.status).toBe(200);
    } finally {
      await result.running.stop();
    }
  });

  it("with --exit prints the summary and exits 0 when nothing ran twice, and no URL of what it stopped", async () => {
    const io = captureIo();
    const result = await runStart(
      ["--port", "0", "--bridge-port", "0", "--deliveries", "10", "--exit"],
      io,
    );
    expect(result).toEqual({ exitCode: 0 });
    const out = io.outLines.join("\n");
    expect(out).toMatch(/heartbeat .*: 1 ran, 9 skipped/);
    expect(out).not.toMatch(/curl|http:\/\/|UPSTASH_REDIS_REST|CRON_SECRET=|npm run dev:worker/);
    expect(out).toContain("--exit: stopped the app, the bridge and redis-server");
  });

  it("names an unknown flag and lists the valid ones", async () => {
    const io = captureIo();
    expect(await runStart(["--bogus"], io)).toEqual({ exitCode: 2 });
    const errors = io.errLines.join("\n");
    expect(errors).toMatch(
      /^npm start: unknown option "--bogus"; the options are --port <n>, --bridge-port <n>, --deliveries <n>, --regions <n>, --redis-url <url>, --exit \(--help describes each\)/,
    );
    expect(errors).not.toMatch(/start: start|Unknown option/);
    expect(io.outLines).toEqual([]);
  });

  it("--help describes every flag", async () => {
    const io = captureIo();
    expect(await runStart(["--help"], io)).toEqual({ exitCode: 0 });
    const text = io.outLines.join("\n");
    expect(text).toMatch(/^Usage: npm start -- /);
    for (const flag of [
      "--port <n>",
      "--bridge-port <n>",
      "--deliveries <n>",
      "--regions <n>",
      "--redis-url <url>",
      "--exit",
      "--help, -h",
    ]) {
      expect(text).toMatch(new RegExp(`^  ${flag}\\s+\\S.{10,}`, "m"));
    }
  });

  it("installs only redis-server before it starts; the test run installs chromium and wrk", async () => {
    const { scripts } = JSON.parse(await readFile("package.json", "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(scripts.prestart).toContain("scripts/ensure-redis-server.sh");
    expect(scripts.prestart).not.toMatch(/chromium|wrk/);
    expect(scripts.pretest).toContain("scripts/ensure-redis-server.sh");
    expect(scripts.pretest).toContain("scripts/ensure-chromium.sh");
    expect(scripts.pretest).toContain("scripts/ensure-wrk.sh");
  });

  it("refuses a CRON_SECRET no header can carry before starting anything", async () => {
    const io = captureIo();
    const before = process.env.CRON_SECRET;
    process.env.CRON_SECRET = "pässwörd";
    try {
      const result = await runStart(["--port", "0", "--bridge-port", "0"], io);
      expect(result).toEqual({ exitCode: 1 });
    } finally {
      if (before === undefined) delete process.env.CRON_SECRET;
      else process.env.CRON_SECRET = before;
    }
    const errors = io.errLines.join("\n");
    expect(errors).toMatch(/CRON_SECRET contains characters an HTTP header cannot carry/);
    expect(errors).not.toContain("pässwörd");
    expect(io.outLines.join("\n")).not.toMatch(/UPSTASH_REDIS_REST_URL|heartbeat/);
  });

  it("refuses a bad --deliveries with a clear error", async () => {
    const io = captureIo();
    expect(await runStart(["--deliveries", "0"], io)).toEqual({ exitCode: 2 });
    expect(io.errLines.join("\n")).toMatch(/--deliveries must be a whole number from 1 to 10000/);
  });
});
