import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs build script without types
import { dashboardScriptModule, GENERATED } from "../../scripts/build-dashboard.mjs";
import { DASHBOARD_SCRIPT } from "../../src/hono/routes/dashboard/script.generated.js";
import { dashboardPage } from "../../src/hono/routes/dashboard-page.js";

describe("the dashboard's browser script", () => {
  it("is committed as script.ts bundles now (run node scripts/build-dashboard.mjs if not)", async () => {
    const fresh: string = await dashboardScriptModule();
    expect(readFileSync(new URL(`../../${GENERATED}`, import.meta.url), "utf8")).toBe(fresh);
  });

  it("is inlined in the page under the request's nonce, and cannot close its element", () => {
    const page = String(dashboardPage("n0nce"));
    expect(page).toContain(`<script nonce="n0nce">${DASHBOARD_SCRIPT}</script>`);
    expect(DASHBOARD_SCRIPT).not.toMatch(/<\/script/i);
    expect(DASHBOARD_SCRIPT).toContain("cron-guard-secret");
  });
});
