/**
 * The Next.js App Router example (examples/nextjs) as a Next.js project gets it: its route file
 * imports the built package (`cron-guard/vercel`, so `npm run build` first; npm test does), type-
 * checks under Next.js's compiler settings, exports only what a route file may, and its handlers
 * serve the cron app under /api against a real database through the bridge, called the way its
 * vercel.json's crons call them.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { createClient } from "redis";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { bridgeEnv } from "../support/harness.js";

const ROOT = join(import.meta.dirname, "../..");
const EXAMPLE = join(ROOT, "examples/nextjs");
const ROUTE_FILE = join(EXAMPLE, "app/api/[[...route]]/route.ts");
const SECRET = "nextjs-test-secret";
const BEARER = { authorization: `Bearer ${SECRET}` };
/**
 * The example keeps cron-guard's default key prefix, as a real deployment would, so it gets a
 * database of its own on the shared redis-server: other files' keys are never its concern.
 */
const DATABASE = 11;

/** What a Next.js App Router route file may export (route segment config and HTTP methods). */
const ROUTE_EXPORTS = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
  "dynamic",
  "dynamicParams",
  "revalidate",
  "fetchCache",
  "runtime",
  "preferredRegion",
  "maxDuration",
  "generateStaticParams",
]);

type RouteHandler = (request: Request) => Response | Promise<Response>;
type RouteModule = Record<string, unknown> & Record<"GET" | "HEAD" | "POST", RouteHandler>;

interface VercelCron {
  path: string;
  schedule: string;
}

describe("the Next.js App Router example", () => {
  let bridge: RunningBridge;
  let direct: ReturnType<typeof createClient>;
  let route: RouteModule;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, "dist/platforms/vercel.js"))) {
      throw new Error("the example imports the built package: run `npm run build` first");
    }
    const { redisUrl } = bridgeEnv();
    bridge = await startBridge({ redisUrl: `${redisUrl}/${DATABASE}` });
    direct = createClient({ url: redisUrl, RESP: 2, database: DATABASE });
    direct.on("error", () => {});
    await direct.connect();
    vi.stubEnv("UPSTASH_REDIS_REST_URL", bridge.url);
    vi.stubEnv("UPSTASH_REDIS_REST_TOKEN", bridge.token);
    vi.stubEnv("KV_REST_API_URL", "");
    vi.stubEnv("KV_REST_API_TOKEN", "");
    vi.stubEnv("CRON_SECRET", SECRET);
    vi.stubEnv("CRON_GUARD_ALERT_URL", "");
    // By path, not a literal specifier: the root tsconfig leaves the example (and the dist it
    // imports) to its own tsconfig, so a checkout without dist still type-checks.
    route = (await import(pathToFileURL(ROUTE_FILE).href)) as RouteModule;
  });

  beforeEach(async () => {
    await direct.flushDb();
  });

  afterAll(async () => {
    vi.unstubAllEnvs();
    await direct?.flushDb();
    direct?.destroy();
    await bridge?.close();
  });

  /** A request as Next.js hands it to the route: the full URL of the deployment. */
  function call(
    method: keyof RouteModule & string,
    path: string,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    const handler = route[method] as RouteHandler;
    return Promise.resolve(
      handler(new Request(`https://example.vercel.app${path}`, { method, headers })),
    );
  }

  it("type-checks under Next.js's compiler settings against the built package", async () => {
    const run = promisify(execFile)(
      process.execPath,
      [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(EXAMPLE, "tsconfig.json")],
      { cwd: ROOT },
    );
    // tsc prints its errors on stdout and exits non-zero: the errors are the failure message.
    const errors = await run.then(
      ({ stdout }) => stdout,
      (error: { stdout?: string }) => error.stdout || String(error),
    );
    expect(errors).toBe("");
  }, 120_000);

  it("exports only what a route file may, on the Node.js runtime, never cached", () => {
    const unknown = Object.keys(route).filter((name) => !ROUTE_EXPORTS.has(name));
    expect(unknown).toEqual([]);
    expect(route.runtime).toBe("nodejs");
    expect(route.dynamic).toBe("force-dynamic");
    for (const method of ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]) {
      expect(typeof route[method], method).toBe("function");
    }
  });

  it("runs each job of vercel.json once per slot when Vercel's crons call /api/cron/<job>", async () => {
    const { crons } = JSON.parse(readFileSync(join(EXAMPLE, "vercel.json"), "utf8")) as {
      crons: VercelCron[];
    };
    expect(crons.map((cron) => cron.path)).toEqual(["/api/cron/daily-report"]);
    for (const { path, schedule } of crons) {
      const vercel = {
        ...BEARER,
        "user-agent": "vercel-cron/1.0",
        "x-vercel-cron-schedule": schedule,
      };
      const first = await call("GET", path, vercel);
      expect(first.status, await first.clone().text()).toBe(200);
      const slot = first.headers.get("cron-guard-slot") ?? "";
      expect(await first.json()).toMatchObject({
        status: "ran",
        job: "daily-report",
        value: { report: slot },
      });
      const second = await call("GET", path, vercel);
      expect(second.status).toBe(204);
      expect(second.headers.get("cron-guard-reason")).toBe("done");
      expect(second.headers.get("cron-guard-slot")).toBe(slot);
      expect(JSON.parse((await direct.get(`daily-report:${slot}`)) ?? "null")).toEqual({
        fence: Number(first.headers.get("cron-guard-fence")),
      });
    }
  });

  it("serves the dashboard under /api/dashboard, its data behind the bearer", async () => {
    const page = await call("GET", "/api/dashboard");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toMatch(/<script nonce="[^"]+">/);

    const refused = await call("GET", "/api/dashboard/data");
    expect(refused.status).toBe(401);
    const data = await call("GET", "/api/dashboard/data", BEARER);
    expect(data.status).toBe(200);
    const body = (await data.json()) as { jobs: { name: string; cron: string; graceMs: number }[] };
    expect(body.jobs).toMatchObject([
      { name: "daily-report", cron: "0 8 * * *", graceMs: 3_600_000 },
    ]);
  });

  it("answers bad calls with JSON errors and writes nothing", async () => {
    const job = "/api/cron/daily-report";
    const answers = [
      [await call("GET", job), 401],
      [await call("GET", job, { authorization: "Bearer wrong" }), 401],
      [await call("GET", job, { ...BEARER, "x-vercel-cron-schedule": "0 9 * * *" }), 400],
      [await call("POST", "/api/cron/no-such-job", BEARER), 404],
      [await call("GET", "/api/nope", BEARER), 404],
      [await call("PUT", job, BEARER), 405],
    ] as const;
    for (const [response, status] of answers) {
      expect(response.status, response.url).toBe(status);
      expect(await response.json()).toEqual(expect.objectContaining({ error: expect.any(String) }));
    }
    const head = await call("HEAD", job, BEARER);
    expect(head.status).toBe(405);
    expect(head.headers.get("allow")).toBe("GET, POST");
    expect(await direct.keys("*")).toEqual([]);
  });
});
