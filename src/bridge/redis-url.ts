/**
 * Redis URLs: what `redis://[[user]:password@]host[:port][/db]` (or `rediss://`) asks for, and the
 * same URL with its password hidden for logs. No connection here: the CLI prints redacted URLs
 * without loading a Redis client.
 */

export interface RedisTarget {
  host: string;
  port: number;
  tls: boolean;
  /** AUTH and SELECT, as the URL asks. */
  handshake: string[][];
}

/** Reads `redis://[[user]:password@]host[:port][/db]` (or `rediss://`); throws TypeError otherwise. */
export function parseRedisUrl(redisUrl: string): RedisTarget {
  let url: URL;
  try {
    url = new URL(redisUrl);
  } catch (error) {
    throw new TypeError(`not a Redis URL: ${JSON.stringify(redisUrl)}`, { cause: error });
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new TypeError(
      `a Redis URL starts with redis:// or rediss://, got ${JSON.stringify(redisUrl)}`,
    );
  }
  const handshake: string[][] = [];
  const password = decodeURIComponent(url.password);
  const username = decodeURIComponent(url.username);
  if (password !== "")
    handshake.push(username === "" ? ["AUTH", password] : ["AUTH", username, password]);
  const database = url.pathname.replace(/^\//, "");
  if (database !== "" && database !== "0") {
    if (!/^\d+$/.test(database)) {
      throw new TypeError(
        `the database in a Redis URL is a number, got ${JSON.stringify(database)}`,
      );
    }
    handshake.push(["SELECT", database]);
  }
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1",
    port: url.port === "" ? 6379 : Number(url.port),
    tls: url.protocol === "rediss:",
    handshake,
  };
}

/**
 * `redisUrl` with its password replaced by `***`, for logs and error messages: a Redis URL
 * never goes out with its password. Anything that does not parse is left out entirely.
 */
export function redactRedisUrl(redisUrl: string): string {
  return redisUrl
    .split(",")
    .map((one) => {
      try {
        const url = new URL(one.trim());
        if (url.password !== "") url.password = "***";
        return url.toString().replace(/\/$/, "");
      } catch {
        return "<unreadable Redis URL>";
      }
    })
    .join(",");
}
