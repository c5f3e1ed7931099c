import { describe, expect, it } from "vitest";
import { type CliIo, runCommands } from "../../src/cli/framework.js";
import { captureIo } from "../../test/support/capture-io.js";
import { startCommand } from "./command.js";

const runStart = (argv: string[], io: CliIo) =>
  runCommands("npm start --", { start: startCommand }, argv, io);

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
    const result = await runStart(
      ["start", "--port", "0", "--bridge-port", "0", "--deliveries", "30"],
      io,
    );
    if (!("running" in result)) throw new Error(`exited: ${io.errLines.join("\n")}`);
    try {
      const out = io.outLines.join("\n");
      expect(out).toMatch(/heartbeat \d{4}-\d\d-\d\dT\d\d:\d\dZ: 1 ran, 29 skipped \(204: /);
      expect(out).toMatch(/daily-digest \d{4}-\d\d-\d\dT08:00Z: 1 ran, 29 skipped \(204: /);
      expect(out).toContain("heartbeat side effects: 1 slot(s) recorded, 0 with duplicates");
      expect(out).toMatch(/UPSTASH_REDIS_REST_TOKEN=\S+/);
      expect(out).toMatch(/^dashboard: http:\/\/127\.0\.0\.1:\d+\/dashboard /m);
      expect(out).toMatch(/local scheduler: every cron fires on time from 3 regions/);

      const [secret, triggerUrl] = curlAfter(io.outLines, /^Trigger a job by hand/);
      const unauthorized = await fetch(triggerUrl, { method: "POST" });
      expect(unauthorized.status).toBe(401);
      const authorization = `Bearer ${secret}`;
      const current = await fetch(triggerUrl, { method: "POST", headers: { authorization } });
      expect(current.status).toBe(204);
      expect(current.headers.get("cron-guard-reason")).toBe("done");

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

  it("with --exit prints the summary and exits 0 when nothing ran twice", async () => {
    const io = captureIo();
    const result = await runStart(
      ["start", "--port", "0", "--bridge-port", "0", "--deliveries", "10", "--exit"],
      io,
    );
    expect(result).toEqual({ exitCode: 0 });
    expect(io.outLines.join("\n")).toMatch(/heartbeat .*: 1 ran, 9 skipped/);
  });

  it("refuses a CRON_SECRET no header can carry before starting anything", async () => {
    const io = captureIo();
    const before = process.env.CRON_SECRET;
    process.env.CRON_SECRET = "pässwörd";
    try {
      const result = await runStart(["start", "--port", "0", "--bridge-port", "0"], io);
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
    expect(await runStart(["start", "--deliveries", "0"], io)).toEqual({ exitCode: 2 });
    expect(io.errLines.join("\n")).toMatch(/--deliveries must be a whole number from 1 to 10000/);
  });
});
