import { ConfigError } from "../errors.js";
import type { GuardStore } from "../store.js";
import type { QuorumOptions } from "./context.js";
import { createQuorumStore } from "./store.js";

/**
 * Quorum mode from environment variables: `UPSTASH_REDIS_REST_URL_1` and
 * `UPSTASH_REDIS_REST_TOKEN_1`, `_2`, ... numbered from 1 without gaps, an odd number of at least 3
 * pairs. `createStore` makes one client per pair, e.g. `(url, token) => new Redis({ url, token })`
 * (core imports no Redis client). Returns undefined when `UPSTASH_REDIS_REST_URL_1` and
 * `UPSTASH_REDIS_REST_TOKEN_1` are both unset (quorum mode not configured: use a single store);
 * throws a ConfigError for anything half-configured.
 */
export function quorumFromEnv(
  env: Record<string, string | undefined>,
  createStore: (url: string, token: string) => GuardStore,
  options: QuorumOptions = {},
): GuardStore | undefined {
  const URL = "UPSTASH_REDIS_REST_URL_";
  const TOKEN = "UPSTASH_REDIS_REST_TOKEN_";
  const pairs: { url: string; token: string }[] = [];
  const value = (name: string) => {
    const raw = env[name];
    return typeof raw === "string" && raw.trim() !== "" ? raw.trim() : undefined;
  };
  for (let i = 1; ; i += 1) {
    const url = value(`${URL}${i}`);
    const token = value(`${TOKEN}${i}`);
    if (url === undefined && token === undefined) break;
    if (url === undefined)
      throw new ConfigError(`${URL}${i}`, `is missing, but ${TOKEN}${i} is set`);
    if (token === undefined) {
      throw new ConfigError(`${TOKEN}${i}`, `is missing, but ${URL}${i} is set`);
    }
    pairs.push({ url, token });
  }
  const numbered = new RegExp(`^(${URL}|${TOKEN})(\\d+)$`);
  for (const name of Object.keys(env)) {
    const match = numbered.exec(name);
    if (match && value(name) !== undefined && Number(match[2]) > pairs.length) {
      throw new ConfigError(
        name,
        `is set but ${URL}${pairs.length + 1} / ${TOKEN}${pairs.length + 1} are not: number the databases 1, 2, 3, ... without gaps`,
      );
    }
  }
  if (pairs.length === 0) return undefined;
  if (pairs.length < 3 || pairs.length % 2 === 0) {
    throw new ConfigError(
      `${URL}n`,
      `quorum mode needs an odd number of at least 3 databases (${URL}1..${URL}3 or more), got ${pairs.length}`,
    );
  }
  const stores = pairs.map(({ url, token }) => createStore(url, token));
  return createQuorumStore(stores, options);
}
