/**
 * `npm run bench`: prints one table per measurement and writes bench/results.json. Spawns its own
 * redis-server and bridge; bounded to a few minutes on 2 cores.
 */
import { writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { formatBundles, MINIMAL_TARGET_KIB, measureBundles } from "./bundle.js";
import {
  type DispatchScaleRow,
  measureDispatchDefaults,
  measureDispatchDrain,
  measureDispatchScale,
} from "./dispatch.js";
import { measureHttpThroughput, pickLoadGenerator, placement, type ThroughputRow } from "./load.js";
import {
  measureBridgeOverhead,
  measureLateDuplicates,
  measureRoundTrips,
  measureStorm,
} from "./measure.js";
import { measureQuorumClaims } from "./quorum.js";
import { formatStormCommands, measureStormCommands } from "./storm-commands.js";
import { type BenchStack, formatTable, median, round, startBenchStack } from "./support.js";

const STORM_DELIVERIES = 1_000;
const DISPATCH_DUE = 100;
const DRAIN_DUE = 1_000;
const DRAIN_TICKS = 10;
const DEFAULTS_DUE = 1_000;
/** Workers Free allows 50 subrequests per invocation. */
const DEFAULTS_MAX_REQUESTS = 50;
const STORM_REPETITIONS = 3;
const STORM_COMMANDS_DELIVERIES = 300;
const STORM_COMMANDS_ISOLATES = [1, 3];
const ROUND_TRIP_SAMPLES = 20;
const OVERHEAD_OPERATIONS = 2_000;
const OVERHEAD_CONCURRENCY = 32;
const LATE_SLOTS = 1_000;
const LATE_MAX_GAP_MS = 2_000;
const LATE_CONCURRENCY = 200;
const QUORUM_CLAIMS = 200;
const LOAD_CONNECTIONS = 50;
const LOAD_SECONDS = 3;
const LOAD_ROUNDS = 5;
const LOAD_PIPELINE = 10;

const startedAt = Date.now();
const machine = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? "unknown",
};
console.log(`cron-guard bench: node ${machine.node}, ${machine.cpus} x ${machine.cpuModel}\n`);

if (process.env.BENCH_ONLY === "bundle") {
  // Only section 9 (wrangler, no Redis; about 20 s): nothing is written to bench/results.json.
  const bundle = await bundleSection();
  if (bundle.failures.length > 0) console.log(`CLAIMS NOT MET: ${bundle.failures.join(", ")}`);
  process.exit(bundle.failures.length > 0 ? 1 : 0);
}

const stack = await startBenchStack();
try {
  if (process.env.BENCH_ONLY === "dispatch") {
    // Only section 8 (a few seconds): nothing is written to bench/results.json.
    const dispatch = await dispatchSection(stack);
    if (dispatch.failures.length > 0) {
      console.log(`CLAIMS NOT MET: ${dispatch.failures.join(", ")}`);
      process.exitCode = 1;
    }
  } else if (process.env.BENCH_ONLY === "storm-commands") {
    // Only section 1b (a few seconds): nothing is written to bench/results.json.
    const storm = await stormCommandsSection(stack);
    if (storm.failures.length > 0) {
      console.log(`CLAIMS NOT MET: ${storm.failures.join(", ")}`);
      process.exitCode = 1;
    }
  } else {
    await runAll();
  }
} finally {
  await stack.close();
}

async function runAll() {
  const storms = [
    await measureStorm(stack, "in-process", STORM_DELIVERIES, STORM_REPETITIONS),
    await measureStorm(stack, "http", STORM_DELIVERIES, STORM_REPETITIONS),
  ];
  console.log(
    `1. Storm: ${STORM_DELIVERIES} concurrent deliveries of one slot, median of ${STORM_REPETITIONS}`,
  );
  console.log(
    formatTable(
      [
        "mode",
        "decisions/s",
        "204 p50 ms",
        "204 p99 ms",
        "runs per slot",
        "bridge requests/delivery",
      ],
      storms.map((s) => [
        s.mode,
        round(s.decisionsPerSecond, 0),
        round(s.skippedP50Ms),
        round(s.skippedP99Ms),
        s.runsPerSlot.join(" "),
        round(s.bridgeRequestsPerDelivery, 3),
      ]),
    ),
  );

  const stormCommands = await stormCommandsSection(stack);

  const trips = await measureRoundTrips(stack, ROUND_TRIP_SAMPLES);
  console.log(`\n2. Round trips: HTTP requests the bridge received (median of ${trips.samples})`);
  console.log(
    formatTable(
      ["role", "requests", "commands"],
      [
        ["winner", median(trips.winnerRequests), median(trips.winnerCommands)],
        ["loser", median(trips.loserRequests), median(trips.loserCommands)],
        ["winner after SCRIPT FLUSH", trips.coldWinnerRequests, "-"],
      ],
    ),
  );

  const overhead = await measureBridgeOverhead(stack, OVERHEAD_OPERATIONS, OVERHEAD_CONCURRENCY);
  console.log(
    `\n3. Bridge overhead: ${OVERHEAD_OPERATIONS} operations, @upstash/redis + bridge vs node redis direct`,
  );
  console.log(
    formatTable(
      ["operation", "in flight", "bridge ops/s", "direct ops/s", "direct / bridge"],
      overhead.map((row) => [
        row.operation,
        row.concurrency,
        round(row.bridgeOpsPerSecond, 0),
        round(row.directOpsPerSecond, 0),
        `${round(row.ratio, 2)}x`,
      ]),
    ),
  );

  const late = await measureLateDuplicates(stack, LATE_SLOTS, LATE_MAX_GAP_MS, LATE_CONCURRENCY);
  console.log(
    `\n4. Late duplicates: ${late.slots} slots, second delivery 0-${late.maxGapMs} ms after the first finished`,
  );
  console.log(
    formatTable(
      ["guard", "duplicate runs"],
      [
        ["cron-guard run()", late.cronGuardDuplicateRuns],
        ["@upstash/lock acquire/run/release", late.upstashLockDuplicateRuns],
      ],
    ),
  );

  const generator = pickLoadGenerator();
  const cpusFor = placement(true);
  const throughput = await measureHttpThroughput({
    redisUrl: stack.redis.url,
    redisPid: stack.redis.pid,
    connections: LOAD_CONNECTIONS,
    durationSeconds: LOAD_SECONDS,
    pipelineSize: LOAD_PIPELINE,
    rounds: LOAD_ROUNDS,
    generator,
  });
  const where =
    cpusFor.server === undefined
      ? "not pinned (one CPU or no taskset)"
      : `the measured server alone on CPU ${cpusFor.server}; ${generator}, redis-server, this process and the idle server on CPU ${cpusFor.load}; 1 s of load before each measured round`;
  console.log(
    `\n6. Bridge throughput: ${generator}, ${LOAD_CONNECTIONS} connections, medians of ${LOAD_ROUNDS} alternating rounds of ${LOAD_SECONDS} s; each server in its own process, ${where}; POST / is SET NX PX, /pipeline ${LOAD_PIPELINE} of them; node redis direct = same commands, ${LOAD_CONNECTIONS} in flight, no HTTP`,
  );
  console.log(formatThroughput(throughput));

  const quorum = await measureQuorumClaims(stack, QUORUM_CLAIMS);
  console.log(
    `\n7. Quorum mode: ${QUORUM_CLAIMS} sequential claims, one database vs a majority of three (each its own redis-server and bridge)`,
  );
  console.log(
    formatTable(
      ["store", "claim p50 ms", "claim p99 ms"],
      quorum.map((row) => [row.store, round(row.p50Ms, 2), round(row.p99Ms, 2)]),
    ),
  );

  const dispatch = await dispatchSection(stack);
  const bundle = await bundleSection();

  const seconds = (Date.now() - startedAt) / 1000;
  const results = {
    machine,
    command: "npm run bench",
    seconds,
    storm: storms,
    stormCommands: stormCommands.rows,
    roundTrips: trips,
    bridgeOverhead: overhead,
    lateDuplicates: late,
    quorumClaims: quorum,
    bridgeThroughput: throughput,
    dispatchScale: {
      rows: dispatch.scale,
      ratio: dispatch.ratio,
      drain: dispatch.drain,
      defaults: dispatch.defaults,
    },
    bundle: bundle.rows.map(({ worker, plain, minified, before }) => ({
      worker,
      kibGzip: plain.gzipKib,
      kibGzipMinified: minified.gzipKib,
      kib: plain.kib,
      kibMinified: minified.kib,
      before,
    })),
  };
  await writeFile(
    new URL("./results.json", import.meta.url),
    `${JSON.stringify(results, null, 2)}\n`,
  );
  console.log(`\nwrote bench/results.json (${seconds.toFixed(1)} s)`);
  const failures = [
    ...storms.filter((s) => s.runsPerSlot.some((n) => n !== 1)).map((s) => `storm ${s.mode}`),
    ...stormCommands.failures,
    ...(median(trips.winnerRequests) !== 2 || median(trips.loserRequests) !== 1
      ? ["round trips"]
      : []),
    ...(late.cronGuardDuplicateRuns !== 0 ? ["late duplicates"] : []),
    ...dispatch.failures,
    ...bundle.failures,
    ...throughput
      .filter((row) => row.bridgeVsPassthrough < 1)
      .map((row) => `bridge slower than the passthrough on ${row.route}`),
    // p50 within 5%: wrk reports it to 10 µs and it moves that much between identical runs
    ...throughput
      .filter((row) => row.bridge.p50Ms > row.passthrough.p50Ms * 1.05)
      .map((row) => `bridge p50 worse than the passthrough's on ${row.route}`),
  ];
  if (failures.length > 0) {
    console.log(`CLAIMS NOT MET: ${failures.join(", ")}`);
    process.exitCode = 1;
  }
}

/**
 * Section 1b: the commands a storm sends to Redis, per isolate (one @upstash/redis client each).
 * Claims: one run; the concurrent storm costs at most isolates + 1 commands (one claim per
 * isolate and the winner's completion); with the late wave, at most two per isolate (an isolate
 * whose claim found the slot running asks once more when its late deliveries come: "running"
 * cannot be remembered, the run may still fail and be released).
 */
async function stormCommandsSection(stack: BenchStack) {
  const rows = [];
  for (const isolates of STORM_COMMANDS_ISOLATES) {
    rows.push(await measureStormCommands(stack, isolates, STORM_COMMANDS_DELIVERIES));
  }
  console.log(
    `\n1b. Storm: commands per isolate, ${STORM_COMMANDS_DELIVERIES} concurrent then ${STORM_COMMANDS_DELIVERIES} late deliveries of one slot per isolate (EVALSHA + EVAL counted at redis-server; before single flight, one per delivery plus the completion)`,
  );
  console.log(formatStormCommands(rows));
  const failures = rows
    .filter(
      (row) =>
        row.runs !== 1 || row.stormCommands > row.isolates + 1 || row.commands > 2 * row.isolates,
    )
    .map(
      (row) =>
        `storm commands (${row.isolates} isolates: ${row.stormCommands} in the storm, ${row.commands} with the late wave, ${row.runs} runs)`,
    );
  return { rows, failures };
}

/** Section 8: the dispatcher's tick at scale, drained by concurrent ticks, and with its defaults. */
async function dispatchSection(stack: BenchStack) {
  const dispatchScale = [
    await measureDispatchScale(stack, 1_000, DISPATCH_DUE),
    await measureDispatchScale(stack, 100_000, DISPATCH_DUE),
  ];
  const [fewStored, manyStored] = dispatchScale as [DispatchScaleRow, DispatchScaleRow];
  const dispatchRatio = manyStored.tickMs / fewStored.tickMs;
  console.log(
    `\n8. Dispatch scale: one tick over ${DISPATCH_DUE} due schedules, median of 3 (each instance its own client)`,
  );
  console.log(
    formatTable(
      ["stored", "due", "tick ms", "bridge requests", "ran"],
      dispatchScale.map((row) => [
        row.stored,
        row.due,
        round(row.tickMs, 0),
        row.requests,
        row.ran,
      ]),
    ),
  );
  console.log(`   100,000 stored vs 1,000 stored: ${round(dispatchRatio, 2)}x the tick time`);
  const drain = await measureDispatchDrain(stack, DRAIN_DUE, DRAIN_TICKS);
  console.log(
    `   ${DRAIN_DUE} due over ${DRAIN_TICKS} concurrent ticks: drained in ${round(drain.drainMs, 0)} ms, ran per tick ${drain.ranPerTick.join("/")}, duplicates ${drain.duplicates}`,
  );

  const defaults = await measureDispatchDefaults(stack, DEFAULTS_DUE);
  console.log(
    `   ${DEFAULTS_DUE} due, one tick, default options: ran ${defaults.ran}, ${defaults.requests} HTTP requests, ${round(defaults.runsPerRequest, 1)} runs per request, ${round(defaults.cpuMsPerRun, 3)} CPU ms per run (this process, bridge included), ${round(defaults.tickMs, 0)} ms; before batching (1e9c4a4, the same bench): ran 14, 14 HTTP requests, 1 run per request, 4.31 CPU ms per run`,
  );
  const failures = [
    ...(dispatchRatio > 1.5 ? ["dispatch tick grows with the stored schedules"] : []),
    ...(drain.duplicates !== 0 || drain.ranPerTick.reduce((a, b) => a + b, 0) !== DRAIN_DUE
      ? ["dispatch drain"]
      : []),
    ...(defaults.ran !== DEFAULTS_DUE || defaults.requests > DEFAULTS_MAX_REQUESTS
      ? [
          `dispatch defaults: ${DEFAULTS_DUE} due in one tick within ${DEFAULTS_MAX_REQUESTS} requests`,
        ]
      : []),
  ];
  return { scale: dispatchScale, ratio: dispatchRatio, drain, defaults, failures };
}

/**
 * Section 9: what `wrangler deploy --dry-run` uploads for the minimal Worker (one job, no
 * plug-ins), a guard-only Worker and the example Worker, beside the figures before issue 22.
 * Claim: the minimal Worker is at most MINIMAL_TARGET_KIB gzip when minified.
 */
async function bundleSection() {
  const rows = await measureBundles();
  console.log(
    "\n9. Bundle: wrangler deploy --dry-run, KiB gzip (default and --minify) beside before issue 22",
  );
  console.log(formatBundles(rows));
  const minimal = rows.find((row) => row.worker === "minimal");
  const failures =
    minimal && minimal.minified.gzipKib <= MINIMAL_TARGET_KIB
      ? []
      : [`minimal Worker over ${MINIMAL_TARGET_KIB} KiB gzip minified`];
  return { rows, failures };
}

function formatThroughput(rows: ThroughputRow[]): string {
  return formatTable(
    ["route", "server", "requests/s", "p50 ms", "p99 ms", "errors", "vs passthrough"],
    rows.flatMap((row) => {
      const line = (name: string, r: ThroughputRow["bridge"]) => [
        row.route,
        name,
        round(r.requestsPerSecond, 0),
        round(r.p50Ms, 2),
        round(r.p99Ms, 2),
        r.errors,
        `${round(r.requestsPerSecond / row.passthrough.requestsPerSecond, 3)}x`,
      ];
      const bridgeLine = line("cron-guard bridge", row.bridge);
      bridgeLine[6] += ` (rounds: ${row.roundRatios.map((ratio) => round(ratio, 3)).join(", ")})`;
      return [
        bridgeLine,
        line("naive passthrough", row.passthrough),
        line("node redis direct", row.direct),
      ];
    }),
  );
}
