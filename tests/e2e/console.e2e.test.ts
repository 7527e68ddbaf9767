/**
 * Console v3 (issue 16) in Chromium against the demo stack served by the
 * local bridge: the contrast of every text/background pair in both themes,
 * the phone and desktop layout bugs, and the operator features (queue
 * control, retry all matching, filters with counts, thumbnails) at both
 * widths and both themes. Screenshots go to out/screenshots/ (docs/OPERATIONS.md's
 * are copied from there into docs/: CONTRIBUTING.md, "Regenerating the screenshots").
 */
import { mkdirSync } from "node:fs";
import type { Browser, BrowserContextOptions, Page } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { api, internal } from "../../convex/_generated/api";
import { ADMIN_IDENTITY } from "../../scripts/lib/backend";
import { connectChromium } from "../../scripts/lib/browser";
import { serveAdmin, type AdminServer } from "../../scripts/lib/bridge";
import { startDemoStack, type DemoStack } from "../../scripts/lib/stack";
import { numberedCaseFile, settle } from "../harness";

const SHOTS = "out/screenshots";
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };
const THEMES = ["light", "dark"] as const;

let stack: DemoStack;
let server: AdminServer;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  stack = await startDemoStack({
    env: { ADMIN_EMAILS: ADMIN_IDENTITY.email, PORTRAIT_MAX_ATTEMPTS: "1" },
    recraft: { latencyMs: 0, downloadLatencyMs: 0 },
    backendLog: () => {},
  });
  // Every third job fails 401, a few 500 or a wrong content type; the rest are stored.
  stack.recraft!.setFault(({ prompt }) => {
    const i = Number(prompt.match(/#(\d+)/)?.[1] ?? -1);
    if (i % 3 === 0) return { kind: "status", status: 401, body: "invalid api key" };
    if (i % 10 === 1) return { kind: "imageContentType", contentType: "text/html" };
    if (i % 10 === 5) return { kind: "status", status: 500, body: "Internal Server Error" };
    return undefined;
  });
  for (let i = 0; i < 30; i++) await stack.t.mutation(internal.stories.insertStory, numberedCaseFile(i));
  await settle(stack.t, { timeoutMs: 60_000 });
  await stack.admin.mutation(api.admin.generateStory, { hint: "a drowned lighthouse keeper" });
  await settle(stack.t, { timeoutMs: 60_000 });
  stack.recraft!.setFault(undefined);
  server = await serveAdmin(stack, { dist: inject("adminDist") });
  browser = await connectChromium(inject("chromiumEndpoint"));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await stack?.close();
});

async function open(
  hash = "#/",
  { viewport = DESKTOP, ...context }: { viewport?: { width: number; height: number } } & BrowserContextOptions = {},
) {
  const ctx = await browser.newContext({ viewport, ...context });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(`${server.url}/?as=admin${hash}`);
  return { page, errors };
}
const close = (page: Page) => page.context().close();
const jobs = () => stack.t.run((ctx) => ctx.db.query("portraitJobs").collect());

type Pair = { text: string; where: string; color: string; background: string; ratio: number };

/**
 * Every visible text on the page (each element's own text, and input values)
 * with its color over its effective background: the element's and its
 * ancestors' background colors composited over the page's. Disabled controls
 * are exempt (WCAG 1.4.3), as is anything faded on purpose (offline).
 */
function textPairs(page: Page): Promise<Pair[]> {
  return page.evaluate(() => {
    type RGBA = { r: number; g: number; b: number; a: number };
    const parse = (css: string): RGBA => {
      const p = css
        .match(/rgba?\(([^)]+)\)/)![1]!
        .split(/[\s,/]+/)
        .filter(Boolean)
        .map(Number);
      return { r: p[0]!, g: p[1]!, b: p[2]!, a: p[3] ?? 1 };
    };
    const over = (top: RGBA, under: RGBA): RGBA => ({
      r: top.r * top.a + under.r * (1 - top.a),
      g: top.g * top.a + under.g * (1 - top.a),
      b: top.b * top.a + under.b * (1 - top.a),
      a: 1,
    });
    const luminance = ({ r, g, b }: RGBA) => {
      const c = [r, g, b].map((v) => (v / 255 <= 0.03928 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4));
      return 0.2126 * c[0]! + 0.7152 * c[1]! + 0.0722 * c[2]!;
    };
    const ratio = (a: RGBA, b: RGBA) => {
      const [x, y] = [luminance(a), luminance(b)].sort((m, n) => n - m);
      return (x! + 0.05) / (y! + 0.05);
    };
    const page = parse(getComputedStyle(document.documentElement).backgroundColor);
    const backgroundOf = (el: Element) => {
      const chain: Element[] = [];
      for (let e: Element | null = el; e; e = e.parentElement) chain.unshift(e);
      return chain.reduce((bg, e) => {
        const c = parse(getComputedStyle(e).backgroundColor);
        return c.a > 0 ? over(c, bg) : bg;
      }, page);
    };
    const rgb = (c: RGBA) => `rgb(${Math.round(c.r)}, ${Math.round(c.g)}, ${Math.round(c.b)})`;
    const pairs = [];
    for (const el of document.querySelectorAll("body *")) {
      if (el.closest("option, script, style, title, [disabled], .visually-hidden, svg")) continue;
      const own = [...el.childNodes]
        .filter((n) => n.nodeType === Node.TEXT_NODE)
        .map((n) => n.textContent!.trim())
        .join(" ")
        .trim();
      const text = own || (el instanceof HTMLInputElement && el.type !== "number" ? el.value : "");
      if (!text) continue;
      const box = el.getBoundingClientRect();
      if (box.width < 2 || box.height < 2 || getComputedStyle(el).visibility === "hidden") continue;
      let faded = false;
      for (let e: Element | null = el; e; e = e.parentElement) if (Number(getComputedStyle(e).opacity) < 1) faded = true;
      if (faded) continue;
      const background = backgroundOf(el);
      const color = over(parse(getComputedStyle(el).color), background);
      pairs.push({
        text: text.slice(0, 40),
        where: `${el.tagName.toLowerCase()}.${[...el.classList].join(".")}`,
        color: rgb(color),
        background: rgb(background),
        ratio: Math.round(ratio(color, background) * 100) / 100,
      });
    }
    return pairs;
  });
}

test("every text/background pair of both themes is at least 4.5:1, on every view (bug 1)", async () => {
  const all = await jobs();
  const failed = all.find((j) => j.status === "failed")!._id;
  const stored = all.find((j) => j.status === "stored")!._id;
  const run = (await stack.t.run((ctx) => ctx.db.query("storyRuns").collect()))[0]!._id;
  const views = ["#/", "#/?status=failed", `#/jobs/${failed}`, `#/jobs/${stored}`, "#/audit", "#/stories", `#/stories/${run}`];
  const low: (Pair & { theme: string; view: string })[] = [];
  let checked = 0;
  for (const theme of THEMES) {
    const { page, errors } = await open("#/", { colorScheme: theme });
    for (const view of views) {
      await page.evaluate((hash) => (window.location.hash = hash), view);
      await page.locator("#view-title").first().waitFor();
      await expect.poll(() => page.locator('[data-testid="loading"]').count()).toBe(0); // a view may load several parts at once
      if (view === "#/?status=failed") {
        await page.locator("tbody tr").first().waitFor();
        await page.getByRole("button", { name: "Retry all matching" }).click();
        await page
          .getByRole("alertdialog")
          .getByRole("button", { name: /^Retry \d+ jobs$/ })
          .waitFor();
      }
      if (view === "#/audit") await page.locator("tr[data-code]").first().waitFor();
      const pairs = await textPairs(page);
      checked += pairs.length;
      // Status badges are the pair bug 1 was about: they must be on screen here.
      if (view === "#/") expect(pairs.filter((p) => p.where.startsWith("span.badge")).length).toBeGreaterThan(5);
      low.push(...pairs.filter((p) => p.ratio < 4.5).map((p) => ({ ...p, theme, view })));
    }
    expect(errors).toEqual([]);
    await close(page);
  }
  expect(checked).toBeGreaterThan(500);
  expect(low).toEqual([]);
}, 90_000);

test("on a phone a job card is short and the list starts high; a failed job's page leads with its story, not an empty box (bug 8)", async () => {
  const { page, errors } = await open("#/", { viewport: PHONE, colorScheme: "light" });
  await expect.poll(() => page.locator("tbody tr").count()).toBe(20);
  await page.screenshot({ path: `${SHOTS}/console-phone.png` });
  const cards = await page
    .locator("tbody tr")
    .evaluateAll((rows) => rows.map((r) => r.getBoundingClientRect()).map((b) => ({ top: b.top + window.scrollY, height: b.height })));
  expect(cards[0]!.top).toBeLessThan(560);
  for (const card of cards) expect(card.height).toBeLessThan(170);
  expect(cards[19]!.top + cards[19]!.height - cards[0]!.top).toBeLessThan(20 * 170);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBe(390);

  const failed = (await jobs()).find((j) => j.status === "failed")!._id;
  await page.evaluate((id) => (window.location.hash = `#/jobs/${id}`), failed);
  const empty = page.locator(".portrait-empty");
  await empty.waitFor();
  expect((await empty.boundingBox())!.height).toBeLessThan(60);
  const intro = (await page.locator(".story .intro").boundingBox())!;
  expect(intro.y).toBeLessThan(PHONE.height);
  expect(errors).toEqual([]);
  await close(page);
}, 60_000);

test("at 1280 the story runs' Attempt header lines up with its numbers; a view's heading takes focus without a ring (bug 8)", async () => {
  const { page, errors } = await open("#/stories", { colorScheme: "dark" });
  await page.locator("tbody tr").first().waitFor();
  const header = page.locator("table.runs th", { hasText: "Attempt" });
  const cell = page.locator('table.runs td[data-label="Attempt"]').first();
  const [th, td] = await Promise.all(
    [header, cell].map((l) =>
      l.evaluate((el) => ({
        align: getComputedStyle(el).textAlign,
        right: el.getBoundingClientRect().right - parseFloat(getComputedStyle(el).paddingRight),
      })),
    ),
  );
  expect(th!.align).toBe("right");
  expect(Math.abs(th!.right - td!.right)).toBeLessThan(1);
  // The theme of a written run stays (bug 4).
  expect(await page.locator("tbody tr", { hasText: "theme: a drowned lighthouse keeper" }).count()).toBe(1);

  // By mouse and by keyboard: the heading takes focus (for screen readers) and draws no ring.
  await page.getByRole("link", { name: "Activity & failures" }).click();
  await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe("view-title");
  expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).toBe("none");
  await page.getByRole("link", { name: "Jobs", exact: true }).focus();
  await page.keyboard.press("Enter");
  await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe("Portrait jobs");
  expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).toBe("none");
  expect(errors).toEqual([]);
  await close(page);
}, 30_000);

for (const [theme, viewport, name] of [
  ["light", DESKTOP, "desktop"],
  ["dark", PHONE, "phone"],
] as const) {
  test(`a story run's page opens from the list and shows Claude's answers (${name}, ${theme})`, async () => {
    const { page, errors } = await open("#/stories", { viewport, colorScheme: theme });
    const row = page.locator("tbody tr", { hasText: "a drowned lighthouse keeper" });
    await row.getByRole("link", { name: /^Story run / }).click();
    await page.getByTestId("run-theme").waitFor();
    expect(await page.getByTestId("run-theme").textContent()).toBe("a drowned lighthouse keeper");
    const inserted = page.locator('tr[data-to="inserted"]');
    expect(await inserted.locator('td[data-label="Stop reason"]').textContent()).toBe("end_turn");
    expect(await inserted.locator('td[data-label="Model"]').textContent()).toMatch(/^claude-/);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBe(viewport.width);
    await page.screenshot({ path: `${SHOTS}/console-story-run-${name}.png`, fullPage: name === "desktop" });
    expect(errors).toEqual([]);
    await close(page);
  }, 30_000);
}

for (const [theme, viewport, name] of [
  ["dark", DESKTOP, "desktop"],
  ["light", PHONE, "phone"],
] as const) {
  test(`an operator pauses the queue, caps it, resumes it; filters by HTTP status and retries all matching (${name}, ${theme})`, async () => {
    const { page, errors } = await open("#/", { viewport, colorScheme: theme });
    await page.locator("tbody tr").first().waitFor();
    // Thumbnails of the stored portraits, served.
    const thumb = page.locator("tbody img.thumb").first();
    await thumb.waitFor();
    expect(await thumb.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);

    await page.getByRole("button", { name: "Pause queue" }).click();
    await expect.poll(() => page.getByTestId("queue-state").textContent()).toContain("Paused");
    await page.getByLabel("Max in flight").fill("2");
    await page.getByRole("button", { name: "Set", exact: true }).click();
    await expect.poll(() => page.getByTestId("queue-state").textContent()).toContain("at most 2 in flight");
    await page.screenshot({ path: `${SHOTS}/console-queue-${name}.png` });

    // Retry all 401s while paused: they wait as pending, then resume runs them at most 2 at a time.
    await page.getByLabel("HTTP status").selectOption("401");
    await expect.poll(() => page.url()).toContain("http=401");
    const expected = (await jobs()).filter((j) => j.status === "failed" && j.error?.httpStatus === 401).length;
    expect(expected).toBeGreaterThan(0);
    expect(await page.getByLabel("HTTP status").locator("option:checked").textContent()).toBe(`401 (${expected})`);
    await page.getByRole("button", { name: "Retry all matching" }).click();
    const confirm = page.getByRole("alertdialog").getByRole("button", { name: `Retry ${expected} job${expected === 1 ? "" : "s"}` });
    await confirm.waitFor();
    await page.screenshot({ path: `${SHOTS}/console-retry-${name}.png` });
    await confirm.click();
    await page.getByText(`Queued ${expected} job${expected === 1 ? "" : "s"}.`).waitFor();
    await settle(stack.t);
    expect((await jobs()).filter((j) => j.status === "pending").length).toBe(expected);

    await page.getByRole("button", { name: "Resume queue" }).click();
    await expect.poll(() => page.getByTestId("queue-state").textContent()).toContain("Running");
    let most = 0;
    for (let i = 0; i < 200; i++) {
      const now = await jobs();
      most = Math.max(most, now.filter((j) => j.slot.kind === "held").length);
      if (now.every((j) => j.status === "stored" || j.status === "failed")) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await settle(stack.t);
    expect(most).toBeLessThanOrEqual(2);
    expect((await jobs()).filter((j) => j.error?.httpStatus === 401 && j.status === "failed")).toEqual([]);
    // Back to no ceiling for the next run of this test.
    await page.getByLabel("Max in flight").fill("");
    await page.getByRole("button", { name: "Set", exact: true }).click();
    await expect.poll(() => page.getByTestId("queue-state").textContent()).toContain("in flight (configured)");
    expect(errors).toEqual([]);
    await close(page);
    // Fail a few again with 401 for the other width's run.
    stack.recraft!.setFault({ kind: "status", status: 401, body: "invalid api key" });
    for (let i = 0; i < 3; i++)
      await stack.t.mutation(internal.stories.insertStory, numberedCaseFile(100 + i + (name === "desktop" ? 0 : 10)));
    await settle(stack.t);
    stack.recraft!.setFault(undefined);
  }, 90_000);
}

for (const [theme, viewport, name] of [
  ["dark", DESKTOP, "desktop"],
  ["light", PHONE, "phone"],
] as const) {
  test(`an operator discards a failed job and cancels a waiting one; the audit shows the queue per hour (${name}, ${theme})`, async () => {
    await stack.t.mutation(internal.queueMetrics.snapshot, {});
    const failed = (await jobs()).find((j) => j.status === "failed")!._id;
    const { page, errors } = await open(`#/jobs/${failed}`, { viewport, colorScheme: theme });
    await page.getByRole("button", { name: "Discard" }).click();
    await expect.poll(() => page.locator(".job-head .badge").textContent()).toBe("cancelled");
    await expect.poll(() => page.getByTestId("cancel-note").textContent()).toMatch(/^Discarded/);
    // The job's page keeps its failure in the timeline.
    expect(await page.locator("table.timeline tbody tr").last().textContent()).toContain("cancelled");
    expect(await page.locator("table.timeline .row-failed").count()).toBeGreaterThan(0);

    await stack.admin.mutation(api.admin.setQueuePaused, { paused: true });
    const storyId = await stack.t.mutation(internal.stories.insertStory, numberedCaseFile(200 + (name === "desktop" ? 0 : 1)));
    const waiting = (await jobs()).find((j) => j.storyId === storyId)!._id;
    await page.evaluate((id) => (window.location.hash = `#/jobs/${id}`), waiting);
    await page.getByRole("button", { name: "Cancel job" }).click();
    await expect.poll(() => page.locator(".job-head .badge").textContent()).toBe("cancelled");
    await stack.admin.mutation(api.admin.setQueuePaused, { paused: false });
    await page.screenshot({ path: `${SHOTS}/console-cancelled-${name}.png` });

    await page.evaluate(() => (window.location.hash = "#/audit"));
    const hour = page.locator("table.metrics tbody tr").first();
    await hour.waitFor();
    expect(await hour.locator('td[data-label="Attempts"]').textContent()).toMatch(/^\d+\+?$/);
    expect(await hour.locator('td[data-label="p95"]').textContent()).toMatch(/^\d+(\.\d)? (ms|s)$/);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBe(viewport.width);
    await page.locator("table.metrics").scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${SHOTS}/console-metrics-${name}.png` });
    expect(errors).toEqual([]);
    await close(page);
  }, 60_000);
}
