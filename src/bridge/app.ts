import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { constantTimeEquals } from "../core/secrets.js";
import { assertReadOnly, type CommandTable } from "./command-table.js";
import {
  type CommandRunner,
  type Outcome,
  RedisCommandError,
  RedisUnavailableError,
  ResponseTooLargeError,
} from "./connections.js";
import {
  assertTransactionBounded,
  BadRequestError,
  type Command,
  type CommandLimits,
  DEFAULT_MAX_VALUE_BYTES,
  encodeReply,
  type Json,
  parseCommand,
  parseCommandList,
  serveAs,
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
   * Executes the read-only token's commands, e.g. connections logged in as the read-only Redis
   * ACL user. Default: `redis`.
   */
  readonlyRedis?: CommandRunner;
  /**
   * Why scripts are refused, when they are (the Redis user is not confined by ACL); see
   * {@link CommandLimits.scriptsRefused}. Default: scripts run.
   */
  scriptsRefused?: string;
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
  /**
   * Told when a request arrives on a connection and when its answer is written; `startBridge`
   * closes idle keep-alive connections with it ({@link IdleConnections}).
   */
  activity?: ConnectionActivity;
}

/** What the handler reports about each connection; see {@link BridgeAppOptions.activity}. */
export interface ConnectionActivity {
  opened(socket: Socket): void;
  answered(socket: Socket): void;
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
 * `upstash-sync-token` values: strictly increasing within a process and, across restarts, above
 * what an earlier bridge handed out, because they start from the clock: the second since 2020
 * the bridge started in, followed by a 7-digit count (16 digits until 2051, well inside the
 * integers a double holds exactly). After 9 million tokens the prefix moves on by a second; at
 * the bridge's speed that takes minutes, so the prefix never runs ahead of the clock and a
 * restarted bridge starts above. (A bridge restarted within the same second starts its count
 * again; only clients that do not send their token back can see that, and they do not compare.)
 *
 * @upstash/redis keeps the last token it saw and sends it back; the answer is never below it,
 * so a client's tokens never go backwards even across bridges. With one primary behind the
 * bridge every answer already reflects every acknowledged write, so there is nothing to wait
 * for. Tokens are built by joining two short strings: turning a 16-digit number into a string on
 * every response cost about 2% of the bridge's requests/s.
 */
export class SyncTokens {
  #second: number;
  #prefix: string;
  #count = COUNT_START;

  constructor(private readonly nowMs: () => number = Date.now) {
    this.#second = secondsSince2020(nowMs());
    this.#prefix = String(this.#second);
  }

  next(received: string | string[] | undefined): string {
    this.#count += 1;
    if (this.#count > COUNT_END) {
      // 9 million tokens under one prefix: move on, to the clock's second if it is further
      this.#second = Math.max(this.#second + 1, secondsSince2020(this.nowMs()));
      this.#prefix = String(this.#second);
      this.#count = COUNT_START + 1;
    }
    const ours = this.#prefix + this.#count;
    return typeof received === "string" && isAhead(received, ours) ? received : ours;
  }
}

function secondsSince2020(nowMs: number): number {
  return Math.floor((nowMs - EPOCH_2020_MS) / 1000);
}

const EPOCH_2020_MS = Date.UTC(2020, 0, 1);
/** The count runs through 7-digit numbers, so every token of one prefix has the same length. */
const COUNT_START = 1_000_000;
const COUNT_END = 9_999_999;

/** Whether `theirs` is a token (1-16 digits, no leading zero) greater than `ours`. */
function isAhead(theirs: string, ours: string): boolean {
  if (theirs.length !== ours.length) {
    return theirs.length > ours.length && theirs.length <= 16 && /^[1-9]\d*$/.test(theirs);
  }
  return theirs > ours && /^\d+$/.test(theirs);
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
  readonlyRedis = redis,
  scriptsRefused,
  maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
  maxValueBytes = DEFAULT_MAX_VALUE_BYTES,
  onRequest,
  syncTokens = new SyncTokens(),
  activity,
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
  const limits: CommandLimits = { maxValueBytes, scriptsRefused };

  /**
   * Writes the whole answer at once. The headers go as a flat array with the length already
   * known: node:http then neither walks a header object nor measures the body again.
   */
  const send = (
    request: IncomingMessage,
    response: ServerResponse,
    status: number,
    body: string,
    close = false,
  ) => {
    const headers = [
      "content-type",
      "application/json",
      "content-length",
      String(Buffer.byteLength(body)),
      "upstash-sync-token",
      syncTokens.next(request.headers["upstash-sync-token"]),
    ];
    if (close) headers.push("connection", "close");
    response.writeHead(status, headers);
    response.end(body);
    activity?.answered(request.socket);
  };

  const fail = (request: IncomingMessage, response: ServerResponse, error: unknown) => {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const [status, message] = describeError(error);
    send(request, response, status, JSON.stringify({ error: message }), status === 413);
  };

  /**
   * Answers 200 with `body(value)` once `work` resolves, or the error it (or `body`) fails with.
   * One `then`, no `catch`: a body that cannot be encoded is answered like a failed command.
   */
  const answer = <T>(
    request: IncomingMessage,
    response: ServerResponse,
    work: Promise<T>,
    body: (value: T) => string,
  ) => {
    work.then(
      (value) => {
        let text: string;
        try {
          text = body(value);
        } catch (error) {
          fail(request, response, error);
          return;
        }
        send(request, response, 200, text);
      },
      (error: unknown) => fail(request, response, error),
    );
  };

  // Callbacks rather than async functions and awaits: this runs for every request, and each
  // await costs a promise and a turn of the microtask queue.
  const route = (request: IncomingMessage, response: ServerResponse) => {
    const url = request.url ?? "/";
    const query = url.indexOf("?");
    const path = query < 0 ? url : url.slice(0, query);
    const method = request.method;
    if (path === "/" && (method === "GET" || method === "HEAD")) {
      // HEAD is GET without the body (node:http leaves it out): load balancers probe with it
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
    const runner = readOnly ? readonlyRedis : redis;
    const base64 = wantsBase64(request);
    const onError = (error: unknown) => fail(request, response, error);
    if (method === "POST" && path === "/") {
      readBody(request, maxBodyBytes, onError, (text) => {
        const command = parseCommand(parseJson(text), "command", limits);
        if (table) assertReadOnly(command, table);
        onRequest?.({ path: "/", commands: [command], readOnly });
        answer(request, response, runner.run(serveAs(command)), (reply) =>
          encodeResult(reply, base64),
        );
      });
      return;
    }
    if (method === "POST" && (path === "/pipeline" || path === "/multi-exec")) {
      readBody(request, maxBodyBytes, onError, (text) => {
        const commands = parseCommandList(parseJson(text), limits);
        if (table) for (const command of commands) assertReadOnly(command, table);
        if (path === "/multi-exec") assertTransactionBounded(commands);
        onRequest?.({ path, commands, readOnly });
        const sent = serveAllAs(commands);
        const outcomes = path === "/pipeline" ? runner.pipeline(sent) : runner.transaction(sent);
        answer(request, response, outcomes, (list) => encodeOutcomes(list, base64));
      });
      return;
    }
    if (method === "GET" || method === "POST") {
      const segments = pathSegments(path);
      const run = (body: string) => {
        if (body.length > 0) segments.push(body);
        const command = parseCommand(segments, "command", limits);
        if (table) assertReadOnly(command, table);
        onRequest?.({ path: "path", commands: [command], readOnly });
        answer(request, response, runner.run(serveAs(command)), (reply) =>
          encodeResult(reply, base64),
        );
      };
      if (method === "POST") readBody(request, maxBodyBytes, onError, run);
      else run("");
      return;
    }
    throw new HttpError(404, `no route for ${method} ${path}`);
  };

  return (request, response) => {
    activity?.opened(request.socket);
    try {
      route(request, response);
    } catch (error) {
      fail(request, response, error);
    }
  };
}

/** {@link serveAs} for each command; the same array when nothing changes (the usual case). */
function serveAllAs(commands: Command[]): Command[] {
  let sent = commands;
  for (let i = 0; i < commands.length; i += 1) {
    const command = commands[i] as Command;
    const served = serveAs(command);
    if (served === command) continue;
    if (sent === commands) sent = commands.slice();
    sent[i] = served;
  }
  return sent;
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

function encodeResult(reply: unknown, base64: boolean): string {
  return `{"result":${JSON.stringify(encodeReply(reply, { base64 }))}}`;
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
    presented = bearerToken(header);
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

/** The token of `Bearer <token>` (scheme in any case), or "" for anything else. */
function bearerToken(header: string): string {
  // the usual "Bearer x" without a regular expression or a copy: this runs for every request
  if (header.startsWith("Bearer ") && header.charCodeAt(7) > 32) return header.slice(7).trimEnd();
  return BEARER.exec(header)?.[1]?.trim() ?? "";
}

function tooLarge(maxBodyBytes: number): HttpError {
  return new HttpError(413, `request body exceeds the limit of ${maxBodyBytes} bytes`);
}

/**
 * How much of a refused (413) body the bridge still reads and discards before it answers, in
 * bytes, and for how long, in ms. A client such as Node's `fetch` (so `@upstash/redis`) that
 * is still sending when the server answers and closes gets EPIPE instead of the answer; read to
 * the end, it reads the 413. Past either bound the bridge answers and closes at once.
 */
export const MAX_DRAIN_BYTES = 128 * 1024 * 1024;
export const MAX_DRAIN_MS = 10_000;

/**
 * Reads and discards the rest of `request` (at most {@link MAX_DRAIN_BYTES} more, for at most
 * {@link MAX_DRAIN_MS}), then calls `done` once.
 */
function drain(request: IncomingMessage, alreadyRead: number, done: () => void): void {
  let drained = alreadyRead;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    request.off("data", onData);
    request.off("end", finish);
    request.off("close", finish);
    done();
  };
  const onData = (chunk: Buffer) => {
    drained += chunk.byteLength;
    if (drained > MAX_DRAIN_BYTES) finish();
  };
  const timer = setTimeout(finish, MAX_DRAIN_MS);
  request.on("data", onData);
  request.on("end", finish);
  request.on("close", finish);
  request.resume();
}

/**
 * Calls `use` with the request body as text, whatever its content type (Upstash's own `curl -d`
 * examples send `application/x-www-form-urlencoded`), or `onError` with a 413 for a declared or
 * actual size over the limit, once the rest of the body is read (see {@link drain}). An error
 * thrown by `use` goes to `onError` too.
 */
function readBody(
  request: IncomingMessage,
  maxBodyBytes: number,
  onError: (error: unknown) => void,
  use: (text: string) => void,
): void {
  const declared = request.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    const refuse = () => onError(tooLarge(maxBodyBytes));
    if (Number(declared) > MAX_DRAIN_BYTES) refuse();
    else drain(request, 0, refuse);
    return;
  }
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let total = 0;
  const onData = (chunk: Buffer) => {
    total += chunk.byteLength;
    if (total > maxBodyBytes) {
      request.off("data", onData);
      request.off("end", onEnd);
      first = undefined;
      chunks = undefined;
      drain(request, total, () => onError(tooLarge(maxBodyBytes)));
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
    let text = "";
    if (chunks) text = Buffer.concat(chunks, total).toString("utf8");
    else if (first) text = first.toString("utf8");
    try {
      use(text);
    } catch (error) {
      onError(error);
    }
  };
  // No "error" listener: node:http emits a request's error only to listeners, and a request
  // that fails (the client went away) has nobody left to answer.
  request.on("data", onData);
  request.on("end", onEnd);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `malformed JSON body: ${(error as Error).message}`, { cause: error });
  }
}

/** `/set/k/v` -> ["set","k","v"]; a POST body, if any, is then the last argument (Upstash style). */
function pathSegments(path: string): string[] {
  const segments = path.split("/").slice(1);
  if (segments.at(-1) === "") segments.pop();
  try {
    return segments.map((segment) => decodeURIComponent(segment));
  } catch (error) {
    throw new HttpError(400, "malformed percent-encoding in the URL path", { cause: error });
  }
}
