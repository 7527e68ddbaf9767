import { ConvexError, v } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, query, type MutationCtx, type QueryCtx } from "./_generated/server";
import { normalizeStory, playabilityProblems } from "./lib/caseFile";
import { kickDispatcher } from "./lib/dispatch";
import { createJob } from "./lib/jobs";
import { storyFields, type StoryInput } from "./validators";

/**
 * Inserts a story, its portrait job (`pending`) and the job's first event, and
 * hands the job to the dispatcher, which schedules `generatePatientPortrait`
 * when a slot is free: one transaction, so a story never exists without its job
 * and a failed insert schedules nothing.
 *
 * Refuses only what the game cannot show or play (a blank title, no chapters, a
 * chapter a US keyboard cannot type after safe typographic substitutions). A
 * blank or over-long imageGenerationPrompt keeps the story: its portrait job
 * fails with `empty_prompt` or `prompt_too_long` before calling Recraft.
 */
export async function insertCaseFile(ctx: MutationCtx, input: StoryInput): Promise<Id<"stories">> {
  const story = normalizeStory(input);
  const problems = playabilityProblems(story);
  if (problems.length > 0) throw new ConvexError(`the game cannot play this case file: ${problems.join("; ")}`);
  const now = Date.now();
  const storyId = await ctx.db.insert("stories", { ...story, slug: await uniqueSlug(ctx, story.slug), createdAt: now });
  await createJob(ctx, (await ctx.db.get(storyId))!);
  await kickDispatcher(ctx);
  return storyId;
}

export const insertStory = internalMutation({
  args: storyFields,
  returns: v.id("stories"),
  handler: async (ctx, story) => insertCaseFile(ctx, story),
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
