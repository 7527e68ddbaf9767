/**
 * Portraits for stories that exist already: the backfill (a job for every story
 * with neither a portrait nor a job, in self-scheduling batches) and
 * regeneration (a new attempt that replaces a stored portrait only once the
 * new one is stored). Every test ends with the full invariant check.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { api, internal } from "../convex/_generated/api";
import type { Doc, Id } from "../convex/_generated/dataModel";
import { startBackfill } from "../convex/lib/backfill";
import { portraitPng } from "../scripts/fakes/png";
import {
  caseFile,
  eventsOf,
  gameStoryDocument,
  jobOf,
  until,
  numberedCaseFile,
  pathOf,
  settle,
  startStack,
  type Backend,
  type Stack,
} from "./harness";
import { expectInvariants, snapshot } from "./invariants";

const ADMIN_EMAIL = "warden@asylum.test";
// Backfill batches of 10 stories (PORTRAIT_BACKFILL_BATCH), so tens of stories make several batches:
// convex-test walks every document for each index read, and hundreds would take most of a minute.
const BATCH = 10;
let stack: Stack;
let paintings: number;
// How long the fake takes to answer a generation request: long enough, when set,
// for a test to see the job in `requested` (it waits for that state, not for time).
let requestLatencyMs: number;

beforeEach(async () => {
  paintings = 0;
  requestLatencyMs = 0;
  // Every painting differs, so a regenerated portrait is told apart by its bytes.
  stack = await startStack({
    env: { ADMIN_EMAILS: ADMIN_EMAIL, PORTRAIT_REQUEST_TIMEOUT_MS: "10000", PORTRAIT_BACKFILL_BATCH: String(BATCH) },
    recraft: { paint: (prompt) => portraitPng(`${prompt} #painting${++paintings}`), latencyMs: () => requestLatencyMs },
  });
});
afterEach(async () => {
  try {
    await settle(stack.t);
    await expectInvariants(stack.t);
  } finally {
    await stack.close();
  }
});

const admin = () => stack.t.withIdentity({ email: ADMIN_EMAIL, emailVerified: true, subject: "user_warden" });

/** A story document as the game writes it: its own fields, nothing of this backend. */
function gameStory(i: number, createdAt: number, storageId?: Id<"_storage">) {
  return { ...gameStoryDocument(numberedCaseFile(i), createdAt), ...(storageId ? { storageId } : {}) };
}

async function insertGameStory(t: Backend, i: number, withPortrait = false): Promise<Id<"stories">> {
  return t.run(async (ctx) => {
    const storageId = withPortrait
      ? await ctx.storage.store(new Blob([portraitPng(`the game's own portrait ${i}`) as Uint8Array<ArrayBuffer>], { type: "image/png" }))
      : undefined;
    return ctx.db.insert("stories", gameStory(i, Date.UTC(2025, 0, 1) + i * 86_400_000, storageId));
  });
}

const jobsOf = (t: Backend, storyId: Id<"stories">) =>
  t.run((ctx) =>
    ctx.db
      .query("portraitJobs")
      .withIndex("by_story", (q) => q.eq("storyId", storyId))
      .collect(),
  );

async function storedBytes(t: Backend, storageId: Id<"_storage">) {
  return new Uint8Array(await t.run(async (ctx) => (await ctx.storage.get(storageId))!.arrayBuffer()));
}

async function waitForJob(storyId: Id<"stories">, ready: (job: Doc<"portraitJobs">) => boolean, timeoutMs = 10_000) {
  let job = await jobOf(stack.t, storyId);
  await until(async () => ready((job = await jobOf(stack.t, storyId))), { timeoutMs, message: `the job of ${storyId} to get ready` });
  return job;
}

describe("backfill", () => {
  test("existing stories (6.4 batches), some with jobs or portraits, some deleted mid-way, two runs at once: exactly one job per story", async () => {
    const N = 64; // one story in 16 of each kind below; 52 plain
    // The windows are the harness's scaled ones (lib/dispatch.ts spreads starts); this run holds
    // the backfill to 20 starts per scaled second, so pacing shows while every job still ends.
    stack.setEnv({ PORTRAIT_MAX_PER_SECOND: "20" });
    const kinds = Array.from({ length: N }, (_, i) =>
      i % 16 === 3 ? "withJob" : i % 16 === 7 ? "withFailedJob" : i % 16 === 11 ? "withPortrait" : "plain",
    );
    const storyIds: Id<"stories">[] = [];
    for (const [i, kind] of kinds.entries()) {
      if (kind === "withJob") {
        storyIds.push(await stack.t.mutation(internal.stories.insertStory, numberedCaseFile(i)));
        await settle(stack.t);
      } else if (kind === "withFailedJob") {
        stack.setEnv({ RECRAFT_API_KEY: undefined }); // fails at the claim, no request made
        storyIds.push(await stack.t.mutation(internal.stories.insertStory, numberedCaseFile(i)));
        await settle(stack.t);
        stack.setEnv({ RECRAFT_API_KEY: stack.recraft.apiKey });
      } else storyIds.push(await insertGameStory(stack.t, i, kind === "withPortrait"));
    }
    await settle(stack.t);
    const plain = storyIds.filter((_, i) => kinds[i] === "plain");
    const special = N / 16; // stories of each special kind
    const PLAIN = N - 3 * special;
    expect(plain).toHaveLength(PLAIN);
    expect(stack.recraft.requests).toHaveLength(special);
    const legacyStories = storyIds.filter((_, i) => kinds[i] === "withPortrait");
    const legacyFiles = await stack.t.run(async (ctx) => Promise.all(legacyStories.map(async (id) => (await ctx.db.get(id))!.storageId!)));

    // Two runs start in one transaction, so both exist before either's first
    // batch; then deleteStory, scheduled behind their first batches, removes
    // stories the first page has already given jobs and stories no page has reached.
    const firstPage = plain.filter((id) => storyIds.indexOf(id) < BATCH);
    const lastPage = plain.filter((id) => storyIds.indexOf(id) >= N - BATCH);
    const deletedEarly = firstPage.slice(-3);
    const deletedLate = lastPage.slice(-3);
    const [runA, runB] = await stack.t.run(async (ctx) => {
      const runs = [await startBackfill(ctx), await startBackfill(ctx)];
      for (const storyId of [...deletedEarly, ...deletedLate]) await ctx.scheduler.runAfter(0, internal.stories.deleteStory, { storyId });
      return runs;
    });
    await settle(stack.t);

    const runs = await stack.t.run(async (ctx) => [(await ctx.db.get(runA!))!, (await ctx.db.get(runB!))!]);
    for (const run of runs) {
      expect(run.done).toBe(true);
      expect(run.scanned).toBe(N - deletedLate.length);
      expect(run.hadPortrait + run.hadJob + run.created).toBe(run.scanned);
    }
    // The runs overlapped, and between them created each missing job once.
    expect(runs[0]!.startedAt).toBeLessThanOrEqual(runs[1]!.finishedAt!);
    expect(runs[1]!.startedAt).toBeLessThanOrEqual(runs[0]!.finishedAt!);
    expect(runs[0]!.created + runs[1]!.created).toBe(PLAIN - deletedLate.length);

    const { stories, jobs, files } = await snapshot(stack.t);
    expect(stories).toHaveLength(N - deletedEarly.length - deletedLate.length);
    expect(jobs).toHaveLength(2 * special + PLAIN - deletedLate.length);
    for (const story of stories) {
      const own = jobs.filter((job) => job.storyId === story._id);
      expect(own.length, `jobs of ${story.slug}`).toBe(legacyStories.includes(story._id) ? 0 : 1);
    }
    for (const storyId of deletedEarly) {
      // Deleted after its batch gave it a job: the job ends story_missing, or stored if it got there first.
      const job = (await jobsOf(stack.t, storyId))[0]!;
      if (job.status === "failed") expect(job.error?.code).toBe("story_missing");
      else expect(job.status).toBe("stored");
    }
    for (const storyId of deletedLate) expect(await jobsOf(stack.t, storyId)).toEqual([]);

    // Paced by the dispatcher: every backfilled job of a story that still exists is stored, with
    // one request each, never more starts in a window than the limits allow, and no request
    // was made for a story deleted before the scan reached it.
    const backfilled = jobs.filter((job) => plain.includes(job.storyId));
    expect(backfilled).toHaveLength(PLAIN - deletedLate.length);
    const live = backfilled.filter((job) => !deletedEarly.includes(job.storyId));
    expect(live.map((job) => job.status)).toEqual(live.map(() => "stored"));
    const requested = [];
    for (const job of backfilled) if ((await eventsOf(stack.t, job._id)).some((e) => e.to === "requested")) requested.push(job);
    expect(stack.recraft.requests).toHaveLength(special + requested.length);
    expect(stack.recraft.startsOverLimit(100, 20)).toBe(0);
    const lateCases = deletedLate.map((id) => storyIds.indexOf(id));
    expect(stack.recraft.requests.filter((r) => lateCases.some((i) => r.prompt === `portrait of patient #${i}`))).toEqual([]);
    for (const job of backfilled) {
      const first = (await eventsOf(stack.t, job._id))[0]!;
      expect(first).toMatchObject({ from: null, to: "pending", details: { reason: "backfill" } });
      expect(first.at).toBeGreaterThanOrEqual(runs[0]!.startedAt); // created when found, not when the game wrote the story
    }
    // The game's own portraits are untouched and still served.
    expect(files.map((f) => f._id)).toEqual(expect.arrayContaining(legacyFiles));
    expect((await stack.t.query(api.stories.getStory, { storyId: legacyStories[0] }))!.imageUrl).toMatch(/^https?:\/\//);

    // A third run, after the others, finds nothing to do and changes nothing.
    const before = await snapshot(stack.t);
    const third = await stack.t.mutation(internal.portraits.backfill, {});
    await settle(stack.t);
    const after = await stack.t.run(async (ctx) => (await ctx.db.get(third))!);
    expect(after).toMatchObject({ done: true, scanned: N - deletedEarly.length - deletedLate.length, created: 0 });
    expect((await snapshot(stack.t)).jobs).toEqual(before.jobs);
  });

  test("the admin starts a run and watches its progress; the dispatcher paces the portraits", async () => {
    // At most 25 starts per (scaled) 1.5 s "minute", which the run's 40 jobs exceed, spread: the run ends
    // with every portrait stored.
    const STORIES = 3 * BATCH + 10;
    stack.setEnv({ PORTRAIT_MAX_PER_MINUTE: "25", PORTRAIT_RATE_MINUTE_MS: "1500" });
    const storyIds = [];
    for (let i = 0; i < STORIES; i++) storyIds.push(await insertGameStory(stack.t, i));
    expect(await admin().query(api.admin.backfillProgress, {})).toBeNull();
    const runId = await admin().mutation(api.admin.backfill, {});
    const started = await admin().query(api.admin.backfillProgress, {});
    expect(started).toMatchObject({ _id: runId, done: false, scanned: 0, created: 0 });
    await settle(stack.t);
    expect(await admin().query(api.admin.backfillProgress, {})).toMatchObject({
      _id: runId,
      done: true,
      scanned: STORIES,
      created: STORIES,
      hadPortrait: 0,
      hadJob: 0,
      finishedAt: expect.any(Number),
    });
    // Jobs start in queue order (story creation), never more than 25 in a (scaled) minute window.
    // Starts planned for one instant (a second window's burst) may reach the provider in any order,
    // so the order is checked at the minute's grain: its budget goes to the first 25 in the queue.
    expect(stack.recraft.requests).toHaveLength(STORIES);
    expect(stack.recraft.startsOverLimit(1_500, 25)).toBe(0);
    const prompts = stack.recraft.requests.map((r) => r.prompt);
    const queued = storyIds.map((_, i) => `portrait of patient #${i}`);
    expect(prompts.slice(0, 25).sort()).toEqual(queued.slice(0, 25).sort());
    expect(prompts.slice(25).sort()).toEqual(queued.slice(25).sort());
    for (const storyId of storyIds) {
      const story = await stack.t.query(api.stories.getStory, { storyId });
      expect(story?.imageUrl, story?.slug).toMatch(/^https?:\/\//);
    }
  });
});

describe("regenerate", () => {
  async function storedStory() {
    const storyId = await stack.t.mutation(internal.stories.insertStory, caseFile());
    await settle(stack.t);
    const job = await jobOf(stack.t, storyId);
    expect(job.status).toBe("stored");
    return { storyId, oldFile: job.storageId! };
  }
  const storyOf = (storyId: Id<"stories">) => stack.t.run((ctx) => ctx.db.get(storyId));
  const fileExists = (storageId: Id<"_storage">) => stack.t.run(async (ctx) => (await ctx.db.system.get(storageId)) !== null);

  test("the story keeps its portrait until the new one is stored, which replaces it and deletes the old file", async () => {
    const { storyId, oldFile } = await storedStory();
    requestLatencyMs = 1000;
    expect(await stack.t.mutation(internal.portraits.regenerate, { storyId })).toBe("queued");
    expect(await stack.t.mutation(internal.portraits.regenerate, { storyId })).toBe("busy");
    const during = await waitForJob(storyId, (job) => job.attempt === 2 && job.status === "requested");
    expect(during!.storageId).toBe(oldFile);
    expect((await storyOf(storyId))!.storageId).toBe(oldFile);
    expect(await fileExists(oldFile)).toBe(true);

    await settle(stack.t);
    const job = await jobOf(stack.t, storyId);
    expect(job).toMatchObject({ status: "stored", attempt: 2 });
    expect(job.storageId).not.toBe(oldFile);
    expect((await storyOf(storyId))!.storageId).toBe(job.storageId);
    expect(await fileExists(oldFile)).toBe(false);
    expect(await storedBytes(stack.t, job.storageId!)).toEqual(portraitPng(`${caseFile().imageGenerationPrompt} #painting2`));
    expect((await snapshot(stack.t)).files.map((f) => f._id)).toEqual([job.storageId]);
    expect(await pathOf(stack.t, job._id)).toBe("pending>requested>downloaded>stored>pending>requested>downloaded>stored");
    const [, , , , regenerated] = await eventsOf(stack.t, job._id);
    expect(regenerated).toMatchObject({ from: "stored", to: "pending", attempt: 2, details: { reason: "regenerate" } });
    expect((await stack.t.query(api.stories.getStory, { storyId }))!.imageUrl).toMatch(/^https?:\/\//);
  });

  test("a failed attempt leaves the old portrait in place; regenerating again replaces it", async () => {
    const { storyId, oldFile } = await storedStory();
    stack.recraft.setFault({ kind: "status", status: 500, body: "upstream exploded" });
    expect(await admin().mutation(api.admin.regenerate, { storyId })).toBe("queued");
    await settle(stack.t);
    const failed = await jobOf(stack.t, storyId);
    // The job records the failed attempt and still names the portrait the story shows.
    expect(failed).toMatchObject({ status: "failed", attempt: 2, error: { code: "http_error", httpStatus: 500 }, storageId: oldFile });
    expect((await storyOf(storyId))!.storageId).toBe(oldFile);
    expect(await storedBytes(stack.t, oldFile)).toEqual(portraitPng(`${caseFile().imageGenerationPrompt} #painting1`));
    expect((await snapshot(stack.t)).files.map((f) => f._id)).toEqual([oldFile]);
    await expectInvariants(stack.t);

    stack.recraft.setFault(undefined);
    expect(await admin().mutation(api.admin.regenerate, { storyId })).toBe("queued");
    await settle(stack.t);
    const job = await jobOf(stack.t, storyId);
    expect(job).toMatchObject({ status: "stored", attempt: 3 });
    expect(await fileExists(oldFile)).toBe(false);
    expect((await storyOf(storyId))!.storageId).toBe(job.storageId);
  });

  test("a story deleted while its new portrait is being painted leaves no file behind", async () => {
    const { storyId, oldFile } = await storedStory();
    requestLatencyMs = 1000;
    expect(await stack.t.mutation(internal.portraits.regenerate, { storyId })).toBe("queued");
    const job = await waitForJob(storyId, (j) => j.attempt === 2 && j.status === "requested");
    await stack.t.mutation(internal.stories.deleteStory, { storyId });
    expect(await fileExists(oldFile)).toBe(false);
    await settle(stack.t);
    expect((await snapshot(stack.t)).files).toEqual([]);
    const after = await jobOf(stack.t, storyId);
    expect(after).toMatchObject({ _id: job._id, status: "failed", attempt: 2, error: { code: "story_missing" } });
    expect(await stack.t.mutation(internal.portraits.regenerate, { storyId })).toBe("story_missing");
  });

  test("a portrait the game painted before this backend: skipped by the backfill, replaced by a regeneration", async () => {
    const storyId = await insertGameStory(stack.t, 7, true);
    const legacy = (await storyOf(storyId))!.storageId!;
    await stack.t.mutation(internal.portraits.backfill, {});
    await settle(stack.t);
    expect(await jobsOf(stack.t, storyId)).toEqual([]);
    expect(await admin().query(api.admin.backfillProgress, {})).toMatchObject({ done: true, scanned: 1, hadPortrait: 1, created: 0 });

    expect(await admin().mutation(api.admin.regenerate, { storyId })).toBe("queued");
    const during = await waitForJob(storyId, () => true);
    expect(during!.storageId).toBeUndefined();
    expect((await storyOf(storyId))!.storageId).toBe(legacy);
    await expectInvariants(stack.t, { settled: false });
    await settle(stack.t);
    const job = await jobOf(stack.t, storyId);
    expect(job).toMatchObject({ status: "stored", attempt: 1 });
    expect((await storyOf(storyId))!.storageId).toBe(job.storageId);
    expect(await fileExists(legacy)).toBe(false);
    expect(await admin().mutation(api.admin.regenerate, { storyId: "not-an-id" })).toBe("story_missing");
  });
});
