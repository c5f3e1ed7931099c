import {
  type CliCommand,
  type CliFlag,
  integerOption,
  parseFlags,
  portOption,
} from "../../src/cli/framework.js";
import { backfillHint } from "./hints.js";
import { startLocalStack } from "./stack.js";
import { formatStorm } from "./storm.js";

const START_FLAGS = [
  {
    name: "port",
    value: "n",
    description: "Port of the example cron app; 0 picks a free one. Default: 8787.",
  },
  {
    name: "bridge-port",
    value: "n",
    description: "Port of the Upstash-compatible bridge; 0 picks a free one. Default: 8079.",
  },
  {
    name: "deliveries",
    value: "n",
    description:
      "Concurrent deliveries per example job in the opening storm (half Vercel GET, half\nmanual POST), 1 to 10000. Default: 50.",
  },
  {
    name: "regions",
    value: "n",
    description:
      "Simulated regions the local scheduler delivers every fire from afterwards, 1 to 50.\nDefault: 3.",
  },
  {
    name: "redis-url",
    value: "url",
    description:
      "Use this Redis (redis://host:port) instead of spawning a private, throwaway\nredis-server.",
  },
  {
    name: "exit",
    description:
      "Stop everything after the storm's summary instead of serving (exit code 1 if any slot\nran twice). Prints no URLs: nothing is left listening.",
  },
] as const satisfies readonly CliFlag[];

/** `npm start`: the whole local stack, an opening storm per example job, then it serves. */
export const startCommand: CliCommand = {
  summary: "local stack: redis-server + bridge + example cron app, with a simulated cron storm",
  usage:
    "npm start -- [--port 8787] [--bridge-port 8079] [--deliveries 50] [--regions 3] [--redis-url redis://...] [--exit]",
  options: START_FLAGS,
  async run(args, io) {
    const values = parseFlags(START_FLAGS, args);
    const deliveries =
      integerOption("--deliveries", values.deliveries, { min: 1, max: 10_000 }) ?? 50;
    const regions = integerOption("--regions", values.regions, { min: 1, max: 50 }) ?? 3;
    io.err("cron-guard: starting redis-server, the bridge and the example app ...");
    const stack = await startLocalStack({
      port: portOption("--port", values.port),
      bridgePort: portOption("--bridge-port", values["bridge-port"]),
      deliveries,
      redisUrl: values["redis-url"],
      // --exit stops after the storm's summary: no scheduler.
      regions: values.exit ? 0 : regions,
      onFired: (_fired, line) => io.out(`  ${line}`),
    });
    io.out(
      `cron storm: ${deliveries} concurrent deliveries per job (half Vercel GET, half manual POST)`,
    );
    for (const storm of stack.storms) io.out(`  ${formatStorm(storm)}`);
    const duplicates = Object.values(stack.heartbeatRecordsBySlot).filter((n) => n > 1).length;
    io.out(
      `  heartbeat side effects: ${Object.keys(stack.heartbeatRecordsBySlot).length} slot(s) recorded, ${duplicates} with duplicates`,
    );
    if (values.exit) {
      await stack.close();
      io.out("");
      io.out(
        "--exit: stopped the app, the bridge and redis-server; `npm start` keeps them serving.",
      );
      const ok =
        stack.storms.every((s) => s.ran <= 1 && Object.keys(s.other).length === 0) &&
        duplicates === 0;
      return { exitCode: ok ? 0 : 1 };
    }
    const authorization = `-H "Authorization: Bearer ${stack.secret}"`;
    io.out("");
    io.out(`app:    ${stack.appUrl}   (jobs: curl ${authorization} ${stack.appUrl}/cron)`);
    io.out(`dashboard: ${stack.dashboardUrl}   (asks for the CRON_SECRET below)`);
    io.out(`bridge: UPSTASH_REDIS_REST_URL=${stack.bridgeUrl}`);
    io.out(`        UPSTASH_REDIS_REST_TOKEN=${stack.bridgeToken}`);
    io.out(`secret: CRON_SECRET=${stack.secret}`);
    io.out("");
    io.out(
      "Trigger a job by hand: the storm ran this minute and the local scheduler runs every minute on time, so expect 204 with cron-guard-reason: done (the guard refusing a second run); only in the first moments of a minute can yours come first (200):",
    );
    io.out(`  curl -i -X POST ${authorization} ${stack.appUrl}/cron/heartbeat`);
    const backfill = await backfillHint(stack, "heartbeat");
    io.out(backfill.heading);
    io.out(`  curl -i -X POST ${authorization} "${backfill.url}"`);
    io.out(
      "Run the same jobs as a Worker in workerd on this bridge (another terminal; it shares this bridge's slots, so what ran here is done there):",
    );
    io.out(
      `  UPSTASH_REDIS_REST_URL=${stack.bridgeUrl} UPSTASH_REDIS_REST_TOKEN=${stack.bridgeToken} npm run dev:worker`,
    );
    io.out("");
    io.out(
      `local scheduler: every cron fires on time from ${regions} regions (each as Vercel GET and as a scheduled event); one line per fired slot:`,
    );
    io.err("cron-guard: serving; Ctrl-C stops everything");
    return { running: { stop: stack.close } };
  },
};
