import { createClient, RESP_TYPES } from "redis";

/**
 * The node `redis` client as the bridge uses it beside its own RESP connection: for the
 * busy-script killer's admin connection, the transaction pool and (its cluster client) a Redis
 * Cluster. RESP2, no offline queue, errors handled by whoever holds the client.
 */

/** node `redis` command options: bulk strings as Buffers (exact bytes, base64-able); simple strings stay JS strings. */
export const AS_BUFFER = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };
const MAX_RECONNECT_DELAY_MS = 1_000;

/** node `redis`'s reconnect strategy: 50 ms, doubling, at most 1 s. */
export function reconnectDelayMs(retries: number): number {
  return Math.min(50 * 2 ** retries, MAX_RECONNECT_DELAY_MS);
}

/** A node `redis` client for `redisUrl`; `reconnect` false leaves reconnecting to the owner. */
export function makeClient(redisUrl: string, connectTimeoutMs: number, reconnect: boolean) {
  const client = createClient({
    url: redisUrl,
    RESP: 2,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: connectTimeoutMs,
      reconnectStrategy: reconnect ? reconnectDelayMs : false,
    },
  });
  client.on("error", () => {});
  return client;
}

export type Client = ReturnType<typeof makeClient>;

/** `destroy()` throws on a client that is already closed; here that is the desired end state. */
export function destroyQuietly(client: { destroy(): void }): void {
  try {
    client.destroy();
  } catch {}
}
