import type { IncomingMessage, ServerResponse } from "node:http";
import { assertReadOnly, type CommandTable } from "./command-table.js";
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
  /** True when the request came with the read-only token. */
  readOnly?: boolean;
}

export interface BridgeAppOptions {
  /** Token every command request must carry (`Authorization: Bearer <token>` or `?_token=`). */
  token: string;
  /**
   * A second token that may only run commands Redis flags read-only; writes answer 400
   * `NOPERM this user has no permissions to run the '<command>' command or its subcommand`
   * (Upstash's read-only token). Needs `commandTable`.
   */
  readonlyToken?: string;
  /** Which commands count as read-only; from the runner's `commandTable()`. */
  commandTable?: CommandTable;
  /** Executes commands; normally a {@link RedisConnections}. */
  redis: CommandRunner;
  /**
   * Largest accepted request body, in bytes, checked before parsing; larger bodies get 413.
   * Default: 1 MiB (1 048 576).
   */
  maxBodyBytes?: number;
  /**
   * Largest string a SETRANGE, SETBIT or BITFIELD offset may grow a value to; larger offsets are
   * refused with 400 before anything runs. Default: 10 MiB (the bridge's default response cap).
   */
  maxValueBytes?: number;
  /** Called once per authorized, well-formed request before it runs; for counting round trips. */
  onRequest?: (info: BridgeRequestInfo) => void;
  /** Where sync tokens come from; one per process (see {@link SyncTokens}). */
  syncTokens?: SyncTokens;
}

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const HEALTH_TEXT = "cron-guard bridge ok";

/** A request handler for `node:http`'s `createServer`. */
export type BridgeHandler = (request: IncomingMessage, response: ServerResponse) => void;

class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * `upstash-sync-token` values: strictly increasing within a process, seeded from the clock in
 * microseconds so that a restarted bridge (or another worker) continues above earlier tokens.
 * @upstash/redis stores the last token it saw and sends it back; the answer is never below it,
 * so a client's tokens never go backwards even across workers. With one primary behind the
 * bridge every answer already reflects every acknowledged write, so there is nothing to wait for.
 */
export class SyncTokens {
  #last = 0;

  next(received: string | string[] | undefined): string {
    const now = Date.now() * 1000;
    this.#last = Math.max(this.#last + 1, now);
    const theirs = typeof received === "string" && /^\d{1,16}$/.test(received) ? +received : 0;
    return String(Math.max(theirs, this.#last));
  }
}

/**
 * The Upstash-REST-compatible request handler, on plain `node:http` (no WHATWG Request, stream
 * or AbortSignal per request). `GET /` is an unauthenticated health line that runs nothing;
 * every other route needs the token.
 */
export function createBridgeHandler({
  token,
  readonlyToken,
  commandTable,
  redis,
  maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
  maxValueBytes = DEFAULT_MAX_VALUE_BYTES,
  onRequest,
  syncTokens = new SyncTokens(),
}: BridgeAppOptions): BridgeHandler {
  if (token.length === 0) {
    throw new TypeError("createBridgeHandler: token must be a non-empty string");
  }
  if (readonlyToken !== undefined && (readonlyToken.length === 0 || readonlyToken === token)) {
    throw new TypeError(
      "createBridgeHandler: readonlyToken must be non-empty and differ from token",
    );
  }
  if (readonlyToken !== undefined && !commandTable) {
    throw new TypeError("createBridgeHandler: readonlyToken needs a commandTable");
  }
  const limits: CommandLimits = { maxValueBytes };

  const send = (
    request: IncomingMessage,
    response: ServerResponse,
    status: number,
    body: string,
  ) => {
    response.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "upstash-sync-token": syncTokens.next(request.headers["upstash-sync-token"]),
    });
    response.end(body);
  };

  const fail = (request: IncomingMessage, response: ServerResponse, error: unknown) => {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const [status, message] = describeError(error);
    if (status === 413) response.setHeader("connection", "close");
    send(request, response, status, JSON.stringify({ error: message }));
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = request.url ?? "/";
    const query = url.indexOf("?");
    const path = query < 0 ? url : url.slice(0, query);
    const method = request.method;
    if (path === "/" && method === "GET") {
      send(request, response, 200, HEALTH_BODY);
      return;
    }
    const role = authorize(request, query < 0 ? "" : url.slice(query + 1), token, readonlyToken);
    if (role === undefined) {
      send(request, response, 401, UNAUTHORIZED_BODY);
      return;
    }
    const readOnly = role === "readonly";
    const table = readOnly ? commandTable : undefined;
    const base64 = wantsBase64(request);
    if (method === "POST" && path === "/") {
      const command = parseCommand(
        parseJson(await readBody(request, maxBodyBytes)),
        "command",
        limits,
      );
      if (table) assertReadOnly(command, table);
      onRequest?.({ path: "/", commands: [command], readOnly });
      const reply = await redis.run(command);
      send(request, response, 200, `{"result":${JSON.stringify(encodeReply(reply, { base64 }))}}`);
      return;
    }
    if (method === "POST" && (path === "/pipeline" || path === "/multi-exec")) {
      const commands = parseCommandList(parseJson(await readBody(request, maxBodyBytes)), limits);
      if (table) for (const command of commands) assertReadOnly(command, table);
      onRequest?.({ path, commands, readOnly });
      const outcomes =
        path === "/pipeline" ? await redis.pipeline(commands) : await redis.transaction(commands);
      send(request, response, 200, encodeOutcomes(outcomes, base64));
      return;
    }
    if (method === "GET" || method === "POST") {
      const command = parseCommand(
        await pathCommand(request, path, maxBodyBytes),
        "command",
        limits,
      );
      if (table) assertReadOnly(command, table);
      onRequest?.({ path: "path", commands: [command], readOnly });
      const reply = await redis.run(command);
      send(request, response, 200, `{"result":${JSON.stringify(encodeReply(reply, { base64 }))}}`);
      return;
    }
    throw new HttpError(404, `no route for ${method} ${path}`);
  };

  return (request, response) => {
    handle(request, response).catch((error: unknown) => fail(request, response, error));
  };
}

const HEALTH_BODY = JSON.stringify({ result: HEALTH_TEXT });
const UNAUTHORIZED_BODY = JSON.stringify({ error: "Unauthorized" });

function describeError(error: unknown): [number, string] {
  if (error instanceof HttpError) return [error.status, error.message];
  if (
    error instanceof BadRequestError ||
    error instanceof RedisCommandError ||
    error instanceof ResponseTooLargeError
  ) {
    return [400, error.message];
  }
  if (error instanceof RedisUnavailableError) return [503, `Redis unavailable: ${error.message}`];
  return [500, `internal bridge error: ${String(error)}`];
}

function encodeOutcomes(outcomes: Outcome[], base64: boolean): string {
  let body = "[";
  for (let i = 0; i < outcomes.length; i += 1) {
    const outcome = outcomes[i] as Outcome;
    if (i > 0) body += ",";
    body += outcome.ok
      ? `{"result":${JSON.stringify(encodeReply(outcome.reply, { base64 }) satisfies Json)}}`
      : `{"error":${JSON.stringify(outcome.error)}}`;
  }
  return `${body}]`;
}

function wantsBase64(request: IncomingMessage): boolean {
  const value = request.headers["upstash-encoding"];
  return typeof value === "string" && value.toLowerCase() === "base64";
}

/**
 * The role the presented token grants, or undefined. The token comes from `Authorization:
 * Bearer <token>` or, failing that, the `_token` query parameter (Upstash's documented
 * alternative). Both tokens are always compared, each in time that depends only on its own
 * length, never on where the presented value differs.
 */
function authorize(
  request: IncomingMessage,
  query: string,
  token: string,
  readonlyToken: string | undefined,
): "full" | "readonly" | undefined {
  const header = request.headers.authorization;
  let presented = "";
  if (header !== undefined) {
    const match = BEARER.exec(header);
    presented = match?.[1]?.trim() ?? "";
  } else if (query.length > 0) {
    presented = new URLSearchParams(query).get("_token") ?? "";
  }
  const full = constantTimeEquals(presented, token);
  const readonly = readonlyToken !== undefined && constantTimeEquals(presented, readonlyToken);
  if (presented.length === 0) return undefined;
  if (full) return "full";
  return readonly ? "readonly" : undefined;
}

const BEARER = /^Bearer\s+(.+)$/i;

/**
 * Compares `presented` with `secret` in time that depends only on the secret's length: every
 * character of the secret is looked at, whatever the presented value (what hashing both sides
 * and `timingSafeEqual` achieve, without two SHA-256 digests per request).
 */
export function constantTimeEquals(presented: string, secret: string): boolean {
  let difference = presented.length ^ secret.length;
  for (let i = 0; i < secret.length; i += 1) {
    // charCodeAt past the end is NaN, which `|` turns into 0; the length already differs then.
    difference |= presented.charCodeAt(i) ^ secret.charCodeAt(i);
  }
  return difference === 0;
}

function tooLarge(maxBodyBytes: number): HttpError {
  return new HttpError(413, `request body exceeds the limit of ${maxBodyBytes} bytes`);
}

/**
 * The request body as text, whatever its content type (Upstash's own `curl -d` examples send
 * `application/x-www-form-urlencoded`). A declared or actual size over the limit is a 413.
 */
function readBody(request: IncomingMessage, maxBodyBytes: number): Promise<string> {
  const declared = request.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    return Promise.reject(tooLarge(maxBodyBytes));
  }
  return new Promise((resolve, reject) => {
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > maxBodyBytes) {
        request.off("data", onData);
        request.off("end", onEnd);
        request.resume();
        reject(tooLarge(maxBodyBytes));
        return;
      }
      if (first === undefined) {
        first = chunk;
      } else {
        chunks ??= [first];
        chunks.push(chunk);
      }
    };
    const onEnd = () => {
      if (chunks) resolve(Buffer.concat(chunks, total).toString("utf8"));
      else resolve(first ? first.toString("utf8") : "");
    };
    request.on("data", onData);
    request.on("end", onEnd);
    request.on("error", reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `malformed JSON body: ${(error as Error).message}`, { cause: error });
  }
}

/** `/set/k/v` -> ["set","k","v"]; a POST body, if any, is the last argument (Upstash style). */
async function pathCommand(
  request: IncomingMessage,
  path: string,
  maxBodyBytes: number,
): Promise<Command> {
  const segments = path.split("/").slice(1);
  if (segments.at(-1) === "") segments.pop();
  let command: Command;
  try {
    command = segments.map((segment) => decodeURIComponent(segment));
  } catch (error) {
    throw new HttpError(400, "malformed percent-encoding in the URL path", { cause: error });
  }
  if (request.method === "POST") {
    const body = await readBody(request, maxBodyBytes);
    if (body.length > 0) command.push(body);
  }
  return command;
}
