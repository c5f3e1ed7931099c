import { ConfigError } from "../core/errors.js";

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

const QUORUM_VARIABLE = /^UPSTASH_REDIS_REST_(URL|TOKEN)_\d+$/;

/**
 * The platforms' default `store`: none (the guard claims in the single database), unless the
 * environment sets a quorum's variables (`UPSTASH_REDIS_REST_URL_1`, ...), which the app does not
 * bundle the quorum for: then a ConfigError saying to pass `store: quorumStore` from
 * `cron-guard/upstash-quorum`, not claims in one database the deployment did not mean.
 */
export function refuseQuorumWithoutStore(source: Record<string, unknown>): undefined {
  for (const [name, value] of Object.entries(source)) {
    if (QUORUM_VARIABLE.test(name) && typeof value === "string" && value.trim() !== "") {
      throw new ConfigError(
        "store",
        `${name} is set (quorum mode) but the app has no quorum store: import { quorumStore } from "cron-guard/upstash-quorum" and pass { store: quorumStore }`,
      );
    }
  }
  return undefined;
}
