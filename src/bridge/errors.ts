/**
 * How a request to the bridge fails; the HTTP handler turns each into its status code (see
 * responses.ts). A malformed command is protocol.ts's BadRequestError (400).
 */

/** A setup mistake in the bridge's options (a token no client can send, a bad port, ...). */
export class BridgeOptionsError extends Error {
  override readonly name = "BridgeOptionsError";
}

/** Redis could not be reached, the socket broke or a call exceeded its timeout (HTTP 503). */
export class RedisUnavailableError extends Error {
  override readonly name = "RedisUnavailableError";
}

/** Redis answered with an error reply, e.g. "ERR wrong number of arguments..." (HTTP 400). */
export class RedisCommandError extends Error {
  override readonly name = "RedisCommandError";
}

/**
 * The replies to one request add up to more than `maxResponseBytes` (HTTP 400, like Upstash's
 * "ERR max request size exceeded"). The message says which commands ran.
 */
export class ResponseTooLargeError extends Error {
  override readonly name = "ResponseTooLargeError";
}

/** A request the HTTP layer refuses itself: malformed JSON or URL, no route, a body too large. */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
