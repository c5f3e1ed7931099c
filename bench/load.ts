/**
 * HTTP load for the bridge-throughput row: the bridge vs the naive passthrough fixture vs node
 * `redis` straight to redis-server, on the same redis-server, in one run.
 *
 * Each server runs in its own process and, on a machine with two or more CPUs and `taskset`,
 * alone on the last CPU, while the load generator and redis-server share the others: the
 * server is what runs out of CPU first, so its requests/s is what is measured. The load
 * generator is wrk when it is installed (a C program that costs far less per request than
 * either server and reports latency in microseconds), else autocannon (a node process, whole
 * milliseconds). Servers are measured in alternating rounds and the medians reported.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";
import { median, percentile } from "./support.js";

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
  /** Run the load generator on these CPUs (`taskset -c`), e.g. "0". Default: anywhere. */
  cpus?: string;
}

export type LoadGenerator = "wrk" | "autocannon";

/** wrk when it is on PATH, else autocannon (always installed with the dev dependencies). */
export function pickLoadGenerator(): LoadGenerator {
  return commandExists("wrk") ? "wrk" : "autocannon";
}

export function commandExists(name: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Runs `generator` against `url` with POSTs of `body`. */
export function runLoad(generator: LoadGenerator, options: LoadOptions): Promise<LoadResult> {
  return generator === "wrk" ? runWrk(options) : runAutocannon(options);
}

/** `command` prefixed with `taskset -c <cpus>` when pinning was asked for. */
function pinned(cpuList: string | undefined, command: string, args: string[]): [string, string[]] {
  return cpuList === undefined ? [command, args] : ["taskset", ["-c", cpuList, command, ...args]];
}

/** Runs wrk (one thread) against `url` with a POST of `body`. */
export async function runWrk(options: LoadOptions): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), "cron-guard-wrk-"));
  const script = join(dir, "post.lua");
  writeFileSync(
    script,
    [
      'wrk.method = "POST"',
      `wrk.body = ${luaString(options.body)}`,
      `wrk.headers["Authorization"] = ${luaString(`Bearer ${options.token}`)}`,
      'wrk.headers["Content-Type"] = "application/json"',
      "",
    ].join("\n"),
  );
  try {
    const [command, args] = pinned(options.cpus, "wrk", [
      "-t1",
      `-c${options.connections}`,
      `-d${options.durationSeconds}s`,
      "--latency",
      "-s",
      script,
      options.url,
    ]);
    return parseWrk(await output(command, args));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function luaString(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Reads wrk's report: requests, requests/s, the 50% and 99% latencies, errors. */
export function parseWrk(report: string): LoadResult {
  const number = (pattern: RegExp) => Number(pattern.exec(report)?.[1] ?? Number.NaN);
  const latencyMs = (percent: string) => {
    const match = new RegExp(`^\\s*${percent}%\\s+([\\d.]+)(us|ms|s)\\b`, "m").exec(report);
    if (!match) return Number.NaN;
    const value = Number(match[1]);
    return match[2] === "us" ? value / 1000 : match[2] === "s" ? value * 1000 : value;
  };
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
    report,
  );
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(report);
  const errors =
    Number(non2xx?.[1] ?? 0) +
    (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0);
  const result = {
    requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: latencyMs("50"),
    p99Ms: latencyMs("99"),
    errors,
    requests: number(/(\d+) requests in/),
  };
  if (Number.isNaN(result.requestsPerSecond) || Number.isNaN(result.requests)) {
    throw new Error(`wrk printed no result: ${report.slice(0, 300)}`);
  }
  return result;
}

function output(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
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
      if (code === 0) resolve(out);
      else reject(new Error(`${command} exited with ${code}: ${err.trim() || out.trim()}`));
    });
  });
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

async function autocannon(options: LoadOptions, bodyFile: string): Promise<LoadResult> {
  const cli = require.resolve("autocannon/autocannon.js");
  const [command, args] = pinned(options.cpus, process.execPath, [
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
  ]);
  const out = await output(command, args);
  try {
    const json = JSON.parse(out) as {
      requests: { average: number; total: number };
      latency: { p50: number; p99: number };
      non2xx: number;
      errors: number;
      timeouts: number;
    };
    return {
      requestsPerSecond: json.requests.average,
      p50Ms: json.latency.p50,
      p99Ms: json.latency.p99,
      errors: json.non2xx + json.errors + json.timeouts,
      requests: json.requests.total,
    };
  } catch (_error) {
    throw new Error(`autocannon printed no JSON: ${out.slice(0, 200)}`);
  }
}

/** The median of each figure over `runs` (each figure on its own). */
function medianOf(runs: LoadResult[]): LoadResult {
  return {
    requestsPerSecond: median(runs.map((run) => run.requestsPerSecond)),
    p50Ms: median(runs.map((run) => run.p50Ms)),
    p99Ms: median(runs.map((run) => run.p99Ms)),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
    requests: runs.reduce((sum, run) => sum + run.requests, 0),
  };
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
  /** Medians over the rounds (errors and requests: totals). */
  bridge: LoadResult;
  passthrough: LoadResult;
  direct: LoadResult;
  /** Each round's bridge req/s / passthrough req/s, in order. */
  roundRatios: number[];
  /** median bridge req/s / median passthrough req/s: at least 1 is the goal. */
  bridgeVsPassthrough: number;
  /** bridge req/s / direct (requests = round trips of the same commands): the cost of HTTP. */
  bridgeVsDirect: number;
}

export interface ThroughputOptions {
  redisUrl: string;
  /** redis-server's pid, to pin it beside the load generator. */
  redisPid?: number;
  connections: number;
  durationSeconds: number;
  pipelineSize: number;
  /** Rounds per route; each round measures both servers, in alternating order. Default: 3. */
  rounds?: number;
  /** Unmeasured load on a server right before each of its measured runs (JIT, caches). Default: 1 s; 0 skips. */
  warmupSeconds?: number;
  /** Default: {@link pickLoadGenerator}. */
  generator?: LoadGenerator;
  /** Pin servers and load to separate CPUs when possible. Default: true. */
  pin?: boolean;
}

/** Where the servers and the load go: the last CPU for the server, the rest for load and Redis. */
export interface Placement {
  server?: string;
  load?: string;
}

export function placement(pin: boolean): Placement {
  const count = cpus().length;
  if (!pin || count < 2 || !commandExists("taskset")) return {};
  return { server: String(count - 1), load: count === 2 ? "0" : `0-${count - 2}` };
}

interface ServerProcess {
  url: string;
  pid: number;
  close(): Promise<void>;
}

/** Moves every thread of process `pid` to `cpuList` (`taskset -a -p -c`). */
function pinProcess(pid: number, cpuList: string): void {
  execFileSync("taskset", ["-a", "-p", "-c", cpuList, String(pid)], { stdio: "ignore" });
}

const ROOT = new URL("../", import.meta.url).pathname;
let serveScript: string | undefined;

/**
 * bench/fixtures/serve.ts and what it imports (the bridge's source and the passthrough),
 * compiled by tsc with the same settings into .bench-build/, once per process: both servers then
 * run as plain JavaScript under plain node, like the published package, not through a loader.
 */
function compiledServeScript(): string {
  if (serveScript === undefined) {
    execFileSync(
      process.execPath,
      [require.resolve("typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.bench.json")],
      { stdio: "inherit" },
    );
    serveScript = join(ROOT, ".bench-build/bench/fixtures/serve.js");
  }
  return serveScript;
}

/** Starts bench/fixtures/serve.ts in its own node process (optionally pinned); resolves with its URL. */
async function startServerProcess(
  kind: "bridge" | "passthrough",
  redisUrl: string,
  token: string,
  cpuList: string | undefined,
): Promise<ServerProcess> {
  const [command, args] = pinned(cpuList, process.execPath, [
    compiledServeScript(),
    kind,
    redisUrl,
    token,
  ]);
  const child: ChildProcess = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
      const line = out.split("\n")[0];
      if (out.includes("\n") && line) resolve(line.trim());
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return {
    url,
    pid: child.pid as number,
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/**
 * The bridge, the passthrough and node `redis` direct on the same redis-server, for `POST /`
 * (SET NX PX) and `POST /pipeline` (`pipelineSize` of them).
 */
export async function measureHttpThroughput(options: ThroughputOptions): Promise<ThroughputRow[]> {
  const token = "bench-load-token";
  const generator = options.generator ?? pickLoadGenerator();
  const cpusFor = placement(options.pin ?? true);
  // Redis and this process (its timers, its stack) beside the load generator while measuring,
  // so nothing else runs on the server's CPU; on every CPU again afterwards (later sections)
  const pinHelpers = (cpuList: string) => {
    if (cpusFor.load === undefined) return;
    if (options.redisPid !== undefined) pinProcess(options.redisPid, cpuList);
    pinProcess(process.pid, cpuList);
  };
  if (cpusFor.load !== undefined) pinHelpers(cpusFor.load);
  const rounds = options.rounds ?? 3;
  const bridge = await startServerProcess("bridge", options.redisUrl, token, cpusFor.server);
  const passthrough = await startServerProcess(
    "passthrough",
    options.redisUrl,
    token,
    cpusFor.server,
  );
  const rows: ThroughputRow[] = [];
  try {
    const cases = [
      { route: "/" as const, commands: [SET_NX_PX] },
      { route: "/pipeline" as const, commands: pipelineBody(options.pipelineSize) },
    ];
    for (const { route, commands } of cases) {
      const body = JSON.stringify(route === "/" ? commands[0] : commands);
      const load = (base: string, durationSeconds: number) =>
        runLoad(generator, {
          url: `${base}${route}`,
          token,
          body,
          connections: options.connections,
          durationSeconds,
          cpus: cpusFor.load,
        });
      const warmup = options.warmupSeconds ?? 1;
      // alternating order (PB, BP, PB, ...): neither server pays for drift in the machine's load
      const bridgeRuns: LoadResult[] = [];
      const passthroughRuns: LoadResult[] = [];
      for (let round = 0; round < rounds; round += 1) {
        const order = round % 2 === 0 ? ["passthrough", "bridge"] : ["bridge", "passthrough"];
        for (const which of order) {
          const server = which === "bridge" ? bridge : passthrough;
          const idle = which === "bridge" ? passthrough : bridge;
          if (cpusFor.server !== undefined && cpusFor.load !== undefined) {
            // the measured server alone on its CPU: the idle one's after-load work (V8 shrinking
            // its heap once it goes quiet) otherwise takes whole scheduler ticks from it
            pinProcess(idle.pid, cpusFor.load);
            pinProcess(server.pid, cpusFor.server);
          }
          // a server that sat idle through the other's round gets its warm-up again first
          if (warmup > 0) await load(server.url, warmup);
          const result = await load(server.url, options.durationSeconds);
          (which === "bridge" ? bridgeRuns : passthroughRuns).push(result);
        }
      }
      const bridgeResult = medianOf(bridgeRuns);
      const passthroughResult = medianOf(passthroughRuns);
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
        roundRatios: bridgeRuns.map(
          (run, i) => run.requestsPerSecond / (passthroughRuns[i] as LoadResult).requestsPerSecond,
        ),
        bridgeVsPassthrough: bridgeResult.requestsPerSecond / passthroughResult.requestsPerSecond,
        bridgeVsDirect: bridgeResult.requestsPerSecond / direct.requestsPerSecond,
      });
    }
  } finally {
    await passthrough.close();
    await bridge.close();
    pinHelpers(`0-${cpus().length - 1}`);
  }
  return rows;
}
