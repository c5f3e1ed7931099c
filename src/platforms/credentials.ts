import { Redis } from "@upstash/redis/cloudflare";
import { ConfigError } from "../core/errors.js";
import { quorumFromEnv } from "../core/quorum/quorum.js";
import type { GuardStore } from "../core/store.js";

/**
 * Upstash's own names first, then the ones Vercel's Redis (KV) integration sets, then the first
 * database of a quorum (whose client the jobs use for their own data).
 */
const URL_NAMES = [
  "UPSTASH_REDIS_REST_URL",
  "KV_REST_API_URL",
  "UPSTASH_REDIS_REST_URL_1",
] as const;
const TOKEN_NAMES = [
  "UPSTASH_REDIS_REST_TOKEN",
  "KV_REST_API_TOKEN",
  "UPSTASH_REDIS_REST_TOKEN_1",
] as const;

function pick(source: Record<string, unknown>, names: readonly string[], where: string): string {
  for (const name of names) {
    const value = source[name];
    if (typeof value === "string" && value.trim() !== "") return value.trim();
  }
  throw new ConfigError(
    names[0] as string,
    `is not set (nor ${names.slice(1).join(", ")}): ${where}`,
  );
}

/**
 * The REST URL and token from environment variables or Worker bindings, as `Redis.fromEnv` reads
 * them, with a ConfigError naming the missing variable and where to set it.
 */
export function restCredentials(
  source: Record<string, unknown>,
  where: string,
): { url: string; token: string } {
  return { url: pick(source, URL_NAMES, where), token: pick(source, TOKEN_NAMES, where) };
}

/**
 * A quorum store when `UPSTASH_REDIS_REST_URL_1`, `_2`, `_3`, ... are set (an odd number, at least
 * three), else undefined: the guard then claims in the single database.
 */
export function quorumStore(source: Record<string, unknown>): GuardStore | undefined {
  const strings: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(source)) {
    if (typeof value === "string") strings[name] = value;
  }
  return quorumFromEnv(strings, (url, token) => new Redis({ url, token }));
}
