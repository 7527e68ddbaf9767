/**
 * The admin console end to end: Chromium (scripts/lib/browser.ts, through
 * playwright-core) against the demo stack (embedded backend, fake Claude and Recraft) served by
 * the local bridge. Screenshots go to out/screenshots/.
 */
import { mkdirSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { api } from "../../convex/_generated/api";
import { ADMIN_IDENTITY } from "../../scripts/lib/backend";
import { serveAdmin, type AdminServer } from "../../scripts/lib/bridge";
import { connectChromium } from "../../scripts/lib/browser";
import { startDemoStack, type DemoStack } from "../../scripts/lib/stack";

const SHOTS = "out/screenshots";

let stack: DemoStack | undefined;
let server: AdminServer | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  stack = await startDemoStack({ env: { ADMIN_EMAILS: ADMIN_IDENTITY.email, PORTRAIT_MAX_ATTEMPTS: "1" }, backendLog: () => {} });
  server = await serveAdmin(stack, { dist: inject("adminDist") });
  browser = await connectChromium(inject("chromiumEndpoint"));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await stack?.close();
});

const count = (page: Page, status: string) => page.getByTestId(`count-${status}`).locator(".count-n").textContent();

async function openAs(as: string, hash = "#/") {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(`${server!.url}/?as=${as}${hash}`);
  return { page, errors };
}

test("an admin generates a story and watches its portrait arrive; a failure is audited and retried", async () => {
  const { page, errors } = await openAs("admin");
  // Wait for the page's first answers (an event, not a time: a busy machine takes longer), then read them.
  await page.getByText("No jobs yet").waitFor();
  await page.getByTestId("count-stored").locator(".count-n").filter({ hasNotText: "…" }).waitFor();
  expect(await count(page, "stored")).toBe("0");
  // Set on this document: still there at the end means nothing reloaded the page.
  await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));

  // Generate from the keyboard: the job appears in the table, then its page follows it to `stored`.
  await page.getByLabel("Theme").fill("a drowned lighthouse keeper");
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => {
    const el = document.activeElement as HTMLElement;
    return { text: el.textContent, outline: getComputedStyle(el).outlineStyle };
  });
  expect(focused).toEqual({ text: "Generate story", outline: "solid" });
  await page.keyboard.press("Enter");
  const firstRow = page.locator("tbody tr").first();
  await firstRow.waitFor({ timeout: 10_000 });
  await firstRow.getByRole("link").click();
  const portrait = page.getByRole("img", { name: /^Portrait of / });
  await portrait.waitFor({ timeout: 15_000 });
  await expect.poll(() => portrait.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(256);
  expect(await page.locator(".job-head .badge").textContent()).toBe("stored");
  expect(await page.locator(".timeline tbody tr").allTextContents()).toHaveLength(4);
  expect(await page.locator(".chapters li").count()).toBe(8);
  expect(JSON.stringify(stack!.anthropic!.requests.at(-1)!.body)).toContain("a drowned lighthouse keeper");
  await page.screenshot({ path: `${SHOTS}/job.png`, fullPage: true });

  // The image server fails: the next job fails with its code.
  stack!.recraft!.setFault({ kind: "status", status: 401, body: "invalid api key" });
  await page.getByRole("link", { name: "Jobs", exact: true }).click();
  await page.getByRole("button", { name: "Generate story" }).click();
  await page.locator("tbody tr", { hasText: "unauthorized" }).waitFor({ timeout: 15_000 });
  await expect.poll(() => count(page, "failed")).toBe("1");
  expect(await count(page, "stored")).toBe("1");
  await page.screenshot({ path: `${SHOTS}/dashboard.png`, fullPage: true });

  // The audit view shows it; with the fault cleared, "retry all" stores it.
  await page.getByRole("link", { name: /failures/i }).click();
  const audit = page.locator('tr[data-code="unauthorized"]');
  await audit.waitFor();
  expect(await audit.locator("td").first().textContent()).toBe("1");
  expect(await page.getByTestId("still-failed-unauthorized").textContent()).toBe("1");
  expect(await audit.textContent()).toContain("401");
  expect(await page.locator('tr[data-step="request"] td').first().textContent()).toMatch(/\d/);
  await page.screenshot({ path: `${SHOTS}/audit.png`, fullPage: true });

  stack!.recraft!.setFault(undefined);
  await page.getByRole("button", { name: "Retry all unauthorized jobs" }).click();
  await page.getByRole("alertdialog").getByRole("button", { name: "Retry 1 job" }).click();
  await page.getByText("Queued 1 job.").waitFor();
  await expect.poll(() => page.getByTestId("still-failed-unauthorized").textContent(), { timeout: 15_000 }).toBe("0");
  await expect.poll(() => count(page, "stored"), { timeout: 15_000 }).toBe("2");
  expect(await count(page, "failed")).toBe("0");
  expect(await stack!.admin.query(api.admin.statusCounts, {})).toMatchObject({ stored: 2, failed: 0 });

  expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
  expect(errors).toEqual([]);
  await page.close();
}, 60_000);

test("a non-admin sees the forbidden page and no data", async () => {
  const titles = (await stack!.t.run((ctx) => ctx.db.query("stories").collect())).map((s) => s.title);
  expect(titles.length).toBeGreaterThan(0);
  for (const as of ["guest", "anon"]) {
    const { page } = await openAs(as, "#/audit");
    await page.getByRole("heading", { name: "Restricted ward" }).waitFor();
    const text = (await page.locator("body").textContent()) ?? "";
    for (const title of titles) expect(text).not.toContain(title);
    expect(text).not.toMatch(/unauthorized|stored|\b\d+ ?ms\b/);
    expect(await page.locator(".counts, table").count()).toBe(0);
    if (as === "guest") await page.screenshot({ path: `${SHOTS}/forbidden.png`, fullPage: true });
    await page.close();
  }
}, 30_000);
