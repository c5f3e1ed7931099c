import { ConfigError } from "../core/errors.js";

/** Upstash's own names first, then the ones Vercel's Redis (KV) integration sets. */
const URL_NAMES = ["UPSTASH_REDIS_REST_URL", "KV_REST_API_URL"] as const;
const TOKEN_NAMES = ["UPSTASH_REDIS_REST_TOKEN", "KV_REST_API_TOKEN"] as const;

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
