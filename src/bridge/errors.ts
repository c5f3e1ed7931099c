/**
 * How the bridge's Redis side fails; the HTTP handler turns each into its status code.
 */

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
