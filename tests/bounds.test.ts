/**
 * Every transaction bounded (issue 15): each function's largest transaction,
 * measured by convex-test's own meter, against the bound docs/ARCHITECTURE.md
 * states; and the case that used to break it, a sweep after a large backfill.
 * The bench runs the first at 10,000 queued and 100,000 stored jobs
 * (`npm run bench -- --only largest`).
 */
import { afterEach, describe, expect, test } from "vitest";
import { api, internal } from "../convex/_generated/api";
import { FOLD_BATCH, MAX_UNFOLDED_READ } from "../convex/lib/counts";
import { documentedBounds, meteredTransactions, queueAtScale, type TransactionSize } from "../scripts/lib/transactions";
import { modules, settle, startStack, type Stack } from "./harness";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("every transaction bounded", () => {
  test("each function's largest transaction stays within the bound docs/ARCHITECTURE.md states, its heaviest case reached", async () => {
    const largest = await queueAtScale({
      stored: 300,
      queued: MAX_UNFOLDED_READ + 500,
      stalled: 120,
      stalledDownloaded: 4,
      files: 2_100,
      wakes: 600,
      releases: 600,
      failed: 250,
      legacyStories: 250,
    });
    const bounds = documentedBounds();
    expect(bounds.length).toBeGreaterThanOrEqual(30);
    const over: string[] = [];
    for (const bound of bounds) {
      const measured = largest.get(bound.fn);
      expect(measured, `${bound.fn} was not run`).toBeDefined();
      if (measured!.reads > bound.reads || measured!.writes > bound.writes)
        over.push(`${bound.fn}: read ${measured!.reads} (bound ${bound.reads}), wrote ${measured!.writes} (bound ${bound.writes})`);
    }
    expect(over).toEqual([]);
    // The heaviest cases were reached, so the bounds were tested where they bind.
    const size = (fn: string) => largest.get(fn) as TransactionSize;
    expect(size("admin.statusCounts").reads).toBe(MAX_UNFOLDED_READ + 2); // the totals and 4,001 rows: capped, approximate
    expect(size("portraits.dispatchQueue").writes).toBeGreaterThanOrEqual(512 + 512 + FOLD_BATCH + 64); // every batch full
    expect(size("portraits.dispatchQueue").scheduled).toBe(65);
    expect(size("portraits.sweep").reads).toBeGreaterThan(2 * 2_000); // two orphan checks of 2,000 files each
    expect(size("portraits.foldCountRows").writes).toBe(FOLD_BATCH + 1);
    expect(size("portraits.retryFailedByCode").writes).toBeGreaterThanOrEqual(400);
    expect(size("bulkRetries.continueRetry").writes).toBeGreaterThanOrEqual(400);
    expect(size("portraits.backfillBatch").writes).toBeGreaterThanOrEqual(300);
  }, 360_000);
});

describe("a sweep after a 20,000-job backfill", () => {
  test("succeeds within Convex's limits; statusCounts answers throughout and is exact again once the rows are folded", async () => {
    const meter = meteredTransactions(modules);
    stack = await startStack({ modules: meter.modules, transactionLimits: true, env: { ADMIN_SUBJECTS: "bounds-admin" } });
    const { t } = stack;
    const admin = t.withIdentity({ subject: "bounds-admin" });
    const jobs = 20_000;
    // What a 20,000-job backfill leaves for the counts (lib/backfill.ts, createJob): each new job's own count row,
    // none folded yet. (Its jobs and events are left out: no function here reads them, and convex-test walks a
    // whole table for every index read.) The queue is paused, so the counts hold still while the rows are folded.
    await t.run((ctx) => ctx.db.insert("queueControl", { paused: true, updatedAt: Date.now(), updatedBy: "test" }));
    for (let done = 0; done < jobs; done += 10_000) {
      await t.run(async (ctx) => {
        const now = Date.now();
        for (let i = done; i < done + 10_000; i++)
          await ctx.db.insert("countDeltas", { kind: "portrait", key: `backfilled-job-${i}`, deltas: { pending: 1 }, updatedAt: now });
      });
    }
    const answers = [await admin.query(api.admin.statusCounts, {})];
    expect(answers[0]).toMatchObject({ pending: MAX_UNFOLDED_READ, approximate: true });

    // The sweep folds one batch and hands the rest to foldCountRows; a second sweep runs while they fold.
    expect(await t.mutation(internal.portraits.sweep, {})).toBe(0);
    for (let i = 0; i < 200 && !answers.some((a) => !a.approximate); i++) {
      answers.push(await admin.query(api.admin.statusCounts, {}));
      if (i === 3) expect(await t.mutation(internal.portraits.sweep, {})).toBe(0);
      await sleep(20);
    }
    await settle(t, { timeoutMs: 60_000 });
    answers.push(await admin.query(api.admin.statusCounts, {}));

    // Every answer: approximate (the totals plus the oldest 4,000 rows) or exact; exact only when it is right.
    for (const answer of answers) {
      if (answer.approximate) expect(answer.pending).toBeGreaterThanOrEqual(MAX_UNFOLDED_READ);
      else expect(answer).toEqual({ pending: jobs, requested: 0, downloaded: 0, stored: 0, failed: 0, cancelled: 0 });
      expect(answer.pending).toBeLessThanOrEqual(jobs);
    }
    expect(answers.filter((a) => a.approximate).length).toBeGreaterThan(1); // it answered while the rows were folding
    expect(answers.at(-1)).toEqual({ pending: jobs, requested: 0, downloaded: 0, stored: 0, failed: 0, cancelled: 0 });
    expect(await t.run(async (ctx) => (await ctx.db.query("countDeltas").take(1)).length)).toBe(0);

    // Within the limits (enforced above: a function past one would have thrown) and within the stated bounds.
    const bound = (fn: string) => documentedBounds().find((b) => b.fn === fn)!;
    for (const fn of ["portraits.sweep", "portraits.foldCountRows", "admin.statusCounts"]) {
      const measured = meter.largest.get(fn)!;
      expect(measured.reads, fn).toBeLessThanOrEqual(bound(fn).reads);
      expect(measured.writes, fn).toBeLessThanOrEqual(bound(fn).writes);
    }
    expect(meter.largest.get("portraits.sweep")!.calls).toBe(2);
    expect(meter.largest.get("portraits.foldCountRows")!.calls).toBeGreaterThanOrEqual(Math.floor(jobs / FOLD_BATCH) - 4); // the sweeps and the loop fold a few batches too
  }, 240_000);
});
