import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Outcome } from "./command-runner.js";
import {
  HttpError,
  RedisCommandError,
  RedisUnavailableError,
  ResponseTooLargeError,
} from "./errors.js";
import { BadRequestError, encodeReply, type Json } from "./protocol.js";
import type { SyncTokens } from "./sync-tokens.js";

/**
 * Writing the answer: the JSON bodies, the status each error answers with, and one write per
 * response carrying the `upstash-sync-token` header.
 */

/** What the handler reports about each connection (`startBridge` closes idle ones with it). */
export interface ConnectionActivity {
  opened(socket: Socket): void;
  answered(socket: Socket): void;
}

const HEALTH_TEXT = "cron-guard bridge ok";
export const HEALTH_BODY = JSON.stringify({ result: HEALTH_TEXT });
export const UNAUTHORIZED_BODY = JSON.stringify({ error: "Unauthorized" });

/** How the routes answer a request; from {@link createResponder}. */
export interface Responder {
  send(
    request: IncomingMessage,
    response: ServerResponse,
    status: number,
    body: string,
    close?: boolean,
  ): void;
  /** Answers with the status and message `error` stands for (or drops a half-sent response). */
  fail(request: IncomingMessage, response: ServerResponse, error: unknown): void;
  answer<T>(
    request: IncomingMessage,
    response: ServerResponse,
    work: Promise<T>,
    body: (value: T) => string,
  ): void;
}

/** The response writers of one handler: its sync tokens, and `activity` told of each answer. */
export function createResponder(
  syncTokens: SyncTokens,
  activity: ConnectionActivity | undefined,
): Responder {
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

  return { send, fail, answer };
}

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

export function encodeResult(reply: unknown, base64: boolean): string {
  return `{"result":${JSON.stringify(encodeReply(reply, { base64 }))}}`;
}

export function encodeOutcomes(outcomes: Outcome[], base64: boolean): string {
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
