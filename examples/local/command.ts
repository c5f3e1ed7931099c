import { parseArgs } from "node:util";
import { type CliCommand, integerOption, portOption } from "../../src/cli/framework.js";
import { startLocalStack } from "./stack.js";
import { formatStorm } from "./storm.js";

/** `npm start`: the whole local stack, an opening storm per example job, then it serves. */
export const startCommand: CliCommand = {
  summary: "local stack: redis-server + bridge + example cron app, with a simulated cron storm",
  usage:
    "npm start -- [--port 8787] [--bridge-port 8079] [--deliveries 50] [--regions 3] [--redis-url redis://...] [--exit]",
  async run(args, io) {
    const { values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string" },
        "bridge-port": { type: "string" },
        deliveries: { type: "string", default: "50" },
        regions: { type: "string", default: "3" },
        "redis-url": { type: "string" },
        exit: { type: "boolean", default: false },
      },
    });
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
    io.out("");
    io.out(`app:    ${stack.appUrl}   (jobs: GET ${stack.appUrl}/cron)`);
    io.out(`dashboard: ${stack.dashboardUrl}   (asks for the CRON_SECRET below)`);
    io.out(`bridge: UPSTASH_REDIS_REST_URL=${stack.bridgeUrl}`);
    io.out(`        UPSTASH_REDIS_REST_TOKEN=${stack.bridgeToken}`);
    io.out(`secret: CRON_SECRET=${stack.secret}`);
    io.out("");
    io.out(
      "Trigger a job by hand (the current minute: 204 done if the scheduler already ran it, else 200):",
    );
    io.out(
      `  curl -i -X POST -H "Authorization: Bearer ${stack.secret}" ${stack.appUrl}/cron/heartbeat`,
    );
    io.out(
      "Backfill a past slot (a fire time of the job's cron; run it twice: 200, then 409 with what ran, then add &force=true):",
    );
    // The minute before the storm's slot: a fire time of "* * * * *" that the storm did not run.
    const heartbeatSlot = stack.storms.find((storm) => storm.job === "heartbeat")?.slot;
    const stormSlotMs = Date.parse(heartbeatSlot ?? "") || Date.now();
    const previousMinute = new Date(Math.floor(stormSlotMs / 60_000) * 60_000 - 60_000)
      .toISOString()
      .replace(".000Z", "Z");
    io.out(
      `  curl -i -X POST -H "Authorization: Bearer ${stack.secret}" "${stack.appUrl}/cron/heartbeat?slot=${previousMinute}"`,
    );
    io.out("Run the same jobs as a Worker in workerd against this bridge (another terminal):");
    io.out(
      `  UPSTASH_REDIS_REST_URL=${stack.bridgeUrl} UPSTASH_REDIS_REST_TOKEN=${stack.bridgeToken} npm run dev:worker`,
    );
    if (values.exit) {
      await stack.close();
      const ok =
        stack.storms.every((s) => s.ran <= 1 && Object.keys(s.other).length === 0) &&
        duplicates === 0;
      return { exitCode: ok ? 0 : 1 };
    }
    io.out("");
    io.out(
      `local scheduler: every cron fires on time from ${regions} regions (each as Vercel GET and as a scheduled event); one line per fired slot:`,
    );
    io.err("cron-guard: serving; Ctrl-C stops everything");
    return { running: { stop: stack.close } };
  },
};
