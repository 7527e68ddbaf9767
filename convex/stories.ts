import { ConvexError, v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalAction, internalMutation, query, type QueryCtx } from "./_generated/server";
import { caseFileProblems } from "./lib/caseFile";
import { dispatch } from "./lib/dispatch";
import { createJob } from "./lib/jobs";
import { describeError } from "./lib/redact";
import { writeCaseFile } from "./lib/storyWriter";
import { storyFields } from "./validators";

/**
 * Inserts a story, its portrait job (`pending`) and the job's first event, and
 * hands the job to the dispatcher, which schedules `generatePatientPortrait`
 * when a slot is free: one transaction, so a story never exists without its job
 * and a failed insert schedules nothing.
 */
export const insertStory = internalMutation({
  args: storyFields,
  returns: v.id("stories"),
  handler: async (ctx, story) => {
    const problems = caseFileProblems(story);
    if (problems.length > 0) throw new ConvexError(`invalid case file: ${problems.join("; ")}`);
    const now = Date.now();
    const storyId = await ctx.db.insert("stories", { ...story, slug: await uniqueSlug(ctx, story.slug), createdAt: now });
    await createJob(ctx, (await ctx.db.get(storyId))!);
    await dispatch(ctx);
    return storyId;
  },
});

/** Claude may reuse a title; the game looks stories up by slug, so keep slugs unique. */
async function uniqueSlug(ctx: QueryCtx, slug: string): Promise<string> {
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? slug : `${slug}-${n}`;
    const taken = await ctx.db
      .query("stories")
      .withIndex("by_slug", (q) => q.eq("slug", candidate))
      .first();
    if (!taken) return candidate;
  }
}

/**
 * Deletes a story and its portrait file. Its job and events stay for the audit;
 * a job still in flight fails with `story_missing` at its next step.
 */
export const deleteStory = internalMutation({
  args: { storyId: v.id("stories") },
  returns: v.boolean(),
  handler: async (ctx, { storyId }) => {
    const story = await ctx.db.get(storyId);
    if (!story) return false;
    if (story.storageId) await ctx.storage.delete(story.storageId);
    await ctx.db.delete(storyId);
    return true;
  },
});

const generateResult = v.union(
  v.object({ status: v.literal("inserted"), storyId: v.id("stories") }),
  v.object({
    status: v.literal("failed"),
    stage: v.union(v.literal("config"), v.literal("request"), v.literal("response"), v.literal("validation"), v.literal("insert")),
    message: v.string(),
  }),
);

/**
 * Asks Claude for a case file and inserts it. A failure is logged with its
 * context and inserts nothing; portrait failures happen later, in their own
 * job, and never reach this action.
 */
export const generateStory = internalAction({
  args: { hint: v.optional(v.string()) },
  returns: generateResult,
  handler: async (ctx, { hint }) => {
    const started = Date.now();
    const written = await writeCaseFile(hint);
    if (!written.ok) {
      console.error(JSON.stringify({ event: "story.failed", stage: written.stage, message: written.message, durationMs: Date.now() - started }));
      return { status: "failed" as const, stage: written.stage, message: written.message };
    }
    let storyId: Id<"stories">;
    try {
      storyId = await ctx.runMutation(internal.stories.insertStory, written.story);
    } catch (error) {
      const message = describeError(error);
      console.error(JSON.stringify({ event: "story.failed", stage: "insert", message, slug: written.story.slug }));
      return { status: "failed" as const, stage: "insert" as const, message };
    }
    console.log(JSON.stringify({ event: "story.inserted", storyId, durationMs: Date.now() - started }));
    return { status: "inserted" as const, storyId };
  },
});

const publicStory = v.object({
  _id: v.id("stories"),
  _creationTime: v.number(),
  ...storyFields,
  createdAt: v.number(),
  storageId: v.optional(v.id("_storage")),
  portraitUrl: v.union(v.string(), v.null()),
});

async function withPortraitUrl(ctx: QueryCtx, story: Doc<"stories"> | null) {
  if (!story) return null;
  return { ...story, portraitUrl: story.storageId ? await ctx.storage.getUrl(story.storageId) : null };
}

/** A story for the game, with its portrait's URL once the portrait is stored. */
export const getStory = query({
  args: { storyId: v.id("stories") },
  returns: v.union(publicStory, v.null()),
  handler: async (ctx, { storyId }) => withPortraitUrl(ctx, await ctx.db.get(storyId)),
});

/** The newest story, with its portrait's URL once the portrait is stored. */
export const getLatestStory = query({
  args: {},
  returns: v.union(publicStory, v.null()),
  handler: async (ctx) => withPortraitUrl(ctx, await ctx.db.query("stories").withIndex("by_createdAt").order("desc").first()),
});
