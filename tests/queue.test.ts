/**
 * The queue under arbitrary histories (fast-check) and under a burst.
 */
import fc from "fast-check";
import { afterEach, describe, expect, test, vi } from "vitest";
import { internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import type { Fault } from "../scripts/fakes/recraftServer";
import { caseFile, settle, startStack, type Stack } from "./harness";
import { snapshot, violations } from "./invariants";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
  vi.restoreAllMocks();
});

const transientFaults: Fault[] = [
  { kind: "status", status: 500, body: "Internal Server Error" },
  { kind: "status", status: 503, json: { message: "maintenance" } },
  { kind: "status", status: 429, body: "", headers: { "retry-after": "0" } },
  { kind: "reset" },
  { kind: "imageReset" },
  { kind: "imageStatus", status: 502 },
];
const permanentFaults: Fault[] = [
  { kind: "status", status: 401, body: "no" },
  { kind: "status", status: 400, json: { message: "bad prompt" } },
  { kind: "imageUrl", url: "https://evil.example/x.png" },
  { kind: "imageContentType", contentType: "text/html" },
  { kind: "emptyData" },
];

type Op =
  | { op: "insert"; faults: number[] } // indexes into the fault list, one per attempt
  | { op: "sweep" }
  | { op: "kill"; pick: number } // the backend marks an in-flight action failed
  | { op: "retryJob"; pick: number }
  | { op: "retryCode"; code: "http_error" | "unauthorized" | "network_error" | "rate_limited" }
  | { op: "delete"; pick: number }
  | { op: "legacyInsert" } // a game story with the game's own portrait and no job
  | { op: "regenerate"; pick: number }
  | { op: "backfill" }
  | { op: "wait"; ms: number };

function ops(faultCount: number, maxFaultsPerStory: number) {
  return fc.array(
    fc.oneof(
      { weight: 4, arbitrary: fc.record({ op: fc.constant("insert" as const), faults: fc.array(fc.nat(faultCount - 1), { maxLength: maxFaultsPerStory }) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("sweep" as const) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("kill" as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("retryJob" as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constantFrom("retryCode" as const), code: fc.constantFrom("http_error" as const, "unauthorized" as const, "network_error" as const, "rate_limited" as const) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("legacyInsert" as const) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("regenerate" as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("backfill" as const) }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 40 }) }) },
    ),
    { minLength: 1, maxLength: 14 },
  );
}

/** Plays a history against a fresh stack; each story's prompt says which fault each of its attempts meets. */
async function play(history: Op[], faults: Fault[], maxAttempts: number) {
  stack = await startStack({ env: { PORTRAIT_MAX_ATTEMPTS: String(maxAttempts), PORTRAIT_MAX_CONCURRENCY: "3" } });
  const { t, recraft } = stack;
  const plans = new Map<string, number[]>();
  const attemptsSeen = new Map<string, number>();
  recraft.setFault(({ prompt }) => {
    const n = attemptsSeen.get(prompt) ?? 0;
    attemptsSeen.set(prompt, n + 1);
    const plan = plans.get(prompt) ?? [];
    return n < plan.length ? faults[plan[n]] : undefined;
  });
  const dead = await t.run((ctx) => ctx.scheduler.runAfter(0, internal.stories.insertStory, caseFile({ title: "" })));
  const storyIds: Id<"stories">[] = [];
  const jobIds = async () => (await snapshot(t)).jobs.map((j) => j._id);

  for (const [i, step] of history.entries()) {
    switch (step.op) {
      case "insert": {
        const prompt = `patient ${i}`;
        plans.set(prompt, step.faults);
        storyIds.push(await t.mutation(internal.stories.insertStory, caseFile({ slug: `s${i}`, imageGenerationPrompt: prompt })));
        break;
      }
      case "sweep":
        await t.mutation(internal.portraits.sweep, {});
        break;
      case "kill": {
        const live = (await snapshot(t)).jobs.filter((j) => j.holdsSlot);
        if (live.length) await t.run((ctx) => ctx.db.patch(live[step.pick % live.length]._id, { scheduledFunctionId: dead }));
        break;
      }
      case "retryJob": {
        const ids = await jobIds();
        if (ids.length) await t.mutation(internal.portraits.retryJob, { jobId: ids[step.pick % ids.length] });
        break;
      }
      case "retryCode":
        await t.mutation(internal.portraits.retryFailedByCode, { code: step.code });
        break;
      case "delete":
        if (storyIds.length) await t.mutation(internal.stories.deleteStory, { storyId: storyIds[step.pick % storyIds.length] });
        break;
      case "legacyInsert": {
        const prompt = `patient ${i}`;
        const { title, slug, introduction, chapters, patientName, patientNumber, story } = caseFile({ slug: `s${i}` });
        storyIds.push(
          await t.run(async (ctx) => {
            const storageId = await ctx.storage.store(new Blob([`the game's own portrait ${i}`], { type: "image/png" }));
            return ctx.db.insert("stories", { title, slug, introduction, chapters, patientName, patientNumber, story, imageGenerationPrompt: prompt, createdAt: Date.now(), storageId });
          }),
        );
        break;
      }
      case "regenerate":
        if (storyIds.length) await t.mutation(internal.portraits.regenerate, { storyId: storyIds[step.pick % storyIds.length] });
        break;
      case "backfill":
        await t.mutation(internal.portraits.backfill, {});
        break;
      case "wait":
        await new Promise((resolve) => setTimeout(resolve, step.ms));
        break;
    }
    // Invariants that hold at every instant, not only at rest.
    expect(await violations(t, { settled: false })).toEqual([]);
  }
  // A killed action is only noticed by a sweep (the cron's job); then everything settles.
  await settle(t);
  await t.mutation(internal.portraits.sweep, {});
  await settle(t);
  expect(await violations(t)).toEqual([]);
  return snapshot(t);
}

describe("any history of inserts, faults, kills, sweeps, retries, deletions, regenerations and backfills", () => {
  test("keeps every invariant", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    vi.spyOn(console, "warn").mockImplementation(() => {});
    vi.spyOn(console, "error").mockImplementation(() => {});
    const faults = [...transientFaults, ...permanentFaults];
    await fc.assert(
      fc.asyncProperty(ops(faults.length, 3), fc.integer({ min: 1, max: 3 }), async (history, maxAttempts) => {
        await play(history, faults, maxAttempts);
        await stack!.close();
        stack = undefined;
      }),
      { numRuns: 20 },
    );
  }, 120_000);

  test("with retries enabled and only transient faults, every surviving story ends stored", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    vi.spyOn(console, "warn").mockImplementation(() => {});
    vi.spyOn(console, "error").mockImplementation(() => {});
    await fc.assert(
      fc.asyncProperty(ops(transientFaults.length, 2), async (history) => {
        // Enough attempts for two faults per story plus every possible kill.
        const { stories, jobs } = await play(history, transientFaults, 2 + history.length + 1);
        for (const story of stories) {
          const job = jobs.find((j) => j.storyId === story._id);
          // A story with the game's own portrait has no job until it is regenerated.
          if (job || story.storageId === undefined) expect(job).toMatchObject({ status: "stored" });
        }
        await stack!.close();
        stack = undefined;
      }),
      { numRuns: 20 },
    );
  }, 120_000);
});

describe("a burst", () => {
  test("200 stories at once against 50 ms latency: the cap holds, nothing is lost, everything is stored", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    // The concurrency cap is under test here (the harness's rate limits are generous); pacing is tested on its own.
    stack = await startStack({ recraft: { latencyMs: 50 }, env: { PORTRAIT_MAX_CONCURRENCY: "4" } });
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        stack!.t.mutation(internal.stories.insertStory, caseFile({ slug: `burst-${i}`, imageGenerationPrompt: `burst patient ${i}` })),
      ),
    );
    await settle(stack.t, { timeoutMs: 60_000 });
    expect(stack.recraft.maxInFlight).toBeLessThanOrEqual(4);
    expect(stack.recraft.maxInFlight).toBeGreaterThan(1);
    expect(stack.recraft.requests).toHaveLength(200);
    const { jobs, files } = await snapshot(stack.t);
    expect(jobs.filter((j) => j.status === "stored")).toHaveLength(200);
    expect(files).toHaveLength(200);
    expect(await violations(stack.t)).toEqual([]);
  }, 90_000);
});
