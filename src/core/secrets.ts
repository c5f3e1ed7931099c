/**
 * Whether `presented` equals `secret`, in time that depends only on the secret's length: every
 * UTF-16 unit of the secret is looked at, whatever the presented value, so the timing shows
 * neither where a guess goes wrong nor how long it is. Used for the app's CRON_SECRET and the
 * bridge's tokens (synchronous, no digest per request).
 */
export function constantTimeEquals(presented: string, secret: string): boolean {
  let difference = presented.length ^ secret.length;
  for (let i = 0; i < secret.length; i += 1) {
    // charCodeAt past the end is NaN, which `|` turns into 0; the length already differs then.
    difference |= presented.charCodeAt(i) ^ secret.charCodeAt(i);
  }
  return difference === 0;
}

/** Printable ASCII, space and tab: what every client can put in an `Authorization` header. */
export const HEADER_SAFE = /^[\t\x20-\x7e]*$/;

/**
 * Whether every character of `secret` can travel in an HTTP header from any client (printable
 * ASCII, space, tab). A secret with others (non-ASCII letters, control characters) can never be
 * presented: fetch refuses to send it, and servers read header bytes as Latin-1.
 */
export function isHeaderSafe(secret: string): boolean {
  return HEADER_SAFE.test(secret);
}
