import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("the workers test project", () => {
  it("runs inside workerd", () => {
    expect(navigator.userAgent).toBe("Cloudflare-Workers");
    expect(typeof WebSocketPair).toBe("function");
  });

  it("reaches the global setup's bridge over 127.0.0.1 with the bound URL and token", async () => {
    const response = await fetch(env.UPSTASH_REDIS_REST_URL, {
      method: "POST",
      headers: {
        authorization: `Bearer ${env.UPSTASH_REDIS_REST_TOKEN}`,
        "content-type": "application/json",
      },
      body: JSON.stringify(["PING"]),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ result: "PONG" });
  });
});
