import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { startBridge } from "../../../src/bridge/index.js";
import {
  CLAIM_SCRIPT,
  COMPLETE_SCRIPT,
  EXTEND_SCRIPT,
  LOOKUP_SCRIPT,
  RECORD_SOURCE_SCRIPT,
  STATUS_SCRIPT,
} from "../../../src/core/guard/scripts.js";
import { createGuard, StoreUnavailableError } from "../../../src/core/index.js";
import {
  bridgeEnv,
  directRedis,
  startCountingBridge,
  upstash,
  useKeyPrefix,
} from "../../support/harness.js";

const scripts = {
  CLAIM_SCRIPT,
  COMPLETE_SCRIPT,
  EXTEND_SCRIPT,
  LOOKUP_SCRIPT,
  RECORD_SOURCE_SCRIPT,
  STATUS_SCRIPT,
};

describe("Lua scripts", () => {
  const prefix = useKeyPrefix("scripts");

  it("have the pinned SHA1 digests (changing a script must be deliberate)", async () => {
    const digests = Object.fromEntries(
      await Promise.all(Object.entries(scripts).map(async ([name, s]) => [name, await s.sha1()])),
    );
    for (const [name, script] of Object.entries(scripts)) {
      expect(digests[name]).toBe(createHash("sha1").update(script.source).digest("hex"));
    }
    expect(digests).toMatchInlineSnapshot(`
      {
        "CLAIM_SCRIPT": "8cf134656aa67ef5206b2e3219f640f026418f8d",
        "COMPLETE_SCRIPT": "0f1f6a0a2ba522c25d41ad29dd3abfc7112d02ea",
        "EXTEND_SCRIPT": "39b30a570beda2a6f3a8571ca102c2ae5da99bf8",
        "LOOKUP_SCRIPT": "c9b81f119aafce9fae06d48a7e9c332782a773bd",
        "RECORD_SOURCE_SCRIPT": "de24e8134a190e3ae3ab8c82c13be78694bdd267",
        "STATUS_SCRIPT": "5e6b78799c6d1ef3b12367b4532162643849abc3",
      }
    `);
  });

  it("fall back from EVALSHA to EVAL after SCRIPT FLUSH, costing one extra round trip", async () => {
    const bridge = await startCountingBridge();
    try {
      const guard = createGuard({
        redis: upstash({ autoPipelining: false, url: bridge.url, token: bridge.token }),
        prefix: prefix(),
      });
      await guard.run("flush", 1_000_000, () => "warm");
      const redis = await directRedis();
      await redis.scriptFlush();
      bridge.reset();
      const result = await guard.run("flush", 2_000_000, () => "after flush");
      expect(result).toMatchObject({ status: "ran", value: "after flush" });
      const commands = bridge.requests.flatMap((r) => r.commands.map((c) => c[0]?.toUpperCase()));
      expect(commands).toEqual(["EVALSHA", "EVAL", "EVALSHA", "EVAL"]);
      bridge.reset();
      await guard.run("flush", 3_000_000, () => "cached again");
      expect(bridge.requests.flatMap((r) => r.commands.map((c) => c[0]?.toUpperCase()))).toEqual([
        "EVALSHA",
        "EVALSHA",
      ]);
    } finally {
      await bridge.close();
    }
  });

  it("send a script's source once when a storm meets an empty script cache together", async () => {
    const commands: string[] = [];
    // 300 EVALSHA claims are ~170 kB; 300 copies of the claim script's source would be ~750 kB,
    // far over this bridge's 256 kB body limit.
    const bridge = await startBridge({
      redisUrl: bridgeEnv().redisUrl,
      maxBodyBytes: 256 * 1024,
      onRequest: (info) => commands.push(...info.commands.map((c) => String(c[0]).toUpperCase())),
    });
    try {
      const shared = upstash({ url: bridge.url, token: bridge.token }); // auto-pipelining on
      const guard = createGuard({ redis: shared, prefix: prefix() });
      await (await directRedis()).scriptFlush();
      const results = await Promise.all(
        Array.from({ length: 300 }, () => guard.run("cold-storm", 60_000, () => "once")),
      );
      expect(results.filter((r) => r.status === "ran")).toHaveLength(1);
      expect(results.filter((r) => r.status === "skipped")).toHaveLength(299);
      expect(commands.filter((c) => c === "EVAL").length).toBeLessThanOrEqual(2);
    } finally {
      await bridge.close();
    }
  });

  it("cut store errors to a readable length (@upstash/redis appends the whole command)", async () => {
    const tooSmall = await startBridge({ redisUrl: bridgeEnv().redisUrl, maxBodyBytes: 256 });
    try {
      const guard = createGuard({
        redis: upstash({ url: tooSmall.url, token: tooSmall.token, autoPipelining: false }),
        prefix: prefix(),
      });
      const error = await guard.run("long-error", 60_000, () => 1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as Error).message).toMatch(/^claim failed: .*request body exceeds/);
      expect((error as Error).message.length).toBeLessThanOrEqual(320);
    } finally {
      await tooSmall.close();
    }
  });

  it("cost one round trip per loser and two per winner", async () => {
    const bridge = await startCountingBridge();
    try {
      const instance = () =>
        createGuard({
          redis: upstash({ autoPipelining: false, url: bridge.url, token: bridge.token }),
          prefix: prefix(),
        });
      await instance().run("warmup", 1, () => 0);
      bridge.reset();
      const results = await Promise.all(
        Array.from({ length: 50 }, () => instance().run("trips", 60_000, () => "once")),
      );
      expect(results.filter((r) => r.status === "ran")).toHaveLength(1);
      expect(bridge.requests).toHaveLength(2 + 49);
    } finally {
      await bridge.close();
    }
  });
});
