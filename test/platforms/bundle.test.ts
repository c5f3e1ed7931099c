/**
 * Pay for what you use (issue 22): a one-job `createWorker` without plug-ins bundles none of the
 * features it was not given (dynamic schedules, dashboard, OpenAPI, alerts, quorum), and stays
 * within 60 KiB gzip as `wrangler deploy --dry-run --minify` uploads it. The example Worker, given every plug-in, carries them all: the same checks would
 * see a feature that slipped back into the minimal Worker.
 */
import { describe, expect, it } from "vitest";
import { BUNDLE_WORKERS, MINIMAL_TARGET_KIB, measureBundle } from "../../bench/bundle.js";

/** Each feature's code, by the source files that only it needs. */
const FEATURES: Record<string, RegExp> = {
  "dynamic schedules":
    /^src\/(core\/schedules\/|hono\/dynamic\.ts|hono\/routes\/schedules\.ts|hono\/schedule-monitoring\.ts)/,
  dashboard: /^src\/hono\/routes\/dashboard/,
  openapi: /^src\/hono\/openapi\.ts|node_modules\/@valibot\/to-json-schema\//,
  "request validation": /node_modules\/valibot\//,
  alerts: /^src\/core\/monitoring\/alerts\.ts/,
  quorum: /^src\/core\/quorum\//,
};

function featuresIn(inputs: readonly string[]): string[] {
  return Object.entries(FEATURES)
    .filter(([, pattern]) => inputs.some((input) => pattern.test(input)))
    .map(([feature]) => feature);
}

describe("the minimal Worker's bundle", () => {
  it(`is at most ${MINIMAL_TARGET_KIB} KiB gzip minified and bundles no feature it was not given`, async () => {
    const minified = await measureBundle(BUNDLE_WORKERS.minimal, { minify: true });
    expect(minified.gzipKib).toBeLessThanOrEqual(MINIMAL_TARGET_KIB);
    expect(featuresIn(minified.inputs)).toEqual([]);
    // what wrangler uploads without minify (the default): the floor of its dependencies (the
    // guard with @upstash/redis, Hono, croner) is about 70 KiB; it was 132.85 before issue 22
    const plain = await measureBundle(BUNDLE_WORKERS.minimal);
    expect(plain.gzipKib).toBeLessThanOrEqual(90);
    expect(plain.inputs).toContain("src/hono/routes/cron.ts");
  }, 120_000);

  it("the example Worker, given every plug-in, bundles every feature", async () => {
    const example = await measureBundle(BUNDLE_WORKERS["example (all plug-ins)"], { minify: true });
    expect(featuresIn(example.inputs)).toEqual(
      Object.keys(FEATURES).filter((feature) => feature !== "quorum"),
    );
    expect(example.gzipKib).toBeGreaterThan(MINIMAL_TARGET_KIB);
  }, 120_000);
});
