import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli.js";
import { captureIo } from "../support/capture-io.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const EXAMPLE_WORKER = join(REPO, "examples/worker.ts");
const EXAMPLE_VERCEL = join(REPO, "examples/vercel.ts");
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** `cron-guard check <argv>` in a fresh directory holding `files`. */
async function check(argv: string[], files: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), "cron-guard-check-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const io = { ...captureIo(), cwd: dir };
  const result = await runCli(["check", ...argv], io);
  return { result, out: io.outLines, err: io.errLines.join("\n"), dir };
}

const wrangler = (crons: string[], extra = "") =>
  `name = "x"\n[triggers]\ncrons = ${JSON.stringify(crons)}\n${extra}`;
const vercel = (crons: { path: string; schedule: string }[]) => JSON.stringify({ crons });
const EXAMPLE_VERCEL_CRONS = [
  { path: "/cron/heartbeat", schedule: "* * * * *" },
  { path: "/cron/daily-digest", schedule: "0 8 * * *" },
  { path: "/dispatch", schedule: "* * * * *" },
];

describe("cron-guard check on this repository's example", () => {
  it("passes on wrangler.toml and vercel.json with the app wrangler.toml's main names", async () => {
    const io = { ...captureIo(), cwd: REPO };
    expect(await runCli(["check"], io)).toEqual({ exitCode: 0 });
    expect(io.outLines).toEqual([
      'cron-guard check: OK: 2 jobs (heartbeat, daily-digest) and the dispatch cron "* * * * *" of examples/worker.ts match wrangler.toml (2 crons) and vercel.json (3 crons)',
    ]);
  });

  it("passes on vercel.json with the Vercel app", async () => {
    const io = { ...captureIo(), cwd: REPO };
    const argv = ["check", "--app", "examples/vercel.ts", "--vercel", "vercel.json"];
    expect(await runCli(argv, io)).toEqual({ exitCode: 0 });
    expect(io.outLines).toEqual([
      'cron-guard check: OK: 2 jobs (heartbeat, daily-digest) and the dispatch cron "* * * * *" of examples/vercel.ts match vercel.json (3 crons)',
    ]);
  });
});

describe("cron-guard check, mismatches", () => {
  it.each([
    [
      "a job's cron missing from wrangler.toml",
      ["--app", EXAMPLE_WORKER, "--wrangler", "wrangler.toml"],
      { "wrangler.toml": wrangler(["* * * * *"]) },
      [
        'wrangler.toml: job "daily-digest" runs on "0 8 * * *", which [triggers] crons lacks: Cloudflare would never run it',
      ],
    ],
    [
      "an extra cron in wrangler.toml",
      ["--app", EXAMPLE_WORKER, "--wrangler", "wrangler.toml"],
      { "wrangler.toml": wrangler(["* * * * *", "0 8 * * *", "*/5 * * * *"]) },
      [
        'wrangler.toml: cron "*/5 * * * *" matches no job (jobs: heartbeat, daily-digest), nor the dispatch cron "* * * * *": Cloudflare would fire it and nothing would run',
      ],
    ],
    [
      "an invalid cron in wrangler.toml",
      ["--app", EXAMPLE_WORKER, "--wrangler", "wrangler.toml"],
      { "wrangler.toml": wrangler(["* * * * *", "0 8 * * *", "61 * * * *"]) },
      [expect.stringMatching(/^wrangler\.toml: cron "61 \* \* \* \*" is not valid: /)],
    ],
    [
      "an environment's own triggers that lack a job",
      ["--app", EXAMPLE_WORKER, "--wrangler", "wrangler.toml"],
      {
        "wrangler.toml": wrangler(
          ["* * * * *", "0 8 * * *"],
          '[env.staging.triggers]\ncrons = ["* * * * *"]\n[env.production]\nname = "inherits"\n',
        ),
      },
      [
        'wrangler.toml [env.staging]: job "daily-digest" runs on "0 8 * * *", which [triggers] crons lacks: Cloudflare would never run it',
      ],
    ],
    [
      "the dispatch cron missing from wrangler.toml (a Worker with schedule handlers)",
      ["--app", fixture("worker-dispatch-every-5.ts"), "--wrangler", "wrangler.toml"],
      { "wrangler.toml": wrangler(["0 3 * * *"]) },
      [
        'wrangler.toml: the app has schedule handlers but [triggers] crons lacks its dispatch cron "*/5 * * * *": no dynamic schedule would ever be dispatched',
      ],
    ],
    [
      "a cron for a dispatch the app does not have",
      ["--app", fixture("vercel-no-schedules.ts"), "--wrangler", "wrangler.toml"],
      { "wrangler.toml": wrangler(["0 3 * * *", "0 * * * *", "* * * * *"]) },
      [
        'wrangler.toml: cron "* * * * *" matches no job (jobs: nightly, hourly), and the app has no dispatch cron (it has no schedule handlers): Cloudflare would fire it and nothing would run',
      ],
    ],
    [
      "a vercel.json path that is not /cron/<job>",
      ["--app", EXAMPLE_VERCEL, "--vercel", "vercel.json"],
      {
        "vercel.json": vercel([
          { path: "/api/cron/heartbeat", schedule: "* * * * *" },
          ...EXAMPLE_VERCEL_CRONS.slice(1),
        ]),
      },
      [
        'vercel.json: cron path "/api/cron/heartbeat" is not /cron/<job> of a job (jobs: heartbeat, daily-digest) or /dispatch: the app answers it 404',
        'vercel.json: job "heartbeat" has no cron entry { "path": "/cron/heartbeat", "schedule": "* * * * *" }: Vercel would never run it',
      ],
    ],
    [
      "a vercel.json path of no job",
      ["--app", EXAMPLE_VERCEL, "--vercel", "vercel.json"],
      {
        "vercel.json": vercel([
          ...EXAMPLE_VERCEL_CRONS,
          { path: "/cron/weekly", schedule: "0 0 * * 0" },
        ]),
      },
      [
        'vercel.json: cron path "/cron/weekly" names no job (jobs: heartbeat, daily-digest): the app answers it 404',
      ],
    ],
    [
      "a vercel.json schedule that differs from the job's cron",
      ["--app", EXAMPLE_VERCEL, "--vercel", "vercel.json"],
      {
        "vercel.json": vercel([
          EXAMPLE_VERCEL_CRONS[0] as { path: string; schedule: string },
          { path: "/cron/daily-digest", schedule: "0 9 * * *" },
          EXAMPLE_VERCEL_CRONS[2] as { path: string; schedule: string },
        ]),
      },
      [
        'vercel.json: "/cron/daily-digest" runs on "0 9 * * *" but job "daily-digest" runs on "0 8 * * *": the app answers that delivery 400',
      ],
    ],
    [
      "no /dispatch in vercel.json while the app has schedule handlers",
      ["--app", EXAMPLE_VERCEL, "--vercel", "vercel.json"],
      { "vercel.json": vercel(EXAMPLE_VERCEL_CRONS.slice(0, 2)) },
      [
        'vercel.json: the app has schedule handlers but no cron calls "/dispatch" (its dispatch cron is "* * * * *"): no dynamic schedule would ever be dispatched',
      ],
    ],
    [
      "/dispatch on another schedule than the app's dispatch cron",
      ["--app", fixture("worker-dispatch-every-5.ts"), "--vercel", "vercel.json"],
      {
        "vercel.json": vercel([
          { path: "/cron/nightly", schedule: "0 3 * * *" },
          { path: "/dispatch", schedule: "* * * * *" },
        ]),
      },
      [
        'vercel.json: "/dispatch" runs on "* * * * *" but the app\'s dispatch cron is "*/5 * * * *"',
      ],
    ],
    [
      "/dispatch for an app without schedule handlers",
      ["--app", fixture("vercel-no-schedules.ts"), "--vercel", "vercel.json"],
      {
        "vercel.json": vercel([
          { path: "/cron/nightly", schedule: "0 3 * * *" },
          { path: "/cron/hourly", schedule: "0 * * * *" },
          { path: "/dispatch", schedule: "* * * * *" },
        ]),
      },
      [
        'vercel.json: cron path "/dispatch" calls nothing: the app has no schedule handlers, so no /dispatch (it answers 404)',
      ],
    ],
    [
      "a malformed vercel.json entry",
      ["--app", EXAMPLE_VERCEL, "--vercel", "vercel.json"],
      { "vercel.json": vercel([...EXAMPLE_VERCEL_CRONS, { path: "/cron/heartbeat" } as never]) },
      ['vercel.json: crons[3] needs a string "path" and a string "schedule"'],
    ],
    [
      "every-minute crons on Vercel's Hobby plan",
      ["--app", EXAMPLE_VERCEL, "--vercel", "vercel.json", "--vercel-plan", "hobby"],
      { "vercel.json": vercel(EXAMPLE_VERCEL_CRONS) },
      [
        'vercel.json: "/cron/heartbeat" runs on "* * * * *", more than once a day, which Vercel\'s Hobby plan does not allow',
        'vercel.json: "/dispatch" runs on "* * * * *", more than once a day, which Vercel\'s Hobby plan does not allow',
      ],
    ],
  ])("fails on %s, one line per mismatch", async (_name, argv, files, lines) => {
    const { result, out, err } = await check(argv, files);
    expect(result).toEqual({ exitCode: 1 });
    expect(out).toEqual(lines);
    expect(err).toMatch(/^cron-guard check: \d+ mismatch(es)? between /);
  });

  it("compares crons by meaning, not spelling", async () => {
    const { result, out } = await check(
      ["--app", EXAMPLE_WORKER, "--wrangler", "wrangler.toml", "--vercel", "vercel.json"],
      {
        "wrangler.toml": wrangler(["*/1 * * * *", "00 08 * * *"]),
        "vercel.json": vercel([
          { path: "/cron/heartbeat", schedule: "*/1 * * * *" },
          { path: "/cron/daily-digest", schedule: "0 8 * * 0-6" },
          { path: "/dispatch", schedule: "* * * * SUN-SAT" },
        ]),
      },
    );
    expect(out).toEqual([expect.stringMatching(/^cron-guard check: OK: /)]);
    expect(result).toEqual({ exitCode: 0 });
  });

  it("with --vercel-plan hobby, an hourly cron fails and a daily one passes", async () => {
    const { result, out } = await check(
      ["--app", fixture("vercel-no-schedules.ts"), "--vercel-plan", "hobby"],
      {
        "vercel.json": vercel([
          { path: "/cron/nightly", schedule: "0 3 * * *" },
          { path: "/cron/hourly", schedule: "0 * * * *" },
        ]),
      },
    );
    expect(out).toEqual([
      'vercel.json: "/cron/hourly" runs on "0 * * * *", more than once a day, which Vercel\'s Hobby plan does not allow',
    ]);
    expect(result).toEqual({ exitCode: 1 });
  });

  it("reads wrangler.jsonc (comments, trailing commas) by default, and its main as the app", async () => {
    const jsonc = `{
      // the Worker
      "name": "not // a comment, /* nor this */ \\" still a string",
      "main": ${JSON.stringify(EXAMPLE_WORKER)},
      "triggers": {
        /* heartbeat and dispatch, the digest */
        "crons": ["* * * * *", "0 8 * * *",],
      },
    }`;
    const { result, out } = await check([], { "wrangler.jsonc": jsonc });
    expect(out).toEqual([
      expect.stringMatching(/^cron-guard check: OK: 2 jobs .* match wrangler\.jsonc \(2 crons\)$/),
    ]);
    expect(result).toEqual({ exitCode: 0 });
  });
});

describe("cron-guard check, input it cannot use", () => {
  it.each([
    [
      "a wrangler.toml that is not TOML",
      ["--app", EXAMPLE_WORKER],
      { "wrangler.toml": "[triggers\ncrons = 1" },
      1,
      /^cron-guard check: wrangler\.toml: not valid TOML: /,
    ],
    [
      "a vercel.json that is not JSON",
      ["--app", EXAMPLE_WORKER],
      { "vercel.json": "{ crons: [] }" },
      1,
      /^cron-guard check: vercel\.json: not valid JSON: /,
    ],
    [
      "a default export that is no cron-guard app",
      ["--app", fixture("not-an-app.ts")],
      { "vercel.json": vercel([]) },
      1,
      /not-an-app\.ts: its default export is not a cron-guard app: export default the app of createCronApp or createVercelApp, or the Worker of createWorker/,
    ],
    [
      "an app module that does not exist",
      ["--app", "nope.js"],
      { "vercel.json": vercel([]) },
      1,
      /^cron-guard check: cannot import nope\.js: /,
    ],
    ["no config file", ["--app", EXAMPLE_WORKER], {}, 2, /nothing to check: no wrangler\.toml/],
    [
      "no app and no wrangler main",
      [],
      { "vercel.json": vercel([]) },
      2,
      /--app <module> is needed/,
    ],
    [
      "an unknown plan",
      ["--vercel-plan", "free"],
      { "vercel.json": vercel([]) },
      2,
      /--vercel-plan must be one of hobby, pro, enterprise, got "free"/,
    ],
    [
      "an unknown flag",
      ["--wrangler-file", "x"],
      {},
      2,
      /unknown option "--wrangler-file"; the options are --app <module>, --wrangler <file>, --vercel <file>, --vercel-plan <plan>/,
    ],
  ])("%s: says why, with its exit code", async (_name, argv, files, exitCode, message) => {
    const { result, out, err } = await check(argv, files);
    expect(result).toEqual({ exitCode });
    expect(err).toMatch(message);
    expect(out).toEqual([]);
  });

  it("`help check` and `check --help` describe every flag", async () => {
    const help = captureIo();
    expect(await runCli(["help", "check"], help)).toEqual({ exitCode: 0 });
    const flagHelp = captureIo();
    expect(await runCli(["check", "--help"], flagHelp)).toEqual({ exitCode: 0 });
    const text = help.outLines.join("\n");
    expect(flagHelp.outLines.join("\n")).toBe(text);
    for (const flag of [
      "--app <module>",
      "--wrangler <file>",
      "--vercel <file>",
      "--vercel-plan <plan>",
    ]) {
      expect(text).toMatch(new RegExp(`^  ${flag}\\s+\\S.{10,}`, "m"));
    }
    expect(text).toContain("npx tsx node_modules/.bin/cron-guard check");
  });
});

// The installed CLI (dist/cli.js, which `npm test` builds first), as a user runs it.
describe("cron-guard check from dist", () => {
  const run = promisify(execFile);
  const node = async (args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, args, { cwd: REPO });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };

  it("under a TypeScript loader (node --import tsx) checks the example: CI runs this", async () => {
    const { code, stdout, stderr } = await node(["--import", "tsx", "dist/cli.js", "check"]);
    expect(stderr).toBe("");
    expect(stdout).toMatch(
      /^cron-guard check: OK: 2 jobs .* match wrangler\.toml \(2 crons\) and vercel\.json \(3 crons\)\n$/,
    );
    expect(code).toBe(0);
  });

  it("without one says how to run it on a .ts app", async () => {
    const { code, stderr } = await node(["dist/cli.js", "check", "--app", "examples/worker.ts"]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/cannot import examples\/worker\.ts: /);
    expect(stderr).toContain(
      "Node cannot import TypeScript by itself: run the check under a TypeScript loader, e.g. `npx tsx node_modules/.bin/cron-guard check ...` or `node --import tsx node_modules/.bin/cron-guard check ...`",
    );
  });
});
