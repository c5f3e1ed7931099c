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
// The browser's zone: every time on the page shows in it beside UTC.
const VIEWER_ZONE = "Europe/Berlin";
const hhmm = (ms: number, timeZone: string) =>
  new Intl.DateTimeFormat("en-GB", {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(ms);

let stack: LocalStack;
let stackStartedAt = 0;
let browser: Browser;
let page: Page;
const dataStatuses: number[] = [];
const forcedRequests: string[] = [];

/** A call to the stack's app with its secret, as a script would make it. */
function appCall(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${stack.appUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

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
  page = await browser.newPage({
    viewport: { width: 1400, height: 1000 },
    timezoneId: VIEWER_ZONE,
  });
  page.on("response", (response) => {
    if (response.url().endsWith("/dashboard/data")) dataStatuses.push(response.status());
  });
  page.on("request", (request) => {
    if (request.url().includes("force=true")) forcedRequests.push(request.url());
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
    // a schedule in its own time zone: its next fires show in UTC, the viewer's zone and its own
    const created = await appCall("PUT", "/schedules/new-york-morning", {
      cron: "0 7 * * *",
      timezone: "America/New_York",
      handler: "record",
      payload: { key: "cron-guard:example:new-york" },
    });
    expect(created.status).toBe(201);
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

    // health in words, and the last success with its local time beside UTC
    await expect
      .poll(() => heartbeat.locator("[data-health]").getAttribute("data-health"))
      .toBe("ok");
    expect(await heartbeat.locator("[data-health]").textContent()).toBe("ok");
    const lastSuccess = await heartbeat.locator('p[data-last="success"]').textContent();
    expect(lastSuccess).toMatch(/^last success: slot \d\d-\d\d \d\d:\d\dZ · \d\d:\d\d Berlin/);
    const nextFires = (await (await appCall("GET", "/dashboard/data")).json()) as {
      schedules: { id: string; next: string[] }[];
    };
    const newYorkNext = nextFires.schedules.find((s) => s.id === "new-york-morning")?.next[0] ?? "";
    const newYork = card("schedule", "new-york-morning");
    const nextLine = await newYork.locator("p[data-next]").textContent();
    expect(nextLine).toContain(
      `${newYorkNext.slice(11, 16)}Z · ${hhmm(Date.parse(newYorkNext), VIEWER_ZONE)} Berlin · 07:00 New York (schedule's zone)`,
    );
    expect(await page.locator("#meta").textContent()).toMatch(
      /updated \d\d:\d\d:\d\dZ · \d\d:\d\d:\d\d Berlin/,
    );

    // run now on a slot that already ran: 204 done, and a deliberate, confirmed "run again"
    let skipped: Awaited<ReturnType<Page["waitForResponse"]>> | undefined;
    for (let tries = 0; tries < 3 && !skipped; tries += 1) {
      const [response] = await Promise.all([
        page.waitForResponse(
          (r) => r.url().endsWith("/cron/heartbeat") && r.request().method() === "POST",
        ),
        heartbeat.locator('button[data-action="run"]').click(),
      ]);
      // a new minute may have begun since: that run now ran, the next one is the duplicate
      if (response.status() === 204) skipped = response;
    }
    expect(skipped?.headers()["cron-guard-reason"]).toBe("done");
    const ranSlot = skipped?.headers()["cron-guard-slot"] as string;
    const rerunButton = heartbeat.locator(`button[data-action="rerun"][data-slot="${ranSlot}"]`);
    await rerunButton.waitFor();
    // cancelled: nothing is sent and the offer stays
    page.once("dialog", (dialog) => {
      expect(dialog.type()).toBe("confirm");
      expect(dialog.message()).toMatch(/heartbeat again .*already ran/s);
      dialog.dismiss();
    });
    await rerunButton.click();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(forcedRequests).toEqual([]);
    expect(await rerunButton.count()).toBe(1);
    // confirmed: the slot runs again through the ledger's force, and the page shows the result
    page.once("dialog", (dialog) => dialog.accept());
    const [rerun] = await Promise.all([
      page.waitForResponse((r) => r.url().includes("force=true")),
      rerunButton.click(),
    ]);
    expect(rerun.status()).toBe(200);
    expect(rerun.url()).toContain(`slot=${encodeURIComponent(ranSlot)}&force=true`);
    const rerunFence = rerun.headers()["cron-guard-fence"];
    const rerunActivity = page.locator("#activity li").first();
    await expect.poll(() => rerunActivity.getAttribute("data-status")).toBe("ran");
    expect(await rerunActivity.textContent()).toContain(`run again heartbeat`);
    expect(await rerunActivity.textContent()).toContain(`fence ${rerunFence}`);
    await heartbeat
      .locator(`tr[data-outcome="ran"][data-slot="${ranSlot}"]`, { hasText: "forced re-run" })
      .waitFor();
    expect(await rerunButton.count()).toBe(0);

    // the same backfill again: the ledger says it ran (409), shown for this tab's action, with a
    // deliberate "run it again anyway" that sends force=true
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.url().includes("/cron/heartbeat?slot=")),
      heartbeat.locator('button[data-action="backfill"]').click(),
    ]);
    expect(refused.status()).toBe(409);
    await heartbeat.locator(`tr[data-outcome="skipped"][data-slot="${previous}"]`).waitFor();
    page.once("dialog", (dialog) => dialog.accept());
    const [forced] = await Promise.all([
      page.waitForResponse((r) =>
        r.url().includes(`slot=${encodeURIComponent(previous)}&force=true`),
      ),
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
    // its health says so in words (never a green "active"), with its last failure
    const failing = card("schedule", "always-fails");
    await expect
      .poll(() => failing.locator("[data-health]").getAttribute("data-health"))
      .toMatch(/^(failing|dead)$/);
    expect(await failing.locator("[data-health]").textContent()).toMatch(/^(failing|dead)$/);
    const lastFailure = failing.locator('p[data-last="failure"]');
    expect(await lastFailure.textContent()).toMatch(
      /^last failure: slot \d\d-\d\d \d\d:\d\dZ · \d\d:\d\d Berlin, (finished|dead) .* (failed|dead) Error: demo: the upstream answered 502$/,
    );
    expect(await lastFailure.locator(".badge").textContent()).toMatch(/^(failed|dead)$/);
    expect(
      await card("schedule", "record-every-minute").locator("[data-health]").textContent(),
    ).toBe("paused");

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

  it("fits a phone (390x844): no page-wide scroll, tables scroll in their card, every button of a card reachable", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await card("job", "heartbeat").waitFor();
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    const first = page.locator("article").first();
    const buttons = first.locator("button");
    expect(await buttons.count()).toBeGreaterThanOrEqual(2);
    for (const button of await buttons.all()) {
      await button.scrollIntoViewIfNeeded();
      const box = await button.boundingBox();
      expect(box).not.toBeNull();
      expect(box?.x).toBeGreaterThanOrEqual(0);
      expect((box?.x ?? 0) + (box?.width ?? 0)).toBeLessThanOrEqual(390);
      // actionable: visible, enabled, and the element a click there would reach
      await button.click({ trial: true, timeout: 2_000 });
    }
    // the runs table is wider than a phone: it scrolls inside its card, not the page
    const wrap = first.locator(".table-wrap").filter({ hasNot: page.locator("[data-sources]") });
    const widths = await wrap.evaluate((element) => ({
      client: element.clientWidth,
      scroll: element.scrollWidth,
      right: element.getBoundingClientRect().right,
    }));
    expect(widths.right).toBeLessThanOrEqual(390);
    expect(widths.scroll).toBeGreaterThan(widths.client);
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    await page.setViewportSize({ width: 1400, height: 1000 });
  }, 30_000);

  it("pages through 120+ schedules with Next and First, each schedule on one page", async () => {
    const ids = Array.from({ length: 125 }, (_, i) => `paged-${String(i).padStart(3, "0")}`);
    for (let i = 0; i < ids.length; i += 25) {
      const statuses = await Promise.all(
        ids.slice(i, i + 25).map(async (id) => {
          const response = await appCall("PUT", `/schedules/${id}`, {
            cron: "0 0 1 1 *",
            handler: "record",
            payload: { key: "cron-guard:example:paged" },
          });
          return response.status;
        }),
      );
      expect(statuses.every((status) => status === 201)).toBe(true);
    }
    const listed = () =>
      page
        .locator("#schedules article")
        .evaluateAll((cards) => cards.map((card) => card.getAttribute("data-name") ?? ""));
    const next = page.locator('button[data-action="next-schedules"]');
    const first = page.locator('button[data-action="first-schedules"]');
    // a fresh load (a poll sent during the PUTs may show an older page 1): a page of about 100
    // (the registry's HSCAN count) and a way on
    await page.reload();
    await next.waitFor({ timeout: 15_000 });
    expect(await first.count()).toBe(0);
    const firstPage = await listed();
    expect(firstPage.length).toBeGreaterThanOrEqual(50);
    expect(firstPage.length).toBeLessThan(ids.length);
    const seen = [...firstPage];
    for (let pages = 1; (await next.count()) > 0; pages += 1) {
      expect(pages).toBeLessThan(5);
      const before = (await listed()).join();
      await next.click();
      await expect.poll(async () => (await listed()).join()).not.toBe(before);
      await first.waitFor();
      seen.push(...(await listed()));
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of [...ids, "record-every-minute", "always-fails", "new-york-morning"]) {
      expect(seen).toContain(id);
    }
    expect(await page.locator("#meta").textContent()).toMatch(/schedules on this page/);
    await first.click();
    await expect.poll(async () => (await listed()).join()).toBe(firstPage.join());
    expect(await first.count()).toBe(0);
    expect(await next.count()).toBe(1);
  }, 60_000);
});
