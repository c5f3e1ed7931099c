import type { RunningBridge } from "../../src/bridge/index.js";

/** What a JSON POST to a bridge answered, and how long it took. */
export interface TimedAnswer {
  status: number;
  body: unknown;
  elapsedMs: number;
}

/** POSTs `body` as JSON to `path` on `bridge` with its token; times the whole exchange. */
export async function postTimed(
  bridge: RunningBridge,
  path: string,
  body: unknown,
): Promise<TimedAnswer> {
  const started = performance.now();
  const response = await fetch(`${bridge.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${bridge.token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    body: (await response.json()) as unknown,
    elapsedMs: performance.now() - started,
  };
}
