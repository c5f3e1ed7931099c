import type { IncomingMessage, ServerResponse } from "node:http";
import { authorize } from "./auth.js";
import type { CommandRunner } from "./command-runner.js";
import { assertReadOnly, type CommandTable } from "./command-table.js";
import { BridgeOptionsError, HttpError } from "./errors.js";
import {
  assertTransactionBounded,
  type Command,
  type CommandLimits,
  DEFAULT_MAX_VALUE_BYTES,
  parseCommand,
  parseCommandList,
  serveAs,
} from "./protocol.js";
import { parseJson, pathSegments, readBody, wantsBase64 } from "./requests.js";
import {
  type ConnectionActivity,
  createResponder,
  encodeOutcomes,
  encodeResult,
  HEALTH_BODY,
  UNAUTHORIZED_BODY,
} from "./responses.js";
import { SyncTokens } from "./sync-tokens.js";

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

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** A request handler for `node:http`'s `createServer`. */
export type BridgeHandler = (request: IncomingMessage, response: ServerResponse) => void;

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
    throw new BridgeOptionsError("createBridgeHandler: token must be a non-empty string");
  }
  if (readonlyToken !== undefined && (readonlyToken.length === 0 || readonlyToken === token)) {
    throw new BridgeOptionsError(
      "createBridgeHandler: readonlyToken must be non-empty and differ from token",
    );
  }
  if (readonlyToken !== undefined && !commandTable) {
    throw new BridgeOptionsError("createBridgeHandler: readonlyToken needs a commandTable");
  }
  const limits: CommandLimits = { maxValueBytes, scriptsRefused };
  const { send, fail, answer } = createResponder(syncTokens, activity);

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
