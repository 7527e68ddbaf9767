/**
 * The admin console as operators use it, in Chromium against the demo stack
 * served by the local bridge: 43 jobs, about 30% failed, one with a long
 * unbroken title. Each bug of issue 11 has a check here (phone width
 * included), and the offline indicator is tested by stopping the bridge and
 * starting it again. Screenshots go to out/screenshots/.
 */
import { mkdirSync } from "node:fs";
import type { Browser, BrowserContextOptions, Page } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { api, internal } from "../../convex/_generated/api";
import { ADMIN_IDENTITY } from "../../scripts/lib/backend";
import { serveAdmin, type AdminServer } from "../../scripts/lib/bridge";
import { startDemoStack, type DemoStack } from "../../scripts/lib/stack";
import { caseFile, numberedCaseFile, settle } from "../harness";
import { connectChromium } from "../../scripts/lib/browser";

const SHOTS = "out/screenshots";
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };
const LONG_TITLE = `TheUnbrokenCorridor${"Nine".repeat(60)}`;

let stack: DemoStack;
let dist: string;
let server: AdminServer;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  stack = await startDemoStack({
    env: { ADMIN_EMAILS: ADMIN_IDENTITY.email, PORTRAIT_MAX_ATTEMPTS: "1" },
    recraft: { latencyMs: 0, downloadLatencyMs: 0 },
    backendLog: () => {},
  });
  // Every third job fails (401), a few with a wrong content type; the rest are stored.
  stack.recraft!.setFault(({ prompt }) => {
    const i = Number(prompt.match(/#(\d+)/)?.[1] ?? -1);
    if (i % 3 === 0) return { kind: "status", status: 401, body: "invalid api key" };
    if (i % 10 === 1) return { kind: "imageContentType", contentType: "text/html" };
    return undefined;
  });
  // The long title is the oldest job: off the first page, reached by search.
  await stack.t.mutation(
    internal.stories.insertStory,
    caseFile({ title: LONG_TITLE, slug: "unbroken", imageGenerationPrompt: "portrait of patient #43" }),
  );
  for (let i = 0; i < 40; i++) await stack.t.mutation(internal.stories.insertStory, numberedCaseFile(i));
  await stack.t.mutation(
    internal.stories.insertStory,
    caseFile({
      title: "The Night Rounds",
      slug: "night-rounds",
      patientName: "Ruth Calloway",
      patientNumber: "P-0470",
      imageGenerationPrompt: "portrait of patient #41",
    }),
  );
  await stack.t.mutation(
    internal.stories.insertStory,
    caseFile({ title: "The Quiet Ward", slug: "quiet-ward", imageGenerationPrompt: "portrait of patient #44" }),
  );
  await settle(stack.t, { timeoutMs: 60_000 });
  stack.recraft!.setFault(undefined);
  dist = inject("adminDist"); // built once per run for every browser suite (tests/e2e/setup.ts)
  server = await serveAdmin(stack, { dist });
  browser = await connectChromium(inject("chromiumEndpoint"));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await stack?.close();
});

type Opened = { page: Page; errors: string[]; consoleErrors: string[] };

async function open(
  hash = "#/",
  {
    as = "admin",
    viewport = DESKTOP,
    ...context
  }: { as?: string; viewport?: { width: number; height: number } } & BrowserContextOptions = {},
): Promise<Opened> {
  const ctx = await browser.newContext({ viewport, ...context });
  const page = await ctx.newPage();
  const errors: string[] = [];
  const consoleErrors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  await page.goto(`${server.url}/?as=${as}${hash}`);
  return { page, errors, consoleErrors };
}

const close = (page: Page) => page.context().close();
const widths = (page: Page) => page.evaluate(() => ({ page: document.documentElement.scrollWidth, screen: window.innerWidth }));
const jobIdByTitle = async (title: string) =>
  (await stack.t.run((ctx) => ctx.db.query("portraitJobs").collect())).find((j) => j.searchText.startsWith(title))!._id;

test("on a phone nothing is wider than the screen: the job list, a long title, the job page, the failures' actions, the count cards", async () => {
  const { page, errors } = await open("#/", { viewport: PHONE, colorScheme: "dark" });
  await page.locator("tbody tr").first().waitFor();
  expect(await widths(page)).toEqual({ page: 390, screen: 390 });
  const table = await page.locator("table.jobs").boundingBox();
  expect(table!.x + table!.width).toBeLessThanOrEqual(390);

  // Every count card fits its grid cell and its text fits the card.
  const cards = await page.locator(".count").evaluateAll((els) =>
    els.map((el) => {
      const grid = el.parentElement!.getBoundingClientRect();
      const box = el.getBoundingClientRect();
      return { inside: box.left >= grid.left - 0.5 && box.right <= grid.right + 0.5, fits: el.scrollWidth <= el.clientWidth };
    }),
  );
  // One per status, cancelled included (issue 16).
  expect(cards).toEqual(Array(6).fill({ inside: true, fits: true }));
  await page.screenshot({ path: `${SHOTS}/phone.png` });

  // The long unbroken title wraps, in the list and on its page.
  await page.getByLabel("Search").fill("TheUnbrokenCorridor");
  await expect.poll(() => page.locator("tbody tr").count()).toBe(1);
  expect((await widths(page)).page).toBe(390);
  await page.locator("tbody tr", { hasText: "TheUnbrokenCorridor" }).getByRole("link").click();
  await page.getByRole("heading", { name: LONG_TITLE }).waitFor();
  expect((await widths(page)).page).toBe(390);

  // The failures view: each row's actions are on screen.
  await page.goto(`${server.url}/?as=admin#/audit`);
  const retryAll = page.getByRole("button", { name: "Retry all unauthorized jobs" });
  await retryAll.waitFor();
  expect((await widths(page)).page).toBe(390);
  for (const locator of [retryAll, page.locator('tr[data-code="unauthorized"]').getByRole("link", { name: "View jobs" })]) {
    const box = (await locator.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(390);
  }
  await page.screenshot({ path: `${SHOTS}/phone-audit.png` });
  expect(errors).toEqual([]);
  await close(page);
}, 60_000);

test("on a desktop the long title does not widen the table; cards, chart and times read in one format", async () => {
  const { page, errors } = await open("#/?q=TheUnbrokenCorridor", { colorScheme: "dark" });
  await page.locator("tbody tr").first().waitFor();
  const panel = (await page
    .locator("section.panel")
    .filter({ has: page.locator("table.jobs") })
    .boundingBox())!;
  const table = (await page.locator("table.jobs").boundingBox())!;
  expect(table.width).toBeLessThanOrEqual(panel.width);
  expect((await widths(page)).page).toBe(1280);
  // Errors and times are written out in the row, each time as date and 24-hour time.
  await page.goto(`${server.url}/?as=admin#/?code=unauthorized`);
  const row = page.locator("tbody tr").first();
  await row.waitFor();
  expect(await row.locator(".error-cell").textContent()).toMatch(/^unauthorized .*401/);
  const times = await page.locator("tbody time").allTextContents();
  expect(times.length).toBeGreaterThan(10);
  for (const time of times) expect(time).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);

  await page.goto(`${server.url}/?as=admin#/`);
  await page.locator("tbody tr").first().waitFor();
  await page.screenshot({ path: `${SHOTS}/operator-dashboard.png` }); // the viewport: the list is long
  expect(errors).toEqual([]);
  await close(page);
}, 60_000);

test("searching a patient number's digits finds it", async () => {
  const { page } = await open("#/");
  await page.getByLabel("Search").fill("0470");
  await expect.poll(() => page.locator("tbody tr").allTextContents(), { timeout: 10_000 }).toEqual([expect.stringContaining("P-0470")]);
  expect(page.url()).toContain("#/?q=0470");
  await close(page);
});

test("filters and search live in the address: Back restores them, a shared link opens the same view", async () => {
  const { page } = await open("#/");
  await page.locator("tbody tr").first().waitFor();
  await page.getByLabel("Status", { exact: true }).selectOption("failed");
  await page.getByLabel("Search").fill("Whisper12");
  await expect.poll(() => page.url()).toContain("#/?status=failed&q=Whisper12");
  const rows = page.locator("tbody tr");
  await expect.poll(() => rows.allTextContents()).toEqual([expect.stringContaining("The Ward of Whisper12")]);
  await rows.first().getByRole("link").click();
  await page.getByRole("heading", { name: "The Ward of Whisper12" }).waitFor();
  await page.goBack();
  await expect.poll(() => page.getByLabel("Search").inputValue()).toBe("Whisper12");
  expect(await page.getByLabel("Status", { exact: true }).inputValue()).toBe("failed");
  await expect.poll(() => rows.allTextContents()).toEqual([expect.stringContaining("The Ward of Whisper12")]);
  await page.goBack();
  await expect.poll(() => page.getByLabel("Status", { exact: true }).inputValue()).toBe("");
  expect(await page.getByLabel("Search").inputValue()).toBe("");

  // The same address in a new tab shows the same view.
  const shared = await open("#/?status=failed&q=Whisper12&sort=total&dir=asc");
  await expect.poll(() => shared.page.locator("tbody tr").allTextContents()).toEqual([expect.stringContaining("The Ward of Whisper12")]);
  expect(await shared.page.getByLabel("Status", { exact: true }).inputValue()).toBe("failed");
  expect(await shared.page.locator('th[aria-sort="ascending"]').textContent()).toContain("Total");
  await close(shared.page);
  await close(page);
}, 30_000);

test("a malformed link shows a not-found view and the console keeps working without a reload", async () => {
  const { page, errors } = await open("#/jobs/%E0%A4%A");
  await page.getByRole("heading", { name: "Nothing at this address" }).waitFor();
  await page.evaluate(() => ((window as unknown as { marker: number }).marker = 7));
  await page.getByRole("link", { name: "Go to all jobs" }).click();
  await page.locator("tbody tr").first().waitFor();
  expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(7);
  expect(errors).toEqual([]);
  await close(page);
});

test("a guest keeps the view when continuing as the admin; an anonymous visitor is asked to sign in; a refusal logs no error", async () => {
  const guest = await open("#/audit?range=7d", { as: "guest" });
  await guest.page.getByRole("heading", { name: "Restricted ward" }).waitFor();
  expect(await guest.page.locator(".forbidden").textContent()).toContain("your account is not on the staff list");
  await guest.page.getByRole("link", { name: "Continue as the demo admin" }).click();
  await guest.page.getByRole("heading", { name: "Activity & failures" }).waitFor();
  expect(guest.page.url()).toBe(`${server.url}/?as=admin#/audit?range=7d`);
  expect(await guest.page.getByRole("button", { name: "7d" }).getAttribute("aria-pressed")).toBe("true");
  expect(guest.consoleErrors).toEqual([]);
  await close(guest.page);

  const anon = await open("#/", { as: "anon" });
  await anon.page.getByRole("heading", { name: "Restricted ward" }).waitFor();
  const text = await anon.page.locator(".forbidden").textContent();
  expect(text).toContain("You are not signed in");
  expect(text).not.toContain("not on the staff list");
  expect(anon.consoleErrors).toEqual([]);
  await close(anon.page);
});

test("the favicon is served and linked", async () => {
  const { page, consoleErrors } = await open("#/");
  await page.locator("tbody tr").first().waitFor();
  const href = await page.locator('link[rel="icon"]').getAttribute("href");
  const response = await page.request.get(new URL(href!, server.url).href);
  expect(response.status()).toBe(200);
  expect(response.headers()["content-type"]).toBe("image/svg+xml");
  expect(await response.text()).toContain("<svg");
  expect(consoleErrors).toEqual([]);
  await close(page);
});

test("keyboard and screen reader: a skip link, focus on the new view's heading, a title per view", async () => {
  const { page } = await open("#/");
  await page.locator("tbody tr").first().waitFor();
  expect(await page.title()).toBe("Jobs · Case File Portraits admin");
  await page.keyboard.press("Tab");
  const skip = page.getByRole("link", { name: "Skip to content" });
  expect(await skip.evaluate((el) => el === document.activeElement)).toBe(true);
  expect((await skip.boundingBox())!.y).toBeGreaterThanOrEqual(0); // visible when focused
  await page.keyboard.press("Enter");
  expect(await page.evaluate(() => document.activeElement?.id)).toBe("view-title");
  expect(page.url()).toBe(`${server.url}/?as=admin#/`);

  await page.locator("tbody tr").first().getByRole("link").click();
  const heading = page.locator("h2#view-title");
  await heading.waitFor();
  const title = await heading.textContent();
  await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe("view-title");
  expect(await page.title()).toBe(`Job: ${title} · Case File Portraits admin`);
  await page.getByRole("link", { name: "Activity & failures" }).click();
  await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe("Activity & failures");
  expect(await page.title()).toBe("Activity & failures · Case File Portraits admin");
  await close(page);
});

test("light and dark themes follow the system", async () => {
  const luminance = async (colorScheme: "light" | "dark") => {
    const { page } = await open("#/", { colorScheme });
    await page.locator("tbody tr").first().waitFor();
    const [bg, text] = await page.evaluate(() => {
      const panel = getComputedStyle(document.querySelector(".panel")!);
      return [panel.backgroundColor, panel.color];
    });
    if (colorScheme === "light") await page.screenshot({ path: `${SHOTS}/light.png` });
    await close(page);
    const y = (rgb: string) => {
      const [r, g, b] = rgb.match(/\d+/g)!.map(Number);
      return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
    };
    return { bg: y(bg), text: y(text) };
  };
  const light = await luminance("light");
  const dark = await luminance("dark");
  expect(light.bg).toBeGreaterThan(200);
  expect(light.text).toBeLessThan(80);
  expect(dark.bg).toBeLessThan(60);
  expect(dark.text).toBeGreaterThan(180);
}, 30_000);

test("a job's raw JSON copies; a double-click on Retry job sends one retry", async () => {
  const jobId = await jobIdByTitle("The Ward of Whisper6 ");
  const { page, errors } = await open(`#/jobs/${jobId}`, { permissions: ["clipboard-read", "clipboard-write"], colorScheme: "dark" });
  await page.getByRole("heading", { name: "The Ward of Whisper6" }).waitFor();
  await page.getByText("Job JSON", { exact: true }).click();
  await page.getByRole("button", { name: "Copy Job JSON" }).click();
  await page.getByText("Copied.").waitFor();
  const copied = JSON.parse(await page.evaluate(() => navigator.clipboard.readText()));
  expect(copied).toMatchObject({ _id: jobId, status: "failed", attempt: 1, error: { code: "unauthorized" } });

  await page.getByRole("button", { name: "Retry job" }).dblclick();
  await expect.poll(() => page.getByTestId("retry-note").textContent()).toBe("Queued as a new attempt.");
  await settle(stack.t);
  const events = await stack.t.run((ctx) =>
    ctx.db
      .query("portraitJobEvents")
      .withIndex("by_job", (q) => q.eq("jobId", jobId))
      .collect(),
  );
  expect(events.filter((e) => e.from === "failed" && e.to === "pending")).toHaveLength(1);
  await expect.poll(() => page.locator(".job-head .badge").textContent(), { timeout: 15_000 }).toBe("stored");
  expect(await page.getByTestId("retry-note").textContent()).toBe("Queued as a new attempt.");
  await page.screenshot({ path: `${SHOTS}/operator-job.png`, fullPage: true });
  expect(errors).toEqual([]);
  await close(page);
}, 30_000);

test("the activity chart, the range picker, View jobs from the audit, and confirmation before a bulk retry", async () => {
  const { page, errors } = await open("#/audit", { colorScheme: "dark" });
  const summary = page.getByTestId("activity-summary");
  await expect.poll(() => summary.textContent()).toMatch(/Last 24 hours: \d+ stored, \d+ failed attempts/);
  const counts = await stack.admin.query(api.admin.statusCounts, {});
  expect(await summary.textContent()).toContain(`${counts.stored} stored`);
  await page.getByRole("button", { name: "30d" }).click();
  await expect.poll(() => summary.textContent()).toContain("Last 30 days");
  expect(page.url()).toContain("#/audit?range=30d");
  expect(await page.locator("[data-bucket]").count()).toBe(30);
  await page.screenshot({ path: `${SHOTS}/operator-audit.png`, fullPage: true });

  // View jobs lists the code's jobs whatever their status now.
  const row = page.locator('tr[data-code="bad_content_type"]');
  await row.getByRole("link", { name: "View jobs" }).click();
  const list = page.getByRole("list", { name: "Jobs that failed with bad_content_type" });
  await list.waitFor();
  expect(page.url()).toContain("code=bad_content_type");
  const failedWithCode = (await stack.t.run((ctx) => ctx.db.query("portraitJobs").collect())).filter(
    (j) => j.error?.code === "bad_content_type",
  ).length;
  expect(await list.locator("li .badge").count()).toBe(Math.min(10, failedWithCode));

  // A bulk retry asks first; nothing is queued until confirmed.
  const before = await stack.admin.query(api.admin.statusCounts, {});
  await row.getByRole("button", { name: "Retry all bad_content_type jobs" }).click();
  const dialog = page.getByRole("alertdialog");
  await dialog.waitFor();
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached" });
  expect(await stack.admin.query(api.admin.statusCounts, {})).toEqual(before);
  await row.getByRole("button", { name: "Retry all bad_content_type jobs" }).click();
  await dialog.getByRole("button", { name: /^Retry \d+ jobs?$/ }).click();
  await page.getByText(/Queued \d+ jobs?\./).waitFor();
  await expect.poll(() => page.getByTestId("still-failed-bad_content_type").textContent(), { timeout: 15_000 }).toBe("0");
  // Retried and stored since, still listed.
  await expect
    .poll(() => list.locator(".badge").allTextContents(), { timeout: 20_000 })
    .toEqual(Array(Math.min(10, failedWithCode)).fill("stored"));
  expect(errors).toEqual([]);
  await close(page);
}, 60_000);

test("offline: the bridge stops, the console says so and backs off; it starts again, the console recovers", async () => {
  const { page, errors, consoleErrors } = await open("#/");
  const indicator = page.getByTestId("connection");
  await expect.poll(() => indicator.getAttribute("data-state")).toBe("live");
  await page.locator("tbody tr").first().waitFor();
  const attempts: number[] = [];
  page.on("request", (request) => {
    if (request.url().endsWith("/bridge/changes")) attempts.push(Date.now());
  });
  // Every request that fails while the backend is down: the stream, the retries, the refused action, and
  // whatever else the console had in flight or started (a query, a lazily loaded thumbnail).
  const failedRequests: string[] = [];
  page.on("requestfailed", (request) => void failedRequests.push(request.url()));
  const port = Number(new URL(server.url).port);

  await server.close();
  const stoppedAt = Date.now();
  await expect.poll(() => indicator.getAttribute("data-state"), { timeout: 10_000 }).toBe("offline");
  const banner = page.getByTestId("offline-banner");
  expect(await banner.textContent()).toMatch(
    /The backend cannot be reached \(since \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\)\. What you see is from/,
  );
  expect(await page.locator("main").getAttribute("class")).toBe("stale");

  // An action says so in words, not "Failed to fetch".
  await page.getByRole("button", { name: "Generate story" }).click();
  await page.getByText("The backend cannot be reached. Try again when the console is back online.").waitFor();
  expect(await page.locator("body").textContent()).not.toContain("Failed to fetch");

  // Backoff, not hammering: attempts 1 s, 2 s, 4 s … apart, so the third comes at least 2 + 4 s after the first.
  await expect.poll(() => attempts.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
  expect(attempts[2]! - attempts[0]!).toBeGreaterThanOrEqual(6_000 - 50);
  const offlineFor = Date.now() - stoppedAt;
  // At most one console line (Chromium's own "Failed to load resource") per failed request, and nothing else.
  expect(consoleErrors.length).toBeLessThanOrEqual(failedRequests.length);
  expect(consoleErrors.every((line) => line.startsWith("Failed to load resource"))).toBe(true);
  expect(attempts.length).toBeLessThanOrEqual(Math.ceil(Math.log2(offlineFor / 1000 + 1)) + 1);
  expect(await indicator.textContent()).toMatch(/Offline · (retrying in \d+ s|reconnecting…)/);

  // A view opened while offline says what it waits for, instead of "Loading…" forever.
  const nightRounds = await jobIdByTitle("The Night Rounds ");
  await page.evaluate((id) => (window.location.hash = `#/jobs/${id}`), nightRounds);
  await expect
    .poll(() => page.getByTestId("loading").textContent())
    .toBe("Waiting for the backend (case file not loaded yet): it cannot be reached right now.");

  // Meanwhile the backend moves on; the bridge starts again on the same port.
  await stack.t.mutation(
    internal.stories.insertStory,
    caseFile({ title: "The Returning Nurse", slug: "returning-nurse", imageGenerationPrompt: "portrait of patient #50" }),
  );
  server = await serveAdmin(stack, { dist, port });
  await expect.poll(() => indicator.getAttribute("data-state"), { timeout: 40_000 }).toBe("live");
  await page.getByRole("heading", { name: "The Night Rounds" }).waitFor({ timeout: 15_000 });
  await page.goBack();
  await page.locator("tbody tr", { hasText: "The Returning Nurse" }).waitFor({ timeout: 15_000 });
  expect(await banner.count()).toBe(0);
  expect(await page.locator("main").getAttribute("class")).toBeNull();
  expect(errors).toEqual([]);
  await close(page);
}, 90_000);
