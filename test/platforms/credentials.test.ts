import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/index.js";
import { refuseQuorumWithoutStore, restCredentials } from "../../src/platforms/credentials.js";
import { quorumStore } from "../../src/platforms/upstash-quorum.js";

describe("platform credentials", () => {
  it("reads Upstash's names, else Vercel KV's, else the first quorum database's", () => {
    const upstash = { UPSTASH_REDIS_REST_URL: "https://a", UPSTASH_REDIS_REST_TOKEN: "t" };
    expect(restCredentials(upstash, "here")).toEqual({ url: "https://a", token: "t" });
    const kv = { KV_REST_API_URL: " https://kv ", KV_REST_API_TOKEN: "k" };
    expect(restCredentials(kv, "here")).toEqual({ url: "https://kv", token: "k" });
    const first = { UPSTASH_REDIS_REST_URL_1: "https://1", UPSTASH_REDIS_REST_TOKEN_1: "1" };
    expect(restCredentials(first, "here")).toEqual({ url: "https://1", token: "1" });
  });

  it("names the missing variable and where to set it", () => {
    expect(() => restCredentials({ UPSTASH_REDIS_REST_URL: "https://a" }, "set it in X")).toThrow(
      /UPSTASH_REDIS_REST_TOKEN: is not set.*set it in X/,
    );
    expect(() => restCredentials({}, "here")).toThrow(ConfigError);
  });

  it("builds a quorum store from UPSTASH_REDIS_REST_URL_1..n, nothing without, an error for two", () => {
    expect(quorumStore({ UPSTASH_REDIS_REST_URL: "https://a" })).toBeUndefined();
    const three = Object.fromEntries(
      [1, 2, 3].flatMap((i) => [
        [`UPSTASH_REDIS_REST_URL_${i}`, `https://db${i}`],
        [`UPSTASH_REDIS_REST_TOKEN_${i}`, `t${i}`],
      ]),
    );
    const store = quorumStore(three);
    expect(typeof store?.evalsha).toBe("function");
    const two = { ...three };
    delete two.UPSTASH_REDIS_REST_URL_3;
    delete two.UPSTASH_REDIS_REST_TOKEN_3;
    expect(() => quorumStore(two)).toThrow(ConfigError);
  });

  it("refuses a quorum's variables when the app has no quorum store, instead of claiming in one database", () => {
    expect(refuseQuorumWithoutStore({ UPSTASH_REDIS_REST_URL: "https://a" })).toBeUndefined();
    expect(refuseQuorumWithoutStore({ UPSTASH_REDIS_REST_URL_1: "  " })).toBeUndefined();
    expect(refuseQuorumWithoutStore({ UPSTASH_REDIS_REST_URL_1: 1 })).toBeUndefined();
    for (const name of ["UPSTASH_REDIS_REST_URL_1", "UPSTASH_REDIS_REST_TOKEN_3"]) {
      expect(() => refuseQuorumWithoutStore({ [name]: "x" })).toThrow(ConfigError);
      expect(() => refuseQuorumWithoutStore({ [name]: "x" })).toThrow(
        `${name} is set (quorum mode) but the app has no quorum store: import { quorumStore } from "cron-guard/upstash-quorum"`,
      );
    }
  });
});
