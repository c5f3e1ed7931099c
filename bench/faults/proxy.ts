/**
 * An HTTP proxy between @upstash/redis and the bridge that injects the faults a guard must survive:
 * latency, a response lost after the command ran, a 5xx without running anything, and a refused
 * connection (the store cut off from this instance).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { sleep } from "../../src/core/sleep.js";

export type FaultAction =
  /** Pass the request on and its answer back. */
  | "forward"
  /** Pass it on, let the bridge run it, then cut the connection: the client never sees the answer. */
  | "drop-after-run"
  /** Answer 503 without passing anything on. */
  | "error-5xx"
  /** Cut the connection without passing anything on. */
  | "refuse";

export interface Fault {
  action: FaultAction;
  /** Delay before the request is passed on (or refused), in ms. */
  latencyMs?: number;
}

/** Decides the fault of each request; `commands` is the parsed request body when it is JSON. */
export type FaultPlan = (request: { path: string; commands: unknown }) => Fault;

export interface FaultCounts {
  forwarded: number;
  droppedAfterRun: number;
  errored: number;
  refused: number;
}

export interface FaultProxy {
  url: string;
  readonly counts: FaultCounts;
  /** Replaces the plan for the requests that arrive from now on. */
  setPlan(plan: FaultPlan): void;
  close(): Promise<void>;
}

export const forwardAll: FaultPlan = () => ({ action: "forward" });

const HOP_BY_HOP = new Set([
  "host",
  "connection",
  "content-length",
  "keep-alive",
  "transfer-encoding",
]);

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

function parseCommands(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** Starts the proxy on 127.0.0.1 (a free port) in front of `targetUrl`. */
export async function startFaultProxy(
  targetUrl: string,
  initialPlan: FaultPlan = forwardAll,
): Promise<FaultProxy> {
  let plan = initialPlan;
  const counts: FaultCounts = { forwarded: 0, droppedAfterRun: 0, errored: 0, refused: 0 };
  const server: Server = createServer(async (request, response) => {
    try {
      const body = await readBody(request);
      const path = request.url ?? "/";
      const fault = plan({ path, commands: parseCommands(body) });
      if (fault.latencyMs) await sleep(fault.latencyMs);
      if (fault.action === "refuse") {
        counts.refused += 1;
        request.socket.destroy();
        return;
      }
      if (fault.action === "error-5xx") {
        counts.errored += 1;
        response.writeHead(503, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: "injected fault: 503 from the fault proxy" }));
        return;
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) {
        if (typeof value === "string" && !HOP_BY_HOP.has(name)) headers[name] = value;
      }
      const upstream = await fetch(new URL(path, targetUrl), {
        method: request.method,
        headers,
        body: request.method === "GET" || request.method === "HEAD" ? undefined : body,
      });
      const answer = Buffer.from(await upstream.arrayBuffer());
      if (fault.action === "drop-after-run") {
        counts.droppedAfterRun += 1;
        request.socket.destroy();
        return;
      }
      counts.forwarded += 1;
      response.writeHead(upstream.status, {
        "content-type": upstream.headers.get("content-type") ?? "application/json",
      });
      response.end(answer);
    } catch (error) {
      response.writeHead(502, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: `fault proxy: ${(error as Error).message}` }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    setPlan(next) {
      plan = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
