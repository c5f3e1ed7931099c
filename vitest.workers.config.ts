import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

/**
 * Tests that run inside workerd (the Cloudflare Workers runtime), next to the Worker in
 * wrangler.toml. The Node global setup starts a redis-server and the Upstash-compatible bridge;
 * its provided URL and token become the Worker's bindings, so test code and the Worker reach the
 * bridge over 127.0.0.1 exactly as a deployed Worker reaches Upstash.
 *
 * Run with `vitest run --config vitest.workers.config.ts` (part of `npm test`).
 */
export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          UPSTASH_REDIS_REST_URL: inject("bridgeUrl"),
          UPSTASH_REDIS_REST_TOKEN: inject("bridgeToken"),
          CRON_SECRET: "workers-test-cron-secret",
          REGION: "workerd-test",
        },
      },
    })),
  ],
  test: {
    name: "workers",
    include: ["test/workers/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
