/**
 * The queue under arbitrary histories (fast-check), under a burst and under a
 * lagging scheduler; the dispatcher loop's and the claim's rules one by one.
 */
import fc from "fast-check";
import { afterEach, describe, expect, test, vi } from "vitest";
import { internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { FOLD_BATCH, MAX_UNFOLDED_READ } from "../convex/lib/counts";
import { createJob, readCounts } from "../convex/lib/jobs";
import type { Fault } from "../scripts/fakes/recraftServer";
import { lagScheduler, randomLag } from "../scripts/lib/lag";
import { overLimit } from "../scripts/lib/stats";
import { captureLogs, caseFile, editSlot, gameStoryDocument, jobOf, pathOf, settle, slotPathOf, startStack, type Stack } from "./harness";
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
      {
        weight: 4,
        arbitrary: fc.record({
          op: fc.constant("insert" as const),
          faults: fc.array(fc.nat(faultCount - 1), { maxLength: maxFaultsPerStory }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("sweep" as const) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("kill" as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("retryJob" as const), pick: fc.nat() }) },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constantFrom("retryCode" as const),
          code: fc.constantFrom("http_error" as const, "unauthorized" as const, "network_error" as const, "rate_limited" as const),
        }),
      },
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
    return n < plan.length ? faults[plan[n]!] : undefined;
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
        const live = (await snapshot(t)).jobs.filter((j) => j.slot.kind === "held");
        if (live.length) await editSlot(t, live[step.pick % live.length]!._id, { scheduledFunctionId: dead });
        break;
      }
      case "retryJob": {
        const ids = await jobIds();
        if (ids.length) await t.mutation(internal.portraits.retryJob, { jobId: ids[step.pick % ids.length]! });
        break;
      }
      case "retryCode":
        await t.mutation(internal.portraits.retryFailedByCode, { code: step.code });
        break;
      case "delete":
        if (storyIds.length) await t.mutation(internal.stories.deleteStory, { storyId: storyIds[step.pick % storyIds.length]! });
        break;
      case "legacyInsert": {
        const prompt = `patient ${i}`;
        const file = caseFile({ slug: `s${i}`, imageGenerationPrompt: prompt });
        storyIds.push(
          await t.run(async (ctx) => {
            const storageId = await ctx.storage.store(new Blob([`the game's own portrait ${i}`], { type: "image/png" }));
            return ctx.db.insert("stories", { ...gameStoryDocument(file, Date.now()), storageId });
          }),
        );
        break;
      }
      case "regenerate":
        if (storyIds.length) await t.mutation(internal.portraits.regenerate, { storyId: storyIds[step.pick % storyIds.length]! });
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
  test("100 stories at once against 50 ms latency: the cap holds, nothing is lost, everything is stored", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    // The concurrency cap is under test here (the harness's rate limits are generous); pacing is tested on its own.
    stack = await startStack({ recraft: { latencyMs: 50 }, env: { PORTRAIT_MAX_CONCURRENCY: "4" } });
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        stack!.t.mutation(internal.stories.insertStory, caseFile({ slug: `burst-${i}`, imageGenerationPrompt: `burst patient ${i}` })),
      ),
    );
    await settle(stack.t, { timeoutMs: 60_000 });
    expect(stack.recraft.maxInFlight).toBeLessThanOrEqual(4);
    expect(stack.recraft.maxInFlight).toBeGreaterThan(1);
    expect(stack.recraft.requests).toHaveLength(100);
    const { jobs, files } = await snapshot(stack.t);
    expect(jobs.filter((j) => j.status === "stored")).toHaveLength(100);
    expect(files).toHaveLength(100);
    expect(await violations(stack.t)).toEqual([]);
  }, 90_000);
});

/** The backend's warnings in this test (and nothing else printed). */
const quiet = () => captureLogs("WARN");

/** Stories and their pending jobs, written without kicking the loop, so a test runs the loop itself. */
async function queueJobs(t: Stack["t"], n: number) {
  return t.run(async (ctx) => {
    const ids: Id<"portraitJobs">[] = [];
    for (let i = 0; i < n; i++) {
      const file = caseFile({ slug: `q${i}`, imageGenerationPrompt: `queued patient ${i}` });
      const storyId = await ctx.db.insert("stories", gameStoryDocument(file, Date.now()));
      ids.push(await createJob(ctx, (await ctx.db.get(storyId))!));
    }
    return ids;
  });
}

const pendingLoopRuns = (t: Stack["t"]) =>
  t.run(
    async (ctx) =>
      (await ctx.db.system.query("_scheduled_functions").collect()).filter(
        (fn) => fn.name.includes("dispatchQueue") && fn.state.kind === "pending",
      ).length,
  );

describe("the dispatcher loop", () => {
  test("a run whose timer fired before its bucket's time still takes the jobs due by then (no job left without a wakeup)", async () => {
    quiet();
    stack = await startStack({ env: { RECRAFT_API_KEY: undefined } });
    const jobId = (await queueJobs(stack.t, 1))[0]!;
    const bucketAt = Date.now() + 2_000;
    // The job is due inside the bucket: after the moment the timer fired, by the bucket's time.
    await stack.t.run((ctx) => ctx.db.patch(jobId, { runAt: bucketAt - 50 }));
    await stack.t.run((ctx) => ctx.db.insert("portraitWakes", { at: bucketAt }));
    expect(await stack.t.mutation(internal.portraits.dispatchQueue, { at: bucketAt })).toBe(1);
    const job = (await stack.t.run((ctx) => ctx.db.get(jobId)))!;
    expect(job.slot.kind).toBe("held");
    expect(job.slot.kind === "held" && job.slot.plannedAt).toBeGreaterThanOrEqual(bucketAt - 50); // never before the job's own runAt
    await settle(stack.t);
  });

  test("a full batch carries on in another run instead of growing the transaction", async () => {
    quiet();
    stack = await startStack({ env: { RECRAFT_API_KEY: undefined, PORTRAIT_MAX_CONCURRENCY: "200" } });
    await queueJobs(stack.t, 70);
    expect(await pendingLoopRuns(stack.t)).toBe(0);
    expect(await stack.t.mutation(internal.portraits.dispatchQueue, {})).toBe(64);
    expect(await pendingLoopRuns(stack.t)).toBe(1);
    await settle(stack.t);
    const { jobs } = await snapshot(stack.t);
    expect(jobs.filter((j) => j.error?.code === "missing_api_key")).toHaveLength(70);
  });

  test("a 429's pause holds back the slots given after it, until its Retry-After", async () => {
    quiet();
    // One job at a time, so every other job gets its slot after the 429.
    stack = await startStack({ env: { PORTRAIT_MAX_ATTEMPTS: "2", PORTRAIT_MAX_CONCURRENCY: "1" } });
    let first = true;
    stack.recraft.setFault(() => {
      if (!first) return undefined;
      first = false;
      return { kind: "status", status: 429, body: "slow down", headers: { "retry-after": "0.6" } };
    });
    const ids = await Promise.all(
      [0, 1, 2].map((i) =>
        stack!.t.mutation(internal.stories.insertStory, caseFile({ slug: `p${i}`, imageGenerationPrompt: `paused ${i}` })),
      ),
    );
    await settle(stack.t);
    const limited = stack.recraft.requests.find((r) => r.status === 429)!;
    expect(limited).toBeDefined();
    const after = stack.recraft.requests.filter((r) => r.at > limited.at);
    expect(after.length).toBeGreaterThanOrEqual(3);
    // Every request after the 429 (the retry and the jobs slotted since) waited out its Retry-After.
    for (const request of after) expect(request.at - limited.at).toBeGreaterThanOrEqual(600 - 20);
    for (const storyId of ids) expect(await jobOf(stack.t, storyId)).toMatchObject({ status: "stored" });
  });

  test("new slots are planned after the loop's pause", async () => {
    quiet();
    stack = await startStack({ env: { RECRAFT_API_KEY: undefined } });
    const pausedUntil = Date.now() + 60_000;
    await stack.t.run((ctx) => ctx.db.insert("portraitDispatcher", { planned: [], holding: 0, limit: 6, pausedUntil }));
    const jobId = (await queueJobs(stack.t, 1))[0]!;
    expect(await stack.t.mutation(internal.portraits.dispatchQueue, {})).toBe(1);
    const job = (await stack.t.run((ctx) => ctx.db.get(jobId)))!;
    if (job.slot.kind !== "held") throw new Error("the job holds no slot");
    expect(job.slot.plannedAt).toBeGreaterThanOrEqual(pausedUntil);
    const { scheduledFunctionId } = job.slot;
    await stack.t.run((ctx) => ctx.scheduler.cancel(scheduledFunctionId));
    await editSlot(stack.t, jobId, null);
  });
});

describe("a late start", () => {
  test("a claim after a 429 waits for its Retry-After, even with a slot planned before it", async () => {
    const warnings = quiet();
    stack = await startStack();
    const jobId = (await queueJobs(stack.t, 1))[0]!;
    await stack.t.mutation(internal.portraits.dispatchQueue, {});
    const pausedUntil = Date.now() + 5_000;
    await stack.t.run((ctx) => ctx.db.insert("portraitStarts", { starts: [], pausedUntil }));
    expect(await stack.t.mutation(internal.portraits.claim, { jobId })).toBeNull();
    const job = (await stack.t.run((ctx) => ctx.db.get(jobId)))!;
    expect(job).toMatchObject({ status: "pending", slot: { kind: "held", plannedAt: pausedUntil } });
    expect(warnings.some((line) => line.includes("portrait.start_deferred"))).toBe(true);
    if (job.slot.kind !== "held") throw new Error("the job holds no slot");
    const { scheduledFunctionId } = job.slot;
    await stack.t.run((ctx) => ctx.scheduler.cancel(scheduledFunctionId));
    await editSlot(stack.t, jobId, null);
    await settle(stack.t);
  });

  test("takes the next free start and sends: however late, no start is refused", async () => {
    const warnings = quiet();
    stack = await startStack();
    const jobId = (await queueJobs(stack.t, 1))[0]!;
    await stack.t.mutation(internal.portraits.dispatchQueue, {});
    // As if the scheduler ran the action a minute after its slot.
    await editSlot(stack.t, jobId, { plannedAt: Date.now() - 60_000 });
    const claimed = await stack.t.mutation(internal.portraits.claim, { jobId });
    expect(claimed).toMatchObject({ attempt: 1 });
    expect(claimed!.startAt - Date.now()).toBeLessThanOrEqual(50);
    expect((await stack.t.run((ctx) => ctx.db.get(jobId)))!).toMatchObject({
      status: "requested",
      slot: { kind: "held", startedAt: claimed!.startAt },
    });
    await settle(stack.t); // the scheduled action is refused (the job is claimed); this one stands in for it
    expect(warnings.filter((line) => line.includes("start_deferred"))).toEqual([]);
    await stack.t.mutation(internal.portraits.markFailed, {
      jobId,
      attempt: 1,
      from: "requested",
      error: { step: "request", code: "timeout", message: "test" },
    });
  });

  test("waits inside the action for its token, and defers to the token's time when that is further than the longest wait", async () => {
    const warnings = quiet();
    // One request per window of 100 ms: the longest wait is 2 x 100 ms + 10 ms.
    stack = await startStack({ env: { PORTRAIT_MAX_PER_SECOND: "1", PORTRAIT_MAX_PER_MINUTE: "1000", PORTRAIT_START_TOLERANCE_MS: "10" } });
    const jobId = (await queueJobs(stack.t, 1))[0]!;
    await stack.t.mutation(internal.portraits.dispatchQueue, {});
    // Someone else's request holds the window until 500 ms from now.
    const heldUntil = Date.now() + 500;
    await stack.t.run((ctx) => ctx.db.insert("portraitStarts", { starts: [heldUntil - 110] }));
    expect(await stack.t.mutation(internal.portraits.claim, { jobId })).toBeNull();
    const deferred = (await stack.t.run((ctx) => ctx.db.get(jobId)))!;
    expect(deferred).toMatchObject({ status: "pending", slot: { kind: "held", plannedAt: heldUntil } });
    expect(warnings.some((line) => line.includes("portrait.start_deferred"))).toBe(true);
    await settle(stack.t);
    expect((await stack.t.run((ctx) => ctx.db.get(jobId)))!.status).toBe("stored");
    expect(stack.recraft.requests).toHaveLength(1);
    expect(stack.recraft.requests[0]!.at).toBeGreaterThanOrEqual(heldUntil - 5);
    // The deferral is a change of the slot too, with its event (the loop's own action may defer once more).
    expect(await slotPathOf(stack.t, jobId)).toMatch(/^granted>(deferred>)+claimed>released$/);
  });
});

describe("a lagging scheduler", () => {
  test("starts late, out of order and eight at a time: every job stored, no window exceeded, no action without its request", async () => {
    quiet();
    // Recraft's limits on scaled windows (5 per 250 ms, 20 per 2.5 s), images of 30-80 ms. The margin
    // covers this process's event loop, which the fake provider shares with every function under test.
    stack = await startStack({
      recraft: { latencyMs: () => 30 + Math.random() * 50 },
      env: {
        PORTRAIT_RATE_SECOND_MS: "250",
        PORTRAIT_RATE_MINUTE_MS: "2500",
        PORTRAIT_MAX_PER_SECOND: "5",
        PORTRAIT_MAX_PER_MINUTE: "20",
        PORTRAIT_START_TOLERANCE_MS: "60",
        PORTRAIT_MAX_CONCURRENCY: "6",
      },
    });
    const lag = lagScheduler({ delayMs: randomLag({ maxMs: 250, spikeEvery: 5, spikeMs: 750 }), parallelism: 8 });
    try {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          stack!.t.mutation(internal.stories.insertStory, caseFile({ slug: `lag-${i}`, imageGenerationPrompt: `late patient ${i}` })),
        ),
      );
      await settle(stack.t, { timeoutMs: 30_000 });
    } finally {
      lag.restore();
    }
    expect(lag.stats.delayedMs).toBeGreaterThan(0);
    const { jobs, scheduled } = await snapshot(stack.t);
    expect(jobs.filter((j) => j.status === "stored")).toHaveLength(40);
    expect(stack.recraft.requests).toHaveLength(40);
    // The pacing itself: the starts the claims reserved never crowd a window. No event-loop delay is in
    // them, so this holds however busy the machine; the fake's receipts below add this process's delay.
    const reserved = (await stack.t.run((ctx) => ctx.db.query("portraitSlotEvents").collect())).flatMap((e) =>
      e.change === "claimed" && e.slot.kind === "held" && e.slot.startedAt !== undefined ? [e.slot.startedAt] : [],
    );
    expect(reserved).toHaveLength(40);
    expect(overLimit(reserved, 250, 5)).toBe(0);
    expect(overLimit(reserved, 2_500, 20)).toBe(0);
    expect(stack.recraft.startsOverLimit(250, 5)).toBe(0);
    expect(stack.recraft.startsOverLimit(2_500, 20)).toBe(0);
    // One action per request: none ran only to be refused or deferred.
    expect(scheduled.filter((fn) => fn.name.includes("generatePatientPortrait"))).toHaveLength(40);
    expect(await violations(stack.t)).toEqual([]);
  }, 60_000);
});

describe("bounded transactions", () => {
  test("thousands of unfolded count rows: statusCounts answers (approximate), the sweep folds a batch and follow-ups fold the rest", async () => {
    quiet();
    stack = await startStack();
    // What a large backfill leaves behind: one count row per new job, none folded yet.
    const rows = MAX_UNFOLDED_READ + 600;
    await stack.t.run(async (ctx) => {
      for (let i = 0; i < rows; i++)
        await ctx.db.insert("countDeltas", { kind: "portrait", key: `job-${i}`, deltas: { pending: 1 }, updatedAt: Date.now() });
    });
    const during = await stack.t.run(async (ctx) => ({
      counts: await readCounts(ctx),
      read: (await ctx.meta.getTransactionMetrics()).documentsRead.used,
    }));
    expect(during.counts).toMatchObject({ pending: MAX_UNFOLDED_READ, approximate: true });
    expect(during.read).toBeLessThanOrEqual(MAX_UNFOLDED_READ + 2);
    expect(await stack.t.mutation(internal.portraits.sweep, {})).toBe(0);
    const afterSweep = await stack.t.run(async (ctx) => ctx.db.query("countDeltas").collect());
    expect(afterSweep).toHaveLength(rows - FOLD_BATCH);
    await settle(stack.t, { timeoutMs: 60_000 });
    const after = await stack.t.run(async (ctx) => ({
      counts: await readCounts(ctx),
      rows: (await ctx.db.query("countDeltas").collect()).length,
    }));
    expect(after).toEqual({ counts: { pending: rows, requested: 0, downloaded: 0, stored: 0, failed: 0, cancelled: 0 }, rows: 0 });
  }, 120_000);
});

describe("the claim", () => {
  test("a retried claim whose first try committed (its reply lost) is recognised; another action's claim is refused", async () => {
    quiet();
    stack = await startStack();
    const jobId = (await queueJobs(stack.t, 1))[0]!;
    await stack.t.mutation(internal.portraits.dispatchQueue, {});
    const first = await stack.t.mutation(internal.portraits.claim, { jobId, claimId: "action-1" });
    expect(first).toMatchObject({ attempt: 1, prompt: "queued patient 0" });
    expect(await stack.t.mutation(internal.portraits.claim, { jobId, claimId: "action-1" })).toEqual(first);
    expect(await stack.t.mutation(internal.portraits.claim, { jobId, claimId: "action-2" })).toBeNull();
    expect(await pathOf(stack.t, jobId)).toBe("pending>requested"); // one claim, one event
    await settle(stack.t);
    await stack.t.mutation(internal.portraits.markFailed, {
      jobId,
      attempt: 1,
      from: "requested",
      error: { step: "request", code: "timeout", message: "test" },
    });
    expect((await stack.t.run((ctx) => ctx.db.get(jobId)))!.slot).toEqual({ kind: "none" }); // the claim id went with the slot
  });
});

describe("the slot, one record on the job", () => {
  test("every change is an event with the slot as it became: granted, claimed, released with the time held", async () => {
    stack = await startStack({ recraft: { latencyMs: () => 40 } });
    const storyId = await stack.t.mutation(internal.stories.insertStory, caseFile());
    await settle(stack.t);
    const job = await jobOf(stack.t, storyId);
    expect(job).toMatchObject({ status: "stored", slot: { kind: "none" } });
    const events = await stack.t.run((ctx) =>
      ctx.db
        .query("portraitSlotEvents")
        .withIndex("by_job", (q) => q.eq("jobId", job!._id))
        .collect(),
    );
    expect(events.map((e) => e.change)).toEqual(["granted", "claimed", "released"]);
    const [granted, claimed, released] = events;
    expect(granted!.slot).toMatchObject({ kind: "held", grantedAt: granted!.at });
    // The claim keeps the grant and adds the request's real start, which the provider saw.
    if (claimed!.slot.kind !== "held" || granted!.slot.kind !== "held") throw new Error("the claim recorded no held slot");
    expect(claimed!.slot.grantedAt).toBe(granted!.slot.grantedAt);
    expect(claimed!.slot.startedAt).toBeLessThanOrEqual(stack.recraft.requests[0]!.at);
    expect(released!.slot).toEqual({ kind: "none" });
    // Held from the real start until the job was stored: at least the provider's 40 ms.
    expect(released!.heldMs).toBeGreaterThanOrEqual(40);
    expect(released!.heldMs).toBe(released!.at - claimed!.slot.startedAt!);
    expect(events.every((e) => e.attempt === 1)).toBe(true);
  });

  test("a slot changed without its event (a hand edit) is reported by the invariants", async () => {
    quiet();
    stack = await startStack({ env: { RECRAFT_API_KEY: undefined } });
    const jobId = (await queueJobs(stack.t, 1))[0]!;
    await stack.t.mutation(internal.portraits.dispatchQueue, {});
    expect(await violations(stack.t, { settled: false })).toEqual([]);
    const job = (await stack.t.run((ctx) => ctx.db.get(jobId)))!;
    if (job.slot.kind !== "held") throw new Error("the job holds no slot");
    const { scheduledFunctionId } = job.slot;
    await stack.t.run((ctx) => ctx.scheduler.cancel(scheduledFunctionId));
    await editSlot(stack.t, jobId, null);
    expect(await violations(stack.t, { settled: false })).toEqual(
      expect.arrayContaining([
        `job ${jobId} slot is none but its slot events end at held`,
        "the dispatcher counts 1 held slots, 0 jobs hold one",
      ]),
    );
  });

  test("the loop's tally and the jobs' slots agree at every step of a burst with 429s, failures, retries and sweeps, with no repair", async () => {
    const warnings = quiet();
    stack = await startStack({
      recraft: { latencyMs: () => 20 + Math.random() * 40 },
      env: { PORTRAIT_MAX_CONCURRENCY: "4", PORTRAIT_MAX_ATTEMPTS: "2", PORTRAIT_RETRY_INITIAL_MS: "50" },
    });
    // Every third request is refused with a 429 (no wait), every fifth fails with a 500: both release the slot, some retry.
    stack.recraft.setFault(({ index }) =>
      index % 3 === 1
        ? { kind: "status", status: 429, body: "", headers: { "retry-after": "0" } }
        : index % 5 === 2
          ? { kind: "status", status: 500, body: "Internal Server Error" }
          : undefined,
    );
    const ids = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        stack!.t.mutation(internal.stories.insertStory, caseFile({ slug: `t${i}`, imageGenerationPrompt: `tally patient ${i}` })),
      ),
    );
    let checks = 0;
    let sawHolders = false;
    for (
      let i = 0;
      i < 400 && (i < 3 || (await snapshot(stack.t)).jobs.some((j) => j.slot.kind === "held" || j.status === "pending"));
      i++
    ) {
      expect(await violations(stack.t, { settled: false })).toEqual([]);
      sawHolders ||= (await snapshot(stack.t)).jobs.some((j) => j.slot.kind === "held");
      checks++;
      if (i % 4 === 0) await stack.t.mutation(internal.portraits.sweep, {});
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    await settle(stack.t);
    expect(await violations(stack.t)).toEqual([]);
    expect(checks).toBeGreaterThan(3);
    expect(sawHolders).toBe(true);
    const { jobs } = await snapshot(stack.t);
    expect(jobs.filter((j) => ids.includes(j.storyId))).toHaveLength(24);
    expect(stack.recraft.requests.length).toBeGreaterThan(24); // some attempts were retried
    // The sweep's repair found nothing to put right: the tally is exact by construction.
    expect(warnings.filter((line) => line.includes("portrait.dispatcher_drift"))).toEqual([]);
  });
});
