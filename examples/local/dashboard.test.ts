/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core against the local
 * stack of `npm start` (redis-server, bridge, example app, scheduler from 3 regions). Nothing is
 * skipped: without chromium this fails and says how to install it (CI's .ci/run does).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "./stack.js";

const CHROMIUM = "/usr/bin/chromium";
const SECRET = "dashboard-browser-secret";
const OUTPUT = join(import.meta.dirname, "..", "..", "test-output");
const SCREENSHOT = join(OUTPUT, "dashboard.png");

let stack: LocalStack;
let stackStartedAt = 0;
let browser: Browser;
let page: Page;
const dataStatuses: number[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: the dashboard's browser test needs Debian's chromium. Install it with \`bash scripts/ensure-chromium.sh\` (as root) or \`sudo apt-get install -y chromium\`.`,
    );
  }
  // No opening storm: "run now" is then the first to claim the current slot.
  stackStartedAt = Date.now();
  stack = await startLocalStack({
    port: 0,
    bridgePort: 0,
    deliveries: 0,
    regions: 3,
    secret: SECRET,
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--headless",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("response", (response) => {
    if (response.url().endsWith("/dashboard/data")) dataStatuses.push(response.status());
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

const card = (kind: "job" | "schedule", name: string) =>
  page.locator(`article[data-kind="${kind}"][data-name="${name}"]`);

describe("dashboard in chromium", () => {
  it("asks for the secret, shows nothing for a wrong one, then lists jobs and schedules; run now, pause and a failure show", async () => {
    const startedAt = Date.now();
    await page.goto(stack.dashboardUrl);
    await expect.poll(() => page.locator("#unlock").isVisible()).toBe(true);
    expect(await page.locator("#main").isVisible()).toBe(false);
    expect(await page.content()).not.toMatch(/heartbeat|daily-digest|always-fails/);

    // a wrong secret: the data call answers 401, the page locks again and shows no job data
    await page.fill("#secret", "not-the-secret");
    await page.click("#unlock button");
    await expect.poll(() => page.locator("#lockmsg").textContent()).toMatch(/refused/);
    expect(dataStatuses).toEqual([401]);
    expect(await page.locator("article").count()).toBe(0);
    expect(await page.evaluate('sessionStorage.getItem("cron-guard-secret")')).toBeNull();

    // a secret no header can carry: refused in the page (fetch would throw), nothing sent
    await page.fill("#secret", "pässwörd");
    await page.click("#unlock button");
    await expect.poll(() => page.locator("#lockmsg").textContent()).toMatch(/printable ASCII/);
    expect(dataStatuses).toEqual([401]);
    expect(await page.locator("#main").isVisible()).toBe(false);
    expect(await page.evaluate('sessionStorage.getItem("cron-guard-secret")')).toBeNull();

    await page.fill("#secret", SECRET);
    await page.click("#unlock button");
    await card("job", "heartbeat").waitFor();
    for (const [kind, name] of [
      ["job", "heartbeat"],
      ["job", "daily-digest"],
      ["schedule", "record-every-minute"],
      ["schedule", "always-fails"],
    ] as const) {
      expect(await card(kind, name).isVisible()).toBe(true);
    }
    expect(await card("job", "heartbeat").locator("code").first().textContent()).toBe("* * * * *");
    // the secret stays in this tab's sessionStorage and never in a URL
    expect(page.url()).not.toContain(SECRET);
    expect(await page.evaluate('sessionStorage.getItem("cron-guard-secret")')).toBe(SECRET);

    // run now: a ran row for the slot the app answered with
    const [ranResponse] = await Promise.all([
      page.waitForResponse(
        (r) => r.url().endsWith("/cron/heartbeat") && r.request().method() === "POST",
      ),
      card("job", "heartbeat").locator('button[data-action="run"]').click(),
    ]);
    const slot = ranResponse.headers()["cron-guard-slot"];
    expect(slot).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00Z$/);
    await card("job", "heartbeat").locator(`tr[data-outcome="ran"][data-slot="${slot}"]`).waitFor();
    expect(ranResponse.request().url()).not.toContain(SECRET);

    // backfill a minute before the stack started (no scheduler fired it): a ran row, not marked
    // late (the job did not exist yet at that fire time: its first claim was the storm's)
    const previous = new Date(Math.floor(stackStartedAt / 60_000) * 60_000 - 60_000)
      .toISOString()
      .replace(".000Z", "Z");
    const heartbeat = card("job", "heartbeat");
    await heartbeat.locator("input").fill(previous);
    await heartbeat.locator('button[data-action="backfill"]').click();
    await heartbeat
      .locator(`tr[data-outcome="ran"][data-slot="${previous}"]:not([data-late])`)
      .waitFor();

    // the same backfill again: the ledger says it ran (409), shown for this tab's action, with a
    // deliberate "run it again anyway" that sends force=true
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.url().includes("/cron/heartbeat?slot=")),
      heartbeat.locator('button[data-action="backfill"]').click(),
    ]);
    expect(refused.status()).toBe(409);
    await heartbeat.locator(`tr[data-outcome="skipped"][data-slot="${previous}"]`).waitFor();
    const [forced] = await Promise.all([
      page.waitForResponse((r) => r.url().includes("force=true")),
      page.locator('#activity button[data-action="force"]').first().click(),
    ]);
    expect(forced.status()).toBe(200);
    expect(Number(forced.headers()["cron-guard-fence"])).toBeGreaterThan(1);

    // pause a schedule: shown paused, with a resume button
    await card("schedule", "record-every-minute").locator('button[data-action="pause"]').click();
    await page.locator('article[data-name="record-every-minute"][data-enabled="false"]').waitFor();
    expect(
      await card("schedule", "record-every-minute").locator(".badge.paused").textContent(),
    ).toBe("paused");
    expect(
      await card("schedule", "record-every-minute").locator('button[data-action="resume"]').count(),
    ).toBe(1);

    // a failing schedule: run now shows a failed row with its error
    await card("schedule", "always-fails").locator('button[data-action="run"]').click();
    const failedRow = card("schedule", "always-fails").locator('tr[data-outcome="failed"]').first();
    await failedRow.waitFor();
    expect(await failedRow.textContent()).toMatch(/upstream answered 502/);

    // refreshes itself: a new poll arrives without any click
    const polls = dataStatuses.length;
    await expect.poll(() => dataStatuses.length, { timeout: 12_000 }).toBeGreaterThan(polls);
    expect(dataStatuses.slice(1).every((status) => status === 200)).toBe(true);

    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    console.log(
      `dashboard browser test: ${Date.now() - startedAt} ms in chromium; screenshot ${SCREENSHOT}`,
    );
  }, 60_000);
});
