/**
 * The measurements behind `npm run bench`, each a function of its size so that tests can run them
 * small. Every function talks to a real redis-server through the bridge.
 */
import { serve } from "@hono/node-server";
import { Lock } from "@upstash/lock";
import { createClient } from "redis";
import { claimScriptKeys } from "../src/core/guard/claim.js";
import { jobKeys } from "../src/core/guard/keys.js";
import { CLAIM_SCRIPT } from "../src/core/guard/scripts.js";
import { createGuard } from "../src/core/index.js";
import { createCronApp } from "../src/hono/index.js";
import {
  type BenchStack,
  mapLimit,
  median,
  percentile,
  seededRandom,
  sleep,
  upstashClient,
} from "./support.js";

const SECRET = "bench-secret";
let jobCounter = 0;
const uniqueJob = (name: string) => `bench-${name}-${Date.now().toString(36)}-${++jobCounter}`;

export interface StormResult {
  mode: "in-process" | "http";
  deliveries: number;
  repetitions: number;
  /** Median over repetitions: deliveries answered per second. */
  decisionsPerSecond: number;
  /** Latency of the 204 answers, pooled over repetitions, ms. */
  skippedP50Ms: number;
  skippedP99Ms: number;
  /** Job runs per slot, one entry per repetition: each must be 1. */
  runsPerSlot: number[];
  /** Bridge requests per delivery (one app and one auto-pipelining client serve them all). */
  bridgeRequestsPerDelivery: number;
}

/**
 * `deliveries` concurrent authorized calls for one slot of one job through createCronApp, either
 * in-process (`app.request`) or over HTTP to @hono/node-server.
 */
export async function measureStorm(
  stack: BenchStack,
  mode: StormResult["mode"],
  deliveries: number,
  repetitions: number,
): Promise<StormResult> {
  const redis = upstashClient(stack.bridge.url, stack.bridge.token);
  const job = uniqueJob("storm");
  let runs = 0;
  const app = createCronApp({
    jobs: [
      {
        name: job,
        cron: "* * * * *",
        handler: async () => {
          runs += 1;
          await sleep(5);
          return { ok: true };
        },
      },
    ],
    redis,
    cronSecret: () => SECRET,
    guardOptions: { prefix: "bench" },
  });
  const server =
    mode === "http"
      ? await new Promise<ReturnType<typeof serve>>((resolve) => {
          const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
        })
      : undefined;
  const address = server?.address();
  const base =
    typeof address === "object" && address ? `http://127.0.0.1:${address.port}` : "http://local";
  const call = (path: string) =>
    mode === "http"
      ? fetch(`${base}${path}`, { method: "POST", headers: { authorization: `Bearer ${SECRET}` } })
      : app.request(path, { method: "POST", headers: { authorization: `Bearer ${SECRET}` } });

  const firstSlotMs = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
  const rates: number[] = [];
  const skippedMs: number[] = [];
  const runsPerSlot: number[] = [];
  let requests = 0;
  try {
    for (let rep = 0; rep < repetitions; rep += 1) {
      const slot = new Date(firstSlotMs + rep * 60_000).toISOString().replace(".000Z", "Z");
      const path = `/cron/${job}?slot=${slot}`;
      runs = 0;
      stack.resetRequests();
      const startedAt = performance.now();
      const answers = await Promise.all(
        Array.from({ length: deliveries }, async () => {
          const sentAt = performance.now();
          const response = await call(path);
          const body = await response.text();
          return { status: response.status, ms: performance.now() - sentAt, body };
        }),
      );
      const elapsedMs = performance.now() - startedAt;
      requests += stack.requests.length;
      rates.push((deliveries / elapsedMs) * 1000);
      // A duplicate of an explicit ?slot= that already finished is a 409 (the ledger's answer to a
      // backfill of a slot that ran); one that is still running, a 204. Both are skipped duplicates.
      const skipped = (status: number) => status === 204 || status === 409;
      for (const answer of answers) if (skipped(answer.status)) skippedMs.push(answer.ms);
      const unexpected = answers.filter((a) => a.status !== 200 && !skipped(a.status));
      if (unexpected.length > 0) {
        throw new Error(
          `storm got status ${unexpected[0]?.status} (${unexpected.length} times): ${unexpected[0]?.body}`,
        );
      }
      runsPerSlot.push(runs);
    }
  } finally {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
  return {
    mode,
    deliveries,
    repetitions,
    decisionsPerSecond: median(rates),
    skippedP50Ms: percentile(skippedMs, 50),
    skippedP99Ms: percentile(skippedMs, 99),
    runsPerSlot,
    bridgeRequestsPerDelivery: requests / (deliveries * repetitions),
  };
}

export interface RoundTripResult {
  samples: number;
  /** HTTP requests the bridge received, per run, as deployments configure the client. */
  winnerRequests: number[];
  loserRequests: number[];
  /** Redis commands inside those requests. */
  winnerCommands: number[];
  loserCommands: number[];
  /** A winner right after SCRIPT FLUSH (EVALSHA answered NOSCRIPT, then EVAL). */
  coldWinnerRequests: number;
}

/** Counts the bridge requests of one winner and one loser, `samples` times, one instance each. */
export async function measureRoundTrips(
  stack: BenchStack,
  samples: number,
): Promise<RoundTripResult> {
  const instance = () =>
    createGuard({ redis: upstashClient(stack.bridge.url, stack.bridge.token), prefix: "bench" });
  const job = uniqueJob("trips");
  const commandsIn = () => stack.requests.reduce((sum, r) => sum + r.commands.length, 0);
  await instance().run(job, 1_000, () => "warm the script cache");
  const result: RoundTripResult = {
    samples,
    winnerRequests: [],
    loserRequests: [],
    winnerCommands: [],
    loserCommands: [],
    coldWinnerRequests: 0,
  };
  for (let i = 1; i <= samples; i += 1) {
    const slot = i * 60_000;
    stack.resetRequests();
    const won = await instance().run(job, slot, () => "ran");
    if (won.status !== "ran") throw new Error(`round trips: expected a winner, got ${won.status}`);
    result.winnerRequests.push(stack.requests.length);
    result.winnerCommands.push(commandsIn());
    stack.resetRequests();
    const lost = await instance().run(job, slot, () => "ran again");
    if (lost.status !== "skipped")
      throw new Error(`round trips: expected a loser, got ${lost.status}`);
    result.loserRequests.push(stack.requests.length);
    result.loserCommands.push(commandsIn());
  }
  const direct = createClient({ url: stack.redis.url, RESP: 2 });
  await direct.connect();
  try {
    await direct.scriptFlush();
  } finally {
    direct.destroy();
  }
  stack.resetRequests();
  await instance().run(job, (samples + 1) * 60_000, () => "cold");
  result.coldWinnerRequests = stack.requests.length;
  return result;
}

export interface OverheadRow {
  operation: string;
  concurrency: number;
  bridgeOpsPerSecond: number;
  directOpsPerSecond: number;
  /** direct / bridge: how many times faster the node client straight to Redis is. */
  ratio: number;
}

/**
 * The same SET NX PX and EVALSHA (the claim script) through @upstash/redis + bridge and through
 * the node `redis` client straight to redis-server, sequentially and with `concurrency` in flight.
 */
export async function measureBridgeOverhead(
  stack: BenchStack,
  operations: number,
  concurrency: number,
): Promise<OverheadRow[]> {
  const upstash = upstashClient(stack.bridge.url, stack.bridge.token, {
    autoPipelining: false,
    retries: 0,
  });
  const direct = createClient({ url: stack.redis.url, RESP: 2 });
  await direct.connect();
  const sha = await CLAIM_SCRIPT.sha1();
  await direct.scriptLoad(CLAIM_SCRIPT.source);
  const prefix = `bench:overhead:${Date.now().toString(36)}`;
  const claimArgs = (i: number) => [
    `t${i}`,
    "60000",
    "0",
    "bench",
    `s${i}`,
    String(i),
    "allow",
    "10",
    "0",
    "604800000",
  ];
  const claimKeys = (side: string, i: number) =>
    claimScriptKeys(jobKeys(prefix, side), String(i), `t${i}`);
  const operationsOf = {
    "SET NX PX": {
      bridge: (i: number) => upstash.set(`${prefix}:b:${i}`, "1", { nx: true, px: 60_000 }),
      direct: (i: number) => direct.set(`${prefix}:d:${i}`, "1", { NX: true, PX: 60_000 }),
    },
    "EVALSHA claim": {
      bridge: (i: number) => upstash.evalsha(sha, claimKeys("b", i), claimArgs(i)),
      direct: (i: number) =>
        direct.evalSha(sha, { keys: claimKeys("d", i), arguments: claimArgs(i) }),
    },
  };
  const rate = async (fn: (i: number) => Promise<unknown>, inFlight: number) => {
    const indexes = Array.from({ length: operations }, (_, i) => i);
    const startedAt = performance.now();
    await mapLimit(indexes, inFlight, (i) => fn(i));
    return (operations / (performance.now() - startedAt)) * 1000;
  };
  const rows: OverheadRow[] = [];
  try {
    for (const [operation, sides] of Object.entries(operationsOf)) {
      for (const inFlight of [1, concurrency]) {
        // Alternate sides and keep the better of two rounds each, so neither pays for warm-up.
        const bridgeRates: number[] = [];
        const directRates: number[] = [];
        for (let round = 0; round < 2; round += 1) {
          bridgeRates.push(await rate((i) => sides.bridge(i + round * operations), inFlight));
          directRates.push(await rate((i) => sides.direct(i + round * operations), inFlight));
        }
        const bridgeOpsPerSecond = Math.max(...bridgeRates);
        const directOpsPerSecond = Math.max(...directRates);
        rows.push({
          operation,
          concurrency: inFlight,
          bridgeOpsPerSecond,
          directOpsPerSecond,
          ratio: directOpsPerSecond / bridgeOpsPerSecond,
        });
      }
    }
  } finally {
    direct.destroy();
  }
  return rows;
}

export interface LateDuplicateResult {
  slots: number;
  maxGapMs: number;
  cronGuardDuplicateRuns: number;
  upstashLockDuplicateRuns: number;
}

/**
 * Every slot delivered twice, the second delivery 0..maxGapMs (seeded) after the first finished:
 * cron-guard's run vs @upstash/lock's acquire / run / release, same gaps, same run.
 */
export async function measureLateDuplicates(
  stack: BenchStack,
  slots: number,
  maxGapMs: number,
  concurrency: number,
): Promise<LateDuplicateResult> {
  const random = seededRandom(7);
  const gaps = Array.from({ length: slots }, () => Math.floor(random() * maxGapMs));
  const redis = upstashClient(stack.bridge.url, stack.bridge.token);
  const job = uniqueJob("late");
  const guard = createGuard({ redis, prefix: "bench" });
  const indexes = Array.from({ length: slots }, (_, i) => i);

  const guardRuns = new Array<number>(slots).fill(0);
  const lockRuns = new Array<number>(slots).fill(0);
  const work = () => sleep(10);
  const viaGuard = async (i: number) => {
    await guard.run(job, (i + 1) * 60_000, async () => {
      guardRuns[i] = (guardRuns[i] ?? 0) + 1;
      await work();
    });
  };
  const viaLock = async (i: number) => {
    // @upstash/lock ships CJS typings of @upstash/redis; the instance is the same class at run time.
    const lock = new Lock({ id: `${job}:lock:${i}`, redis: redis as never, lease: 60_000 });
    if (!(await lock.acquire())) return;
    try {
      lockRuns[i] = (lockRuns[i] ?? 0) + 1;
      await work();
    } finally {
      await lock.release();
    }
  };
  await Promise.all([
    mapLimit(indexes, concurrency, async (i) => {
      await viaGuard(i);
      await sleep(gaps[i] ?? 0);
      await viaGuard(i);
    }),
    mapLimit(indexes, concurrency, async (i) => {
      await viaLock(i);
      await sleep(gaps[i] ?? 0);
      await viaLock(i);
    }),
  ]);
  const duplicates = (runs: number[]) => runs.reduce((sum, n) => sum + Math.max(0, n - 1), 0);
  return {
    slots,
    maxGapMs,
    cronGuardDuplicateRuns: duplicates(guardRuns),
    upstashLockDuplicateRuns: duplicates(lockRuns),
  };
}
