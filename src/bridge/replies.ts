import { ErrorReply } from "redis";
import type { Outcome } from "./command-runner.js";
import {
  messageOf,
  RedisCommandError,
  RedisUnavailableError,
  ResponseTooLargeError,
} from "./errors.js";
import { ReplyError } from "./resp.js";

/**
 * What comes back from Redis, before it goes out as JSON: how large a reply is (the
 * `maxResponseBytes` checks) and which error a failure becomes (a Redis error reply is a
 * RedisCommandError, 400; anything else RedisUnavailableError, 503).
 */

/** The reply of one command, or a ResponseTooLargeError when it is larger than `maxBytes`. */
export function assertReplyWithin<T>(reply: T, maxBytes: number): T {
  const size = replySize(reply);
  if (size > maxBytes) {
    throw new ResponseTooLargeError(
      `ERR max response size exceeded: the reply is ${size} bytes, more than this bridge's limit of ${maxBytes} (the command ran)`,
    );
  }
  return reply;
}

/** A transaction's outcomes, or a ResponseTooLargeError when they add up to more than `maxBytes`. */
export function assertTransactionWithin(outcomes: Outcome[], maxBytes: number): Outcome[] {
  const size = outcomes.reduce(
    (sum, outcome) => sum + (outcome.ok ? replySize(outcome.reply) : outcome.error.length),
    0,
  );
  if (size > maxBytes) {
    throw new ResponseTooLargeError(
      `ERR max response size exceeded: the replies are ${size} bytes, more than this bridge's limit of ${maxBytes} (the transaction ran)`,
    );
  }
  return outcomes;
}

/**
 * Approximate payload of a raw reply: bytes of its strings, 8 per number or null, 1 per array
 * element. Counted before base64 and JSON, so the HTTP body can be up to about 4/3 of it.
 */
export function replySize(reply: unknown): number {
  if (reply instanceof Uint8Array) return reply.byteLength;
  if (typeof reply === "string") return Buffer.byteLength(reply, "utf8");
  if (Array.isArray(reply)) {
    let total = 0;
    for (const item of reply) total += 1 + replySize(item);
    return total;
  }
  if (reply instanceof Error) return Buffer.byteLength(reply.message, "utf8");
  return 8;
}

const KILLED_BY_KILL = /Script killed by user with (SCRIPT|FUNCTION) KILL/;

/** The error a failed Redis call answers with. */
export function classify(error: unknown): RedisCommandError | RedisUnavailableError {
  if (error instanceof RedisCommandError || error instanceof RedisUnavailableError) return error;
  if (error instanceof ErrorReply || error instanceof ReplyError) {
    const note = KILLED_BY_KILL.test(error.message)
      ? " (the bridge kills scripts and functions that keep Redis busy past its busy-reply-threshold)"
      : "";
    return new RedisCommandError(`${error.message}${note}`, { cause: error });
  }
  return new RedisUnavailableError(messageOf(error), { cause: error });
}
