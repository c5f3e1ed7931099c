import { Redis } from "@upstash/redis/cloudflare";
import { quorumFromEnv } from "../core/quorum/quorum.js";
import type { GuardStore } from "../core/store.js";

/**
 * `createWorker`'s and `createVercelApp`'s `store` for quorum mode: a quorum store over the Upstash
 * databases `UPSTASH_REDIS_REST_URL_1`/`UPSTASH_REDIS_REST_TOKEN_1`, `_2`, `_3`, ... (an odd number,
 * at least three; Worker bindings or `process.env`), else undefined: the guard then claims in the
 * single database. Half a quorum (two databases, a gap in the numbers) is a ConfigError. Its own
 * subpath keeps the quorum's code out of Workers that claim in one database.
 *
 * @example
 * createWorker(jobs, { store: quorumStore })
 */
export function quorumStore(source: object): GuardStore | undefined {
  const strings: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(source)) {
    if (typeof value === "string") strings[name] = value;
  }
  return quorumFromEnv(strings, (url, token) => new Redis({ url, token }));
}
