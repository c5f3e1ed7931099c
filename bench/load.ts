/**
 * HTTP load from autocannon in a child process, so the load generator never shares the measured
 * server's event loop, and `measureHttpThroughput`: the bridge vs the naive passthrough fixture vs
 * node `redis` straight to redis-server, on the same redis-server, in one run.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";
import { startBridge } from "../src/bridge/index.js";
import { startPassthrough } from "./fixtures/passthrough.js";
import { percentile } from "./support.js";

const require = createRequire(import.meta.url);

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Responses that were not 2xx, plus socket errors and timeouts. */
  errors: number;
  requests: number;
}

export interface LoadOptions {
  url: string;
  token: string;
  body: string;
  connections: number;
  durationSeconds: number;
}

/** Runs autocannon (a separate node process) against `url` with a POST of `body`. */
export async function runAutocannon(options: LoadOptions): Promise<LoadResult> {
  // The body goes in a file: autocannon's argument parser (subarg) reads `[...]` on the command
  // line as nested arguments, which mangles a JSON array.
  const dir = mkdtempSync(join(tmpdir(), "cron-guard-load-"));
  const bodyFile = join(dir, "body.json");
  writeFileSync(bodyFile, options.body);
  try {
    return await autocannon(options, bodyFile);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function autocannon(options: LoadOptions, bodyFile: string): Promise<LoadResult> {
  const cli = require.resolve("autocannon/autocannon.js");
  const args = [
    cli,
    "--json",
    "--no-progress",
    "-c",
    String(options.connections),
    "-d",
    String(options.durationSeconds),
    "-m",
    "POST",
    "-H",
    `authorization=Bearer ${options.token}`,
    "-H",
    "content-type=application/json",
    "-i",
    bodyFile,
    options.url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) {
        reject(new Error(`autocannon exited with ${code}: ${err.trim()}`));
        return;
      }
      try {
        const json = JSON.parse(out) as {
          requests: { average: number; total: number };
          latency: { p50: number; p99: number };
          non2xx: number;
          errors: number;
          timeouts: number;
        };
        resolve({
          requestsPerSecond: json.requests.average,
          p50Ms: json.latency.p50,
          p99Ms: json.latency.p99,
          errors: json.non2xx + json.errors + json.timeouts,
          requests: json.requests.total,
        });
      } catch (_error) {
        reject(new Error(`autocannon printed no JSON: ${out.slice(0, 200)} ${err.slice(0, 200)}`));
      }
    });
  });
}

/** The run with the most requests/s. */
function best(runs: LoadResult[]): LoadResult {
  return runs.reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a));
}

/** One command as the benchmark sends it: the guard's claim shape, SET NX PX. */
export const SET_NX_PX = ["SET", "bench:load", "v", "NX", "PX", "60000"];

/** A /pipeline body of `size` SET NX PX commands, as @upstash/redis's auto-pipelining sends. */
export function pipelineBody(size: number): string[][] {
  return Array.from({ length: size }, (_, i) => [
    "SET",
    `bench:load:${i}`,
    "v",
    "NX",
    "PX",
    "60000",
  ]);
}

/** node `redis` straight to redis-server with `inFlight` commands outstanding, for `durationSeconds`. */
export async function measureDirect(
  redisUrl: string,
  commands: string[][],
  inFlight: number,
  durationSeconds: number,
): Promise<LoadResult> {
  const client = createClient({ url: redisUrl, RESP: 2 });
  client.on("error", () => {});
  await client.connect();
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + durationSeconds * 1000;
  const startedAt = performance.now();
  try {
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (performance.now() < deadline) {
          const sentAt = performance.now();
          try {
            await Promise.all(commands.map((command) => client.sendCommand(command)));
          } catch {
            errors += 1;
          }
          latencies.push(performance.now() - sentAt);
        }
      }),
    );
  } finally {
    client.destroy();
  }
  const seconds = (performance.now() - startedAt) / 1000;
  return {
    requestsPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    errors,
    requests: latencies.length,
  };
}

export interface ThroughputRow {
  route: "/" | "/pipeline";
  commandsPerRequest: number;
  connections: number;
  bridge: LoadResult;
  passthrough: LoadResult;
  direct: LoadResult;
  /** bridge req/s / passthrough req/s: at least 1 is the goal. */
  bridgeVsPassthrough: number;
  /** bridge req/s / direct (requests = round trips of the same commands): the cost of HTTP. */
  bridgeVsDirect: number;
}

export interface ThroughputOptions {
  redisUrl: string;
  connections: number;
  durationSeconds: number;
  pipelineSize: number;
  /** Unmeasured load on each server before measuring it (JIT, connections). Default: 1 s; 0 skips. */
  warmupSeconds?: number;
}

/**
 * The bridge, the passthrough and node `redis` direct, one after the other on the same
 * redis-server, for `POST /` (SET NX PX) and `POST /pipeline` (`pipelineSize` of them).
 */
export async function measureHttpThroughput(options: ThroughputOptions): Promise<ThroughputRow[]> {
  const token = "bench-load-token";
  const bridge = await startBridge({ redisUrl: options.redisUrl, token });
  const passthrough = await startPassthrough(options.redisUrl, token);
  const rows: ThroughputRow[] = [];
  try {
    const cases = [
      { route: "/" as const, commands: [SET_NX_PX], body: JSON.stringify(SET_NX_PX) },
      {
        route: "/pipeline" as const,
        commands: pipelineBody(options.pipelineSize),
        body: JSON.stringify(pipelineBody(options.pipelineSize)),
      },
    ];
    for (const { route, commands, body } of cases) {
      const load = (base: string) =>
        runAutocannon({
          url: `${base}${route}`,
          token,
          body,
          connections: options.connections,
          durationSeconds: options.durationSeconds,
        });
      const warmup = options.warmupSeconds ?? 1;
      if (warmup > 0) {
        for (const base of [bridge.url, passthrough.url]) {
          await runAutocannon({
            url: `${base}${route}`,
            token,
            body,
            connections: options.connections,
            durationSeconds: warmup,
          });
        }
      }
      // ABBA order, best of two each: neither server pays for drift in the machine's load.
      const passthroughRuns = [await load(passthrough.url)];
      const bridgeRuns = [await load(bridge.url), await load(bridge.url)];
      passthroughRuns.push(await load(passthrough.url));
      const passthroughResult = best(passthroughRuns);
      const bridgeResult = best(bridgeRuns);
      const direct = await measureDirect(
        options.redisUrl,
        commands,
        options.connections,
        options.durationSeconds,
      );
      rows.push({
        route,
        commandsPerRequest: commands.length,
        connections: options.connections,
        bridge: bridgeResult,
        passthrough: passthroughResult,
        direct,
        bridgeVsPassthrough: bridgeResult.requestsPerSecond / passthroughResult.requestsPerSecond,
        bridgeVsDirect: bridgeResult.requestsPerSecond / direct.requestsPerSecond,
      });
    }
  } finally {
    await passthrough.close();
    await bridge.close();
  }
  return rows;
}
