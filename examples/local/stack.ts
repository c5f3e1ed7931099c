import { randomBytes } from "node:crypto";
import { serve } from "@hono/node-server";
import { Redis } from "@upstash/redis";
import { startBridge } from "../../src/bridge/index.js";
import { createCronApp, cronSecretProblem } from "../../src/hono/index.js";
import { alerts } from "../../src/hono/plugins/alerts.js";
import { dashboard } from "../../src/hono/plugins/dashboard.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { openApi } from "../../src/hono/plugins/openapi.js";
import {
  exampleHandlers,
  exampleJobs,
  exampleSchedules,
  failingSchedule,
  type HeartbeatRecord,
} from "../jobs.js";
import { createLocalScheduler, type FiredSlot } from "./scheduler.js";
import { fireStorm, type StormSummary } from "./storm.js";

export interface LocalStackOptions {
  /** Port of the cron app. Default 8787. */
  port?: number;
  /** Port of the Upstash-compatible bridge. Default 8079. */
  bridgePort?: number;
  /** Concurrent deliveries per example job in the opening storm. Default 50. */
  deliveries?: number;
  /** Bearer secret of the app. Default: $CRON_SECRET, else a random one. */
  secret?: string;
  /** Redis to use instead of spawning a local redis-server. */
  redisUrl?: string;
  /**
   * After the storm, keep firing every cron on time from this many simulated regions (each as
   * Vercel GET and as a scheduled event); 0 turns the scheduler off. Default 3.
   */
  regions?: number;
  /** Each fired slot of the scheduler, with its line (`heartbeat 23:05Z: 1 ran, 5 skipped`). */
  onFired?: (fired: FiredSlot, line: string) => void;
}

export interface LocalStack {
  appUrl: string;
  /** The dashboard page: `${appUrl}/dashboard`. */
  dashboardUrl: string;
  bridgeUrl: string;
  bridgeToken: string;
  secret: string;
  /** The example jobs, by name and cron. */
  jobs: readonly { name: string; cron: string }[];
  storms: StormSummary[];
  /** Heartbeat records per slot after the storm: 1 everywhere means no duplicate ran. */
  heartbeatRecordsBySlot: Record<string, number>;
  close(): Promise<void>;
}

function listen(app: { fetch: (request: Request) => Response | Promise<Response> }, port: number) {
  return new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () => resolve(server));
    server.once("error", reject);
  });
}

/**
 * The embedded default: redis-server, the bridge, the example cron app on Node, and an opening
 * storm of concurrent deliveries per job, the way several regions hit one deployment.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const secret = options.secret ?? process.env.CRON_SECRET ?? randomBytes(18).toString("base64url");
  const secretProblem = cronSecretProblem(secret);
  if (secretProblem !== undefined) {
    // the app would answer 500 to every trigger: say so before starting anything
    throw new TypeError(`CRON_SECRET ${secretProblem}`);
  }
  const bridge = await startBridge({
    port: options.bridgePort ?? 8079,
    redisUrl: options.redisUrl,
  });
  const keyPrefix = "cron-guard:example";
  const jobs = exampleJobs({ keyPrefix });
  const redis = new Redis({ url: bridge.url, token: bridge.token });
  const app = createCronApp({
    jobs,
    handlers: exampleHandlers(),
    schedules: [...exampleSchedules({ keyPrefix }), failingSchedule()],
    redis,
    cronSecret: () => secret,
    guardOptions: { region: "local" },
    plugins: [dynamicSchedules(), dashboard(), openApi(), alerts()],
  });
  let server: ReturnType<typeof serve>;
  try {
    server = await listen(app, options.port ?? 8787);
  } catch (error) {
    await bridge.close();
    throw new Error(
      `cannot listen on port ${options.port ?? 8787}: ${(error as Error).message}; pass --port`,
      {
        cause: error,
      },
    );
  }
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : (options.port ?? 8787);
  const appUrl = `http://127.0.0.1:${port}`;

  const storms: StormSummary[] = [];
  for (const job of (options.deliveries ?? 50) > 0 ? jobs : []) {
    storms.push(
      await fireStorm({
        baseUrl: appUrl,
        secret,
        job: job.name,
        cron: job.cron,
        deliveries: options.deliveries ?? 50,
      }),
    );
  }
  const records = await redis.lrange<HeartbeatRecord>(`${keyPrefix}:heartbeat`, 0, -1);
  const heartbeatRecordsBySlot: Record<string, number> = {};
  for (const record of records) {
    heartbeatRecordsBySlot[record.slot] = (heartbeatRecordsBySlot[record.slot] ?? 0) + 1;
  }

  const regions = options.regions ?? 3;
  const scheduler =
    regions > 0
      ? createLocalScheduler({ app, baseUrl: appUrl, secret, regions, onFired: options.onFired })
      : undefined;
  const running = scheduler?.run().catch((error: unknown) => {
    console.error(`cron-guard: local scheduler stopped: ${String(error)}`);
    return [];
  });

  return {
    appUrl,
    dashboardUrl: `${appUrl}/dashboard`,
    bridgeUrl: bridge.url,
    bridgeToken: bridge.token,
    secret,
    jobs: jobs.map(({ name, cron }) => ({ name, cron })),
    storms,
    heartbeatRecordsBySlot,
    async close() {
      scheduler?.stop();
      await running;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await bridge.close();
    },
  };
}
