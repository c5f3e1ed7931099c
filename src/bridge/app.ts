import { createHash, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import {
  type CommandRunner,
  type Outcome,
  RedisCommandError,
  RedisUnavailableError,
  ResponseTooLargeError,
} from "./connections.js";
import {
  BadRequestError,
  type Command,
  type CommandLimits,
  DEFAULT_MAX_VALUE_BYTES,
  encodeReply,
  type Json,
  parseCommand,
  parseCommandList,
} from "./protocol.js";

/** Which route accepted a request, as reported to {@link BridgeAppOptions.onRequest}. */
export type BridgeRoute = "/" | "/pipeline" | "/multi-exec" | "path";

export interface BridgeRequestInfo {
  path: BridgeRoute;
  commands: string[][];
}

export interface BridgeAppOptions {
  /** Bearer token every command request must carry. */
  token: string;
  /** Executes commands; normally a {@link RedisConnections}. */
  redis: CommandRunner;
  /**
   * Largest accepted request body, in bytes, checked before parsing. Default: 1 MiB (1 048 576).
   * Larger bodies get 400, not 413, so every refusal looks the same to clients.
   */
  maxBodyBytes?: number;
  /**
   * Largest string a SETRANGE, SETBIT or BITFIELD offset may grow a value to; larger offsets are
   * refused with 400 before anything runs. Default: 10 MiB (the bridge's default response cap).
   */
  maxValueBytes?: number;
  /** Called once per authorized, well-formed request before it runs; for counting round trips. */
  onRequest?: (info: BridgeRequestInfo) => void;
}

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const HEALTH_TEXT = "cron-guard bridge ok";

class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: ContentfulStatusCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * An Upstash-REST-compatible Hono app. `GET /` is an unauthenticated health line that runs
 * nothing; every other route needs `Authorization: Bearer <token>`.
 */
export function createBridgeApp({
  token,
  redis,
  maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
  maxValueBytes = DEFAULT_MAX_VALUE_BYTES,
  onRequest = () => {},
}: BridgeAppOptions): Hono {
  if (token.length === 0) throw new TypeError("createBridgeApp: token must be a non-empty string");
  const expectedDigest = sha256(token);
  const limits: CommandLimits = { maxValueBytes };
  const app = new Hono();

  app.onError((error, c) => {
    if (error instanceof HttpError) return c.json({ error: error.message }, error.status);
    if (
      error instanceof BadRequestError ||
      error instanceof RedisCommandError ||
      error instanceof ResponseTooLargeError
    ) {
      return c.json({ error: error.message }, 400);
    }
    if (error instanceof RedisUnavailableError) {
      return c.json({ error: `Redis unavailable: ${error.message}` }, 503);
    }
    return c.json({ error: `internal bridge error: ${String(error)}` }, 500);
  });
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));

  app.get("/", (c) => c.json({ result: HEALTH_TEXT }));

  app.use("*", async (c, next) => {
    if (!isAuthorized(c.req.header("authorization"), expectedDigest)) {
      return c.json({ error: "Unauthorized" }, 401);
    }
    await next();
  });

  app.post("/", async (c) => {
    const command = parseCommand(await readJsonBody(c.req.raw, maxBodyBytes), "command", limits);
    onRequest({ path: "/", commands: [command] });
    const reply = await redis.run(command);
    return c.json({ result: encodeReply(reply, { base64: wantsBase64(c.req.raw) }) });
  });

  for (const route of ["/pipeline", "/multi-exec"] as const) {
    app.post(route, async (c) => {
      const commands = parseCommandList(await readJsonBody(c.req.raw, maxBodyBytes), limits);
      onRequest({ path: route, commands });
      const outcomes =
        route === "/pipeline" ? await redis.pipeline(commands) : await redis.transaction(commands);
      const base64 = wantsBase64(c.req.raw);
      return c.json(outcomes.map((outcome) => encodeOutcome(outcome, base64)));
    });
  }

  app.on(["GET", "POST"], "/*", async (c) => {
    const command = parseCommand(await pathCommand(c.req.raw, maxBodyBytes), "command", limits);
    onRequest({ path: "path", commands: [command] });
    const reply = await redis.run(command);
    return c.json({ result: encodeReply(reply, { base64: wantsBase64(c.req.raw) }) });
  });

  return app;
}

function encodeOutcome(outcome: Outcome, base64: boolean): { result: Json } | { error: string } {
  return outcome.ok ? { result: encodeReply(outcome.reply, { base64 }) } : { error: outcome.error };
}

function wantsBase64(request: Request): boolean {
  return request.headers.get("upstash-encoding")?.toLowerCase() === "base64";
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

function isAuthorized(header: string | undefined, expectedDigest: Buffer): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? "");
  const presented = match?.[1]?.trim() ?? "";
  return timingSafeEqual(sha256(presented), expectedDigest) && presented.length > 0;
}

async function readJsonBody(request: Request, maxBodyBytes: number): Promise<unknown> {
  const contentType = request.headers.get("content-type") ?? "";
  if (contentType.split(";")[0]?.trim().toLowerCase() !== "application/json") {
    throw new HttpError(
      400,
      `Content-Type must be application/json, got ${contentType ? `"${contentType}"` : "none"}`,
    );
  }
  const text = await readBodyText(request, maxBodyBytes);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `malformed JSON body: ${(error as Error).message}`, { cause: error });
  }
}

async function readBodyText(request: Request, maxBodyBytes: number): Promise<string> {
  const tooLarge = () =>
    new HttpError(400, `request body exceeds the limit of ${maxBodyBytes} bytes`);
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBodyBytes) throw tooLarge();
  if (!request.body) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBodyBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** `/set/k/v` -> ["set","k","v"]; a POST body, if any, is the last argument (Upstash style). */
async function pathCommand(request: Request, maxBodyBytes: number): Promise<Command> {
  const segments = new URL(request.url).pathname.split("/").slice(1);
  if (segments.at(-1) === "") segments.pop();
  let command: Command;
  try {
    command = segments.map((segment) => decodeURIComponent(segment));
  } catch (error) {
    throw new HttpError(400, "malformed percent-encoding in the URL path", { cause: error });
  }
  if (request.method === "POST") {
    const body = await readBodyText(request, maxBodyBytes);
    if (body.length > 0) command.push(body);
  }
  return command;
}
