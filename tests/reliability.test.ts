/**
 * The job table as a work queue: bounded dispatch, retries, recovery of dead
 * or stalled attempts, races, exact counts. Every test ends with the full
 * invariant check.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import { createHash } from "node:crypto";
import { readCounts } from "../convex/lib/jobs";
import { portraitPng } from "../scripts/fakes/png";
import { caseFile, eventsOf, jobOf, pathOf, settle, startStack, type Stack } from "./harness";
import { expectInvariants, snapshot } from "./invariants";

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  try {
    await expectInvariants(stack.t);
  } finally {
    await stack.close();
    vi.restoreAllMocks();
  }
});

const insertMany = (n: number, prefix = "s") =>
  Promise.all(
    Array.from({ length: n }, (_, i) =>
      stack.t.mutation(internal.stories.insertStory, caseFile({ slug: `${prefix}${i}`, imageGenerationPrompt: `${prefix} patient ${i}` })),
    ),
  );

const until = async (condition: () => Promise<boolean>, timeoutMs = 5_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
};

const jobStatus = async (jobId: Id<"portraitJobs">) => (await stack.t.run((ctx) => ctx.db.get(jobId)))!.status;

describe("bounded dispatch", () => {
  test("never more than PORTRAIT_MAX_CONCURRENCY in flight; pending jobs start in insertion order", async () => {
    await stack.close();
    stack = await startStack({ recraft: { latencyMs: 40 }, env: { PORTRAIT_MAX_CONCURRENCY: "2" } });
    const ids = [];
    for (let i = 0; i < 8; i++) ids.push(await stack.t.mutation(internal.stories.insertStory, caseFile({ slug: `s${i}`, imageGenerationPrompt: `patient ${i}` })));
    const waiting = (await snapshot(stack.t)).jobs.filter((j) => j.status === "pending" && !j.holdsSlot);
    expect(waiting).toHaveLength(6); // waiting is not failing
    await settle(stack.t);
    expect(stack.recraft.maxInFlight).toBe(2);
    expect(stack.recraft.requests.map((r) => r.prompt)).toEqual(ids.map((_, i) => `patient ${i}`));
    expect((await snapshot(stack.t)).jobs.every((j) => j.status === "stored")).toBe(true);
  });

  test("racing inserts cannot overfill the slots (serializable mutations, no locks)", async () => {
    stack.setEnv({ PORTRAIT_MAX_CONCURRENCY: "3", RECRAFT_API_KEY: undefined });
    // With no key every attempt fails at once, so slots churn as fast as possible.
    await insertMany(30);
    await settle(stack.t);
    const events = (await snapshot(stack.t)).events.sort((a, b) => a._creationTime - b._creationTime);
    expect(events.filter((e) => e.to === "failed")).toHaveLength(30);
  });

  test("at most PORTRAIT_MAX_PER_MINUTE requests in a rolling minute; the rest wait for a wakeup, not a poll", async () => {
    stack.setEnv({ PORTRAIT_MAX_PER_MINUTE: "3" });
    await insertMany(5);
    await settle(stack.t);
    expect(stack.recraft.requests).toHaveLength(3);
    const { jobs } = await snapshot(stack.t);
    expect(jobs.filter((j) => j.status === "pending")).toHaveLength(2);
    const wakeups = await stack.t.run((ctx) => ctx.db.system.query("_scheduled_functions").collect());
    const dispatcher = wakeups.filter((fn) => fn.name === "portraits:dispatchQueue" && fn.state.kind === "pending");
    expect(dispatcher).toHaveLength(1); // one wakeup, however many inserts asked
    const state = (await stack.t.run((ctx) => ctx.db.query("portraitDispatcher").collect()))[0];
    expect(state.recentRequests).toHaveLength(3);
    expect(dispatcher[0].scheduledTime).toBe(state.recentRequests[0] + 60_001);

    // A minute passes: age the window, then let the wakeup run.
    await stack.t.run((ctx) => ctx.db.patch(state._id, { recentRequests: state.recentRequests.map((at) => at - 61_000) }));
    await stack.t.mutation(internal.portraits.dispatchQueue, {});
    await settle(stack.t);
    expect(stack.recraft.requests).toHaveLength(5);
  });
});

describe("retries", () => {
  test("transient failures retry with backoff as new attempts until one succeeds; every attempt stays in the log", async () => {
    stack.setEnv({ PORTRAIT_MAX_ATTEMPTS: "3" });
    stack.recraft.setFault(({ index }) =>
      index === 0 ? { kind: "status", status: 503, body: "busy" } : index === 1 ? { kind: "reset" } : undefined,
    );
    const [storyId] = await insertMany(1);
    await settle(stack.t);
    const job = await jobOf(stack.t, storyId);
    expect(job).toMatchObject({ status: "stored", attempt: 3 });
    expect(await pathOf(stack.t, job._id)).toBe(
      "pending>requested>failed>pending>requested>failed>pending>requested>downloaded>stored",
    );
    const events = await eventsOf(stack.t, job._id);
    expect(events.filter((e) => e.to === "failed").map((e) => e.error!.code)).toEqual(["http_error", "network_error"]);
  });

  test("Retry-After sets the earliest next attempt", async () => {
    stack.setEnv({ PORTRAIT_MAX_ATTEMPTS: "2" });
    stack.recraft.setFault(({ index }) => (index === 0 ? { kind: "status", status: 429, body: "", headers: { "retry-after": "1" } } : undefined));
    const [storyId] = await insertMany(1);
    await settle(stack.t);
    const events = await eventsOf(stack.t, (await jobOf(stack.t, storyId))._id);
    const failed = events.find((e) => e.to === "failed")!;
    const requeued = events.find((e) => e.from === "failed" && e.to === "pending")!;
    expect(requeued.details!.retryAt! - failed.at).toBeGreaterThanOrEqual(1000);
    const secondRequest = events.filter((e) => e.to === "requested")[1];
    expect(secondRequest.at).toBeGreaterThanOrEqual(requeued.details!.retryAt!);
    expect((await jobOf(stack.t, storyId)).status).toBe("stored");
  });

  test.each([
    ["unauthorized", { kind: "status", status: 401, body: "no" }],
    ["http 400", { kind: "status", status: 400, body: "bad prompt" }],
    ["disallowed url", { kind: "imageUrl", url: "https://evil.example/x.png" }],
    ["bad content type", { kind: "imageContentType", contentType: "text/html" }],
  ] as const)("a permanent failure (%s) never retries", async (_name, fault) => {
    stack.setEnv({ PORTRAIT_MAX_ATTEMPTS: "5" });
    stack.recraft.setFault(fault);
    const [storyId] = await insertMany(1);
    await settle(stack.t);
    expect(await jobOf(stack.t, storyId)).toMatchObject({ status: "failed", attempt: 1 });
    expect(stack.recraft.requests).toHaveLength(1);
  });

  test("attempts stop at PORTRAIT_MAX_ATTEMPTS", async () => {
    stack.setEnv({ PORTRAIT_MAX_ATTEMPTS: "3" });
    stack.recraft.setFault({ kind: "status", status: 500, body: "down" });
    const [storyId] = await insertMany(1);
    await settle(stack.t);
    expect(await jobOf(stack.t, storyId)).toMatchObject({ status: "failed", attempt: 3 });
    expect(stack.recraft.requests).toHaveLength(3);
  });

  test("retryJob re-queues a failed job as a new attempt through the dispatcher; anything else is refused", async () => {
    stack.recraft.setFault(({ index }) => (index === 0 ? { kind: "status", status: 401, body: "expired key" } : undefined));
    const [storyId] = await insertMany(1);
    await settle(stack.t);
    const job = await jobOf(stack.t, storyId);
    expect(job.status).toBe("failed");
    expect(await stack.t.mutation(internal.portraits.retryJob, { jobId: job._id })).toBe("queued");
    await settle(stack.t);
    expect(await jobOf(stack.t, storyId)).toMatchObject({ status: "stored", attempt: 2 });
    expect(await stack.t.mutation(internal.portraits.retryJob, { jobId: job._id })).toBe("not_failed");
  });

  test("retryFailedByCode retries exactly the failed jobs with that code", async () => {
    stack.recraft.setFault(({ prompt }) =>
      prompt.startsWith("a ") ? { kind: "status", status: 500, body: "down" } : { kind: "status", status: 401, body: "no" },
    );
    await insertMany(3, "a");
    await insertMany(2, "b");
    await settle(stack.t);
    stack.recraft.setFault(undefined);
    expect(await stack.t.mutation(internal.portraits.retryFailedByCode, { code: "http_error" })).toBe(3);
    await settle(stack.t);
    const { jobs } = await snapshot(stack.t);
    expect(jobs.filter((j) => j.status === "stored")).toHaveLength(3);
    expect(jobs.filter((j) => j.status === "failed").map((j) => j.error!.code)).toEqual(["unauthorized", "unauthorized"]);
  });
});

describe("recovery", () => {
  test.each(["failed", "canceled", "missing"] as const)(
    "a job whose action is %s is swept to failed(stalled) and retried; the late action is refused",
    async (fate) => {
      stack.setEnv({ PORTRAIT_MAX_ATTEMPTS: "2", PORTRAIT_REQUEST_TIMEOUT_MS: "400" });
      stack.recraft.setFault(({ index }) => (index === 0 ? { kind: "hang" } : undefined));
      const [storyId] = await insertMany(1);
      const job = await jobOf(stack.t, storyId);
      await until(async () => (await jobStatus(job._id)) === "requested");
      // The sweep reads the job's scheduled-function record. Point it at a record in the
      // state a dead action leaves (a restart marks it failed; an operator may cancel it;
      // it may be gone); the real action keeps hanging and comes back late.
      const deadRecord = await stack.t.run(async (ctx) => {
        if (fate === "missing") return null;
        if (fate === "canceled") {
          const id = await ctx.scheduler.runAfter(3_600_000, internal.portraits.dispatchQueue, {});
          await ctx.scheduler.cancel(id);
          return id;
        }
        return ctx.scheduler.runAfter(0, internal.stories.insertStory, caseFile({ title: "" }));
      });
      if (fate === "failed") {
        vi.spyOn(console, "error").mockImplementation(() => {});
        await until(async () => (await stack.t.run((ctx) => ctx.db.system.get(deadRecord!)))!.state.kind === "failed");
      }
      await stack.t.run((ctx) => ctx.db.patch(job._id, { scheduledFunctionId: deadRecord ?? undefined }));
      expect(await stack.t.mutation(internal.portraits.sweep, {})).toBe(1);
      await settle(stack.t);
      const events = await eventsOf(stack.t, job._id);
      const stalled = events.find((e) => e.to === "failed")!;
      expect(stalled.error).toMatchObject({ code: "stalled", step: "recovery" });
      expect(stalled.attempt).toBe(1);
      // The hung first action timed out after the sweep and was refused: attempt 1 failed once, as stalled.
      expect(events.filter((e) => e.attempt === 1 && e.to === "failed")).toHaveLength(1);
      expect(await jobOf(stack.t, storyId)).toMatchObject({ status: "stored", attempt: 2 });
    },
  );

  test("a job in flight longer than PORTRAIT_STALL_MS is swept even if its action looks alive", async () => {
    stack.setEnv({ PORTRAIT_STALL_MS: "100", PORTRAIT_REQUEST_TIMEOUT_MS: "600" });
    stack.recraft.setFault({ kind: "hang" });
    const [storyId] = await insertMany(1);
    const job = await jobOf(stack.t, storyId);
    await until(async () => (await jobStatus(job._id)) === "requested");
    expect(await stack.t.mutation(internal.portraits.sweep, {})).toBe(0); // not stalled yet
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await stack.t.mutation(internal.portraits.sweep, {})).toBe(1);
    await settle(stack.t);
    const final = await jobOf(stack.t, storyId);
    expect(final.error).toMatchObject({ code: "stalled", message: expect.stringMatching(/PORTRAIT_STALL_MS/) });
    expect(await pathOf(stack.t, job._id)).toBe("pending>requested>failed");
  });

  test("two actions racing for one job: one claims it, the other is refused and sends nothing", async () => {
    stack.recraft.setFault(undefined);
    const [storyId] = await insertMany(1);
    const job = await jobOf(stack.t, storyId);
    await Promise.all([
      stack.t.action(internal.portraits.generatePatientPortrait, { jobId: job._id }),
      stack.t.action(internal.portraits.generatePatientPortrait, { jobId: job._id }),
    ]);
    await settle(stack.t);
    expect(stack.recraft.requests).toHaveLength(1);
    expect(await pathOf(stack.t, job._id)).toBe("pending>requested>downloaded>stored");
  });

  test("an action that died between storing its image and saying so leaves no orphan: the sweep finds the file by checksum", async () => {
    // A first story stores a portrait with the same bytes: it must survive the cleanup.
    const [kept] = await insertMany(1, "same");
    await settle(stack.t);
    stack.setEnv({ PORTRAIT_REQUEST_TIMEOUT_MS: "400" });
    stack.recraft.setFault({ kind: "hang" });
    const storyId = await stack.t.mutation(internal.stories.insertStory, caseFile({ slug: "dies", imageGenerationPrompt: "same patient 0" }));
    const job = await jobOf(stack.t, storyId);
    await until(async () => (await jobStatus(job._id)) === "requested");
    // What the dying action did: it downloaded the image, recorded that, stored it, and died.
    const image = portraitPng("same patient 0");
    const sha256 = createHash("sha256").update(image).digest("hex");
    expect(await stack.t.mutation(internal.portraits.markDownloaded, { jobId: job._id, attempt: 1, details: { sha256, bytes: image.length } })).toBe(true);
    const orphan = await stack.t.action(async (ctx) => ctx.storage.store(new Blob([image as BlobPart])));
    const deadRecord = await stack.t.run((ctx) => ctx.scheduler.runAfter(0, internal.stories.insertStory, caseFile({ title: "" })));
    vi.spyOn(console, "error").mockImplementation(() => {});
    await until(async () => (await stack.t.run((ctx) => ctx.db.system.get(deadRecord)))!.state.kind === "failed");
    await stack.t.run((ctx) => ctx.db.patch(job._id, { scheduledFunctionId: deadRecord }));

    expect(await stack.t.mutation(internal.portraits.sweep, {})).toBe(1);
    await settle(stack.t);
    expect(await stack.t.run((ctx) => ctx.db.system.get(orphan))).toBeNull();
    const keptFile = (await stack.t.run((ctx) => ctx.db.get(kept)))!.storageId!;
    expect(await stack.t.run((ctx) => ctx.db.system.get(keptFile))).not.toBeNull();
    expect((await jobOf(stack.t, storyId)).error).toMatchObject({ code: "stalled" });
  });

  test("a late store from a swept attempt deletes its own file and changes nothing", async () => {
    const [storyId] = await insertMany(1);
    await settle(stack.t);
    const job = await jobOf(stack.t, storyId);
    const orphan = await stack.t.run((ctx) => ctx.storage.store(new Blob(["late"])));
    expect(await stack.t.mutation(internal.portraits.markStored, { jobId: job._id, attempt: 1, storageId: orphan, details: {} })).toBe(false);
    expect(await stack.t.run((ctx) => ctx.db.system.get(orphan))).toBeNull();
    expect((await jobOf(stack.t, storyId)).storageId).toBe(job.storageId);
  });
});

describe("status counts", () => {
  test("are exact and read a constant number of documents however many jobs exist", async () => {
    stack.setEnv({ RECRAFT_API_KEY: undefined, PORTRAIT_MAX_CONCURRENCY: "8" });
    const readsAt = async () =>
      stack.t.run(async (ctx) => {
        const counts = await readCounts(ctx);
        return { counts, read: (await ctx.meta.getTransactionMetrics()).documentsRead.used };
      });
    await insertMany(10, "a");
    await settle(stack.t);
    const small = await readsAt();
    await insertMany(120, "b");
    await settle(stack.t);
    const large = await readsAt();
    expect(small.counts.failed).toBe(10);
    expect(large.counts.failed).toBe(130);
    expect(large.read).toBe(small.read);
    expect(large.read).toBeLessThanOrEqual(5);
  });
});
